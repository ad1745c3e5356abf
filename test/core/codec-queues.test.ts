/**
 * CodecQueues (src/core/codec-queues.ts) with a fake codec whose jobs finish
 * only when the test says so, in any order: received messages are delivered
 * and frames written in their order whatever order the codec finishes in;
 * completions after the queues were dropped are ignored; dropped output is
 * counted (S4); the codec is released once, after the output it holds is
 * written; compress() copies what it does not own (S2); restored text must
 * be UTF-8 (RFC 6455 section 8.1, 1007); a client's frames are masked with
 * the keys of its mask source (section 5.3) and RSV1 is on a message's first
 * frame only (RFC 7692 section 6.1).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CodecQueues, type CodecQueuesHost } from '../../src/core/codec-queues.js';
import type { ConnectionEvent, ConnectionHost } from '../../src/core/connection-types.js';
import { InvalidUtf8Error, LimitExceededError, ProtocolError, WebSocketError } from '../../src/core/errors.js';
import type { MessageCodec } from '../../src/core/message-codec.js';
import { decodeFrames, Op, RSV1, testBytes, utf8 } from '../helpers/frames.js';

type Done = (e: WebSocketError | null, r: Buffer | null) => void;

/** Reverses bytes as its "compression"; every job waits for the test to finish it. */
class FakeCodec implements MessageCodec {
  readonly name = 'fake';
  readonly rsv = RSV1;
  readonly compressesOutput = true;
  readonly compressJobs: Array<{ data: Buffer; done: Done; final: boolean }> = [];
  readonly decompressJobs: Array<{ parts: Buffer[]; max: number; done: Done }> = [];
  closeCalls = 0;
  /** What the wire had received when close() was called. */
  writesAtClose = -1;
  constructor(private readonly wire?: Wire) {}
  shouldCompress(): boolean {
    return true;
  }
  compress(data: Buffer, done: Done, final: boolean): void {
    this.compressJobs.push({ data, done, final });
  }
  decompress(parts: Buffer[], max: number, done: Done): void {
    this.decompressJobs.push({ parts, max, done });
  }
  close(): void {
    this.closeCalls++;
    this.writesAtClose = this.wire?.writes.length ?? -1;
  }
  finishCompress(i: number): void {
    const j = this.compressJobs[i];
    j.done(null, Buffer.from(j.data).reverse());
  }
  finishDecompress(i: number): void {
    const j = this.decompressJobs[i];
    j.done(null, Buffer.concat(j.parts).reverse());
  }
}

/** The connection's side: records, in one timeline, what the queues hand back. */
class Host implements CodecQueuesHost {
  readonly log: string[] = [];
  readonly errors: Array<{ error: WebSocketError; input: boolean }> = [];
  afterCodecCalls = 0;
  onInflated(binary: boolean, data: Buffer): void {
    this.log.push(`${binary ? 'bin' : 'text'} ${data.toString('latin1')}`);
  }
  onInputDrained(): void {
    this.log.push('drained');
  }
  onCodecError(error: WebSocketError, input: boolean): void {
    this.errors.push({ error, input });
    this.log.push(`error ${input ? 'input' : 'output'} ${error.code}`);
  }
  afterCodec(): void {
    this.afterCodecCalls++;
    this.log.push('after');
  }
  /** The log without the bookkeeping entries. */
  get delivered(): string[] {
    return this.log.filter((l) => l !== 'after' && l !== 'drained');
  }
}

/** The wire (the connection's host): records every write with its flags, keeping the chunks given. */
class Wire implements ConnectionHost {
  readonly writes: Array<{ chunks: Buffer[]; urgent: boolean; endsMessage: boolean; opcode: number }> = [];
  onEvent(_e: ConnectionEvent): void {
    throw new Error('the codec queues never raise events');
  }
  write(chunks: Buffer[], urgent: boolean, endsMessage: boolean, opcode: number): void {
    this.writes.push({ chunks, urgent, endsMessage, opcode });
  }
  frames() {
    return this.writes.map((w) => {
      const f = decodeFrames(Buffer.concat(w.chunks));
      assert.equal(f.length, 1, 'one whole frame per write');
      return f[0];
    });
  }
}

