/**
 * One coarse timer for many connections (DESIGN: "one coarse wheel per
 * context, not a setTimeout per connection"). Deadlines are rounded up to
 * slots of `resolutionMs`; entries in one slot fire together. A single
 * unref'd setTimeout is armed for the earliest slot, so an idle process with
 * only idle connections wakes up once per slot that has work, never more.
 */
export interface TimerEntry {
  /** Called when the entry's deadline has passed; it may schedule itself again. */
  onTimer(now: number): void;
}

export class TimerWheel {
  readonly resolutionMs: number;
  private readonly slots = new Map<number, Set<TimerEntry>>();
  private readonly slotOf = new Map<TimerEntry, number>();
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
    return this.slotOf.size;
  }

  /** Schedules (or moves) `entry` to fire at `at` (ms, same clock as now()); Infinity cancels. */
  schedule(entry: TimerEntry, at: number): void {
    if (at === Infinity) {
      this.cancel(entry);
      return;
    }
    const slot = Math.ceil(at / this.resolutionMs);
    const old = this.slotOf.get(entry);
    if (old === slot) return;
    if (old !== undefined) this.removeFrom(old, entry);
    let set = this.slots.get(slot);
    if (!set) {
      set = new Set();
      this.slots.set(slot, set);
    }
    set.add(entry);
    this.slotOf.set(entry, slot);
    if (slot < this.armedSlot) this.arm(slot);
  }

  cancel(entry: TimerEntry): void {
    const old = this.slotOf.get(entry);
    if (old !== undefined) this.removeFrom(old, entry);
  }

  /** Stops the timer and forgets every entry (close() of a context): none of them fires afterwards. */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.armedSlot = Infinity;
    this.slots.clear();
    this.slotOf.clear();
  }

  private removeFrom(slot: number, entry: TimerEntry): void {
    this.slotOf.delete(entry);
    const set = this.slots.get(slot);
    if (!set) return;
    set.delete(entry);
    if (set.size === 0) this.slots.delete(slot);
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
    for (const [slot, set] of this.slots) {
      if (slot > current) continue;
      for (const e of set) due.push(e);
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
    let min = Infinity;
    for (const slot of this.slots.keys()) if (slot < min) min = slot;
    if (min !== Infinity && min < this.armedSlot) this.arm(min);
  }
}
