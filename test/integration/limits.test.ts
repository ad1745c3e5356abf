/**
 * Two core limits over real sockets on 127.0.0.1, with the default limits:
 *
 * - Fragmentation (RFC 6455 section 5.4) is no offence: a 4 MiB text and a
 *   4 MiB binary message in fragments of 64 bytes (65,536 and more frames,
 *   Autobahn 9.3.1 and 9.4.1) pass both ways, content checked byte for byte.
 *   Each frame counts as at least MIN_FRAME_CHARGE (64) bytes against
 *   maxMessageBytes (16 MiB), so such a message is charged 4 MiB; there is
 *   no count limit by default (maxFragments).
 * - Control-frame floods are: a peer sending pings faster than
 *   maxControlFramesPerSecond (1000) allows is failed with 1008 (policy
 *   violation, section 7.4.1); the handler's onError gets the
 *   LimitExceededError before onClose; another connection on the same
 *   server is unaffected. The same holds for a client flooded by its server.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, LimitExceededError, type CloseInfo, type Message, type ServerSession, type WebSocketError } from '../../src/index.js';
import { DEFAULT_LIMITS, MIN_FRAME_CHARGE } from '../../src/core/index.js';
import {
  RawClient,
  RawFrameDecoder,
  clientFrame,
  decodeClose,
  delay,
  echoHandler,
  openPair,
  pseudoRandomBytes,
  serverFrame,
  startRawServer,
  startServer,
  switchingProtocols,
  utf8Text,
  waitUntil,
  withTimeout,
} from '../helpers/ws-pair.js';

const MiB = 1024 * 1024;
const FRAGMENT = 64;

/** `payload` cut into pieces of FRAGMENT bytes. */
function pieces(payload: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let p = 0; p < payload.length; p += FRAGMENT) out.push(payload.subarray(p, p + FRAGMENT));
  return out;
}

/** One message as frames of the given pieces: opcode on the first, FIN on the last. */
function fragmented(opcode: number, parts: Buffer[], encode: (opcode: number, payload: Buffer, fin: boolean) => Buffer): Buffer {
  return Buffer.concat(parts.map((p, i) => encode(i === 0 ? opcode : 0x0, p, i === parts.length - 1)));
}

const MESSAGES: Array<{ name: string; binary: boolean; payload: Buffer }> = [
  { name: '4 MiB text', binary: false, payload: Buffer.from(utf8Text(4 * MiB, 7), 'utf8') },
  { name: '4 MiB binary', binary: true, payload: pseudoRandomBytes(4 * MiB, 8) },
];

async function nextMessage(inbox: AsyncIterableIterator<Message>, what: string): Promise<Message> {
  const r = await withTimeout(inbox.next(), 20_000, what);
  assert.equal(r.done, false, `${what}: the inbox ended`);
  return r.value as Message;
}

