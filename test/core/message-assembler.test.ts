/**
 * MessageAssembler (src/core/message-assembler.ts), the frame parser's sink:
 * the message limits of invariant S3 (maxMessageBytes with 1009, maxFragments
 * and the MIN_FRAME_CHARGE floor with 1008), UTF-8 validation of text as it
 * arrives (RFC 6455 section 8.1), streamed pieces with their first/last
 * flags, the joining of a message's pieces (exact whatever the piece sizes,
 * no copy for a one-piece message), compressed messages handed to the codec
 * with their parts (RFC 7692 section 6.1: the compression bit on the first
 * frame only) and control frames passed through. Driven directly through the
 * FrameSink calls and through a real FrameParser fed frames built by
 * src/core/frame-serializer.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MessageAssembler, type AssemblerOutput } from '../../src/core/message-assembler.js';
import { FrameParser } from '../../src/core/frame-parser.js';
import { encodeFrame } from '../../src/core/frame-serializer.js';
import { MIN_FRAME_CHARGE, type ConnectionLimits } from '../../src/core/connection-types.js';
import { InvalidUtf8Error, LimitExceededError, ProtocolError } from '../../src/core/errors.js';
import { compressedBound, type MessageCodec } from '../../src/core/message-codec.js';
import { Op, RSV1, testBytes, utf8 } from '../helpers/frames.js';

// ------------------------------------------------------------------ recorder

type Out =
  | { kind: 'message'; binary: boolean; data: Buffer }
  | { kind: 'piece'; binary: boolean; data: Buffer; first: boolean; last: boolean }
  | { kind: 'compressed'; binary: boolean; parts: Buffer[] }
  | { kind: 'control'; opcode: number; payload: Buffer };

/** Records what the assembler hands over, keeping the very objects it was given (for identity checks). */
class Recorder implements AssemblerOutput {
  readonly out: Out[] = [];
  onAssembled(binary: boolean, data: Buffer): void {
    this.out.push({ kind: 'message', binary, data });
  }
  onAssembledPiece(binary: boolean, data: Buffer, first: boolean, last: boolean): void {
    this.out.push({ kind: 'piece', binary, data, first, last });
  }
  onCompressed(binary: boolean, parts: Buffer[]): void {
    this.out.push({ kind: 'compressed', binary, parts });
  }
  onControl(opcode: number, payload: Buffer): void {
    this.out.push({ kind: 'control', opcode, payload });
  }
  get messages(): Extract<Out, { kind: 'message' }>[] {
    return this.out.filter((o): o is Extract<Out, { kind: 'message' }> => o.kind === 'message');
  }
  get pieces(): Extract<Out, { kind: 'piece' }>[] {
    return this.out.filter((o): o is Extract<Out, { kind: 'piece' }> => o.kind === 'piece');
  }
  get compressed(): Extract<Out, { kind: 'compressed' }>[] {
    return this.out.filter((o): o is Extract<Out, { kind: 'compressed' }> => o.kind === 'compressed');
  }
}

/** A codec that is never called here: the assembler only reads its name and rsv bit. */
class StubCodec implements MessageCodec {
  readonly name = 'stub-deflate';
  readonly rsv = RSV1;
  readonly compressesOutput = true;
  shouldCompress(): boolean {
    return true;
  }
  compress(): void {
    throw new Error('the assembler never compresses');
  }
  decompress(): void {
    throw new Error('the assembler never decompresses');
  }
  close(): void {}
}

function limits(over: Partial<ConnectionLimits> = {}): ConnectionLimits {
  return { maxMessageBytes: 1 << 20, maxFrameBytes: 1 << 20, maxFragments: Infinity, maxControlFramesPerSecond: 0, ...over };
}

function make(opts: { limits?: Partial<ConnectionLimits>; codec?: MessageCodec | null; stream?: boolean } = {}) {
  const rec = new Recorder();
  const asm = new MessageAssembler(rec, limits(opts.limits), opts.codec ?? null, opts.stream ?? false);
  return { rec, asm };
}

/**
 * Feeds one data frame to the sink as the parser does: start, the payload in
 * the given pieces (each with what remains of the frame after it), end.
 */
function feedFrame(asm: MessageAssembler, opcode: number, pieces: Buffer[], fin = true, rsv = 0): void {
  const length = pieces.reduce((n, p) => n + p.length, 0);
  asm.onDataFrameStart(opcode, fin, rsv, length);
  let remaining = length;
  for (const p of pieces) {
    remaining -= p.length;
    asm.onDataPayload(p, remaining);
  }
  asm.onDataFrameEnd(fin);
}

/** `data` cut into pieces of `size` bytes (the last may be shorter). */
function chop(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, i + size));
  return out;
}

function assertLimit(fn: () => void, limit: string, closeCode: number): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof LimitExceededError, `a LimitExceededError, got ${String(err)}`);
    assert.equal(err.limit, limit);
    assert.equal(err.closeCode, closeCode);
    return true;
  });
}

function assertBadUtf8(fn: () => void): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof InvalidUtf8Error, `an InvalidUtf8Error, got ${String(err)}`);
    assert.equal(err.code, 'ERR_INVALID_UTF8');
    assert.equal(err.closeCode, 1007);
    return true;
  });
}

// ------------------------------------------------------------------ joining

