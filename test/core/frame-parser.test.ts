import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FrameParser, type FrameSink } from '../../src/core/frame-parser.js';
import { LimitExceededError, ProtocolError, WebSocketError } from '../../src/core/errors.js';
import { compressedBound } from '../../src/core/message-codec.js';
import { concat, frame, Op, peerFrame, RSV1, RSV2, RSV3, testBytes } from '../helpers/frames.js';

type Role = 'server' | 'client';

/** What the sink was told, with every data piece copied (the parser hands out views of its input). */
type Call =
  | { kind: 'start'; opcode: number; fin: boolean; rsv: number; length: number }
  | { kind: 'data'; data: Buffer; remaining: number }
  | { kind: 'end'; fin: boolean }
  | { kind: 'control'; opcode: number; payload: Buffer };

class RecordingSink implements FrameSink {
  calls: Call[] = [];
  onDataFrameStart(opcode: number, fin: boolean, rsv: number, length: number): void {
    this.calls.push({ kind: 'start', opcode, fin, rsv, length });
  }
  onDataPayload(data: Buffer, remaining: number): void {
    assert.ok(data.length > 0, 'a data piece is never empty');
    this.calls.push({ kind: 'data', data: Buffer.from(data), remaining });
  }
  onDataFrameEnd(fin: boolean): void {
    this.calls.push({ kind: 'end', fin });
  }
  onControlFrame(opcode: number, payload: Buffer): void {
    this.calls.push({ kind: 'control', opcode, payload: Buffer.from(payload) });
  }
}

/**
 * Merges each frame's data pieces into one, after checking that every piece's
 * `remaining` is the frame length minus what came so far, and that each frame
 * is start, pieces, end. The result does not depend on how input was split.
 */
function merged(calls: Call[]): Call[] {
  const out: Call[] = [];
  let open: { start: Extract<Call, { kind: 'start' }>; parts: Buffer[]; got: number } | null = null;
  for (const c of calls) {
    if (c.kind === 'start') {
      assert.equal(open, null, 'a data frame starts while another is open');
      open = { start: c, parts: [], got: 0 };
      out.push(c);
    } else if (c.kind === 'data') {
      assert.ok(open, 'payload outside a data frame');
      open.got += c.data.length;
      assert.equal(c.remaining, open.start.length - open.got, 'remaining');
      open.parts.push(c.data);
    } else if (c.kind === 'end') {
      assert.ok(open, 'end outside a data frame');
      assert.equal(open.got, open.start.length, 'frame ended before its payload');
      assert.equal(c.fin, open.start.fin);
      if (open.parts.length > 0) out.push({ kind: 'data', data: Buffer.concat(open.parts), remaining: 0 });
      out.push(c);
      open = null;
    } else {
      out.push(c);
    }
  }
  return out;
}

interface Outcome {
  calls: Call[];
  error: unknown;
  /** Index of the chunk whose push() threw. */
  errorChunk: number;
}

function feed(role: Role, chunks: Buffer[], opts: { maxFrameBytes?: number; allowedRsv?: number } = {}): Outcome & { parser: FrameParser } {
  const sink = new RecordingSink();
  const parser = new FrameParser(sink, { role, maxFrameBytes: opts.maxFrameBytes ?? 1 << 24, allowedRsv: opts.allowedRsv });
  let error: unknown = undefined;
  let errorChunk = -1;
  chunks.forEach((chunk, i) => {
    try {
      parser.push(chunk);
    } catch (err) {
      assert.equal(error, undefined, 'push() threw twice: after a failure the parser must ignore input');
      error = err;
      errorChunk = i;
    }
  });
  return { calls: sink.calls, error, errorChunk, parser };
}

/** Fresh copies of bytes[a, b) per piece: push() takes ownership and unmasks in place. */
function pieces(bytes: Buffer, cuts: number[]): Buffer[] {
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...cuts, bytes.length]) {
    out.push(Buffer.from(bytes.subarray(prev, c)));
    prev = c;
  }
  return out;
}

function everyByte(bytes: Buffer): Buffer[] {
  return Array.from(bytes, (b) => Buffer.from([b]));
}

