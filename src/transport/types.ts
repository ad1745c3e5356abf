import type { WebSocketError } from '../core/errors.js';
import type { ConnectionLimits, KeepaliveOptions } from '../core/connection.js';
import type { PerMessageDeflateOptions } from './permessage-deflate.js';

/**
 * What send() did with a message:
 * - 'sent': handed to the socket, nothing waits behind it;
 * - 'queued': accepted, waits behind earlier data (within the high-water mark);
 * - 'backpressure': accepted, but bufferedAmount is above the high-water mark:
 *   pause the producer (requestWritable() tells when to go on);
 * - 'dropped': not accepted and never will be (connection closing or closed,
 *   or the outbound queue limit): nothing of it goes on the wire.
 */
export type SendStatus = 'sent' | 'queued' | 'backpressure' | 'dropped';

export interface Message {
  readonly binary: boolean;
  /** The payload; owned by the application from here on. */
  readonly data: Buffer;
  /** The payload decoded as UTF-8 (validated on receipt for text messages). */
  readonly text: string;
}

/** One piece of a message delivered as it arrives (handlers with onFragment). */
export interface Fragment {
  readonly binary: boolean;
  readonly data: Buffer;
  readonly first: boolean;
  readonly last: boolean;
}

export interface CloseInfo {
  /** The peer's close code, 1005 if its close frame had none, 1006 if there was no closing handshake, or the code we failed the connection with. */
  code: number;
  reason: string;
  /** True when the closing handshake completed. */
  wasClean: boolean;
  /** Why the connection failed, when it did. */
  error: WebSocketError | undefined;
  /** Messages accepted by send() that never reached the socket (invariant S4: reported, not lost quietly). */
  unsentMessages: number;
}

export interface WritableInfo {
  /** Serial number of the requestWritable() call this answers (1, 2, ...). */
  request: number;
}

/** Transport-level limits on top of the core's. */
export interface SessionLimits extends ConnectionLimits {
  /** Most bytes waiting to be sent; a send() that would go past it (while something is already waiting) is dropped. */
  maxQueuedBytes: number;
  /** bufferedAmount above which send() answers 'backpressure'. */
  highWaterMark: number;
}

/**
 * The transport's default limits. maxQueuedBytes is 40 MiB so that an
 * application can echo or forward messages of the default maxMessageBytes
 * (16 MiB) with two of them waiting at once: two 16 MiB messages with their
 * frame headers, plus the 1 MiB high-water mark, plus headroom (a send is
 * refused only when something is already queued). Guarded by
 * test/demo/large-echo.test.ts.
 */
export const DEFAULT_SESSION_LIMITS: Pick<SessionLimits, 'maxQueuedBytes' | 'highWaterMark'> = {
  maxQueuedBytes: 40 * 1024 * 1024,
  highWaterMark: 1024 * 1024,
};

export const DEFAULT_KEEPALIVE: KeepaliveOptions = { pingAfterMs: 30_000, hangupAfterMs: 60_000 };

/**
 * A typed protocol handler: one method per event. `S` is the session type
 * (carrying the per-session data type). All methods are optional.
 */
export interface Handler<S> {
  onOpen?(session: S): void;
  onMessage?(session: S, message: Message): void;
  /** When present, data is delivered piece by piece as it arrives instead of as whole messages. */
  onFragment?(session: S, fragment: Fragment): void;
  /** Fires once for each requestWritable() that registered a request, when the session can take more data. */
  onWritable?(session: S, info: WritableInfo): void;
  onPing?(session: S, data: Buffer): void;
  onPong?(session: S, data: Buffer): void;
  /** Fires exactly once, after the socket is closed and released. */
  onClose?(session: S, info: CloseInfo): void;
  /** Reports failures that do not close the connection (a dropped send) and those that do (before onClose). */
  onError?(session: S, error: WebSocketError): void;
  /** Per-protocol overrides of the server's keepalive and limits. */
  keepalive?: KeepaliveOptions | null;
  limits?: Partial<SessionLimits>;
  /** Per-protocol permessage-deflate: false declines it for this subprotocol (as libwebsockets' test protocols must). */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
}