describe('MessageAssembler: whole messages', () => {
  it('a one-piece message is delivered as the very Buffer it arrived in (no copy)', () => {
    const { rec, asm } = make();
    const piece = utf8('hello');
    feedFrame(asm, Op.Text, [piece]);
    assert.equal(rec.messages.length, 1);
    assert.equal(rec.messages[0].data, piece, 'the same object, not a copy');
    assert.equal(rec.messages[0].binary, false);
    const big = testBytes(100_000, 1);
    feedFrame(asm, Op.Binary, [big]);
    assert.equal(rec.messages[1].data, big);
    assert.equal(rec.messages[1].binary, true);
  });

  it('an empty message is delivered, empty, text and binary', () => {
    const { rec, asm } = make();
    feedFrame(asm, Op.Text, []);
    feedFrame(asm, Op.Binary, []);
    assert.deepEqual(rec.out.map((o) => o.kind), ['message', 'message']);
    assert.equal(rec.messages[0].data.length, 0);
    assert.equal(rec.messages[0].binary, false);
    assert.equal(rec.messages[1].data.length, 0);
    assert.equal(rec.messages[1].binary, true);
  });

  it('joins a message from many pieces over many frames exactly', () => {
    const { rec, asm } = make();
    const data = testBytes(50_000, 2);
    // Frames of 10,000 bytes, each arriving in pieces of 3,000 (large pieces, never merged).
    const frames = chop(data, 10_000);
    frames.forEach((f, i) => feedFrame(asm, i === 0 ? Op.Binary : Op.Continuation, chop(f, 3000), i === frames.length - 1));
    assert.equal(rec.messages.length, 1);
    assert.deepEqual(rec.messages[0].data, data);
  });

  it('nothing is delivered before the final frame ends', () => {
    const { rec, asm } = make();
    feedFrame(asm, Op.Text, [utf8('ab')], false);
    feedFrame(asm, Op.Continuation, [utf8('cd')], false);
    asm.onDataFrameStart(Op.Continuation, true, 0, 2);
    asm.onDataPayload(utf8('ef'), 0);
    assert.equal(rec.out.length, 0, 'the payload is all there but the frame has not ended');
    asm.onDataFrameEnd(true);
    assert.deepEqual(rec.messages.map((m) => m.data.toString()), ['abcdef']);
  });

  it('runs of 1-byte pieces are merged and the message is still exact, at every count around the merge run', () => {
    // The run length is 64 pieces; counts around its multiples and far beyond.
    for (const n of [2, 63, 64, 65, 127, 128, 129, 4095, 4096, 4097, 20_000]) {
      const { rec, asm } = make();
      const data = testBytes(n, n);
      feedFrame(asm, Op.Binary, chop(data, 1));
      assert.equal(rec.messages.length, 1, `${n} pieces`);
      assert.deepEqual(rec.messages[0].data, data, `${n} one-byte pieces`);
    }
  });

  it('small pieces mixed with large ones, across frames, give the exact message', () => {
    const { rec, asm } = make();
    const data = testBytes(30_000, 3);
    // Piece sizes cycling through small runs and large pieces, so that merged runs sit between unmerged pieces.
    const sizes = [1, 1, 1, 5, 1023, 1024, 1, 2, 3000, 1, 7, 64, 1];
    const pieces: Buffer[] = [];
    let at = 0;
    for (let i = 0; at < data.length; i++) {
      const s = sizes[i % sizes.length];
      pieces.push(data.subarray(at, at + s));
      at += s;
    }
    // Five frames of about equal piece counts.
    const per = Math.ceil(pieces.length / 5);
    for (let f = 0; f * per < pieces.length; f++) {
      const last = (f + 1) * per >= pieces.length;
      feedFrame(asm, f === 0 ? Op.Binary : Op.Continuation, pieces.slice(f * per, (f + 1) * per), last);
    }
    assert.equal(rec.messages.length, 1);
    assert.deepEqual(rec.messages[0].data, data);
  });

  it('a merged message does not change when the pieces it came from are reused afterwards', () => {
    const { rec, asm } = make();
    const data = testBytes(500, 4);
    const src = Buffer.from(data);
    feedFrame(asm, Op.Binary, chop(src, 1));
    src.fill(0);
    assert.deepEqual(rec.messages[0].data, data);
  });

  it('the next message starts empty: nothing of a many-piece message leaks into it', () => {
    const { rec, asm } = make();
    const a = testBytes(3000, 5);
    const b = testBytes(70, 6);
    const c = testBytes(5, 7);
    feedFrame(asm, Op.Binary, chop(a, 1));
    feedFrame(asm, Op.Binary, chop(b, 7));
    feedFrame(asm, Op.Binary, [c]);
    feedFrame(asm, Op.Binary, chop(a, 1000));
    assert.deepEqual(rec.messages.map((m) => m.data), [a, b, c, a]);
  });

  it('clear() forgets the pieces held so far, whether one piece or many', () => {
    for (const held of [[Buffer.from([1, 2])], [Buffer.from([1]), Buffer.from([2]), Buffer.from([3])], chop(testBytes(200, 8), 1)]) {
      const { rec, asm } = make();
      asm.onDataFrameStart(Op.Binary, true, 0, 1000);
      for (const p of held) asm.onDataPayload(p, 1);
      asm.clear();
      asm.onDataPayload(Buffer.from([7, 8]), 0);
      asm.onDataFrameEnd(true);
      assert.deepEqual(rec.messages[0].data, Buffer.from([7, 8]), `after ${held.length} piece(s) held`);
    }
  });
});

// ------------------------------------------------------------------ limits

/** A deterministic generator (xorshift32), so a failing case can be replayed. */
function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

/** `data` cut at random places, with runs of 1-byte pieces (the merge path) among larger ones. */
function randomChop(data: Buffer, rand: (n: number) => number): Buffer[] {
  const out: Buffer[] = [];
  let i = 0;
  while (i < data.length) {
    const kind = rand(4);
    const size = kind === 0 ? 1 : kind === 1 ? 1 + rand(200) : 1 + rand(20_000);
    if (kind === 0) {
      for (let k = rand(150); k > 0 && i < data.length; k--) out.push(data.subarray(i, ++i));
      continue;
    }
    out.push(data.subarray(i, i + size));
    i += size;
  }
  return out;
}

