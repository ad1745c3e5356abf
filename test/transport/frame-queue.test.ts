/**
 * FrameQueue (src/transport/frame-queue.ts): a session's outbound queue of
 * whole frames. What it guards: the bytes come out in the order they went in,
 * whatever merging happened (S2: frames are never split or reordered); a
 * queue of tiny frames costs about their size, not an object each (S3); the
 * count of messages waiting is exact (S4: unsent messages are reported); a
 * pong can be replaced while it waits (RFC 6455 section 5.5.3).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FrameQueue, SLAB_MAX_BYTES, SMALL_FRAME_BYTES, joinSmallFrames } from '../../src/transport/frame-queue.js';
import { testBytes } from '../helpers/frames.js';

function drain(q: FrameQueue): { bytes: Buffer; entries: number; messages: number } {
  const parts: Buffer[] = [];
  let entries = 0;
  let messages = 0;
  for (let f = q.shift(); f !== undefined; f = q.shift()) {
    entries++;
    messages += f.messages;
    let size = 0;
    for (const c of f.chunks) size += c.length;
    assert.equal(size, f.bytes, 'an entry says its true size');
    parts.push(...f.chunks);
  }
  return { bytes: Buffer.concat(parts), entries, messages };
}

describe('FrameQueue', () => {
  it('keeps the byte order and the message count through merging, for any mix of small and large frames', () => {
    const q = new FrameQueue();
    const sent: Buffer[] = [];
    let messages = 0;
    let seed = 1;
    for (let i = 0; i < 2000; i++) {
      // Mostly tiny frames, some near the threshold, some large (two chunks: header and payload).
      const size = i % 97 === 0 ? 5000 + i : i % 13 === 0 ? SMALL_FRAME_BYTES - 1 : (i % 7) + 1;
      const payload = testBytes(size, seed++);
      const chunks = size > 4000 ? [payload.subarray(0, 4), payload.subarray(4)] : [payload];
      const ends = i % 3 !== 0;
      if (ends) messages++;
      q.push(chunks, size, ends ? 1 : 0);
      sent.push(payload);
    }
    assert.equal(q.messages, messages);
    const total = sent.reduce((n, b) => n + b.length, 0);
    assert.equal(q.bytes, total);
    const out = drain(q);
    assert.ok(out.bytes.equals(Buffer.concat(sent)), 'the same bytes in the same order');
    assert.equal(out.messages, messages);
    assert.ok(out.entries < 2000 / 4, `tiny frames joined (${out.entries} entries for 2000 frames)`);
    assert.equal(q.bytes, 0);
    assert.equal(q.length, 0);
  });

  it('holds a flood of tiny frames in a few slabs: about one entry per SLAB_MAX_BYTES of frames', () => {
    const q = new FrameQueue();
    const n = 100_000;
    for (let i = 0; i < n; i++) q.push([Buffer.from([0x82, 0x01, i & 0xff])], 3, 1);
    assert.ok(q.length <= Math.ceil((3 * n) / SLAB_MAX_BYTES) + 8, `${q.length} entries for ${n} frames`);
    assert.equal(q.messages, n);
    assert.equal(q.bytes, 3 * n);
    const out = drain(q);
    assert.equal(out.bytes.length, 3 * n);
    for (let i = 0; i < n; i++) assert.equal(out.bytes[i * 3 + 2], i & 0xff, `frame ${i}`);
  });

  it('a frame just under SMALL_FRAME_BYTES after a small slab filled up still goes whole into the next one', () => {
    const q = new FrameQueue();
    const sent: Buffer[] = [];
    for (const size of [2, 3, 200, 40, SMALL_FRAME_BYTES - 1, 1, SMALL_FRAME_BYTES - 1, SMALL_FRAME_BYTES - 1, 5]) {
      const b = testBytes(size, size);
      q.push([b], size, 1);
      sent.push(b);
    }
    assert.ok(drain(q).bytes.equals(Buffer.concat(sent)));
  });

  it('two small frames cost a small slab, not a large one', () => {
    const q = new FrameQueue();
    q.push([Buffer.from([1, 2])], 2, 1);
    q.push([Buffer.from([3])], 1, 1);
    const f = q.shift()!;
    assert.equal(q.length, 0);
    assert.equal(f.messages, 2);
    assert.deepEqual([...Buffer.concat(f.chunks)], [1, 2, 3]);
    assert.ok(f.slab !== null && f.slab.length <= 256, `slab of ${f.slab?.length} bytes for 3`);
  });

  it('only the newest pong waits alone (replaceable); older pongs are joined, so a queue of pongs costs their size', () => {
    const q = new FrameQueue();
    q.push([Buffer.from([0x82, 0])], 2, 1);
    q.push([Buffer.from([0x8a, 1, 1])], 3, 0, true);
    q.push([Buffer.from([0x8a, 1, 2])], 3, 0, true);
    assert.equal(q.length, 2, 'the first pong joined the data frame before it; the newest is alone');
    assert.equal(q.replacePong([Buffer.from([0x8a, 1, 3])], 3), 3, 'the newest pong is replaced');
    q.push([Buffer.from([0x82, 0])], 2, 1);
    assert.equal(q.replacePong([Buffer.from([0x8a, 0])], 2), -1, 'once a frame follows it, no pong waits alone');
    assert.equal(q.bytes, 10);
    assert.deepEqual([...drain(q).bytes], [0x82, 0, 0x8a, 1, 1, 0x8a, 1, 3, 0x82, 0]);

    const many = new FrameQueue();
    for (let i = 0; i < 100_000; i++) many.push([Buffer.from([0x8a, 1, i & 0xff])], 3, 0, true);
    assert.ok(many.length <= Math.ceil(300_000 / SLAB_MAX_BYTES) + 8, `${many.length} entries for 100,000 pongs`);
    const bytes = drain(many).bytes;
    for (let i = 0; i < 100_000; i++) assert.equal(bytes[i * 3 + 2], i & 0xff, `pong ${i}`);
  });

  it('never copies a large frame', () => {
    const q = new FrameQueue();
    const big = Buffer.alloc(SMALL_FRAME_BYTES * 4, 7);
    for (let i = 0; i < 64; i++) q.push([Buffer.from([1])], 1, 0);
    q.push([big], big.length, 1);
    let found = false;
    for (let f = q.shift(); f !== undefined; f = q.shift()) if (f.chunks.includes(big)) found = true;
    assert.ok(found, 'the large frame is queued as the very buffer given');
  });

  it('joins only frames still waiting: shifting part of a slab run and pushing more keeps the order', () => {
    const q = new FrameQueue();
    const sent: number[] = [];
    const got: number[] = [];
    let next = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 20; i++) {
        q.push([Buffer.from([next & 0xff])], 1, 1);
        sent.push(next++ & 0xff);
      }
      for (let i = 0; i < 7; i++) {
        const f = q.shift();
        if (f) for (const c of f.chunks) got.push(...c);
      }
    }
    got.push(...drain(q).bytes);
    assert.deepEqual(got, sent);
  });

  it('replacePong() swaps the newest pong still alone and keeps the byte count right; -1 without one', () => {
    const q = new FrameQueue();
    assert.equal(q.replacePong([Buffer.from([0x8a, 0])], 2), -1);
    q.push([Buffer.from([0x89, 0])], 2, 0);
    q.push([Buffer.from([0x8a, 1, 0x61])], 3, 0, true);
    q.push([Buffer.from([0x8a, 1, 0x62])], 3, 0, true);
    assert.equal(q.replacePong([Buffer.from([0x8a, 2, 0x63, 0x64])], 4), 3);
    assert.equal(q.bytes, 2 + 3 + 4);
    const out = drain(q);
    assert.deepEqual([...out.bytes], [0x89, 0, 0x8a, 1, 0x61, 0x8a, 2, 0x63, 0x64]);
  });

  it('releases each frame as it is shifted (no reference kept to what was written)', () => {
    const q = new FrameQueue();
    for (let i = 0; i < 3000; i++) q.push([Buffer.alloc(SMALL_FRAME_BYTES)], SMALL_FRAME_BYTES, 0);
    for (let i = 0; i < 1500; i++) q.shift();
    const items = (q as unknown as { items: unknown[]; head: number }).items;
    const head = (q as unknown as { head: number }).head;
    for (let i = 0; i < head; i++) assert.equal(items[i], null, `slot ${i} released`);
    assert.equal(q.length, 1500);
  });
});

describe('joinSmallFrames', () => {
  it('joins runs of small buffers, keeps large ones as they are, and keeps the bytes in order', () => {
    const big1 = Buffer.alloc(SMALL_FRAME_BYTES, 1);
    const big2 = Buffer.alloc(SMALL_FRAME_BYTES * 3, 2);
    const chunks = [Buffer.from([1]), Buffer.from([2, 3]), big1, Buffer.from([4]), big2, Buffer.from([5]), Buffer.from([6])];
    const out = joinSmallFrames(chunks);
    assert.equal(out.length, 5);
    assert.ok(out[1] === big1 && out[3] === big2, 'large buffers are not copied');
    assert.ok(Buffer.concat(out).equals(Buffer.concat(chunks)));
    assert.deepEqual(joinSmallFrames([]), []);
    const one = [Buffer.from([9])];
    assert.equal(joinSmallFrames(one)[0], one[0], 'a lone small buffer is not copied');
  });
});
