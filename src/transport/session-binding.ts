import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Connection, type ClosedEvent, type ConnectionEvent, type ConnectionHost, type KeepaliveOptions, type Role } from '../core/connection.js';
import type { MessageCodec } from '../core/message-codec.js';
import { Opcode } from '../core/opcodes.js';
import { LimitExceededError, TransportError } from '../core/errors.js';
import type { Context } from './context.js';
import type { TimerEntry } from './timer-wheel.js';
import { Outbound } from './outbound.js';
import { PauseReason, ReadGate } from './read-gate.js';
import { Inbox } from './inbox.js';
import { Lifecycle, type LifecycleHost, type LifecycleState } from './lifecycle.js';
import { Pacer, type PacerHost } from './pacer.js';
import { HeldSends } from './message-writer.js';
import { StreamAdapter, type StreamOwner } from './stream-adapter.js';
import type { SessionCounters } from './session-counters.js';
import { DEFAULT_SESSION_LIMITS, type CloseInfo, type Handler, type SendStatus, type SessionLimits, type WritableInfo } from './types.js';


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
  onHandlerError: (error: unknown, session: never) => void;
  /** Called once, after onClose, with how the session ended. */
  onFinished?: (session: never, info: CloseInfo) => void;
  /** Buffer whole messages for messages() (client sessions without onMessage). */
  inbox?: boolean;
  /** The negotiated per-message codec (permessage-deflate), if any. */
  codec?: MessageCodec | null;
  /** Answer pings automatically (default true; ConnectionOptions.autoPong). */
  autoPong?: boolean;
  /** @internal How close frames read (ConnectionOptions.closeFrames; sockeye/ws sets 'ws'). */
  closeFrames?: 'sockeye' | 'ws';
  /** The counters this session reports to, shared by every session of its server (server.metrics()); none for a client. */
  counters?: SessionCounters | null;
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

/**
 * What binds a session to its stream and to the core: the Connection's host
 * (its writes and events), the stream's events, the timer, and the parts,
 * each in its own file: Outbound (the write path), ReadGate (every reason
 * reading pauses), Inbox (messages()), Pacer (writable callbacks, drain
 * waits), HeldSends (sends behind an open stream), Lifecycle (the close
 * sequence) and StreamAdapter (what is socket-specific). Session, the public
 * face, extends it; docs/architecture.md tells how the parts fit.
 *
 * Invariant S1 by construction: nothing on the write side ever pauses the
 * stream's reading; 'data' is always consumed and parsed, whatever the write
 * queue holds.
 */
export abstract class SessionBinding<T> implements ConnectionHost, TimerEntry, StreamOwner, LifecycleHost, PacerHost {
  /** @internal links of the context's timer wheel (TimerEntry). */
  wheelSlot = -1;
  /** @internal */
  wheelPrev: TimerEntry | null = null;
  /** @internal */
  wheelNext: TimerEntry | null = null;
  /** Made on first use: a session whose handler never touches `data` saves the empty object. */
  protected dataObject: T | null = null;
  readonly protocol: string | undefined;
  readonly extensions: readonly string[];
  protected readonly socket: Duplex;
  protected readonly context: Context;
  protected handler: Handler<this>;
  protected readonly conn: Connection;
  protected readonly out: Outbound;
  protected readonly gate: ReadGate;
  /** Made on the first step of the close sequence (or a wait for it): an open, idle session has none. */
  private lifecycle: Lifecycle | null = null;
  protected readonly limits: Partial<SessionLimits>;
  private readonly onHandlerError: SessionInit<T>['onHandlerError'];
  private readonly onFinished: SessionInit<T>['onFinished'];
  protected pacer: Pacer | null = null;
  protected held: HeldSends | null = null;
  /** Whole messages for messages(): only for sessions that asked for it. */
  protected readonly inbox: Inbox | null;
  /** Shared with the other sessions of the server (one object, not one per session); null for a client. */
  protected readonly counters: SessionCounters | null;

