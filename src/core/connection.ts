import { CloseCode, isValidWireCloseCode, MAX_CLOSE_REASON_BYTES } from './close-codes.js';
import {
  InvalidArgumentError,
  InvalidStateError,
  InvalidUtf8Error,
  LimitExceededError,
  ProtocolError,
  TimeoutError,
  TransportError,
  WebSocketError,
} from './errors.js';
import { encodeFrame, encodeOwnedFrame } from './frame-serializer.js';
import { FrameParser, type FrameSink } from './frame-parser.js';
import { Opcode, MAX_CONTROL_PAYLOAD } from './opcodes.js';
import { isValidUtf8, Utf8Validator } from './utf8-validator.js';
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
  | { type: 'pong'; data: Buffer }
  | { type: 'closed'; code: number; reason: string; wasClean: boolean; error: WebSocketError | undefined; hangup: Hangup };

export interface ConnectionHost {
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
  /** The current time in ms, as the host measures it. */
  now: number;
  /** A negotiated per-message extension (permessage-deflate), or none. */
  codec?: MessageCodec | null;
}

/** An incoming message waiting for its turn (or for the codec) to be delivered. */
interface InboundEntry {
  binary: boolean;
  data: Buffer | null;
}

/** An outgoing frame waiting behind a message the codec is still transforming. */
interface OutboundEntry {
  chunks: Buffer[] | null;
  endsMessage: boolean;
  bytes: number;
  opcode: number;
}

const EMPTY = Buffer.alloc(0);
/** Bytes a pending codec job counts for in bufferedAmount beyond its payload. */
const CODEC_JOB_OVERHEAD = 1024;

/** Pieces of a message shorter than this are merged in runs of MERGE_RUN (Connection.pushPart). */
const SMALL_PART = 1024;
const MERGE_RUN = 64;

/**
 * The RFC 6455 connection after the opening handshake: bytes and time in,
 * events and bytes out (invariant S5). It never touches a socket or a timer;
 * the host calls receive(), tick() and the send methods, and acts on the
 * events and writes it is given.
 */
export class Connection implements FrameSink {
  readonly role: Role;
  private _state: ConnectionState = 'open';
  private readonly host: ConnectionHost;
  private readonly parser: FrameParser;
  private readonly limits: ConnectionLimits;
  private readonly closeTimeoutMs: number;
  private readonly keepalive: KeepaliveOptions | null;
  private readonly maskSource: (() => Uint8Array) | null;
  streamMessages: boolean;

  // Inbound message assembly.
  private msgBinary = false;
  /**
   * The message's first piece while it is its only one: most messages arrive
   * in one read, and they then need no list at all. msgParts takes over from
   * the second piece; it is kept (emptied) for the next message, and made on
   * first use, so an idle connection holds none.
   */
  private msgFirst: Buffer | null = null;
  private msgParts: Buffer[] | null = null;
  /** How many parts at the end of msgParts are smaller than SMALL_PART (see pushPart). */
  private smallParts = 0;
  private msgBytes = 0;
  private msgFrames = 0;
  /** The message's frames as counted against maxMessageBytes: each at least MIN_FRAME_CHARGE. */
  private msgCharge = 0;
  private msgFirstPending = false;
  /** Made for the first text message (a binary-only connection never needs one). */
  private utf8Validator: Utf8Validator | null = null;
  private frameFin = false;
  private frameLength = 0;
  private msgCompressed = false;
  private readonly codec: MessageCodec | null;
  // The two queues below exist only with a codec: without one nothing is ever held back, and an
  // idle server connection saves their 64 bytes.
  /** Messages not yet delivered because one before them is still with the codec (order is kept). */
  private readonly inQueue: InboundEntry[] | null;
  /** The 'closed' event, held until inQueue has been delivered. */
  private heldClose: Extract<ConnectionEvent, { type: 'closed' }> | null = null;
  /** Frames not yet written because a message before them is still with the codec. */
  private readonly outQueue: OutboundEntry[] | null;
  private outQueueBytes = 0;

  // Outbound.
  private outStreaming = false;
  private outStreamBinary = false;
  private outStreamCompressed = false;
  private closeSent = false;

