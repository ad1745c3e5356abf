/**
 * Hostile input: a client that resets the TCP connection (RST, via
 * socket.resetAndDestroy()) at the moments when the server's socket belongs
 * to nobody yet:
 *
 * - right after reading an HTTP rejection (400, 426, 431, and 408 after a
 *   handshake timeout), while the server has answered and waits to drop the
 *   connection;
 * - while an asynchronous verifyClient is still deciding;
 * - right after sending a valid upgrade request, before reading the 101.
 *
 * Expected: the server process survives (an unhandled ECONNRESET 'error'
 * event on such a socket used to crash it: no listener was attached between
 * the head parser letting go of the socket and the session taking it), no
 * session is opened for a reset connection that was still being verified,
 * and the canary never notices. Each case runs 50 times to cover the timing
 * windows (the 408 case 10 times at once, as each takes handshakeTimeoutMs).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import { HostileBench, delay, upgradeRequest, waitUntil, withTimeout } from './harness.js';

const ROUNDS = 50;

/**
 * Connects, writes `request`, waits for the moment (the first byte of an
 * answer, the request written, or a condition), then resets the connection
 * (unless it closed first). Returns what was received.
 */
async function resetAfter(port: number, request: string, resetWhen: 'first-byte' | 'written' | (() => boolean)): Promise<string> {
  const socket: Socket = netConnect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  let received = '';
  let closed = false;
  socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
  socket.once('close', () => (closed = true));
  await withTimeout(new Promise<void>((resolve) => socket.once('connect', () => socket.write(request, () => resolve()))), 10_000, 'connect and write');
  if (resetWhen === 'first-byte') await waitUntil(() => received.length > 0 || closed, 10_000, 'the answer');
  else if (typeof resetWhen === 'function') await waitUntil(() => resetWhen() || closed, 10_000, 'the moment to reset');
  if (!socket.destroyed) socket.resetAndDestroy();
  return received;
}

describe('hostile: resets at the moments the socket is between owners', () => {
  let b: HostileBench;
  let verifying = 0;
  before(async () => {
    b = await HostileBench.start({
      verifyClient: async (req) => {
        if (!req.path.startsWith('/hostile-slow-verify')) return true;
        verifying++;
        await delay(100);
        return true;
      },
    });
  });
  after(async () => {
    await b.end();
  });

  const rejected: Array<[string, string, number]> = [
    ['400 (bad key)', upgradeRequest({ path: '/hostile-400', key: 'short' }), 400],
    ['426 (no Upgrade header)', 'GET /hostile-426 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 426],
    ['431 (too many headers)', upgradeRequest({ path: '/hostile-431', headers: Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`X-H${i}`, 'v'])) }), 431],
  ];
  for (const [what, request, status] of rejected) {
    it(`RST right after reading a ${what} answer, ${ROUNDS} times: the server survives`, async (t) => {
      const mark = b.canary.mark();
      for (let i = 0; i < ROUNDS; i++) {
        const got = await resetAfter(b.h.port, request, 'first-byte');
        assert.match(got, new RegExp(`^HTTP/1\\.1 ${status} `));
      }
      await b.assertHealthy(t, mark);
    });
  }

  it('RST right after reading a 408 (handshake timeout) answer, 10 connections at once: the server survives', { timeout: 20_000 }, async (t) => {
    const mark = b.canary.mark();
    // Half a head, then nothing: each is answered 408 after handshakeTimeoutMs, and resets at once.
    const half = upgradeRequest({ path: '/hostile-408' }).slice(0, 40);
    const answers = await Promise.all(Array.from({ length: 10 }, () => resetAfter(b.h.port, half, 'first-byte')));
    for (const got of answers) assert.match(got, /^HTTP\/1\.1 408 /);
    await b.assertHealthy(t, mark);
  });

  it(`RST while an asynchronous verifyClient decides, ${ROUNDS} times: the server survives and opens no session`, async (t) => {
    const mark = b.canary.mark();
    for (let i = 0; i < ROUNDS; i++) {
      const before = verifying;
      const got = await resetAfter(b.h.port, upgradeRequest({ path: `/hostile-slow-verify-${i}` }), () => verifying === before + 1);
      assert.equal(got, '', 'nothing was answered yet');
      assert.equal(verifying, before + 1, 'verifyClient was running when the reset came');
    }
    // Every verifyClient has resolved by now (100 ms each); none of them may have opened a session.
    await delay(300);
    assert.deepEqual(
      b.h.opened.filter((p) => p.startsWith('/hostile-slow-verify')),
      [],
    );
    await b.assertHealthy(t, mark);
  });

  it(`RST right after a valid upgrade request, ${ROUNDS} times: the server survives and releases every session`, async (t) => {
    const mark = b.canary.mark();
    for (let i = 0; i < ROUNDS; i++) await resetAfter(b.h.port, upgradeRequest({ path: `/hostile-rst-${i}` }), 'written');
    await waitUntil(() => [...b.h.server.clients].every((s) => !s.request.path.startsWith('/hostile-rst')), 10_000, 'the sessions to be released');
    // Sessions that did open were closed abnormally (1006), once each.
    const opened = b.h.opened.filter((p) => p.startsWith('/hostile-rst'));
    await waitUntil(() => b.h.closes.filter((c) => c.path.startsWith('/hostile-rst')).length === opened.length, 10_000, 'their onClose');
    for (const c of b.h.closes.filter((c) => c.path.startsWith('/hostile-rst'))) assert.equal(c.info.code, 1006);
    t.diagnostic(`${opened.length} of ${ROUNDS} reset connections had become sessions before the reset arrived`);
    await b.assertHealthy(t, mark);
  });
});
