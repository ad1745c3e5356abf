/**
 * Hostile input on a wss:// server: bytes that are not a TLS ClientHello.
 * node:tls fails the handshake ('tlsClientError'); sockeye destroys that one
 * socket and reports ERR_TLS_HANDSHAKE to onError. Nothing else is touched:
 * the canary keeps echoing over wss, and new wss clients connect.
 *
 * | input                                               | outcome                                   |
 * |-----------------------------------------------------|-------------------------------------------|
 * | 4 KiB of random bytes                               | connection dropped, ERR_TLS_HANDSHAKE     |
 * | a plain-text WebSocket upgrade request              | connection dropped, ERR_TLS_HANDSHAKE     |
 * | a TLS record header announcing 16 KiB, then garbage | connection dropped, ERR_TLS_HANDSHAKE     |
 * | half a ClientHello, then silence                    | dropped after handshakeTimeoutMs (2 s)    |
 * | nothing at all after connecting                     | dropped after handshakeTimeoutMs (2 s)    |
 * | 50 of the above kinds at once                       | all dropped; the server alive             |
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect as netConnect, createServer as createNetServer, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { HOSTILE_HEAD, HostileBench, upgradeRequest, waitUntil, withTimeout, assertOnlyCanaryLeft } from './harness.js';
import { testCert } from '../helpers/certs.js';

/** Captures the first bytes a real TLS client sends (its ClientHello), from a local listener that never answers. */
async function realClientHello(): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const srv = createNetServer((s) => {
      s.once('data', (d: Buffer) => {
        resolve(d);
        s.destroy();
        srv.close();
      });
    });
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      const c = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false });
      c.on('error', () => {});
      c.on('close', () => c.destroy());
    });
    srv.on('error', reject);
  });
}

/** Connects by plain TCP, writes `bytes` (if any), and resolves when the server closes the connection, with the time since connecting. */
async function sendAndAwaitDrop(port: number, bytes: Buffer | null, ms: number): Promise<number> {
  // Measured from before connecting: the server's handshake deadline starts when it accepts.
  const started = performance.now();
  const socket: Socket = netConnect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  socket.on('data', () => {}); // a TLS alert may come back; it is not the test's business
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  if (bytes) socket.write(bytes);
  try {
    await withTimeout(new Promise<void>((resolve) => socket.once('close', () => resolve())), ms, 'the server to drop the connection');
  } finally {
    socket.destroy();
  }
  return performance.now() - started;
}

describe('hostile: TLS garbage instead of a ClientHello', () => {
  let b: HostileBench;
  let hello: Buffer;
  before(async () => {
    testCert();
    hello = await realClientHello();
    b = await HostileBench.start({ tls: true });
  });
  after(async () => {
    await b.end();
  });

  const tlsErrors = () => b.h.errors.filter((e) => (e as { code?: string }).code === 'ERR_TLS_HANDSHAKE').length;

  const garbage: Array<[string, () => Buffer]> = [
    ['4 KiB of random bytes', () => randomBytes(4096)],
    ['a plain-text WebSocket upgrade request', () => Buffer.from(upgradeRequest({ path: '/hostile-plain' }))],
    ['a TLS handshake record header announcing 16 KiB, then garbage', () => Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00]), randomBytes(16384)])],
  ];
  for (const [what, bytes] of garbage) {
    it(`${what}: the connection is dropped, ERR_TLS_HANDSHAKE is reported, the wss canary is fine`, async (t) => {
      const mark = b.canary.mark();
      const before = tlsErrors();
      const ms = await sendAndAwaitDrop(b.h.port, bytes(), 10_000);
      t.diagnostic(`dropped after ${ms.toFixed(1)} ms`);
      await waitUntil(() => tlsErrors() > before, 5000, 'the ERR_TLS_HANDSHAKE report');
      assert.equal(tlsErrors(), before + 1);
      await b.assertHealthy(t, mark);
    });
  }

  for (const [what, bytes] of [
    ['half a real ClientHello, then silence', () => hello.subarray(0, Math.floor(hello.length / 2))],
    ['nothing at all after connecting', () => null],
  ] as Array<[string, () => Buffer | null]>) {
    it(`${what}: dropped once handshakeTimeoutMs (${HOSTILE_HEAD.handshakeTimeoutMs} ms) has passed`, async (t) => {
      const mark = b.canary.mark();
      const ms = await sendAndAwaitDrop(b.h.port, bytes(), HOSTILE_HEAD.handshakeTimeoutMs + 8000);
      t.diagnostic(`dropped after ${ms.toFixed(0)} ms`);
      // node:tls's handshake timer is a plain setTimeout: allow its 1 ms rounding.
      assert.ok(ms >= HOSTILE_HEAD.handshakeTimeoutMs - 1, `dropped after ${ms} ms, before the timeout`);
      await b.assertHealthy(t, mark);
    });
  }

  it('50 garbage connections at once (random, plain text, half hellos): all dropped, the server alive', { timeout: 30_000 }, async (t) => {
    const mark = b.canary.mark();
    const kinds = [() => randomBytes(1024), () => Buffer.from(upgradeRequest({ path: '/hostile-plain' })), () => hello.subarray(0, 20)];
    const times = await Promise.all(Array.from({ length: 50 }, (_, i) => sendAndAwaitDrop(b.h.port, kinds[i % 3](), HOSTILE_HEAD.handshakeTimeoutMs + 10_000)));
    t.diagnostic(`all 50 dropped within ${Math.max(...times).toFixed(0)} ms`);
    await b.assertHealthy(t, mark);
    await assertOnlyCanaryLeft(b.h);
  });
});
