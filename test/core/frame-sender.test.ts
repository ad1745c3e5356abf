/**
 * FrameSender (src/core/frame-sender.ts), the sending half of a connection:
 * what goes on the wire is what was sent when it was sent (invariant S2: a
 * copy unless the payload is owned), whole messages never go into an open
 * streamed message (RFC 6455 section 5.4), a stream's fragments are
 * Text/Binary then Continuation with FIN on the last only, pings and pongs
 * are urgent and at most 125 bytes (section 5.5), the close frame goes once
 * and behind queued data (S4), a client masks every frame with a fresh key
 * and a server never masks (section 5.1/5.3), and with a compressing codec
 * the frames go through CodecQueues in send order.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FrameSender } from '../../src/core/frame-sender.js';
import { CodecQueues, type CodecQueuesHost } from '../../src/core/codec-queues.js';
import type { ConnectionEvent, ConnectionHost } from '../../src/core/connection-types.js';
import { InvalidArgumentError, InvalidStateError, type WebSocketError } from '../../src/core/errors.js';
import { encodeFrame } from '../../src/core/frame-serializer.js';
import type { MessageCodec } from '../../src/core/message-codec.js';
import { closePayload, decodeFrames, Op, RSV1, testBytes, utf8, type DecodedFrame } from '../helpers/frames.js';

type Role = 'server' | 'client';

interface Write {
  chunks: Buffer[];
  urgent: boolean;
  endsMessage: boolean;
  opcode: number;
}

/** The connection's host: records every write, keeping the chunks as given. */
class Wire implements ConnectionHost {
  readonly writes: Write[] = [];
  onEvent(_e: ConnectionEvent): void {
    throw new Error('the sender raises no events');
  }
  write(chunks: Buffer[], urgent: boolean, endsMessage: boolean, opcode: number): void {
    this.writes.push({ chunks, urgent, endsMessage, opcode });
  }
  /** Every write decoded now (after any mutation the test made), one whole frame each. */
  frames(): DecodedFrame[] {
    return this.writes.map((w) => {
      const f = decodeFrames(Buffer.concat(w.chunks));
      assert.equal(f.length, 1, 'one whole frame per write');
      assert.equal(f[0].opcode, w.opcode, "the opcode given is the frame's");
      return f[0];
    });
  }
}

/** Reproducible distinct masking keys, remembering which were handed out. */
function keys() {
  const given: Buffer[] = [];
  let x = 7;
  const source = (): Uint8Array => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    const k = Buffer.alloc(4);
    k.writeUInt32BE((x ^ 0x9e3779b9) >>> 0);
    given.push(Buffer.from(k));
    return k;
  };
  return { source, given };
}

function sender(role: Role, codecs: CodecQueues | null = null, wire = new Wire()) {
  const k = keys();
  const s = new FrameSender(wire, codecs, role === 'client' ? k.source : null);
  return { s, wire, given: k.given };
}

type Done = (e: WebSocketError | null, r: Buffer | null) => void;

/** Reverses bytes as its "compression"; jobs finish when the test says so. Compresses from 4 bytes. */
class FakeCodec implements MessageCodec {
  readonly name = 'fake';
  readonly rsv = RSV1;
  readonly jobs: Array<{ data: Buffer; done: Done; final: boolean }> = [];
  constructor(readonly compressesOutput = true) {}
  shouldCompress(data: Uint8Array): boolean {
    return data.length >= 4;
  }
  compress(data: Buffer, done: Done, final: boolean): void {
    this.jobs.push({ data, done, final });
  }
  decompress(): void {
    throw new Error('not used');
  }
  close(): void {}
  finish(i: number): void {
    this.jobs[i].done(null, Buffer.from(this.jobs[i].data).reverse());
  }
}

const codecHost: CodecQueuesHost = {
  onInflated() {},
  onInputDrained() {},
  onCodecError(err) {
    throw err;
  },
  afterCodec() {},
};

function withCodec(role: Role, compressesOutput = true) {
  const wire = new Wire();
  const codec = new FakeCodec(compressesOutput);
  const k = keys();
  const mask = role === 'client' ? k.source : null;
  const codecs = new CodecQueues(codec, codecHost, wire, mask);
  const s = new FrameSender(wire, codecs, mask);
  return { s, wire, codec, codecs, given: k.given };
}