/** Runs `fn` while recording the sizes Buffer.allocUnsafe is asked for. */
function recordAllocations(fn: () => void): number[] {
  const sizes: number[] = [];
  const original = Buffer.allocUnsafe;
  Buffer.allocUnsafe = (size: number) => {
    sizes.push(size);
    return original(size);
  };
  try {
    fn();
  } finally {
    Buffer.allocUnsafe = original;
  }
  return sizes;
}

describe('MessageAssembler: a frame that spans reads', () => {
  it('is copied into one buffer of its size as it arrives: the message is exact and no piece is kept', () => {
    const data = testBytes(200_000, 3);
    const pieces = chop(data, 65_536);
    const { rec, asm } = make();
    feedFrame(asm, Op.Binary, pieces);
    const msg = rec.messages[0].data;
    assert.deepEqual(msg, data);
    assert.equal(msg.length, data.length);
    for (const p of pieces) assert.notEqual(msg.buffer, p.buffer, 'a copy, not a view of a read');
    // The copy is the message's own: the reads' buffers may be reused afterwards.
    for (const p of pieces) p.fill(0);
    assert.deepEqual(msg, testBytes(200_000, 3));
  });

  it('any cut, any frames: messages of random frames in random pieces are exact', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const rand = rng(seed);
      const { rec, asm } = make({ limits: { maxMessageBytes: 4 << 20, maxFrameBytes: 4 << 20 } });
      const frames = 1 + rand(5);
      const whole: Buffer[] = [];
      for (let f = 0; f < frames; f++) {
        const len = rand(4) === 0 ? rand(300) : rand(120_000);
        const payload = testBytes(len, seed * 7 + f);
        whole.push(payload);
        feedFrame(asm, f === 0 ? Op.Binary : Op.Continuation, randomChop(payload, rand), f === frames - 1);
      }
      assert.equal(rec.messages.length, 1, `seed ${seed}`);
      assert.deepEqual(rec.messages[0].data, Buffer.concat(whole), `seed ${seed}`);
    }
  });

  it('a merged run of small pieces that began in the previous frame is split where the frame starts', () => {
    const { rec, asm } = make();
    const a = testBytes(100, 1);
    const b = testBytes(4000, 2);
    // 100 one-byte pieces of frame a, then frame b's first 40 bytes one by one: merge runs of 64 cross the boundary.
    feedFrame(asm, Op.Binary, chop(a, 1), false);
    feedFrame(asm, Op.Continuation, [...chop(b.subarray(0, 600), 1), b.subarray(600)], true);
    assert.deepEqual(rec.messages[0].data, Buffer.concat([a, b]));
  });

  it('the buffer of a frame is made only once an eighth of it has arrived (S3: a peer that announces much and sends little)', () => {
    const length = 8 << 20;
    const { rec, asm } = make({ limits: { maxMessageBytes: 16 << 20, maxFrameBytes: 16 << 20 } });
    const data = testBytes(length, 9);
    const pieces = chop(data, 65_536);
    asm.onDataFrameStart(Op.Binary, true, 0, length);
    let got = 0;
    for (const p of pieces) {
      const sizes = recordAllocations(() => asm.onDataPayload(p, length - got - p.length));
      got += p.length;
      const big = sizes.filter((n) => n >= 1 << 20);
      if (got * 8 < length) assert.deepEqual(big, [], `no large buffer at ${got} bytes received`);
      else if (got - p.length < length / 8) assert.deepEqual(big, [length], `the frame's buffer once ${got} bytes arrived`);
      else assert.deepEqual(big, [], 'made once');
    }
    asm.onDataFrameEnd(true);
    assert.deepEqual(rec.messages[0].data, data);
  });

  it('a frame that arrives whole in one piece is still delivered as a view (no copy), among frames that span reads', () => {
    const { rec, asm } = make();
    const whole = testBytes(50_000, 4);
    feedFrame(asm, Op.Binary, [whole]);
    assert.equal(rec.messages[0].data, whole);
  });
});