describe('a message in 64-byte fragments passes the default limits (Autobahn 9.3.1, 9.4.1)', () => {
  it('the defaults: no count limit, each frame charged at least 64 bytes of 16 MiB', () => {
    assert.equal(DEFAULT_LIMITS.maxFragments, Infinity);
    assert.equal(DEFAULT_LIMITS.maxMessageBytes, 16 * MiB);
    assert.equal(MIN_FRAME_CHARGE, FRAGMENT);
  });

  for (const m of MESSAGES) {
    it(`${m.name}: a raw client sends it in masked 64-byte fragments plus empty ones; the sockeye server gets it whole and its echo is exact`, { timeout: 60_000 }, async () => {
      const received: Message[] = [];
      const t = await startServer({
        handler: echoHandler({
          onMessage(s, msg) {
            received.push(msg);
            s.send(msg.data, { binary: msg.binary });
          },
        }),
      });
      const raw = await RawClient.open(t.port);
      try {
        // 65,536 fragments of 64 bytes, then three empty ones, the last with FIN: 65,539 frames.
        const parts = [...pieces(m.payload), Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0)];
        assert.equal(parts.length, 65_539);
        raw.write(fragmented(m.binary ? 0x2 : 0x1, parts, (op, p, fin) => clientFrame(op, p, fin)));
        await raw.waitFrames(1, 30_000);
        const echo = raw.frames[0];
        assert.equal(echo.opcode, m.binary ? 0x2 : 0x1, `not a close: ${echo.opcode === 0x8 ? decodeClose(echo).reason : ''}`);
        assert.equal(echo.fin, true);
        assert.ok(echo.payload.equals(m.payload), 'the echo is the message, byte for byte');
        assert.equal(received.length, 1);
        assert.equal(received[0].binary, m.binary);
        assert.ok(received[0].data.equals(m.payload));
      } finally {
        raw.destroy();
        await t.server.close();
      }
    });

    it(`${m.name}: a raw server sends it in unmasked 64-byte fragments; the sockeye client gets it whole`, { timeout: 60_000 }, async () => {
      const parts = pieces(m.payload);
      const frames = fragmented(m.binary ? 0x2 : 0x1, parts, (op, p, fin) => serverFrame(op, p, fin));
      const server = await startRawServer((socket, req) => {
        socket.write(switchingProtocols(req.key));
        socket.write(frames);
      });
      const client = await connect(`ws://127.0.0.1:${server.port}/`, { keepalive: null });
      try {
        const msg = await nextMessage(client.messages(), 'the fragmented message');
        assert.equal(msg.binary, m.binary);
        assert.ok(msg.data.equals(m.payload), 'the message, byte for byte');
        assert.equal(client.state, 'open');
      } finally {
        client.terminate();
        await server.close();
      }
    });

    it(`${m.name}: a sockeye server streams it with 64-byte writes (session.stream()); the sockeye client gets it whole, and the same back`, { timeout: 60_000 }, async () => {
      const echoed: Message[] = [];
      const p = await openPair({ handler: { onMessage: (_s, msg) => void echoed.push(msg) } });
      try {
        const inbox = p.client.messages();
        // Server to client: 65,536 writes of 64 bytes and an empty end(): 65,537 frames.
        const w = p.serverSession.stream({ binary: m.binary });
        for (const part of pieces(m.payload)) assert.notEqual(w.write(part), 'dropped');
        assert.notEqual(w.end(), 'dropped');
        const msg = await nextMessage(inbox, 'the streamed message');
        assert.equal(msg.binary, m.binary);
        assert.ok(msg.data.equals(m.payload), 'server to client, byte for byte');
        // Client to server, the same way.
        const cw = p.client.stream({ binary: m.binary });
        for (const part of pieces(m.payload)) assert.notEqual(cw.write(part), 'dropped');
        assert.notEqual(cw.end(), 'dropped');
        await waitUntil(() => echoed.length === 1 || p.serverSession.state !== 'open', 30_000, 'the message at the server');
        assert.equal(echoed.length, 1, `the server session is ${p.serverSession.state}`);
        assert.equal(echoed[0].binary, m.binary);
        assert.ok(echoed[0].data.equals(m.payload), 'client to server, byte for byte');
      } finally {
        await p.cleanup();
      }
    });
  }
});

/** `count` pings from a client (masked), payloads 'p<seq>'. */
function clientPings(first: number, count: number): Buffer {
  return Buffer.concat(Array.from({ length: count }, (_, i) => clientFrame(0x9, `p${first + i}`)));
}