  // Time.
  private lastRxAt: number;
  private lastPingAt: number;
  private closeDeadline = Infinity;
  /** The latest time the host has given us (constructor, receive, tick, close). */
  private lastNow: number;
  /**
   * The control-frame token bucket (maxControlFramesPerSecond), in thousandths
   * of a frame so that whole milliseconds refill it exactly, and the time it
   * was last refilled.
   */
  private controlBudget: number;
  private controlBudgetAt: number;

  constructor(host: ConnectionHost, options: ConnectionOptions) {
    this.host = host;
    this.role = options.role;
    this.limits = resolveLimits(options.limits);
    this.closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    this.keepalive = options.keepalive && (options.keepalive.pingAfterMs > 0 || options.keepalive.hangupAfterMs > 0) ? options.keepalive : null;
    this.streamMessages = options.streamMessages ?? false;
    if (this.role === 'client' && !options.maskSource) throw new InvalidArgumentError('ERR_NO_MASK_SOURCE', 'a client connection needs a maskSource');
    this.maskSource = this.role === 'client' ? options.maskSource! : null;
    this.lastRxAt = options.now;
    this.lastPingAt = options.now;
    this.lastNow = options.now;
    this.controlBudget = this.limits.maxControlFramesPerSecond * 1000;
    this.controlBudgetAt = options.now;
    this.codec = options.codec ?? null;
    this.inQueue = this.codec ? [] : null;
    this.outQueue = this.codec ? [] : null;
    this.parser = new FrameParser(this, {
      role: this.role,
      maxFrameBytes: this.limits.maxFrameBytes,
      // A frame over a frame limit that is not below the message limit is a message over it: name that
      // one (it is what the application set; maxFrameBytes defaults to it).
      frameLimitName: this.limits.maxFrameBytes >= this.limits.maxMessageBytes ? 'maxMessageBytes' : 'maxFrameBytes',
      allowedRsv: this.codec ? this.codec.rsv : 0,
    });
  }

  /** Received messages waiting for the codec or behind one (the host bounds this by pausing its reads). */
  get pendingInputMessages(): number {
    return this.inQueue?.length ?? 0;
  }

  /** Outgoing messages the codec held when the connection was aborted (never sent; S4 reports them). */
  droppedOutputMessages = 0;

  /** Outgoing messages still with the codec or waiting behind one. */
  get pendingOutputMessages(): number {
    let n = 0;
    for (const e of this.outQueue ?? []) if (e.endsMessage) n++;
    return n;
  }

  /** Bytes of outgoing messages still with the codec or waiting behind one (part of bufferedAmount). */
  get pendingOutputBytes(): number {
    return this.outQueueBytes;
  }

  get state(): ConnectionState {
    return this._state;
  }

  /** True while a streamed outgoing message is open (send() must wait until it ends). */
  get sendingStream(): boolean {
    return this.outStreaming;
  }

  // ---------------------------------------------------------------- input

  /**
   * Feeds bytes from the peer. Takes ownership of `data` (payloads are
   * unmasked in place). Stops at the first frame boundary after `maxFrames`
   * whole frames and returns the bytes consumed; the host feeds the rest,
   * untouched, later (a bound on the work one read does, so that one peer's
   * flood of tiny frames cannot hold the event loop: test/hostile/floods.test.ts).
   * Returns `data.length` when everything was taken or the connection is closed.
   */
  receive(data: Buffer, now: number, maxFrames = Infinity): number {
    if (this._state === 'closed') return data.length;
    this.lastRxAt = now;
    this.lastNow = now;
    try {
      return this.parser.push(data, maxFrames);
    } catch (err) {
      if (err instanceof WebSocketError) this.fail(err);
      else throw err;
      return data.length;
    }
  }

  /** Whole frames received so far (control frames included). */
  get framesReceived(): number {
    return this.parser.framesParsed;
  }

  /** The transport ended (EOF, reset, TLS error). */
  transportClosed(error?: Error): void {
    if (this._state === 'closed') return;
    const err = error instanceof WebSocketError ? error : new TransportError('ERR_CONNECTION_LOST', error ? `connection lost: ${error.message}` : 'connection closed without a close frame', error ? { cause: error } : undefined);
    this.finish(CloseCode.Abnormal, '', false, err, 'abort');
  }

