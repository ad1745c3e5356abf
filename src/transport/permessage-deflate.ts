import { constants, createDeflateRaw, createInflateRaw, type DeflateRaw, type InflateRaw } from 'node:zlib';
import { CloseCode } from '../core/close-codes.js';
import type { DeflateConfig, DeflateParams } from '../core/deflate-negotiation.js';
import { InvalidArgumentError, LimitExceededError, ProtocolError, WebSocketError } from '../core/errors.js';
import type { MessageCodec } from '../core/message-codec.js';
import type { Role } from '../core/connection.js';
import type { Limiter } from './limiter.js';

/** permessage-deflate options: negotiation (RFC 7692 section 7) plus zlib tuning. */
export interface PerMessageDeflateOptions extends DeflateConfig {
  /** zlib compression level 0-9. Default 6 (zlib's default). */
  level?: number;
  /** zlib memLevel 1-9: memory of the compressor's state. Default 8. */
  memLevel?: number;
  /** Messages smaller than this many bytes are sent uncompressed. Default 1024. */
  threshold?: number;
}

/**
 * Checks the zlib tuning options (the negotiation options are checked by
 * validateDeflateConfig). Throws InvalidArgumentError 'ERR_BAD_DEFLATE_CONFIG'.
 * createServer() and connect() call it up front: a bad level or memLevel
 * found only at the first compressed send would be a RangeError thrown by
 * createDeflateRaw inside a zlib limiter job, whose slot would never be
 * released (the context's zlib concurrency would shrink for good), whose
 * codec queue would stall (no message or close frame of that session would
 * go out again), and which, had the job waited for a slot, would come out of
 * another session's zlib callback, uncaught
 * (test/transport/permessage-deflate.test.ts).
 */
export function validateZlibOptions(options: PerMessageDeflateOptions): void {
  const { level, memLevel, threshold } = options;
  if (level !== undefined && (typeof level !== 'number' || !Number.isInteger(level) || level < -1 || level > 9)) {
    throw new InvalidArgumentError('ERR_BAD_DEFLATE_CONFIG', `permessage-deflate option level must be an integer from -1 to 9 (got ${String(level)})`);
  }
  if (memLevel !== undefined && (typeof memLevel !== 'number' || !Number.isInteger(memLevel) || memLevel < 1 || memLevel > 9)) {
    throw new InvalidArgumentError('ERR_BAD_DEFLATE_CONFIG', `permessage-deflate option memLevel must be an integer from 1 to 9 (got ${String(memLevel)})`);
  }
  if (threshold !== undefined && (typeof threshold !== 'number' || Number.isNaN(threshold) || threshold < 0)) {
    throw new InvalidArgumentError('ERR_BAD_DEFLATE_CONFIG', `permessage-deflate option threshold must be a number of bytes, 0 or more (got ${String(threshold)})`);
  }
}

/** RFC 7692 section 7.2.2: a sender removes, a receiver appends, the 4 octets of an empty stored block's tail. */
const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

type Done = (error: WebSocketError | null, result: Buffer | null) => void;

/**
 * permessage-deflate over node:zlib. Each direction has one zlib stream,
 * kept between messages with context takeover and reset after each message
 * without; its jobs run one at a time (stream order is message order), and
 * every job takes a slot of the context's zlib limiter.
 */
export class DeflateCodec implements MessageCodec {
  readonly name = 'permessage-deflate';
  readonly rsv = 0x4;
  readonly compressesOutput: boolean;
  private readonly threshold: number;
  private readonly limiter: Limiter;
  // Outgoing.
  private deflater: DeflateRaw | null = null;
  private readonly deflateWindowBits: number;
  private readonly deflateReset: boolean;
  private readonly level: number;
  private readonly memLevel: number;
  private readonly compressJobs: Array<() => void> = [];
  private compressing = false;
  // Incoming.
  private inflater: InflateRaw | null = null;
  private readonly inflateWindowBits: number;
  private readonly inflateReset: boolean;
  private readonly decompressJobs: Array<() => void> = [];
  private decompressing = false;
  private closed = false;

  constructor(role: Role, params: DeflateParams, options: PerMessageDeflateOptions, limiter: Limiter) {
    validateZlibOptions(options);
    this.limiter = limiter;
    this.threshold = options.threshold ?? 1024;
    this.level = options.level ?? 6;
    this.memLevel = options.memLevel ?? 8;
    const ours = role === 'server' ? 'server' : 'client';
    const theirs = role === 'server' ? 'client' : 'server';
    this.deflateWindowBits = params[`${ours}MaxWindowBits`];
    // A window of 8 bits was agreed for what we send: zlib cannot compress with it, so nothing is compressed.
    this.compressesOutput = this.deflateWindowBits >= 9;
    this.deflateReset = params[`${ours}NoContextTakeover`];
    // zlib's raw inflate accepts windowBits 9-15; a larger window than the peer's always decodes its output.
    this.inflateWindowBits = Math.max(9, params[`${theirs}MaxWindowBits`]);
    this.inflateReset = params[`${theirs}NoContextTakeover`];
  }

