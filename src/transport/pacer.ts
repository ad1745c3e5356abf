import type { WritableInfo } from './types.js';

/** What the pacer reads of its session, and how it fires onWritable. */
export interface PacerHost {
  /** Nothing waits on our side of the stream. */
  readonly idle: boolean;
  readonly bufferedAmount: number;
  readonly highWaterMark: number;
  /** The session may still send (a request made before it closed is dropped). */
  readonly open: boolean;
  fireWritable(info: WritableInfo): void;
}

/**
 * The two ways an application paces a producer: requestWritable() (one
 * onWritable callback per request, once everything queued went to the kernel,
 * never synchronously and never unasked: invariant S2) and waitForDrain()
 * (a promise for bufferedAmount at or below the high-water mark). Made on a
 * session's first use of either. Guarded by test/transport/pacer.test.ts and
 * test/integration/flow-control.test.ts.
 */
export class Pacer {
  private readonly host: PacerHost;
  private requested = false;
  private requests = 0;
  private scheduled = false;
  private waiters: Array<() => void> | null = null;

  constructor(host: PacerHost) {
    this.host = host;
  }

  /** requestWritable() calls that registered a request so far. */
  get requestCount(): number {
    return this.requests;
  }

  get pending(): boolean {
    return this.requested;
  }

  /** Registers a request; false if one is pending already (they do not stack). */
  request(): boolean {
    if (this.requested) return false;
    this.requested = true;
    this.requests++;
    this.maybeFire();
    return true;
  }

  /** The session closed: a pending request is not answered. */
  cancel(): void {
    this.requested = false;
  }

  /** Bytes went out: resolves waiters below the high-water mark, and fires a request once idle. */
  progressed(): void {
    this.releaseWaiters();
    if (this.requested) this.maybeFire();
  }

  /** Resolves when bufferedAmount is at or below the high-water mark. */
  waitForDrain(): Promise<void> {
    if (this.host.bufferedAmount <= this.host.highWaterMark) return Promise.resolve();
    return new Promise((resolve) => (this.waiters ??= []).push(resolve));
  }

  /** The stream is gone: every waiter resolves (the next send says 'dropped'). */
  releaseAll(): void {
    const ws = this.waiters;
    this.waiters = null;
    if (ws !== null) for (const w of ws) w();
  }

  private releaseWaiters(): void {
    if (this.waiters === null || this.waiters.length === 0 || this.host.bufferedAmount > this.host.highWaterMark) return;
    this.releaseAll();
  }

  private maybeFire(): void {
    if (!this.requested || this.scheduled || !this.host.idle) return;
    // Never synchronously from requestWritable() or inside a write: on the next turn of the loop.
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (!this.requested || !this.host.open) return;
      if (!this.host.idle) return; // the application queued more meanwhile: wait for 'drain'
      this.requested = false;
      this.host.fireWritable({ request: this.requests });
    });
  }
}
