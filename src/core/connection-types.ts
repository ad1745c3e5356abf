import type { WebSocketError } from './errors.js';
import type { MessageCodec } from './message-codec.js';

export type Role = 'server' | 'client';

/**
 * open: data flows both ways. closing: we sent a close frame and wait for the
 * peer's (we may still receive data). closed: the WebSocket is finished; the
 * transport only has to flush and release the socket.
 */
export type ConnectionState = 'open' | 'closing' | 'closed';

/**
 * How the transport must end the socket once the connection is closed:
 * 'graceful' flushes everything queued (the close frame last) and then ends
 * the TCP connection; 'abort' destroys it at once (the peer is gone or stuck).
 */
export type Hangup = 'graceful' | 'abort';

/**
 * A whole received message: the 'message' event, and at once the Message the
 * transport hands to the application (one object per message, not two).
 */
export class MessageEvent {
  readonly type = 'message' as const;
  readonly binary: boolean;
  readonly data: Buffer;
  private decoded: string | undefined = undefined;
  constructor(binary: boolean, data: Buffer) {
    this.binary = binary;
    this.data = data;
  }
  /** The payload decoded as UTF-8 (text messages were validated on receipt). */
  get text(): string {
    return (this.decoded ??= this.data.toString('utf8'));
  }
}

export type ConnectionEvent =
  | MessageEvent
  | { type: 'fragment'; binary: boolean; data: Buffer; first: boolean; last: boolean }
  | { type: 'ping'; data: Buffer }
  /** `rttMs`: when the pong answers our keepalive ping, the time since that ping was sent (host time, ms); else undefined. */
  | { type: 'pong'; data: Buffer; rttMs: number | undefined }
  | { type: 'closed'; code: number; reason: string; wasClean: boolean; error: WebSocketError | undefined; hangup: Hangup };

export interface ConnectionHost {
  /**
   * What happened, delivered after the parser has returned: the connection
   * queues the events of one input (a read, a tick, a codec completion) and
   * hands them over once that input is processed, so a handler never runs
   * inside the parser's loop and may call back into the connection (send,
   * close, terminate) freely. Events raised while earlier ones are being
   * delivered are delivered after them, in order
   * (test/core/connection.test.ts, "events are delivered after parsing").
   */
  onEvent(event: ConnectionEvent): void;
  /**
   * Bytes to put on the wire, one whole frame per call. `urgent` marks pings and
   * pongs, which may go ahead of data frames that are still queued but never
   * inside one (invariant S2). Close frames are never urgent: a graceful close
   * goes after every queued message (invariant S4). `endsMessage` marks the
   * frame that completes an application message (for counting unsent ones).
   * `opcode` says what the frame is (for a data message's later frames,
   * Continuation), so a host never decodes bytes to learn it.
   */
  write(chunks: Buffer[], urgent: boolean, endsMessage: boolean, opcode: number): void;
}

export interface KeepaliveOptions {
  /** Send a ping after this long without receiving anything. 0 disables pings. */
  pingAfterMs: number;
  /** Hang up after this long without receiving anything (no data, no pong). 0 disables. */
  hangupAfterMs: number;
  /**
   * Ping every pingAfterMs even while data arrives (libwebsockets' test server
   * behaves so). Default false: ping only when the line is quiet.
   */
  alwaysPing?: boolean;
}

export interface ConnectionLimits {
  /**
   * Largest message (sum of its frames' payloads); bigger fails with 1009.
   * It also bounds the number of frames of a fragmented message: each of its
   * frames counts as at least MIN_FRAME_CHARGE bytes against this limit, and
   * a message of two or more frames that count for more fails with 1008.
   */
  maxMessageBytes: number;
  /** Largest single frame payload; bigger fails with 1009. */
  maxFrameBytes: number;
  /**
   * An explicit bound on the frames of one message; more fails with 1008.
   * Default Infinity: no count limit, as MIN_FRAME_CHARGE already bounds the
   * count (maxMessageBytes / MIN_FRAME_CHARGE frames).
   */
  maxFragments: number;
  /**
   * Pings and pongs received per second, as a token
   * bucket: up to this many at once, refilled at this many per second. A
   * ping or pong that finds the bucket empty fails the connection with 1008
   * (a close frame is never refused).
   * 0 disables the limit.
   */
  maxControlFramesPerSecond: number;
}

