/**
 * Outbound (src/transport/outbound.ts), over an in-memory stream whose
 * writes complete only when the test says so: frames leave in order, urgent
 * frames pass queued data frames but never split one (S2), a read's replies
 * leave in one write, a pong past maxQueuedBytes replaces the newest waiting
 * pong (S3), and messages that never reached the "kernel" are counted when
 * the stream dies (S4). Nothing here pauses reading (S1): Outbound has no
 * access to the read side at all.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { Outbound } from '../../src/transport/outbound.js';
import { FramePool } from '../../src/transport/frame-pool.js';

/** A stream that holds every write until complete() is called: what it "sent" is in `sent`. */
class HeldStream extends Duplex {
  readonly sent: Buffer[] = [];
  writes = 0;
  private readonly pending: Array<() => void> = [];
  constructor(highWaterMark: number) {
    super({ writableHighWaterMark: highWaterMark, read() {} });
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.writes++;
    this.pending.push(() => {
      this.sent.push(chunk);
      cb();
    });
  }
  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    this.writes++;
    this.pending.push(() => {
      for (const c of chunks) this.sent.push(c.chunk);
      cb();
    });
  }
  /** Completes every write handed to the stream so far (and those its callbacks start). */
  completeAll(): void {
    while (this.pending.length > 0) this.pending.shift()!();
  }
  get bytes(): Buffer {
    return Buffer.concat(this.sent);
  }
}

const f = (...bytes: number[]): Buffer[] => [Buffer.from(bytes)];

/** Lets the stream take everything: completes writes and drains the queues until nothing waits. */
function flushAll(s: HeldStream, out: Outbound): void {
  for (let i = 0; i < 100 && !(out.idle && s.writableLength === 0); i++) {
    s.completeAll();
    out.drained();
  }
  s.completeAll();
  assert.ok(out.idle, 'everything went out');
}
const MAX = 1 << 20;

