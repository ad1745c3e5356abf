import type { Publication } from './broker.js';
import { formatOffset, parseOffset, ResumeError } from './offset.js';

/** What a durable store answers to a resume: the publications after an offset, oldest first, and the topic's newest offset. */
export interface HistoryRange {
  /** The publications after the offset asked for, in offset order, each with its `offset`. */
  readonly entries: readonly Publication[];
  /** The topic's newest offset when the range was taken (null: the store cannot say). */
  readonly last: string | null;
}

/** Default number of publications a durable topic keeps in the cluster relay. */
export const DEFAULT_HISTORY_LENGTH = 10_000;

/**
 * The bounded history of one durable topic, kept by the store that numbers
 * it (the cluster relay, in the primary). Each publication appended gets the
 * next offset of the era; past `maxLength` the oldest is forgotten, and a
 * resume from before what is kept fails with ERR_OFFSET_TRIMMED instead of
 * skipping what was forgotten (S4; test/pubsub/history.test.ts).
 */
export class TopicHistory {
  private readonly era: number;
  private readonly maxLength: number;
  private readonly ring: Array<Publication | undefined>;
  /** n of the newest publication (0: none yet). */
  private last = 0;
  /** How many the ring holds: the newest `size`, n from last-size+1 to last. */
  private size = 0;

  constructor(era: number, maxLength: number) {
    this.era = era;
    this.maxLength = Math.max(1, Math.floor(maxLength));
    this.ring = new Array<Publication | undefined>(Math.min(this.maxLength, 1024));
  }

  /**
   * The newest offset; `<era>-0` before the first publication, a position
   * like any other: a client that resumes from it gets everything published
   * since, from the first.
   */
  get lastOffset(): string {
    return formatOffset(this.era, this.last);
  }

  /** The oldest offset kept, or null. */
  get oldestOffset(): string | null {
    return this.size === 0 ? null : formatOffset(this.era, this.last - this.size + 1);
  }

  /** Numbers `p` (the next offset) and keeps it; returns it with its offset. */
  append(p: Publication): Publication {
    // Grown before numbering: grow() moves the entries last-size+1..last.
    if (this.size === this.ring.length && this.ring.length < this.maxLength) this.grow();
    const n = ++this.last;
    const stored: Publication = { ...p, offset: formatOffset(this.era, n) };
    this.ring[n % this.ring.length] = stored;
    if (this.size < this.ring.length) this.size++;
    return stored;
  }

  /**
   * The publications after `since` (all of them kept when `since` is null:
   * nothing, so a fresh subscriber starts at `last`). Throws ResumeError:
   * ERR_OFFSET_TRIMMED when some after `since` were forgotten, or `since` is
   * of another era (the store restarted and lost them); ERR_BAD_OFFSET when
   * it is malformed or newer than `last`.
   */
  range(topic: string, since: string | null): HistoryRange {
    if (since === null) return { entries: [], last: this.lastOffset };
    const at = parseOffset(since);
    if (!at) throw new ResumeError('ERR_BAD_OFFSET', `not an offset: ${JSON.stringify(since)} (an offset is '<era>-<n>')`, topic, since, this.oldestOffset);
    if (at.era > this.era || (at.era === this.era && at.n > this.last)) {
      throw new ResumeError('ERR_BAD_OFFSET', `offset ${since} of topic '${topic}' is newer than anything published on it (newest: ${this.lastOffset})`, topic, since, this.oldestOffset);
    }
    const first = this.last - this.size + 1;
    if (at.era < this.era) {
      // Another era: what followed it went with the store that numbered it, even if nothing came since.
      throw new ResumeError('ERR_OFFSET_TRIMMED', `offset ${since} of topic '${topic}' is from before the durable store restarted: what followed it is gone`, topic, since, this.oldestOffset);
    }
    if (at.n < first - 1) {
      throw new ResumeError('ERR_OFFSET_TRIMMED', `publications after offset ${since} of topic '${topic}' are no longer kept (the oldest kept is ${this.oldestOffset ?? 'none'})`, topic, since, this.oldestOffset);
    }
    const entries: Publication[] = [];
    for (let n = at.n + 1; n <= this.last; n++) entries.push(this.ring[n % this.ring.length]!);
    return { entries, last: this.lastOffset };
  }

  private grow(): void {
    const old = this.ring.slice();
    const length = Math.min(this.maxLength, old.length * 2);
    this.ring.length = length;
    this.ring.fill(undefined);
    for (let n = this.last - this.size + 1; n <= this.last; n++) this.ring[n % length] = old[n % old.length];
  }
}
