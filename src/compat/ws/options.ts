import type { PerMessageDeflateOptions } from '../../transport/permessage-deflate.js';
import type { SessionLimits } from '../../transport/types.js';

/** ws's permessage-deflate options (doc/ws.md, "new WebSocketServer"). */
export interface WsPerMessageDeflateOptions {
  serverNoContextTakeover?: boolean;
  clientNoContextTakeover?: boolean;
  serverMaxWindowBits?: number | boolean;
  clientMaxWindowBits?: number | boolean;
  zlibDeflateOptions?: { level?: number; memLevel?: number; [option: string]: unknown };
  zlibInflateOptions?: Record<string, unknown>;
  /** Messages smaller than this are sent uncompressed. Default 1024. */
  threshold?: number;
  /** Most zlib jobs at once (per server, or per client). Default 10. */
  concurrencyLimit?: number;
}

/** The options both the server and the client take, with ws's meaning. */
export interface WsCommonOptions {
  /** Emit several 'message', 'ping' and 'pong' events in one tick. Default true. */
  allowSynchronousEvents?: boolean;
  /** Answer pings with pongs. Default true. */
  autoPong?: boolean;
  /** How long close() waits for the peer's close frame before the socket is destroyed. Default 30000 ms. */
  closeTimeout?: number;
  /** Largest message (and frame) accepted, in bytes; 0 for no limit. Default 104857600 (100 MiB). */
  maxPayload?: number;
  /** Most frames in one message; 0 for no limit. Default 131072. */
  maxFragments?: number;
  /**
   * Accepted for compatibility and not used: the engine keeps no list of received chunks per
   * message; its limits on what a peer makes it hold are in bytes (maxPayload) and frames
   * (maxFragments). docs/migrating-from-ws.md says more.
   */
  maxBufferedChunks?: number;
  /** Accepted for compatibility; UTF-8 is always validated (RFC 6455 section 8.1). */
  skipUTF8Validation?: boolean;
  /**
   * Not in ws: the most bytes waiting to be sent on one socket. A send()
   * past it (while something already waits) fails the connection with 1008
   * and calls the send's callback with the error, instead of letting memory
   * grow without bound. Default 64 MiB.
   */
  maxQueuedBytes?: number;
}

export const WS_DEFAULT_MAX_PAYLOAD = 100 * 1024 * 1024;
export const WS_DEFAULT_MAX_FRAGMENTS = 131072;
export const WS_DEFAULT_CLOSE_TIMEOUT = 30_000;
export const WS_DEFAULT_MAX_QUEUED_BYTES = 64 * 1024 * 1024;
export const WS_DEFAULT_CONCURRENCY = 10;

/** ws's limits as the engine's (0 means no limit in ws: the largest message the engine can hold). */
export function limitsOf(options: WsCommonOptions): Partial<SessionLimits> {
  const payload = options.maxPayload ?? WS_DEFAULT_MAX_PAYLOAD;
  const fragments = options.maxFragments ?? WS_DEFAULT_MAX_FRAGMENTS;
  // ws coerces both to 32-bit signed integers; 0 (or less) disables the limit.
  const maxMessageBytes = payload > 0 ? Math.min(Math.floor(payload), 0x7fffffff) : 0x7fffffff;
  return {
    maxMessageBytes,
    maxFrameBytes: maxMessageBytes,
    maxFragments: fragments > 0 ? Math.min(Math.floor(fragments), 0x7fffffff) : 0x7fffffff,
    maxQueuedBytes: options.maxQueuedBytes ?? WS_DEFAULT_MAX_QUEUED_BYTES,
  };
}

/**
 * ws's permessage-deflate object as the engine's. `true` for a window size
 * (allowed by ws for the client's clientMaxWindowBits) means "any".
 */
export function deflateOf(value: boolean | WsPerMessageDeflateOptions | undefined): PerMessageDeflateOptions | null {
  if (!value) return null;
  if (value === true) return {};
  const out: PerMessageDeflateOptions = {};
  if (value.serverNoContextTakeover !== undefined) out.serverNoContextTakeover = value.serverNoContextTakeover;
  if (value.clientNoContextTakeover !== undefined) out.clientNoContextTakeover = value.clientNoContextTakeover;
  if (typeof value.serverMaxWindowBits === 'number') out.serverMaxWindowBits = value.serverMaxWindowBits;
  if (typeof value.clientMaxWindowBits === 'number') out.clientMaxWindowBits = value.clientMaxWindowBits;
  const z = value.zlibDeflateOptions;
  if (z?.level !== undefined) out.level = z.level;
  if (z?.memLevel !== undefined) out.memLevel = z.memLevel;
  out.threshold = value.threshold ?? 1024;
  return out;
}