  shouldCompress(data: Uint8Array): boolean {
    return data.length >= this.threshold;
  }

  compress(data: Buffer, done: Done, final = true): void {
    this.compressJobs.push(() => this.runCompress(data, done, final));
    if (!this.compressing) this.nextCompress();
  }

  decompress(parts: Buffer[], maxBytes: number, done: Done): void {
    this.decompressJobs.push(() => this.runDecompress(parts, maxBytes, done));
    if (!this.decompressing) this.nextDecompress();
  }

  close(): void {
    this.closed = true;
    this.compressJobs.length = 0;
    this.decompressJobs.length = 0;
    this.deflater?.close();
    this.inflater?.close();
    this.deflater = null;
    this.inflater = null;
  }

  private nextCompress(): void {
    const job = this.compressJobs.shift();
    this.compressing = job !== undefined;
    job?.();
  }

  private nextDecompress(): void {
    const job = this.decompressJobs.shift();
    this.decompressing = job !== undefined;
    job?.();
  }

  private runCompress(data: Buffer, done: Done, final: boolean): void {
    this.limiter.run((release) => {
      if (this.closed) {
        release();
        return;
      }
      if (!this.deflater) {
        this.deflater = createDeflateRaw({ level: this.level, memLevel: this.memLevel, windowBits: this.deflateWindowBits });
      }
      const z = this.deflater;
      const out: Buffer[] = [];
      let size = 0;
      const onData = (chunk: Buffer) => {
        out.push(chunk);
        size += chunk.length;
      };
      const onError = (err: Error) => finish(new ProtocolError('ERR_DEFLATE', `compression failed: ${err.message}`, CloseCode.InternalError));
      // A zlib error is followed by the flush callback: report once. Without this guard `done` would be
      // called twice, the error and then an empty "result", and the next job would start twice
      // (test/transport/permessage-deflate.test.ts).
      let settled = false;
      const finish = (err: WebSocketError | null) => {
        if (settled) return;
        settled = true;
        z.off('data', onData);
        z.off('error', onError);
        release();
        if (err) {
          // The failed stream is not reused: closed now, and a new one made for the next job.
          z.close();
          if (this.deflater === z) this.deflater = null;
        }
        if (this.closed) return;
        if (err) {
          done(err, null);
        } else {
          let result = Buffer.concat(out, size);
          // Section 7.2.1: strip the 0x00 0x00 0xff 0xff that ends the message's last sync flush.
          if (final && result.length >= 4 && result.subarray(result.length - 4).equals(TRAILER)) result = result.subarray(0, result.length - 4);
          if (final && this.deflateReset) z.reset();
          done(null, result);
        }
        this.nextCompress();
      };
      z.on('data', onData);
      z.once('error', onError);
      z.write(data);
      z.flush(constants.Z_SYNC_FLUSH, () => finish(null));
    });
  }

  private runDecompress(parts: Buffer[], maxBytes: number, done: Done): void {
    this.limiter.run((release) => {
      if (this.closed) {
        release();
        return;
      }
      if (!this.inflater) this.inflater = createInflateRaw({ windowBits: this.inflateWindowBits });
      const z = this.inflater;
      const out: Buffer[] = [];
      let size = 0;
      let settled = false;
      // RFC 7692 section 7.2.3.4: a sender may end a message with a DEFLATE block that has BFINAL set. That
      // ends the raw stream (node:zlib ends the readable side and ignores the rest), and an ended stream
      // cannot inflate the next message (it would come out empty, or fail with "push() after EOF").
      let ended = false;
      const onEnd = () => {
        ended = true;
      };
      const finish = (err: WebSocketError | null) => {
        if (settled) return;
        settled = true;
        z.off('data', onData);
        z.off('error', onError);
        z.off('end', onEnd);
        release();
        if (err || ended || z.readableEnded) {
          // Abandoned mid-message (zlib stops working on it at once), or ended by BFINAL: the next message
          // starts a new stream.
          z.close();
          if (this.inflater === z) this.inflater = null;
        } else if (this.inflateReset && !this.closed) {
          // Not after close(): the flush callback still fires once the stream is destroyed, and reset() on a
          // closed zlib handle throws (an uncaught exception when a peer aborted mid-inflate).
          z.reset();
        }
        if (!this.closed) {
          if (err) done(err, null);
          else done(null, out.length === 1 ? out[0] : Buffer.concat(out, size));
        }
        this.nextDecompress();
      };
      const onData = (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) {
          // Decompression bomb guard: never hold more than maxBytes of output.
          finish(new LimitExceededError('maxMessageBytes', `inflated message exceeds ${maxBytes} bytes`, CloseCode.MessageTooBig));
          return;
        }
        out.push(chunk);
      };
      const onError = (err: Error) => finish(new ProtocolError('ERR_INFLATE', `invalid compressed data: ${err.message}`, CloseCode.InvalidPayload, { cause: err }));
      z.on('data', onData);
      z.once('error', onError);
      z.once('end', onEnd);
      for (const p of parts) z.write(p);
      z.write(TRAILER);
      z.flush(constants.Z_SYNC_FLUSH, () => finish(null));
    });
  }
}
