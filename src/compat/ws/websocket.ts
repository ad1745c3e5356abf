import { EventEmitter } from 'node:events';
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { RequestOptions as HttpsRequestOptions } from 'node:https';
import type { Duplex } from 'node:stream';
import { Blob } from 'node:buffer';
import { LimitExceededError, type WebSocketError } from '../../core/errors.js';
import { isValidWireCloseCode } from '../../core/close-codes.js';
import type { MessageCodec } from '../../core/message-codec.js';
import type { Context } from '../../transport/context.js';
import { Session, type MessageWriter } from '../../transport/session.js';
import { toBytes as engineBytes } from '../../transport/message-writer.js';
import type { CloseInfo, Handler, Message } from '../../transport/types.js';
import { toWsError } from './errors.js';
import { addEventListener, attributeListener, removeEventListener, setAttributeListener, WAS_CLEAN, type EventListenerLike } from './event-target.js';
import { limitsOf, WS_DEFAULT_CLOSE_TIMEOUT, type WsCommonOptions, type WsPerMessageDeflateOptions } from './options.js';
import { openClient } from './client-handshake.js';

export type BinaryType = 'nodebuffer' | 'arraybuffer' | 'fragments' | 'blob';

/** What send(), ping() and pong() take: as ws, anything Buffer.from() takes, and a Blob. */
export type WsData = string | Buffer | ArrayBuffer | ArrayBufferView | Blob | number | readonly number[] | { valueOf(): ArrayBuffer | string | readonly number[] };

export type SendCallback = (error?: Error) => void;

/** The client's options: ws's own, and those of https.request() (TLS, agent, headers, auth...). */
export interface WebSocketClientOptions extends WsCommonOptions, Omit<HttpsRequestOptions, 'host' | 'hostname' | 'path' | 'port' | 'protocol' | 'method' | 'timeout' | 'socketPath'> {
  /** Timeout of the opening handshake in ms (reset after each redirect). */
  handshakeTimeout?: number;
  /** Follow 3xx redirects. Default false. */
  followRedirects?: boolean;
  /** Default 10. */
  maxRedirects?: number;
  /** Value of the Origin header (Sec-WebSocket-Origin with protocolVersion 8). */
  origin?: string;
  /** 13 (default) or 8. */
  protocolVersion?: number;
  /** Offer permessage-deflate. Default true, as in ws. */
  perMessageDeflate?: boolean | WsPerMessageDeflateOptions;
  /** Called with each request (the first and every redirect's); it must call request.end(). */
  finishRequest?: (request: ClientRequest, websocket: WebSocket) => void;
  /** Accepted for compatibility; masks always come from the CSPRNG (RFC 6455 section 10.3). */
  generateMask?: (mask: Buffer) => void;
}

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;
const STATE_NAMES = ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'];
const EMPTY = Buffer.alloc(0);
/** Messages parsed while reading is held for allowSynchronousEvents: false wait here; reading pauses past this many. */
const DEFERRED_PAUSE = 64;

/** What the connection needs to run a session over an upgraded socket. */
export interface AttachOptions {
  socket: Duplex;
  head: Buffer;
  role: 'server' | 'client';
  context: Context;
  protocol: string;
  extensions: readonly string[];
  codec: MessageCodec | null;
  options: WsCommonOptions;
  /** Called once after 'close' was emitted (the server's client tracking). */
  onClosed?: (ws: WebSocket) => void;
}

function notOpen(state: number): Error {
  return new Error(`WebSocket is not open: readyState ${state} (${STATE_NAMES[state]})`);
}

/**
 * Bytes of what send() takes, as ws converts it: what the engine takes, by
 * the engine's own conversion; beyond it, nothing as empty, a number as its
 * text, and arrays or objects as Buffer.from() takes them (a TypeError for
 * what it refuses).
 */
