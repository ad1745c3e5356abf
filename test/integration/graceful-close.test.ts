/**
 * Invariant S4, nothing is lost silently, and server shutdown:
 *
 * - close() after queueing messages to a slow peer sends every one of them,
 *   in order, before the close frame (RFC 6455 section 7.1.2 starts the
 *   closing handshake; nothing says to discard what was accepted before it);
 * - a connection that is terminated with a full queue reports, in
 *   CloseInfo.unsentMessages, exactly the messages the peer did not get;
 * - server.close() sends 1001 (section 7.4.1, "going away") to every open
 *   session and resolves only once all of them are closed, bounded by the
 *   close timeout for peers that never answer.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { connect, TimeoutError, TransportError, type CloseInfo, type Message, type SendStatus, type ServerSession } from '../../src/index.js';
import { testCert } from '../helpers/certs.js';
import { RawClient, RawFrameDecoder, type RawFrame, clientFrame, closePayload, decodeClose, delay, echoHandler, numbered, serverFrame, startRawServer, startServer, switchingProtocols, waitUntil, withTimeout } from '../helpers/ws-pair.js';

const KiB = 1024;

/** A server whose onOpen hands the session out, and whose onClose infos are collected. */
async function serverWithSessions(options: Parameters<typeof startServer>[0] = {}) {
  const sessions: ServerSession[] = [];
  const closes: CloseInfo[] = [];
  const t = await startServer({
    ...options,
    handler: echoHandler({
      onOpen(s) {
        sessions.push(s);
      },
      onClose(_s, info) {
        closes.push(info);
      },
    }),
  });
  return { t, sessions, closes };
}

/**
 * A raw WebSocket server for one client, watched: the frames it receives, its socket, and
 * whether that socket has closed. `halfOpen` keeps its side open after the client's FIN;
 * `onFrames` runs after each read (to answer, say).
 */
async function watchedRawServer(options: { halfOpen?: boolean; onFrames?: (socket: Socket, frames: readonly RawFrame[]) => void } = {}) {
  const decoder = new RawFrameDecoder();
  const watch = { frames: decoder.frames, socket: null as Socket | null, closed: false };
  const server = await startRawServer((socket, req) => {
    watch.socket = socket;
    if (options.halfOpen) socket.allowHalfOpen = true;
    socket.on('data', (d: Buffer) => {
      decoder.push(d);
      options.onFrames?.(socket, decoder.frames);
    });
    socket.on('close', () => (watch.closed = true));
    socket.write(switchingProtocols(req.key));
  });
  return { server, watch };
}