/** Reproducible, distinct masking keys, remembering which were handed out. */
function maskSource() {
  const given: Buffer[] = [];
  let x = 99;
  const source = (): Uint8Array => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    const k = Buffer.alloc(4);
    k.writeUInt32BE((x ^ 0x5bd1e995) >>> 0);
    given.push(Buffer.from(k));
    return k;
  };
  return { source, given };
}

function setup(mask: (() => Uint8Array) | null = null) {
  const host = new Host();
  const wire = new Wire();
  const codec = new FakeCodec(wire);
  const q = new CodecQueues(codec, host, wire, mask);
  return { host, wire, codec, q };
}

const rev = (s: string) => Buffer.from(s, 'latin1').reverse();
const latin = (b: Buffer) => b.toString('latin1');

function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((x, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((p) => [x, ...p]));
}

/** A plain frame (one the codec does not transform), as the frame sender would queue it. */
function plainFrame(opcode: number, payload: string): Buffer[] {
  const p = utf8(payload);
  return [Buffer.concat([Buffer.from([0x80 | opcode, p.length]), p])];
}

// ------------------------------------------------------------------ input

describe('CodecQueues: received messages', () => {
  it('are delivered in arrival order whatever order the codec completes in', () => {
    for (const order of permutations([0, 1, 2, 3])) {
      const { host, codec, q } = setup();
      q.decompress(false, [rev('zero')], 100);
      q.decompress(true, [rev('one')], 100);
      q.decompress(false, [rev('two')], 100);
      q.decompress(true, [rev('three')], 100);
      assert.equal(q.pendingInputMessages, 4);
      for (const i of order) codec.finishDecompress(i);
      assert.deepEqual(host.delivered, ['text zero', 'bin one', 'text two', 'bin three'], `completed in order ${order}`);
      assert.equal(q.pendingInputMessages, 0);
    }
  });

  it('nothing is delivered while an earlier message is still with the codec', () => {
    const { host, codec, q } = setup();
    q.decompress(false, [rev('first')], 100);
    q.decompress(false, [rev('second')], 100);
    codec.finishDecompress(1);
    assert.deepEqual(host.delivered, []);
    assert.equal(q.pendingInputMessages, 2);
    codec.finishDecompress(0);
    assert.deepEqual(host.delivered, ['text first', 'text second']);
  });

  it('the codec gets the parts and the limit as given', () => {
    const { codec, q } = setup();
    const parts = [utf8('a'), utf8('bc')];
    q.decompress(true, parts, 1234);
    assert.equal(codec.decompressJobs[0].parts, parts);
    assert.equal(codec.decompressJobs[0].max, 1234);
  });

  it('queueMessage(): false when nothing is pending (deliver it now), true behind a pending one, delivered in its turn', () => {
    const { host, codec, q } = setup();
    assert.equal(q.queueMessage(false, utf8('direct')), false);
    assert.deepEqual(host.log, [], 'a message not queued is not delivered by the queues');
    q.decompress(false, [rev('A')], 100);
    assert.equal(q.queueMessage(true, utf8('p')), true);
    q.decompress(false, [rev('B')], 100);
    assert.equal(q.queueMessage(false, utf8('q')), true);
    assert.equal(q.pendingInputMessages, 4);
    codec.finishDecompress(1);
    assert.deepEqual(host.delivered, []);
    codec.finishDecompress(0);
    assert.deepEqual(host.delivered, ['text A', 'bin p', 'text B', 'text q']);
    assert.equal(q.queueMessage(false, utf8('later')), false, 'nothing pending any more');
  });

  it('onInputDrained() once everything handed to the codec is delivered, not before', () => {
    const { host, codec, q } = setup();
    q.decompress(false, [rev('A')], 100);
    q.queueMessage(false, utf8('b'));
    q.decompress(false, [rev('C')], 100);
    codec.finishDecompress(0);
    assert.deepEqual(host.log, ['text A', 'text b', 'after'], 'C still pending: not drained');
    codec.finishDecompress(1);
    assert.deepEqual(host.log, ['text A', 'text b', 'after', 'text C', 'drained', 'after']);
  });

  it('afterCodec() once per completion, after what it produced was handed over', () => {
    const { host, codec, q } = setup();
    q.decompress(false, [rev('A')], 100);
    q.decompress(false, [rev('B')], 100);
    q.decompress(false, [rev('C')], 100);
    codec.finishDecompress(2);
    codec.finishDecompress(0);
    codec.finishDecompress(1);
    assert.equal(host.afterCodecCalls, 3);
    assert.deepEqual(host.log, ['after', 'text A', 'after', 'text B', 'text C', 'drained', 'after']);
  });

  it('completions after dropInput() are ignored: no message, no error, no afterCodec', () => {
    const { host, codec, q } = setup();
    q.decompress(false, [rev('dropped')], 100);
    q.decompress(false, [rev('dropped too')], 100);
    q.dropInput();
    assert.equal(q.pendingInputMessages, 0);
    codec.finishDecompress(1);
    codec.decompressJobs[0].done(new LimitExceededError('maxMessageBytes', 'too big'), null);
    assert.deepEqual(host.log, []);
    assert.equal(host.afterCodecCalls, 0);
  });

  it('a late completion from before dropInput() does not fill in for a later message', () => {
    const { host, codec, q } = setup();
    q.decompress(false, [rev('old')], 100);
    q.dropInput();
    q.decompress(false, [rev('new')], 100);
    codec.finishDecompress(0);
    assert.deepEqual(host.log, []);
    assert.equal(q.pendingInputMessages, 1);
    codec.finishDecompress(1);
    assert.deepEqual(host.delivered, ['text new']);
  });

  it('restored text that is not UTF-8 is onCodecError(err, true) with 1007, and is not delivered', () => {
    const { host, codec, q } = setup();
    q.decompress(false, [Buffer.from([0x41, 0xfe, 0xff]).reverse()], 100);
    codec.finishDecompress(0);
    assert.equal(host.errors.length, 1);
    const { error, input } = host.errors[0];
    assert.equal(input, true);
    assert.ok(error instanceof InvalidUtf8Error);
    assert.equal(error.closeCode, 1007);
    assert.deepEqual(host.delivered, ['error input ERR_INVALID_UTF8']);
    assert.equal(host.afterCodecCalls, 1);
  });

  it('restored binary is not checked for UTF-8', () => {
    const { host, codec, q } = setup();
    q.decompress(true, [Buffer.from([0xfe, 0xff])], 100);
    codec.finishDecompress(0);
    assert.deepEqual(host.errors, []);
    assert.equal(host.delivered.length, 1);
  });

  it("a decompression failure reports the codec's own error on input", () => {
    const { host, codec, q } = setup();
    q.decompress(true, [utf8('x')], 8);
    const err = new LimitExceededError('maxMessageBytes', 'inflated past the limit');
    codec.decompressJobs[0].done(err, null);
    assert.equal(host.errors[0].error, err);
    assert.equal(host.errors[0].input, true);
    assert.equal(host.afterCodecCalls, 1);
  });

  it('a decompression that gives neither result nor error is a ProtocolError with 1007', () => {
    const { host, codec, q } = setup();
    q.decompress(true, [utf8('x')], 8);
    codec.decompressJobs[0].done(null, null);
    const { error, input } = host.errors[0];
    assert.equal(input, true);
    assert.ok(error instanceof ProtocolError);
    assert.equal(error.code, 'ERR_DECOMPRESS');
    assert.equal(error.closeCode, 1007);
  });
});