const text = (f: DecodedFrame) => f.payload.toString('utf8');
const rev = (b: Buffer) => Buffer.from(b).reverse();

function assertInvalidState(fn: () => void): void {
  assert.throws(fn, (err: unknown) => err instanceof InvalidStateError && err.code === 'ERR_INVALID_STATE');
}

// ------------------------------------------------------------------ whole messages

describe('FrameSender: whole messages', () => {
  for (const role of ['server', 'client'] as const) {
    it(`${role}: send() copies the payload: changing it afterwards changes nothing on the wire (S2)`, () => {
      for (const size of [5, 125, 126, 1024, 1025, 70_000]) {
        const { s, wire } = sender(role);
        const data = testBytes(size, size);
        const buf = Buffer.from(data);
        s.send(buf, true, false, false);
        buf.fill(0x55);
        const f = wire.frames()[0];
        assert.deepEqual(f.payload, data, `${size} bytes`);
        assert.equal(f.opcode, Op.Binary);
        assert.equal(f.fin, true);
      }
    });
  }

  it('a plain Uint8Array is copied even when called owned', () => {
    const { s, wire } = sender('server');
    const arr = new Uint8Array(testBytes(2000, 1));
    s.send(arr, true, true, false);
    arr.fill(0);
    assert.deepEqual(wire.frames()[0].payload, testBytes(2000, 1));
  });

  it('an owned Buffer is not copied (a large server frame carries that very Buffer)', () => {
    const { s, wire } = sender('server');
    const buf = testBytes(5000, 2);
    s.send(buf, true, true, false);
    assert.ok(wire.writes[0].chunks.includes(buf), 'the owned Buffer is one of the chunks written');
    assert.deepEqual(wire.frames()[0].payload, testBytes(5000, 2));
  });

  it('a string encoded by the caller and handed over owned goes out as a text frame', () => {
    const { s, wire } = sender('server');
    s.send(Buffer.from('héllo wörld', 'utf8'), false, true, false);
    const f = wire.frames()[0];
    assert.equal(f.opcode, Op.Text);
    assert.equal(text(f), 'héllo wörld');
  });

  it('writes one frame per message, not urgent, ending a message, with its opcode', () => {
    const { s, wire } = sender('server');
    s.send(utf8('t'), false, false, false);
    s.send(utf8('b'), true, false, false);
    s.send(new Uint8Array(0), true, false, false);
    assert.deepEqual(wire.writes.map((w) => [w.opcode, w.urgent, w.endsMessage]), [
      [Op.Text, false, true],
      [Op.Binary, false, true],
      [Op.Binary, false, true],
    ]);
    assert.deepEqual(wire.frames().map((f) => [f.fin, f.rsv, f.payload.length]), [
      [true, 0, 1],
      [true, 0, 1],
      [true, 0, 0],
    ]);
  });

  it('sendEncoded() writes the chunks given, unchanged, as one whole message', () => {
    const { s, wire } = sender('server');
    const frame = encodeFrame(Op.Binary, testBytes(300, 3), { mask: null });
    const before = frame.map((c) => Buffer.from(c));
    s.sendEncoded(frame, true);
    s.sendEncoded(encodeFrame(Op.Text, utf8('shared'), { mask: null }), false);
    assert.equal(wire.writes[0].chunks, frame, 'the same array');
    frame.forEach((c, i) => assert.deepEqual(c, before[i], 'not modified'));
    assert.deepEqual(wire.writes.map((w) => [w.opcode, w.urgent, w.endsMessage]), [
      [Op.Binary, false, true],
      [Op.Text, false, true],
    ]);
  });
});

// ------------------------------------------------------------------ streams