describe('Outbound', () => {
  it('writes straight to an idle stream; once the stream refuses, frames queue and leave in order on drained()', async () => {
    const s = new HeldStream(4);
    const out = new Outbound(s, false);
    assert.equal(out.write(f(1, 1, 1, 1, 1), false, true, false, MAX, 0), 'written');
    assert.equal(out.blocked, true, 'past the stream high-water mark');
    assert.equal(out.write(f(2), false, true, false, MAX, 0), 'queued');
    assert.equal(out.write(f(3), false, true, false, MAX, 0), 'queued');
    assert.equal(out.queuedBytes, 2);
    assert.equal(out.idle, false);
    flushAll(s, out);
    assert.deepEqual([...s.bytes], [1, 1, 1, 1, 1, 2, 3]);
    assert.equal(out.queuedBytes, 0);
    assert.equal(out.idle, true);
  });

  it('urgent frames (pings, pongs) go ahead of queued data frames, never inside one', () => {
    const s = new HeldStream(1);
    const out = new Outbound(s, false);
    out.write(f(0, 0), false, true, false, MAX, 0);
    out.write([Buffer.from([0x82, 2]), Buffer.from([7, 7])], false, true, false, MAX, 0);
    out.write(f(0x89, 0), true, false, false, MAX, 0);
    flushAll(s, out);
    assert.deepEqual([...s.bytes], [0, 0, 0x89, 0, 0x82, 2, 7, 7]);
  });

  it("batches a read's frames into one write, small ones joined", () => {
    const s = new HeldStream(1 << 20);
    const out = new Outbound(s, false);
    out.beginBatch();
    for (let i = 0; i < 100; i++) assert.equal(out.write(f(0x82, 1, i), false, true, false, MAX, 0), 'batched');
    assert.equal(s.writes, 0, 'nothing written during the read');
    assert.equal(out.batchBytes, 300);
    assert.equal(out.endBatch(), true);
    assert.equal(out.endBatch(), false, 'nothing left');
    s.completeAll();
    assert.equal(s.writes, 1);
    assert.equal(s.bytes.length, 300);
    for (let i = 0; i < 100; i++) assert.equal(s.bytes[i * 3 + 2], i);
  });

  it('a pong that would pass maxQueuedBytes replaces the newest waiting pong; other frames are never replaced', () => {
    const s = new HeldStream(1);
    const out = new Outbound(s, false);
    out.write(f(0, 0), false, true, false, MAX, 0); // blocks the stream
    const max = 10;
    assert.equal(out.write(f(0x8a, 1, 1), true, false, true, max, 0), 'queued');
    assert.equal(out.write(f(0x8a, 1, 2), true, false, true, max, 0), 'queued');
    // 2 bytes in the stream's buffer + 6 queued: a third pong of 3 would pass 10.
    assert.equal(out.write(f(0x8a, 1, 3), true, false, true, max, 0), 'queued');
    assert.equal(out.queuedBytes, 6, 'replaced, not added');
    // `otherBytes` (the codec, deferred sends) counts too.
    assert.equal(out.write(f(0x8a, 1, 4), true, false, true, max + 100, 100), 'queued');
    assert.equal(out.queuedBytes, 6);
    flushAll(s, out);
    assert.deepEqual([...s.bytes], [0, 0, 0x8a, 1, 1, 0x8a, 1, 4]);
  });

  it('counts messages not yet through the stream as unsent when it dies, and none once they are', () => {
    const s = new HeldStream(1);
    const out = new Outbound(s, false);
    out.write(f(1), false, true, false, MAX, 0); // in the stream, not completed
    out.write(f(2), false, false, false, MAX, 0); // a fragment: no message ends
    out.write(f(3), false, true, false, MAX, 0);
    assert.equal(out.unconfirmedMessages, 1);
    assert.equal(out.queuedMessages, 1);
    assert.equal(out.release(false), 2);
    assert.equal(out.write(f(4), false, true, false, MAX, 0), 'discarded');
    assert.equal(out.release(false), 0, 'released once');

    const s2 = new HeldStream(1);
    const out2 = new Outbound(s2, false);
    out2.write(f(1), false, true, false, MAX, 0);
    s2.completeAll();
    out2.settle();
    assert.equal(out2.unconfirmedMessages, 0, 'confirmed once the stream took it');
    assert.equal(out2.release(false), 0);
  });

  it('over TLS, a frame with a large payload goes as separate writes (no joined copy); small frames stay corked', () => {
    for (const [tls, payload, writes] of [
      [true, 64 * 1024, 2],
      [true, 100, 1],
      [false, 64 * 1024, 1],
    ] as const) {
      const s = new HeldStream(1 << 24);
      const out = new Outbound(s, tls);
      out.write([Buffer.from([0x82, 126, 0, 0]), Buffer.alloc(payload)], false, true, false, MAX << 6, 0);
      s.completeAll();
      assert.equal(s.writes, writes, `tls ${tls}, payload ${payload}`);
    }
  });
});

