import type { Duplex } from 'node:stream';
import type { FramePool } from './frame-pool.js';
import { FrameQueue, joinSmallFrames } from './frame-queue.js';
import { compactHead } from './head-list.js';

/** A read's batched replies are written once they reach this size (the read goes on batching). */
const BATCH_FLUSH_BYTES = 256 * 1024;
/** Batches up to this size are copied into one buffer; larger ones go as a writev of their frames. */
const BATCH_COPY_BYTES = 16 * 1024;
/** Over TLS, writes ending in a buffer at least this large go one buffer at a time (see writeToSocket). */
const TLS_SEPARATE_WRITE_BYTES = 16 * 1024;

/** Lent frame buffers in writes not yet confirmed (see Outbound's `lent`). */
interface LentLedger {
  ends: number[];
  bufs: (Buffer | null)[];
  head: number;
}

/** What became of a frame handed to Outbound.write(). */
export type WriteOutcome = 'written' | 'batched' | 'queued' | 'discarded';

/**
 * A session's outbound path: whole frames in, bytes to the stream out, in
 * order. It keeps the two queues (urgent: pings and pongs, which may pass
 * queued data frames but never go inside one; data: everything else), the
 * batch of replies produced during one read, the write-side blocked flag,
 * and the ledger of messages handed to the stream that have not reached the
 * kernel yet (counted as unsent if the stream dies, invariant S4).
 *
 * Nothing here ever pauses reading (invariant S1): a blocked stream only
 * makes frames wait in the queues, which maxQueuedBytes bounds (S3).
 * Guarded by test/transport/outbound.test.ts and the integration suites.
 */
export class Outbound {
  private readonly stream: Duplex;
  /**
   * node:tls joins the buffers of a writev into one before encrypting (SSL_write takes one buffer),
   * a copy of the whole payload; over TLS, frames sent as [header, payload] are written one buffer
   * at a time instead (see writeToSocket).
   */
  private readonly tls: boolean;
  // Made on first use (null until then): a server holds thousands of idle sessions.
  private urgentQ: FrameQueue | null = null;
  private dataQ: FrameQueue | null = null;
  /** Bytes in the two queues. */
  queuedBytes = 0;
  /** The stream refused more (write() returned false); cleared by drained(). */
  blocked = false;
  /** The stream is gone: frames are discarded. */
  private released = false;
  /**
   * Frames produced while one read is processed (echoes, pongs, a close):
   * `batching` is true only during a read. They leave in one stream write
   * when the read is done (small frames joined, large ones as a writev),
   * instead of one write per frame. Only frames that would have gone
   * straight to the stream are batched; order with the queues is unchanged.
   */
  private batching = false;
  /**
   * The frames of the batch: a list the pool lends for the read (made here
   * when there is no pool), given back when the batch is written, so an idle
   * session holds none (test/transport/outbound.test.ts, "batch list").
   */
  private batch: Buffer[] | null = null;
  batchBytes = 0;
  private batchMessages = 0;
  /**
   * Messages handed to stream.write() whose bytes have not all reached the
   * kernel yet (in Node's writable buffer, or in a write still in progress).
   * If the stream is destroyed now they are lost, so they count as unsent (S4;
   * test/integration/graceful-close.test.ts, terminate() with a full queue).
   */
  unconfirmedMessages = 0;
  /**
   * Bytes handed to stream.write() so far, counted from the stream's first
   * byte (what was pending when the session took it, the 101 response,
   * included): `writtenBytes - stream.writableLength` have reached the kernel.
   */
  private writtenBytes: number;
  /**
   * The unconfirmed messages as pairs [end, count]: `count` messages whose
   * last byte is at `end` in writtenBytes' count, in write order; read from
   * `unconfirmedHead`. Writes carry no completion callback: with one, Node
   * allocates a tick and its record for every write that completes at once,
   * all alive until the tick queue runs, which under a broadcast to thousands
   * of sessions promotes them to the old generation. Instead the ledger is
   * settled against writableLength (settle()).
   */
  private unconfirmed: number[] | null = null;
  private unconfirmedHead = 0;
  /**
   * Where frame buffers lent by the context's FramePool go back once the
   * stream has written them; null for a stream that may hold on to a
   * buffer after writing it (see SessionBinding).
   */
  private readonly pool: FramePool | null;
  /**
   * Lent frame buffers handed to stream.write() whose bytes have not all
   * reached the kernel, with the writtenBytes count at their last byte, in
   * write order (read from `head`). Given back by settle(), never while the
   * stream may still read them (invariant S2). One field, made on the first
   * large frame: an idle session holds none.
   */
  private lent: LentLedger | null = null;

  constructor(stream: Duplex, tls: boolean, pool: FramePool | null = null) {
    this.stream = stream;
    this.tls = tls;
    this.pool = pool;
    this.writtenBytes = stream.writableLength;
  }