/** The frame as the peer of `role` sends it: clients mask (section 5.3), servers do not. */
const peer = peerFrame;

/**
 * Parses `bytes` whole, split in two at every position, and one byte at a
 * time; all must give the same merged calls. Returns them.
 */
function parseAllWays(role: Role, bytes: Buffer, opts: { maxFrameBytes?: number; allowedRsv?: number } = {}): Call[] {
  const whole = feed(role, [Buffer.from(bytes)], opts);
  assert.equal(whole.error, undefined, `unexpected error: ${String(whole.error)}`);
  const expected = merged(whole.calls);
  for (let p = 1; p < bytes.length; p++) {
    const r = feed(role, pieces(bytes, [p]), opts);
    assert.equal(r.error, undefined, `split at ${p}: ${String(r.error)}`);
    assert.deepEqual(merged(r.calls), expected, `split at ${p}`);
  }
  const r = feed(role, everyByte(bytes), opts);
  assert.equal(r.error, undefined, `byte by byte: ${String(r.error)}`);
  assert.deepEqual(merged(r.calls), expected, 'byte by byte');
  return expected;
}

function start(opcode: number, length: number, fin = true, rsv = 0): Call {
  return { kind: 'start', opcode, fin, rsv, length };
}
function data(d: Buffer | string): Call {
  return { kind: 'data', data: Buffer.from(d), remaining: 0 };
}
function end(fin = true): Call {
  return { kind: 'end', fin };
}
function control(opcode: number, payload: Buffer | string = ''): Call {
  return { kind: 'control', opcode, payload: Buffer.from(payload) };
}

const bytes = testBytes;

const ROLES: Role[] = ['server', 'client'];

