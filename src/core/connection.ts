import { CloseCode, isValidWireCloseCode, MAX_CLOSE_REASON_BYTES } from './close-codes.js';
import { encodeClosePayload, decodeClosePayload, truncateUtf8 } from './close-payload.js';
import { CodecQueues, type CodecQueuesHost } from './codec-queues.js';
import {
  DEFAULT_CLOSE_TIMEOUT_MS,
  MessageEvent,
  resolveLimits,
  type ClosedEvent,
  type ConnectionHost,
  type ConnectionLimits,
  type ConnectionOptions,
  type ConnectionState,
  type Hangup,
  type Role,
} from './connection-types.js';
import { InvalidArgumentError, InvalidStateError, TimeoutError, TransportError, WebSocketError } from './errors.js';
import { FrameSender } from './frame-sender.js';
import { EventQueue } from './event-queue.js';
import { FrameParser } from './frame-parser.js';
import { Liveness } from './liveness.js';
import { MessageAssembler, type AssemblerOutput } from './message-assembler.js';
import { Opcode } from './opcodes.js';

export * from './connection-types.js';
export { encodeClosePayload, decodeClosePayload, truncateUtf8 } from './close-payload.js';

const EMPTY = Buffer.alloc(0);

/**
 * The RFC 6455 connection after the opening handshake: bytes and time in,
 * events and bytes out (invariant S5). It never touches a socket or a timer;
 * the host calls receive(), tick() and the send methods, writes what it is
 * given and handles the events. Events are queued while an input is processed
 * and delivered once it is (ConnectionHost.onEvent), so a handler never finds
 * the parser half-way through a read; writes are not held back (a pong leaves
 * while its read is still parsed, RFC 6455 section 5.5.2).
 *
 * The parts: FrameParser (bytes to frames), MessageAssembler (frames to
 * messages, under the limits), FrameSender (messages to frames), Liveness
 * (keepalive, close timeout, control-frame budget), EventQueue (events out
 * after the input) and, with a codec, CodecQueues (order across the codec).
 */
export class Connection implements AssemblerOutput, CodecQueuesHost {
  readonly role: Role;
  private _state: ConnectionState = 'open';
  /**
   * The receiving side, made when bytes arrive and let go once a read ends
   * between messages (no frame, header or fragmented message under way):
   * there they hold nothing but settings, so an idle connection does not
   * carry them (test/core/connection.test.ts, "the receiving side"). Their
   * counts and settings live here.
   */
  private parser: FrameParser | null = null;
  private assembler: MessageAssembler | null = null;
  /** Frames parsed by parsers already let go (framesReceived). */
  private framesBefore = 0;
  private streamMessagesOn: boolean;
  private readonly limits: ConnectionLimits;
  private readonly liveness: Liveness;
  /** Only with a codec: without one nothing is ever held back. */
  private readonly codecs: CodecQueues | null;
  /** A clean 'closed' event held until the messages before it, still with the codec, are delivered. */
  private heldClose: ClosedEvent | null = null;
  private readonly sender: FrameSender;
  private readonly host: ConnectionHost;
  /** Events of the input being processed, delivered once it is (made on the first event: an idle connection has none). */
  private eventQueue: EventQueue | null = null;
  private parsing = false;
  /** Pings are answered by us (the default) or by the application (ConnectionOptions.autoPong). */
  private readonly autoPong: boolean;
  /** ConnectionOptions.closeFrames is 'ws'. */
  private readonly wsCloseFrames: boolean;
  /** The peer's close frame, parsed and acted on after the events before it (receive()). */
  private peerClose: { payload: Buffer; code: number; reason: string } | null = null;

  constructor(host: ConnectionHost, options: ConnectionOptions) {
    this.host = host;
    this.role = options.role;
    this.limits = resolveLimits(options.limits);
    this.autoPong = options.autoPong ?? true;
    this.wsCloseFrames = options.closeFrames === 'ws';
    if (this.role === 'client' && !options.maskSource) throw new InvalidArgumentError('ERR_NO_MASK_SOURCE', 'a client connection needs a maskSource');
    this.liveness = new Liveness(options.keepalive, options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS, this.limits.maxControlFramesPerSecond, options.now);
    const codec = options.codec ?? null;
    const maskSource = this.role === 'client' ? options.maskSource! : null;
    this.codecs = codec ? new CodecQueues(codec, this, host, maskSource) : null;
    this.sender = new FrameSender(host, this.codecs, maskSource, options.allocFrame ?? null);
    this.streamMessagesOn = options.streamMessages ?? false;
  }

