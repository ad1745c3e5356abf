import type { WebSocketError } from './errors.js';

/**
 * A per-message transform negotiated as an extension (RFC 6455 section 9,
 * RFC 7692 permessage-deflate). The core stays sans-I/O: it hands whole
 * messages to the codec and takes results back through callbacks, which may
 * come later (zlib runs off the event loop). The core keeps message order:
 * nothing overtakes a message that is still being transformed.
 */
export interface MessageCodec {
  /** Extension name as negotiated, e.g. 'permessage-deflate'. */
  readonly name: string;
  /** RSV bit the codec marks transformed messages with (0x4 = RSV1). */
  readonly rsv: number;
  /**
   * False when the agreement forbids transforming what this side sends (a
   * permessage-deflate window of 8 bits, which zlib cannot compress with):
   * every message then goes out plain, which RFC 7692 allows.
   */
  readonly compressesOutput: boolean;
  /** Whether to transform this outgoing message (e.g. not below a size threshold). */
  shouldCompress(data: Uint8Array, binary: boolean): boolean;
  /**
   * Transforms one outgoing message, or one frame of it: `final` false means
   * more of the same message follows (one compressed stream across its
   * frames). `data` is the codec's to keep. Calls `done` exactly once; the
   * codec runs its jobs in call order.
   */
  compress(data: Buffer, done: (error: WebSocketError | null, result: Buffer | null) => void, final: boolean): void;
  /**
   * Restores one incoming message from its frames' payloads. The output may
   * never exceed `maxBytes`: past it, stop and call done with a
   * LimitExceededError (1009) without holding more than `maxBytes`.
   */
  decompress(parts: Buffer[], maxBytes: number, done: (error: WebSocketError | null, result: Buffer | null) => void): void;
  /** Releases zlib state; pending callbacks may still fire and are ignored. */
  close(): void;
}

/**
 * The most bytes a compressed message whose content is `n` bytes may take on
 * the wire: zlib's deflateBound() for raw deflate. Content that does not
 * compress (random bytes, media) grows a little when deflated, so a message
 * of exactly the size limit arrives as slightly more. A compressed message's
 * wire bytes are held to this bound of the limit instead of the limit itself,
 * and its inflated size to the limit (test/core/message-assembler.test.ts,
 * "a compressed message of incompressible bytes at the limit").
 */
export function compressedBound(n: number): number {
  return n + Math.floor(n / 4096) + Math.floor(n / 16384) + Math.floor(n / 33554432) + 13;
}