describe('MessageAssembler: limits (S3)', () => {
  it('a message of exactly maxMessageBytes passes; one byte more fails with 1009 at the header', () => {
    const { rec, asm } = make({ limits: { maxMessageBytes: 1000 } });
    feedFrame(asm, Op.Binary, [testBytes(1000, 1)]);
    assert.equal(rec.messages.length, 1);
    // Refused at onDataFrameStart: no payload needs to arrive.
    assertLimit(() => asm.onDataFrameStart(Op.Binary, true, 0, 1001), 'maxMessageBytes', 1009);
  });

  it('the limit counts the whole message across frames (1009)', () => {
    const { asm } = make({ limits: { maxMessageBytes: 1000 } });
    feedFrame(asm, Op.Binary, [testBytes(600, 1)], false);
    feedFrame(asm, Op.Continuation, [testBytes(400, 2)], false);
    assertLimit(() => asm.onDataFrameStart(Op.Continuation, true, 0, 1), 'maxMessageBytes', 1009);
  });

  it('each frame of a fragmented message counts as at least MIN_FRAME_CHARGE bytes: past the limit that way is 1008', () => {
    const max = 4 * MIN_FRAME_CHARGE;
    const { rec, asm } = make({ limits: { maxMessageBytes: max } });
    // Exactly max / MIN_FRAME_CHARGE one-byte frames fit.
    feedFrame(asm, Op.Binary, [Buffer.from([1])], false);
    feedFrame(asm, Op.Continuation, [Buffer.from([2])], false);
    feedFrame(asm, Op.Continuation, [Buffer.from([3])], false);
    feedFrame(asm, Op.Continuation, [Buffer.from([4])], true);
    assert.deepEqual(rec.messages[0].data, Buffer.from([1, 2, 3, 4]));
    // One more frame is a policy violation, although 5 bytes are far below the limit.
    for (let i = 0; i < 4; i++) feedFrame(asm, i === 0 ? Op.Binary : Op.Continuation, [], false);
    assertLimit(() => asm.onDataFrameStart(Op.Continuation, true, 0, 0), 'maxMessageBytes', 1008);
  });

  it('empty continuation frames are charged too (1008 after maxMessageBytes / MIN_FRAME_CHARGE frames)', () => {
    const { asm } = make({ limits: { maxMessageBytes: 10 * MIN_FRAME_CHARGE } });
    asm.onDataFrameStart(Op.Text, false, 0, 0);
    asm.onDataFrameEnd(false);
    let frames = 1;
    const flood = () => {
      for (let i = 0; i < 1000; i++) {
        asm.onDataFrameStart(Op.Continuation, false, 0, 0);
        frames++;
        asm.onDataFrameEnd(false);
      }
    };
    assertLimit(flood, 'maxMessageBytes', 1008);
    assert.equal(frames, 10, 'the 11th frame is refused');
  });

  it('frames of MIN_FRAME_CHARGE bytes or more are limited by size alone', () => {
    const max = 8 * MIN_FRAME_CHARGE;
    const { rec, asm } = make({ limits: { maxMessageBytes: max } });
    const data = testBytes(max, 9);
    const frames = chop(data, MIN_FRAME_CHARGE);
    frames.forEach((f, i) => feedFrame(asm, i === 0 ? Op.Binary : Op.Continuation, [f], i === frames.length - 1));
    assert.deepEqual(rec.messages[0].data, data);
  });

  it('a one-frame message is bounded by its real size alone, even below MIN_FRAME_CHARGE', () => {
    const { rec, asm } = make({ limits: { maxMessageBytes: 10 } });
    feedFrame(asm, Op.Text, []);
    feedFrame(asm, Op.Text, [utf8('0123456789')]);
    assert.equal(rec.messages.length, 2);
    // A second frame makes the charge count: 2 x MIN_FRAME_CHARGE > 10.
    feedFrame(asm, Op.Text, [utf8('a')], false);
    assertLimit(() => asm.onDataFrameStart(Op.Continuation, true, 0, 1), 'maxMessageBytes', 1008);
  });

  it('maxFragments: one frame more fails with 1008, and the count starts again with each message', () => {
    const { rec, asm } = make({ limits: { maxFragments: 3 } });
    for (let m = 0; m < 2; m++) {
      feedFrame(asm, Op.Binary, [Buffer.from([m, 1])], false);
      feedFrame(asm, Op.Continuation, [Buffer.from([2])], false);
      feedFrame(asm, Op.Continuation, [Buffer.from([3])], true);
    }
    assert.equal(rec.messages.length, 2);
    feedFrame(asm, Op.Binary, [Buffer.from([1])], false);
    feedFrame(asm, Op.Continuation, [Buffer.from([2])], false);
    feedFrame(asm, Op.Continuation, [Buffer.from([3])], false);
    assert.throws(() => asm.onDataFrameStart(Op.Continuation, true, 0, 1), (err: unknown) => {
      assert.ok(err instanceof LimitExceededError);
      assert.equal(err.limit, 'maxFragments');
      assert.equal(err.code, 'ERR_LIMIT_MAX_FRAGMENTS');
      assert.equal(err.closeCode, 1008);
      return true;
    });
  });

  it('the byte count starts again with each message', () => {
    const { rec, asm } = make({ limits: { maxMessageBytes: 200 } });
    for (let i = 0; i < 5; i++) {
      feedFrame(asm, Op.Binary, [testBytes(120, i)], false);
      feedFrame(asm, Op.Continuation, [testBytes(80, i + 10)], true);
    }
    assert.equal(rec.messages.length, 5);
    assert.ok(rec.messages.every((m) => m.data.length === 200));
  });

  it('compressed messages are limited by their bytes on the wire: to what maxMessageBytes of content may deflate to', () => {
    const max = 100_000;
    const bound = compressedBound(max);
    assert.ok(bound > max && bound < max * 1.001 + 16, `deflate's bound for ${max} bytes is a little more: ${bound}`);
    const { asm } = make({ codec: new StubCodec(), limits: { maxMessageBytes: max } });
    feedFrame(asm, Op.Binary, [testBytes(60_000, 1)], false, RSV1);
    assertLimit(() => asm.onDataFrameStart(Op.Continuation, true, 0, bound - 60_000 + 1), 'maxMessageBytes', 1009);
  });

  it('a compressed message of incompressible bytes at the limit passes: its frames may be deflate\'s bound long', () => {
    const max = 100_000;
    const { rec, asm } = make({ codec: new StubCodec(), limits: { maxMessageBytes: max } });
    feedFrame(asm, Op.Binary, [testBytes(compressedBound(max), 2)], true, RSV1);
    assert.equal(rec.compressed.length, 1, 'handed to the codec (which inflates under maxMessageBytes itself)');
    // An uncompressed message gets no such allowance.
    const plain = make({ limits: { maxMessageBytes: max } });
    assertLimit(() => plain.asm.onDataFrameStart(Op.Binary, true, 0, max + 1), 'maxMessageBytes', 1009);
  });
});