describe('FrameParser: valid input in any chunking', () => {
  for (const role of ROLES) {
    it(`${role}: data frames at every length boundary, whole, split anywhere, byte by byte`, () => {
      for (const n of [0, 1, 125, 126, 127, 128, 300]) {
        const payload = bytes(n, n);
        const calls = parseAllWays(role, peer(role, { opcode: Op.Binary, payload }));
        assert.deepEqual(calls, n === 0 ? [start(Op.Binary, 0), end()] : [start(Op.Binary, n), data(payload), end()], `length ${n}`);
      }
    });

    it(`${role}: 65535 and 65536 bytes (16- and 64-bit lengths), whole and in a few chunkings`, () => {
      for (const n of [65535, 65536]) {
        const payload = bytes(n, n);
        const f = peer(role, { opcode: Op.Text, payload });
        const expected = [start(Op.Text, n), data(payload), end()];
        for (const cuts of [[], [1], [2], [3], [4], [9], [13], [14], [f.length - 1], [997, 1994, 40000]]) {
          assert.deepEqual(merged(feed(role, pieces(f, cuts)).calls), expected, `length ${n}, cuts ${cuts.join(',')}`);
        }
      }
    });

    it(`${role}: control frames of 0..125 bytes arrive whole, however they are split`, () => {
      for (const n of [0, 1, 2, 3, 4, 5, 63, 124, 125]) {
        const payload = bytes(n, 100 + n);
        for (const opcode of [Op.Ping, Op.Pong, Op.Close]) {
          assert.deepEqual(parseAllWays(role, peer(role, { opcode, payload })), [control(opcode, payload)], `opcode ${opcode} length ${n}`);
        }
      }
    });

    it(`${role}: many frames in one chunk, including control frames between fragments and empty frames`, () => {
      const stream = concat(
        peer(role, { opcode: Op.Text, payload: 'Hello' }),
        peer(role, { opcode: Op.Binary, fin: false, payload: 'ab' }),
        peer(role, { opcode: Op.Ping, payload: 'p' }),
        peer(role, { opcode: Op.Continuation, fin: false }),
        peer(role, { opcode: Op.Pong }),
        peer(role, { opcode: Op.Continuation, fin: true, payload: 'cd' }),
        peer(role, { opcode: Op.Text }),
        peer(role, { opcode: Op.Close, payload: Buffer.from([3, 232]) }),
      );
      assert.deepEqual(parseAllWays(role, stream), [
        start(Op.Text, 5), data('Hello'), end(),
        start(Op.Binary, 2, false), data('ab'), end(false),
        control(Op.Ping, 'p'),
        start(Op.Continuation, 0, false), end(false),
        control(Op.Pong),
        start(Op.Continuation, 2, true), data('cd'), end(),
        start(Op.Text, 0), end(),
        control(Op.Close, Buffer.from([3, 232])),
      ]);
    });

    it(`${role}: non-minimal length encodings are accepted (section 5.2's "minimal number of bytes" binds the sender)`, () => {
      const stream = concat(
        peer(role, { opcode: Op.Text, payload: 'abc', lengthEncoding: 16 }),
        peer(role, { opcode: Op.Text, payload: 'defg', lengthEncoding: 64 }),
        peer(role, { opcode: Op.Ping, payload: 'x', lengthEncoding: 16 }),
        peer(role, { opcode: Op.Text, payload: bytes(200, 1), lengthEncoding: 64 }),
      );
      assert.deepEqual(parseAllWays(role, stream), [
        start(Op.Text, 3), data('abc'), end(),
        start(Op.Text, 4), data('defg'), end(),
        control(Op.Ping, 'x'),
        start(Op.Text, 200), data(bytes(200, 1)), end(),
      ]);
    });
  }

  it('reports each piece with the payload bytes still to come, in order, one call per chunk', () => {
    const payload = bytes(10, 1);
    const f = peer('server', { opcode: Op.Binary, payload });
    // Header (6 bytes masked) in the first chunk, then 3 + 3 + 4 payload bytes.
    const r = feed('server', pieces(f, [6, 9, 12]));
    assert.deepEqual(r.calls, [
      start(Op.Binary, 10),
      { kind: 'data', data: payload.subarray(0, 3), remaining: 7 },
      { kind: 'data', data: payload.subarray(3, 6), remaining: 4 },
      { kind: 'data', data: payload.subarray(6), remaining: 0 },
      end(),
    ]);
  });

  it('a data frame start is reported as soon as its header is complete, before any payload', () => {
    const f = peer('server', { opcode: Op.Text, payload: bytes(1000, 2), lengthEncoding: 16 });
    const r = feed('server', [Buffer.from(f.subarray(0, 8))]);
    assert.deepEqual(r.calls, [start(Op.Text, 1000)]);
  });

  it('unmasks every mask key position correctly across splits (section 5.3 offsets)', () => {
    const payload = bytes(23, 9);
    for (const key of [[0, 0, 0, 0], [255, 255, 255, 255], [1, 2, 3, 4], [0x37, 0xfa, 0x21, 0x3d]]) {
      const f = frame({ opcode: Op.Binary, payload, mask: key });
      assert.deepEqual(parseAllWays('server', f), [start(Op.Binary, 23), data(payload), end()]);
    }
  });

  it('accepts RSV bits that an extension gave a meaning to (allowedRsv), and only those', () => {
    const ok = concat(peer('server', { opcode: Op.Text, rsv: RSV1, payload: 'z' }), peer('server', { opcode: Op.Binary, payload: 'y' }));
    assert.deepEqual(parseAllWays('server', ok, { allowedRsv: RSV1 }), [start(Op.Text, 1, true, RSV1), data('z'), end(), start(Op.Binary, 1), data('y'), end()]);
    const bad = feed('server', [peer('server', { opcode: Op.Text, rsv: RSV2, payload: 'z' })], { allowedRsv: RSV1 });
    assert.ok(bad.error instanceof ProtocolError);
    assert.equal(bad.error.code, 'ERR_RESERVED_BITS');
    // allowedRsv may be changed after construction (negotiation ends after the parser exists).
    const sink = new RecordingSink();
    const parser = new FrameParser(sink, { role: 'server', maxFrameBytes: 100 });
    parser.allowedRsv = RSV1;
    parser.push(peer('server', { opcode: Op.Text, rsv: RSV1, payload: 'q' }));
    assert.deepEqual(merged(sink.calls), [start(Op.Text, 1, true, RSV1), data('q'), end()]);
  });

  it("frames of a message an extension transformed (RSV1 on its first frame) may pass maxFrameBytes by deflate's bound, others may not", () => {
    const max = 10_000;
    const bound = compressedBound(max);
    const first = peer('server', { opcode: Op.Binary, rsv: RSV1, fin: false, payload: Buffer.alloc(bound, 1) });
    const cont = peer('server', { opcode: Op.Continuation, payload: Buffer.alloc(bound, 2) });
    const ok = feed('server', [concat(first, cont)], { maxFrameBytes: max, allowedRsv: RSV1 });
    assert.equal(ok.error, undefined, 'a compressed message: its frames, continuation included, up to the bound');
    const over = feed('server', [peer('server', { opcode: Op.Binary, rsv: RSV1, payload: Buffer.alloc(bound + 1) })], { maxFrameBytes: max, allowedRsv: RSV1 });
    assert.ok(over.error instanceof LimitExceededError, 'past the bound');
    const plain = feed('server', [peer('server', { opcode: Op.Binary, payload: Buffer.alloc(max + 1) })], { maxFrameBytes: max, allowedRsv: RSV1 });
    assert.ok(plain.error instanceof LimitExceededError, 'an untransformed frame: the limit itself');
    // The allowance ends with the message: the next, untransformed one is held to the limit.
    const after = feed('server', [concat(first, peer('server', { opcode: Op.Continuation, payload: 'x' }), peer('server', { opcode: Op.Binary, payload: Buffer.alloc(max + 1) }))], { maxFrameBytes: max, allowedRsv: RSV1 });
    assert.ok(after.error instanceof LimitExceededError);
  });
});