  /** Runs timers: keepalive pings and hang-up, close handshake timeout. Returns the next time tick() is needed. */
  tick(now: number): number {
    this.lastNow = now;
    if (this._state === 'closing' && now >= this.closeDeadline) {
      this.finish(CloseCode.Abnormal, '', false, new TimeoutError('ERR_CLOSE_TIMEOUT', `no close frame from the peer within ${this.closeTimeoutMs} ms`), 'abort');
      return Infinity;
    }
    const ka = this.keepalive;
    if (this._state === 'open' && ka) {
      if (ka.hangupAfterMs > 0 && now - this.lastRxAt >= ka.hangupAfterMs) {
        this.finish(CloseCode.Abnormal, '', false, new TimeoutError('ERR_KEEPALIVE_TIMEOUT', `nothing received for ${now - this.lastRxAt} ms (hang-up after ${ka.hangupAfterMs} ms)`), 'abort');
        return Infinity;
      }
      if (ka.pingAfterMs > 0 && now - this.pingBase() >= ka.pingAfterMs) {
        this.lastPingAt = now;
        this.writeControl(Opcode.Ping, EMPTY, true);
      }
    }
    return this.nextDeadline();
  }

  /** The earliest time at which tick() has something to do (Infinity: nothing). */
  nextDeadline(): number {
    if (this._state === 'closing') return this.closeDeadline;
    if (this._state !== 'open' || !this.keepalive) return Infinity;
    const ka = this.keepalive;
    let t = Infinity;
    if (ka.hangupAfterMs > 0) t = this.lastRxAt + ka.hangupAfterMs;
    if (ka.pingAfterMs > 0) t = Math.min(t, this.pingBase() + ka.pingAfterMs);
    return t;
  }

  private pingBase(): number {
    return this.keepalive!.alwaysPing ? this.lastPingAt : Math.max(this.lastRxAt, this.lastPingAt);
  }

  // --------------------------------------------------------------- output

  private mask(): Uint8Array | null {
    return this.maskSource ? this.maskSource() : null;
  }

  private assertCanSendData(operation: string): void {
    if (this._state !== 'open') throw new InvalidStateError(operation, this._state);
  }

  /** A whole message may go out: open, and no streamed message in progress. */
  private assertCanSendMessage(): void {
    this.assertCanSendData('send');
    if (this.outStreaming) throw new InvalidStateError('send a message', 'streaming a message (end the stream first)');
  }

  /**
   * Sends one whole message. The payload is copied unless `owned` says the
   * caller hands it over and will not touch it again (invariant S2).
   */
  send(data: Uint8Array, binary: boolean, owned = false, compress = true): void {
    this.assertCanSendMessage();
    const opcode = binary ? Opcode.Binary : Opcode.Text;
    if (compress && this.codec && this.codec.compressesOutput && this.codec.shouldCompress(data, binary)) {
      this.sendThroughCodec(opcode, data, owned, true, true);
      return;
    }
    const opts = { mask: this.mask() };
    this.emitWrite(owned && Buffer.isBuffer(data) ? encodeOwnedFrame(opcode, data, opts) : encodeFrame(opcode, data, opts), true, opcode);
  }

  /** True when a codec compresses this connection's outgoing messages. */
  get compressesOutput(): boolean {
    return this.codec !== null && this.codec.compressesOutput;
  }

  /**
   * Sends one whole message already encoded as an unmasked frame by the
   * caller: a broadcast frame built once for many server connections. Only
   * a server may (client frames need a fresh mask each, RFC 6455 section
   * 5.3), and never into an open stream. The chunks are not modified.
   * `binary` says which kind of message the caller encoded.
   */
  sendEncoded(frame: Buffer[], binary = true): void {
    if (this.role !== 'server') throw new InvalidStateError('send a shared frame', 'a client connection (client frames are masked)');
    this.assertCanSendMessage();
    this.emitWrite(frame, true, binary ? Opcode.Binary : Opcode.Text);
  }

