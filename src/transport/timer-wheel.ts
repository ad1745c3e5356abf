/**
 * One coarse timer for many connections: one wheel per context, not a
 * setTimeout per connection (docs/architecture.md). Deadlines are rounded up to
 * slots of `resolutionMs`; entries in one slot fire together. A single
 * unref'd setTimeout is armed for the earliest slot, so an idle process with
 * only idle connections wakes up once per slot that has work, never more.
 */
export interface TimerEntry {
  /** Called when the entry's deadline has passed; it may schedule itself again. */
  onTimer(now: number): void;
  /**
   * @internal The wheel's own links: the slot the entry waits in and its
   * neighbours there. Kept on the entry (an intrusive list) so a scheduled
   * connection costs three fields, not an entry in a Map and in a Set.
   */
  wheelSlot?: number;
  wheelPrev?: TimerEntry | null;
  wheelNext?: TimerEntry | null;
}

export class TimerWheel {
  readonly resolutionMs: number;
  /** Slot number to the first entry of its list. */
  private readonly slots = new Map<number, TimerEntry>();
  /**
   * The slot numbers that have had entries since they last fired, as a binary
   * min-heap, each number at most once (`queued`): fire() takes the due slots
   * off the top instead of walking every slot (a 60 s hang-up at 10 ms is up
   * to 6,000 of them). A slot emptied by cancel() stays until its time comes
   * and is skipped then, so the heap holds at most one number per slot in the
   * horizon, however often entries move. Once the last entry is cancelled
   * the wheel holds nothing: every number is dropped and the timer stopped,
   * so a burst of connections that has ended leaves neither slots nor a
   * wake-up behind (test/core/timer-wheel.test.ts,
   * test/hostile/storm-memory.test.ts).
   */
  private readonly heap: number[] = [];
  private readonly queued = new Set<number>();
  private count = 0;
  private timer: NodeJS.Timeout | null = null;
  private armedSlot = Infinity;
  private readonly clock: () => number;

  constructor(resolutionMs = 10, clock: () => number = () => performance.now()) {
    this.resolutionMs = Math.max(1, resolutionMs);
    this.clock = clock;
  }

  now(): number {
    return this.clock();
  }

  get size(): number {
    return this.count;
  }

  /** Schedules (or moves) `entry` to fire at `at` (ms, same clock as now()); Infinity cancels. */
  schedule(entry: TimerEntry, at: number): void {
    if (at === Infinity) {
      this.cancel(entry);
      return;
    }
    const slot = Math.ceil(at / this.resolutionMs);
    const old = entry.wheelSlot;
    if (old === slot) return;
    if (old !== undefined && old !== -1) this.unlink(entry, old);
    const head = this.slots.get(slot) ?? null;
    if (head === null && !this.queued.has(slot)) this.push(slot);
    entry.wheelSlot = slot;
    entry.wheelPrev = null;
    entry.wheelNext = head;
    if (head) head.wheelPrev = entry;
    this.slots.set(slot, entry);
    this.count++;
    if (slot < this.armedSlot) this.arm(slot);
  }

  cancel(entry: TimerEntry): void {
    const old = entry.wheelSlot;
    if (old === undefined || old === -1) return;
    this.unlink(entry, old);
    // Only here, not when schedule() moves an entry: a lone entry moved on every read would
    // otherwise clear and re-arm the timer each time.
    if (this.count === 0) this.releaseSlots();
  }

  /** Stops the timer and forgets every entry (close() of a context): none of them fires afterwards. */
  stop(): void {
    for (const head of this.slots.values()) {
      for (let e: TimerEntry | null | undefined = head; e; ) {
        const next: TimerEntry | null | undefined = e.wheelNext;
        e.wheelSlot = -1;
        e.wheelPrev = e.wheelNext = null;
        e = next;
      }
    }
    this.slots.clear();
    this.count = 0;
    this.releaseSlots();
  }

  /** With no entry left: drops the slot numbers still held for fire() and stops the timer. */
  private releaseSlots(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.armedSlot = Infinity;
    this.heap.length = 0;
    this.queued.clear();
  }

  /** @internal Slot numbers held for fire() (the heap), for the tests' bound on it. */
  get heldSlots(): number {
    return this.heap.length;
  }

  /** @internal Whether the wheel's timer is set (a wheel without entries never has one). */
  get armed(): boolean {
    return this.timer !== null;
  }

  private unlink(entry: TimerEntry, slot: number): void {
    const prev = entry.wheelPrev ?? null;
    const next = entry.wheelNext ?? null;
    if (prev) prev.wheelNext = next;
    else if (next) this.slots.set(slot, next);
    else this.slots.delete(slot);
    if (next) next.wheelPrev = prev;
    entry.wheelSlot = -1;
    entry.wheelPrev = entry.wheelNext = null;
    this.count--;
  }

  private arm(slot: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.armedSlot = slot;
    const delay = Math.max(0, slot * this.resolutionMs - this.clock());
    this.timer = setTimeout(() => this.fire(), Math.ceil(delay));
    this.timer.unref();
  }

  private fire(): void {
    this.timer = null;
    this.armedSlot = Infinity;
    const now = this.clock();
    const current = Math.floor(now / this.resolutionMs);
    const due: TimerEntry[] = [];
    while (this.heap.length > 0 && this.heap[0] <= current) {
      const slot = this.pop();
      for (let e: TimerEntry | null | undefined = this.slots.get(slot); e; e = e.wheelNext) due.push(e);
    }
    for (const e of due) this.cancel(e);
    for (const e of due) {
      try {
        e.onTimer(now);
      } catch (err) {
        // A failing entry must not stop the others' timers.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
    // Slots emptied by cancel() are dropped here rather than armed for.
    while (this.heap.length > 0 && !this.slots.has(this.heap[0])) this.pop();
    if (this.heap.length > 0 && this.heap[0] < this.armedSlot) this.arm(this.heap[0]);
  }

  private push(slot: number): void {
    const h = this.heap;
    this.queued.add(slot);
    let i = h.push(slot) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent] <= slot) break;
      h[i] = h[parent];
      i = parent;
    }
    h[i] = slot;
  }

  private pop(): number {
    const h = this.heap;
    const top = h[0];
    this.queued.delete(top);
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        let child = 2 * i + 1;
        if (child >= h.length) break;
        if (child + 1 < h.length && h[child + 1] < h[child]) child++;
        if (h[child] >= last) break;
        h[i] = h[child];
        i = child;
      }
      h[i] = last;
    }
    return top;
  }
}
