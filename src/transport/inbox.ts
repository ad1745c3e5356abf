import { compactHead } from './head-list.js';
import type { WebSocketError } from '../core/errors.js';
import type { Message } from './types.js';

/** How a session ended, as far as messages() needs to know. */
export interface InboxEnd {
  wasClean: boolean;
  error: WebSocketError | undefined;
}

/**
 * The messages behind a session's messages() iterator: whole messages kept
 * until the application takes them. It is bounded by bytes: above
 * `pauseAbove` the session stops reading (inbound flow control driven by the
 * application's reading, never by writes: invariant S1), and below
 * `resumeBelow` it reads again. Guarded by test/transport/inbox.test.ts.
 */
export class Inbox {
  /** Messages before `head` were taken (null: released at once). */
  private readonly items: (Message | null)[] = [];
  private head = 0;
  /** Payload bytes waiting. */
  bytes = 0;
  private waiter: (() => void) | null = null;
  private readonly pauseAbove: number;
  private readonly resumeBelow: number;

  constructor(pauseAbove: number, resumeBelow: number) {
    this.pauseAbove = pauseAbove;
    this.resumeBelow = resumeBelow;
  }

  get length(): number {
    return this.items.length - this.head;
  }

  /** Keeps a message and wakes a waiting next(). Returns true when reading should pause. */
  push(m: Message): boolean {
    this.items.push(m);
    this.bytes += m.data.length;
    this.wake();
    return this.bytes > this.pauseAbove;
  }

  /** The oldest message, if any. */
  take(): Message | undefined {
    if (this.head >= this.items.length) return undefined;
    const m = this.items[this.head]!;
    this.items[this.head] = null;
    this.head = compactHead(this.items, this.head + 1);
    this.bytes -= m.data.length;
    return m;
  }

  /** True when reading paused for the inbox may resume. */
  get drained(): boolean {
    return this.bytes <= this.resumeBelow;
  }

  /** Resolves on the next push() or wake(). */
  wait(): Promise<void> {
    return new Promise<void>((resolve) => (this.waiter = resolve));
  }

  /** Wakes a waiting next() (a message came, or the session ended). */
  wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /**
   * The iterator behind messages(): the messages in order, then the end once
   * `ended()` says the session ended: done after a clean close, the error
   * thrown after a failed one. `taken` runs after each message taken (the
   * session resumes reading below the bound).
   */
  iterate(ended: () => InboxEnd | null, taken: () => void): AsyncIterableIterator<Message> {
    let returned = false;
    const next = async (): Promise<IteratorResult<Message>> => {
      for (;;) {
        // After return(), as with any async iterator, every next() is done and takes nothing.
        if (returned) return { value: undefined, done: true };
        const m = this.take();
        if (m) {
          taken();
          return { value: m, done: false };
        }
        const end = ended();
        if (end) {
          if (!end.wasClean && end.error) throw end.error;
          return { value: undefined, done: true };
        }
        await this.wait();
      }
    };
    const wake = () => this.wake();
    return {
      [Symbol.asyncIterator]() {
        return this;
      },
      next,
      async return(): Promise<IteratorResult<Message>> {
        returned = true;
        // A next() waiting for a message ends too.
        wake();
        return { value: undefined, done: true };
      },
    };
  }
}