interface BadCase {
  name: string;
  role: Role;
  /** Valid frames before the bad one (their calls must all arrive). */
  before?: Buffer;
  bad: Buffer;
  /** Valid frames after the bad one in the same chunk (must not be processed). */
  after?: Buffer;
  code: string;
  closeCode: number;
  cls: typeof WebSocketError;
  /** Byte offsets, inside `bad`, between which the error must be raised when fed byte by byte. */
  at: [earliest: number, latest: number];
  maxFrameBytes?: number;
}

const VALID_TEXT = (role: Role) => peer(role, { opcode: Op.Text, payload: 'ok' });
const AFTER = (role: Role) => concat(peer(role, { opcode: Op.Text, payload: 'after' }), peer(role, { opcode: Op.Ping, payload: 'after' }));

function badCases(): BadCase[] {
  const cases: BadCase[] = [];
  for (const role of ROLES) {
    const hdrEnd = (f: Buffer, payloadLength: number) => f.length - payloadLength - 1;
    for (const rsv of [RSV1, RSV2, RSV3, RSV1 | RSV2, RSV1 | RSV3, RSV2 | RSV3, RSV1 | RSV2 | RSV3]) {
      for (const opcode of [Op.Text, Op.Binary, Op.Ping, Op.Close]) {
        cases.push({ name: `rsv ${rsv} on opcode ${opcode}`, role, bad: peer(role, { opcode, rsv, payload: 'x' }), code: 'ERR_RESERVED_BITS', closeCode: 1002, cls: ProtocolError, at: [0, 0] });
      }
    }
    for (const opcode of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
      for (const payload of ['', 'reserved']) {
        cases.push({ name: `reserved opcode ${opcode} with ${payload.length} bytes`, role, bad: peer(role, { opcode, payload }), code: 'ERR_RESERVED_OPCODE', closeCode: 1002, cls: ProtocolError, at: [0, 0] });
      }
    }
    for (const opcode of [Op.Ping, Op.Pong, Op.Close]) {
      cases.push({ name: `fragmented control ${opcode}`, role, bad: peer(role, { opcode, fin: false, payload: 'ab' }), code: 'ERR_FRAGMENTED_CONTROL', closeCode: 1002, cls: ProtocolError, at: [0, 0] });
    }
    for (const fin of [true, false]) {
      cases.push({ name: `continuation fin=${fin} without a message`, role, bad: peer(role, { opcode: Op.Continuation, fin, payload: 'c' }), code: 'ERR_UNEXPECTED_CONTINUATION', closeCode: 1002, cls: ProtocolError, at: [0, 0] });
    }
    for (const opcode of [Op.Text, Op.Binary]) {
      for (const fin of [true, false]) {
        cases.push({
          name: `opcode ${opcode} fin=${fin} inside a fragmented message`,
          role,
          before: peer(role, { opcode: Op.Text, fin: false, payload: 'frag1' }),
          bad: peer(role, { opcode, fin, payload: 'frag2' }),
          code: 'ERR_EXPECTED_CONTINUATION',
          closeCode: 1002,
          cls: ProtocolError,
          at: [0, 0],
        });
      }
    }
    const tooLong = peer(role, { opcode: Op.Ping, payload: bytes(126, 1) });
    cases.push({ name: 'ping of 126 bytes', role, bad: tooLong, code: 'ERR_CONTROL_TOO_LONG', closeCode: 1002, cls: ProtocolError, at: [1, hdrEnd(tooLong, 126)] });
    const topBit = peer(role, { opcode: Op.Binary, payload: 'x', declaredLength: 2n ** 63n + 1n });
    cases.push({ name: '64-bit length with the top bit set', role, bad: topBit, code: 'ERR_BAD_LENGTH', closeCode: 1002, cls: ProtocolError, at: [2, hdrEnd(topBit, 1)] });
    const huge = peer(role, { opcode: Op.Binary, payload: 'x', declaredLength: 2n ** 53n });
    cases.push({ name: '64-bit length of 2^53', role, bad: huge, code: 'ERR_LIMIT_MAX_FRAME_BYTES', closeCode: 1009, cls: LimitExceededError, at: [2, hdrEnd(huge, 1)] });
    const big = peer(role, { opcode: Op.Binary, payload: bytes(101, 3) });
    cases.push({ name: 'frame over maxFrameBytes', role, bad: big, code: 'ERR_LIMIT_MAX_FRAME_BYTES', closeCode: 1009, cls: LimitExceededError, at: [1, hdrEnd(big, 101)], maxFrameBytes: 100 });
  }
  // Section 5.1: a server fails on an unmasked frame, a client on a masked one.
  const unmasked = frame({ opcode: Op.Text, payload: 'hi' });
  cases.push({ name: 'unmasked frame to a server', role: 'server', bad: unmasked, code: 'ERR_MISSING_MASK', closeCode: 1002, cls: ProtocolError, at: [1, 1] });
  const masked = frame({ opcode: Op.Text, payload: 'hi', mask: [1, 2, 3, 4] });
  cases.push({ name: 'masked frame to a client', role: 'client', bad: masked, code: 'ERR_UNEXPECTED_MASK', closeCode: 1002, cls: ProtocolError, at: [1, 5] });
  const maskedPing = frame({ opcode: Op.Ping, payload: 'hi', mask: [1, 2, 3, 4] });
  cases.push({ name: 'masked ping to a client', role: 'client', bad: maskedPing, code: 'ERR_UNEXPECTED_MASK', closeCode: 1002, cls: ProtocolError, at: [1, 5] });
  return cases;
}

