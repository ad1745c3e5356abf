import { InvalidStateError, TransportError, WebSocketError } from '../core/errors.js';
import type { Role } from '../core/connection.js';
import { Pacer } from './pacer.js';
import { PauseReason } from './read-gate.js';
import { HeldSends, MessageWriter, toBytes, type FragmentSink } from './message-writer.js';
import { SessionBinding } from './session-binding.js';
import { remoteAddressOf, StreamAdapter } from './stream-adapter.js';
import type { CloseInfo, Message, SendStatus } from './types.js';

export type SessionState = 'open' | 'closing' | 'closed';
export type { SessionInit } from './session-binding.js';
export { MessageWriter };

/**
 * A WebSocket session over any byte stream (TCP, TLS, an HTTP/2 stream, an
 * in-memory pair): what handlers and clients use. It is the thin public face
 * over SessionBinding, which binds the core Connection to the stream.
 *
 * Invariant S2: send() copies (or takes a string the library encoded
 * itself, or bytes handed over with `transfer`), control frames are whole
 * frames queued between data frames, and onWritable fires only for
 * requestWritable(). Invariant S4: close() sends everything queued first.
 */
export class Session<T = unknown> extends SessionBinding<T> implements FragmentSink {
  /** Per-session application data, typed by the handler's author (an empty object until assigned). */
  get data(): T {
    return (this.dataObject ??= {} as T);
  }
  set data(value: T) {
    this.dataObject = value;
  }
  get role(): Role {
    return this.conn.role;
  }
  get state(): SessionState {
    return this.conn.state;
  }
  get remoteAddress(): string | undefined {
    return remoteAddressOf(this.socket);
  }
  /** True when the session runs over one stream of an HTTP/2 connection (RFC 8441), false over its own TCP or TLS connection. */
  get http2(): boolean {
    return StreamAdapter.for(this.socket, this.conn.role).http2;
  }
  /** Resolves once, after the stream is released, with how the session ended. Never rejects. */
  get closed(): Promise<CloseInfo> {
    return this.life.whenReleased();
  }
  /** Number of requestWritable() calls that registered a request so far. */
  get writableRequestCount(): number {
    return this.pacer?.requestCount ?? 0;
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
    if (this.conn.state !== 'open') return this.droppedClosed();
    const bytes = toBytes(data);
    // A string was encoded by us: the encoded bytes are ours to keep (no second copy). With
    // `transfer` the caller hands its bytes over (S2's explicit ownership transfer): no copy either.
    const owned = typeof data === 'string' || options.transfer === true;
    if (this.overQueueLimit(bytes.length)) return 'dropped';
    if (this.conn.sendingStream) (this.held ??= new HeldSends()).push(bytes, owned, binary, options.compress ?? true);
    else this.conn.send(bytes, binary, owned, options.compress ?? true);
    if (this.counters !== null) this.counters.sent(binary, bytes.length, true);
    return this.statusAfterSend();
  }

  /**
   * @internal A message built once for many sessions (fan-out): `frame` is
   * its encoded, unmasked frame (`frameBytes` long), shared and never modified; `payload` the
   * library's own copy of it, for a session that must encode it itself.
   */
  sendShared(frame: Buffer[], frameBytes: number, payload: Buffer, binary: boolean, compress: boolean): SendStatus {
    if (this.conn.state !== 'open') return this.droppedClosed();
    if (this.conn.sendingStream || (compress && this.conn.compressesOutput)) return this.send(payload, { binary, compress });
    if (this.overQueueLimit(frameBytes)) return 'dropped';
    this.conn.sendEncoded(frame, binary);
    if (this.counters !== null) this.counters.sent(binary, payload.length, true);
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

  /** Sends everything `source` yields as one fragmented message, pacing itself on bufferedAmount. */
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
   * to the kernel (on the next turn of the event loop if it already has).
   * Returns false if a request is already pending: the pending one answers both.
   */
  requestWritable(): boolean {
    if (this.conn.state !== 'open') throw new InvalidStateError('request a writable callback', this.conn.state);
    return (this.pacer ??= new Pacer(this)).request();
  }

  /**
   * Stops reading from the stream: inbound flow control for an application
   * that cannot keep up. This is the reader pausing itself, never the write
   * side (S1). While paused nothing is read, so pings go unanswered too.
   */
  pauseReading(): void {
    this.gate.set(PauseReason.Application, true);
  }
  /** Resumes reading after pauseReading(). */
  resumeReading(): void {
    this.gate.set(PauseReason.Application, false);
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
   * close frame (S4). onClose fires when the peer has answered and the stream
   * is closed, or after the close timeout. `code` null sends a close frame
   * without a status code (the peer sees 1005).
   */
  close(code: number | null = 1000, reason = ''): void {
    if (this.conn.state !== 'open') return;
    // A stream left open cannot be finished for the application; what waits behind it stays unsent and is reported.
    if (!this.conn.sendingStream) this.flushHeld();
    this.conn.close(code, reason, this.context.now());
    this.life.step({ type: 'close-sent' });
    this.reschedule();
  }

  /** Drops the connection at once, without a closing handshake. */
  terminate(): void {
    // The application ends it now: messages still being inflated are not delivered.
    this.abort('drop');
  }

  /**
   * @internal terminate() as ws has it (sockeye/ws): what was already received is delivered before
   * the close (the rest of the read a handler terminated from, the messages still being inflated),
   * and a fault found in it is reported (test/compat/ws/websocket.test.ts, "terminate() while
   * messages are being decompressed", "terminate() from a 'message' listener").
   */
  terminateKeepingReceived(): void {
    this.abort('all');
  }

  private abort(undelivered: 'drop' | 'all'): void {
    if (this.conn.state !== 'closed') this.conn.transportClosed(new TransportError('ERR_TERMINATED', 'terminated by the application'), undelivered);
    this.destroyStream();
  }

  /** Whole messages as they arrive (sessions without onMessage). Ends after a clean close; throws the error after a failed one. */
  messages(): AsyncIterableIterator<Message> {
    const inbox = this.inbox;
    if (inbox === null) throw new InvalidStateError('iterate messages', 'handled by onMessage (no inbox)');
    return inbox.iterate(
      () => this.lifecycleInfo,
      () => {
        if (this.gate.has(PauseReason.Inbox) && inbox.drained) this.gate.set(PauseReason.Inbox, false);
      },
    );
  }

  // ----------------------------------------------------- internal helpers

  /** @internal used by MessageWriter */
  _writeFragment(chunk: string | Uint8Array, last: boolean, binary: boolean, compress: boolean): SendStatus {
    if (this.conn.state !== 'open') return this.droppedClosed();
    const bytes = toBytes(chunk);
    if (this.overQueueLimit(bytes.length)) return 'dropped';
    this.conn.sendFragment(bytes, binary, last, compress);
    if (this.counters !== null) this.counters.sent(binary, bytes.length, last);
    if (last) this.flushHeld();
    return this.statusAfterSend();
  }

  /** @internal resolves when bufferedAmount is at or below the high-water mark (or the session ends). */
  waitForDrain(): Promise<void> {
    if (this.streamGone) return Promise.resolve();
    return (this.pacer ??= new Pacer(this)).waitForDrain();
  }
}

export { WebSocketError };