describe('S4: a graceful close flushes the queue first', () => {
  it('messages queued to a peer that is not reading all go out, in order, before the close frame', { timeout: 30_000 }, async () => {
    const { t, sessions, closes } = await serverWithSessions({ closeTimeoutMs: 20_000 });
    const raw = await RawClient.open(t.port);
    raw.pause();
    try {
      await waitUntil(() => sessions.length === 1, 5000, 'the session');
      const s = sessions[0];
      const n = 100;
      const size = 64 * KiB;
      const statuses: SendStatus[] = [];
      for (let i = 0; i < n; i++) statuses.push(s.send(numbered(i, size)));
      assert.ok(!statuses.includes('dropped'));
      assert.ok(s.bufferedAmount > 0, 'the test needs a queue');
      s.close(1000, 'flushed');
      assert.equal(s.state, 'closing');
      // Sending after close() is refused, never queued behind the close frame.
      assert.equal(s.send('too late'), 'dropped');

      raw.resume();
      await raw.waitFrames(n + 1, 20_000);
      const frames = raw.frames;
      for (let i = 0; i < n; i++) {
        assert.equal(frames[i].opcode, 0x2, `frame ${i} should be data`);
        assert.equal(frames[i].payload.readUInt32BE(0), i, `message ${i} out of order`);
        assert.equal(frames[i].payload.length, size);
      }
      assert.deepEqual(decodeClose(frames[n]), { code: 1000, reason: 'flushed' });
      assert.equal(frames.length, n + 1, 'nothing after the close frame');
      // Complete the handshake; the server then reports a clean close with nothing unsent.
      raw.write(clientFrame(0x8, closePayload(1000)));
      await raw.waitClosed(5000);
      await waitUntil(() => closes.length === 1, 5000, 'onClose');
      assert.equal(closes[0].wasClean, true);
      assert.equal(closes[0].code, 1000);
      assert.equal(closes[0].unsentMessages, 0);
    } finally {
      raw.destroy();
      await t.server.close();
    }
  });

  it('our slow-reading client receives every queued message in order, then the close', { timeout: 30_000 }, async () => {
    const n = 200;
    const size = 32 * KiB;
    const serverStatuses: SendStatus[] = [];
    const closes: CloseInfo[] = [];
    const t = await startServer({
      closeTimeoutMs: 20_000,
      handler: {
        onOpen(s) {
          for (let i = 0; i < n; i++) serverStatuses.push(s.send(numbered(i, size)));
          s.close(1000, 'all sent');
        },
        onClose(_s, info) {
          closes.push(info);
        },
      },
    });
    try {
      // A small high-water mark makes the client stop reading its socket while its inbox is full.
      const c = await connect(t.url(), { keepalive: null, limits: { highWaterMark: 16 * KiB } });
      const got: number[] = [];
      const inbox = c.messages();
      for (let i = 0; i < n + 1; i++) {
        const r = await withTimeout(inbox.next(), 10_000, `message ${i}`);
        if (r.done) break;
        const m = r.value as Message;
        assert.equal(m.data.length, size);
        got.push(m.data.readUInt32BE(0));
        if (i % 10 === 0) await delay(2); // a slow consumer
      }
      assert.ok(!serverStatuses.includes('dropped'));
      assert.deepEqual(
        got,
        Array.from({ length: n }, (_, i) => i),
      );
      const info = await withTimeout(c.closed, 10_000, 'the client close');
      assert.deepEqual([info.code, info.reason, info.wasClean], [1000, 'all sent', true]);
      await waitUntil(() => closes.length === 1, 5000, 'onClose at the server');
      assert.equal(closes[0].unsentMessages, 0);
      assert.equal(closes[0].wasClean, true);
    } finally {
      await t.server.close();
    }
  });

  it('messages waiting behind a stream that is still open when close() is called are reported as unsent', async () => {
    const { t, sessions, closes } = await serverWithSessions();
    const c = await connect(t.url(), { keepalive: null });
    try {
      await waitUntil(() => sessions.length === 1, 5000, 'the session');
      const s = sessions[0];
      const w = s.stream({ binary: false });
      assert.notEqual(w.write('part one'), 'dropped');
      assert.notEqual(s.send('behind the stream 1'), 'dropped');
      assert.notEqual(s.send('behind the stream 2'), 'dropped');
      s.close(1000, 'stream abandoned');
      await withTimeout(c.closed, 5000, 'the client close');
      await waitUntil(() => closes.length === 1, 5000, 'onClose');
      assert.equal(closes[0].unsentMessages, 2);
    } finally {
      c.terminate();
      await t.server.close();
    }
  });
});

/**
 * Sends numbered `size`-byte messages to a peer that is not reading until 64 of
 * them wait in the session (the kernel's buffers full first), then terminates
 * it. Returns how many send() accepted and the session's CloseInfo.
 */
async function fillThenTerminate(s: ServerSession, size: number): Promise<{ accepted: number; info: CloseInfo }> {
  const target = size * 64;
  let accepted = 0;
  while (accepted < 100_000 && s.bufferedAmount < target) {
    assert.notEqual(s.send(numbered(accepted, size)), 'dropped');
    accepted++;
    if (accepted % 16 === 0) await new Promise((r) => setImmediate(r));
  }
  assert.ok(s.bufferedAmount >= target, 'the test needs a full queue');
  s.terminate();
  const info = await withTimeout(s.closed, 5000, 'the terminated session');
  assert.equal(info.code, 1006);
  assert.equal(info.wasClean, false);
  return { accepted, info };
}

