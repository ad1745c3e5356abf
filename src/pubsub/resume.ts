import { compareOffsets } from './offset.js';

/** One publication of a durable topic as a session is sent it: the bytes the envelope made, and its offset. */
export interface DurableFrame {
  readonly offset: string;
  readonly payload: Buffer;
  readonly binary: boolean;
  readonly compress: boolean;
}

/**
 * Most bytes of live publications held for one session while its history is
 * on its way (S3): past it the resume fails (ERR_BROKER_BACKLOG) rather than
 * hold without bound or drop some (test/pubsub/resume.test.ts, "bound").
 */
export const MAX_HELD_BYTES = 16 * 1024 * 1024;

/** What session.resume() resolves to. */
export interface ResumeResult {
  /** Publications of the history sent to the session (those after `since`, before the live ones). */
  readonly delivered: number;
  /**
   * Where the session is now: the offset of the last publication it was
   * sent, or the topic's newest offset if none came after `since` (with
   * the cluster broker `<era>-0` before the first publication; null only
   * from a store that cannot say). What the client remembers to
   * resume from, if no publication comes before it disconnects.
   */
  readonly offset: string | null;
}

/**
 * A session catching up on a durable topic. It is subscribed before the
 * history is asked for, so nothing published meanwhile is missed; what comes
 * live meanwhile is held here instead of sent. Once the history is there,
 * finish() gives the order to send: the history after `since`, then the held
 * publications newer than the last of it. The two overlap (a publication
 * stored after the node subscribed but before the range was taken is in
 * both), and offsets make the cut exact: no duplicate, no gap, and each
 * publisher's order kept, as the store numbered them in the order they came
 * (test/pubsub/resume.test.ts).
 */
export class CatchUp {
  readonly since: string | null;
  private held: DurableFrame[] = [];
  private heldBytes = 0;
  private readonly maxHeldBytes: number;
  /** A frame came past maxHeldBytes: it was not held, so finish() cannot be complete. */
  overflowed = false;

  constructor(since: string | null, maxHeldBytes = MAX_HELD_BYTES) {
    this.since = since;
    this.maxHeldBytes = maxHeldBytes;
  }

  /** Bytes held so far (a session's queue bound applies to them as to its sends). */
  get bytes(): number {
    return this.heldBytes;
  }

  hold(frame: DurableFrame): void {
    if (this.overflowed || this.heldBytes + frame.payload.length > this.maxHeldBytes) {
      // Nothing held from here on: the resume is failed as a whole (the binding checks overflowed).
      this.overflowed = true;
      this.held = [];
      this.heldBytes = 0;
      return;
    }
    this.held.push(frame);
    this.heldBytes += frame.payload.length;
  }

  /** The history, then the held ones, each strictly newer than the one before it and than `since`. */
  finish(history: readonly DurableFrame[]): DurableFrame[] {
    const out: DurableFrame[] = [];
    let last = this.since;
    for (const list of [history, this.held]) {
      for (const f of list) {
        if (last !== null && compareOffsets(f.offset, last) <= 0) continue;
        out.push(f);
        last = f.offset;
      }
    }
    this.held = [];
    this.heldBytes = 0;
    return out;
  }
}