describe('FrameParser: protocol errors (RFC 6455 sections 5.1-5.5)', () => {
  for (const c of badCases()) {
    it(`${c.role}: ${c.name} -> ${c.code} (${c.closeCode})`, () => {
      const before = c.before ?? VALID_TEXT(c.role);
      const stream = concat(before, c.bad, AFTER(c.role));
      const opts = { maxFrameBytes: c.maxFrameBytes };
      const expectedBefore = merged(feed(c.role, [Buffer.from(before)], opts).calls);
      const check = (r: Outcome, how: string) => {
        assert.ok(r.error instanceof c.cls, `${how}: expected ${c.cls.name}, got ${String(r.error)}`);
        const err = r.error as WebSocketError;
        assert.equal(err.code, c.code, how);
        assert.equal(err.closeCode, c.closeCode, how);
        // Everything before the bad frame was delivered, nothing of it or after it.
        // (Every bad header here is refused before the frame is announced, so nothing of it may appear.)
        assert.deepEqual(merged(r.calls), expectedBefore, how);
      };
      // One chunk holding the good frame, the bad one and more good ones: the parser stops at the bad one.
      const whole = feed(c.role, [Buffer.from(stream)], opts);
      check(whole, 'one chunk');
      assert.equal(whole.parser.failed, true);
      // Byte by byte: the error comes while the bad frame's decisive bytes arrive, not later.
      const bb = feed(c.role, everyByte(stream), opts);
      check(bb, 'byte by byte');
      const at = bb.errorChunk - before.length;
      assert.ok(at >= c.at[0] && at <= c.at[1], `byte by byte: failed at byte ${at} of the bad frame, expected ${c.at[0]}..${c.at[1]}`);
      for (let p = 1; p < stream.length; p++) check(feed(c.role, pieces(stream, [p]), opts), `split at ${p}`);
    });
  }

  it('once failed, the parser ignores all further input', () => {
    const sink = new RecordingSink();
    const parser = new FrameParser(sink, { role: 'server', maxFrameBytes: 1000 });
    assert.throws(() => parser.push(peer('server', { opcode: 3 })), ProtocolError);
    assert.equal(parser.failed, true);
    parser.push(peer('server', { opcode: Op.Text, payload: 'ignored' }));
    parser.push(peer('server', { opcode: 4 }));
    assert.deepEqual(sink.calls, []);
  });

  it('an error thrown by the sink stops the parser and comes out of push()', () => {
    const calls: string[] = [];
    const boom = new ProtocolError('ERR_TEST', 'sink refused');
    const sink: FrameSink = {
      onDataFrameStart: () => calls.push('start'),
      onDataPayload: (d) => {
        calls.push('data:' + d.toString());
        if (d.toString().includes('bad')) throw boom;
      },
      onDataFrameEnd: () => calls.push('end'),
      onControlFrame: () => calls.push('control'),
    };
    const parser = new FrameParser(sink, { role: 'client', maxFrameBytes: 1000 });
    const stream = concat(frame({ opcode: Op.Text, payload: 'bad' }), frame({ opcode: Op.Ping }), frame({ opcode: Op.Text, payload: 'x' }));
    assert.throws(() => parser.push(stream), (e) => e === boom);
    assert.equal(parser.failed, true);
    parser.push(frame({ opcode: Op.Text, payload: 'more' }));
    assert.deepEqual(calls, ['start', 'data:bad']);
  });

  it('refuses an oversized frame on its header, before any payload arrives', () => {
    const f = peer('server', { opcode: Op.Binary, payload: bytes(70000, 1) });
    const sink = new RecordingSink();
    const parser = new FrameParser(sink, { role: 'server', maxFrameBytes: 65536 });
    // Header only: 2 + 8 + 4 bytes.
    assert.throws(() => parser.push(Buffer.from(f.subarray(0, 14))), LimitExceededError);
    assert.deepEqual(sink.calls, []);
  });

  it('maxFrameBytes is inclusive: a frame of exactly the limit passes', () => {
    const payload = bytes(100, 4);
    assert.deepEqual(parseAllWays('server', peer('server', { opcode: Op.Binary, payload }), { maxFrameBytes: 100 }), [start(Op.Binary, 100), data(payload), end()]);
  });
});