describe('FrameSender: streamed messages', () => {
  it('fragments: Text then Continuation, FIN and endsMessage on the last only', () => {
    const { s, wire } = sender('server');
    assert.equal(s.sendingStream, false);
    s.sendFragment(utf8('one '), false, false, false);
    assert.equal(s.sendingStream, true);
    s.sendFragment(utf8('two '), false, false, false);
    s.sendFragment(utf8('three'), false, true, false);
    assert.equal(s.sendingStream, false);
    assert.deepEqual(wire.frames().map((f) => [f.opcode, f.fin, text(f)]), [
      [Op.Text, false, 'one '],
      [Op.Continuation, false, 'two '],
      [Op.Continuation, true, 'three'],
    ]);
    assert.deepEqual(wire.writes.map((w) => [w.endsMessage, w.urgent]), [
      [false, false],
      [false, false],
      [true, false],
    ]);
  });

  it('binary fragments start with Binary; an empty last fragment still ends the message', () => {
    const { s, wire } = sender('server');
    s.sendFragment(Buffer.from([1, 2]), true, false, false);
    s.sendFragment(new Uint8Array(0), true, true, false);
    assert.deepEqual(wire.frames().map((f) => [f.opcode, f.fin, f.payload.length]), [
      [Op.Binary, false, 2],
      [Op.Continuation, true, 0],
    ]);
    assert.equal(s.sendingStream, false);
  });

  it('a first fragment that is also the last is a whole one-frame message', () => {
    const { s, wire } = sender('server');
    s.sendFragment(utf8('all'), false, true, false);
    assert.equal(s.sendingStream, false);
    assert.deepEqual(wire.frames().map((f) => [f.opcode, f.fin]), [[Op.Text, true]]);
    assert.equal(wire.writes[0].endsMessage, true);
  });

  it('fragments are copied (S2)', () => {
    const { s, wire } = sender('server');
    const buf = utf8('fragment');
    s.sendFragment(buf, false, false, false);
    buf.fill(0x30);
    assert.equal(text(wire.frames()[0]), 'fragment');
  });

  it('a whole message while a stream is open throws InvalidStateError and writes nothing; after the stream ends it goes', () => {
    const { s, wire } = sender('server');
    s.sendFragment(utf8('a'), false, false, false);
    assertInvalidState(() => s.send(utf8('whole'), false, false, false));
    assertInvalidState(() => s.sendEncoded(encodeFrame(Op.Text, utf8('x'), { mask: null }), false));
    assert.equal(wire.writes.length, 1);
    s.sendFragment(utf8('b'), false, true, false);
    s.send(utf8('whole'), false, false, false);
    assert.deepEqual(wire.frames().map((f) => [f.opcode, text(f)]), [
      [Op.Text, 'a'],
      [Op.Continuation, 'b'],
      [Op.Text, 'whole'],
    ]);
  });

  it('a fragment of the other type throws ERR_STREAM_TYPE, writes nothing, and leaves the stream open', () => {
    const { s, wire } = sender('server');
    s.sendFragment(utf8('text'), false, false, false);
    assert.throws(
      () => s.sendFragment(Buffer.from([1]), true, true, false),
      (err: unknown) => err instanceof InvalidArgumentError && err.code === 'ERR_STREAM_TYPE',
    );
    assert.equal(wire.writes.length, 1);
    assert.equal(s.sendingStream, true);
    s.sendFragment(utf8(' end'), false, true, false);
    assert.deepEqual(wire.frames().map((f) => [f.opcode, f.fin]), [
      [Op.Text, false],
      [Op.Continuation, true],
    ]);
  });

  it('control frames may go between fragments', () => {
    const { s, wire } = sender('server');
    s.sendFragment(utf8('a'), false, false, false);
    s.control(Op.Ping, utf8('p'));
    s.sendFragment(utf8('b'), false, true, false);
    assert.deepEqual(wire.frames().map((f) => f.opcode), [Op.Text, Op.Ping, Op.Continuation]);
  });
});

// ------------------------------------------------------------------ control and close

describe('FrameSender: control frames and close', () => {
  it('control(): urgent, not ending a message, with its payload (copied)', () => {
    const { s, wire } = sender('server');
    const data = utf8('are you there');
    s.control(Op.Ping, data);
    data.fill(0);
    s.control(Op.Pong);
    assert.deepEqual(wire.writes.map((w) => [w.opcode, w.urgent, w.endsMessage]), [
      [Op.Ping, true, false],
      [Op.Pong, true, false],
    ]);
    assert.deepEqual(wire.frames().map((f) => [f.fin, text(f)]), [
      [true, 'are you there'],
      [true, ''],
    ]);
  });

  it('a control payload of 125 bytes goes; 126 throws ERR_CONTROL_TOO_LONG and writes nothing', () => {
    const { s, wire } = sender('server');
    s.control(Op.Ping, testBytes(125, 1));
    for (const op of [Op.Ping, Op.Pong]) {
      assert.throws(
        () => s.control(op, testBytes(126, 2)),
        (err: unknown) => err instanceof InvalidArgumentError && err.code === 'ERR_CONTROL_TOO_LONG',
      );
    }
    assert.equal(wire.writes.length, 1);
    assert.equal(wire.frames()[0].payload.length, 125);
  });

  it('close(): written once, not urgent, not a message; closeSent set', () => {
    const { s, wire } = sender('server');
    assert.equal(s.closeSent, false);
    s.close(closePayload(1000, 'bye'));
    assert.equal(s.closeSent, true);
    s.close(closePayload(1001, 'again'));
    assert.equal(wire.writes.length, 1);
    assert.deepEqual([wire.writes[0].opcode, wire.writes[0].urgent, wire.writes[0].endsMessage], [Op.Close, false, false]);
    const f = wire.frames()[0];
    assert.deepEqual(f.payload, closePayload(1000, 'bye'));
    assert.equal(f.fin, true);
  });

  it('close() with an empty payload', () => {
    const { s, wire } = sender('server');
    s.close(Buffer.alloc(0));
    assert.equal(wire.frames()[0].payload.length, 0);
  });
});

