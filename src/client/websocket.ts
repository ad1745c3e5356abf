import { Blob } from 'node:buffer';
import { isArrayBuffer } from 'node:util/types';
import { connect, type ClientSession, type ConnectOptions } from './connect.js';
import { DEFAULT_SESSION_LIMITS, type CloseInfo, type Message } from '../transport/types.js';
import { CloseEvent, EventHandlers, toUSVString, type EventHandler } from './dom-events.js';
import { checkPolicy, jitteredDelay, retryable, type RetryPolicy, type RetryReason } from './reconnect.js';
import { WebSocketError } from '../core/errors.js';

/**
 * The standard WebSocket's third argument, sockeye's own (undici and Deno
 * have one too): connect()'s options, less those the class owns
 * (`protocol` is the second argument; the handler, `onError` and `signal`
 * are the class's).
 */
export type WebSocketOptions = Omit<ConnectOptions, 'protocol' | 'handler' | 'onError' | 'signal'> & {
  /**
   * Not in the standard: after a close worth retrying (see retryable():
   * refused, reset, HTTP 5xx, close 1001, 1006, 1011, 1012, 1013...), the
   * same object connects again under this policy (true: the default one).
   * Each drop fires its error and close events as usual; readyState then
   * goes back to CONNECTING, and `open` fires again once connected. close()
   * stops it. test/client/websocket-reconnect.test.ts.
   */
  reconnect?: RetryPolicy | true;
};

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;
type ReadyState = typeof CONNECTING | typeof OPEN | typeof CLOSING | typeof CLOSED;

type BinaryType = 'blob' | 'arraybuffer';
type SendData = string | ArrayBuffer | ArrayBufferView | Blob;

/** A message event, its `data` typed: a string, a Blob or an ArrayBuffer (Node's MessageEvent says `any`). */
type WebSocketMessageEvent = Omit<MessageEvent, 'data'> & { readonly data: string | Blob | ArrayBuffer };

/** What each event type carries, for typed listeners. */
interface WebSocketEventMap {
  open: Event;
  message: WebSocketMessageEvent;
  error: Event;
  close: CloseEvent;
}
type Listener<E> = ((this: WebSocket, event: E) => unknown) | { handleEvent(event: E): unknown };
/** EventTarget's own listener and option types (Node declares them in a module of its types, not globally). */
type EventListenerLike = Parameters<EventTarget['addEventListener']>[1];
type AddOptions = Parameters<EventTarget['addEventListener']>[2];
type RemoveOptions = Parameters<EventTarget['removeEventListener']>[2];

/** A message that waits behind a Blob being read, so that messages leave in the order send() took them. */
interface Waiting {
  /** Null while the Blob is read. */
  bytes: Uint8Array | null;
  blob: Blob | null;
  binary: boolean;
  size: number;
}

/** RFC 6455 section 5.5: a control frame's payload is at most 125 bytes, 2 of them the close code. */
const MAX_REASON_BYTES = 123;

/**
 * The WebSocket class of the WHATWG WebSockets Standard, over connect():
 * the handshake, the frames and the closing handshake are the ClientSession's;
 * this class adds the standard's states, errors, events and attribute rules.
 *
 * Every event is fired from a task of its own (setImmediate), never inside
 * send() or close(), in the order the standard queues them ("Feedback from
 * the protocol"). Guarded by test/client/websocket.test.ts and, against
 * undici's implementation, test/interop/undici-websocket.test.ts.
 */
export class WebSocket extends EventTarget {
  static readonly CONNECTING = CONNECTING;
  static readonly OPEN = OPEN;
  static readonly CLOSING = CLOSING;
  static readonly CLOSED = CLOSED;
  // On the prototype too (below), as Web IDL puts an interface's constants.
  declare readonly CONNECTING: typeof CONNECTING;
  declare readonly OPEN: typeof OPEN;
  declare readonly CLOSING: typeof CLOSING;
  declare readonly CLOSED: typeof CLOSED;

