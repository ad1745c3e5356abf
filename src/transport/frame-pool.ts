import type { TimerEntry, TimerWheel } from './timer-wheel.js';

/** Frames smaller than this are not pooled: small allocations are cheap (Node's own 8 KiB slabs, malloc's free lists). */
export const POOL_MIN_BYTES = 64 * 1024;
/** Largest total capacity kept idle in the pool. */
export const POOL_MAX_IDLE_BYTES = 64 * 1024 * 1024;
/** Idle buffers are released once the pool has gone this long without lending one. */
export const POOL_IDLE_MS = 5_000;

/**
 * Capacity class of a frame of `size` bytes: `size` rounded up to an eighth
 * of the power of two below it, so a frame and the next ones of about its
 * size share buffers, and a buffer is never more than an eighth too large.
 */
export function poolClass(size: number): number {
  const top = 2 ** Math.floor(Math.log2(size));
  const step = Math.max(1, top / 8);
  return Math.ceil(size / step) * step;
}

/**
 * Buffers for large outgoing frames, reused once the socket has written
 * them. send() copies the payload (invariant S2) into a frame buffer; a
 * fresh multi-megabyte buffer costs a page fault per page the copy touches,
 * which makes the copy many times slower than a copy into memory that is
 * already mapped. So a frame of POOL_MIN_BYTES or more is built in a buffer
 * lent by this pool, and the session gives the buffer back once the kernel
 * has taken every byte of it (Outbound.settle()), never earlier: a buffer
 * that is still queued, batched or in a write in progress is never lent
 * again (test/transport/frame-pool.test.ts; test/integration/large-messages.test.ts
 * checks every byte of echoes that reuse buffers).
 *
 * A buffer comes back only if this pool lent it and it has not come back
 * since (a WeakSet of lent buffers' memory), so a stray or doubled give-back
 * cannot put one buffer in two frames. Buffers lent to a session whose socket
 * is destroyed are never given back: the garbage collector takes them.
 * At most POOL_MAX_IDLE_BYTES wait idle, and none after POOL_IDLE_MS without
 * a loan (the context's timer wheel, unref'd: it keeps no process alive).
 */
export class FramePool implements TimerEntry {
  private readonly free = new Map<number, ArrayBufferLike[]>();
  private readonly lent = new WeakSet<ArrayBufferLike>();
  private readonly timers: TimerWheel | null;
  private readonly maxIdleBytes: number;
  /** Total capacity of the idle buffers. */
  idleBytes = 0;
  private lentSinceTick = false;
  private scheduled = false;
  private spareList: Buffer[] | null = null;
  wheelSlot?: number;
  wheelPrev?: TimerEntry | null;
  wheelNext?: TimerEntry | null;

  constructor(timers: TimerWheel | null, maxIdleBytes = POOL_MAX_IDLE_BYTES) {
    this.timers = timers;
    this.maxIdleBytes = maxIdleBytes;
  }

  /**
   * A buffer of exactly `size` bytes (uninitialised): from the pool when
   * `size` is at least POOL_MIN_BYTES and one of its class is idle, else new.
   */
  readonly alloc = (size: number): Buffer => {
    if (size < POOL_MIN_BYTES) return Buffer.allocUnsafe(size);
    const cls = poolClass(size);
    const list = this.free.get(cls);
    let mem: ArrayBufferLike;
    if (list !== undefined && list.length > 0) {
      mem = list.pop()!;
      this.idleBytes -= cls;
    } else {
      mem = Buffer.allocUnsafeSlow(cls).buffer;
    }
    this.lent.add(mem);
    this.lentSinceTick = true;
    return Buffer.from(mem, 0, size);
  };

  /**
   * Takes back a buffer that alloc() lent, once nothing refers to its bytes
   * any more. Anything else (a small frame, a buffer from elsewhere, one
   * already given back) is ignored.
   */
  giveBack(buf: Buffer): void {
    const mem = buf.buffer;
    if (buf.byteOffset !== 0 || !this.lent.has(mem)) return;
    this.lent.delete(mem);
    const cls = mem.byteLength;
    if (this.idleBytes + cls > this.maxIdleBytes) return;
    let list = this.free.get(cls);
    if (list === undefined) this.free.set(cls, (list = []));
    list.push(mem);
    this.idleBytes += cls;
    if (!this.scheduled && this.timers !== null) {
      this.scheduled = true;
      this.lentSinceTick = false;
      this.timers.schedule(this, this.timers.now() + POOL_IDLE_MS);
    }
  }

  /**
   * The list a session gathers one read's replies in (Outbound's batch),
   * lent for the length of that read. Reads run one at a time on the
   * context's thread, so one spare list serves every session: an idle
   * session holds no list (and no backing store a few frames long), and a
   * busy one allocates none per read. A read nested in another (an
   * in-memory pair, a handler writing to a peer in the same process) finds
   * the spare taken and gets a list of its own
   * (test/transport/frame-pool.test.ts, "batch lists").
   */
  takeList(): Buffer[] {
    const list = this.spareList;
    if (list === null) return [];
    this.spareList = null;
    return list;
  }

  /** Takes back an emptied list from takeList(), keeping one spare. */
  returnList(list: Buffer[]): void {
    if (this.spareList === null && list.length === 0) this.spareList = list;
  }

  /** True if `buf` is a buffer this pool lent and has not had back. */
  isLent(buf: Buffer): boolean {
    return buf.byteOffset === 0 && this.lent.has(buf.buffer);
  }

  /** Releases every idle buffer. */
  clear(): void {
    this.free.clear();
    this.idleBytes = 0;
  }

  /** @internal The idle check (TimerEntry). */
  onTimer(now: number): void {
    this.scheduled = false;
    if (!this.lentSinceTick) {
      this.clear();
      return;
    }
    this.lentSinceTick = false;
    if (this.idleBytes > 0 && this.timers !== null) {
      this.scheduled = true;
      this.timers.schedule(this, now + POOL_IDLE_MS);
    }
  }
}