// ------------------------------------------------------------------ masking

describe('FrameSender: masking (RFC 6455 sections 5.1 and 5.3)', () => {
  it('a client masks every frame, each with the fresh key its mask source just gave', () => {
    const { s, wire, given } = sender('client');
    const owned = testBytes(3000, 4);
    s.send(utf8('small'), false, false, false);
    s.send(owned, true, true, false);
    s.send(testBytes(70_000, 5), true, false, false);
    s.sendFragment(utf8('f1'), false, false, false);
    s.control(Op.Ping, utf8('p'));
    s.sendFragment(utf8('f2'), false, true, false);
    s.control(Op.Pong);
    s.close(closePayload(1000));
    const frames = wire.frames();
    assert.equal(frames.length, 8);
    assert.equal(given.length, 8, 'one key per frame');
    assert.ok(frames.every((f) => f.masked), 'every frame masked');
    assert.deepEqual(frames.map((f) => f.mask), given);
    assert.equal(new Set(given.map((k) => k.toString('hex'))).size, 8, 'fresh keys');
    assert.deepEqual(frames.map((f) => f.payload.length), [5, 3000, 70_000, 2, 1, 2, 0, 2]);
    assert.equal(text(frames[0]), 'small');
    assert.deepEqual(frames[1].payload, testBytes(3000, 4));
    assert.deepEqual(frames[2].payload, testBytes(70_000, 5));
    assert.equal(text(frames[3]), 'f1');
    assert.equal(text(frames[5]), 'f2');
  });

  it('a server never masks and never asks for a key', () => {
    const { s, wire, given } = sender('server');
    s.send(utf8('a'), false, false, false);
    s.send(testBytes(3000, 6), true, true, false);
    s.sendFragment(utf8('b'), false, true, false);
    s.control(Op.Ping);
    s.close(Buffer.alloc(0));
    assert.ok(wire.frames().every((f) => !f.masked && f.mask === null));
    assert.equal(given.length, 0);
    assert.equal(s.mask(), null);
  });

  it('mask(): a fresh key from the source each call for a client', () => {
    const { s, given } = sender('client');
    const a = s.mask();
    const b = s.mask();
    assert.ok(a && b);
    assert.deepEqual(Buffer.from(a), given[0]);
    assert.deepEqual(Buffer.from(b), given[1]);
    assert.notDeepEqual(Buffer.from(a), Buffer.from(b));
  });
});

// ------------------------------------------------------------------ through the codec

