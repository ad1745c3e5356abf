/**
 * The flow-control API over real sockets (docs/api.md, "Sessions": send()
 * statuses, bufferedAmount, requestWritable()):
 *
 * - send() says 'sent' when nothing waits, 'queued' while bufferedAmount is
 *   at or under the high-water mark, 'backpressure' above it, and 'dropped'
 *   (with a LimitExceededError to onError) past maxQueuedBytes; a dropped
 *   send costs nothing else: the connection carries on.
 * - requestWritable() gives exactly one onWritable per registered request,
 *   never synchronously, never without a request (invariant S2: the JSON
 *   corruption in docs/architecture.md came from a writable callback the
 *   application had not asked for).
 *
 * The slow peer is a raw socket that completes the handshake and then stops
 * reading, so the kernel buffers fill and the server's queue grows.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, LimitExceededError, InvalidStateError, type Message, type SendStatus, type ServerSession, type WebSocketError, type WritableInfo } from '../../src/index.js';
import { RawClient, clientFrame, delay, echoHandler, numbered, openPair, startServer, waitUntil, withTimeout } from '../helpers/ws-pair.js';

const KiB = 1024;

/** Starts a server and a raw client that completes the handshake and then stops reading. */
async function stalledPeer(limits: { highWaterMark: number; maxQueuedBytes: number }, extra: { onError?: (s: ServerSession, e: WebSocketError) => void; onPing?: (s: ServerSession, d: Buffer) => void; onWritable?: (s: ServerSession, i: WritableInfo) => void } = {}) {
  let resolveSession!: (s: ServerSession) => void;
  const sessionP = new Promise<ServerSession>((r) => (resolveSession = r));
  const t = await startServer({
    limits,
    handler: echoHandler({
      onOpen(s) {
        resolveSession(s);
      },
      ...extra,
    }),
  });
  const raw = await RawClient.open(t.port);
  raw.pause();
  const session = await withTimeout(sessionP, 5000, 'the session');
  return { t, raw, session };
}