/**
 * The least a data frame counts for against maxMessageBytes, whatever its
 * payload: a message of N frames "weighs" the sum over its frames of
 * max(payload length, MIN_FRAME_CHARGE). Every frame costs the receiver work
 * and bookkeeping even when it carries nothing, so a flood of empty or tiny
 * continuation frames is bounded by the same limit as the message size
 * (invariant S3), while a message fragmented into frames of 64 bytes or more
 * is limited only by its size (test/core/connection.test.ts, "each frame
 * counts as at least MIN_FRAME_CHARGE bytes"; test/hostile/fragments.test.ts).
 * A message of a single frame is bounded by its real size alone.
 */
export const MIN_FRAME_CHARGE = 64;

export const DEFAULT_LIMITS: ConnectionLimits = {
  maxMessageBytes: 16 * 1024 * 1024,
  maxFrameBytes: 16 * 1024 * 1024,
  maxFragments: Infinity,
  maxControlFramesPerSecond: 1000,
};

export const DEFAULT_CLOSE_TIMEOUT_MS = 5000;

/**
 * The limits in force for `limits` (maxFrameBytes follows maxMessageBytes
 * unless set). Limits that are already complete are returned as they are, so
 * many connections share one object (it is only read).
 */
export function resolveLimits(limits: Partial<ConnectionLimits> | undefined): ConnectionLimits {
  if (
    limits &&
    limits.maxMessageBytes !== undefined &&
    limits.maxFrameBytes !== undefined &&
    limits.maxFragments !== undefined &&
    limits.maxControlFramesPerSecond !== undefined
  ) {
    return limits as ConnectionLimits;
  }
  const r = { ...DEFAULT_LIMITS, ...limits };
  if (limits?.maxMessageBytes !== undefined && limits.maxFrameBytes === undefined) r.maxFrameBytes = r.maxMessageBytes;
  return r;
}

export interface ConnectionOptions {
  role: Role;
  limits?: Partial<ConnectionLimits>;
  /** How long to wait for the peer's close frame after sending ours. */
  closeTimeoutMs?: number;
  keepalive?: KeepaliveOptions | null;
  /** Deliver data as 'fragment' events as it arrives instead of whole 'message' events. */
  streamMessages?: boolean;
  /** Client only: returns 4 fresh random bytes per frame (S5: the core has no randomness of its own). */
  maskSource?: () => Uint8Array;
  /**
   * Allocates the buffer an outgoing frame is built in when send() copies a
   * payload (invariant S2). Default Buffer.allocUnsafe. A host that knows
   * when its stream has written a buffer may lend reused ones (the
   * transport's FramePool); the buffer must not be shared with anything else.
   */
  allocFrame?: (size: number) => Buffer;
  /** The current time in ms, as the host measures it. */
  now: number;
  /** A negotiated per-message extension (permessage-deflate), or none. */
  codec?: MessageCodec | null;
  /**
   * Answer each ping with a pong (RFC 6455 section 5.5.2). Default true. With
   * false the application answers them itself (the 'ping' event still comes).
   */
  autoPong?: boolean;
  /**
   * @internal How close frames read, for sockeye/ws (ws writes them so): with `'ws'` the reply to
   * the peer's close frame repeats its reason as well as its code, and the close frame of a failed
   * connection carries the code only. Default `'sockeye'`: the reply repeats the code, and a
   * failure's close frame says what the fault was.
   */
  closeFrames?: 'sockeye' | 'ws';
}

export type ClosedEvent = Extract<ConnectionEvent, { type: 'closed' }>;