describe('FrameSender with a compressing codec', () => {
  it('compressesOutput follows the codec; without codec it is false', () => {
    assert.equal(sender('server').s.compressesOutput, false);
    assert.equal(withCodec('server', true).s.compressesOutput, true);
    assert.equal(withCodec('server', false).s.compressesOutput, false);
  });

  it('a message to compress waits for the codec; what is sent after it waits behind it, in order', () => {
    const { s, wire, codec } = withCodec('server');
    s.send(utf8('compress me'), false, false, true);
    s.send(utf8('ab'), false, false, true); // below the fake threshold: plain
    s.send(utf8('not this one'), true, false, false); // compress = false: plain
    s.sendEncoded(encodeFrame(Op.Binary, utf8('shared'), { mask: null }), true);
    assert.equal(wire.writes.length, 0, 'nothing overtakes a message still with the codec');
    assert.equal(codec.jobs.length, 1);
    codec.finish(0);
    assert.deepEqual(wire.frames().map((f) => [f.opcode, f.rsv, f.payload.toString('latin1')]), [
      [Op.Text, RSV1, rev(utf8('compress me')).toString('latin1')],
      [Op.Text, 0, 'ab'],
      [Op.Binary, 0, 'not this one'],
      [Op.Binary, 0, 'shared'],
    ]);
    assert.deepEqual(wire.writes.map((w) => w.endsMessage), [true, true, true, true]);
  });

  it('send() copies before the codec runs (S2), an owned Buffer is handed over', () => {
    const { s, wire, codec } = withCodec('server');
    const buf = utf8('original payload');
    s.send(buf, true, false, true);
    buf.fill(0x21);
    const owned = utf8('owned payload');
    s.send(owned, true, true, true);
    assert.equal(codec.jobs[1].data, owned);
    codec.finish(0);
    codec.finish(1);
    assert.equal(rev(wire.frames()[0].payload).toString(), 'original payload');
  });

  it('pings pass what the codec holds; the close frame waits behind it (S4)', () => {
    const { s, wire, codec } = withCodec('server');
    s.send(utf8('slow to compress'), false, false, true);
    s.control(Op.Ping, utf8('p'));
    s.close(closePayload(1000));
    assert.deepEqual(wire.frames().map((f) => f.opcode), [Op.Ping]);
    codec.finish(0);
    assert.deepEqual(wire.frames().map((f) => f.opcode), [Op.Ping, Op.Text, Op.Close]);
  });

  it('a compressed stream: every fragment through the codec (copied), RSV1 on the first only, FIN on the last', () => {
    const { s, wire, codec } = withCodec('server');
    const part = utf8('xy'); // below the threshold: a stream is compressed whole or not at all
    s.sendFragment(utf8('first'), false, false, true);
    s.sendFragment(part, false, false, false);
    part.fill(0x20);
    s.sendFragment(utf8('last'), false, true, false);
    assert.equal(codec.jobs.length, 3);
    assert.deepEqual(codec.jobs.map((j) => j.final), [false, false, true]);
    assert.equal(codec.jobs[1].data.toString(), 'xy');
    codec.finish(2);
    codec.finish(0);
    codec.finish(1);
    assert.deepEqual(wire.frames().map((f) => [f.opcode, f.rsv, f.fin, rev(f.payload).toString()]), [
      [Op.Text, RSV1, false, 'first'],
      [Op.Continuation, 0, false, 'xy'],
      [Op.Continuation, 0, true, 'last'],
    ]);
    assert.deepEqual(wire.writes.map((w) => w.endsMessage), [false, false, true]);
  });

  it('a stream sent with compress = false is plain, and a later one may be compressed', () => {
    const { s, wire, codec } = withCodec('server');
    s.sendFragment(utf8('plain one'), false, false, false);
    s.sendFragment(utf8('plain two'), false, true, true);
    assert.equal(codec.jobs.length, 0);
    s.sendFragment(utf8('packed'), true, true, true);
    assert.equal(codec.jobs.length, 1);
    codec.finish(0);
    assert.deepEqual(wire.frames().map((f) => [f.opcode, f.rsv]), [
      [Op.Text, 0],
      [Op.Continuation, 0],
      [Op.Binary, RSV1],
    ]);
  });

  it('a codec that may not compress output: everything goes out plain at once', () => {
    const { s, wire, codec } = withCodec('server', false);
    s.send(utf8('long enough to compress'), false, false, true);
    s.sendFragment(utf8('stream'), false, true, true);
    assert.equal(codec.jobs.length, 0);
    assert.deepEqual(wire.frames().map((f) => f.rsv), [0, 0]);
  });

  it('a client with a codec masks the compressed frames and the plain ones behind them', () => {
    const { s, wire, codec, given } = withCodec('client');
    s.send(utf8('compressed text'), false, false, true);
    s.send(utf8('ab'), false, false, true);
    codec.finish(0);
    const frames = wire.frames();
    assert.ok(frames.every((f) => f.masked));
    assert.equal(given.length, 2);
    // The plain frame took its key when it was sent, the compressed one when the codec finished.
    assert.deepEqual(frames.map((f) => f.mask), [given[1], given[0]]);
    assert.equal(rev(frames[0].payload).toString(), 'compressed text');
    assert.equal(text(frames[1]), 'ab');
  });
});
