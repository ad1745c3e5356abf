/**
 * Hostile input: 5,000 connections opened at once. Each is a raw TCP client
 * that completes the opening handshake (101 with the right accept key), then
 * closes with a close frame (RFC 6455 section 7.1.2) and waits for the
 * server's close and the end of the TCP connection.
 *
 * Expected: every handshake succeeds; while all of them are open the server
 * stays responsive (the canary keeps echoing, a new client connects and
 * echoes); when they have closed the server frees everything: server.clients
 * is back to the canary alone (0 once the canary leaves), and the process's
 * active TCP handles (process.getActiveResourcesInfo(), TCPSocketWrap) are
 * back to the baseline within a small margin.
 *
 * Both ends live in this process, so 5,000 connections take 10,000 file
 * descriptors. The test reads the soft limit (RLIMIT_NOFILE, from
 * /proc/self/limits; Node cannot raise it) and, if it is too low, scales the
 * count down to what fits and says so in its output.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { openFileLimit } from '../helpers/open-file-limit.js';
import { connect as netConnect, type Socket } from 'node:net';
import { HostileBench, MiB, acceptFor, activeResources, assertAcceptsNewConnection, encodeRawFrame, closePayload, newKey, upgradeRequest, waitUntil, withTimeout } from './harness.js';

const WANTED = 5000;

interface StormClient {
  socket: Socket;
  /** Resolves after a correct 101. */
  open: Promise<void>;
  /** Resolves when the TCP connection is closed. */
  closed: Promise<void>;
  gotServerClose: boolean;
}

/** A raw client: handshake on connect, then waits; keeps only what it must to find the 101 and the server's close frame. */
function stormClient(port: number, i: number): StormClient {
  const socket = netConnect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  const key = newKey();
  const c: StormClient = { socket, open: Promise.resolve(), closed: Promise.resolve(), gotServerClose: false };
  c.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  c.open = new Promise((resolve, reject) => {
    let buf = '';
    let opened = false;
    socket.once('connect', () => socket.write(upgradeRequest({ key, path: `/hostile-storm-${i}` })));
    socket.on('data', (d: Buffer) => {
      if (opened) {
        // After the head: the only frame the server sends is its close (0x88).
        if (d.includes(0x88)) c.gotServerClose = true;
        return;
      }
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = buf.slice(0, end);
      if (!head.startsWith('HTTP/1.1 101 ') || !head.includes(`Sec-WebSocket-Accept: ${acceptFor(key)}`)) reject(new Error(`connection ${i}: ${head.split('\r\n')[0]}`));
      opened = true;
      resolve();
    });
    socket.once('close', () => {
      if (!opened) reject(new Error(`connection ${i} closed before the 101`));
    });
  });
  return c;
}

describe('hostile: a storm of connections', () => {
  let b: HostileBench;
  before(async () => {
    b = await HostileBench.start({ closeTimeoutMs: 10_000 });
  });
  after(async () => {
    await b.end();
    // With the canary gone too, the server holds nothing.
    assert.equal(b.h.server.clients.size, 0);
  });

  it(`${WANTED} connections opened at once complete the handshake, then close; the server stays responsive and frees everything`, { timeout: 120_000 }, async (t) => {
    const limit = openFileLimit();
    // Two descriptors per connection (both ends are here), plus room for the runner, the canary and the probes.
    const n = Math.min(WANTED, Math.floor((limit - 400) / 2));
    if (n < WANTED) t.diagnostic(`RLIMIT_NOFILE is ${limit}: scaled down to ${n} connections (raise it with ulimit -n to run all ${WANTED})`);
    else t.diagnostic(`RLIMIT_NOFILE is ${limit}: running all ${n} connections`);
    assert.ok(n >= 500, `the file descriptor limit (${limit}) leaves room for only ${n} connections`);

    const baseline = activeResources();
    const mark = b.canary.mark();
    const rssBefore = process.memoryUsage().rss;
    const started = performance.now();
    const clients = Array.from({ length: n }, (_, i) => stormClient(b.h.port, i));
    try {
      await withTimeout(Promise.all(clients.map((c) => c.open)), 90_000, `${n} handshakes`);
      const openedIn = performance.now() - started;
      await waitUntil(() => b.h.server.clients.size === n + 1, 10_000, 'every session registered');
      t.diagnostic(`${n} handshakes done in ${openedIn.toFixed(0)} ms; RSS +${((process.memoryUsage().rss - rssBefore) / MiB).toFixed(0)} MiB with all open`);

      // All open: the server still serves the canary and takes a new client.
      await b.canary.assertAlive(b.canary.mark());
      await assertAcceptsNewConnection(b.h);

      // Everyone closes (normal closure), and waits for the server's close and the end of TCP.
      const closeFrame = encodeRawFrame(0x8, closePayload(1000, 'storm over'));
      const closing = performance.now();
      for (const c of clients) c.socket.write(closeFrame);
      await withTimeout(Promise.all(clients.map((c) => c.closed)), 60_000, `${n} connections to close`);
      t.diagnostic(`${n} closing handshakes done in ${(performance.now() - closing).toFixed(0)} ms`);
      const answered = clients.filter((c) => c.gotServerClose).length;
      assert.equal(answered, n, 'every client got the server close frame');
    } finally {
      for (const c of clients) c.socket.destroy();
    }

    await waitUntil(() => b.h.server.clients.size === 1, 10_000, 'the server to release every storm session');
    await waitUntil(() => b.h.closes.filter((c) => c.path.startsWith('/hostile-storm-')).length === n, 10_000, 'every server-side onClose');
    const storm = b.h.closes.filter((c) => c.path.startsWith('/hostile-storm-'));
    assert.ok(
      storm.every((c) => c.info.code === 1000 && c.info.wasClean),
      'every storm session closed cleanly with 1000',
    );
    // Handles: back to the baseline (a margin of 10 for the probe's sockets and timers still winding down).
    await waitUntil(() => (activeResources().get('TCPSocketWrap') ?? 0) <= (baseline.get('TCPSocketWrap') ?? 0) + 10, 10_000, 'the TCP handles to be released');
    const now = activeResources();
    t.diagnostic(`active resources before ${JSON.stringify(Object.fromEntries(baseline))}, after ${JSON.stringify(Object.fromEntries(now))}`);
    await b.canary.assertAlive(mark);
    t.diagnostic(`canary during the storm: ${b.canary.latencySince(mark)}`);
  });
});
