/**
 * Two in-memory Duplex streams wired to each other: what one writes the
 * other reads, with backpressure (a side whose reader is paused stops
 * completing the other's writes once `highWaterMark` bytes are buffered).
 * No sockets and no OS timers: a transport for tests of the session parts.
 */
import { Duplex } from 'node:stream';

class End extends Duplex {
  peer: End | null = null;
  /** A write waiting for this side's reader to want more. */
  private waiting: (() => void) | null = null;

  override _read(): void {
    const w = this.waiting;
    this.waiting = null;
    w?.();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const peer = this.peer!;
    // Copied: the reader owns what it reads (a session unmasks in place).
    if (peer.push(Buffer.from(chunk))) cb();
    else peer.waiting = () => cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.peer!.push(null);
    cb();
  }

  /** A side destroyed before it finished writing resets the pair, as TCP would: the peer is destroyed too. */
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const peer = this.peer;
    if (peer && !peer.destroyed && !this.writableFinished) setImmediate(() => peer.destroy());
    cb(err);
  }
}

export function duplexPair(highWaterMark = 64 * 1024): [Duplex, Duplex] {
  const a = new End({ readableHighWaterMark: highWaterMark, writableHighWaterMark: highWaterMark });
  const b = new End({ readableHighWaterMark: highWaterMark, writableHighWaterMark: highWaterMark });
  a.peer = b;
  b.peer = a;
  return [a, b];
}