describe('a control-frame flood is failed with 1008 (maxControlFramesPerSecond, default 1000)', () => {
  it('a raw client flooding pings: close 1008, onError gets the LimitExceededError before onClose, another client is unaffected', { timeout: 30_000 }, async () => {
    assert.equal(DEFAULT_LIMITS.maxControlFramesPerSecond, 1000);
    const events: string[] = [];
    let error: WebSocketError | undefined;
    let closeInfo: CloseInfo | undefined;
    const t = await startServer({
      handler: echoHandler({
        onError(s: ServerSession, e) {
          if (s.request.path !== '/flood') return;
          events.push(`error ${e.code}`);
          error = e;
        },
        onClose(s: ServerSession, info) {
          if (s.request.path !== '/flood') return;
          events.push(`close ${info.code}`);
          closeInfo = info;
        },
      }),
    });
    const good = await connect(t.url('/good'), { keepalive: null });
    const raw = await RawClient.open(t.port, { path: '/flood' });
    try {
      const inbox = good.messages();
      assert.notEqual(good.send('before'), 'dropped');
      assert.equal((await nextMessage(inbox, 'the echo before')).text, 'before');
      // Batches of 2,000 pings, each write after the previous one is taken, until the server closes.
      const closed = () => raw.frames.some((f) => f.opcode === 0x8) || raw.isClosed;
      for (let first = 0; first < 100_000 && !closed(); first += 2000) {
        raw.write(clientPings(first, 2000));
        await delay(1);
      }
      const close = await raw.waitClose(10_000);
      assert.equal(close.code, 1008, close.reason);
      assert.match(close.reason, /control frames/);
      const pongs = raw.frames.filter((f) => f.opcode === 0xa);
      assert.ok(pongs.length >= 1000, `${pongs.length} pongs: the first 1000 pings are within the limit`);
      pongs.forEach((f, i) => assert.equal(f.payload.toString(), `p${i}`, 'pongs answer the pings in order'));
      assert.equal(raw.frames[raw.frames.length - 1].opcode, 0x8, 'nothing after the close frame');
      await raw.waitClosed(10_000);
      await waitUntil(() => closeInfo !== undefined, 5000, "the flooder's onClose");
      // The transport reports a failing connection's error to onError, then onClose.
      assert.deepEqual(events, ['error ERR_LIMIT_MAX_CONTROL_FRAMES_PER_SECOND', 'close 1008']);
      assert.ok(error instanceof LimitExceededError);
      assert.equal(error.limit, 'maxControlFramesPerSecond');
      assert.equal(error.closeCode, 1008);
      assert.equal(closeInfo!.error, error, 'onClose carries the same error');
      assert.equal(closeInfo!.wasClean, false);
      // The other connection never noticed.
      assert.equal(good.state, 'open');
      assert.notEqual(good.send('after'), 'dropped');
      assert.equal((await nextMessage(inbox, 'the echo after')).text, 'after');
      assert.equal(t.server.clients.size, 1);
    } finally {
      raw.destroy();
      good.terminate();
      await t.server.close();
    }
  });

  it('a raw server flooding pings to a sockeye client: the client fails with 1008 (masked close frame), onError before onClose', { timeout: 30_000 }, async () => {
    const decoder = new RawFrameDecoder();
    const server = await startRawServer((socket, req) => {
      socket.on('data', (d: Buffer) => decoder.push(d));
      socket.write(switchingProtocols(req.key));
      // 5,000 pings at once: more than the bucket's 1000 plus what it gains while they are parsed.
      socket.write(Buffer.concat(Array.from({ length: 5000 }, (_, i) => serverFrame(0x9, `s${i}`))));
    });
    const events: string[] = [];
    let error: WebSocketError | undefined;
    const client = await connect(`ws://127.0.0.1:${server.port}/`, {
      keepalive: null,
      handler: {
        onError(_s, e) {
          events.push(`error ${e.code}`);
          error = e;
        },
        onClose(_s, info) {
          events.push(`close ${info.code}`);
        },
      },
    });
    try {
      const info = await withTimeout(client.closed, 10_000, 'the client to close');
      assert.equal(info.code, 1008);
      assert.deepEqual(events, ['error ERR_LIMIT_MAX_CONTROL_FRAMES_PER_SECOND', 'close 1008']);
      assert.ok(error instanceof LimitExceededError);
      assert.equal(info.error, error);
      await waitUntil(() => decoder.frames.some((f) => f.opcode === 0x8), 5000, "the client's close frame");
      const close = decoder.frames.find((f) => f.opcode === 0x8)!;
      assert.equal(close.masked, true, 'a client masks its close frame (section 5.3)');
      assert.equal(decodeClose(close).code, 1008);
      const pongs = decoder.frames.filter((f) => f.opcode === 0xa);
      assert.ok(pongs.length >= 1000 && pongs.length < 5000, `${pongs.length} pongs`);
    } finally {
      client.terminate();
      await server.close();
    }
  });
});