// ------------------------------------------------------------------ UTF-8

describe('MessageAssembler: UTF-8 of text messages (RFC 6455 section 8.1)', () => {
  it('fails at the first bad piece, before the frame or the message ends', () => {
    const { rec, asm } = make();
    asm.onDataFrameStart(Op.Text, false, 0, 9);
    asm.onDataPayload(utf8('abc'), 6);
    // 0xC0 can never start a valid sequence.
    assertBadUtf8(() => asm.onDataPayload(Buffer.from([0xc0]), 5));
    assert.equal(rec.out.length, 0);
  });

  it('fails at the piece that makes a sequence impossible, not before', () => {
    const { asm } = make();
    asm.onDataFrameStart(Op.Text, true, 0, 4);
    // 0xE0 is a valid lead; 0xE0 0x80 is an overlong form and can never be completed.
    asm.onDataPayload(Buffer.from([0x61, 0xe0]), 2);
    assertBadUtf8(() => asm.onDataPayload(Buffer.from([0x80]), 1));
  });

  it('a bad byte in a continuation frame fails there', () => {
    const { asm } = make();
    feedFrame(asm, Op.Text, [utf8('fine so far')], false);
    asm.onDataFrameStart(Op.Continuation, true, 0, 3);
    assertBadUtf8(() => asm.onDataPayload(Buffer.from([0x61, 0xff, 0x62]), 0));
  });

  it('a sequence may be split across pieces and frames', () => {
    const { rec, asm } = make();
    const euro = utf8('€'); // E2 82 AC
    feedFrame(asm, Op.Text, [euro.subarray(0, 1), euro.subarray(1, 2)], false);
    feedFrame(asm, Op.Continuation, [euro.subarray(2)], true);
    assert.equal(rec.messages[0].data.toString('utf8'), '€');
  });

  it('a message that ends inside a sequence fails on its last payload piece', () => {
    const { rec, asm } = make();
    asm.onDataFrameStart(Op.Text, true, 0, 3);
    assertBadUtf8(() => asm.onDataPayload(Buffer.from([0x61, 0xe2, 0x82]), 0));
    assert.equal(rec.out.length, 0);
  });

  it('a message whose final frame is empty and whose text ends inside a sequence fails at the frame end', () => {
    const { rec, asm } = make();
    feedFrame(asm, Op.Text, [Buffer.from([0x61, 0xe2])], false);
    asm.onDataFrameStart(Op.Continuation, true, 0, 0);
    assertBadUtf8(() => asm.onDataFrameEnd(true));
    assert.equal(rec.out.length, 0);
  });

  it('a frame that is not the last may end inside a sequence', () => {
    const { rec, asm } = make();
    feedFrame(asm, Op.Text, [Buffer.from([0xf0, 0x9f])], false);
    feedFrame(asm, Op.Continuation, [Buffer.from([0x98, 0x80])], true);
    assert.equal(rec.messages[0].data.toString('utf8'), '\u{1F600}');
  });

  it('streamed text: the incomplete last piece is not handed over', () => {
    const { rec, asm } = make({ stream: true });
    asm.onDataFrameStart(Op.Text, true, 0, 4);
    asm.onDataPayload(utf8('ab'), 2);
    assertBadUtf8(() => asm.onDataPayload(Buffer.from([0x63, 0xe2]), 0));
    assert.deepEqual(rec.pieces.map((p) => p.data.toString()), ['ab']);
  });

  it('binary messages are not validated', () => {
    const { rec, asm } = make();
    feedFrame(asm, Op.Binary, [Buffer.from([0xff, 0xc0, 0xe2])]);
    assert.deepEqual(rec.messages[0].data, Buffer.from([0xff, 0xc0, 0xe2]));
  });

  it('each text message is validated from a fresh start: one abandoned inside a sequence leaves nothing behind', () => {
    const { rec, asm } = make();
    // A text frame ending on a lead byte, then (as after clear()) a new message: its first byte is not a continuation byte.
    feedFrame(asm, Op.Text, [Buffer.from([0x61, 0xe2])], false);
    feedFrame(asm, Op.Text, [utf8('two')]);
    assert.deepEqual(rec.messages.map((m) => m.data.toString()), ['two']);
  });
});

// ------------------------------------------------------------------ streaming

describe('MessageAssembler: streamMessages', () => {
  it('hands each piece over as it arrives: first on the very first, last on the last of the final frame', () => {
    const { rec, asm } = make({ stream: true });
    asm.onDataFrameStart(Op.Text, false, 0, 4);
    asm.onDataPayload(utf8('ab'), 2);
    assert.deepEqual(rec.pieces.map((p) => [p.data.toString(), p.first, p.last]), [['ab', true, false]], 'handed over at once');
    asm.onDataPayload(utf8('cd'), 0);
    asm.onDataFrameEnd(false);
    feedFrame(asm, Op.Continuation, [utf8('ef'), utf8('gh')], true);
    assert.deepEqual(rec.pieces.map((p) => [p.data.toString(), p.first, p.last, p.binary]), [
      ['ab', true, false, false],
      ['cd', false, false, false],
      ['ef', false, false, false],
      ['gh', false, true, false],
    ]);
    assert.equal(rec.messages.length, 0, 'no whole message in streaming mode');
  });

  it('an empty final frame still ends the stream with an empty last piece', () => {
    const { rec, asm } = make({ stream: true });
    feedFrame(asm, Op.Binary, [Buffer.from([1, 2])], false);
    feedFrame(asm, Op.Continuation, [], false);
    feedFrame(asm, Op.Continuation, [], true);
    assert.deepEqual(rec.pieces.map((p) => [p.data.length, p.first, p.last, p.binary]), [
      [2, true, false, true],
      [0, false, true, true],
    ]);
  });

  it('a message of one empty frame is one piece, both first and last', () => {
    const { rec, asm } = make({ stream: true });
    feedFrame(asm, Op.Text, []);
    assert.deepEqual(rec.pieces.map((p) => [p.data.length, p.first, p.last]), [[0, true, true]]);
  });

  it('first is set again for each new message', () => {
    const { rec, asm } = make({ stream: true });
    feedFrame(asm, Op.Text, [utf8('a')], false);
    feedFrame(asm, Op.Continuation, [utf8('b')], true);
    feedFrame(asm, Op.Binary, [Buffer.from([1])], true);
    assert.deepEqual(rec.pieces.map((p) => [p.data.toString('latin1'), p.first, p.last, p.binary]), [
      ['a', true, false, false],
      ['b', false, true, false],
      ['\x01', true, true, true],
    ]);
  });

  it('the pieces are handed over as they came (no copy)', () => {
    const { rec, asm } = make({ stream: true });
    const p = testBytes(10, 1);
    feedFrame(asm, Op.Binary, [p]);
    assert.equal(rec.pieces[0].data, p);
  });
});