  /** Bytes accepted and not yet taken by the kernel: queues, batch, and the stream's own buffer. */
  get pendingBytes(): number {
    return this.queuedBytes + this.batchBytes + (this.released ? 0 : this.stream.writableLength);
  }

  /** Nothing waits on our side: not blocked, no batch, empty queues. */
  get idle(): boolean {
    return !this.blocked && this.batchBytes === 0 && this.queuesEmpty;
  }

  private get queuesEmpty(): boolean {
    return (this.urgentQ === null || this.urgentQ.length === 0) && (this.dataQ === null || this.dataQ.length === 0);
  }

  /** Messages whose last frame still waits in the data queue. */
  get queuedMessages(): number {
    return this.dataQ?.messages ?? 0;
  }

  /**
   * Takes one whole frame. It goes straight to the stream when nothing waits
   * before it ('written'), into the read's batch during a read ('batched'),
   * else into its queue ('queued'). A pong (`pong`) that would take the
   * session past `maxQueuedBytes` (given what else it holds, `otherBytes`)
   * replaces the newest pong still waiting instead: RFC 6455 section 5.5.3
   * allows answering "only the most recently processed Ping", and a peer that
   * floods pings and never reads holds at most maxQueuedBytes
   * (test/hostile/ping-flood.test.ts).
   */
  write(chunks: Buffer[], urgent: boolean, endsMessage: boolean, pong: boolean, maxQueuedBytes: number, otherBytes: number): WriteOutcome {
    if (this.released) return 'discarded';
    let bytes = 0;
    for (let i = 0; i < chunks.length; i++) bytes += chunks[i].length;
    if (!this.blocked && this.queuesEmpty) {
      if (this.batching) {
        const batch = (this.batch ??= this.pool !== null ? this.pool.takeList() : []);
        for (let i = 0; i < chunks.length; i++) batch.push(chunks[i]);
        this.batchBytes += bytes;
        if (endsMessage) this.batchMessages++;
        if (this.batchBytes >= BATCH_FLUSH_BYTES) this.flushBatch(true);
        return 'batched';
      }
      this.writeToStream(chunks, endsMessage ? 1 : 0);
      return 'written';
    }
    // Queued frames cost about their wire size (FrameQueue merges small ones), so maxQueuedBytes bounds memory too (S3).
    const q = urgent ? (this.urgentQ ??= new FrameQueue()) : (this.dataQ ??= new FrameQueue());
    if (pong && otherBytes + this.pendingBytes + bytes > maxQueuedBytes) {
      const replaced = q.replacePong(chunks, bytes);
      if (replaced >= 0) {
        this.queuedBytes += bytes - replaced;
        return 'queued';
      }
    }
    q.push(chunks, bytes, endsMessage ? 1 : 0, pong);
    this.queuedBytes += bytes;
    return 'queued';
  }

  /** A read starts: frames written until endBatch() leave together. */
  beginBatch(): void {
    this.batching = true;
  }

  /** The read is done: writes its batch. Returns true if something was written. */
  endBatch(): boolean {
    return this.flushBatch(false);
  }

  /**
   * Writes the frames gathered during a read. `more` is true when the read is
   * still going on (the batch grew past BATCH_FLUSH_BYTES): batching goes on.
   */
  private flushBatch(more: boolean): boolean {
    if (!this.batching) return false;
    this.batching = more;
    const batch = this.batch;
    if (batch === null || batch.length === 0) return false;
    const bytes = this.batchBytes;
    const messages = this.batchMessages;
    this.batchBytes = 0;
    this.batchMessages = 0;
    // Small batches: one contiguous buffer is cheaper than a writev of many tiny ones. Larger
    // batches: runs of small frames joined, large payloads not copied.
    this.writeToStream(batch.length === 1 ? batch : bytes <= BATCH_COPY_BYTES ? [Buffer.concat(batch, bytes)] : batch.length > 8 ? joinSmallFrames(batch) : batch, messages);
    // writeToStream() hands each chunk to the stream and keeps no reference to the list: reuse it.
    // Emptied by pop(): `length = 0` also frees V8's backing store, and the next read's push would
    // make a new one (an allocation per read on the small-message path). With a pool, the emptied
    // list goes back to it for the next read of any session.
    while (batch.length > 0) batch.pop();
    if (this.pool !== null) {
      this.batch = null;
      this.pool.returnList(batch);
    }
    return true;
  }

  /** The stream drained: writes queued frames (urgent first) until it refuses again. */
  drained(): void {
    this.blocked = false;
    this.settle();
    while (!this.blocked && !this.released) {
      const f = this.urgentQ !== null && this.urgentQ.length > 0 ? this.urgentQ.shift() : this.dataQ?.shift();
      if (!f) break;
      this.queuedBytes -= f.bytes;
      this.writeToStream(f.chunks, f.messages);
    }
  }