  /**
   * Queues one frame whose payload the codec transforms first. A message sent
   * in several frames is one compressed stream (RFC 7692 section 7.2.1): RSV1
   * on its first frame only, and only the end of the last frame loses the
   * 0x00 0x00 0xff 0xff tail.
   */
  private sendThroughCodec(opcode: number, data: Uint8Array, owned: boolean, first: boolean, last: boolean): void {
    const codec = this.codec!;
    // Copy now (S2): the codec works later, after the caller may have reused its buffer.
    const copy = owned && Buffer.isBuffer(data) ? data : Buffer.from(data);
    // A codec job costs more than its payload (zlib state, callbacks): count a fixed overhead so that
    // bufferedAmount shows backpressure before thousands of tiny jobs pile up.
    const entry: OutboundEntry = { chunks: null, endsMessage: last, bytes: copy.length + CODEC_JOB_OVERHEAD, opcode };
    const queue = this.outQueue!;
    queue.push(entry);
    this.outQueueBytes += entry.bytes;
    codec.compress(
      copy,
      (err, result) => {
        if (!queue.includes(entry)) return; // the connection was aborted meanwhile
        if (err || !result) {
          this.fail(err ?? new ProtocolError('ERR_COMPRESS', 'compression failed', CloseCode.InternalError));
          return;
        }
        entry.chunks = encodeOwnedFrame(opcode, result, { mask: this.mask(), fin: last, rsv: first ? codec.rsv : 0 });
        this.drainOutQueue();
      },
      last,
    );
  }

  /** Writes a data or close frame, behind anything the codec still holds. */
  private emitWrite(chunks: Buffer[], endsMessage: boolean, opcode: number): void {
    const queue = this.outQueue;
    if (queue === null || queue.length === 0) {
      this.host.write(chunks, false, endsMessage, opcode);
      return;
    }
    let bytes = 0;
    for (const c of chunks) bytes += c.length;
    queue.push({ chunks, endsMessage, bytes, opcode });
    this.outQueueBytes += bytes;
  }

  private drainOutQueue(): void {
    const queue = this.outQueue!;
    while (queue.length > 0 && queue[0].chunks) {
      const e = queue.shift()!;
      this.outQueueBytes -= e.bytes;
      this.host.write(e.chunks!, false, e.endsMessage, e.opcode);
    }
    if (queue.length === 0 && this._state === 'closed') this.codec?.close();
  }

  /**
   * Sends one fragment of a streamed message; `last` ends the message (RFC
   * 6455 section 5.4). `compress` (first fragment only) runs the whole
   * message through the negotiated codec.
   */
  sendFragment(data: Uint8Array, binary: boolean, last: boolean, compress = true): void {
    this.assertCanSendData('send a fragment');
    let opcode: number;
    const first = !this.outStreaming;
    if (first) {
      opcode = binary ? Opcode.Binary : Opcode.Text;
      this.outStreaming = !last;
      this.outStreamBinary = binary;
      this.outStreamCompressed = compress && this.codec !== null && this.codec.compressesOutput;
    } else {
      if (binary !== this.outStreamBinary) throw new InvalidArgumentError('ERR_STREAM_TYPE', 'a fragment must have the type of the message it continues');
      opcode = Opcode.Continuation;
      if (last) this.outStreaming = false;
    }
    if (this.outStreamCompressed) {
      this.sendThroughCodec(opcode, data, false, first, last);
      return;
    }
    this.emitWrite(encodeFrame(opcode, data, { fin: last, mask: this.mask() }), last, opcode);
  }

  ping(data: Uint8Array = EMPTY): void {
    this.assertCanSendData('ping');
    if (data.length > MAX_CONTROL_PAYLOAD) throw new InvalidArgumentError('ERR_CONTROL_TOO_LONG', `ping payload of ${data.length} bytes (max 125)`);
    this.writeControl(Opcode.Ping, data, true);
  }

  pong(data: Uint8Array = EMPTY): void {
    this.assertCanSendData('pong');
    if (data.length > MAX_CONTROL_PAYLOAD) throw new InvalidArgumentError('ERR_CONTROL_TOO_LONG', `pong payload of ${data.length} bytes (max 125)`);
    this.writeControl(Opcode.Pong, data, true);
  }