// ------------------------------------------------------------------ output

describe('CodecQueues: frames sent', () => {
  it('are written in send order, plain frames held behind a pending compression', () => {
    for (const order of permutations([0, 1, 2])) {
      const { host, wire, codec, q } = setup();
      q.compress(Op.Text, utf8('one'), false, true, true);
      assert.equal(q.queueFrame(plainFrame(Op.Binary, 'plain'), true, Op.Binary), true);
      q.compress(Op.Binary, utf8('three'), false, true, true);
      q.compress(Op.Text, utf8('four'), false, true, true);
      assert.equal(q.queueFrame(plainFrame(Op.Close, ''), false, Op.Close), true);
      assert.equal(wire.writes.length, 0);
      for (const i of order) codec.finishCompress(i);
      const frames = wire.frames();
      assert.deepEqual(frames.map((f) => [f.opcode, f.rsv, latin(f.payload)]), [
        [Op.Text, RSV1, latin(rev('one'))],
        [Op.Binary, 0, 'plain'],
        [Op.Binary, RSV1, latin(rev('three'))],
        [Op.Text, RSV1, latin(rev('four'))],
        [Op.Close, 0, ''],
      ], `completed in order ${order}`);
      assert.deepEqual(wire.writes.map((w) => [w.opcode, w.urgent, w.endsMessage]), [
        [Op.Text, false, true],
        [Op.Binary, false, true],
        [Op.Binary, false, true],
        [Op.Text, false, true],
        [Op.Close, false, false],
      ]);
      assert.equal(host.afterCodecCalls, 3);
    }
  });

  it('queueFrame(): false when nothing is pending (write it now), and the queues do not write it', () => {
    const { wire, codec, q } = setup();
    assert.equal(q.queueFrame(plainFrame(Op.Text, 'now'), true, Op.Text), false);
    assert.equal(wire.writes.length, 0);
    assert.equal(q.pendingOutputBytes, 0);
    q.compress(Op.Text, utf8('x'), false, true, true);
    codec.finishCompress(0);
    assert.equal(q.queueFrame(plainFrame(Op.Text, 'now'), true, Op.Text), false, 'nothing pending once drained');
  });

  it('the queued plain frame is written as the very chunks given', () => {
    const { wire, codec, q } = setup();
    q.compress(Op.Text, utf8('x'), false, true, true);
    const chunks = plainFrame(Op.Binary, 'same');
    q.queueFrame(chunks, true, Op.Binary);
    codec.finishCompress(0);
    assert.equal(wire.writes[1].chunks, chunks);
  });

  it('a message compressed in several frames: RSV1 on the first only, fin on the last, `final` passed to the codec', () => {
    const { wire, codec, q } = setup();
    q.compress(Op.Text, utf8('aa'), false, true, false);
    q.compress(Op.Continuation, utf8('bb'), false, false, false);
    q.compress(Op.Continuation, utf8('cc'), false, false, true);
    assert.deepEqual(codec.compressJobs.map((j) => j.final), [false, false, true]);
    codec.finishCompress(2);
    codec.finishCompress(1);
    codec.finishCompress(0);
    assert.deepEqual(wire.frames().map((f) => [f.opcode, f.rsv, f.fin]), [
      [Op.Text, RSV1, false],
      [Op.Continuation, 0, false],
      [Op.Continuation, 0, true],
    ]);
    assert.deepEqual(wire.writes.map((w) => w.endsMessage), [false, false, true]);
  });

  it('pendingOutputMessages counts the messages held (a frame that ends one), pendingOutputBytes their bytes', () => {
    const { wire, codec, q } = setup();
    assert.equal(q.pendingOutputMessages, 0);
    assert.equal(q.pendingOutputBytes, 0);
    const big = testBytes(5000, 1);
    q.compress(Op.Binary, big, false, true, true);
    assert.equal(q.pendingOutputMessages, 1);
    const afterOne = q.pendingOutputBytes;
    assert.ok(afterOne >= big.length, 'a pending job counts at least its payload');
    const plain = plainFrame(Op.Text, 'queued');
    q.queueFrame(plain, true, Op.Text);
    assert.equal(q.pendingOutputBytes, afterOne + plain[0].length, 'a queued frame counts its bytes');
    q.compress(Op.Text, utf8('stream start'), false, true, false);
    assert.equal(q.pendingOutputMessages, 2, 'an unfinished streamed message is not counted');
    q.compress(Op.Continuation, utf8('stream end'), false, false, true);
    assert.equal(q.pendingOutputMessages, 3);
    codec.finishCompress(0);
    assert.equal(wire.writes.length, 2);
    assert.equal(q.pendingOutputMessages, 1);
    assert.ok(q.pendingOutputBytes > 0 && q.pendingOutputBytes < afterOne);
    codec.finishCompress(1);
    codec.finishCompress(2);
    assert.equal(q.pendingOutputMessages, 0);
    assert.equal(q.pendingOutputBytes, 0);
  });

  it('dropOutput() drops everything unwritten, counts the messages among it, and ignores later completions', () => {
    const { host, wire, codec, q } = setup();
    q.compress(Op.Text, utf8('m1'), false, true, true);
    q.queueFrame(plainFrame(Op.Text, 'm2'), true, Op.Text);
    q.compress(Op.Text, utf8('m3 start'), false, true, false);
    q.queueFrame(plainFrame(Op.Close, ''), false, Op.Close);
    q.dropOutput();
    assert.equal(q.droppedOutputMessages, 2, 'm1 and m2: the unfinished m3 and the close frame are not messages');
    assert.equal(q.pendingOutputMessages, 0);
    assert.equal(q.pendingOutputBytes, 0);
    codec.finishCompress(0);
    codec.compressJobs[1].done(new ProtocolError('ERR_X', 'late failure'), null);
    assert.equal(wire.writes.length, 0);
    assert.deepEqual(host.log, [], 'no error and no afterCodec for a dropped job');
    // A new message after the drop is not held behind the dropped ones.
    assert.equal(q.queueFrame(plainFrame(Op.Text, 'next'), true, Op.Text), false);
  });

  it('dropped messages add up over several drops', () => {
    const { codec, wire, q } = setup();
    q.compress(Op.Text, utf8('a'), false, true, true);
    q.dropOutput();
    q.compress(Op.Text, utf8('b'), false, true, true);
    q.compress(Op.Text, utf8('c'), false, true, true);
    q.dropOutput();
    assert.equal(q.droppedOutputMessages, 3);
    codec.finishCompress(2);
    codec.finishCompress(1);
    assert.equal(wire.writes.length, 0);
  });

  it('a compression failure is onCodecError(err, false); no result and no error is ERR_COMPRESS with 1011', () => {
    const { host, wire, codec, q } = setup();
    q.compress(Op.Text, utf8('a'), false, true, true);
    q.compress(Op.Text, utf8('b'), false, true, true);
    const err = new ProtocolError('ERR_ZLIB', 'zlib failed', 1011);
    codec.compressJobs[0].done(err, null);
    codec.compressJobs[1].done(null, null);
    assert.equal(host.errors[0].error, err);
    assert.equal(host.errors[0].input, false);
    assert.equal(host.errors[1].error.code, 'ERR_COMPRESS');
    assert.equal(host.errors[1].error.closeCode, 1011);
    assert.equal(host.errors[1].input, false);
    assert.equal(host.afterCodecCalls, 2);
    assert.equal(wire.writes.length, 0);
  });

  it('afterCodec() once per completion, after the frames it released were written', () => {
    const { host, wire, codec, q } = setup();
    const writesAtAfter: number[] = [];
    host.afterCodec = () => {
      host.afterCodecCalls++;
      writesAtAfter.push(wire.writes.length);
    };
    q.compress(Op.Text, utf8('a'), false, true, true);
    q.compress(Op.Text, utf8('b'), false, true, true);
    codec.finishCompress(1);
    codec.finishCompress(0);
    assert.equal(host.afterCodecCalls, 2);
    assert.deepEqual(writesAtAfter, [0, 2]);
  });
});

