import { HandshakeError, InvalidArgumentError, InvalidStateError, TimeoutError, TransportError, WebSocketError } from '../core/errors.js';
import type { CloseInfo } from '../transport/types.js';
import { connect, type ClientSession, type ConnectOptions } from './connect.js';

/**
 * When to try again, in the spirit of libwebsockets' lws_retry_bo_t: a table
 * of delays or an exponential backoff, with jitter, and a cap on attempts.
 */
export interface RetryPolicy {
  /** Delays in ms for the 1st, 2nd, ... attempt after a drop or failure; the last one repeats. Replaces the exponential backoff. */
  delaysMs?: readonly number[];
  /** Exponential backoff: the first delay (default 250 ms) ... */
  initialDelayMs?: number;
  /** ... multiplied by this for each further attempt (default 2) ... */
  factor?: number;
  /** ... up to this (default 30000 ms). */
  maxDelayMs?: number;
  /** Each delay is shortened by a random part of up to this fraction of it, so that clients dropped together do not come back together. 0 to 1, default 0.2. */
  jitter?: number;
  /** Attempts in a row that may fail before reconnect() gives up (default Infinity). A connection that opens resets the count. */
  maxAttempts?: number;
  /** Overrides the default choice of which failures are worth another attempt (see retryable()). */
  retryOn?(reason: RetryReason): boolean;
}

/** Why an attempt is about to be made, or why reconnect() stopped. */
export type RetryReason =
  /** The connection could not be opened: connect()'s error. */
  | { kind: 'failed'; error: WebSocketError }
  /** An open connection ended: its close. */
  | { kind: 'closed'; close: CloseInfo };

/** Each attempt after the first, as it is scheduled. */
export interface ReconnectAttempt {
  /** 1 for the first attempt after a drop or a failure, 2 for the next, ... (reset once a connection opens). */
  attempt: number;
  /** How long it waits before connecting. */
  delayMs: number;
  reason: RetryReason;
}

export interface ReconnectOptions<T = unknown> extends ConnectOptions<T> {
  retry?: RetryPolicy;
  /** Called for each attempt after the first, before its delay. */
  onAttempt?(attempt: ReconnectAttempt): void;
}

/** What reconnect() returns: the connections, one after another, and a way to stop. */
export interface Reconnector<T = unknown> extends AsyncIterable<ClientSession<T>> {
  /** Stops: the current connection is closed with 1000, a pending attempt is cancelled, and the iteration ends. */
  close(): void;
}

const DEFAULT_INITIAL_DELAY_MS = 250;
const DEFAULT_FACTOR = 2;
const DEFAULT_MAX_DELAY_MS = 30_000;
const DEFAULT_JITTER = 0.2;

/** Close codes after which another connection may well succeed: the server went away, failed, restarts or is busy. */
const RETRY_CLOSE_CODES = new Set([1001, 1005, 1006, 1011, 1012, 1013, 1014]);

/**
 * The default choice: a connection that failed to open, or dropped, is worth
 * another attempt when the cause may pass: refused, reset, a timeout, an
 * HTTP 5xx, 408 or 429, or a close with 1001, 1005, 1006, 1011, 1012, 1013 or
 * 1014. Not when it will not: any other HTTP status (4xx: the request itself
 * is refused), a certificate the client does not trust, a bad handshake
 * answer, an aborted attempt, or a close that ends the conversation (1000) or blames the client
 * (1002, 1003, 1007, 1008, 1009, 1010) or is the application's own (4000 to
 * 4999). test/client/reconnect.test.ts, "retryable".
 */
export function retryable(reason: RetryReason): boolean {
  if (reason.kind === 'closed') return RETRY_CLOSE_CODES.has(reason.close.code);
  const error = reason.error;
  if (error instanceof HandshakeError) {
    const status = error.status;
    return status !== undefined && (status >= 500 || status === 408 || status === 429);
  }
  if (error instanceof TimeoutError) return true;
  if (error instanceof TransportError) {
    // The application aborted it (connect()'s signal): not a failure to try again.
    if (error.code === 'ERR_ABORTED') return false;
    const cause = (error.cause as NodeJS.ErrnoException | undefined)?.code ?? '';
    // A certificate that is not trusted now will not be trusted in a second either.
    return !/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ALTNAME|SSL/.test(cause);
  }
  return false;
}

/** The delay before attempt `attempt` (1-based) under `policy`, before jitter. */
export function nominalDelay(policy: RetryPolicy, attempt: number): number {
  if (policy.delaysMs !== undefined) return policy.delaysMs[Math.min(attempt, policy.delaysMs.length) - 1];
  const initial = policy.initialDelayMs ?? DEFAULT_INITIAL_DELAY_MS;
  const max = policy.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
  return Math.min(max, initial * (policy.factor ?? DEFAULT_FACTOR) ** (attempt - 1));
}