  /**
   * Starts the closing handshake (RFC 6455 section 7.1.2). The close frame goes
   * after everything already queued. Closing twice is a no-op. `now` starts
   * the close timeout (default: the latest time given to receive()/tick()).
   */
  close(code: number = CloseCode.Normal, reason = '', now?: number): void {
    if (this._state !== 'open') return;
    const payload = encodeClosePayload(code, reason);
    // The state changes before the close frame is handed to the host: a host whose transport delivers
    // synchronously (an in-memory pair) may feed us the peer's answer from inside that write, and the
    // answer must find us closing, not be overwritten afterwards (test/core/connection.test.ts,
    // "a close answered from inside the host's write"; test/transport/session-streams.test.ts).
    this._state = 'closing';
    // The close timeout counts from now; hosts should pass the time, else the latest time they gave us is used.
    if (now !== undefined) this.lastNow = now;
    this.closeDeadline = this.lastNow + this.closeTimeoutMs;
    this.sendClose(payload);
  }

  /**
   * The host reports that queued bytes are still reaching the peer while we
   * wait for its close frame: the close timeout restarts from `now`, so a
   * peer that reads slowly gets every queued message before the close frame
   * (invariant S4); a peer that stops reading still times out.
   */
  closeProgress(now: number): void {
    this.lastNow = now;
    if (this._state === 'closing') this.closeDeadline = now + this.closeTimeoutMs;
  }

  private sendClose(payload: Buffer): void {
    if (this.closeSent) return;
    this.closeSent = true;
    // Behind every queued message, including those still with the codec (S4).
    this.emitWrite(encodeFrame(Opcode.Close, payload, { mask: this.mask() }), false, Opcode.Close);
  }

  private writeControl(opcode: number, payload: Uint8Array, urgent: boolean): void {
    this.host.write(encodeFrame(opcode, payload, { mask: this.mask() }), urgent, false, opcode);
  }

  // ------------------------------------------------------------- failures

  /** Fails the connection (RFC 6455 section 7.1.7): close frame with the error's code, then hang up. */
  fail(error: WebSocketError): void {
    if (this._state === 'closed') return;
    const code = error.closeCode !== undefined && isValidWireCloseCode(error.closeCode) ? error.closeCode : CloseCode.ProtocolError;
    if (this._state === 'open') this.sendClose(encodeClosePayload(code, truncateUtf8(error.message, MAX_CLOSE_REASON_BYTES)));
    this.finish(code, error.message, false, error, 'graceful');
  }

  private finish(code: number, reason: string, wasClean: boolean, error: WebSocketError | undefined, hangup: Hangup): void {
    this._state = 'closed';
    this.clearParts();
    const ev = { type: 'closed', code, reason, wasClean, error, hangup } as const;
    if (wasClean && this.inQueue !== null && this.inQueue.length > 0) {
      // Messages received before the close frame are delivered first (they are still with the codec).
      this.heldClose = ev;
      return;
    }
    if (this.inQueue !== null) this.inQueue.length = 0;
    this.heldClose = null;
    if (hangup === 'abort' && this.outQueue !== null) {
      this.droppedOutputMessages += this.pendingOutputMessages;
      this.outQueue.length = 0;
      this.outQueueBytes = 0;
    }
    // A graceful end still flushes what the codec is compressing (S4); the codec is released after that.
    if (this.codec !== null && this.outQueue!.length === 0) this.codec.close();
    this.host.onEvent(ev);
  }

  // ---------------------------------------------------- FrameSink (parser)