describe('CodecQueues: copies (S2)', () => {
  it("compress() copies a payload it does not own: the caller's buffer may change at once", () => {
    const { wire, codec, q } = setup();
    const buf = utf8('original payload');
    q.compress(Op.Text, buf, false, true, true);
    buf.fill(0x21);
    assert.notEqual(codec.compressJobs[0].data, buf);
    assert.equal(latin(codec.compressJobs[0].data), 'original payload');
    codec.finishCompress(0);
    assert.equal(latin(Buffer.from(wire.frames()[0].payload).reverse()), 'original payload');
  });

  it('an owned Buffer is handed to the codec as it is (no copy)', () => {
    const { codec, q } = setup();
    const buf = utf8('mine now');
    q.compress(Op.Text, buf, true, true, true);
    assert.equal(codec.compressJobs[0].data, buf);
  });

  it('an "owned" Uint8Array that is not a Buffer is copied into one', () => {
    const { codec, q } = setup();
    const arr = new Uint8Array([1, 2, 3]);
    q.compress(Op.Binary, arr, true, true, true);
    const data = codec.compressJobs[0].data;
    assert.ok(Buffer.isBuffer(data));
    arr.fill(9);
    assert.deepEqual([...data], [1, 2, 3]);
  });
});

describe('CodecQueues: release()', () => {
  it('closes the codec at once when nothing is held, and only once', () => {
    const { codec, q } = setup();
    q.release();
    assert.equal(codec.closeCalls, 1);
    q.release();
    assert.equal(codec.closeCalls, 1);
  });

  it('closes the codec only after the output it holds is written, the frames behind it included', () => {
    const { wire, codec, q } = setup();
    q.compress(Op.Text, utf8('a'), false, true, true);
    q.compress(Op.Text, utf8('b'), false, true, true);
    q.queueFrame(plainFrame(Op.Close, ''), false, Op.Close);
    q.release();
    assert.equal(codec.closeCalls, 0);
    codec.finishCompress(0);
    assert.equal(codec.closeCalls, 0, 'one job still out');
    codec.finishCompress(1);
    assert.equal(codec.closeCalls, 1);
    assert.equal(codec.writesAtClose, 3, 'closed after all three frames were written');
    assert.deepEqual(wire.frames().map((f) => f.opcode), [Op.Text, Op.Text, Op.Close]);
    q.release();
    assert.equal(codec.closeCalls, 1);
  });

  it('after dropOutput(), release() closes the codec at once', () => {
    const { codec, q } = setup();
    q.compress(Op.Text, utf8('a'), false, true, true);
    q.dropOutput();
    q.release();
    assert.equal(codec.closeCalls, 1);
    codec.finishCompress(0);
    assert.equal(codec.closeCalls, 1);
  });

  it('pending input does not delay the release', () => {
    const { codec, q } = setup();
    q.decompress(false, [rev('x')], 10);
    q.release();
    assert.equal(codec.closeCalls, 1);
  });
});

