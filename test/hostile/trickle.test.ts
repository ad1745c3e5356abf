/**
 * Hostile input: tricklers, peers that send one byte a second.
 *
 * 1. The opening handshake trickled (slowloris). The whole head must arrive
 *    within handshakeTimeoutMs (2 s here, 10 s by default); the server then
 *    answers 408 and closes. Twenty tricklers at once block nobody: the
 *    canary keeps echoing and new clients connect while they trickle. Once
 *    408 was answered, the rest of the head arriving late must not open a
 *    session.
 *
 * 2. A frame body trickled after a valid handshake. With keepalive
 *    (pingAfterMs 1000, hangupAfterMs 3000) every byte received counts as
 *    traffic, so a trickler that stays within the limits is ALLOWED TO LIVE:
 *    this is a documented decision (SECURITY.md), not an oversight. What
 *    bounds it: the message it builds is limited by maxMessageBytes; the
 *    memory it costs is what it actually sent, not what its header announced
 *    (fifty tricklers announcing 1 MiB each cost far less than 50 MiB); and
 *    the moment it stops sending, the hang-up timer ends it (1006 on the
 *    server side, TCP closed) within hangupAfterMs. A trickler that finishes
 *    its frame gets its echo, intact.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { HOSTILE_HEAD, HOSTILE_LIMITS, HostileBench, MemoryWatch, MiB, RawClient, FrameScanner, assertAcceptsNewConnection, assertMemoryBounded, delay, rawUpgrade, upgradeRequest, waitUntil, withTimeout } from './harness.js';

describe('hostile: a handshake trickled one byte a second', () => {
  let b: HostileBench;
  before(async () => {
    b = await HostileBench.start();
  });
  after(async () => {
    await b.end();
  });

  it(`20 tricklers: each answered 408 after handshakeTimeoutMs (${HOSTILE_HEAD.handshakeTimeoutMs} ms) and closed; nobody else blocked`, { timeout: 30_000 }, async (t) => {
    const mark = b.canary.mark();
    const request = Buffer.from(upgradeRequest({ path: '/hostile-trickle' }));
    // Measured from before connecting: the server's deadline starts when it accepts.
    const started = performance.now();
    const clients = await Promise.all(Array.from({ length: 20 }, () => RawClient.connect(b.h.port)));
    const timers = clients.map((c) => {
      let i = 0;
      const send = () => {
        if (!c.isClosed && i < request.length) c.write(request.subarray(i, ++i));
      };
      send();
      return setInterval(send, 1000);
    });
    try {
      // While they trickle, new connections are accepted and served (the accept loop is never held up).
      await delay(500);
      await assertAcceptsNewConnection(b.h);
      const answers = await Promise.all(clients.map((c) => c.waitRejection(HOSTILE_HEAD.handshakeTimeoutMs + 8000).then((r) => ({ ...r, at: performance.now() - started }))));
      for (const a of answers) {
        assert.equal(a.status, 408);
        // Not before the timeout: it is the deadline that ended it (the wheel rounds deadlines up, never down).
        assert.ok(a.at >= HOSTILE_HEAD.handshakeTimeoutMs, `answered after ${a.at} ms`);
      }
      t.diagnostic(`408 answers arrived ${Math.min(...answers.map((a) => a.at)).toFixed(0)}..${Math.max(...answers.map((a) => a.at)).toFixed(0)} ms after connecting`);
      assert.ok(!b.h.opened.includes('/hostile-trickle'), 'no session was opened');
    } finally {
      for (const timer of timers) clearInterval(timer);
      for (const c of clients) c.destroy();
    }
    await b.assertHealthy(t, mark);
  });

  it('the rest of the head sent right after the 408 opens no session', { timeout: 30_000 }, async (t) => {
    const mark = b.canary.mark();
    const path = '/hostile-late-head';
    const request = Buffer.from(upgradeRequest({ path }));
    const c = await RawClient.connect(b.h.port);
    let i = 0;
    const timer = setInterval(() => {
      if (!c.isClosed && c.head === null && i < 10) c.write(request.subarray(i, ++i));
    }, 200);
    try {
      c.write(request.subarray(0, ++i));
      await c.waitHead(HOSTILE_HEAD.handshakeTimeoutMs + 8000);
      clearInterval(timer);
      assert.equal(c.head!.status, 408);
      // The server has answered and half-closed; a client that goes on anyway must get nowhere.
      if (!c.isClosed) c.write(request.subarray(i));
      await c.waitClosed(5000);
      await delay(100);
      assert.ok(!b.h.opened.includes(path), 'a session was opened after the 408');
      assert.ok(!c.body.includes('HTTP/1.1 101'), 'a 101 followed the 408');
    } finally {
      clearInterval(timer);
      c.destroy();
    }
    await b.assertHealthy(t, mark);
  });
});

describe('hostile: a frame body trickled one byte a second, keepalive on', () => {
  // Three times the trickle interval: a late tick on a busy machine must not pass for silence.
  const keepalive = { pingAfterMs: 1000, hangupAfterMs: 3000 };
  let b: HostileBench;
  before(async () => {
    b = await HostileBench.start({ keepalive });
  });
  after(async () => {
    await b.end();
  });

  it('50 tricklers each announcing a 1 MiB frame live past hangupAfterMs at bounded memory; one that stops is hung up on; one that finishes gets its echo', { timeout: 40_000 }, async (t) => {
    const mark = b.canary.mark();
    const TRICKLERS = 50;
    const TRICKLE_MS = 2 * keepalive.hangupAfterMs;
    const announced = HOSTILE_LIMITS.maxMessageBytes;
    const conns: Array<{ socket: Socket; path: string; echoes: Buffer[]; sent: number; stop: boolean }> = [];
    const mem = new MemoryWatch();
    for (let k = 0; k < TRICKLERS; k++) {
      const path = `/hostile-body-${k}`;
      const { socket } = await rawUpgrade(b.h.port, { path });
      const conn = { socket, path, echoes: [] as Buffer[], sent: 0, stop: false };
      // Read what the server sends (its keepalive pings), keeping only data frames.
      const scanner = new FrameScanner((opcode, payload) => {
        if (opcode <= 0x2) conn.echoes.push(Buffer.from(payload));
      });
      socket.on('data', (c: Buffer) => scanner.push(c));
      socket.resume();
      // A binary frame header announcing 1 MiB, masked with a zero key (the payload bytes go as they are).
      const header = Buffer.alloc(14);
      header[0] = 0x82;
      header[1] = 0x80 | 127;
      header.writeBigUInt64BE(BigInt(announced), 2);
      socket.write(header);
      conns.push(conn);
    }
    const timer = setInterval(() => {
      for (const c of conns) {
        if (!c.stop && !c.socket.destroyed) {
          c.socket.write(Buffer.from([0x41 + (c.sent % 26)]));
          c.sent++;
        }
      }
    }, 1000);
    try {
      await delay(TRICKLE_MS);
      const g = mem.stop();
      // Everyone is still there: each byte reset the hang-up timer.
      const alive = new Set([...b.h.server.clients].map((s) => s.request.path));
      for (const c of conns) assert.ok(alive.has(c.path), `${c.path} was dropped while trickling within the limits`);
      assert.equal(b.h.hostileCloses().length, 0);
      // 50 announced MiB, but only a few bytes each arrived: the cost is per connection, not per announced byte.
      assertMemoryBounded(t, g, { rss: 24 * MiB, arrayBuffers: 8 * MiB }, `${TRICKLERS} tricklers for ${TRICKLE_MS} ms`);

      // One stops sending: hung up on after hangupAfterMs of silence (1006, no closing handshake: RFC 6455 section 7.1.5).
      const quiet = conns[0];
      quiet.stop = true;
      const stoppedAt = performance.now();
      await waitUntil(() => b.h.closes.some((c) => c.path === quiet.path), keepalive.hangupAfterMs + 8000, 'the hang-up');
      const info = b.h.closes.find((c) => c.path === quiet.path)!.info;
      t.diagnostic(`hung up ${(performance.now() - stoppedAt).toFixed(0)} ms after the trickle stopped, its last byte up to 1 s before that (hangupAfterMs ${keepalive.hangupAfterMs})`);
      assert.equal(info.code, 1006);
      assert.equal(info.error?.code, 'ERR_KEEPALIVE_TIMEOUT');
      await withTimeout(new Promise<void>((r) => (quiet.socket.destroyed || quiet.socket.readyState === 'closed' ? r() : quiet.socket.once('close', () => r()))), 5000, 'the TCP connection to close');

      // Another finishes its frame in one go: the echo is exactly the trickled bytes plus the rest.
      const done = conns[1];
      done.stop = true;
      const trickled = Buffer.from(Array.from({ length: done.sent }, (_, i) => 0x41 + (i % 26)));
      const rest = Buffer.alloc(announced - done.sent, 0x7a);
      done.socket.write(rest);
      await waitUntil(() => done.echoes.length === 1, 10_000, 'the echo of the finished frame');
      assert.ok(done.echoes[0].equals(Buffer.concat([trickled, rest])), 'the echo is the frame as sent');
    } finally {
      clearInterval(timer);
      for (const c of conns) c.socket.destroy();
    }
    await waitUntil(() => b.h.hostileCloses().length === TRICKLERS, 10_000, 'every trickler closed');
    await b.assertHealthy(t, mark);
  });
});