  readonly #url: URL;
  /** The serialization of the URL's origin: every message event's `origin`. */
  readonly #origin: string;
  #state: ReadyState = CONNECTING;
  #session: ClientSession | null = null;
  #protocol = '';
  #extensions = '';
  #binaryType: BinaryType = 'blob';
  readonly #handlers = new EventHandlers<WebSocket>(this);
  #abort = new AbortController();
  readonly #connectOptions: ConnectOptions;
  /** The reconnect option's policy, or null. */
  readonly #retry: RetryPolicy | null;
  /** Attempts since the last connection that opened (reconnect option). */
  #attempts = 0;
  /** The wait before the next attempt (reconnect option). */
  #retryTimer: NodeJS.Timeout | null = null;
  /** close() was called: no more attempts. */
  #closeCalled = false;
  /** Subprotocols were offered: the server must select one. */
  readonly #offersProtocols: boolean;
  /**
   * The connection was failed on our side (close() while CONNECTING) or
   * closed after being flagged as full: the close event follows an error
   * event, as when the connection failed by itself.
   */
  #failed = false;
  /**
   * Open and message tasks queued and not yet run. The session learns of the
   * server's close frame (the closing handshake is started, and readyState
   * becomes CLOSING) after every message that came before it: while such
   * tasks wait, readyState stays OPEN for them.
   */
  #earlierTasks = 0;

  // bufferedAmount, in three parts (see its getter).
  /** Bytes handed to the session and maybe not yet transmitted. */
  #handedOver = 0;
  /** A send happened in the current task: what it handed over counts whole until the task ends. */
  #sentThisTask = false;
  #waiting: Waiting[] = [];
  #waitingBytes = 0;
  /** Bytes of sends that were never to be transmitted: made while CLOSING or CLOSED, or refused as full. */
  #neverSent = 0;
  /** close() while a Blob was being read: the closing handshake starts after the messages ahead of it. */
  #closeRequest: { code: number | null; reason: string } | null = null;

  // Inbound flow control: messages waiting for their tasks are bounded (S3).
  #inboundBytes = 0;
  #readingPaused = false;
  readonly #pauseReadingAt: number;
  readonly #resumeReadingAt: number;

  /**
   * Opens a connection to `url` ("new WebSocket(url, protocols)"), offering
   * `protocols`. Throws a "SyntaxError" DOMException for a URL that does not
   * parse, a scheme other than ws, wss, http or https, a fragment, or a
   * protocol that is not a token or is repeated.
   */
  constructor(url: string | URL, protocols: string | Iterable<string> = [], options: WebSocketOptions = {}) {
    super();
    if (arguments.length === 0) throw new TypeError("Failed to construct 'WebSocket': 1 argument required, but only 0 present.");
    this.#url = urlRecord(url);
    this.#origin = this.#url.origin;
    const offered = protocolList(protocols);
    this.#offersProtocols = offered.length > 0;
    const highWaterMark = options.limits?.highWaterMark ?? DEFAULT_SESSION_LIMITS.highWaterMark;
    this.#pauseReadingAt = highWaterMark * 16;
    this.#resumeReadingAt = highWaterMark * 8;
    const { reconnect, ...sessionOptions } = options;
    this.#retry = reconnect === undefined ? null : reconnect === true ? {} : reconnect;
    if (this.#retry !== null) checkPolicy(this.#retry);
    this.#connectOptions = {
      ...sessionOptions,
      protocol: offered,
      handler: {
        onOpen: (session) => this.#established(session),
        onMessage: (_session, message) => this.#received(message),
        onClose: (_session, info) => this.#closed(info),
      },
    };
    this.#establish();
  }

  /**
   * "Run this step in parallel: establish a WebSocket connection". A failed handshake (refused,
   * not 101, TLS, timeout, aborted by close()) is one outcome for the script: error, then close 1006
   * (the standard's warning under "Feedback from the protocol" forbids telling them apart).
   */
  #establish(): void {
    connect(this.#url.href, { ...this.#connectOptions, signal: this.#abort.signal }).catch((err: unknown) => this.#closed(null, err));
  }