  /** The parser (and its sink, the assembler) for the bytes arriving now. */
  private receiver(): FrameParser {
    if (this.parser !== null) return this.parser;
    const limits = this.limits;
    const codec = this.codecs !== null ? this.codecs.codec : null;
    const assembler = (this.assembler = new MessageAssembler(this, limits, codec, this.streamMessagesOn));
    return (this.parser = new FrameParser(assembler, {
      role: this.role,
      maxFrameBytes: limits.maxFrameBytes,
      // A frame over a frame limit that is not below the message limit is a message over it: name that
      // one (it is what the application set; maxFrameBytes defaults to it).
      frameLimitName: limits.maxFrameBytes >= limits.maxMessageBytes ? 'maxMessageBytes' : 'maxFrameBytes',
      allowedRsv: codec !== null ? codec.rsv : 0,
    }));
  }

  get state(): ConnectionState {
    return this._state;
  }
  private events(): EventQueue {
    return (this.eventQueue ??= new EventQueue(this.host));
  }
  /** Delivers the queued events; the queue is let go once empty (an idle connection holds none). */
  private deliver(): void {
    const q = this.eventQueue;
    if (q === null || q.delivering) return;
    q.deliver();
    if (q.empty) this.eventQueue = null;
  }
  /** Deliver data as 'fragment' events as it arrives instead of whole 'message' events. */
  get streamMessages(): boolean {
    return this.streamMessagesOn;
  }
  set streamMessages(value: boolean) {
    this.streamMessagesOn = value;
    if (this.assembler !== null) this.assembler.streamMessages = value;
  }
  /** Received messages waiting for the codec or behind one (the host bounds this by pausing its reads). */
  get pendingInputMessages(): number {
    return this.codecs?.pendingInputMessages ?? 0;
  }
  /** Outgoing messages the codec held when the connection was aborted (never sent; S4 reports them). */
  get droppedOutputMessages(): number {
    return this.codecs?.droppedOutputMessages ?? 0;
  }
  /** Outgoing messages still with the codec or waiting behind one. */
  get pendingOutputMessages(): number {
    return this.codecs?.pendingOutputMessages ?? 0;
  }
  /** Bytes of outgoing messages still with the codec or waiting behind one (part of bufferedAmount). */
  get pendingOutputBytes(): number {
    return this.codecs?.pendingOutputBytes ?? 0;
  }