  onDataFrameStart(opcode: number, fin: boolean, _rsv: number, length: number): void {
    if (this._state === 'closed') return;
    if (opcode !== Opcode.Continuation) {
      this.msgBinary = opcode === Opcode.Binary;
      this.msgBytes = 0;
      this.msgFrames = 0;
      this.msgCharge = 0;
      this.clearParts();
      this.smallParts = 0;
      this.msgFirstPending = true;
      if (!this.msgBinary) (this.utf8Validator ??= new Utf8Validator()).reset();
      this.msgCompressed = this.codec !== null && (_rsv & this.codec.rsv) !== 0;
    } else if (this.codec && (_rsv & this.codec.rsv) !== 0) {
      // RFC 7692 section 6.1: the compression bit is set on the first frame only.
      throw new ProtocolError('ERR_RSV1_ON_CONTINUATION', `${this.codec.name}: compression bit set on a continuation frame`);
    }
    this.msgFrames++;
    const max = this.limits.maxMessageBytes;
    if (this.msgFrames > this.limits.maxFragments) {
      throw new LimitExceededError('maxFragments', `message of more than ${this.limits.maxFragments} frames`, CloseCode.PolicyViolation);
    }
    // Refuse before the payload arrives: the header already tells the size.
    if (this.msgBytes + length > max) {
      throw new LimitExceededError('maxMessageBytes', `message of more than ${max} bytes`);
    }
    // Each frame counts as at least MIN_FRAME_CHARGE bytes (see there): a flood of tiny or empty
    // continuations is a policy violation (1008, RFC 6455 section 7.4.1), not a message too big for
    // us (1009). A one-frame message is bounded by its real size alone.
    const charge = this.msgCharge + Math.max(length, MIN_FRAME_CHARGE);
    if (this.msgFrames > 1 && charge > max) {
      throw new LimitExceededError(
        'maxMessageBytes',
        `message of ${this.msgFrames} frames: each frame counts as at least ${MIN_FRAME_CHARGE} bytes against maxMessageBytes (${max})`,
        CloseCode.PolicyViolation,
      );
    }
    this.msgCharge = charge;
    this.msgBytes += length;
    this.frameFin = fin;
    this.frameLength = length;
  }

  onDataPayload(data: Buffer, remaining: number): void {
    if (this._state === 'closed') return;
    // RFC 6455 section 8.1: fail as soon as text is certainly not UTF-8.
    if (this.msgCompressed) {
      // Compressed bytes are kept whole (bounded by maxMessageBytes) and inflated at the end, under the same limit.
      this.pushPart(data);
      return;
    }
    if (!this.msgBinary && !this.utf8Validator!.write(data)) throw new InvalidUtf8Error('invalid UTF-8 in a text message');
    const last = this.frameFin && remaining === 0;
    if (last && !this.msgBinary && !this.utf8Validator!.isComplete()) throw new InvalidUtf8Error('text message ends inside a UTF-8 sequence');
    if (this.streamMessages) {
      const first = this.msgFirstPending;
      this.msgFirstPending = false;
      this.host.onEvent({ type: 'fragment', binary: this.msgBinary, data, first, last });
    } else {
      this.pushPart(data);
    }
  }

  /**
   * Keeps a piece of the message being received. Every piece is a Buffer of
   * its own (a view of the read it came in) with bookkeeping that costs far
   * more than a byte, so a peer that made every read one byte long (a fast
   * trickle) would make a message held until complete cost many times its
   * size, and maxMessageBytes would be no memory bound (invariant S3;
   * test/hostile/tiny-reads.test.ts). Runs of MERGE_RUN small pieces are
   * merged into one, so each byte is copied a bounded number of times and a
   * message costs about its size; large pieces are never copied.
   */
  private pushPart(data: Buffer): void {
    if (this.msgFirst === null && (this.msgParts === null || this.msgParts.length === 0)) {
      this.msgFirst = data;
      this.smallParts = data.length < SMALL_PART ? 1 : 0;
      return;
    }
    const parts = (this.msgParts ??= []);
    if (this.msgFirst !== null) {
      parts.push(this.msgFirst);
      this.msgFirst = null;
    }
    parts.push(data);
    if (data.length >= SMALL_PART) {
      this.smallParts = 0;
      return;
    }
    if (++this.smallParts < MERGE_RUN) return;
    const run = parts.splice(parts.length - MERGE_RUN, MERGE_RUN);
    let size = 0;
    for (const p of run) size += p.length;
    // Not Buffer.concat: small results come from the shared 8 KiB pool, whose slabs stay alive as long as any slice does.
    const merged = Buffer.allocUnsafeSlow(size);
    let at = 0;
    for (const p of run) at += p.copy(merged, at);
    parts.push(merged);
    // A merged run still small is the start of the next run (it grows by at least MERGE_RUN - 1 bytes a time).
    this.smallParts = merged.length < SMALL_PART ? 1 : 0;
  }