describe('S4: unsent messages are reported when a connection dies with a full queue', () => {
  // 64 KiB messages leave one message in Node's own socket buffer when the
  // queue starts; 1 KiB messages leave about sixteen there. Both must be counted.
  for (const size of [64 * KiB, 1 * KiB]) {
  it(`terminate() with ${size / KiB} KiB messages: CloseInfo.unsentMessages equals the messages the peer never got, and is > 0`, { timeout: 30_000 }, async () => {
    const { t, sessions } = await serverWithSessions({ limits: { maxQueuedBytes: 64 * 1024 * KiB } });
    const raw = await RawClient.open(t.port);
    raw.pause();
    try {
      await waitUntil(() => sessions.length === 1, 5000, 'the session');
      const { accepted, info } = await fillThenTerminate(sessions[0], size);

      // What the kernel had already taken still reaches the peer; count complete messages.
      raw.resume();
      await raw.waitClosed(20_000);
      const got = raw.frames.filter((f) => f.opcode === 0x2);
      got.forEach((f, i) => assert.equal(f.payload.readUInt32BE(0), i, `message ${i} out of order`));
      const missing = accepted - got.length;
      assert.ok(info.unsentMessages > 0, 'unsentMessages must report the lost messages');
      assert.equal(info.unsentMessages, missing, `peer got ${got.length} of ${accepted}; unsentMessages says ${info.unsentMessages}`);
    } finally {
      raw.destroy();
      await t.server.close();
    }
  });
  }
});

describe('S4 over wss: unsent messages are counted exactly when a TLS connection dies with a full queue', () => {
  // The session counts as sent what left Node's buffers (socket.writableLength), for a TLS socket
  // what node:tls has encrypted and handed on: what the kernel took still reaches the client, the
  // rest is unsent. Messages of 16 KiB and up go header and payload apart over TLS (writeToSocket).
  for (const size of [64 * KiB, 1 * KiB]) {
    it(`terminate() with ${size / KiB} KiB messages over wss: CloseInfo.unsentMessages equals the messages the client never got`, { timeout: 30_000 }, async () => {
      const cert = testCert();
      const { t, sessions } = await serverWithSessions({ tls: { key: cert.key, cert: cert.cert }, limits: { maxQueuedBytes: 64 * 1024 * KiB } });
      const c = await connect(t.url(), { keepalive: null, tls: { ca: cert.ca } });
      const got: Message[] = [];
      let inboxEnd: unknown = null;
      const inbox = (async () => {
        try {
          for await (const m of c.messages()) got.push(m);
        } catch (err) {
          inboxEnd = err; // the iterator ends by throwing: the connection died without a close frame
        }
      })();
      c.pauseReading();
      try {
        await waitUntil(() => sessions.length === 1, 5000, 'the session');
        const { accepted, info } = await fillThenTerminate(sessions[0], size);
        c.resumeReading();
        await withTimeout(c.closed, 20_000, 'the client seeing the connection end');
        await withTimeout(inbox, 5000, 'the client inbox to end');
        assert.ok(inboxEnd instanceof TransportError && inboxEnd.code === 'ERR_CONNECTION_LOST', `messages() ends with the abnormal closure, not ${String(inboxEnd)}`);
        got.forEach((m, i) => assert.ok(m.data.equals(numbered(i, size)), `message ${i} intact and in order`));
        const missing = accepted - got.length;
        assert.ok(info.unsentMessages > 0, 'unsentMessages must report the lost messages');
        assert.equal(info.unsentMessages, missing, `client got ${got.length} of ${accepted}; unsentMessages says ${info.unsentMessages}`);
      } finally {
        c.terminate();
        await t.server.close();
      }
    });
  }
});