  constructor(init: SessionInit<T>) {
    this.socket = init.socket;
    // The adapter is looked up where it is needed (shared per kind of stream): no field for it.
    // Reused frame buffers only over node:net sockets (TLS ones included): a write there is done with
    // its buffer once writableLength has passed it. Another Duplex may keep the very buffer it was
    // given (an in-memory pair hands it to its reader), so it gets fresh ones (frame-pool.ts).
    const pool = init.socket instanceof Socket ? init.context.frames : null;
    this.out = new Outbound(init.socket, StreamAdapter.for(init.socket, init.role).encrypted, pool);
    this.gate = new ReadGate(init.socket, this);
    this.context = init.context;
    this.handler = init.handler as unknown as Handler<this>;
    this.protocol = init.protocol;
    this.extensions = init.extensions;
    this.limits = init.limits;
    this.onHandlerError = init.onHandlerError;
    this.onFinished = init.onFinished;
    this.counters = init.counters ?? null;
    this.inbox = init.inbox === true ? new Inbox(this.highWaterMark * 16, this.highWaterMark * 8) : null;
    this.conn = new Connection(this, {
      role: init.role,
      limits: init.limits,
      closeTimeoutMs: init.closeTimeoutMs,
      keepalive: init.keepalive,
      streamMessages: typeof this.handler.onFragment === 'function',
      maskSource: init.role === 'client' ? init.context.maskSource : undefined,
      now: init.context.now(),
      codec: init.codec ?? null,
      autoPong: init.autoPong,
      closeFrames: init.closeFrames,
      allocFrame: pool === null ? undefined : pool.alloc,
    });
  }

  /**
   * Wires the stream and runs onOpen; then processes bytes that came with the
   * handshake (or keeps them for resumeReading() if reading is paused by then)
   * and starts reading.
   */
  start(head: Buffer): void {
    StreamAdapter.for(this.socket, this.conn.role).attach(this.socket, this);
    this.reschedule();
    this.callHandler(() => this.handler.onOpen?.(this));
    if (head.length > 0 && !this.streamGone) {
      if (this.gate.has(PauseReason.Application)) this.gate.defer(head);
      else this.onData(head);
    }
    // The stream was paused for the handshake. Reading starts here, unless the application paused it
    // already (pauseReading() in onOpen, or right after connect() resolved).
    this.gate.apply();
    // connect() hands the session over before it starts: sends made in between may have filled the
    // stream, whose 'drain' can come before this listened (an HTTP/2 stream drains as soon as its
    // connection takes the bytes). A stream that needs no drain any more has had it: the queue goes
    // on now instead of waiting for an event that already came (test/integration/nothing-lost.test.ts,
    // over HTTP/2; test/transport/session-streams.test.ts, "drained before start").
    if (this.out.blocked && !this.socket.writableNeedDrain && !this.streamGone) this.onDrain();
  }

  /** @internal Where the session is in its close sequence (test/transport/lifecycle.test.ts). */
  get lifecycleState(): LifecycleState {
    return this.lifecycle?.state ?? 'open';
  }

  /** The close sequence, made when first needed. */
  protected get life(): Lifecycle {
    return (this.lifecycle ??= new Lifecycle(this, this.conn.closeTimeoutMs));
  }

  /** How the session ended (once released), or how the WebSocket closed, or null while open. */
  protected get lifecycleInfo(): CloseInfo | ClosedEvent | null {
    return this.lifecycle === null ? null : (this.lifecycle.info ?? this.lifecycle.closedEvent);
  }

  /** The stream is closed (nothing more is written to it or scheduled). */
  protected get streamGone(): boolean {
    return this.lifecycle !== null && this.lifecycle.streamClosed;
  }

  /** Bytes accepted by send() that the kernel has not taken yet (our queue plus the stream's buffer). */
  get bufferedAmount(): number {
    return this.out.pendingBytes + (this.held?.bytes ?? 0) + this.conn.pendingOutputBytes;
  }