  /** Forgets the pieces of the message being received (the list is kept for the next one). */
  private clearParts(): void {
    this.msgFirst = null;
    if (this.msgParts !== null) this.msgParts.length = 0;
  }

  onDataFrameEnd(fin: boolean): void {
    if (this._state === 'closed') return;
    if (!fin) return;
    if (this.msgCompressed) {
      this.decompressMessage();
      return;
    }
    if (!this.msgBinary && !this.utf8Validator!.isComplete()) throw new InvalidUtf8Error('text message ends inside a UTF-8 sequence');
    if (this.streamMessages) {
      // A final frame with an empty payload still has to end the stream.
      if (this.frameLength === 0) {
        const first = this.msgFirstPending;
        this.msgFirstPending = false;
        this.host.onEvent({ type: 'fragment', binary: this.msgBinary, data: EMPTY, first, last: true });
      }
      return;
    }
    const parts = this.msgParts;
    const data = this.msgFirst ?? (parts === null || parts.length === 0 ? EMPTY : parts.length === 1 ? parts[0] : Buffer.concat(parts, this.msgBytes));
    this.clearParts();
    if (this.inQueue !== null && this.inQueue.length > 0) {
      this.inQueue.push({ binary: this.msgBinary, data });
      return;
    }
    this.host.onEvent(new MessageEvent(this.msgBinary, data));
  }

  private decompressMessage(): void {
    // The codec keeps the list until it is done: it is handed over, not reused.
    const parts = this.msgFirst !== null ? [this.msgFirst] : (this.msgParts ?? []);
    this.msgFirst = null;
    this.msgParts = null;
    const entry: InboundEntry = { binary: this.msgBinary, data: null };
    this.inQueue!.push(entry);
    this.codec!.decompress(parts, this.limits.maxMessageBytes, (err, result) => {
      if (this._state === 'closed' && !this.heldClose) return;
      if (err || !result) {
        this.failAfterClose(err ?? new ProtocolError('ERR_DECOMPRESS', 'decompression failed', CloseCode.InvalidPayload));
        return;
      }
      // RFC 6455 section 8.1 applies to the restored text.
      if (!entry.binary && !isValidUtf8(result)) {
        this.failAfterClose(new InvalidUtf8Error('invalid UTF-8 in a compressed text message'));
        return;
      }
      entry.data = result;
      this.drainInQueue();
    });
  }

  private drainInQueue(): void {
    const queue = this.inQueue!;
    while (queue.length > 0 && queue[0].data) {
      const e = queue.shift()!;
      if (this.streamMessages) this.host.onEvent({ type: 'fragment', binary: e.binary, data: e.data!, first: true, last: true });
      else this.host.onEvent(new MessageEvent(e.binary, e.data!));
      if (this._state === 'closed' && !this.heldClose) return; // a handler ended the connection
    }
    if (queue.length === 0 && this.heldClose) {
      const ev = this.heldClose;
      this.heldClose = null;
      this.finish(ev.code, ev.reason, ev.wasClean, ev.error, ev.hangup);
    }
  }

  /** A codec failure that may arrive after the peer's close was already received. */
  private failAfterClose(err: WebSocketError): void {
    if (this.heldClose) {
      this.heldClose = null;
      this.inQueue!.length = 0;
      this.finish(CloseCode.Abnormal, err.message, false, err, 'graceful');
      return;
    }
    this.fail(err);
  }

  onControlFrame(opcode: number, payload: Buffer): void {
    if (this._state === 'closed') return;
    // A close frame is not charged: it ends the connection anyway, and a peer that closes right after a burst closes cleanly.
    if (opcode !== Opcode.Close && this.limits.maxControlFramesPerSecond > 0) this.takeControlToken();
    if (opcode === Opcode.Ping) {
      // RFC 6455 section 5.5.2: answer with a pong carrying the same data, unless we already sent close.
      if (this._state === 'open') this.writeControl(Opcode.Pong, payload, true);
      this.host.onEvent({ type: 'ping', data: payload });
    } else if (opcode === Opcode.Pong) {
      this.host.onEvent({ type: 'pong', data: payload });
    } else {
      this.onClose(payload);
    }
  }

