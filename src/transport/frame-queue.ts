import { compactHead } from './head-list.js';

/**
 * One of a session's outbound queues: whole frames waiting for the socket to
 * take more, in order.
 *
 * What a waiting frame costs in memory must stay close to its size on the
 * wire, because the queue is bounded by bytes (maxQueuedBytes, invariant S3):
 * a peer that sends 1-byte messages to an echo and never reads would
 * otherwise queue millions of 3-byte frames at a couple of hundred bytes of
 * bookkeeping each. So consecutive small frames are copied into one slab
 * buffer (slabs grow geometrically up to SLAB_MAX_BYTES, so a queue holding
 * two small frames does not pay for a large one), and a large frame is never
 * copied. Only whole frames are joined, in order: a control frame queued
 * elsewhere still goes between frames, never inside one (invariant S2).
 * Guarded by test/transport/frame-queue.test.ts and test/hostile/floods.test.ts.
 */
export interface QueuedFrame {
  chunks: Buffer[];
  bytes: number;
  /** Application messages whose last frame is in these bytes (counted as unsent if dropped, S4). */
  messages: number;
  /**
   * The newest pong, alone (not joined with other frames), which a newer pong may replace while it
   * waits (RFC 6455 section 5.5.3). At most one entry is one: the tail.
   */
  pong: boolean;
  /** The slab small frames are copied into (`bytes` of it used), or null for a frame kept as given. */
  slab: Buffer | null;
}

/** Frames smaller than this are copied into slabs. */
export const SMALL_FRAME_BYTES = 1024;
const SLAB_MIN_BYTES = 256;
export const SLAB_MAX_BYTES = 16 * 1024;

export class FrameQueue {
  /** Frames before `head` are gone (null: their buffers are released at once). */
  private items: (QueuedFrame | null)[] = [];
  /** Index of the first frame still waiting (shift() without moving the array). */
  private head = 0;
  /** Bytes waiting. */
  bytes = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  /** Messages whose last frame is waiting here. */
  get messages(): number {
    let n = 0;
    for (let i = this.head; i < this.items.length; i++) n += this.items[i]!.messages;
    return n;
  }

  push(chunks: Buffer[], bytes: number, messages: number, pong = false): void {
    this.bytes += bytes;
    const items = this.items;
    const tail = items.length > this.head ? items[items.length - 1]! : null;
    if (tail !== null && tail.pong) {
      // Only the newest pong stays alone (replaceable): the one before it is joined with the frames
      // before it, so a queue of pongs costs their size too.
      items.pop();
      this.appendSmall(tail.chunks, tail.bytes, 0);
    }
    if (!pong && bytes < SMALL_FRAME_BYTES) this.appendSmall(chunks, bytes, messages);
    else items.push({ chunks, bytes, messages, pong, slab: null });
  }

  /** Appends a small frame (already counted in `bytes`) to the tail slab, or starts one. */
  private appendSmall(chunks: Buffer[], bytes: number, messages: number): void {
    const items = this.items;
    const tail = items.length > this.head ? items[items.length - 1]! : null;
    if (tail !== null) {
      const slab = tail.slab;
      if (slab !== null) {
        if (slab.length - tail.bytes >= bytes) {
          tail.bytes = copyInto(slab, tail.bytes, chunks);
          tail.messages += messages;
          return;
        }
        // The tail slab is full: the next one is twice as large (up to SLAB_MAX_BYTES), and at least
        // four times this frame (which is below SMALL_FRAME_BYTES, so it always fits).
        const next = Buffer.allocUnsafeSlow(Math.min(SLAB_MAX_BYTES, Math.max(2 * slab.length, 4 * bytes)));
        items.push({ chunks: EMPTY_CHUNKS, bytes: copyInto(next, 0, chunks), messages, pong: false, slab: next });
        return;
      }
      if (tail.bytes < SMALL_FRAME_BYTES) {
        // Two small frames in a row: the tail becomes a slab holding both.
        const first = Buffer.allocUnsafeSlow(Math.min(SLAB_MAX_BYTES, Math.max(SLAB_MIN_BYTES, 4 * (tail.bytes + bytes))));
        tail.bytes = copyInto(first, copyInto(first, 0, tail.chunks), chunks);
        tail.messages += messages;
        tail.slab = first;
        tail.chunks = EMPTY_CHUNKS;
        return;
      }
    }
    items.push({ chunks, bytes, messages, pong: false, slab: null });
  }

  /**
   * Replaces the newest waiting pong with `chunks` (RFC 6455 section 5.5.3:
   * an endpoint may answer only the most recently processed ping). Returns
   * the replaced pong's size, or -1 when no pong is waiting alone.
   */
  replacePong(chunks: Buffer[], bytes: number): number {
    for (let i = this.items.length - 1; i >= this.head; i--) {
      const f = this.items[i]!;
      if (!f.pong) continue;
      const old = f.bytes;
      this.items[i] = { chunks, bytes, messages: 0, pong: true, slab: null };
      this.bytes += bytes - old;
      return old;
    }
    return -1;
  }

  /** The oldest waiting frame (a slab's frames as one buffer). */
  shift(): QueuedFrame | undefined {
    if (this.head >= this.items.length) return undefined;
    const f = this.items[this.head]!;
    this.items[this.head] = null;
    this.head = compactHead(this.items, this.head + 1);
    this.bytes -= f.bytes;
    if (f.slab !== null) f.chunks = [f.slab.subarray(0, f.bytes)];
    return f;
  }
}

const EMPTY_CHUNKS: Buffer[] = [];

/** Copies `chunks` into `slab` at `at`; returns the position after them. */
function copyInto(slab: Buffer, at: number, chunks: Buffer[]): number {
  for (let i = 0; i < chunks.length; i++) at += chunks[i].copy(slab, at);
  return at;
}

/**
 * The frames of `chunks` (one socket write) with every run of small buffers
 * joined into one, large buffers untouched: a read that answers thousands of
 * tiny frames hands the socket a few buffers, not one Writable entry each.
 */
export function joinSmallFrames(chunks: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  let start = -1;
  let runBytes = 0;
  for (let i = 0; i <= chunks.length; i++) {
    const c = i < chunks.length ? chunks[i] : null;
    if (c !== null && c.length < SMALL_FRAME_BYTES) {
      if (start < 0) {
        start = i;
        runBytes = 0;
      }
      runBytes += c.length;
      continue;
    }
    if (start >= 0) {
      if (i - start === 1) out.push(chunks[start]);
      else {
        const joined = Buffer.allocUnsafeSlow(runBytes);
        let at = 0;
        for (let j = start; j < i; j++) at += chunks[j].copy(joined, at);
        out.push(joined);
      }
      start = -1;
    }
    if (c !== null) out.push(c);
  }
  return out;
}
