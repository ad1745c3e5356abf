import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Connection, type ConnectionEvent, type ConnectionHost, type KeepaliveOptions, type Role } from '../core/connection.js';
import type { MessageCodec } from '../core/message-codec.js';
import { Opcode } from '../core/opcodes.js';
import { InvalidArgumentError, InvalidStateError, LimitExceededError, TransportError, WebSocketError } from '../core/errors.js';
import type { Context } from './context.js';
import type { TimerEntry } from './timer-wheel.js';
import { Outbound } from './outbound.js';
import { PauseReason, ReadGate } from './read-gate.js';
import { Inbox } from './inbox.js';
import {
  DEFAULT_SESSION_LIMITS,
  type CloseInfo,
  type Fragment,
  type Handler,
  type Message,
  type SendStatus,
  type SessionLimits,
  type WritableInfo,
} from './types.js';

export type SessionState = 'open' | 'closing' | 'closed';

export interface SessionInit<S> {
  role: Role;
  socket: Duplex;
  context: Context;
  handler: Handler<S>;
  protocol: string | undefined;
  extensions: readonly string[];
  limits: Partial<SessionLimits>;
  keepalive: KeepaliveOptions | null;
  closeTimeoutMs: number;
  /** Bytes that arrived after the handshake head: the first frames. */
  head: Buffer;
  /** Called when a handler throws: the session is failed with 1011 and the error goes here. */
  onHandlerError: (error: unknown, session: Session<never>) => void;
  /** Called once, after onClose. */
  onFinished?: (session: Session<never>) => void;
  /** Buffer whole messages for messages() (client sessions without onMessage). */
  inbox?: boolean;
  /** The negotiated per-message codec (permessage-deflate), if any. */
  codec?: MessageCodec | null;
}

/**
 * Frames one read may parse before the session yields the event loop to other connections; the
 * rest of the read waits with reading paused. A read that parsed YIELD_AFTER_FRAMES or more also
 * yields (libuv reads a busy stream up to 32 times in one turn), so a flood of tiny frames on one
 * connection never delays the others for long (test/hostile/floods.test.ts). Ordinary traffic,
 * a few frames per read, never pays for this.
 */
const FRAMES_PER_TURN = 1024;
const YIELD_AFTER_FRAMES = 256;

/** Received messages waiting for the codec (inflate) at which reading pauses, and at which it resumes. */
const CODEC_BACKLOG_PAUSE = 4096;
const CODEC_BACKLOG_RESUME = 1024;


/** The bytes of a payload, as a Buffer view (no copy: the frame encoder copies, S2). */
function toBytes(data: string | Uint8Array | ArrayBuffer | ArrayBufferView): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof Uint8Array) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  throw new InvalidArgumentError('ERR_BAD_PAYLOAD', 'send() takes a string, Buffer, TypedArray, DataView or ArrayBuffer');
}

/** The session a socket belongs to, for the shared socket listeners below. */
const SESSION = Symbol('sockeye.session');
type SessionSocket = Duplex & { [SESSION]: Session<unknown> };

function onSocketData(this: Duplex, chunk: Buffer): void {
  (this as SessionSocket)[SESSION].onData(chunk);
}
function onSocketDrain(this: Duplex): void {
  (this as SessionSocket)[SESSION].onDrain();
}
function onSocketEnd(this: Duplex): void {
  (this as SessionSocket)[SESSION].onEnd();
}
function onSocketError(this: Duplex, err: Error): void {
  (this as SessionSocket)[SESSION].onSocketError(err);
}
function onSocketClose(this: Duplex): void {
  (this as SessionSocket)[SESSION].onSocketClose();
}

/**
 * A WebSocket session over a byte stream (TCP or TLS socket): the core
 * Connection bound to the socket, a write queue with backpressure, writable
 * callbacks, and timers on the context's wheel.
 *
 * Invariant S1 by construction: nothing on the write side ever pauses the
 * socket's reading; 'data' is always consumed and parsed, whatever the
 * write queue holds. Invariant S2: send() copies (or takes a string the
 * library encoded itself), control frames are whole frames queued between
 * data frames, and onWritable fires only for requestWritable().
 */