  /** @internal The part of pendingOutputBytes that is the codec's fixed charge per job, not payload. */
  get pendingOutputOverhead(): number {
    return this.codecs?.pendingOutputOverhead ?? 0;
  }
  /** True while a streamed outgoing message is open (send() must wait until it ends). */
  get sendingStream(): boolean {
    return this.sender.sendingStream;
  }
  /** True when a codec compresses this connection's outgoing messages. */
  get compressesOutput(): boolean {
    return this.sender.compressesOutput;
  }
  /** How long the peer has to answer our close frame. */
  get closeTimeoutMs(): number {
    return this.liveness.closeWaitMs;
  }
  /** Whole frames received so far (control frames included). */
  get framesReceived(): number {
    return this.framesBefore + (this.parser !== null ? this.parser.framesParsed : 0);
  }


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
    this.liveness.received(now);
    const wasParsing = this.parsing;
    this.parsing = true;
    let used = data.length;
    let failure: WebSocketError | null = null;
    try {
      const parser = this.receiver();
      used = parser.push(data, maxFrames);
      // Between messages the receiving side is let go (a stopped parser never is: after a close frame or
      // a bad one nothing more is read); a read nested in this one (a host that feeds us from inside its
      // write) leaves that to the outer one, which is still using it.
      if (!wasParsing && parser.betweenMessages) {
        this.framesBefore += parser.framesParsed;
        this.parser = null;
        this.assembler = null;
      }
    } catch (err) {
      if (!(err instanceof WebSocketError)) throw err;
      failure = err;
    } finally {
      this.parsing = wasParsing;
    }
    // Parsing stops at a close frame or a bad frame. What the frames before it brought is delivered
    // while the connection is still open, so a handler may still answer those messages ahead of our
    // close frame, as it could had they come in an earlier read (test/hostile/frames.test.ts, "an
    // unmasked frame after a good one"; test/core/connection.test.ts, "a message then a close").
    this.deliver();
    if (failure !== null) this.failNow(failure);
    else if (this.peerClose !== null && this.pendingInputMessages === 0) this.closeReceived(this.peerClose);
    // Messages before the close frame still with the codec: the close is acted on once they are
    // delivered (afterCodec()), so replies to them still go out ahead of our close frame, as they do
    // without compression (test/core/connection-codec.test.ts, "a close behind compressed messages").
    this.deliver();
    return used;
  }

  /**
   * The transport ended (EOF, reset, TLS error). `undelivered` says what becomes of what was
   * received and not yet delivered: 'inflating' (the default) delivers the messages still with the
   * codec first, but not the rest of a read whose events are being delivered (the host ended it from
   * a handler); 'drop' delivers nothing more (the application's terminate()); 'all' delivers both
   * (ws's terminate(), for sockeye/ws).
   */
  transportClosed(error?: Error, undelivered: 'inflating' | 'drop' | 'all' = 'inflating'): void {
    if (this._state === 'closed') return;
    if (this.peerClose !== null && error === undefined) {
      // The peer's close frame came, held behind messages still with the codec, and then its EOF: the
      // closing handshake happened (the messages are still delivered, then a clean close), as when the
      // close is acted on at once (test/interop/libwebsockets-wire.test.ts).
      this.closeReceived(this.peerClose);
      this.deliver();
      return;
    }
    const err = error instanceof WebSocketError ? error : new TransportError('ERR_CONNECTION_LOST', error ? `connection lost: ${error.message}` : 'connection closed without a close frame', error ? { cause: error } : undefined);
    this.finish(CloseCode.Abnormal, '', false, err, 'abort', undelivered);
    this.deliver();
  }

  /** Runs timers: keepalive pings and hang-up, close handshake timeout. Returns the next time tick() is needed. */
  tick(now: number): number {
    const live = this.liveness;
    switch (live.due(now, this._state)) {
      case 'close-timeout':
        this.finish(CloseCode.Abnormal, '', false, new TimeoutError('ERR_CLOSE_TIMEOUT', `no close frame from the peer within ${live.closeWaitMs} ms`), 'abort');
        break;
      case 'hangup':
        this.finish(CloseCode.Abnormal, '', false, new TimeoutError('ERR_KEEPALIVE_TIMEOUT', `nothing received for ${live.silentFor(now)} ms (hang-up after ${live.hangupAfterMs} ms)`), 'abort');
        break;
      case 'ping':
        this.sender.control(Opcode.Ping);
        break;
      case 'none':
        break;
    }
    this.deliver();
    return this.nextDeadline();
  }

  /** The earliest time at which tick() has something to do (Infinity: nothing). */
  nextDeadline(): number {
    return this.liveness.nextDeadline(this._state);
  }


  private assertCanSendData(operation: string): void {
    if (this._state !== 'open') throw new InvalidStateError(operation, this._state);
  }

  /**
   * Sends one whole message. The payload is copied unless `owned` says the
   * caller hands it over and will not touch it again (invariant S2).
   */
  send(data: Uint8Array, binary: boolean, owned = false, compress = true): void {
    this.assertCanSendData('send');
    this.sender.send(data, binary, owned, compress);
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
    this.assertCanSendData('send');
    this.sender.sendEncoded(frame, binary);
  }

  /**
   * Sends one fragment of a streamed message; `last` ends the message (RFC
   * 6455 section 5.4). `compress` (first fragment only) runs the whole
   * message through the negotiated codec.
   */
  sendFragment(data: Uint8Array, binary: boolean, last: boolean, compress = true): void {
    this.assertCanSendData('send a fragment');
    this.sender.sendFragment(data, binary, last, compress);
  }

  ping(data: Uint8Array = EMPTY): void {
    this.assertCanSendData('ping');
    this.sender.control(Opcode.Ping, data);
  }

  pong(data: Uint8Array = EMPTY): void {
    this.assertCanSendData('pong');
    this.sender.control(Opcode.Pong, data);
  }

  /**
   * Starts the closing handshake (RFC 6455 section 7.1.2). The close frame goes
   * after everything already queued. Closing twice is a no-op. `now` starts
   * the close timeout (default: the latest time given to receive()/tick()).
   */
  /** Starts the closing handshake; `code` null sends a close frame without a status code (RFC 6455 section 5.5.1: the body is optional). */
  close(code: number | null = CloseCode.Normal, reason = '', now?: number): void {
    if (this._state !== 'open') return;
    const payload = code === null ? EMPTY : encodeClosePayload(code, reason);
    // The state changes before the close frame is handed to the host: a host whose transport delivers
    // synchronously (an in-memory pair) may feed us the peer's answer from inside that write, and the
    // answer must find us closing, not be overwritten afterwards (test/core/connection.test.ts,
    // "a close answered from inside the host's write"; test/transport/session-streams.test.ts).
    this._state = 'closing';
    this.liveness.startCloseTimer(now);
    this.sender.close(payload);
    this.deliver();
  }

  /**
   * The host reports that queued bytes are still reaching the peer while we
   * wait for its close frame: the close timeout restarts from `now`, so a
   * peer that reads slowly gets every queued message before the close frame
   * (invariant S4); a peer that stops reading still times out.
   */
  closeProgress(now: number): void {
    if (this._state === 'closing') this.liveness.closeProgress(now);
    else this.liveness.now = now;
  }


  /** Fails the connection (RFC 6455 section 7.1.7): close frame with the error's code, then hang up. */
  fail(error: WebSocketError): void {
    this.failNow(error);
    this.deliver();
  }

  private failNow(error: WebSocketError): void {
    if (this._state === 'closed') return;
    const code = error.closeCode !== undefined && isValidWireCloseCode(error.closeCode) ? error.closeCode : CloseCode.ProtocolError;
    if (this._state === 'open') this.sender.close(encodeClosePayload(code, this.wsCloseFrames ? '' : truncateUtf8(error.message, MAX_CLOSE_REASON_BYTES)));
    this.finish(code, error.message, false, error, 'graceful');
  }

  private finish(code: number, reason: string, wasClean: boolean, error: WebSocketError | undefined, hangup: Hangup, undelivered: 'inflating' | 'drop' | 'all' = 'inflating'): void {
    this._state = 'closed';
    this.parser?.stop();
    this.assembler?.clear();
    const ev: ClosedEvent = { type: 'closed', code, reason, wasClean, error, hangup };
    const codecs = this.codecs;
    if (codecs !== null) {
      // Nothing more will be written after an abort: what the codec still compresses is dropped and counted (S4).
      if (hangup === 'abort') codecs.dropOutput();
      if (undelivered !== 'drop' && codecs.pendingInputMessages > 0) {
        // Messages received before the end (a close frame, a bad frame, the stream's end) are still with
        // the codec: they are delivered first, as they would have been without compression, and the
        // closed event follows them (S4; test/core/connection-codec.test.ts, "messages still inflating
        // when the connection fails or the stream ends are delivered before closed").
        this.heldClose = ev;
        return;
      }
      this.heldClose = null;
      codecs.dropInput();
      // A graceful end still flushes what the codec is compressing (S4); the codec is released after that.
      codecs.release();
    }
    // Ended by the application while events of the last input were being delivered (terminate() in
    // onMessage): what that input brought after the current event is no longer delivered, as a read
    // is not parsed further once the connection is closed (test/core/connection.test.ts,
    // "terminate() from a handler drops the rest of the read"). Unless the host asked to keep what
    // was received (sockeye/ws's terminate(), as ws's: test/compat/ws/websocket.test.ts,
    // "terminate() from a 'message' listener").
    if (undelivered !== 'all' && this.eventQueue !== null && this.eventQueue.delivering && !this.parsing) this.eventQueue.dropUndelivered();
    this.events().push(ev);
  }

  /** @internal MessageAssembler output: a whole received message. */
  onAssembled(binary: boolean, data: Buffer): void {
    if (this.codecs !== null && this.codecs.queueMessage(binary, data)) return;
    this.events().push(new MessageEvent(binary, data));
  }

  /** @internal MessageAssembler output: a piece of a message (streamMessages). */
  onAssembledPiece(binary: boolean, data: Buffer, first: boolean, last: boolean): void {
    this.events().push({ type: 'fragment', binary, data, first, last });
  }

  /** @internal MessageAssembler output: a compressed message for the codec. */
  onCompressed(binary: boolean, parts: Buffer[]): void {
    this.codecs!.decompress(binary, parts, this.limits.maxMessageBytes);
  }

  /** @internal MessageAssembler output: a control frame. */
  onControl(opcode: number, payload: Buffer): void {
    // A close frame is not charged: it ends the connection anyway, and a peer that closes right after a burst closes cleanly.
    if (opcode !== Opcode.Close) this.liveness.takeControlToken();
    if (opcode === Opcode.Ping) {
      // RFC 6455 section 5.5.2: answer with a pong carrying the same data, unless we already sent close.
      if (this._state === 'open' && this.autoPong) this.sender.control(Opcode.Pong, payload);
      this.events().push({ type: 'ping', data: payload });
    } else if (opcode === Opcode.Pong) {
      this.events().push({ type: 'pong', data: payload, rttMs: this.liveness.pongReceived(payload.length) });
    } else {
      // Section 5.5.1: nothing after a close frame is read; it is acted on once the events before it are delivered (receive()).
      this.peerClose = { payload, ...decodeClosePayload(payload) };
      this.parser?.stop();
    }
  }

  private closeReceived(close: { payload: Buffer; code: number; reason: string }): void {
    this.peerClose = null;
    if (this._state === 'closed') return; // the application terminated meanwhile
    // Section 5.5.1: answer a close we did not start, echoing its code (and its reason, as ws does, with closeFrames 'ws').
    if (!this.sender.closeSent) this.sender.close(close.payload.length === 0 ? EMPTY : encodeClosePayload(close.code, this.wsCloseFrames ? close.reason : ''));
    this.finish(close.code, close.reason, true, undefined, 'graceful');
  }

  /** @internal CodecQueues: a received message restored (or queued behind one that was). */
  onInflated(binary: boolean, data: Buffer): void {
    if (this.streamMessagesOn) this.events().push({ type: 'fragment', binary, data, first: true, last: true });
    else this.events().push(new MessageEvent(binary, data));
  }

  /** @internal CodecQueues: every message received before a held close has been delivered. */
  onInputDrained(): void {
    const ev = this.heldClose;
    if (ev === null) return;
    this.heldClose = null;
    this.finish(ev.code, ev.reason, ev.wasClean, ev.error, ev.hangup);
  }

  /** @internal CodecQueues: the codec failed; on input it may be after the peer's close arrived. */
  onCodecError(err: WebSocketError, input: boolean): void {
    const codecs = this.codecs!;
    if (input && this.heldClose !== null) {
      // A stream already gone stays an abort; otherwise the stream is ended gracefully.
      const hangup = this.heldClose.hangup;
      this.heldClose = null;
      codecs.dropInput();
      this.finish(CloseCode.Abnormal, err.message, false, err, hangup);
      return;
    }
    // A message that cannot be restored fails the connection where it stands: the messages after it
    // are not delivered (those before it were, the codec restores them in order).
    if (input) codecs.dropInput();
    if (!input) {
      // The failed frame will never be written, so nothing queued behind it can be either: it is all
      // dropped and counted (S4), and our close frame goes out at once (test/core/connection-codec.test.ts,
      // "a compression failure").
      codecs.dropOutput();
      if (this._state === 'closed') {
        codecs.release();
        return;
      }
    }
    this.failNow(err);
  }

  /** @internal CodecQueues: a codec job completed, an input like a read. */
  afterCodec(): void {
    this.deliver();
    if (this.peerClose !== null && this.pendingInputMessages === 0 && !this.parsing) {
      this.closeReceived(this.peerClose);
      this.deliver();
    }
  }
}