export function toBytes(data: Exclude<WsData, Blob> | undefined): Buffer {
  if (data === undefined) return EMPTY;
  if (typeof data === 'number') return Buffer.from(String(data));
  if (typeof data === 'string' || data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return engineBytes(data);
  return Buffer.from(data as never);
}

function isBlob(data: unknown): data is Blob {
  return data instanceof Blob;
}

function toArrayBuffer(buf: Buffer): ArrayBuffer {
  if (buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength && buf.buffer instanceof ArrayBuffer) return buf.buffer;
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
}

function isValidStatusCode(code: unknown): code is number {
  return typeof code === 'number' && Number.isInteger(code) && isValidWireCloseCode(code);
}

/**
 * ws's WebSocket (the client, and the server's socket for each connection)
 * over sockeye's engine: an EventEmitter with ws 8's methods, properties and
 * events, driving one sockeye Session. docs/migrating-from-ws.md lists where
 * it differs from ws and why. Guarded by test/compat/ws/*.test.ts.
 */
export class WebSocket extends EventEmitter {
  static readonly CONNECTING = CONNECTING;
  static readonly OPEN = OPEN;
  static readonly CLOSING = CLOSING;
  static readonly CLOSED = CLOSED;
  /** The module's other exports, on the class as on ws's default export (set by index.ts). */
  static WebSocket: typeof WebSocket;
  static WebSocketServer: typeof import('./websocket-server.js').WebSocketServer;
  static Server: typeof import('./websocket-server.js').WebSocketServer;
  static createWebSocketStream: typeof import('./stream.js').createWebSocketStream;
  // On the prototype (below), enumerable and read-only, as ws has them.
  declare readonly CONNECTING: 0;
  declare readonly OPEN: 1;
  declare readonly CLOSING: 2;
  declare readonly CLOSED: 3;

  #session: Session | null = null;
  #connecting = true;
  #closed = false;
  #isServer: boolean;
  #url = '';
  #protocol = '';
  #extensions = '';
  #binaryType: BinaryType = 'nodebuffer';
  #paused = false;
  #allowSync = true;
  /** Bytes of sends made after close (ws counts them in bufferedAmount). */
  #lateBytes = 0;
  /** Messages handed to the session, and the callbacks waiting for theirs to be written. */
  #messages = 0;
  #callbacks: Array<{ seq: number; cb: SendCallback }> | null = null;
  /** A message being sent in fragments (send with fin: false). */
  #writer: MessageWriter | null = null;
  /** Sends waiting behind a Blob being read (order is kept). */
  #blobQueue: Array<{ data: WsData; options: SendOptions; cb: SendCallback | undefined; close?: { code: number | undefined; text: string } }> | null = null;
  /** Events held for allowSynchronousEvents: false. */
  #deferred: Array<() => void> | null = null;
  #deferredScheduled = false;
  #deferPaused = false;
  #onClosed: ((ws: WebSocket) => void) | undefined;
  /** The handshake failed or was aborted: CLOSING until 'close'. */
  #aborted = false;
  /** As in ws, a socket emits 'error' at most once (test/compat/ws/websocket.test.ts, "'error' is emitted at most once"). */
  #errorEmitted = false;
  #socket: Duplex | null = null;
  #sender: { sendFrame(frame: Buffer | readonly Buffer[], cb?: SendCallback): void } | null = null;
  /** @internal the client's handshake request while it runs (aborted by close() or terminate()). */
  _req: ClientRequest | null = null;
  /** @internal redirects followed so far. */
  _redirects = 0;
  /** @internal where the first request went (credentials follow a redirect only to the same place). */
  _origin: { ipc: boolean; secure: boolean; hostOrPath: string } | null = null;

  constructor(address: string | URL | null, protocols?: string | readonly string[] | WebSocketClientOptions, options?: WebSocketClientOptions) {
    super();
    this.#isServer = address === null;
    if (address === null) return;
    if (protocols !== undefined && protocols !== null && !Array.isArray(protocols) && typeof protocols === 'object') {
      options = protocols as WebSocketClientOptions;
      protocols = [];
    }
    // Anything else that is not a list is one protocol (null among them, refused as not a token), as in ws.
    const list = protocols === undefined ? [] : Array.isArray(protocols) ? [...(protocols as readonly string[])] : [protocols as string];
    this.#allowSync = options?.allowSynchronousEvents ?? true;
    openClient(this, address, list, options ?? {});
  }

  get readyState(): number {
    if (this.#closed) return CLOSED;
    if (this.#aborted) return CLOSING;
    if (this.#connecting) return CONNECTING;
    return this.#session!.state === 'open' ? OPEN : CLOSING;
  }

  get url(): string {
    return this.#url;
  }
  /** @internal */
  set _url(value: string) {
    this.#url = value;
  }
  get protocol(): string {
    return this.#protocol;
  }
  /** The negotiated extensions' names, comma-separated ('' or 'permessage-deflate'), as ws gives them. */
  get extensions(): string {
    return this.#extensions;
  }
  get binaryType(): BinaryType {
    return this.#binaryType;
  }
  set binaryType(type: BinaryType) {
    if (type === 'nodebuffer' || type === 'arraybuffer' || type === 'fragments' || type === 'blob') this.#binaryType = type;
  }
  get isPaused(): boolean {
    return this.#paused;
  }
  /**
   * Bytes accepted by send() and not yet written to the socket (frame headers included). A message
   * waiting for compression counts by its size, as in ws; the engine's extra charge for it bounds
   * maxQueuedBytes only (test/compat/ws/websocket.test.ts, "bufferedAmount counts a message waiting
   * for compression by its size").
   */
  get bufferedAmount(): number {
    return (this.#session?.bufferedPayloadAmount ?? 0) + this.#lateBytes;
  }

  get onopen(): EventListenerLike | null {
    return attributeListener(this, 'open');
  }
  set onopen(listener: EventListenerLike | null) {
    setAttributeListener(this, 'open', listener);
  }
  get onmessage(): EventListenerLike | null {
    return attributeListener(this, 'message');
  }
  set onmessage(listener: EventListenerLike | null) {
    setAttributeListener(this, 'message', listener);
  }
  get onclose(): EventListenerLike | null {
    return attributeListener(this, 'close');
  }
  set onclose(listener: EventListenerLike | null) {
    setAttributeListener(this, 'close', listener);
  }
  get onerror(): EventListenerLike | null {
    return attributeListener(this, 'error');
  }
  set onerror(listener: EventListenerLike | null) {
    setAttributeListener(this, 'error', listener);
  }
  addEventListener(type: string, listener: EventListenerLike, options: { once?: boolean } = {}): void {
    addEventListener(this, type, listener, options);
  }
  removeEventListener(type: string, listener: EventListenerLike): void {
    removeEventListener(this, type, listener);
  }

  /**
   * @internal Runs the WebSocket over an upgraded socket (the server's
   * handleUpgrade, or the client's 'upgrade' response): from here it is OPEN.
   */
  _attach(a: AttachOptions): void {
    this.#protocol = a.protocol;
    this.#extensions = a.extensions.join(',');
    this.#allowSync = a.options.allowSynchronousEvents ?? true;
    this.#onClosed = a.onClosed;
    const session = new Session({
      role: a.role,
      socket: a.socket,
      context: a.context,
      handler: this.#handler() as Handler<unknown>,
      protocol: a.protocol === '' ? undefined : a.protocol,
      extensions: a.extensions,
      codec: a.codec,
      limits: limitsOf(a.options),
      // ws sends no pings of its own: applications run their own heartbeat, if any.
      keepalive: null,
      closeTimeoutMs: a.options.closeTimeout ?? WS_DEFAULT_CLOSE_TIMEOUT,
      head: EMPTY,
      autoPong: a.options.autoPong ?? true,
      // ws's close frames: a reply repeats the peer's reason, a failure's close frame has none
      // (test/compat/ws/websocket.test.ts, "close frames read as ws writes them").
      closeFrames: 'ws',
      onHandlerError: (err) => this.#listenerThrew(err),
    });
    this.#session = session as unknown as Session;
    this.#socket = a.socket;
    this.#connecting = false;
    // Bytes that came with the handshake are read after the caller has had the socket (its
    // listeners attached), as the rest of the stream is.
    if (a.head.length > 0) a.socket.unshift(a.head);
    session.start(EMPTY);
  }

  /** @internal The handshake failed or was aborted: CLOSING, 'error' (if any), then 'close' with 1006. */
  _fail(error: Error | null): void {
    if (this.#closed) return;
    this.#aborted = true;
    process.nextTick(() => {
      if (error) this.#emitError(error);
      this.#emitClose(1006, EMPTY, false);
    });
  }

  #handler(): Handler<Session> {
    // Handler methods are called with the session first; the WebSocket is what they act on.
    // The usual case (allowSynchronousEvents) emits at once, with no closure per message.
    return {
      onMessage: (_s, m) => (this.#allowSync ? this.#emitMessage(m) : this.#event(() => this.#emitMessage(m))),
      onPing: (_s, data) => (this.#allowSync ? this.emit('ping', data) : this.#event(() => this.emit('ping', data))),
      onPong: (_s, data) => (this.#allowSync ? this.emit('pong', data) : this.#event(() => this.emit('pong', data))),
      onWritable: () => this.#settleCallbacks(),
      onError: (_s, err) => this.#onError(err),
      onClose: (_s, info) => this.#onClose(info),
    };
  }

  #listenerThrew(err: unknown): void {
    // A listener that throws escapes as in ws, where it unwinds out of the socket's 'data' handler:
    // it reaches process 'uncaughtException'. The engine has closed this connection with 1011.
    process.nextTick(() => {
      throw err;
    });
  }

  #emitMessage(m: Message): void {
    // As in ws, binaryType applies to binary messages; a text message is always a Buffer.
    if (!m.binary) {
      this.emit('message', m.data, false);
      return;
    }
    let data: Buffer | ArrayBuffer | Buffer[] | Blob;
    switch (this.#binaryType) {
      case 'arraybuffer':
        data = toArrayBuffer(m.data);
        break;
      case 'fragments':
        data = [m.data];
        break;
      case 'blob':
        data = new Blob([m.data]);
        break;
      default:
        data = m.data;
    }
    this.emit('message', data, m.binary);
  }

  /** With allowSynchronousEvents: false, emits one event per turn of the event loop. */
  #event(emit: () => void): void {
    (this.#deferred ??= []).push(emit);
    if (this.#deferred.length >= DEFERRED_PAUSE && !this.#deferPaused && this.#session !== null) {
      this.#deferPaused = true;
      this.#session.pauseReading();
    }
    if (!this.#deferredScheduled) {
      this.#deferredScheduled = true;
      setImmediate(() => this.#emitDeferred());
    }
  }

  #emitDeferred(): void {
    this.#deferredScheduled = false;
    const q = this.#deferred;
    if (q === null || q.length === 0) return;
    const next = q.shift()!;
    if (q.length > 0) {
      this.#deferredScheduled = true;
      setImmediate(() => this.#emitDeferred());
    } else if (this.#deferPaused) {
      this.#deferPaused = false;
      if (!this.#paused) this.#session?.resumeReading();
    }
    next();
  }

  #onError(err: WebSocketError): void {
    // A send over maxQueuedBytes is handled where it was made (send()); terminate() is the application's own act.
    if (err instanceof LimitExceededError && err.limit === 'maxQueuedBytes') return;
    if (err.code === 'ERR_TERMINATED') return;
    const mapped = toWsError(err);
    if (mapped) this.#emitError(mapped);
  }

  /** 'error', unless one was emitted already or the socket has closed: ws emits it at most once, never after 'close'. */
  #emitError(err: unknown): void {
    if (this.#errorEmitted || this.#closed) return;
    this.#errorEmitted = true;
    this.emit('error', err);
  }

  #onClose(info: CloseInfo): void {
    // Messages the engine could not send are the last ones accepted (S4): their callbacks get an error.
    const sentUpTo = this.#messages - info.unsentMessages;
    const pending = this.#callbacks;
    this.#callbacks = null;
    if (pending) {
      // ws's message for them: on a connection with permessage-deflate every message is queued behind
      // the codec's, so what is left unsent was being compressed or waited behind a message that was
      // (test/compat/ws/websocket.test.ts, "a send cut short while compressing").
      const message = this.#extensions === '' ? 'The socket was closed before the data could be written' : 'The socket was closed while data was being compressed';
      for (const { seq, cb } of pending) {
        if (seq <= sentUpTo) cb();
        else cb(new Error(message));
      }
    }
    this.#writer = null;
    // As in ws, 'close' carries the peer's close code: when we failed the connection and no close frame
    // came back, that is 1006, not the code we sent.
    const failed = info.error !== undefined && !info.wasClean;
    const flush = () => this.#emitClose(failed ? 1006 : info.code, failed ? EMPTY : Buffer.from(info.reason), info.wasClean);
    // Deferred events go out before 'close'.
    if (this.#deferred !== null && this.#deferred.length > 0) this.#deferred.push(flush);
    else flush();
  }

  #emitClose(code: number, reason: Buffer, wasClean: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    (this as { [WAS_CLEAN]?: boolean })[WAS_CLEAN] = wasClean;
    // Out of the server's clients before 'close' listeners run, as in ws.
    this.#onClosed?.(this);
    this.emit('close', code, reason);
  }

  #settleCallbacks(): void {
    const pending = this.#callbacks;
    if (pending === null) return;
    this.#callbacks = null;
    for (const { cb } of pending) cb();
  }

  #whenWritten(cb: SendCallback): void {
    (this.#callbacks ??= []).push({ seq: this.#messages, cb });
    this.#session!.requestWritable();
  }

  #late(data: WsData | undefined, cb: SendCallback | undefined): void {
    if (data !== undefined && !isBlob(data)) this.#lateBytes += toBytes(data).length;
    else if (isBlob(data)) this.#lateBytes += data.size;
    if (cb) {
      const err = notOpen(this.readyState);
      process.nextTick(cb, err);
    }
  }

  /**
   * Sends a message (or, with `fin: false`, a fragment of one: the sends that
   * follow continue it until one has `fin` true). `cb` is called once the
   * message has been written to the socket, or with the error that stopped it.
   */
  send(data?: WsData, options?: SendOptions | SendCallback, cb?: SendCallback): void {
    if (typeof options === 'function') {
      cb = options;
      options = {};
    }
    const opts: SendOptions = options ?? {};
    if (typeof data === 'number') data = String(data);
    // ws sends an empty message for send() without data.
    if (data === undefined) data = EMPTY;
    const state = this.readyState;
    if (state === CONNECTING) throw notOpen(CONNECTING);
    if (state !== OPEN) {
      this.#late(data, cb);
      return;
    }
    if (isBlob(data) || this.#blobQueue !== null) {
      this.#queueBlob(data, opts, cb);
      return;
    }
    this.#sendNow(data, opts, cb);
  }

  #sendNow(data: Exclude<WsData, Blob>, opts: SendOptions, cb: SendCallback | undefined): void {
    const session = this.#session!;
    if (session.state !== 'open') {
      this.#late(data, cb);
      return;
    }
    const binary = opts.binary ?? typeof data !== 'string';
    const compress = opts.compress ?? true;
    const fin = opts.fin ?? true;
    const payload = typeof data === 'string' ? data : toBytes(data);
    let status;
    if (!fin || this.#writer !== null) {
      const writer = (this.#writer ??= session.stream({ binary, compress }));
      if (fin) {
        this.#writer = null;
        status = writer.end(payload);
      } else status = writer.write(payload);
    } else {
      status = session.send(payload, { binary, compress });
    }
    if (fin) this.#messages++;
    if (status === 'dropped') {
      this.#queueFull(cb);
      return;
    }
    if (cb) this.#whenWritten(cb);
  }

  /** A send over maxQueuedBytes: the message cannot go, so the connection fails (nothing is skipped silently, S4). */
  #queueFull(cb: SendCallback | undefined): void {
    const session = this.#session!;
    const err = new LimitExceededError('maxQueuedBytes', `send dropped: ${session.bufferedAmount} bytes already wait to be written (maxQueuedBytes); the connection is closed with 1008`, 1008);
    if (cb) process.nextTick(cb, err);
    if (this.listenerCount('error') > 0) this.#emitError(err);
    session.close(1008, 'send queue full');
  }

  #queueBlob(data: WsData, opts: SendOptions, cb: SendCallback | undefined): void {
    const q = (this.#blobQueue ??= []);
    q.push({ data, options: opts, cb });
    if (q.length === 1) void this.#drainBlobs();
  }

  async #drainBlobs(): Promise<void> {
    const q = this.#blobQueue!;
    while (q.length > 0) {
      const { data, options, cb, close } = q[0];
      if (close) {
        q.length = 0;
        this.#blobQueue = null;
        this.close(close.code, close.text);
        return;
      }
      let bytes: Exclude<WsData, Blob>;
      if (isBlob(data)) {
        try {
          bytes = Buffer.from(await data.arrayBuffer());
        } catch (err) {
          // A Blob that cannot be read leaves a hole in the messages: the connection fails (S4), as in ws.
          // Its callback and those of the sends behind it get the error, then 'error' follows unless the
          // socket has closed (test/compat/ws/websocket.test.ts, "a Blob that cannot be read").
          this.#failBlobQueue(err as Error, () => {
            this.#emitError(err);
            if (this.readyState === OPEN) this.#session!.close(1011, 'a Blob could not be read');
          });
          return;
        }
        if (this.readyState !== OPEN) {
          // As in ws, the sends queued behind the Blob get the same error (test/compat/ws/websocket.test.ts,
          // "terminate() while a Blob is read").
          this.#failBlobQueue(new Error('The socket was closed while the blob was being read'));
          return;
        }
      } else bytes = data;
      q.shift();
      if (this.readyState !== OPEN) this.#late(bytes, cb);
      else this.#sendNow(bytes, isBlob(data) ? { binary: true, ...options } : options, cb);
    }
    this.#blobQueue = null;
  }

  /** Every send waiting in the Blob queue fails with `err` on the next tick, as ws calls them; `then` runs after them. */
  #failBlobQueue(err: Error, then?: () => void): void {
    const q = this.#blobQueue!;
    this.#blobQueue = null;
    process.nextTick(() => {
      for (const { cb } of q) if (cb) cb(err);
      then?.();
    });
  }

  /** Sends a ping (at most 125 bytes). `mask` is accepted for compatibility: a client always masks, a server never does (RFC 6455 section 5.1). */
  ping(data?: WsData | SendCallback, mask?: boolean | SendCallback, cb?: SendCallback): void {
    this.#control('ping', data, mask, cb);
  }

  /** Sends an unsolicited pong, or answers a ping by hand (with autoPong: false). */
  pong(data?: WsData | SendCallback, mask?: boolean | SendCallback, cb?: SendCallback): void {
    this.#control('pong', data, mask, cb);
  }

  #control(kind: 'ping' | 'pong', data: WsData | SendCallback | undefined, mask: boolean | SendCallback | undefined, cb: SendCallback | undefined): void {
    if (this.readyState === CONNECTING) throw notOpen(CONNECTING);
    if (typeof data === 'function') {
      cb = data;
      data = undefined;
    } else if (typeof mask === 'function') cb = mask;
    if (typeof data === 'number') data = String(data);
    if (this.readyState !== OPEN || this.#session!.state !== 'open') {
      this.#late(data, cb);
      return;
    }
    if (isBlob(data)) {
      // A Blob is read first; the ping or pong goes out once it has been read.
      void data.arrayBuffer().then((ab) => this.#control(kind, Buffer.from(ab), undefined, cb));
      return;
    }
    const bytes = data === undefined ? EMPTY : toBytes(data);
    if (bytes.length > 125) throw new RangeError('The data size must not be greater than 125 bytes');
    if (kind === 'ping') this.#session!.ping(bytes);
    else this.#session!.pong(bytes);
    if (cb) this.#whenWritten(cb);
  }

  /**
   * Starts the closing handshake: what is queued goes first, then the close
   * frame. Without a code the close frame has none (the peer sees 1005).
   */
  close(code?: number, reason?: string | Buffer): void {
    const state = this.readyState;
    if (state === CLOSED) return;
    if (state === CONNECTING) {
      this.#abortHandshake('WebSocket was closed before the connection was established');
      return;
    }
    if (code !== undefined && !isValidStatusCode(code)) throw new TypeError('First argument must be a valid error code number');
    const text = reason === undefined ? '' : typeof reason === 'string' ? reason : reason.toString();
    if (Buffer.byteLength(text) > 123) throw new RangeError('The message must not be greater than 123 bytes');
    if (state === CLOSING) return;
    if (this.#blobQueue !== null) {
      // Sends waiting for a Blob to be read go first (S4): the close is queued behind them.
      this.#blobQueue.push({ data: EMPTY, options: {}, cb: undefined, close: { code, text } });
      return;
    }
    if (this.#writer !== null) {
      // A message left unfinished cannot be closed mid-way (RFC 6455 section 5.4): it is ended empty first.
      this.#writer.end();
      this.#writer = null;
    }
    this.#session!.close(code === undefined ? null : code, code === undefined ? '' : text);
  }

  /** Destroys the socket at once, without a closing handshake ('close' comes with 1006). */
  terminate(): void {
    const state = this.readyState;
    if (state === CLOSED) return;
    if (state === CONNECTING) {
      this.#abortHandshake('WebSocket was closed before the connection was established');
      return;
    }
    // CLOSING after a failed handshake has no session: 'close' is on its way. As in ws, messages
    // already received and still being decompressed are emitted before 'close'.
    this.#session?.terminateKeepingReceived();
  }

  #abortHandshake(message: string): void {
    const req = this._req;
    this._req = null;
    if (req) {
      // The request may have handed its socket back to an agent already (a response that ended): it goes too.
      const socket = req.socket;
      req.destroy();
      if (socket && !socket.destroyed) socket.destroy();
    }
    const err = new Error(message);
    this._fail(err);
  }

  /** Stops reading (and so emitting) until resume(); a no-op while CONNECTING or CLOSED. */
  pause(): void {
    const state = this.readyState;
    if (state === CONNECTING || state === CLOSED) return;
    this.#paused = true;
    this.#session?.pauseReading();
  }

  resume(): void {
    const state = this.readyState;
    if (state === CONNECTING || state === CLOSED) return;
    this.#paused = false;
    if (!this.#deferPaused) this.#session?.resumeReading();
  }

  /** @internal the request and response of a client's handshake, for 'upgrade' and 'unexpected-response'. */
  _emitUpgrade(res: IncomingMessage): void {
    this.emit('upgrade', res);
  }

  /** @internal the client is open: 'open' is emitted. */
  _opened(): void {
    this.emit('open');
  }

  /** @internal */
  get _isServer(): boolean {
    return this.#isServer;
  }

  /**
   * The socket under the WebSocket (null before it is open), as ws has it:
   * applications and libraries read `ws._socket.remoteAddress`.
   */
  get _socket(): Duplex | null {
    return this.#socket;
  }

  /**
   * ws's sender, reduced to the one method libraries use: `sendFrame(frame,
   * cb)` sends a frame another library built once for many sockets (the
   * socket.io adapter's broadcast, through engine.io), without building it
   * again. The frame is shared, never modified.
   */
  get _sender(): { sendFrame(frame: Buffer | readonly Buffer[], cb?: SendCallback): void } | null {
    if (this.#session === null) return null;
    return (this.#sender ??= { sendFrame: (frame, cb) => this.#sendFrame(frame, cb) });
  }

  #sendFrame(frame: Buffer | readonly Buffer[], cb: SendCallback | undefined): void {
    let parts = Buffer.isBuffer(frame) ? [frame] : [...frame];
    // The header's first two bytes are read from the first part (joined first in the odd case they are split).
    if (parts[0].length < 2) parts = [Buffer.concat(parts)];
    const head = parts[0];
    const opcode = head[0] & 0x0f;
    // A prebuilt frame is a whole, unmasked data frame (a server's); anything else is refused.
    if (this.readyState !== OPEN || this.#session!.state !== 'open') {
      this.#late(Buffer.concat(parts), cb);
      return;
    }
    if ((head[0] & 0xf0) !== 0x80 || (head[1] & 0x80) !== 0 || (opcode !== 1 && opcode !== 2)) throw new TypeError('sendFrame takes a whole, unmasked text or binary frame');
    const len7 = head[1] & 0x7f;
    const headerLength = len7 < 126 ? 2 : len7 === 126 ? 4 : 10;
    let total = 0;
    for (const p of parts) total += p.length;
    // ws's frame() gives [header, payload]: the payload is then its own part, with nothing to join.
    const payload = parts.length === 2 && head.length === headerLength ? parts[1] : Buffer.concat(parts, total).subarray(headerLength);
    const status = this.#session!.sendShared(parts, total, payload, opcode === 2, false);
    this.#messages++;
    if (status === 'dropped') {
      this.#queueFull(cb);
      return;
    }
    if (cb) this.#whenWritten(cb);
  }
}

export interface SendOptions {
  /** Send as binary (default: true unless data is a string). */
  binary?: boolean;
  /** Compress when permessage-deflate was agreed (default true). */
  compress?: boolean;
  /** Last fragment of the message (default true). */
  fin?: boolean;
  /** Accepted for compatibility: a client always masks, a server never does (RFC 6455 section 5.1). */
  mask?: boolean;
}

// As in ws: the ready-state constants on the class and on the prototype, enumerable and read-only; the
// attributes enumerable (code that copies or inspects a socket's properties finds them).
for (const [name, value] of [['CONNECTING', CONNECTING], ['OPEN', OPEN], ['CLOSING', CLOSING], ['CLOSED', CLOSED]] as const) {
  const descriptor = { enumerable: true, writable: false, configurable: false, value };
  Object.defineProperty(WebSocket, name, descriptor);
  Object.defineProperty(WebSocket.prototype, name, descriptor);
}
for (const name of ['binaryType', 'bufferedAmount', 'extensions', 'isPaused', 'protocol', 'readyState', 'url', 'onopen', 'onmessage', 'onclose', 'onerror']) {
  const descriptor = Object.getOwnPropertyDescriptor(WebSocket.prototype, name);
  if (descriptor) Object.defineProperty(WebSocket.prototype, name, { ...descriptor, enumerable: true });
}