export class Session<T = Record<string, unknown>> implements ConnectionHost, TimerEntry {
  /** @internal links of the context's timer wheel (TimerEntry). */
  wheelSlot = -1;
  /** @internal */
  wheelPrev: TimerEntry | null = null;
  /** @internal */
  wheelNext: TimerEntry | null = null;

  /**
   * Made on first use: a session whose handler never touches `data` (an
   * idle server connection, most clients) saves the empty object's 56 bytes.
   */
  private dataObject: T | null = null;

  /** Per-session application data, typed by the handler's author (an empty object until assigned). */
  get data(): T {
    return (this.dataObject ??= {} as T);
  }

  set data(value: T) {
    this.dataObject = value;
  }

  readonly protocol: string | undefined;
  readonly extensions: readonly string[];
  readonly role: Role;

  protected readonly socket: Duplex;
  /** A server on a plain TCP socket: it closes the socket itself once the closing handshake is complete (see endSocket). */
  private readonly closesTcpFirst: boolean;
  protected readonly context: Context;
  protected handler: Handler<this>;
  private readonly conn: Connection;
  private readonly out: Outbound;
  private readonly gate: ReadGate;
  private readonly maxQueuedBytes: number;
  private readonly highWaterMark: number;
  private readonly closeTimeoutMs: number;
  private readonly onHandlerError: SessionInit<T>['onHandlerError'];
  private readonly onFinished: SessionInit<T>['onFinished'];

  private socketGone = false;
  private ending = false;
  private destroyAt = Infinity;

  private writableRequested = false;
  private writableRequests = 0;
  private writableScheduled = false;
  private drainWaiters: Array<() => void> | null = null;

  /** Messages sent while a streamed message is open: they go out after it ends (copied, S2). */
  private deferred: Array<{ bytes: Buffer; binary: boolean; compress: boolean }> | null = null;
  private deferredBytes = 0;
  private closeEvent: Extract<ConnectionEvent, { type: 'closed' }> | null = null;
  private closeInfo: CloseInfo | null = null;
  private closedResolve: ((info: CloseInfo) => void) | null = null;
  private closedPromise: Promise<CloseInfo> | null = null;
  /** Resolves once, after the socket is released, with how the session ended. Never rejects. */
  get closed(): Promise<CloseInfo> {
    // Made on first use: most sessions are never awaited, and an idle server holds thousands.
    if (!this.closedPromise) {
      const info = this.closeInfo;
      this.closedPromise = info ? Promise.resolve(info) : new Promise((resolve) => (this.closedResolve = resolve));
    }
    return this.closedPromise;
  }

  /** Whole messages for messages() (sessions without onMessage that asked for it; made on first message). */
  private readonly inboxEnabled: boolean;
  private inbox: Inbox | null = null;

  constructor(init: SessionInit<T>) {
    this.role = init.role;
    this.socket = init.socket;
    const tls = (init.socket as Duplex & { encrypted?: boolean }).encrypted === true;
    this.closesTcpFirst = init.role === 'server' && !tls && init.socket instanceof Socket;
    this.out = new Outbound(init.socket, tls);
    this.gate = new ReadGate(init.socket, this);
    this.context = init.context;
    this.handler = init.handler as unknown as Handler<this>;
    this.protocol = init.protocol;
    this.extensions = init.extensions;
    this.maxQueuedBytes = init.limits.maxQueuedBytes ?? DEFAULT_SESSION_LIMITS.maxQueuedBytes;
    this.highWaterMark = init.limits.highWaterMark ?? DEFAULT_SESSION_LIMITS.highWaterMark;
    this.closeTimeoutMs = init.closeTimeoutMs;
    this.onHandlerError = init.onHandlerError;
    this.onFinished = init.onFinished;
    this.inboxEnabled = init.inbox ?? false;
    this.conn = new Connection(this, {
      role: init.role,
      limits: init.limits,
      closeTimeoutMs: init.closeTimeoutMs,
      keepalive: init.keepalive,
      streamMessages: typeof this.handler.onFragment === 'function',
      maskSource: init.role === 'client' ? init.context.maskSource : undefined,
      now: init.context.now(),
      codec: init.codec ?? null,
    });
  }

