import { CloseCode } from './close-codes.js';
import { LimitExceededError } from './errors.js';
import type { ConnectionState, KeepaliveOptions } from './connection-types.js';

/** What a tick has to do: nothing, send a keepalive ping, or give up on the peer. */
export type LivenessDue = 'none' | 'ping' | 'hangup' | 'close-timeout';

/**
 * A connection's clock work, on the host's time only (invariant S5: no clock
 * of its own): keepalive pings and hang-up, the close handshake's timeout,
 * and the token bucket that bounds received control frames. Guarded by
 * test/core/liveness.test.ts and test/core/connection.test.ts (keepalive,
 * close timeout, maxControlFramesPerSecond).
 */
export class Liveness {
  private readonly keepalive: KeepaliveOptions | null;
  private readonly closeTimeoutMs: number;
  private readonly controlRate: number;
  private lastRxAt: number;
  private lastPingAt: number;
  /**
   * A keepalive ping is out and no empty pong has come since: the next one
   * gives its round-trip time (pongReceived()). One boolean, no timestamp of
   * its own: lastPingAt is when that ping was sent.
   */
  private awaitingPong = false;
  private closeDeadline = Infinity;
  /** The latest time the host has given us. */
  now: number;
  /**
   * The control-frame token bucket (maxControlFramesPerSecond), in thousandths
   * of a frame so that whole milliseconds refill it exactly, and the time it
   * was last refilled.
   */
  private controlBudget: number;
  private controlBudgetAt: number;

  constructor(keepalive: KeepaliveOptions | null | undefined, closeTimeoutMs: number, controlRate: number, now: number) {
    this.keepalive = keepalive && (keepalive.pingAfterMs > 0 || keepalive.hangupAfterMs > 0) ? keepalive : null;
    this.closeTimeoutMs = closeTimeoutMs;
    this.controlRate = controlRate;
    this.lastRxAt = now;
    this.lastPingAt = now;
    this.now = now;
    this.controlBudget = controlRate * 1000;
    this.controlBudgetAt = now;
  }

  /** Bytes arrived from the peer at `now`. */
  received(now: number): void {
    this.lastRxAt = now;
    this.now = now;
  }

  /** Our close frame is going out: the peer's answer is due within closeTimeoutMs of `now` (default: the latest time given). */
  startCloseTimer(now: number = this.now): void {
    this.now = now;
    this.closeDeadline = now + this.closeTimeoutMs;
  }

  /** Queued bytes still reach the peer while we wait for its close frame: the wait restarts from `now`. */
  closeProgress(now: number): void {
    this.now = now;
    if (this.closeDeadline !== Infinity) this.closeDeadline = now + this.closeTimeoutMs;
  }

  get closeWaitMs(): number {
    return this.closeTimeoutMs;
  }

  /** Silence so far, for the hang-up error's message. */
  silentFor(now: number): number {
    return now - this.lastRxAt;
  }

  get hangupAfterMs(): number {
    return this.keepalive?.hangupAfterMs ?? 0;
  }

  /** What is due at `now` in `state`; a 'ping' is counted as sent. */
  due(now: number, state: ConnectionState): LivenessDue {
    this.now = now;
    if (state === 'closing') return now >= this.closeDeadline ? 'close-timeout' : 'none';
    const ka = this.keepalive;
    if (state !== 'open' || !ka) return 'none';
    if (ka.hangupAfterMs > 0 && now - this.lastRxAt >= ka.hangupAfterMs) return 'hangup';
    if (ka.pingAfterMs > 0 && now - this.pingBase() >= ka.pingAfterMs) {
      this.lastPingAt = now;
      this.awaitingPong = true;
      return 'ping';
    }
    return 'none';
  }

  /** The earliest time at which something is due in `state` (Infinity: nothing). */
  nextDeadline(state: ConnectionState): number {
    if (state === 'closing') return this.closeDeadline;
    const ka = this.keepalive;
    if (state !== 'open' || !ka) return Infinity;
    let t = Infinity;
    if (ka.hangupAfterMs > 0) t = this.lastRxAt + ka.hangupAfterMs;
    if (ka.pingAfterMs > 0) t = Math.min(t, this.pingBase() + ka.pingAfterMs);
    return t;
  }

  private pingBase(): number {
    return this.keepalive!.alwaysPing ? this.lastPingAt : Math.max(this.lastRxAt, this.lastPingAt);
  }

  /**
   * A pong arrived (at the time last given to received()): the round-trip
   * time of our keepalive ping if it answers one, else undefined. Keepalive
   * pings are empty, so only an empty pong can answer one; an unsolicited
   * empty pong that comes first (RFC 6455 section 5.5.3 allows them) is taken
   * for the answer: the time measured is then shorter, never longer
   * (test/core/liveness.test.ts, "round-trip time").
   */
  pongReceived(payloadLength: number): number | undefined {
    if (!this.awaitingPong || payloadLength !== 0) return undefined;
    this.awaitingPong = false;
    return Math.max(0, this.now - this.lastPingAt);
  }

  /**
   * Charges one received ping or pong to the token bucket, refilled with the
   * host's time. Every control frame costs parsing, an event and, for a ping,
   * a pong written ahead of data (RFC 6455 section 5.5.2 asks for one "as
   * soon as is practical"); a peer may ping, but not without bound. An empty
   * bucket fails the connection with 1008 (section 7.4.1, policy violation)
   * before the frame is acted on (test/core/connection.test.ts,
   * "maxControlFramesPerSecond"; test/hostile/ping-flood.test.ts).
   */
  takeControlToken(): void {
    const rate = this.controlRate;
    if (rate <= 0) return;
    const now = this.now;
    if (now > this.controlBudgetAt) {
      // ms x frames/s = thousandths of a frame.
      this.controlBudget = Math.min(rate * 1000, this.controlBudget + (now - this.controlBudgetAt) * rate);
      this.controlBudgetAt = now;
    }
    if (this.controlBudget < 1000) {
      throw new LimitExceededError('maxControlFramesPerSecond', `more than ${rate} control frames (pings and pongs) per second (maxControlFramesPerSecond)`, CloseCode.PolicyViolation);
    }
    this.controlBudget -= 1000;
  }
}