describe('send() statuses', () => {
  it("'sent' when the connection is idle, both sides", async () => {
    const p = await openPair({});
    try {
      assert.equal(p.serverSession.bufferedAmount, 0);
      assert.equal(p.serverSession.send('hello'), 'sent');
      assert.equal(p.client.bufferedAmount, 0);
      assert.equal(p.client.send(Buffer.from('hi')), 'sent');
      const inbox = p.client.messages();
      // The server echoes the client's message; the first to arrive is the server's own.
      assert.equal((await withTimeout(inbox.next(), 5000, 'message')).value?.text, 'hello');
      assert.deepEqual((await withTimeout(inbox.next(), 5000, 'echo')).value?.data, Buffer.from('hi'));
    } finally {
      await p.cleanup();
    }
  });

  it("'queued' up to the high-water mark, then 'backpressure'; the peer gets every message once it reads; reading never waits for writing", { timeout: 60_000 }, async () => {
    const hwm = 64 * KiB;
    const pings: string[] = [];
    const writable: Array<WritableInfo & { buffered: number }> = [];
    const { t, raw, session } = await stalledPeer(
      { highWaterMark: hwm, maxQueuedBytes: 256 * 1024 * KiB },
      {
        onPing(_s, d) {
          pings.push(d.toString());
        },
        onWritable(s, info) {
          writable.push({ ...info, buffered: s.bufferedAmount });
        },
      },
    );
    try {
      const size = 16 * KiB;
      const statuses: SendStatus[] = [];
      let sent = 0;
      // Bounded: the kernel's socket buffers on loopback take a few MiB at most.
      while (sent < 20_000) {
        const st = session.send(numbered(sent, size));
        statuses.push(st);
        sent++;
        const b = session.bufferedAmount;
        if (st === 'sent') assert.equal(b, 0, `'sent' with ${b} bytes buffered`);
        if (st === 'queued') assert.ok(b > 0 && b <= hwm, `'queued' with ${b} bytes buffered`);
        if (st === 'backpressure') {
          assert.ok(b > hwm, `'backpressure' with ${b} bytes buffered`);
          break;
        }
        assert.notEqual(st, 'dropped');
        // Let the socket move bytes to the kernel between sends, as a real producer would.
        if (sent % 16 === 0) await new Promise((r) => setImmediate(r));
      }
      assert.equal(statuses[0], 'sent');
      assert.equal(statuses[statuses.length - 1], 'backpressure', `no backpressure after ${sent} sends`);
      // More sends are still accepted (under maxQueuedBytes), and still say 'backpressure'.
      for (let i = 0; i < 4; i++) {
        assert.equal(session.send(numbered(sent, size)), 'backpressure');
        sent++;
      }

      // S1: while the outbound side is stuck, the session still reads: a ping gets to the handler.
      raw.write(clientFrame(0x9, 'still reading?'));
      await waitUntil(() => pings.length === 1, 5000, 'the ping at the blocked server');
      assert.deepEqual(pings, ['still reading?']);

      // A writable request cannot be answered while the peer does not read.
      assert.equal(session.requestWritable(), true);
      await delay(100);
      assert.equal(writable.length, 0, 'onWritable fired while data was still waiting');

      raw.resume();
      await raw.waitFor(() => raw.frames.filter((f) => f.opcode === 0x2).length === sent, 30_000, `${sent} messages at the peer`);
      const data = raw.frames.filter((f) => f.opcode === 0x2);
      for (let i = 0; i < sent; i++) {
        assert.equal(data[i].payload.readUInt32BE(0), i, `message ${i} out of order`);
        assert.equal(data[i].payload.length, size);
      }
      // The pong (section 5.5.3) went out too, between data frames.
      assert.ok(raw.frames.some((f) => f.opcode === 0xa && f.payload.toString() === 'still reading?'));
      await waitUntil(() => writable.length === 1, 5000, 'onWritable after the drain');
      // It fires once everything queued went to the kernel.
      assert.deepEqual(writable, [{ request: 1, buffered: 0 }]);
      assert.equal(session.bufferedAmount, 0);
      assert.equal(session.send('idle again'), 'sent');
    } finally {
      raw.destroy();
      await t.server.close();
    }
  });

  it("past maxQueuedBytes send() says 'dropped' and onError gets a LimitExceededError; the connection goes on", { timeout: 60_000 }, async () => {
    const errors: WebSocketError[] = [];
    const { t, raw, session } = await stalledPeer(
      { highWaterMark: 64 * KiB, maxQueuedBytes: 512 * KiB },
      {
        onError(_s, e) {
          errors.push(e);
        },
      },
    );
    try {
      const size = 32 * KiB;
      let accepted = 0;
      let first: SendStatus = 'sent';
      while (accepted < 20_000) {
        first = session.send(numbered(accepted, size));
        if (first === 'dropped') break;
        accepted++;
        if (accepted % 16 === 0) await new Promise((r) => setImmediate(r));
      }
      assert.equal(first, 'dropped', `nothing dropped after ${accepted} sends`);
      assert.ok(session.bufferedAmount + size > 512 * KiB, 'dropped below the limit');
      // Each dropped send is reported, and the connection stays open.
      assert.equal(session.send(numbered(999_999, size)), 'dropped');
      assert.equal(errors.length, 2);
      for (const e of errors) {
        assert.ok(e instanceof LimitExceededError, `got ${e?.constructor?.name}`);
        assert.equal(e.code, 'ERR_LIMIT_MAX_QUEUED_BYTES');
        assert.equal(e.limit, 'maxQueuedBytes');
      }
      assert.equal(session.state, 'open');

      raw.resume();
      await raw.waitFor(() => raw.frames.length >= accepted, 30_000, `${accepted} messages at the peer`);
      await delay(50); // let anything that should not exist arrive
      const seqs = raw.frames.filter((f) => f.opcode === 0x2).map((f) => f.payload.readUInt32BE(0));
      assert.deepEqual(
        seqs,
        Array.from({ length: accepted }, (_, i) => i),
        'the peer must get exactly the accepted messages, in order',
      );
      // The session is alive both ways: a new send goes out, and an echo comes back.
      await waitUntil(() => session.bufferedAmount === 0, 5000, 'the queue to drain');
      assert.equal(session.send('after the drops'), 'sent');
      raw.write(clientFrame(0x1, 'echo me'));
      await raw.waitFor(() => raw.frames.some((f) => f.opcode === 0x1 && f.payload.toString() === 'echo me'), 5000, 'the echo');
      assert.ok(raw.frames.some((f) => f.opcode === 0x1 && f.payload.toString() === 'after the drops'));
      assert.equal(errors.length, 2, 'no further errors');
    } finally {
      raw.destroy();
      await t.server.close();
    }
  });
});