  /** The URL, serialized, with the scheme ws: or wss: (http: and https: were rewritten). */
  get url(): string {
    return this.#url.href;
  }
  get readyState(): ReadyState {
    return this.#readyState();
  }
  /**
   * Bytes of application data queued by send() and not yet transmitted
   * ("bufferedAmount"): text as UTF-8, binary data, Blobs still being read.
   * What a send handed over in the current task counts whole until the task
   * ends; after that, what the session still holds (its count includes frame
   * headers, so the value may lag by a few bytes per frame until it drains).
   * Sends made while CLOSING or CLOSED are counted and never sent: the value
   * then only grows, as the standard says.
   */
  get bufferedAmount(): number {
    if (this.#handedOver > 0 && !this.#sentThisTask) {
      const held = this.#session?.bufferedAmount ?? 0;
      if (held < this.#handedOver) this.#handedOver = held;
    }
    return this.#handedOver + this.#waitingBytes + this.#neverSent;
  }
  /** The extensions the server accepted (its Sec-WebSocket-Extensions), or the empty string. */
  get extensions(): string {
    return this.#extensions;
  }
  /** The subprotocol the server selected, or the empty string. */
  get protocol(): string {
    return this.#protocol;
  }
  /** How binary messages are delivered: 'blob' (the default) or 'arraybuffer'. */
  get binaryType(): BinaryType {
    return this.#binaryType;
  }
  set binaryType(value: BinaryType) {
    // An enumeration attribute: a value that is not one of its strings is ignored (Web IDL).
    const type = String(value);
    if (type === 'blob' || type === 'arraybuffer') this.#binaryType = type;
  }

  get onopen(): EventHandler<WebSocket, Event> {
    return this.#handlers.get('open');
  }
  set onopen(handler: EventHandler<WebSocket, Event>) {
    this.#handlers.set('open', handler);
  }
  get onmessage(): EventHandler<WebSocket, WebSocketMessageEvent> {
    return this.#handlers.get('message');
  }
  set onmessage(handler: EventHandler<WebSocket, WebSocketMessageEvent>) {
    this.#handlers.set('message', handler);
  }
  get onerror(): EventHandler<WebSocket, Event> {
    return this.#handlers.get('error');
  }
  set onerror(handler: EventHandler<WebSocket, Event>) {
    this.#handlers.set('error', handler);
  }
  get onclose(): EventHandler<WebSocket, CloseEvent> {
    return this.#handlers.get('close') as EventHandler<WebSocket, CloseEvent>;
  }
  set onclose(handler: EventHandler<WebSocket, CloseEvent>) {
    this.#handlers.set('close', handler);
  }

  /** EventTarget's, typed by event: `message` gets a MessageEvent, `close` a CloseEvent. */
  override addEventListener<K extends keyof WebSocketEventMap>(type: K, listener: Listener<WebSocketEventMap[K]> | null, options?: AddOptions): void;
  override addEventListener(type: string, listener: EventListenerLike | null, options?: AddOptions): void;
  override addEventListener(type: string, listener: EventListenerLike | null, options?: AddOptions): void {
    if (listener !== null) super.addEventListener(type, listener, options);
  }
  override removeEventListener<K extends keyof WebSocketEventMap>(type: K, listener: Listener<WebSocketEventMap[K]> | null, options?: RemoveOptions): void;
  override removeEventListener(type: string, listener: EventListenerLike | null, options?: RemoveOptions): void;
  override removeEventListener(type: string, listener: EventListenerLike | null, options?: RemoveOptions): void {
    if (listener !== null) super.removeEventListener(type, listener, options);
  }

  /**
   * Sends a message ("send(data)"): a string as text, an ArrayBuffer, a view
   * or a Blob as binary. Throws an "InvalidStateError" DOMException while
   * CONNECTING. While CLOSING or CLOSED, the data is only counted in
   * bufferedAmount. The bytes are copied before send() returns; a Blob is
   * read asynchronously, and what is sent after it waits for it.
   */
  send(data: SendData): void {
    if (arguments.length === 0) throw new TypeError("Failed to execute 'send' on 'WebSocket': 1 argument required, but only 0 present.");
    const state = this.#readyState();
    if (state === CONNECTING) throw new DOMException("Failed to execute 'send' on 'WebSocket': still in CONNECTING state.", 'InvalidStateError');
    // Web IDL's union (BufferSource or Blob or USVString): anything else is converted to a string.
    let bytes: Uint8Array | null = null;
    let blob: Blob | null = null;
    let owned = false;
    let binary = true;
    if (isArrayBuffer(data)) bytes = new Uint8Array(data);
    else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    else if (data instanceof Blob) blob = data;
    else {
      if (typeof data === 'symbol') throw new TypeError("Failed to execute 'send' on 'WebSocket': a symbol cannot be converted to a string.");
      // Buffer.from encodes a lone surrogate as U+FFFD, as the USVString conversion would.
      bytes = Buffer.from(String(data), 'utf8');
      owned = true;
      binary = false;
    }
    const size = blob !== null ? blob.size : bytes!.byteLength;
    // "If the WebSocket connection is established and the WebSocket closing handshake has not yet
    // started": otherwise nothing is sent, but bufferedAmount still grows by the data's size.
    if (state !== OPEN) {
      this.#neverSent += size;
      return;
    }
    this.#markSent();
    if (blob === null && this.#waiting.length === 0) {
      this.#transmit(bytes!, binary, owned, size);
      return;
    }
    // Behind a Blob: the bytes are copied now (S2), the Blob's read; the message leaves in its turn.
    const item: Waiting = { bytes: bytes === null ? null : owned ? bytes : Buffer.from(bytes), blob, binary, size };
    this.#waiting.push(item);
    this.#waitingBytes += size;
    if (blob !== null) {
      blob.arrayBuffer().then(
        (buffer) => {
          item.bytes = new Uint8Array(buffer);
          item.blob = null;
          this.#flushWaiting();
        },
        () => this.#failBlob(),
      );
    }
  }

  /**
   * Closes the connection ("close(code, reason)"). Throws an
   * "InvalidAccessError" DOMException for a code other than 1000 or
   * 3000-4999, a "SyntaxError" DOMException for a reason over 123 UTF-8
   * bytes. While CONNECTING it fails the connection (the handshake is
   * aborted: error, then close with 1006); while OPEN it starts the closing
   * handshake after the messages already sent.
   */
  close(code?: number, reason?: string): void {
    let closeCode: number | null = null;
    if (code !== undefined) {
      closeCode = clampUnsignedShort(code);
      if (closeCode !== 1000 && (closeCode < 3000 || closeCode > 4999)) {
        throw new DOMException(`Failed to execute 'close' on 'WebSocket': the code must be either 1000, or between 3000 and 4999. ${closeCode} is neither.`, 'InvalidAccessError');
      }
    }
    let closeReason = '';
    if (reason !== undefined) {
      closeReason = toUSVString(reason);
      const length = Buffer.byteLength(closeReason, 'utf8');
      if (length > MAX_REASON_BYTES) {
        throw new DOMException(`Failed to execute 'close' on 'WebSocket': the reason must not be longer than ${MAX_REASON_BYTES} UTF-8 bytes (it is ${length}).`, 'SyntaxError');
      }
    }
    this.#closeCalled = true;
    if (this.#retryTimer !== null) {
      // Closed and waiting to connect again (the reconnect option): no more attempts.
      clearTimeout(this.#retryTimer);
      this.#retryTimer = null;
    }
    const state = this.#readyState();
    if (state === CLOSING || state === CLOSED) return;
    this.#state = CLOSING;
    if (state === CONNECTING) {
      // "If the WebSocket connection is not yet established: fail the WebSocket connection". A session
      // whose open task has not run yet is failed too: the script never saw it open.
      this.#failed = true;
      if (this.#session !== null) this.#session.terminate();
      else this.#abort.abort();
      return;
    }
    // "Start the WebSocket closing handshake": no body without code and reason; a reason alone goes
    // with 1000, as the WebSockets Standard's pending text says (whatwg/websockets PR 48, which undici follows).
    if (closeCode === null && closeReason !== '') closeCode = 1000;
    if (this.#waiting.length > 0) this.#closeRequest = { code: closeCode, reason: closeReason };
    else this.#session?.close(closeCode, closeReason);
  }

  // ------------------------------------------------------------ internals

  /** The ready state, with the CLOSING of a closing handshake the server started (see #earlierTasks). */
  #readyState(): ReadyState {
    if (this.#state === OPEN && this.#earlierTasks === 0 && this.#session !== null && this.#session.state !== 'open') this.#state = CLOSING;
    return this.#state;
  }

  /** Marks that the current task sent something, until the task is over (a later turn of the event loop). */
  #markSent(): void {
    if (this.#sentThisTask) return;
    this.#sentThisTask = true;
    setImmediate(() => {
      this.#sentThisTask = false;
    });
  }

  #transmit(bytes: Uint8Array, binary: boolean, owned: boolean, size: number): void {
    const session = this.#session!;
    if (session.send(bytes, { binary, transfer: owned }) !== 'dropped') {
      this.#handedOver += size;
      return;
    }
    this.#neverSent += size;
    // Dropped while the session is open: its queue is full (maxQueuedBytes). "If the data cannot be
    // sent, e.g. because it would need to be buffered but the buffer is full, the user agent must flag
    // the WebSocket as full and then close the WebSocket connection."
    if (session.state === 'open') {
      this.#failed = true;
      session.terminate();
    }
  }

  /** Sends what waited behind a Blob, in order, up to the next Blob still being read; then a close() that waited. */
  #flushWaiting(): void {
    let i = 0;
    for (; i < this.#waiting.length; i++) {
      const item = this.#waiting[i];
      if (item.bytes === null) break;
      this.#waitingBytes -= item.size;
      this.#transmit(item.bytes, item.binary, true, item.size);
    }
    this.#waiting.splice(0, i);
    if (this.#waiting.length === 0 && this.#closeRequest !== null) {
      const { code, reason } = this.#closeRequest;
      this.#closeRequest = null;
      this.#session?.close(code, reason);
    }
  }

  /** A Blob could not be read: its message cannot be sent, nor what waits behind it. */
  #failBlob(): void {
    this.#neverSent += this.#waitingBytes;
    this.#waitingBytes = 0;
    this.#waiting = [];
    this.#closeRequest = null;
    if (this.#session !== null && this.#session.state === 'open') {
      this.#failed = true;
      this.#session.terminate();
    }
  }

  /** The session's onOpen: "when the WebSocket connection is established, queue a task". */
  #established(session: ClientSession): void {
    this.#session = session;
    // "If protocols is not the empty list and extracting header list values given
    // `Sec-WebSocket-Protocol` and response's header list results in null, failure, or the empty
    // byte sequence, then fail the WebSocket connection" (RFC 6455 leaves this to the client; the
    // standard does not).
    if (this.#offersProtocols && !session.protocol) this.#failed = true;
    if (this.#failed) {
      // Or close() came while the handshake was finishing: the connection is failed all the same.
      session.terminate();
      return;
    }
    this.#earlierTasks++;
    setImmediate(() => {
      try {
        if (this.#state !== CONNECTING) return;
        this.#state = OPEN;
        this.#attempts = 0;
        this.#extensions = session.responseHeaders.get('sec-websocket-extensions')?.join(', ') ?? '';
        this.#protocol = session.protocol ?? '';
        this.dispatchEvent(new Event('open'));
      } finally {
        this.#earlierTasks--;
      }
    });
  }

  /** The session's onMessage: "when a WebSocket message has been received, queue a task". */
  #received(message: Message): void {
    const { binary, data } = message;
    this.#earlierTasks++;
    this.#inboundBytes += data.length;
    if (!this.#readingPaused && this.#inboundBytes > this.#pauseReadingAt) {
      this.#readingPaused = true;
      this.#session?.pauseReading();
    }
    setImmediate(() => {
      try {
        // "If ready state is not OPEN, then return": a message behind close() is not delivered.
        if (this.#readyState() !== OPEN) return;
        // The binary type is read when the task runs, not when the message came (the standard's note).
        let payload: string | Blob | ArrayBuffer;
        if (!binary) payload = data.toString('utf8');
        else if (this.#binaryType === 'blob') payload = new Blob([data]);
        else payload = ownArrayBuffer(data);
        this.dispatchEvent(new MessageEvent('message', { data: payload, origin: this.#origin }));
      } finally {
        this.#earlierTasks--;
        this.#inboundBytes -= data.length;
        if (this.#readingPaused && this.#inboundBytes <= this.#resumeReadingAt) {
          this.#readingPaused = false;
          if (this.#session?.state === 'open') this.#session.resumeReading();
        }
      }
    });
  }

  /** "When the WebSocket connection is closed, possibly cleanly, queue a task": `info` null if it was never established. */
  #closed(info: CloseInfo | null, error?: unknown): void {
    setImmediate(() => {
      this.#state = CLOSED;
      // Nothing more will be transmitted; what the session held was dropped with it.
      this.#handedOver = 0;
      // Without a close frame from the server (refused, failed, lost, timed out) the close code is 1006
      // (RFC 6455 section 7.1.5) and an error event comes first.
      const clean = info !== null && info.wasClean && !this.#failed;
      if (!clean) this.dispatchEvent(new Event('error'));
      this.dispatchEvent(new CloseEvent('close', { wasClean: clean, code: clean ? info.code : 1006, reason: clean ? info.reason : '' }));
      this.#maybeReconnect(info, error);
    });
  }

  /**
   * The reconnect option, after a close event: another attempt when the
   * close (or the failure to connect) is worth one and the policy allows
   * it, and close() was not called (not even from the close event's
   * listeners). The object starts afresh: CONNECTING, nothing buffered.
   */
  #maybeReconnect(info: CloseInfo | null, error: unknown): void {
    const policy = this.#retry;
    if (policy === null || this.#closeCalled) return;
    let reason: RetryReason;
    if (info !== null) reason = { kind: 'closed', close: info };
    else if (error instanceof WebSocketError) reason = { kind: 'failed', error };
    else return;
    if (!(policy.retryOn ?? retryable)(reason)) return;
    this.#attempts++;
    if (this.#attempts > (policy.maxAttempts ?? Infinity)) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#state = CONNECTING;
      this.#session = null;
      this.#failed = false;
      this.#protocol = '';
      this.#extensions = '';
      this.#handedOver = 0;
      this.#neverSent = 0;
      this.#waiting = [];
      this.#waitingBytes = 0;
      this.#closeRequest = null;
      this.#abort = new AbortController();
      this.#establish();
    }, jitteredDelay(policy, this.#attempts));
  }
}

// Web IDL: an interface's constants are on its constructor and its prototype, read-only; its
// attributes and operations are enumerable.
for (const [name, value] of [['CONNECTING', CONNECTING], ['OPEN', OPEN], ['CLOSING', CLOSING], ['CLOSED', CLOSED]] as const) {
  const descriptor = { enumerable: true, writable: false, configurable: false, value };
  Object.defineProperty(WebSocket, name, descriptor);
  Object.defineProperty(WebSocket.prototype, name, descriptor);
}
for (const name of ['url', 'readyState', 'bufferedAmount', 'extensions', 'protocol', 'binaryType', 'onopen', 'onmessage', 'onerror', 'onclose', 'send', 'close']) {
  const descriptor = Object.getOwnPropertyDescriptor(WebSocket.prototype, name);
  if (descriptor) Object.defineProperty(WebSocket.prototype, name, { ...descriptor, enumerable: true });
}
Object.defineProperty(WebSocket.prototype, Symbol.toStringTag, { value: 'WebSocket', configurable: true });

/**
 * "Get a URL record" (the constructor's first steps): parse, http(s) to
 * ws(s), then only ws: and wss: without a fragment. There is no API base URL
 * outside a document, so a relative URL does not parse.
 */
function urlRecord(input: string | URL): URL {
  const text = toUSVString(input);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new DOMException(`Failed to construct 'WebSocket': the URL '${text}' is invalid.`, 'SyntaxError');
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new DOMException(`Failed to construct 'WebSocket': the URL's scheme must be either 'ws' or 'wss'. '${url.protocol.slice(0, -1)}' is not allowed.`, 'SyntaxError');
  }
  // The fragment is non-null even when empty ("ws://host/#"): the serialization keeps its '#'.
  if (url.href.includes('#')) {
    throw new DOMException(`Failed to construct 'WebSocket': the URL contains a fragment identifier ('${url.hash || '#'}'). Fragment identifiers are not allowed in WebSocket URLs.`, 'SyntaxError');
  }
  return url;
}

/**
 * The protocols argument as a list ("If protocols is a string, set protocols
 * to a sequence consisting of just that string"), each a token of RFC 2616
 * (RFC 6455 section 4.1: "non-empty strings with characters in the range
 * U+0021 to U+007E not including separator characters"), none repeated.
 * Repeats are found without regard to ASCII case, as web-platform-tests
 * require (websockets/Create-protocols-repeated-case-insensitive.any.js).
 */
function protocolList(protocols: unknown): string[] {
  const list = typeof protocols === 'object' && protocols !== null && Symbol.iterator in protocols ? [...(protocols as Iterable<unknown>)].map((p) => String(p)) : [String(protocols)];
  const seen = new Set<string>();
  for (const protocol of list) {
    const folded = protocol.toLowerCase();
    if (!TOKEN.test(protocol) || seen.has(folded)) {
      throw new DOMException(`Failed to construct 'WebSocket': the subprotocol '${protocol}' is ${seen.has(folded) ? 'duplicated' : 'invalid'}.`, 'SyntaxError');
    }
    seen.add(folded);
  }
  return list;
}
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Web IDL's [Clamp] unsigned short: clamped to 0-65535, rounded to the nearest integer, ties to even; NaN is 0. */
function clampUnsignedShort(value: unknown): number {
  const n = Number(value);
  if (Number.isNaN(n)) return 0;
  const x = Math.min(Math.max(n, 0), 65535);
  const floor = Math.floor(x);
  const fraction = x - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** An ArrayBuffer holding exactly `data` (the session's buffer when it is exactly that, otherwise a copy). */
function ownArrayBuffer(data: Buffer): ArrayBuffer {
  const buffer = data.buffer;
  if (data.byteOffset === 0 && data.byteLength === buffer.byteLength && isArrayBuffer(buffer)) return buffer;
  return new Uint8Array(data).buffer;
}