// ------------------------------------------------------------------ compression

describe('MessageAssembler: compressed messages', () => {
  it('a message with the codec bit is handed over whole with its parts, not validated nor joined', () => {
    const { rec, asm } = make({ codec: new StubCodec() });
    const a = Buffer.from([0xff, 0x00, 0xc0]);
    const b = Buffer.from([0xe2]);
    const c = testBytes(2000, 1);
    feedFrame(asm, Op.Text, [a, b], false, RSV1);
    feedFrame(asm, Op.Continuation, [c], true);
    assert.deepEqual(rec.out.map((o) => o.kind), ['compressed']);
    const got = rec.compressed[0];
    assert.equal(got.binary, false);
    assert.deepEqual(Buffer.concat(got.parts), Buffer.concat([a, b, c]));
  });

  it('a one-piece compressed message is handed over as a list holding that very Buffer', () => {
    const { rec, asm } = make({ codec: new StubCodec() });
    const p = testBytes(30, 2);
    feedFrame(asm, Op.Binary, [p], true, RSV1);
    assert.equal(rec.compressed[0].binary, true);
    assert.equal(rec.compressed[0].parts.length, 1);
    assert.equal(rec.compressed[0].parts[0], p);
  });

  it('an empty compressed message is handed over with no parts', () => {
    const { rec, asm } = make({ codec: new StubCodec() });
    feedFrame(asm, Op.Binary, [], true, RSV1);
    assert.equal(rec.compressed.length, 1);
    assert.equal(Buffer.concat(rec.compressed[0].parts).length, 0);
  });

  it('the list handed over is the codec\'s: later messages do not touch it', () => {
    const { rec, asm } = make({ codec: new StubCodec() });
    const first = testBytes(3000, 3);
    feedFrame(asm, Op.Binary, chop(first, 100), true, RSV1);
    const list = rec.compressed[0].parts;
    const snapshot = [...list];
    // Another compressed message, an uncompressed many-piece one and a merged run of tiny pieces.
    feedFrame(asm, Op.Binary, chop(testBytes(3000, 4), 100), true, RSV1);
    feedFrame(asm, Op.Binary, chop(testBytes(3000, 5), 100), true);
    feedFrame(asm, Op.Binary, chop(testBytes(500, 6), 1), true, RSV1);
    assert.equal(list.length, snapshot.length);
    list.forEach((p, i) => assert.equal(p, snapshot[i]));
    assert.deepEqual(Buffer.concat(list), first);
    assert.deepEqual(Buffer.concat(rec.compressed[2].parts), testBytes(500, 6), 'merged runs stay exact in compressed messages');
  });

  it('compressed messages are handed over whole in streaming mode too', () => {
    const { rec, asm } = make({ codec: new StubCodec(), stream: true });
    feedFrame(asm, Op.Text, [utf8('xy')], false, RSV1);
    feedFrame(asm, Op.Continuation, [utf8('z')], true);
    assert.deepEqual(rec.out.map((o) => o.kind), ['compressed']);
    assert.equal(Buffer.concat(rec.compressed[0].parts).toString(), 'xyz');
  });

  it('the compression bit on a continuation frame is a ProtocolError (1002)', () => {
    const { asm } = make({ codec: new StubCodec() });
    for (const firstRsv of [RSV1, 0]) {
      feedFrame(asm, Op.Text, [utf8('a')], false, firstRsv);
      assert.throws(() => asm.onDataFrameStart(Op.Continuation, true, RSV1, 1), (err: unknown) => {
        assert.ok(err instanceof ProtocolError);
        assert.equal(err.code, 'ERR_RSV1_ON_CONTINUATION');
        assert.equal(err.closeCode, 1002);
        return true;
      });
    }
  });

  it('without the codec bit a message is plain (validated and joined) even with a codec', () => {
    const { rec, asm } = make({ codec: new StubCodec() });
    feedFrame(asm, Op.Text, [utf8('pla'), utf8('in')]);
    assert.deepEqual(rec.messages.map((m) => m.data.toString()), ['plain']);
    feedFrame(asm, Op.Text, [utf8('a')], false);
    assertBadUtf8(() => feedFrame(asm, Op.Continuation, [Buffer.from([0xff])]));
  });

  it('without a codec the RSV bits are not the assembler\'s business (the parser refuses them)', () => {
    const { rec, asm } = make();
    feedFrame(asm, Op.Binary, [Buffer.from([9])], true, RSV1);
    assert.deepEqual(rec.out.map((o) => o.kind), ['message']);
  });
});