  /**
   * @internal bufferedAmount without the fixed charge each message waiting for the codec carries
   * (maxQueuedBytes still counts it, S3): the bytes sent and not yet written, which is what ws's
   * bufferedAmount reports (test/compat/ws/websocket.test.ts, "bufferedAmount counts a message
   * waiting for compression by its size").
   */
  get bufferedPayloadAmount(): number {
    return this.bufferedAmount - this.conn.pendingOutputOverhead;
  }

  /** @internal PacerHost */
  get highWaterMark(): number {
    return this.limits.highWaterMark ?? DEFAULT_SESSION_LIMITS.highWaterMark;
  }
  private get maxQueuedBytes(): number {
    return this.limits.maxQueuedBytes ?? DEFAULT_SESSION_LIMITS.maxQueuedBytes;
  }
  /** @internal PacerHost */
  get open(): boolean {
    return this.conn.state === 'open';
  }
  /** @internal PacerHost */
  fireWritable(info: WritableInfo): void {
    this.callHandler(() => this.handler.onWritable?.(this, info));
  }

  protected overQueueLimit(size: number): boolean {
    const buffered = this.bufferedAmount;
    const max = this.maxQueuedBytes;
    if (buffered === 0 || buffered + size <= max) return false;
    if (this.counters !== null) this.counters.droppedLimit++;
    if (this.handler.onError) {
      // Built without a stack trace: a peer that never reads makes every send() drop, and capturing
      // a stack per drop would cost more than the sends (test/hostile/floods.test.ts). send()
      // returns 'dropped' at the call site, which is where a stack would point.
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 0;
      const err = new LimitExceededError('maxQueuedBytes', `send of ${size} bytes dropped: ${buffered} bytes already queued (limit ${max})`);
      Error.stackTraceLimit = limit;
      this.callHandler(() => this.handler.onError?.(this, err));
    }
    return true;
  }

  protected statusAfterSend(): SendStatus {
    const b = this.bufferedAmount;
    if (b === 0) return 'sent';
    if (b <= this.highWaterMark) return 'queued';
    if (this.counters !== null) this.counters.backpressure++;
    return 'backpressure';
  }

  /** A send refused because the session is no longer open (counted, as every 'dropped' is). */
  protected droppedClosed(): SendStatus {
    if (this.counters !== null) this.counters.droppedClosed++;
    return 'dropped';
  }

  protected flushHeld(): void {
    this.held?.flush(
      () => !this.conn.sendingStream && this.conn.state === 'open',
      (bytes, binary, compress) => this.conn.send(bytes, binary, true, compress),
    );
  }