  /**
   * Wires the socket and runs onOpen; then processes bytes that came with the
   * handshake (or keeps them for resumeReading() if reading is paused by then)
   * and starts reading from the socket.
   */
  start(head: Buffer): void {
    const s = this.socket;
    // The same five listener functions for every socket: no closure per listener per session (idle-connection memory).
    (s as SessionSocket)[SESSION] = this as unknown as Session<unknown>;
    s.on('data', onSocketData);
    s.on('drain', onSocketDrain);
    s.on('end', onSocketEnd);
    s.on('error', onSocketError);
    s.on('close', onSocketClose);
    this.reschedule();
    this.callHandler(() => this.handler.onOpen?.(this));
    if (head.length > 0 && !this.socketGone) {
      // Bytes read with the handshake wait for resumeReading() if the application paused already.
      if (this.gate.has(PauseReason.Application)) this.gate.defer(head);
      else this.onData(head);
    }
    // The socket was paused for the handshake. Reading starts here, unless the application paused it
    // already (pauseReading() in onOpen, or right after connect() resolved): an unconditional
    // socket.resume() in the callers undid that pause, and a paused client read on regardless.
    this.gate.apply();
  }

  // ------------------------------------------------------------ public API

  get state(): SessionState {
    return this.conn.state;
  }

  /** Bytes accepted by send() that the kernel has not taken yet (our queue plus the socket's buffer). */
  get bufferedAmount(): number {
    return this.out.pendingBytes + this.deferredBytes + this.conn.pendingOutputBytes;
  }

  get remoteAddress(): string | undefined {
    return (this.socket as Duplex & { remoteAddress?: string }).remoteAddress;
  }

  /**
   * Sends a message: a string as TEXT, bytes as BINARY (or as TEXT with
   * { binary: false }). The bytes are copied before send() returns, unless
   * `transfer: true` hands them to the library: then they are sent from the
   * caller's memory, which the caller must not touch again (a client masks
   * them in place). For forwarding a received message, whose data is yours.
   */
  send(data: string | Uint8Array | ArrayBuffer | ArrayBufferView, options: { binary?: boolean; compress?: boolean; transfer?: boolean } = {}): SendStatus {
    const binary = options.binary ?? typeof data !== 'string';
    if (this.conn.state !== 'open') return 'dropped';
    const bytes = toBytes(data);
    // A string was encoded by us: the encoded bytes are ours to keep (no second copy). With
    // `transfer` the caller hands its bytes over (S2's explicit ownership transfer): no copy either.
    const owned = typeof data === 'string' || options.transfer === true;
    if (this.overQueueLimit(bytes.length)) return 'dropped';
    if (this.conn.sendingStream) {
      // A streamed message is open: this one goes out after it ends (copied now, S2).
      (this.deferred ??= []).push({ bytes: owned ? bytes : Buffer.from(bytes), binary, compress: options.compress ?? true });
      this.deferredBytes += bytes.length;
      return this.statusAfterSend();
    }
    this.conn.send(bytes, binary, owned, options.compress ?? true);
    return this.statusAfterSend();
  }

  /**
   * @internal A message built once for many sessions (fan-out): `frame` is
   * its encoded, unmasked frame (`frameBytes` long), shared and never modified; `payload` the
   * library's own copy of it, for a session that must encode it itself (it
   * compresses, or a streamed message is open).
   */
  sendShared(frame: Buffer[], frameBytes: number, payload: Buffer, binary: boolean, compress: boolean): SendStatus {
    if (this.conn.state !== 'open') return 'dropped';
    if (this.conn.sendingStream || (compress && this.conn.compressesOutput)) return this.send(payload, { binary, compress });
    if (this.overQueueLimit(frameBytes)) return 'dropped';
    this.conn.sendEncoded(frame, binary);
    return this.statusAfterSend();
  }

  /**
   * Opens a message to be sent piece by piece (RFC 6455 section 5.4
   * fragmentation): each write() is one frame on the wire; end() sends the
   * final frame. Other send() calls wait until the stream ends.
   */
  stream(options: { binary?: boolean; compress?: boolean } = {}): MessageWriter {
    if (this.conn.state !== 'open') throw new InvalidStateError('open a message stream', this.conn.state);
    if (this.conn.sendingStream) throw new InvalidStateError('open a message stream', 'streaming another message');
    return new MessageWriter(this, options.binary ?? true, options.compress ?? true);
  }

