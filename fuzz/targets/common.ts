/**
 * What every fuzz target shares: the target shape (Jazzer.js-compatible
 * `fuzz(data)` entry plus a signature for the built-in engine) and the rule
 * that decides what counts as a finding.
 *
 * The rule: nothing may escape the library except its own
 * WebSocketError subclasses. A TypeError, RangeError or any other exception
 * from a parser fed hostile bytes is a bug, and so is a broken invariant
 * (reported as a FuzzFinding).
 */
import { WebSocketError } from '../../src/core/errors.js';
import type { Rng } from '../rng.js';

/** An invariant the target checks did not hold. Always a finding. */
export class FuzzFinding extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FuzzFinding';
  }
}

export function check(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new FuzzFinding(typeof message === 'string' ? message : message());
}

export interface FuzzTarget {
  readonly name: string;
  /** Longest input the engine generates for this target. */
  readonly maxLen: number;
  /** True when run() returns a promise (the inflate path). */
  readonly async: boolean;
  /**
   * Runs one input. Throws on a finding (FuzzFinding, or whatever unexpected
   * exception escaped the library); otherwise returns a short behaviour
   * signature (which events and error codes the input produced). The
   * built-in engine keeps inputs with a new signature as further seeds: a
   * cheap stand-in for the coverage feedback it does not have.
   */
  run(data: Buffer): string | Promise<string>;
  /** Structure-aware mutation (frames, head lines, parameters); null when it does not apply. */
  mutate?(data: Buffer, rng: Rng): Buffer | null;
}

/**
 * Calls fn; a WebSocketError it throws is an expected outcome and is
 * returned; anything else is rethrown (a finding).
 */
export function expectOnlyWebSocketErrors<T>(fn: () => T): { value: T; error: undefined } | { value: undefined; error: WebSocketError } {
  try {
    return { value: fn(), error: undefined };
  } catch (err) {
    if (err instanceof WebSocketError) return { value: undefined, error: err };
    throw err;
  }
}

/** A short, stable description of an error for signatures and comparisons. */
export function errorKey(err: WebSocketError | undefined): string {
  return err === undefined ? 'ok' : `${err.constructor.name}:${err.code}`;
}

/** Copies a buffer (parsers take ownership of and unmask what they are given). */
export function copy(b: Buffer): Buffer {
  return Buffer.from(b);
}

/** An independent UTF-8 check: decoding replaces invalid sequences, so a lossless round trip means valid. */
export function isUtf8RoundTrip(b: Buffer): boolean {
  return Buffer.from(b.toString('utf8'), 'utf8').equals(b);
}
