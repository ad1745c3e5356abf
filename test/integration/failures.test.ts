/**
 * Failures stay with the connection that caused them (invariant S3):
 *
 * - a handler that throws closes only its own session, with 1011 (RFC 6455
 *   section 7.4.1, "internal error"), and the error goes to onError;
 * - a peer that breaks the protocol gets a close frame with the right code
 *   (1002 protocol error, 1007 bad UTF-8, 1009 too big, 1008 policy) and its
 *   TCP connection is ended (section 7.1.7, "Fail the WebSocket Connection");
 *
 * while another, well-behaved client on the same server keeps echoing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, TransportError, WebSocketError, type ClientSession, type CloseInfo, type Message, type ServerSession } from '../../src/index.js';
import { RawClient, closePayload, encodeRawFrame, startServer, waitUntil, withTimeout, type TestServer } from '../helpers/ws-pair.js';

/** The session data of the handler-failure tests: the ?name= of each client. */
interface Named {
  name: string | null;
}

async function echoes(c: ClientSession, text: string): Promise<void> {
  assert.notEqual(c.send(text), 'dropped');
  const r = await withTimeout(c.messages().next(), 5000, `echo of ${text}`);
  assert.equal(r.done, false, 'the good client was closed');
  assert.equal((r.value as Message).text, text);
}

describe('a handler that throws', () => {
  let t: TestServer;
  const reported: Array<{ error: unknown; session: ServerSession | undefined }> = [];
  const closes = new Map<string, CloseInfo>();

  before(async () => {
    t = await startServer({
      onError(error, session) {
        reported.push({ error, session });
      },
      handler: {
        onOpen(s: ServerSession<Named>) {
          s.data.name = s.request.query.get('name');
          if (s.data.name === 'throw-on-open') throw new Error('open failed');
        },
        onMessage(s: ServerSession<Named>, m) {
          if (m.text === 'boom') throw new Error(`kaboom from ${String(s.data.name)}`);
          s.send(m.data, { binary: m.binary });
        },
        onClose(s: ServerSession<Named>, info) {
          closes.set(String(s.data.name), info);
          if (s.data.name === 'throw-on-close') throw new Error('close failed');
        },
      },
    });
  });
  after(async () => {
    await t.server.close();
  });

  it('in onMessage: that session closes with 1011, onError gets the error and the session, others go on', async () => {
    const a = await connect(t.url('/?name=a'), { keepalive: null });
    const b = await connect(t.url('/?name=b'), { keepalive: null });
    try {
      await echoes(a, 'a1');
      await echoes(b, 'b1');
      const before = reported.length;
      a.send('boom');
      const info = await withTimeout(a.closed, 5000, 'a closed');
      assert.equal(info.code, 1011);
      await waitUntil(() => closes.has('a'), 5000, "the server's onClose for a");
      assert.equal(closes.get('a')!.code, 1011);
      const r = reported.slice(before);
      assert.equal(r.length, 1);
      assert.ok(r[0].error instanceof Error);
      assert.equal((r[0].error as Error).message, 'kaboom from a');
      assert.equal((r[0].session?.data as Named | undefined)?.name, 'a');
      // b never noticed.
      await echoes(b, 'b2');
      await echoes(b, 'b3');
      assert.equal(b.state, 'open');
    } finally {
      a.terminate();
      b.terminate();
    }
  });

  it('in onOpen: that session closes with 1011 and the error is reported', async () => {
    const before = reported.length;
    const c = await connect(t.url('/?name=throw-on-open'), { keepalive: null });
    const info = await withTimeout(c.closed, 5000, 'closed');
    assert.equal(info.code, 1011);
    await waitUntil(() => reported.length > before, 5000, 'the report');
    assert.equal((reported[before].error as Error).message, 'open failed');
  });

  it('in onClose: the error is reported and nothing else breaks', async () => {
    const before = reported.length;
    const c = await connect(t.url('/?name=throw-on-close'), { keepalive: null });
    const other = await connect(t.url('/?name=other'), { keepalive: null });
    try {
      c.close(1000);
      assert.equal((await withTimeout(c.closed, 5000, 'closed')).code, 1000);
      await waitUntil(() => reported.length > before, 5000, 'the report');
      assert.equal((reported[before].error as Error).message, 'close failed');
      await echoes(other, 'still here');
    } finally {
      other.terminate();
    }
  });
});