describe('FrameParser: a bound on frames per push (maxFrames)', () => {
  for (const role of ROLES) {
    it(`${role}: stops at the frame boundary after maxFrames whole frames and returns the bytes consumed; the rest parses the same later`, () => {
      const frames = [
        peer(role, { opcode: Op.Text, payload: 'one' }),
        peer(role, { opcode: Op.Ping, payload: 'p' }),
        peer(role, { opcode: Op.Binary, payload: '', fin: false }),
        peer(role, { opcode: Op.Continuation, payload: 'xy' }),
        peer(role, { opcode: Op.Text, payload: '' }),
      ];
      const all = concat(...frames);
      const expected = merged(feed(role, [Buffer.from(all)]).calls);
      for (let budget = 1; budget <= frames.length; budget++) {
        const sink = new RecordingSink();
        const parser = new FrameParser(sink, { role, maxFrameBytes: 1 << 20 });
        let rest = Buffer.from(all);
        let pushes = 0;
        let done = 0;
        while (rest.length > 0) {
          const used = parser.push(rest, budget);
          pushes++;
          assert.ok(used > 0 && used <= rest.length, `push ${pushes} consumed ${used} of ${rest.length}`);
          done += used;
          // Every stop is at a frame boundary: exactly the bytes of the frames parsed so far.
          let boundary = 0;
          let i = 0;
          while (boundary < done) boundary += frames[i++].length;
          assert.equal(boundary, done, 'stopped inside a frame');
          rest = rest.subarray(used);
          assert.ok(pushes <= frames.length, 'no progress');
        }
        assert.equal(pushes, Math.ceil(frames.length / budget), `budget ${budget}`);
        assert.deepEqual(merged(sink.calls), expected, `budget ${budget}`);
      }
    });
  }

  it('returns the whole length when the chunk ends inside a frame (the partial frame is buffered, not returned)', () => {
    const f = peer('server', { opcode: Op.Binary, payload: bytes(300, 1) });
    const sink = new RecordingSink();
    const parser = new FrameParser(sink, { role: 'server', maxFrameBytes: 1 << 20 });
    assert.equal(parser.push(Buffer.from(f.subarray(0, 3)), 1), 3, 'half a header');
    assert.equal(parser.push(Buffer.from(f.subarray(3, 100)), 1), 97, 'the rest of the header and part of the payload');
    const tail = Buffer.concat([f.subarray(100), peer('server', { opcode: Op.Ping, payload: 'x' })]);
    // The frame that was in progress completes and counts: the ping waits for the next push.
    assert.equal(parser.push(Buffer.from(tail), 1), f.length - 100);
    assert.deepEqual(merged(sink.calls), [start(Op.Binary, 300), data(bytes(300, 1)), end()]);
  });

  it('a budget of Infinity (the default) takes everything', () => {
    const all = concat(...Array.from({ length: 5000 }, () => peer('server', { opcode: Op.Ping, payload: '' })));
    const sink = new RecordingSink();
    const parser = new FrameParser(sink, { role: 'server', maxFrameBytes: 1 << 20 });
    assert.equal(parser.push(Buffer.from(all)), all.length);
    assert.equal(sink.calls.length, 5000);
  });
});