  /**
   * Sends everything `source` yields as one fragmented message, pacing itself
   * on bufferedAmount so memory stays bounded whatever the source's size.
   */
  async sendStream(source: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>, options: { binary?: boolean; compress?: boolean } = {}): Promise<void> {
    const writer = this.stream(options);
    for await (const chunk of source) {
      const status = writer.write(chunk);
      if (status === 'dropped') throw new InvalidStateError('stream a message', this.conn.state);
      if (status === 'backpressure') await this.waitForDrain();
    }
    if (writer.end() === 'dropped') throw new InvalidStateError('finish a message stream', this.conn.state);
  }

  /**
   * Asks for one onWritable callback, fired when everything queued has gone
   * to the kernel (at once, on the next turn of the event loop, if it already
   * has). Returns false if a request is already pending: requests do not
   * stack, the pending one answers both.
   */
  requestWritable(): boolean {
    if (this.conn.state !== 'open') throw new InvalidStateError('request a writable callback', this.conn.state);
    if (this.writableRequested) return false;
    this.writableRequested = true;
    this.writableRequests++;
    this.maybeFireWritable();
    return true;
  }

  /**
   * Stops reading from the socket: inbound flow control for an application
   * that cannot keep up (a slow disk behind onFragment, say). This is the
   * reader pausing itself, never the write side (S1). While paused nothing is
   * read, so pings go unanswered too: keep pauses shorter than the peer's
   * keepalive.
   */
  pauseReading(): void {
    this.gate.set(PauseReason.Application, true);
  }

  /** Resumes reading after pauseReading(). */
  resumeReading(): void {
    this.gate.set(PauseReason.Application, false);
  }

  /** Number of requestWritable() calls that registered a request so far. */
  get writableRequestCount(): number {
    return this.writableRequests;
  }

  ping(data: string | Uint8Array = Buffer.alloc(0)): SendStatus {
    if (this.conn.state !== 'open') return 'dropped';
    this.conn.ping(toBytes(data));
    return this.statusAfterSend();
  }

  pong(data: string | Uint8Array = Buffer.alloc(0)): SendStatus {
    if (this.conn.state !== 'open') return 'dropped';
    this.conn.pong(toBytes(data));
    return this.statusAfterSend();
  }

  /**
   * Starts the closing handshake: everything queued is sent first, then the
   * close frame (S4). onClose fires when the peer has answered and the socket
   * is closed, or after the close timeout.
   */
  close(code = 1000, reason = ''): void {
    if (this.conn.state !== 'open') return;
    this.flushDeferredBeforeClose();
    this.conn.close(code, reason, this.context.now());
    this.reschedule();
  }

  /** Drops the connection at once, without a closing handshake. */
  terminate(): void {
    if (this.conn.state !== 'closed') this.conn.transportClosed(new TransportError('ERR_TERMINATED', 'terminated by the application'));
    this.destroySocket();
  }

  /**
   * Whole messages as they arrive, for sessions without an onMessage handler
   * (client sessions). Ends after a clean close; throws the error after a
   * failed one.
   */
  messages(): AsyncIterableIterator<Message> {
    if (!this.inboxEnabled) throw new InvalidStateError('iterate messages', 'handled by onMessage (no inbox)');
    const next = (): Promise<IteratorResult<Message>> => this.nextFromInbox();
    return {
      [Symbol.asyncIterator]() {
        return this;
      },
      next,
      async return(): Promise<IteratorResult<Message>> {
        return { value: undefined, done: true };
      },
    };
  }

  private async nextFromInbox(): Promise<IteratorResult<Message>> {
    for (;;) {
      const m = this.takeFromInbox();
      if (m) return { value: m, done: false };
      const ended = this.closeInfo ?? this.closeEvent;
      if (ended) {
        if (!ended.wasClean && ended.error) throw ended.error;
        return { value: undefined, done: true };
      }
      await (this.inbox ??= this.newInbox()).wait();
    }
  }