describe('requestWritable()', () => {
  it('fires onWritable once per registered request, never synchronously, never without a request', async () => {
    const calls: Array<{ info: WritableInfo; duringRequest: boolean }> = [];
    let inRequest = false;
    const p = await openPair({
      handler: echoHandler({
        onWritable(_s, info) {
          calls.push({ info, duringRequest: inRequest });
        },
      }),
    });
    const s = p.serverSession;
    const inbox = p.client.messages();
    try {
      inRequest = true;
      assert.equal(s.requestWritable(), true);
      // A second request while one is pending does not stack.
      assert.equal(s.requestWritable(), false);
      inRequest = false;
      assert.equal(calls.length, 0, 'fired synchronously inside requestWritable()');
      await waitUntil(() => calls.length === 1, 5000, 'the first onWritable');

      // Traffic that drains the socket, pings and pongs: none of it may raise onWritable (invariant S2).
      const big = Buffer.alloc(4 * 1024 * KiB, 7);
      assert.notEqual(s.send(big), 'dropped');
      assert.equal((await withTimeout(inbox.next(), 10_000, 'big')).value?.data.length, big.length);
      p.client.send('echo');
      assert.equal((await withTimeout(inbox.next(), 5000, 'echo')).value?.text, 'echo');
      s.ping('x');
      p.client.ping('y');
      await delay(100);
      assert.equal(calls.length, 1, 'onWritable without a request');

      assert.equal(s.requestWritable(), true);
      await waitUntil(() => calls.length === 2, 5000, 'the second onWritable');
      await delay(50);
      assert.deepEqual(
        calls.map((c) => [c.info.request, c.duringRequest]),
        [
          [1, false],
          [2, false],
        ],
      );
      assert.equal(s.writableRequestCount, 2);
    } finally {
      await p.cleanup();
    }
  });

  it('a producer paced by onWritable sends every message once, in order (the dumb-increment pattern)', async () => {
    const total = 300;
    let calls = 0;
    const p = await openPair({
      handler: {
        onOpen(s: ServerSession<{ n: number }>) {
          s.data.n = 0;
          s.requestWritable();
        },
        onWritable(s: ServerSession<{ n: number }>) {
          calls++;
          const n = s.data.n;
          // 32 KiB each, so the socket really fills and drains on the way.
          const st = s.send(numbered(n, 32 * KiB));
          assert.notEqual(st, 'dropped');
          s.data.n = n + 1;
          if (n + 1 < total) s.requestWritable();
        },
      },
    });
    try {
      const inbox = p.client.messages();
      for (let i = 0; i < total; i++) {
        const r = await withTimeout(inbox.next(), 10_000, `message ${i}`);
        assert.equal((r.value as Message).data.readUInt32BE(0), i);
      }
      await delay(50);
      assert.equal(calls, total);
      assert.equal(p.serverSession.writableRequestCount, total);
    } finally {
      await p.cleanup();
    }
  });

  it('works on the client side too, and throws once the session is closed', async () => {
    let calls = 0;
    const p = await openPair({}, { handler: { onWritable: () => void calls++ } });
    try {
      assert.equal(p.client.requestWritable(), true);
      assert.equal(calls, 0);
      await waitUntil(() => calls === 1, 5000, 'the client onWritable');
      p.client.close();
      await withTimeout(p.client.closed, 5000, 'close');
      assert.throws(() => p.client.requestWritable(), InvalidStateError);
      assert.equal(p.client.send('late'), 'dropped');
      assert.equal(calls, 1);
    } finally {
      await p.cleanup();
    }
  });
});

describe('pauseReading()', () => {
  // The session starts reading when it is wired (Session.start), and neither connect() nor the
  // server's upgrade may resume the socket after that: it would undo a pause made in onOpen or right
  // after connect() resolved, and the paused side would read on regardless.
  it('a client paused right after connect() receives nothing until it resumes, then everything in order', { timeout: 30_000 }, async () => {
    const t = await startServer({ handler: { onOpen: (s) => { for (let i = 0; i < 2000; i++) s.send(numberedText(i)); } } });
    const got: string[] = [];
    const c = await connect(t.url(), { keepalive: null, handler: { onMessage: (_s, m) => void got.push(m.text) } });
    c.pauseReading();
    try {
      await delay(300);
      assert.equal(got.length, 0, 'a paused client delivers no message');
      c.resumeReading();
      await waitUntil(() => got.length === 2000, 10_000, 'all 2,000 messages after resumeReading()');
      got.forEach((text, i) => assert.equal(text, numberedText(i)));
    } finally {
      c.terminate();
      await t.server.close();
    }
  });

  it('a server session paused in onOpen receives nothing until resumeReading(), then everything in order', { timeout: 30_000 }, async () => {
    const got: string[] = [];
    let session: ServerSession | null = null;
    const t = await startServer({
      handler: {
        onOpen(s) {
          session = s;
          s.pauseReading();
        },
        onMessage: (_s, m) => void got.push(m.text),
      },
    });
    const c = await connect(t.url(), { keepalive: null });
    try {
      for (let i = 0; i < 100; i++) c.send(numberedText(i));
      await waitUntil(() => session !== null, 5000, 'the session');
      await delay(300);
      assert.equal(got.length, 0, 'a session paused in onOpen delivers no message');
      session!.resumeReading();
      await waitUntil(() => got.length === 100, 10_000, 'all 100 messages after resumeReading()');
      got.forEach((text, i) => assert.equal(text, numberedText(i)));
    } finally {
      c.terminate();
      await t.server.close();
    }
  });
});