// ------------------------------------------------------------------ control

describe('MessageAssembler: control frames', () => {
  it('are passed through at once, as they came, also between the frames of a message', () => {
    const { rec, asm } = make();
    const ping = utf8('p');
    feedFrame(asm, Op.Text, [utf8('hel')], false);
    asm.onControlFrame(Op.Ping, ping);
    asm.onControlFrame(Op.Pong, Buffer.alloc(0));
    feedFrame(asm, Op.Continuation, [utf8('lo')], true);
    asm.onControlFrame(Op.Close, Buffer.from([0x03, 0xe8]));
    assert.deepEqual(rec.out.map((o) => (o.kind === 'control' ? `control ${o.opcode}` : o.kind === 'message' ? `message ${o.data}` : o.kind)), [
      `control ${Op.Ping}`,
      `control ${Op.Pong}`,
      'message hello',
      `control ${Op.Close}`,
    ]);
    const first = rec.out[0];
    assert.ok(first.kind === 'control');
    assert.equal(first.payload, ping, 'the same Buffer');
  });
});

// ------------------------------------------------------------------ through a FrameParser

/** Fixed, varied masking keys for frames a client sends (what a server parses). */
let keySeed = 1;
function key(): Uint8Array {
  keySeed = (Math.imul(keySeed, 1664525) + 1013904223) >>> 0;
  const k = Buffer.alloc(4);
  k.writeUInt32BE((keySeed ^ 0xa5a5a5a5) >>> 0);
  return k;
}

type Role = 'server' | 'client';

/** A frame as the peer of `role` sends it, built by the library's serializer. */
function wire(role: Role, opcode: number, payload: Uint8Array | string, fin = true, rsv = 0): Buffer {
  const p = typeof payload === 'string' ? utf8(payload) : payload;
  return Buffer.concat(encodeFrame(opcode, p, { fin, rsv, mask: role === 'server' ? key() : null }));
}

function parsing(role: Role, opts: { limits?: Partial<ConnectionLimits>; codec?: MessageCodec | null; stream?: boolean } = {}) {
  const { rec, asm } = make(opts);
  const l = limits(opts.limits);
  const parser = new FrameParser(asm, { role, maxFrameBytes: l.maxFrameBytes, allowedRsv: opts.codec ? opts.codec.rsv : 0 });
  return { rec, asm, parser };
}

/** Feeds `stream` in chunks of `size` bytes, each a fresh copy (the parser unmasks in place). */
function feedChunks(parser: FrameParser, stream: Buffer, size: number): void {
  for (let i = 0; i < stream.length; i += size) parser.push(Buffer.from(stream.subarray(i, i + size)));
}

/** A readable summary of what the assembler handed over. */
function summary(out: Out[]): string[] {
  return out.map((o) => {
    switch (o.kind) {
      case 'message':
        return `${o.binary ? 'binary' : 'text'} ${o.data.toString('hex')}`;
      case 'piece':
        return `piece ${o.data.toString('hex')}`;
      case 'compressed':
        return `compressed ${o.binary ? 'binary' : 'text'} ${Buffer.concat(o.parts).toString('hex')}`;
      case 'control':
        return `control ${o.opcode} ${o.payload.toString('hex')}`;
    }
  });
}