describe('protocol violations from a raw socket', () => {
  let t: TestServer;
  let good: ClientSession;
  const serverCloses: CloseInfo[] = [];

  before(async () => {
    t = await startServer({
      limits: { maxMessageBytes: 1024, maxFragments: 8 },
      handler: {
        onMessage(s, m) {
          s.send(m.data, { binary: m.binary });
        },
        onClose(_s, info) {
          serverCloses.push(info);
        },
      },
    });
    good = await connect(t.url(), { keepalive: null });
  });
  after(async () => {
    good.terminate();
    await t.server.close();
  });

  const masked = (op: number, payload: Uint8Array | string, fin = true, rsv = 0) => encodeRawFrame(op, payload, { fin, rsv });
  const big = (n: number) => Buffer.alloc(n, 0x61);
  /** A masked FIN frame header announcing `length` bytes, with no payload after it. */
  const headerOnly = (op: number, length: number) => {
    const h = Buffer.alloc(14);
    h[0] = 0x80 | op;
    h[1] = 0x80 | 127;
    h.writeBigUInt64BE(BigInt(length), 2);
    h.set([1, 2, 3, 4], 10);
    return h;
  };

  const cases: Array<[string, number, Buffer]> = [
    ['an unmasked client frame (section 5.1)', 1002, encodeRawFrame(0x1, 'no mask', { mask: null })],
    ['invalid UTF-8 in a text message (section 8.1)', 1007, masked(0x1, Buffer.from([0x68, 0x69, 0xff, 0xfe]))],
    ['invalid UTF-8 split across fragments', 1007, Buffer.concat([masked(0x1, Buffer.from([0xe2, 0x82]), false), masked(0x0, Buffer.from([0x41]))])],
    ['a text message ending inside a character', 1007, masked(0x1, Buffer.from([0x61, 0xe2, 0x82]))],
    ['a message over maxMessageBytes in one frame', 1009, masked(0x2, big(2000))],
    ['a message over maxMessageBytes in two fragments', 1009, Buffer.concat([masked(0x2, big(600), false), masked(0x0, big(600))])],
    // Refused on the header alone: the 10 MiB payload is never sent (S3: no waiting for, or buffering of, it).
    ['the header of a 10 MiB frame', 1009, headerOnly(0x2, 10 * 1024 * 1024)],
    ['more fragments than maxFragments', 1008, Buffer.concat([masked(0x2, 'a', false), ...Array.from({ length: 9 }, () => masked(0x0, 'b', false)), masked(0x0, 'c')])],
    ['a reserved opcode (section 5.2)', 1002, masked(0x3, 'x')],
    ['RSV1 without a negotiated extension (section 5.2)', 1002, masked(0x1, 'x', true, 4)],
    ['a control frame longer than 125 bytes (section 5.5)', 1002, masked(0x9, big(126))],
    ['a fragmented control frame (section 5.5)', 1002, masked(0x9, 'x', false)],
    ['a continuation frame with no message to continue (section 5.4)', 1002, masked(0x0, 'x')],
    ['a new message inside a fragmented one (section 5.4)', 1002, Buffer.concat([masked(0x1, 'a', false), masked(0x1, 'b')])],
    ['a close frame with a 1-byte payload (section 5.5.1)', 1002, masked(0x8, Buffer.from([0x03]))],
    ['a close frame with a code that may not be sent (1005, section 7.4.1)', 1002, masked(0x8, closePayload(1005))],
  ];

  for (const [what, code, bytes] of cases) {
    it(`${what} -> close ${code}, TCP ends, another client keeps echoing`, async () => {
      const raw = await RawClient.open(t.port);
      try {
        await waitUntil(() => t.server.clients.size === 2, 5000, 'the raw session');
        const before = serverCloses.length;
        raw.write(bytes);
        const close = await raw.waitClose(5000);
        assert.equal(close.code, code, `close reason: ${close.reason}`);
        // Nothing but the close frame came back.
        assert.deepEqual(
          raw.frames.map((f) => f.opcode),
          [0x8],
        );
        // The server ends the TCP connection itself (section 7.1.7): no answer from us is needed.
        await raw.waitClosed(5000);
        await waitUntil(() => serverCloses.length > before, 5000, "the server's onClose");
        const info = serverCloses[serverCloses.length - 1];
        assert.equal(info.code, code);
        assert.equal(info.wasClean, false);
        assert.ok(info.error, 'the failure carries its error');
        assert.equal(info.error.closeCode, code);
        assert.equal(t.server.clients.size, 1);
        await echoes(good, `after: ${what}`);
      } finally {
        raw.destroy();
      }
    });
  }
});

describe('listen() on a port that is taken', () => {
  it('rejects with a TransportError (ERR_LISTEN) whose cause is Node\'s error, and a later listen() on a free port works', async () => {
    const first = await startServer({ handler: {} });
    const second = createServer({ handler: {}, keepalive: null });
    try {
      const err = await second.listen(first.port, '127.0.0.1').then(
        () => null,
        (e: unknown) => e,
      );
      assert.ok(err instanceof TransportError, `a TransportError, not ${String(err)}`);
      assert.ok(err instanceof WebSocketError);
      assert.equal(err.code, 'ERR_LISTEN');
      assert.equal((err.cause as NodeJS.ErrnoException).code, 'EADDRINUSE');
      assert.match(err.message, /EADDRINUSE/);
      // The failed attempt leaves the server able to listen elsewhere.
      const addr = await second.listen(0, '127.0.0.1');
      assert.ok(addr.port > 0 && addr.port !== first.port);
    } finally {
      await second.close();
      await first.server.close();
    }
  });
});

describe('a client handler that throws', () => {
  it('closes that client session with 1011, and connect()\'s onError gets the error and the session', async () => {
    const serverCloses: CloseInfo[] = [];
    const t = await startServer({
      handler: {
        onOpen(s) {
          s.send('boom');
        },
        onClose(_s, info) {
          serverCloses.push(info);
        },
      },
    });
    const reported: Array<{ error: unknown; session: ClientSession }> = [];
    let c: ClientSession | null = null;
    try {
      c = await connect(t.url(), {
        keepalive: null,
        handler: {
          onMessage(_s, m) {
            throw new Error(`client handler failed on ${m.text}`);
          },
        },
        onError(error, session) {
          reported.push({ error, session });
        },
      });
      const info = await withTimeout(c.closed, 5000, 'the client to close');
      assert.equal(info.code, 1011);
      assert.equal(c.state, 'closed');
      // The server was told why (section 7.4.1, 1011: "an unexpected condition").
      await waitUntil(() => serverCloses.length === 1, 5000, "the server's onClose");
      assert.equal(serverCloses[0].code, 1011);
      assert.equal(reported.length, 1);
      assert.ok(reported[0].error instanceof Error);
      assert.equal(reported[0].error.message, 'client handler failed on boom');
      assert.equal(reported[0].session, c);
    } finally {
      c?.terminate();
      await t.server.close();
    }
  });
});
