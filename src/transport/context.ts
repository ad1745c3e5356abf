import { randomFillSync } from 'node:crypto';
import { FramePool } from './frame-pool.js';
import { Http2Pool } from './http2-pool.js';
import { Limiter } from './limiter.js';
import { TimerWheel } from './timer-wheel.js';

export interface ContextOptions {
  /** Granularity of keepalive, close and handshake timers. Default 10 ms. */
  timerResolutionMs?: number;
  /** Most zlib jobs (permessage-deflate) running at once across the context. Default 8. */
  zlibConcurrency?: number;
}

/**
 * What connections share: the timer wheel and a pool of random bytes for
 * client masks and keys. One per server, or per client unless several clients
 * are given the same one. Nothing of this lives at module level.
 */
export class Context {
  readonly timers: TimerWheel;
  /** Bounds concurrent zlib work of every session of this context. */
  readonly zlib: Limiter;
  /** Reused buffers for large outgoing frames (see FramePool). */
  readonly frames: FramePool;
  private pool = Buffer.alloc(0);
  private http2Pool: Http2Pool | null = null;
  private poolPos = 0;

  constructor(options: ContextOptions = {}) {
    this.timers = new TimerWheel(options.timerResolutionMs ?? 10);
    this.zlib = new Limiter(options.zlibConcurrency ?? 8);
    this.frames = new FramePool(this.timers);
  }

  now(): number {
    return this.timers.now();
  }

  /** Fresh random bytes from the CSPRNG, drawn from a refilled pool (RFC 6455 section 10.3: masks must be unpredictable). */
  random(n: number): Buffer {
    if (this.poolPos + n > this.pool.length) {
      this.pool = randomFillSync(Buffer.allocUnsafe(Math.max(4096, n)));
      this.poolPos = 0;
    }
    const out = this.pool.subarray(this.poolPos, this.poolPos + n);
    this.poolPos += n;
    return out;
  }

  /** A mask source for client connections. */
  readonly maskSource = (): Uint8Array => this.random(4);

  /** A Sec-WebSocket-Key: base64 of 16 random bytes (RFC 6455 section 4.1). */
  newKey(): string {
    return Buffer.from(this.random(16)).toString('base64');
  }

  /** @internal The client's HTTP/2 connections (connect()'s http2 option), shared by every client of this context. */
  get http2(): Http2Pool {
    return (this.http2Pool ??= new Http2Pool(this.timers));
  }

  close(): void {
    this.http2Pool?.close();
    this.timers.cancel(this.frames);
    this.frames.clear();
    this.timers.stop();
  }
}
