import type { Duplex } from 'node:stream';

/** Why reading is paused; any one of them pauses it (bit flags). Never the write side (invariant S1). */
export const PauseReason = {
  /** The application called pauseReading(). */
  Application: 1,
  /** The messages() inbox holds more than its bound. */
  Inbox: 2,
  /** Too many received messages wait for the codec (inflate backlog, S3). */
  Codec: 4,
  /** Received bytes wait to be parsed on a later turn (see ReadGate.defer). */
  Input: 8,
} as const;
export type PauseReason = (typeof PauseReason)[keyof typeof PauseReason];

/** Where bytes that waited go: the session's parser (which may defer part of them again). */
export interface ReadGateHost {
  onData(bytes: Buffer): void;
}

/**
 * The one place that decides whether a session's stream is read, and the
 * holder of received bytes that wait to be parsed.
 *
 * Bytes wait for two reasons: a read went past the session's bound on frames
 * per turn (the rest is parsed on a later turn of the event loop, so that one
 * peer's flood of tiny frames never holds the others: test/hostile/floods.test.ts),
 * or bytes came with the handshake while the application had already paused.
 * While bytes wait, reading is paused, so what waits is at most one read.
 * A read that did a turn's worth of work without leaving bytes behind also
 * pauses reading until the next turn (yieldTurn()).
 * Guarded by test/transport/read-gate.test.ts.
 */
export class ReadGate {
  private readonly stream: Duplex;
  private readonly host: ReadGateHost;
  private reasons = 0;
  private waiting: Buffer | null = null;
  private scheduled = false;
  private closed = false;

  constructor(stream: Duplex, host: ReadGateHost) {
    this.stream = stream;
    this.host = host;
  }

  get paused(): boolean {
    return this.reasons !== 0;
  }

  has(reason: PauseReason): boolean {
    return (this.reasons & reason) !== 0;
  }

  /** Bytes received and not parsed yet. */
  get waitingBytes(): number {
    return this.waiting?.length ?? 0;
  }

  /** Sets or clears one reason to pause, and pauses or resumes the stream accordingly. */
  set(reason: PauseReason, on: boolean): void {
    const before = this.reasons;
    this.reasons = on ? before | reason : before & ~reason;
    if (reason === PauseReason.Application && !on) this.takeWaiting();
    if (this.reasons !== before) this.apply();
  }

  /** Applies the current state to the stream (at start, after the handshake paused it). */
  apply(): void {
    if (this.closed) return;
    if (this.reasons !== 0) this.stream.pause();
    else this.stream.resume();
  }

  /**
   * Keeps `bytes` (received, not parsed yet) and pauses reading until they are
   * parsed: on the next turn of the event loop, or when the application
   * resumes if it has paused. Bytes deferred while others wait go after them.
   */
  defer(bytes: Buffer): void {
    if (this.closed) return;
    this.waiting = this.waiting === null ? bytes : Buffer.concat([this.waiting, bytes]);
    this.set(PauseReason.Input, true);
    this.schedule();
  }

  /**
   * Pauses reading until the next turn of the event loop, with nothing
   * waiting: after a read that did a turn's worth of work, so that libuv does
   * not read this stream again before the other connections get theirs.
   */
  yieldTurn(): void {
    if (this.closed) return;
    this.set(PauseReason.Input, true);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.has(PauseReason.Application)) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (!this.has(PauseReason.Application)) this.takeWaiting();
    });
  }

  /** Feeds the bytes that waited; resumes reading unless they deferred part again (or another reason holds). */
  private takeWaiting(): void {
    if (this.closed) return;
    const bytes = this.waiting;
    this.waiting = null;
    if (bytes !== null) this.host.onData(bytes);
    if (this.waiting === null && this.has(PauseReason.Input) && !this.scheduled) this.set(PauseReason.Input, false);
  }

  /** The stream is gone: drops what waits, and never touches the stream again. */
  close(): void {
    this.closed = true;
    this.waiting = null;
  }
}