  // ----------------------------------------------------- internal helpers

  /** @internal used by MessageWriter */
  _writeFragment(chunk: string | Uint8Array, last: boolean, binary: boolean, compress: boolean): SendStatus {
    if (this.conn.state !== 'open') return 'dropped';
    const bytes = toBytes(chunk);
    if (this.overQueueLimit(bytes.length)) return 'dropped';
    this.conn.sendFragment(bytes, binary, last, compress);
    if (last) this.flushDeferred();
    return this.statusAfterSend();
  }

  /** @internal resolves when bufferedAmount is at or below the high-water mark (or the session ends). */
  waitForDrain(): Promise<void> {
    if (this.bufferedAmount <= this.highWaterMark || this.socketGone) return Promise.resolve();
    return new Promise((resolve) => (this.drainWaiters ??= []).push(resolve));
  }

  private overQueueLimit(size: number): boolean {
    const buffered = this.bufferedAmount;
    if (buffered > 0 && buffered + size > this.maxQueuedBytes) {
      if (this.handler.onError) {
        // Built without a stack trace: a peer that never reads makes every send() drop, and capturing
        // a stack per drop would cost more than the sends (test/hostile/floods.test.ts). send()
        // returns 'dropped' at the call site, which is where a stack would point.
        const limit = Error.stackTraceLimit;
        Error.stackTraceLimit = 0;
        const err = new LimitExceededError('maxQueuedBytes', `send of ${size} bytes dropped: ${buffered} bytes already queued (limit ${this.maxQueuedBytes})`);
        Error.stackTraceLimit = limit;
        this.callHandler(() => this.handler.onError?.(this, err));
      }
      return true;
    }
    return false;
  }

  private statusAfterSend(): SendStatus {
    const b = this.bufferedAmount;
    if (b === 0) return 'sent';
    return b > this.highWaterMark ? 'backpressure' : 'queued';
  }

  private flushDeferred(): void {
    while (this.deferred !== null && this.deferred.length > 0 && !this.conn.sendingStream && this.conn.state === 'open') {
      const d = this.deferred.shift()!;
      this.deferredBytes -= d.bytes.length;
      this.conn.send(d.bytes, d.binary, true, d.compress);
    }
  }

  private flushDeferredBeforeClose(): void {
    // A stream left open cannot be finished for the application; what waits behind it stays unsent and is reported.
    if (!this.conn.sendingStream) this.flushDeferred();
  }