describe('CodecQueues: masking', () => {
  it("a client's frames are masked, each with the key its mask source just gave", () => {
    const { source, given } = maskSource();
    const { wire, codec, q } = setup(source);
    q.compress(Op.Text, utf8('first message'), false, true, true);
    q.compress(Op.Binary, utf8('second message'), false, true, true);
    q.compress(Op.Binary, testBytes(3000, 2), false, true, true);
    codec.finishCompress(1);
    codec.finishCompress(2);
    codec.finishCompress(0);
    const frames = wire.frames();
    assert.equal(given.length, 3, 'one key per frame');
    assert.ok(frames.every((f) => f.masked));
    // Keys are taken as each job completes: 1, 2, 0 here.
    assert.deepEqual(frames.map((f) => f.mask), [given[2], given[0], given[1]]);
    assert.equal(new Set(given.map((k) => k.toString('hex'))).size, 3, 'distinct keys');
    assert.equal(latin(Buffer.from(frames[0].payload).reverse()), 'first message');
    assert.equal(latin(Buffer.from(frames[1].payload).reverse()), 'second message');
    assert.deepEqual(Buffer.from(frames[2].payload).reverse(), testBytes(3000, 2));
  });

  it("a server's frames are not masked", () => {
    const { wire, codec, q } = setup(null);
    q.compress(Op.Binary, testBytes(3000, 3), false, true, true);
    q.compress(Op.Text, utf8('short'), false, true, true);
    codec.finishCompress(0);
    codec.finishCompress(1);
    assert.deepEqual(wire.frames().map((f) => f.masked), [false, false]);
  });
});