describe('FrameParser: betweenMessages (nothing under way that a new parser would not have)', () => {
  for (const role of ROLES) {
    it(`${role}: true only where a message ends and no header, frame, control frame or fragmented message is part-read`, () => {
      const parser = new FrameParser(new RecordingSink(), { role, maxFrameBytes: 1 << 20 });
      const at = (bytes: Buffer): boolean => {
        parser.push(Buffer.from(bytes));
        return parser.betweenMessages;
      };
      assert.equal(parser.betweenMessages, true, 'new');
      const whole = peer(role, { opcode: Op.Binary, payload: 'abcdef' });
      assert.equal(at(whole), true, 'after a whole message');
      assert.equal(at(whole.subarray(0, 1)), false, 'a header cut after one byte');
      assert.equal(at(whole.subarray(1, 4)), false, 'the rest of the header and part of the payload');
      assert.equal(at(whole.subarray(4)), true, 'the payload completed');
      const ping = peer(role, { opcode: Op.Ping, payload: 'ping!' });
      assert.equal(at(ping.subarray(0, ping.length - 2)), false, 'a control frame part-read');
      assert.equal(at(ping.subarray(ping.length - 2)), true);
      assert.equal(at(peer(role, { opcode: Op.Text, payload: 'first', fin: false })), false, 'a fragmented message under way');
      assert.equal(at(peer(role, { opcode: Op.Ping, payload: '' })), false, 'a ping between its fragments');
      assert.equal(at(peer(role, { opcode: Op.Continuation, payload: 'last' })), true, 'its final fragment');
      parser.stop();
      assert.equal(parser.betweenMessages, false, 'stopped');
    });
  }
});
