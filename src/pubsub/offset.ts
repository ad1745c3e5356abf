import { InvalidArgumentError, WebSocketError } from '../core/errors.js';

/**
 * Offsets of durable topics. An offset names one publication's place in its
 * topic's history, as the durable store assigned it: `<era>-<n>`, two
 * decimal integers, the shape of a Redis stream entry id. The cluster relay
 * uses its start time (ms) as the era and counts publications per topic in
 * `n` from 1, so an offset from before the primary restarted belongs to
 * another era and is never taken for one of this history. Offsets of one
 * topic compare as (era, n) pairs; the newest is the greatest.
 */
const OFFSET = /^(\d{1,16})-(\d{1,16})$/;

/** A parsed offset. */
export interface OffsetParts {
  readonly era: number;
  readonly n: number;
}

/** `<era>-<n>`. */
export function formatOffset(era: number, n: number): string {
  return `${era}-${n}`;
}

/** The parts of `offset`, or null if it is not `<era>-<n>` (decimal, each under 2^53). */
export function parseOffset(offset: unknown): OffsetParts | null {
  if (typeof offset !== 'string') return null;
  const m = OFFSET.exec(offset);
  if (!m) return null;
  const era = Number(m[1]);
  const n = Number(m[2]);
  return Number.isSafeInteger(era) && Number.isSafeInteger(n) ? { era, n } : null;
}

/**
 * Orders two offsets of one topic: negative if `a` is older, 0 if equal,
 * positive if newer. Throws ERR_BAD_OFFSET for a string that is no offset
 * (test/pubsub/offset.test.ts).
 */
export function compareOffsets(a: string, b: string): number {
  const pa = parseOffset(a);
  const pb = parseOffset(b);
  if (!pa || !pb) throw new InvalidArgumentError('ERR_BAD_OFFSET', `not an offset: ${JSON.stringify(pa ? b : a)} (an offset is '<era>-<n>')`);
  return pa.era !== pb.era ? pa.era - pb.era : pa.n - pb.n;
}

/**
 * Stable codes of ResumeError:
 * - ERR_OFFSET_TRIMMED: publications after the offset are no longer kept (the history is bounded, or the store restarted): they cannot be delivered;
 * - ERR_BAD_OFFSET: the offset is malformed, or newer than anything published on the topic;
 * - ERR_NOT_DURABLE: the topic is not durable, or the server's broker keeps no history.
 */
export type ResumeErrorCode = 'ERR_OFFSET_TRIMMED' | 'ERR_BAD_OFFSET' | 'ERR_NOT_DURABLE';

/** session.resume() could not deliver what followed an offset: says which topic, from where, and what is still kept. */
export class ResumeError extends WebSocketError {
  declare readonly code: ResumeErrorCode;
  readonly topic: string;
  /** The offset asked for (null when none was given). */
  readonly since: string | null;
  /** The oldest offset the history still holds (null when it holds none, or does not say). */
  readonly oldest: string | null;
  constructor(code: ResumeErrorCode, message: string, topic: string, since: string | null, oldest: string | null = null) {
    super(code, message);
    this.topic = topic;
    this.since = since;
    this.oldest = oldest;
  }
}