  protected callHandler(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.handlerFailed(err);
    }
  }

  /** A handler threw: report it, and close the session with 1011 (docs/api.md, "Handlers"). */
  protected handlerFailed(err: unknown): void {
    this.onHandlerError(err, this as never);
    if (this.conn.state === 'open') {
      this.conn.close(1011, 'internal error', this.context.now());
      this.life.step({ type: 'close-sent' });
      this.reschedule();
    }
  }

  protected callHandlerFinal(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.onHandlerError(err, this as never);
    }
  }

  // ------------------------------------------------- ConnectionHost (core)

  /** @internal */
  write(chunks: Buffer[], urgent: boolean, endsMessage: boolean, opcode: number): void {
    if (this.streamGone) return;
    if (this.conn.state === 'closing') {
      // Frames the codec releases after close() are our own queued output still going out, the close
      // frame last (S4): the close timeout counts from them, not from close()
      // (test/integration/nothing-lost.test.ts).
      this.conn.closeProgress(this.context.now());
      this.reschedule();
    }
    const otherBytes = (this.held?.bytes ?? 0) + this.conn.pendingOutputBytes;
    if (this.out.write(chunks, urgent, endsMessage, opcode === Opcode.Pong, this.maxQueuedBytes, otherBytes) === 'written') this.afterDirectWrite();
  }

  /** @internal */
  onEvent(ev: ConnectionEvent): void {
    switch (ev.type) {
      case 'message': {
        if (this.gate.has(PauseReason.Codec)) this.checkCodecBacklog();
        if (this.counters !== null) this.counters.received(ev.binary, ev.data.length, true);
        // The event is the Message (core MessageEvent); no closure per message on this path.
        const onMessage = this.handler.onMessage;
        if (onMessage) {
          try {
            onMessage.call(this.handler, this, ev);
          } catch (err) {
            this.handlerFailed(err);
          }
        } else if (this.inbox !== null && this.inbox.push(ev) && !this.gate.has(PauseReason.Inbox)) {
          // Inbound flow control driven by the application's reading (not by writes: S1).
          this.gate.set(PauseReason.Inbox, true);
        }
        break;
      }
      case 'fragment': {
        if (this.gate.has(PauseReason.Codec)) this.checkCodecBacklog();
        if (this.counters !== null) this.counters.received(ev.binary, ev.data.length, ev.last);
        this.callHandler(() => this.handler.onFragment!(this, { binary: ev.binary, data: ev.data, first: ev.first, last: ev.last }));
        break;
      }
      case 'ping':
        if (this.handler.onPing) this.callHandler(() => this.handler.onPing!(this, ev.data));
        break;
      case 'pong':
        // Only pongs that answer our keepalive ping carry a round-trip time (Liveness.pongReceived).
        if (ev.rttMs !== undefined && this.counters !== null) this.counters.pingRtt.observe(ev.rttMs / 1000);
        if (this.handler.onPong) this.callHandler(() => this.handler.onPong!(this, ev.data));
        break;
      case 'closed':
        this.pacer?.cancel();
        // The stream's own end (a TransportError once it is gone) is told by onClose alone; a fault of
        // the peer is reported even if the stream has closed since, as when the closed event waited
        // for messages still with the codec (test/compat/ws/websocket.test.ts, "messages received
        // before a fault of the peer are emitted before 'error' and 'close'").
        if (ev.error && (!this.streamGone || !(ev.error instanceof TransportError))) {
          const e = ev.error;
          this.callHandlerFinal(() => this.handler.onError?.(this, e));
        }
        this.inbox?.wake();
        this.life.step({ type: 'closed', event: ev });
        this.reschedule();
        break;
    }
  }

  /** What follows a write that went straight to the stream (not queued). */
  private afterDirectWrite(): void {
    // Frames the codec released after the connection closed: end once they are out.
    if (this.lifecycleState === 'flushing') {
      this.lifecycle?.step({ type: 'maybe-idle' });
      return;
    }
    // Bytes waiting in the codec count in bufferedAmount, but when the codec hands them over and
    // they go straight to an unblocked stream no 'drain' follows: waitForDrain() would hang
    // (test/integration/deflate.test.ts, 16 MiB streamed compressed).
    this.pacer?.progressed();
  }

  /** @internal LifecycleHost: nothing waits on our side of the stream, the codec holds no output. */
  get idle(): boolean {
    return this.out.idle && this.conn.pendingOutputBytes === 0;
  }
  /** @internal LifecycleHost */
  now(): number {
    return this.context.now();
  }
  /** @internal LifecycleHost */
  endStream(clean: boolean): void {
    this.out.settle();
    StreamAdapter.for(this.socket, this.conn.role).end(this.socket, clean);
  }
  /** @internal LifecycleHost */
  destroyStream(): void {
    if (this.streamGone) return;
    this.out.settle();
    StreamAdapter.for(this.socket, this.conn.role).destroy(this.socket);
  }
  /** @internal LifecycleHost */
  released(info: CloseInfo): void {
    this.context.timers.cancel(this);
    this.inbox?.wake();
    this.callHandlerFinal(() => this.handler.onClose?.(this, info));
    this.onFinished?.(this as never, info);
  }

  // ----------------------------------------------------------- stream side

  /** @internal */
  onData(chunk: Buffer): void {
    if (this.conn.state === 'closed') return;
    if (this.gate.waitingBytes > 0) {
      // Reading is paused while bytes wait, so this is rare (a read already under way): keep the order.
      this.gate.defer(chunk);
      return;
    }
    if (this.out.unsettled) this.out.settle();
    // Replies produced by one read (pongs, echoes) leave in one write (see Outbound's batch).
    this.out.beginBatch();
    let used: number;
    const framesBefore = this.conn.framesReceived;
    try {
      used = this.conn.receive(chunk, this.context.now(), FRAMES_PER_TURN);
    } finally {
      if (this.out.endBatch()) this.afterDirectWrite();
    }
    // Bounded work per turn: the rest waits, with reading paused, for a later turn of the event loop.
    if ((this.conn.state as string) !== 'closed' && !this.streamGone) {
      // The rest is copied: a read buffer kept across turns survives young-generation collections and
      // is promoted, so every read of a flood would stay in memory, dead, until the next full
      // collection. The copy lives one turn (test/hostile/floods.test.ts, 1-byte messages).
      if (used < chunk.length) this.gate.defer(Buffer.from(chunk.subarray(used)));
      else if (this.conn.framesReceived - framesBefore >= YIELD_AFTER_FRAMES) this.gate.yieldTurn();
    }
    if (this.conn.pendingInputMessages > 0 || this.gate.has(PauseReason.Codec)) this.checkCodecBacklog();
  }

  /** @internal */
  onDrain(): void {
    this.out.drained();
    if (this.conn.state !== 'open') {
      // Closing with data still going out: the peer is reading, so the close and hang-up timeouts
      // count from this progress, not from close() (S4).
      this.conn.closeProgress(this.context.now());
      this.lifecycle?.step({ type: 'progress' });
      this.reschedule();
    }
    if (!this.idle) return;
    this.lifecycle?.step({ type: 'maybe-idle' });
    this.pacer?.progressed();
  }

  /** @internal */
  onEnd(): void {
    this.out.settle();
    // The peer half-closed. Before the closing handshake finished, that is an abnormal closure (1006).
    if (this.conn.state !== 'closed') this.conn.transportClosed();
    this.lifecycle?.step({ type: 'maybe-idle' });
  }

  /** @internal */
  onStreamError(err: Error): void {
    if (this.conn.state !== 'closed') this.conn.transportClosed(new TransportError('ERR_SOCKET', `socket error: ${err.message}`, { cause: err }));
    this.destroyStream();
  }

  /** @internal */
  onStreamClose(): void {
    this.gate.close();
    this.context.timers.cancel(this);
    this.pacer?.releaseAll();
    // The stream is marked gone before the core hears of it (nothing more is written, no onError
    // for a stream that is already closed); the unsent messages are counted on release, after the
    // core has dropped what its codec still held.
    this.life.step({ type: 'stream-closed', unsent: () => this.countUnsent() });
    if (this.conn.state !== 'closed') this.conn.transportClosed();
  }

  /** Messages accepted and never handed to the kernel (S4): 'finish' first means every byte written reached it. */
  private countUnsent(): number {
    const queued = this.out.release(this.socket.writableFinished);
    return queued + this.conn.pendingOutputMessages + this.conn.droppedOutputMessages + (this.held?.clear() ?? 0);
  }

  // ---------------------------------------------------------------- timers

  protected reschedule(): void {
    if (this.streamGone) return;
    this.context.timers.schedule(this, Math.min(this.conn.nextDeadline(), (this.lifecycle?.deadline ?? Infinity)));
  }

  /** @internal */
  onTimer(now: number): void {
    if (this.streamGone) return;
    this.lifecycle?.step({ type: 'timer', now });
    if (this.streamGone || this.lifecycleState === 'ending') {
      this.reschedule();
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

  /** Bounds the received messages waiting for the codec (S3). */
  private checkCodecBacklog(): void {
    const pending = this.conn.pendingInputMessages;
    const paused = this.gate.has(PauseReason.Codec);
    if (!paused && pending >= CODEC_BACKLOG_PAUSE) this.gate.set(PauseReason.Codec, true);
    else if (paused && pending <= CODEC_BACKLOG_RESUME) this.gate.set(PauseReason.Codec, false);
  }
}
