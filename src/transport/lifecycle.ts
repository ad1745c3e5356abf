import type { ClosedEvent } from '../core/connection.js';
import type { CloseInfo } from './types.js';

/**
 * Where a session is on its way out, after the core's Connection state:
 * - open: messages flow both ways;
 * - closing: our close frame is queued, the peer's is awaited;
 * - flushing: the WebSocket is closed (the core said so), and what is still
 *   queued goes out before the stream is ended (invariant S4);
 * - ending: the stream was ended or destroyed; its 'close' is awaited;
 * - released: the stream is closed and the session has reported how it
 *   ended (onClose, `closed`); nothing happens after this.
 */
export type LifecycleState = 'open' | 'closing' | 'flushing' | 'ending' | 'released';

/** What can happen to a session's lifecycle; step() takes one at a time. */
export type LifecycleInput =
  /** Our close frame was queued (close(), or a handler failed). */
  | { type: 'close-sent' }
  /** The core closed the WebSocket: a graceful end flushes first, an abort destroys the stream. */
  | { type: 'closed'; event: ClosedEvent }
  /** The outbound path may have emptied (a write went straight out, 'drain'), or the peer half-closed. */
  | { type: 'maybe-idle' }
  /** Queued bytes reached the peer: the wait for it restarts. */
  | { type: 'progress' }
  /** The session's timer fired at `now`. */
  | { type: 'timer'; now: number }
  /**
   * The stream closed. `unsent` counts the messages that never reached the
   * kernel; it is asked when the session is released, which is later if the
   * core's 'closed' event is still to come.
   */
  | { type: 'stream-closed'; unsent: () => number };

/** What the lifecycle asks of the session. */
export interface LifecycleHost {
  /** Nothing waits on our side of the stream. */
  readonly idle: boolean;
  now(): number;
  /** End the stream gracefully (`clean`: the closing handshake completed). */
  endStream(clean: boolean): void;
  destroyStream(): void;
  /** The session is over: report it (onClose, the `closed` promise). */
  released(info: CloseInfo): void;
}

/**
 * A session's close sequence as one state machine: step() is the one
 * function that changes its state, so the outcome never depends on which
 * of the stream's and the core's events came first. Guarded, transition by
 * transition, by test/transport/lifecycle.test.ts (over an in-memory duplex
 * pair) and by the session tests around it.
 */
export class Lifecycle {
  private _state: LifecycleState = 'open';
  private readonly host: LifecycleHost;
  private readonly closeTimeoutMs: number;
  /** How the WebSocket ended, once the core said so. */
  private event: ClosedEvent | null = null;
  /** When a stream that is being flushed or ended is destroyed if it has not closed by then. */
  private destroyAt = Infinity;
  /** Set when the stream closed: counts the messages it left unsent. */
  private unsent: (() => number) | null = null;
  private _info: CloseInfo | null = null;
  /** The `closed` promise, made on first use (most sessions are never awaited), and its resolver. */
  private promise: Promise<CloseInfo> | null = null;
  private resolve: ((info: CloseInfo) => void) | null = null;

  constructor(host: LifecycleHost, closeTimeoutMs: number) {
    this.host = host;
    this.closeTimeoutMs = closeTimeoutMs;
  }

  get state(): LifecycleState {
    return this._state;
  }

  /** How the WebSocket ended (before the stream closed, too), or null while it has not. */
  get closedEvent(): ClosedEvent | null {
    return this.event;
  }

  /** How the session ended, once released. */
  get info(): CloseInfo | null {
    return this._info;
  }

  /** The stream is closed (the session may still wait for the core's 'closed' event). */
  get streamClosed(): boolean {
    return this.unsent !== null;
  }

  /** Resolves once, on release, with how the session ended. Never rejects. */
  whenReleased(): Promise<CloseInfo> {
    if (this.promise === null) {
      const info = this._info;
      this.promise = info ? Promise.resolve(info) : new Promise((resolve) => (this.resolve = resolve));
    }
    return this.promise;
  }

  /** When step({ type: 'timer' }) has something to do (Infinity: never). */
  get deadline(): number {
    return this._state === 'flushing' || this._state === 'ending' ? this.destroyAt : Infinity;
  }

  /** The one transition function. */
  step(input: LifecycleInput): void {
    const s = this._state;
    if (s === 'released') return;
    switch (input.type) {
      case 'close-sent':
        if (s === 'open') this._state = 'closing';
        return;
      case 'closed':
        if (this.event !== null) return;
        this.event = input.event;
        if (this.unsent !== null) {
          this.release();
        } else if (input.event.hangup === 'abort') {
          this._state = 'ending';
          this.host.destroyStream();
        } else {
          // Graceful: everything queued goes out, then the stream is ended; a peer that never closes its side is destroyed after the close timeout.
          this._state = 'flushing';
          this.destroyAt = this.host.now() + this.closeTimeoutMs;
          this.endWhenIdle();
        }
        return;
      case 'maybe-idle':
        if (s === 'flushing') this.endWhenIdle();
        return;
      case 'progress':
        if (s === 'flushing' || s === 'ending') this.destroyAt = this.host.now() + this.closeTimeoutMs;
        return;
      case 'timer':
        if ((s === 'flushing' || s === 'ending') && input.now >= this.destroyAt) {
          this._state = 'ending';
          this.destroyAt = Infinity;
          this.host.destroyStream();
        }
        return;
      case 'stream-closed':
        if (this.unsent !== null) return;
        this.unsent = input.unsent;
        // Before the core's event (the close is held back while messages before a close frame are
        // still being inflated, or the session tells the core next): released when the event comes.
        if (this.event !== null) this.release();
        return;
    }
  }

  private endWhenIdle(): void {
    if (!this.host.idle) return;
    this._state = 'ending';
    this.host.endStream(this.event!.wasClean);
  }

  private release(): void {
    const ev = this.event!;
    this._state = 'released';
    this.destroyAt = Infinity;
    const info: CloseInfo = { code: ev.code, reason: ev.reason, wasClean: ev.wasClean, error: ev.error, unsentMessages: this.unsent!() };
    this._info = info;
    this.host.released(info);
    this.resolve?.(info);
    this.resolve = null;
  }
}