  /**
   * Charges one received control frame to the token bucket, refilled with the
   * time receive() was given (invariant S5: no clock of our own). Every
   * control frame costs parsing, an event and, for a ping, a pong written
   * ahead of data (RFC 6455 section 5.5.2 asks for one "as soon as is
   * practical"); a peer may ping, but not without bound. An empty bucket
   * fails the connection with 1008 (section 7.4.1, policy violation) before
   * the frame is acted on (test/core/connection.test.ts, "maxControlFramesPerSecond";
   * test/hostile/ping-flood.test.ts).
   */
  private takeControlToken(): void {
    const rate = this.limits.maxControlFramesPerSecond;
    const now = this.lastNow;
    const capacity = rate * 1000;
    if (now > this.controlBudgetAt) {
      // ms x frames/s = thousandths of a frame.
      this.controlBudget = Math.min(capacity, this.controlBudget + (now - this.controlBudgetAt) * rate);
      this.controlBudgetAt = now;
    }
    if (this.controlBudget < 1000) {
      throw new LimitExceededError('maxControlFramesPerSecond', `more than ${rate} control frames (pings and pongs) per second (maxControlFramesPerSecond)`, CloseCode.PolicyViolation);
    }
    this.controlBudget -= 1000;
  }

  private onClose(payload: Buffer): void {
    const { code, reason } = decodeClosePayload(payload);
    // Section 5.5.1: answer a close we did not start, echoing its code.
    if (!this.closeSent) this.sendClose(payload.length === 0 ? EMPTY : encodeClosePayload(code, ''));
    this.finish(code, reason, true, undefined, 'graceful');
  }
}

/** Builds a close payload, refusing codes that may not be sent and reasons over 123 bytes. */
export function encodeClosePayload(code: number, reason: string): Buffer {
  if (!Number.isInteger(code) || !isValidWireCloseCode(code)) {
    throw new InvalidArgumentError('ERR_BAD_CLOSE_CODE', `close code ${code} may not be sent (RFC 6455 section 7.4)`);
  }
  const reasonBytes = Buffer.from(reason, 'utf8');
  if (reasonBytes.length > MAX_CLOSE_REASON_BYTES) {
    throw new InvalidArgumentError('ERR_CLOSE_REASON_TOO_LONG', `close reason of ${reasonBytes.length} bytes (max ${MAX_CLOSE_REASON_BYTES})`);
  }
  const out = Buffer.allocUnsafe(2 + reasonBytes.length);
  out.writeUInt16BE(code, 0);
  reasonBytes.copy(out, 2);
  return out;
}

/** Parses a received close payload (RFC 6455 section 5.5.1), throwing on a malformed one. */
export function decodeClosePayload(payload: Buffer): { code: number; reason: string } {
  if (payload.length === 0) return { code: CloseCode.NoStatus, reason: '' };
  if (payload.length === 1) throw new ProtocolError('ERR_BAD_CLOSE_PAYLOAD', 'close frame with a 1-byte payload');
  const code = payload.readUInt16BE(0);
  if (!isValidWireCloseCode(code)) throw new ProtocolError('ERR_BAD_CLOSE_CODE', `invalid close code ${code}`);
  const reasonBytes = payload.subarray(2);
  if (!isValidUtf8(reasonBytes)) throw new InvalidUtf8Error('close reason is not UTF-8');
  return { code, reason: reasonBytes.toString('utf8') };
}

/** Cuts a string to at most `max` UTF-8 bytes without splitting a character. */
export function truncateUtf8(s: string, max: number): string {
  const b = Buffer.from(s, 'utf8');
  if (b.length <= max) return s;
  let end = max;
  while (end > 0 && (b[end] & 0xc0) === 0x80) end--;
  return b.subarray(0, end).toString('utf8');
}