describe('server.close()', () => {
  it('sends 1001 to every open session and resolves after all of them are closed', { timeout: 30_000 }, async () => {
    const { t, closes } = await serverWithSessions();
    const clients = await Promise.all(Array.from({ length: 5 }, () => connect(t.url(), { keepalive: null })));
    // Each session works before the shutdown.
    for (const [i, c] of clients.entries()) {
      c.send(`hi ${i}`);
      assert.equal((await withTimeout(c.messages().next(), 5000, 'echo')).value?.text, `hi ${i}`);
    }
    assert.equal(t.server.clients.size, 5);
    await withTimeout(t.server.close(), 10_000, 'server.close()');
    // Resolved only after every session finished.
    assert.equal(closes.length, 5);
    assert.equal(t.server.clients.size, 0);
    for (const info of closes) {
      assert.equal(info.code, 1001);
      assert.equal(info.wasClean, true);
    }
    for (const c of clients) {
      const info = await withTimeout(c.closed, 5000, 'the client close');
      assert.equal(info.code, 1001);
      assert.equal(info.reason, 'server shutting down');
      assert.equal(info.wasClean, true);
    }
    // The listener is gone.
    await assert.rejects(connect(t.url(), { keepalive: null, handshakeTimeoutMs: 3000 }), (err: unknown) => err instanceof TransportError);
  });

  it('a peer that never answers the close is dropped after closeTimeoutMs, and a pending handshake is dropped at once', { timeout: 30_000 }, async () => {
    const { t, closes } = await serverWithSessions({ closeTimeoutMs: 300 });
    const good = await connect(t.url(), { keepalive: null });
    const mute = await RawClient.open(t.port);
    mute.pause(); // reads nothing, so it never answers the close frame
    const idle = await RawClient.connect(t.port); // connected, no request yet
    try {
      await waitUntil(() => t.server.clients.size === 2, 5000, 'both sessions');
      await withTimeout(t.server.close(), 10_000, 'server.close()');
      assert.equal(t.server.clients.size, 0);
      assert.equal(closes.length, 2);
      const byClean = [...closes].sort((a, b) => Number(b.wasClean) - Number(a.wasClean));
      assert.deepEqual([byClean[0].code, byClean[0].wasClean], [1001, true]);
      assert.deepEqual([byClean[1].code, byClean[1].wasClean], [1006, false]);
      assert.equal((await withTimeout(good.closed, 5000, 'good client')).code, 1001);
      await idle.waitClosed(5000);
      assert.equal(idle.head, null, 'the pending handshake got an answer');
      // The mute peer was sent the 1001 close frame before it was dropped.
      mute.resume();
      assert.equal((await mute.waitClose(5000)).code, 1001);
    } finally {
      good.terminate();
      mute.destroy();
      idle.destroy();
    }
  });
});