describe('Outbound: frame buffers lent by a FramePool (S2: never reused while the stream may still read them)', () => {
  const SIZE = 100_000;
  /** A lent frame buffer filled with `byte`. */
  const lentFrame = (pool: FramePool, byte: number): Buffer => pool.alloc(SIZE).fill(byte);

  it('a written frame is given back only once its write has completed', () => {
    const pool = new FramePool(null);
    const s = new HeldStream(1 << 30);
    const out = new Outbound(s, false, pool);
    const frame = lentFrame(pool, 1);
    assert.equal(out.write([frame], false, true, false, MAX, 0), 'written');
    out.settle();
    assert.ok(pool.isLent(frame), 'still in a write: not given back');
    assert.notEqual(pool.alloc(SIZE).buffer, frame.buffer);
    s.completeAll();
    out.settle();
    assert.equal(pool.isLent(frame), false, 'written: given back');
    assert.equal(s.sent[0], frame);
    assert.equal(s.sent[0][0], 1);
  });

  it('a queued frame is not given back before it is written; frames behind an unfinished write wait for it', () => {
    const pool = new FramePool(null);
    const s = new HeldStream(SIZE);
    const out = new Outbound(s, false, pool);
    const a = lentFrame(pool, 1);
    const b = lentFrame(pool, 2);
    const c = lentFrame(pool, 3);
    assert.equal(out.write([a], false, true, false, MAX, 0), 'written');
    assert.equal(out.write([b], false, true, false, MAX, 0), 'queued');
    assert.equal(out.write([c], false, true, false, MAX, 0), 'queued');
    out.settle();
    for (const x of [a, b, c]) assert.ok(pool.isLent(x));
    s.completeAll();
    out.drained(); // b goes to the stream
    assert.equal(pool.isLent(a), false, 'a is through');
    assert.ok(pool.isLent(b), 'b is in a write');
    assert.ok(pool.isLent(c), 'c is queued');
    flushAll(s, out);
    out.settle();
    assert.equal(pool.isLent(b), false);
    assert.equal(pool.isLent(c), false);
    assert.deepEqual(s.sent.map((x) => x[0]), [1, 2, 3], 'each went out with its own bytes');
  });

  it("batch list: sessions of one pool batch in the pool's list one read at a time, a nested read in its own, and an idle session keeps none", () => {
    const pool = new FramePool(null);
    const sa = new HeldStream(1 << 20);
    const sb = new HeldStream(1 << 20);
    const a = new Outbound(sa, false, pool);
    const b = new Outbound(sb, false, pool);
    for (let round = 0; round < 2; round++) {
      a.beginBatch();
      assert.equal(a.write(f(0x82, 1, 1), false, true, false, MAX, 0), 'batched');
      // A read of b inside a's read (a handler writing to a peer in the same process).
      b.beginBatch();
      assert.equal(b.write(f(0x82, 1, 2), false, true, false, MAX, 0), 'batched');
      assert.equal(b.write(f(0x82, 1, 3), false, true, false, MAX, 0), 'batched');
      assert.equal(b.endBatch(), true);
      assert.equal(a.write(f(0x82, 1, 4), false, true, false, MAX, 0), 'batched');
      assert.equal(a.endBatch(), true);
    }
    sa.completeAll();
    sb.completeAll();
    assert.deepEqual([...sa.bytes], [0x82, 1, 1, 0x82, 1, 4, 0x82, 1, 1, 0x82, 1, 4], "a's frames only, each read's in one write");
    assert.deepEqual([...sb.bytes], [0x82, 1, 2, 0x82, 1, 3, 0x82, 1, 2, 0x82, 1, 3]);
    assert.equal(sa.writes, 2);
    assert.equal(sb.writes, 2);
    // Both lists came back: the pool lends its spare, and a second take finds none (a fresh list).
    const spare = pool.takeList();
    assert.equal(spare.length, 0);
    assert.notEqual(pool.takeList(), spare);
  });

  it("a frame in a read's batch is given back once the batch's write completes", () => {
    const pool = new FramePool(null);
    const s = new HeldStream(1 << 30);
    const out = new Outbound(s, false, pool);
    out.beginBatch();
    const a = lentFrame(pool, 7);
    assert.equal(out.write([Buffer.from([0x82, 0x7f]), a], false, true, false, MAX, 0), 'batched');
    out.settle();
    assert.ok(pool.isLent(a), 'batched, not written yet');
    out.endBatch();
    out.settle();
    assert.ok(pool.isLent(a), 'in a write');
    s.completeAll();
    out.settle();
    assert.equal(pool.isLent(a), false);
  });

  it('frames in a write when the stream is destroyed are never given back', () => {
    const pool = new FramePool(null);
    const s = new HeldStream(1 << 30);
    const out = new Outbound(s, false, pool);
    const a = lentFrame(pool, 1);
    out.write([a], false, true, false, MAX, 0);
    s.destroy();
    out.settle();
    out.release(false);
    out.settle();
    assert.ok(pool.isLent(a), 'the destroyed stream may still hold it');
    assert.equal(pool.idleBytes, 0);
  });
});