function numberedText(i: number): string {
  return `message ${i} `.padEnd(1024, '.');
}

describe('requestWritable() on the client', () => {
  it('returns false while a request is pending; onWritable gets { request: 1 } then { request: 2 }, never synchronously', async () => {
    const calls: Array<{ info: WritableInfo; duringRequest: boolean }> = [];
    let inRequest = false;
    const p = await openPair(
      {},
      {
        handler: {
          onWritable(_s, info) {
            calls.push({ info, duringRequest: inRequest });
          },
        },
      },
    );
    try {
      inRequest = true;
      assert.equal(p.client.requestWritable(), true);
      assert.equal(p.client.requestWritable(), false, 'a second request while one is pending');
      inRequest = false;
      assert.equal(calls.length, 0, 'fired synchronously inside requestWritable()');
      await waitUntil(() => calls.length === 1, 5000, 'the first onWritable');
      await delay(50);
      assert.equal(calls.length, 1, 'the pending request answered both calls once');

      inRequest = true;
      assert.equal(p.client.requestWritable(), true);
      inRequest = false;
      assert.equal(calls.length, 1, 'fired synchronously inside requestWritable()');
      await waitUntil(() => calls.length === 2, 5000, 'the second onWritable');
      await delay(50);
      assert.deepEqual(
        calls.map((c) => [c.info, c.duringRequest]),
        [
          [{ request: 1 }, false],
          [{ request: 2 }, false],
        ],
      );
      assert.equal(p.client.writableRequestCount, 2);
    } finally {
      await p.cleanup();
    }
  });
});

describe('the messages() inbox', () => {
  it('is bounded: past 16 x highWaterMark the client stops reading until it catches up; then every message arrives, in order', { timeout: 30_000 }, async () => {
    const hwm = 64 * KiB;
    const size = 16 * KiB;
    // 32 MiB: far more than the inbox may hold (1 MiB) plus what the kernel buffers on loopback.
    const total = 2048;
    let resolveSession!: (s: ServerSession) => void;
    const sessionP = new Promise<ServerSession>((r) => (resolveSession = r));
    const t = await startServer({ limits: { maxQueuedBytes: 256 * 1024 * KiB }, handler: { onOpen: (s) => resolveSession(s) } });
    const c = await connect(t.url(), { keepalive: null, limits: { highWaterMark: hwm } });
    try {
      const s = await withTimeout(sessionP, 5000, 'the session');
      for (let i = 0; i < total; i++) assert.notEqual(s.send(numbered(i, size)), 'dropped');
      // Nobody iterates messages(): wait until the server's queue stops moving for 100 ms.
      const deadline = Date.now() + 10_000;
      let before: number;
      do {
        assert.ok(Date.now() < deadline, "timed out waiting for the server's queue to stop draining");
        before = s.bufferedAmount;
        await delay(100);
      } while (s.bufferedAmount !== before);
      // The client stopped reading: much of what was sent still waits at the server (the kernel holds a few MiB).
      assert.ok(s.bufferedAmount > (total * size) / 4, `only ${s.bufferedAmount} of ${total * size} bytes wait at the server: the client read on`);
      // How much the client holds for messages() (private: docs/api.md's bound is on it). It stops
      // reading once it holds more than 16 x highWaterMark; one socket read may bring a few more messages.
      const inboxBytes = (c as unknown as { inbox: { bytes: number } | null }).inbox?.bytes;
      assert.equal(typeof inboxBytes, 'number', 'Session.inbox (an Inbox) is gone: update this test');
      if (inboxBytes === undefined) return;
      assert.ok(inboxBytes > 16 * hwm && inboxBytes <= 16 * hwm + 256 * KiB, `the inbox holds ${inboxBytes} bytes; highWaterMark ${hwm}`);

      // Catching up: every message, once, in order.
      let n = 0;
      await withTimeout(
        (async () => {
          for await (const m of c.messages()) {
            assert.equal(m.data.length, size);
            assert.equal(m.data.readUInt32BE(0), n, `message ${n} out of order`);
            if (++n === total) break;
          }
        })(),
        10_000,
        `${total} messages`,
      );
      assert.equal(n, total);
      await waitUntil(() => s.bufferedAmount === 0, 5000, "the server's queue to drain");
      assert.equal(c.state, 'open');
    } finally {
      c.terminate();
      await t.server.close();
    }
  });
});