  private callHandler(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.handlerFailed(err);
    }
  }

  /** A handler threw: report it, and close the session with 1011 (docs/api.md, "Handlers"). */
  private handlerFailed(err: unknown): void {
    this.onHandlerError(err, this as unknown as Session<never>);
    if (this.conn.state === 'open') {
      this.conn.close(1011, 'internal error', this.context.now());
      this.reschedule();
    }
  }

  // ------------------------------------------------- ConnectionHost (core)

  write(chunks: Buffer[], urgent: boolean, endsMessage: boolean, opcode: number): void {
    if (this.socketGone) return;
    if (this.conn.state === 'closing') {
      // Frames the codec releases after close() are our own queued output still going out, the close
      // frame last (S4): the close timeout counts from them, not from close(), or a compressed backlog
      // longer than closeTimeoutMs timed out before our close frame was even sent
      // (test/integration/nothing-lost.test.ts).
      this.conn.closeProgress(this.context.now());
      this.reschedule();
    }
    const pong = opcode === Opcode.Pong;
    const outcome = this.out.write(chunks, urgent, endsMessage, pong, this.maxQueuedBytes, this.deferredBytes + this.conn.pendingOutputBytes);
    if (outcome === 'written') this.afterDirectWrite();
  }

  onEvent(ev: ConnectionEvent): void {
    switch (ev.type) {
      case 'message': {
        if (this.gate.has(PauseReason.Codec)) this.checkCodecBacklog();
        // The event is the Message (core MessageEvent); no closure per message on this path.
        const onMessage = this.handler.onMessage;
        if (onMessage) {
          try {
            onMessage.call(this.handler, this, ev);
          } catch (err) {
            this.handlerFailed(err);
          }
        } else if (this.inboxEnabled) this.pushInbox(ev);
        break;
      }
      case 'fragment': {
        if (this.gate.has(PauseReason.Codec)) this.checkCodecBacklog();
        const f: Fragment = { binary: ev.binary, data: ev.data, first: ev.first, last: ev.last };
        this.callHandler(() => this.handler.onFragment!(this, f));
        break;
      }
      case 'ping':
        if (this.handler.onPing) this.callHandler(() => this.handler.onPing!(this, ev.data));
        break;
      case 'pong':
        if (this.handler.onPong) this.callHandler(() => this.handler.onPong!(this, ev.data));
        break;
      case 'closed':
        this.onConnectionClosed(ev);
        break;
    }
  }

  /** What follows a write that went straight to the socket (not queued). */
  private afterDirectWrite(): void {
    // Frames the codec released after the connection closed: end once they are out.
    if (this.ending) {
      this.endSocket();
      return;
    }
    // Bytes waiting in the codec count in bufferedAmount, but when the codec hands them over and
    // they go straight to an unblocked socket no 'drain' follows: waitForDrain() (sendStream with
    // compression) would hang. Checked here as onDrain() does (test/integration/deflate.test.ts,
    // 16 MiB streamed compressed).
    this.releaseDrainWaiters();
    if (this.writableRequested) this.maybeFireWritable();
  }

  /** Nothing waits on our side of the socket: the outbound path is idle and the codec holds no output. */
  private get idle(): boolean {
    return this.out.idle && this.conn.pendingOutputBytes === 0;
  }

  // ----------------------------------------------------------- socket side

  /** @internal */
  onData(chunk: Buffer): void {
    if (this.conn.state === 'closed') return;
    if (this.gate.waitingBytes > 0) {
      // Reading is paused while bytes wait, so this is rare (a read already under way): keep the order.
      this.gate.defer(chunk);
      return;
    }
    if (this.out.unconfirmedMessages > 0) this.out.settle();
    // Replies produced by one read (pongs, echoes) leave in one write (see Outbound's batch).
    this.out.beginBatch();
    let used: number;
    const framesBefore = this.conn.framesReceived;
    try {
      used = this.conn.receive(chunk, this.context.now(), FRAMES_PER_TURN);
    } finally {
      if (this.out.endBatch()) this.afterDirectWrite();
    }
    // Bounded work per turn: the rest waits, with reading paused, for a later turn of the event
    // loop, so that other connections' reads and timers run in between.
    if (this.state !== 'closed' && !this.socketGone) {
      // The rest is copied: a read of many tiny frames is parsed over several turns, and a read
      // buffer kept that long survives young-generation collections and is promoted, so that every
      // read of a flood would stay in memory, dead, until the next full collection. The copy lives
      // one turn (test/hostile/floods.test.ts, server memory during a flood of 1-byte messages).
      if (used < chunk.length) this.gate.defer(Buffer.from(chunk.subarray(used)));
      else if (this.conn.framesReceived - framesBefore >= YIELD_AFTER_FRAMES) this.gate.yieldTurn();
    }
    if (this.conn.pendingInputMessages > 0 || this.gate.has(PauseReason.Codec)) this.checkCodecBacklog();
  }

  /** @internal */
  onDrain(): void {
    this.out.drained();
    if (this.conn.state !== 'open') {
      // Closing with data still going out: the peer is reading, so the close
      // and hang-up timeouts count from this progress, not from close() (S4).
      const now = this.context.now();
      this.conn.closeProgress(now);
      if (this.destroyAt !== Infinity) this.destroyAt = now + this.closeTimeoutMs;
      this.reschedule();
    }
    if (!this.idle) return;
    if (this.ending) this.endSocket();
    this.releaseDrainWaiters();
    this.maybeFireWritable();
  }

  /** Resolves the waitForDrain() promises once bufferedAmount is back at or below the high-water mark. */
  private releaseDrainWaiters(): void {
    if (this.drainWaiters === null || this.drainWaiters.length === 0 || this.bufferedAmount > this.highWaterMark) return;
    const ws = this.drainWaiters;
    this.drainWaiters = null;
    for (const w of ws) w();
  }

  private maybeFireWritable(): void {
    if (!this.writableRequested || this.writableScheduled || !this.idle) return;
    // Never synchronously from requestWritable() or inside a write: on the next turn of the loop.
    this.writableScheduled = true;
    setImmediate(() => {
      this.writableScheduled = false;
      if (!this.writableRequested || this.conn.state !== 'open') return;
      if (!this.idle) return; // the application queued more meanwhile: wait for 'drain'
      this.writableRequested = false;
      const info: WritableInfo = { request: this.writableRequests };
      this.callHandler(() => this.handler.onWritable?.(this, info));
    });
  }

  /** @internal */
  onEnd(): void {
    this.out.settle();
    // The peer half-closed. Before the closing handshake finished, that is an abnormal closure (1006).
    if (this.conn.state !== 'closed') this.conn.transportClosed();
    this.endSocket();
  }

  /** @internal */
  onSocketError(err: Error): void {
    if (this.conn.state !== 'closed') this.conn.transportClosed(new TransportError('ERR_SOCKET', `socket error: ${err.message}`, { cause: err }));
    this.destroySocket();
  }

  /** @internal */
  onSocketClose(): void {
    this.socketGone = true;
    if (this.conn.state !== 'closed') this.conn.transportClosed();
    this.context.timers.cancel(this);
    this.gate.close();
    // 'finish' came first: every byte written reached the kernel.
    let unsent = this.out.release(this.socket.writableFinished) + this.conn.pendingOutputMessages + this.conn.droppedOutputMessages;
    if (this.deferred !== null) unsent += this.deferred.length;
    this.deferred = null;
    this.deferredBytes = 0;
    const waiters = this.drainWaiters;
    this.drainWaiters = null;
    if (waiters !== null) for (const w of waiters) w();
    // The core holds a clean close back until the messages before it that are
    // still being inflated are delivered (Connection.heldClose). If the peer
    // hung up meanwhile there is no 'closed' event yet: finish when it comes
    // (a compressed message, a close frame and FIN in one read, as
    // libwebsockets-test-server's lws-status sends them:
    // test/interop/libwebsockets.test.ts).
    if (!this.closeEvent) {
      this.unsentAtSocketClose = unsent;
      return;
    }
    this.finishClose(unsent);
  }

  /** Unsent-message count kept when the socket closed before the core's 'closed' event. */
  private unsentAtSocketClose: number | null = null;

  private finishClose(unsent: number): void {
    const ev = this.closeEvent!;
    const info: CloseInfo = { code: ev.code, reason: ev.reason, wasClean: ev.wasClean, error: ev.error, unsentMessages: unsent };
    this.closeInfo = info;
    this.wakeInbox();
    this.callHandlerFinal(() => this.handler.onClose?.(this, info));
    this.closedResolve?.(info);
    this.closedResolve = null;
    this.onFinished?.(this as unknown as Session<never>);
  }

  private callHandlerFinal(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.onHandlerError(err, this as unknown as Session<never>);
    }
  }

  private onConnectionClosed(ev: Extract<ConnectionEvent, { type: 'closed' }>): void {
    this.closeEvent = ev;
    this.writableRequested = false;
    if (this.socketGone && this.unsentAtSocketClose !== null) {
      // The socket closed while this close was held back (see onSocketClose).
      this.finishClose(this.unsentAtSocketClose);
      return;
    }
    if (ev.error && !this.socketGone) {
      const e = ev.error;
      this.callHandlerFinal(() => this.handler.onError?.(this, e));
    }
    this.wakeInbox();
    if (ev.hangup === 'abort') {
      this.destroySocket();
      return;
    }
    // Graceful: everything queued goes out, then FIN; if the peer never closes its side, destroy after the close timeout.
    this.ending = true;
    this.destroyAt = this.context.now() + this.closeTimeoutMs;
    this.reschedule();
    if (this.idle) this.endSocket();
  }

  private endSocket(): void {
    if (this.socketGone) return;
    this.ending = true;
    if (!this.idle) return;
    // end() of an already ended socket makes (and discards) an ERR_STREAM_ALREADY_FINISHED error,
    // stack trace included: a real cost when clients close as fast as they connect.
    if (this.socket.writableEnded) return;
    // A server whose closing handshake is complete closes the TCP connection itself (RFC 6455
    // section 7.1.1: the server closes first and keeps the TIME_WAIT). With every byte already
    // in the kernel, close() sends them and then FIN just as shutdown() would, and it saves the
    // shutdown, the wait for the peer's FIN and the read of it (the handshake benchmark measures
    // it: BENCHMARKS.md). Only after a clean close: the peer has sent its
    // close frame, so it has nothing left to send that a close() would answer with a reset. A
    // connection we failed (1002, 1007, 1009...) or that ended without close frames may still
    // have bytes coming; a reset would make the peer's kernel drop what it has not read yet, our
    // close frame included (test/integration/graceful-close.test.ts), so it gets FIN and we read
    // on. TLS still ends with end(), which sends close_notify; a client still waits for the
    // server's FIN (section 7.1.1); and a stream that is not a TCP socket (handleUpgrade() takes
    // any Duplex) is ended, not aborted.
    if (this.closesTcpFirst && this.closeEvent?.wasClean === true && this.socket.writableLength === 0) {
      this.destroySocket();
      return;
    }
    this.socket.end();
  }

  private destroySocket(): void {
    if (this.socketGone) return;
    this.out.settle();
    this.socket.destroy();
  }

  // ---------------------------------------------------------------- timers

  private reschedule(): void {
    if (this.socketGone) return;
    const at = Math.min(this.conn.nextDeadline(), this.destroyAt);
    this.context.timers.schedule(this, at);
  }

  onTimer(now: number): void {
    if (this.socketGone) return;
    if (now >= this.destroyAt) {
      this.destroySocket();
      return;
    }
    this.socket.cork();
    try {
      this.conn.tick(now);
    } finally {
      this.socket.uncork();
    }
    this.reschedule();
  }

  /** Called after input was processed or delivered: bounds the messages waiting for the codec (S3). */
  private checkCodecBacklog(): void {
    const pending = this.conn.pendingInputMessages;
    const paused = this.gate.has(PauseReason.Codec);
    if (!paused && pending >= CODEC_BACKLOG_PAUSE) this.gate.set(PauseReason.Codec, true);
    else if (paused && pending <= CODEC_BACKLOG_RESUME) this.gate.set(PauseReason.Codec, false);
  }

  // ------------------------------------------------------------------ inbox

  /** The inbox pauses reading above 16 high-water marks of unread messages and resumes at 8. */
  private newInbox(): Inbox {
    return new Inbox(this.highWaterMark * 16, this.highWaterMark * 8);
  }

  private pushInbox(m: Message): void {
    // Inbound flow control driven by the application's reading (not by writes: S1).
    if ((this.inbox ??= this.newInbox()).push(m) && !this.gate.has(PauseReason.Inbox)) this.gate.set(PauseReason.Inbox, true);
  }

  private takeFromInbox(): Message | undefined {
    const inbox = this.inbox;
    const m = inbox?.take();
    if (m && this.gate.has(PauseReason.Inbox) && inbox!.drained) this.gate.set(PauseReason.Inbox, false);
    return m;
  }

  private wakeInbox(): void {
    this.inbox?.wake();
  }
}

/** A message being sent fragment by fragment (Session.stream()). */
export class MessageWriter {
  private ended = false;
  private readonly session: Session<unknown>;
  private readonly binary: boolean;
  private readonly compress: boolean;
  constructor(session: Session<unknown>, binary: boolean, compress: boolean) {
    this.session = session;
    this.binary = binary;
    this.compress = compress;
  }
  /** Sends one fragment (copied before returning). */
  write(chunk: string | Uint8Array): SendStatus {
    if (this.ended) throw new InvalidStateError('write to a message stream', 'ended');
    return this.session._writeFragment(chunk, false, this.binary, this.compress);
  }
  /** Sends the final fragment (possibly empty) and ends the message. */
  end(chunk: string | Uint8Array = Buffer.alloc(0)): SendStatus {
    if (this.ended) throw new InvalidStateError('end a message stream', 'ended');
    this.ended = true;
    return this.session._writeFragment(chunk, true, this.binary, this.compress);
  }
}

export { WebSocketError };
