/**
 * One of a session's outbound queues: whole frames waiting for the socket to
 * take more, in order.
 *
 * What a waiting frame costs in memory must stay close to its size on the
 * wire, because the queue is bounded by bytes (maxQueuedBytes, invariant S3):
 * a peer that sends 1-byte messages to an echo and never reads would
 * otherwise queue millions of 3-byte frames at a couple of hundred bytes of
 * bookkeeping each. So runs of small frames are copied into
 * one buffer (each byte copied a bounded number of times, as the inbound
 * message assembly does), and a large frame is never copied. Merging only
 * joins whole frames, in order: a control frame queued elsewhere still goes
 * between frames, never inside one (invariant S2).
 * Guarded by test/transport/frame-queue.test.ts and test/hostile/floods.test.ts.
 */
export interface QueuedFrame {
  chunks: Buffer[];
  bytes: number;
  /** Application messages whose last frame is in these bytes (counted as unsent if dropped, S4). */
  messages: number;
  /** A pong alone (not merged with other frames), which a newer pong may replace while it waits (RFC 6455 section 5.5.3). */
  pong: boolean;
}

/** Frames smaller than this are merged in runs of MERGE_RUN. */
export const SMALL_FRAME_BYTES = 1024;
export const MERGE_RUN = 32;

export class FrameQueue {
  /** Frames before `head` are gone (null: their buffers are released at once). */
  private items: (QueuedFrame | null)[] = [];
  /** Index of the first frame still waiting (shift() without moving the array). */
  private head = 0;
  /** How many frames at the tail are smaller than SMALL_FRAME_BYTES and unmerged. */
  private smallTail = 0;
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
    const items = this.items;
    items.push({ chunks, bytes, messages, pong });
    this.bytes += bytes;
    if (bytes >= SMALL_FRAME_BYTES) {
      this.smallTail = 0;
      return;
    }
    if (++this.smallTail < MERGE_RUN) return;
    // The run is the last MERGE_RUN entries, all waiting (a shift() resets smallTail when it reaches them).
    const from = items.length - MERGE_RUN;
    let size = 0;
    let msgs = 0;
    for (let i = from; i < items.length; i++) {
      size += items[i]!.bytes;
      msgs += items[i]!.messages;
    }
    // Not Buffer.concat: small results would come from the shared 8 KiB pool, whose slabs stay alive as long as any slice does.
    const merged = Buffer.allocUnsafeSlow(size);
    let at = 0;
    for (let i = from; i < items.length; i++) for (const c of items[i]!.chunks) at += c.copy(merged, at);
    items.length = from;
    items.push({ chunks: [merged], bytes: size, messages: msgs, pong: false });
    // A merged run that is still small starts the next run.
    this.smallTail = size < SMALL_FRAME_BYTES ? 1 : 0;
  }

  /**
   * Replaces the newest waiting pong with `chunks` (RFC 6455 section 5.5.3:
   * an endpoint may answer only the most recently processed ping). Returns
   * the replaced pong's size, or -1 when no pong is waiting.
   */
  replacePong(chunks: Buffer[], bytes: number): number {
    for (let i = this.items.length - 1; i >= this.head; i--) {
      const f = this.items[i]!;
      if (!f.pong) continue;
      const old = f.bytes;
      this.items[i] = { chunks, bytes, messages: 0, pong: true };
      this.bytes += bytes - old;
      return old;
    }
    return -1;
  }

  shift(): QueuedFrame | undefined {
    if (this.head >= this.items.length) return undefined;
    const f = this.items[this.head]!;
    this.items[this.head] = null;
    this.head++;
    this.bytes -= f.bytes;
    const left = this.items.length - this.head;
    if (left === 0) {
      this.items.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items.splice(0, this.head);
      this.head = 0;
    }
    if (this.smallTail > left) this.smallTail = left;
    return f;
  }

  clear(): void {
    this.items.length = 0;
    this.head = 0;
    this.smallTail = 0;
    this.bytes = 0;
  }
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