describe('close() and closeTimeoutMs', () => {
  it("close() with no arguments sends 1000 and no reason; the state is 'closing' and send/ping/pong return 'dropped' without throwing", async () => {
    const { t, sessions, closes } = await serverWithSessions();
    const raw = await RawClient.open(t.port);
    try {
      await waitUntil(() => sessions.length === 1, 5000, 'the session');
      const s = sessions[0];
      s.close();
      assert.equal(s.state, 'closing');
      assert.equal(s.send('too late'), 'dropped');
      assert.equal(s.send(Buffer.from('too late')), 'dropped');
      assert.equal(s.ping('too late'), 'dropped');
      assert.equal(s.pong('too late'), 'dropped');
      assert.deepEqual(await raw.waitClose(5000), { code: 1000, reason: '' });
      await delay(50); // let anything that should not exist arrive
      // Only the close frame, whose payload is the 2-byte code alone (section 5.5.1: the reason is optional).
      assert.deepEqual(
        raw.frames.map((f) => [f.opcode, f.payload.toString('hex')]),
        [[0x8, '03e8']],
      );
      raw.write(clientFrame(0x8, closePayload(1000)));
      await raw.waitClosed(5000);
      await waitUntil(() => closes.length === 1, 5000, 'onClose');
      assert.deepEqual([closes[0].code, closes[0].reason, closes[0].wasClean], [1000, '', true]);
      assert.equal(s.state, 'closed');
      assert.equal(s.send('later still'), 'dropped');
      assert.equal(s.ping('later still'), 'dropped');
      assert.equal(s.pong('later still'), 'dropped');
    } finally {
      raw.destroy();
      await t.server.close();
    }
  });

  it("the same on the client: close() sends 1000 and no reason, and sends after it return 'dropped'", async () => {
    const { t, closes } = await serverWithSessions();
    const c = await connect(t.url(), { keepalive: null });
    try {
      c.close();
      assert.equal(c.state, 'closing');
      assert.equal(c.send('too late'), 'dropped');
      assert.equal(c.ping('too late'), 'dropped');
      assert.equal(c.pong('too late'), 'dropped');
      const info = await withTimeout(c.closed, 5000, 'the client close');
      assert.deepEqual([info.code, info.reason, info.wasClean], [1000, '', true]);
      await waitUntil(() => closes.length === 1, 5000, "the server's onClose");
      assert.deepEqual([closes[0].code, closes[0].reason, closes[0].wasClean], [1000, '', true]);
    } finally {
      c.terminate();
      await t.server.close();
    }
  });

  it('a peer that reads our close frame but never answers it is dropped after closeTimeoutMs: 1006, ERR_CLOSE_TIMEOUT', async () => {
    const { t, sessions, closes } = await serverWithSessions({ closeTimeoutMs: 300 });
    const raw = await RawClient.open(t.port); // reads everything, answers nothing
    try {
      await waitUntil(() => sessions.length === 1, 5000, 'the session');
      const s = sessions[0];
      s.close(4001, 'answer me');
      assert.deepEqual(await raw.waitClose(5000), { code: 4001, reason: 'answer me' });
      const info = await withTimeout(s.closed, 3000, 'the close timeout');
      assert.equal(info.code, 1006);
      assert.equal(info.wasClean, false);
      assert.ok(info.error instanceof TimeoutError, `a TimeoutError, not ${String(info.error)}`);
      assert.equal(info.error.code, 'ERR_CLOSE_TIMEOUT');
      assert.deepEqual(closes, [info]);
      // The server dropped the TCP connection itself.
      await raw.waitClosed(3000);
    } finally {
      raw.destroy();
      await t.server.close();
    }
  });

  // A connection failed by the server (here a message over maxMessageBytes, 1009) is not a
  // completed closing handshake: the peer may still be sending. Closing the socket then would
  // answer those bytes with a reset, and a reset makes the peer's kernel drop what it has not
  // read yet, our close frame included: the peer would see 1006 instead of 1009. The server
  // sends its close frame and FIN and keeps reading (and discarding) instead.
  it('a peer still sending after the server failed the connection (1009) still reads the close frame: no reset', { timeout: 20_000 }, async () => {
    const t = await startServer({ limits: { maxMessageBytes: 1024 }, handler: echoHandler() });
    const raw = await RawClient.open(t.port);
    raw.pause(); // the close frame waits in the peer's kernel buffer, unread, while it goes on sending
    try {
      raw.write(clientFrame(0x2, Buffer.alloc(64 * 1024, 1)));
      await delay(200);
      raw.write(clientFrame(0x2, Buffer.alloc(64 * 1024, 2)));
      await delay(200);
      raw.resume();
      assert.equal((await raw.waitClose(5000)).code, 1009);
    } finally {
      raw.destroy();
      await t.server.close();
    }
  });

  // RFC 6455 section 7.1.1: once the closing handshake is complete the server closes the TCP
  // connection first. The peers here keep their own side open (allowHalfOpen, no FIN of theirs):
  // the server must not wait for it until closeTimeoutMs, it closes at once, cleanly, with no reset.
  for (const initiator of ['server', 'peer'] as const) {
    it(`after a complete closing handshake begun by the ${initiator}, the server closes TCP at once without waiting for the peer's FIN: clean, and no reset`, { timeout: 30_000 }, async () => {
      const { t, sessions, closes } = await serverWithSessions({ closeTimeoutMs: 20_000 });
      const raw = await RawClient.open(t.port);
      raw.socket.allowHalfOpen = true;
      const resets: string[] = [];
      raw.socket.on('error', (e: NodeJS.ErrnoException) => resets.push(e.code ?? e.message));
      try {
        await waitUntil(() => sessions.length === 1, 5000, 'the session');
        const s = sessions[0];
        if (initiator === 'server') {
          s.close(4003, 'done');
          assert.deepEqual(await raw.waitClose(5000), { code: 4003, reason: 'done' });
          raw.write(clientFrame(0x8, closePayload(4003, 'done')));
        } else {
          raw.write(clientFrame(0x8, closePayload(4004, 'leaving')));
          assert.equal((await raw.waitClose(5000)).code, 4004); // the code echoed back (section 5.5.1)
        }
        // Well before the 20 s close timeout: the server did not wait for a FIN that never comes.
        const info = await withTimeout(s.closed, 5000, "the server's close");
        assert.equal(info.wasClean, true);
        assert.equal(info.code, initiator === 'server' ? 4003 : 4004);
        assert.equal(info.error, undefined);
        assert.deepEqual(closes, [info]);
        // The peer sees the server's FIN after the close frame, and nothing else.
        await raw.waitFor(() => raw.gotEnd, 5000, "the server's FIN");
        assert.equal(raw.frames.filter((f) => f.opcode === 0x8).length, 1);
        assert.equal(raw.frames.length, 1);
        raw.socket.end();
        await raw.waitClosed(5000);
        assert.deepEqual(resets, []);
      } finally {
        raw.destroy();
        await t.server.close();
      }
    });
  }

  it('a client whose closing handshake is complete gives the server closeTimeoutMs to close TCP, then drops it: the close stays clean', async () => {
    // A server that answers the close frame but never closes its side of the TCP connection
    // (halfOpen: the client's FIN does not end it either).
    const { server: lingering, watch } = await watchedRawServer({
      halfOpen: true,
      onFrames: (socket, frames) => {
        if (frames.some((f) => f.opcode === 0x8) && !socket.writableEnded) socket.write(serverFrame(0x8, closePayload(4005, 'ok')));
      },
    });
    try {
      const c = await connect(`ws://127.0.0.1:${lingering.port}/`, { keepalive: null, closeTimeoutMs: 300 });
      c.close(4005, 'ok');
      const info = await withTimeout(c.closed, 3000, 'the client to give up on the TCP close');
      assert.equal(info.wasClean, true);
      assert.equal(info.code, 4005);
      assert.equal(info.error, undefined);
      // The client has sent FIN and then released its socket: bytes the server sends now are
      // answered with a reset, which closes the server's socket. (A client still holding the
      // connection open would read and discard them, and the server's socket would stay open.)
      assert.equal(watch.closed, false);
      const poke = setInterval(() => watch.socket?.write('x'), 20);
      try {
        await waitUntil(() => watch.closed, 3000, "the client's socket to be gone (the server's writes reset)");
      } finally {
        clearInterval(poke);
      }
    } finally {
      await lingering.close();
    }
  });

  it('the same on the client: a server that never answers its close frame is dropped after closeTimeoutMs: 1006, ERR_CLOSE_TIMEOUT', async () => {
    const { server: mute, watch } = await watchedRawServer();
    try {
      const c = await connect(`ws://127.0.0.1:${mute.port}/`, { keepalive: null, closeTimeoutMs: 300 });
      c.close(4002, 'answer me');
      const info = await withTimeout(c.closed, 3000, 'the close timeout');
      assert.equal(info.code, 1006);
      assert.equal(info.wasClean, false);
      assert.ok(info.error instanceof TimeoutError, `a TimeoutError, not ${String(info.error)}`);
      assert.equal(info.error.code, 'ERR_CLOSE_TIMEOUT');
      // The close frame did go out (masked, as from a client), and the client dropped the connection.
      assert.deepEqual(
        watch.frames.map((f) => [f.opcode, f.masked]),
        [[0x8, true]],
      );
      assert.deepEqual(decodeClose(watch.frames[0]), { code: 4002, reason: 'answer me' });
      await waitUntil(() => watch.closed, 3000, 'the client to drop the TCP connection');
    } finally {
      await mute.close();
    }
  });
});