/** The delay with jitter: from (1 - jitter) times the nominal delay up to it, never more. */
export function jitteredDelay(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const nominal = nominalDelay(policy, attempt);
  return Math.round(nominal * (1 - (policy.jitter ?? DEFAULT_JITTER) * random()));
}

/** Throws InvalidArgumentError ERR_BAD_RETRY for a policy out of range. */
export function checkPolicy(policy: RetryPolicy): void {
  const nonNegative = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0;
  if (policy.delaysMs !== undefined && (policy.delaysMs.length === 0 || !policy.delaysMs.every(nonNegative))) {
    throw new InvalidArgumentError('ERR_BAD_RETRY', 'retry.delaysMs must be a non-empty list of delays in ms, each 0 or more');
  }
  for (const key of ['initialDelayMs', 'maxDelayMs'] as const) {
    if (policy[key] !== undefined && !nonNegative(policy[key])) throw new InvalidArgumentError('ERR_BAD_RETRY', `retry.${key} must be a number of ms, 0 or more`);
  }
  if (policy.factor !== undefined && !(nonNegative(policy.factor) && policy.factor >= 1)) throw new InvalidArgumentError('ERR_BAD_RETRY', 'retry.factor must be 1 or more');
  if (policy.jitter !== undefined && !(nonNegative(policy.jitter) && policy.jitter <= 1)) throw new InvalidArgumentError('ERR_BAD_RETRY', 'retry.jitter must be from 0 to 1');
  const max = policy.maxAttempts;
  if (max !== undefined && !(max === Infinity || (Number.isInteger(max) && max >= 0))) throw new InvalidArgumentError('ERR_BAD_RETRY', 'retry.maxAttempts must be a whole number, 0 or more, or Infinity');
}

/**
 * Connects, and connects again after each drop, under a retry policy:
 *
 *   for await (const client of reconnect(url, { retry: { maxAttempts: 10 } })) {
 *     try { for await (const m of client.messages()) handle(m); } catch { // dropped: go round }
 *   }
 *
 * Each connection is yielded once it is open. The next one is opened when
 * the loop asks for it and the current one has closed, after a delay of the
 * policy. The iteration ends when a connection closes in a way not worth
 * retrying (1000 from either side, say), when close() is called, or when
 * the loop is left (the open connection is then closed with 1000). It
 * throws the error when the connection cannot be opened and that failure
 * is not worth retrying, or after `maxAttempts` failures in a row: never a
 * silent end (S4).
 */
export function reconnect<T = unknown>(url: string | URL, options: ReconnectOptions<T> = {}): Reconnector<T> {
  const policy = options.retry ?? {};
  checkPolicy(policy);
  const retryOn = policy.retryOn ?? retryable;
  const maxAttempts = policy.maxAttempts ?? Infinity;
  const { retry: _retry, onAttempt, ...connectOptions } = options;
  let current: ClientSession<T> | null = null;
  let stopped = false;
  let wake: (() => void) | null = null;
  let timer: NodeJS.Timeout | null = null;

  const stop = () => {
    stopped = true;
    if (timer !== null) clearTimeout(timer);
    timer = null;
    wake?.();
    current?.close(1000);
  };
  /** Waits `ms`, or less if stopped; false if stopped. */
  const sleep = (ms: number) =>
    new Promise<boolean>((resolve) => {
      if (stopped) return resolve(false);
      wake = () => resolve(false);
      timer = setTimeout(() => {
        timer = null;
        wake = null;
        resolve(true);
      }, ms);
    });

  async function* run(): AsyncGenerator<ClientSession<T>> {
    let failures = 0;
    let reason: RetryReason | null = null;
    try {
      while (!stopped) {
        if (reason !== null) {
          failures++;
          if (failures > maxAttempts) {
            if (reason.kind === 'failed') throw reason.error;
            return;
          }
          const delayMs = jitteredDelay(policy, failures);
          onAttempt?.({ attempt: failures, delayMs, reason });
          if (!(await sleep(delayMs))) return;
        }
        let session: ClientSession<T>;
        try {
          session = await connect<T>(url, connectOptions);
        } catch (err) {
          if (!(err instanceof WebSocketError) || err instanceof InvalidArgumentError) throw err;
          reason = { kind: 'failed', error: err };
          if (!retryOn(reason)) throw err;
          continue;
        }
        if (stopped) {
          session.close(1000);
          return;
        }
        failures = 0;
        current = session;
        yield session;
        const close = await session.closed;
        current = null;
        reason = { kind: 'closed', close };
        if (!retryOn(reason)) return;
      }
    } finally {
      // Leaving the loop (break, return, a throw in its body) ends the open connection too.
      stop();
    }
  }

  let iterated = false;
  return {
    [Symbol.asyncIterator]() {
      // One loop owns the connections: a second one would race it for them.
      if (iterated) throw new InvalidStateError('iterate reconnect() again', 'already iterated');
      iterated = true;
      return run();
    },
    close: stop,
  };
}