describe('MessageAssembler behind a FrameParser', () => {
  for (const role of ['server', 'client'] as const) {
    it(`${role}: the same messages whatever the input's chunking (whole, every split, byte by byte)`, () => {
      const big = testBytes(5000, 11);
      const stream = Buffer.concat([
        wire(role, Op.Text, 'héllo'),
        wire(role, Op.Binary, big.subarray(0, 2000), false),
        wire(role, Op.Ping, 'ping'),
        wire(role, Op.Continuation, big.subarray(2000, 2001), false),
        wire(role, Op.Continuation, big.subarray(2001), true),
        wire(role, Op.Text, '', false),
        wire(role, Op.Continuation, '€ end', true),
        wire(role, Op.Binary, ''),
      ]);
      const expected = [
        `text ${utf8('héllo').toString('hex')}`,
        `control ${Op.Ping} ${utf8('ping').toString('hex')}`,
        `binary ${big.toString('hex')}`,
        `text ${utf8('€ end').toString('hex')}`,
        'binary ',
      ];
      const whole = parsing(role);
      whole.parser.push(Buffer.from(stream));
      assert.deepEqual(summary(whole.rec.out), expected, 'whole');
      for (const size of [1, 2, 3, 7, 64, 1000]) {
        const p = parsing(role);
        feedChunks(p.parser, stream, size);
        assert.deepEqual(summary(p.rec.out), expected, `chunks of ${size}`);
      }
      for (let cut = 1; cut < stream.length; cut += 37) {
        const p = parsing(role);
        p.parser.push(Buffer.from(stream.subarray(0, cut)));
        p.parser.push(Buffer.from(stream.subarray(cut)));
        assert.deepEqual(summary(p.rec.out), expected, `split at ${cut}`);
      }
    });
  }

  it('a large message read one byte at a time (merged runs of 1-byte pieces) arrives exact', () => {
    const data = testBytes(40_000, 12);
    const stream = Buffer.concat([wire('server', Op.Binary, data.subarray(0, 25_000), false), wire('server', Op.Continuation, data.subarray(25_000), true)]);
    const p = parsing('server');
    feedChunks(p.parser, stream, 1);
    assert.equal(p.rec.messages.length, 1);
    assert.deepEqual(p.rec.messages[0].data, data);
  });

  it('a masked frame that spans reads is unmasked straight into its buffer: exact, and the later reads are left as they came', () => {
    const data = testBytes(300_000, 21);
    const stream = wire('server', Op.Binary, data);
    const p = parsing('server');
    const chunks: Buffer[] = [];
    for (let i = 0; i < stream.length; i += 65_536) chunks.push(Buffer.from(stream.subarray(i, i + 65_536)));
    const copies = chunks.map((c) => Buffer.from(c));
    for (const c of chunks) p.parser.push(c);
    assert.deepEqual(p.rec.messages[0].data, data);
    // The first read holds more than an eighth of the frame: the frame's buffer is made for it, and every read,
    // the first included, is unmasked from, never in place.
    for (let i = 0; i < chunks.length; i++) assert.deepEqual(chunks[i], copies[i], `read ${i} untouched`);
  });

  it('text unmasked straight into its buffer is still checked as it arrives (RFC 6455 section 8.1)', () => {
    const good = Buffer.alloc(200_000, 0x61);
    const bad = Buffer.from(good);
    bad[150_000] = 0xff;
    const okRun = parsing('server');
    feedChunks(okRun.parser, wire('server', Op.Text, good), 65_536);
    assert.equal(okRun.rec.messages[0].data.length, 200_000);
    const p = parsing('server');
    const stream = wire('server', Op.Text, bad);
    assert.throws(() => feedChunks(p.parser, stream, 65_536), InvalidUtf8Error);
    // Cut inside a sequence at the frame's end: fails at the last piece, not before.
    const truncated = Buffer.concat([Buffer.alloc(199_998, 0x61), Buffer.from([0xe2, 0x82])]);
    const q = parsing('server');
    assert.throws(() => feedChunks(q.parser, wire('server', Op.Text, truncated), 65_536), InvalidUtf8Error);
    assert.equal(q.rec.messages.length, 0);
  });

  it('a one-frame message read in one chunk is a view of that chunk, not a copy', () => {
    const p = parsing('client');
    const chunk = wire('client', Op.Binary, testBytes(300, 13));
    p.parser.push(chunk);
    const m = p.rec.messages[0].data;
    assert.equal(m.buffer, chunk.buffer, 'the message shares the read\'s memory');
    assert.equal(m.byteOffset, chunk.byteOffset + 4, 'right after the 4-byte header');
  });

  it('streamed text arrives as the parser reads it, with first/last and an empty final frame', () => {
    const stream = Buffer.concat([wire('server', Op.Text, 'abcd', false), wire('server', Op.Continuation, 'ef', false), wire('server', Op.Continuation, '', true)]);
    const p = parsing('server', { stream: true });
    feedChunks(p.parser, stream, 4);
    const pieces = p.rec.pieces;
    assert.equal(Buffer.concat(pieces.map((x) => x.data)).toString(), 'abcdef');
    assert.deepEqual(pieces.map((x) => x.first), pieces.map((_, i) => i === 0));
    assert.deepEqual(pieces.map((x) => x.last), pieces.map((_, i) => i === pieces.length - 1));
    assert.equal(pieces.at(-1)!.data.length, 0, 'the empty final frame ends the stream');
  });

  it('invalid UTF-8 fails push() at the chunk holding the bad byte', () => {
    const stream = Buffer.concat([wire('client', Op.Text, Buffer.concat([utf8('good text '), Buffer.from([0xff]), utf8(' never read')]))]);
    const bad = 2 + 10; // header, then 10 good bytes
    const p = parsing('client');
    p.parser.push(Buffer.from(stream.subarray(0, bad)));
    assertBadUtf8(() => p.parser.push(Buffer.from(stream.subarray(bad, bad + 1))));
    assert.equal(p.parser.failed, true);
    assert.equal(p.rec.out.length, 0);
  });

  it('a message over maxMessageBytes fails as soon as the frame header arrives', () => {
    const frame = wire('server', Op.Binary, testBytes(2000, 14));
    const p = parsing('server', { limits: { maxMessageBytes: 1999, maxFrameBytes: 1 << 20 } });
    // The 4-byte header and the key: no payload yet.
    assertLimit(() => p.parser.push(Buffer.from(frame.subarray(0, 8))), 'maxMessageBytes', 1009);
  });

  it('a flood of empty continuations fails with 1008 through the parser', () => {
    const frames = [wire('client', Op.Binary, '', false)];
    for (let i = 0; i < 20; i++) frames.push(wire('client', Op.Continuation, '', false));
    const p = parsing('client', { limits: { maxMessageBytes: 10 * MIN_FRAME_CHARGE, maxFrameBytes: 1 << 20 } });
    assertLimit(() => p.parser.push(Buffer.concat(frames)), 'maxMessageBytes', 1008);
  });

  it('compressed messages with RSV1 reach onCompressed; RSV1 on a continuation fails push() with ERR_RSV1_ON_CONTINUATION', () => {
    const codec = new StubCodec();
    const p = parsing('server', { codec });
    p.parser.push(Buffer.concat([wire('server', Op.Text, Buffer.from([0xff, 0xfe]), false, RSV1), wire('server', Op.Continuation, Buffer.from([0xfd]), true)]));
    assert.deepEqual(summary(p.rec.out), ['compressed text fffefd']);
    const bad = parsing('server', { codec });
    assert.throws(
      () => bad.parser.push(Buffer.concat([wire('server', Op.Text, 'a', false, RSV1), wire('server', Op.Continuation, 'b', true, RSV1)])),
      (err: unknown) => err instanceof ProtocolError && err.code === 'ERR_RSV1_ON_CONTINUATION' && err.closeCode === 1002,
    );
  });
});