  private writeToStream(chunks: Buffer[], messages: number): void {
    const s = this.stream;
    let ok: boolean;
    const start = this.writtenBytes;
    let bytes: number;
    if (chunks.length === 1) {
      bytes = chunks[0].length;
      ok = s.write(chunks[0]);
    } else {
      // Header and payload leave in one corked writev. Except over TLS with a large last buffer:
      // node:tls joins a writev's buffers with a copy before encrypting, while separate writes are
      // encrypted straight from each buffer (a small header costs one more small TLS record).
      const corked = !this.tls || chunks[chunks.length - 1].length < TLS_SEPARATE_WRITE_BYTES;
      if (corked) s.cork();
      ok = true;
      bytes = 0;
      for (let i = 0; i < chunks.length; i++) {
        bytes += chunks[i].length;
        ok = s.write(chunks[i]);
      }
      if (corked) s.uncork();
    }
    this.writtenBytes += bytes;
    if (this.pool !== null) this.trackLent(chunks, start);
    // The usual case needs no entry: the write went to the kernel at once, and with it everything before it.
    if (messages > 0 && (s.writableLength > 0 || s.destroyed)) {
      (this.unconfirmed ??= []).push(this.writtenBytes, messages);
      this.unconfirmedMessages += messages;
    }
    if (this.unsettled) this.settle();
    if (!ok) this.blocked = true;
  }

  /** Something for settle() to confirm or give back. */
  get unsettled(): boolean {
    return this.unconfirmedMessages > 0 || this.lentCount > 0;
  }

  private get lentCount(): number {
    const l = this.lent;
    return l === null ? 0 : l.bufs.length - l.head;
  }

  /** Notes the lent frame buffers among `chunks`, written from byte `start` on, for settle() to give back. */
  private trackLent(chunks: Buffer[], start: number): void {
    const pool = this.pool!;
    let end = start;
    for (let i = 0; i < chunks.length; i++) {
      const c = chunks[i];
      end += c.length;
      if (!pool.isLent(c)) continue;
      const l = (this.lent ??= { ends: [], bufs: [], head: 0 });
      l.ends.push(end);
      l.bufs.push(c);
    }
  }

  /**
   * Confirms the messages whose bytes have all left Node's buffers for the
   * kernel (the point at which a write's callback would have run). Only while
   * the stream lives: a destroyed stream empties its buffer without sending
   * it, so what is unconfirmed then stays unsent (S4). Called after writes, on
   * reads, on 'drain' and before the session itself ends or destroys the
   * stream; a write that finished unobserved just before the peer vanished
   * counts as unsent (over-reporting, never under-reporting).
   */
  settle(): void {
    if (this.stream.destroyed) return;
    const pending = this.stream.writableLength;
    const done = this.writtenBytes - pending;
    const q = this.unconfirmed;
    if (q !== null && this.unconfirmedMessages > 0) {
      if (pending === 0) {
        q.length = 0;
        this.unconfirmedHead = 0;
        this.unconfirmedMessages = 0;
      } else {
        let i = this.unconfirmedHead;
        while (i < q.length && q[i] <= done) {
          this.unconfirmedMessages -= q[i + 1];
          i += 2;
        }
        this.unconfirmedHead = compactHead(q, i);
      }
    }
    if (this.lentCount > 0) this.giveBackWritten(done);
  }

  /** Gives the pool back the lent buffers whose last byte is at or before `done` (they reached the kernel). */
  private giveBackWritten(done: number): void {
    const l = this.lent!;
    const { ends, bufs } = l;
    let i = l.head;
    while (i < bufs.length && ends[i] <= done) {
      this.pool!.giveBack(bufs[i]!);
      bufs[i] = null;
      i++;
    }
    // The two lists are the same length and read to the same place: they compact alike.
    compactHead(ends, i);
    l.head = compactHead(bufs, i);
  }

  /**
   * The stream is closed: drops everything still waiting and returns how many
   * messages never reached the kernel (S4). `finished`: the stream's 'finish'
   * came first, so every byte written did.
   */
  release(finished: boolean): number {
    if (this.released) return 0;
    this.released = true;
    if (finished) this.unconfirmedMessages = 0;
    const unsent = this.unconfirmedMessages + this.queuedMessages + this.batchMessages;
    this.urgentQ = null;
    this.dataQ = null;
    this.queuedBytes = 0;
    this.batch = null;
    this.batchBytes = 0;
    this.batchMessages = 0;
    this.unconfirmed = null;
    // Lent buffers still in a write are not given back: a destroyed stream may not be done with them.
    this.lent = null;
    return unsent;
  }
}
