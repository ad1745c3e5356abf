import { constants as h2constants, type ClientHttp2Session } from 'node:http2';
import { TransportError } from '../core/errors.js';
import type { TimerEntry, TimerWheel } from './timer-wheel.js';

/**
 * One WebSocket's hold on a stream slot of a pooled HTTP/2 connection: told
 * when the connection goes away (GOAWAY), given back with release() once its
 * stream has closed.
 */
export interface Http2Member {
  /** The peer sent GOAWAY with `code` (RFC 9113 section 6.8); streams already open may go on. */
  goaway(code: number): void;
}

/** A client HTTP/2 connection of the pool: how many streams it carries and how many it may. */
export class PooledHttp2Connection implements TimerEntry {
  readonly session: ClientHttp2Session;
  /** Streams opened or reserved on it (a WebSocket's slot is reserved before its stream opens). */
  inUse = 0;
  /** The peer's SETTINGS_MAX_CONCURRENT_STREAMS, our own cap where lower (RFC 9113 section 5.1.2). */
  readonly maxStreams: number;
  /** No new streams: GOAWAY received, or the connection is closing. */
  retired = false;
  readonly members = new Set<Http2Member>();
  wheelSlot?: number;
  wheelPrev?: TimerEntry | null;
  wheelNext?: TimerEntry | null;
  private readonly onIdle: (c: PooledHttp2Connection) => void;

  constructor(session: ClientHttp2Session, maxStreams: number, onIdle: (c: PooledHttp2Connection) => void) {
    this.session = session;
    this.maxStreams = maxStreams;
    this.onIdle = onIdle;
  }

  onTimer(): void {
    this.onIdle(this);
  }
}

/** What acquire() needs to know of the caller. */
export interface Http2AcquireOptions {
  /** Most connections to this origin (this pool) at once. */
  maxConnections: number;
  /** How long a connection with no stream stays open for the next WebSocket. */
  idleTimeoutMs: number;
  /** Opens a new connection: resolves once the peer's SETTINGS allow RFC 8441 (or rejects, see unavailable). */
  dial(): Promise<ClientHttp2Session>;
  /** True for a dial error that says the origin does not do WebSockets over HTTP/2 (remembered for the origin). */
  unavailable(error: unknown): boolean;
}

interface Waiter {
  resolve(c: PooledHttp2Connection): void;
  reject(e: unknown): void;
}

interface Origin {
  readonly connections: PooledHttp2Connection[];
  readonly waiters: Waiter[];
  /** A dial in progress (one at a time per origin: it may bring room for every waiter). */
  dialing: boolean;
  /** Why this origin cannot be reached over HTTP/2, once a dial has said so. */
  unavailable: unknown;
  options: Http2AcquireOptions;
}

/**
 * The client's HTTP/2 connections, by origin (scheme, host, port and TLS
 * settings: the caller's key), one pool per Context. A WebSocket takes a
 * stream slot on a connection with room under the peer's
 * SETTINGS_MAX_CONCURRENT_STREAMS; when every connection is full a new one
 * is opened, up to maxConnections; beyond that the WebSocket waits in a
 * queue for a slot (its handshake timeout still runs). A connection whose
 * last stream has closed is closed after idleTimeoutMs, and does not keep
 * the process alive meanwhile. test/client/http2.test.ts ("shares one
 * connection", "limits").
 */
export class Http2Pool {
  private readonly origins = new Map<string, Origin>();
  private readonly timers: TimerWheel;
  private closed = false;
  /** TLS option objects to small numbers, for keys (a connection is shared only under the same TLS options). */
  private readonly tlsIds = new WeakMap<object, number>();
  private nextTlsId = 1;

  constructor(timers: TimerWheel) {
    this.timers = timers;
  }

  /** A number for the identity of `options` (0 for none), for building keys. */
  idOf(options: object | undefined): number {
    if (options === undefined) return 0;
    let id = this.tlsIds.get(options);
    if (id === undefined) this.tlsIds.set(options, (id = this.nextTlsId++));
    return id;
  }

  /** The open connections to `key` (for tests and diagnostics). */
  connections(key: string): readonly PooledHttp2Connection[] {
    return this.origins.get(key)?.connections ?? [];
  }

  /**
   * A stream slot on a connection to `key`. `cancel()` gives up the wait
   * (timeout, abort); once resolved, the slot is the caller's until release().
   */
  acquire(key: string, options: Http2AcquireOptions): { promise: Promise<PooledHttp2Connection>; cancel(): void } {
    if (this.closed) return { promise: Promise.reject(new TransportError('ERR_ABORTED', 'the context was closed')), cancel: () => undefined };
    let origin = this.origins.get(key);
    if (origin === undefined) {
      origin = { connections: [], waiters: [], dialing: false, unavailable: undefined, options };
      this.origins.set(key, origin);
    }
    origin.options = options;
    if (origin.unavailable !== undefined) return { promise: Promise.reject(origin.unavailable), cancel: () => undefined };
    let waiter!: Waiter;
    const promise = new Promise<PooledHttp2Connection>((resolve, reject) => (waiter = { resolve, reject }));
    origin.waiters.push(waiter);
    this.pump(key, origin);
    const o = origin;
    return {
      promise,
      cancel: () => {
        const i = o.waiters.indexOf(waiter);
        if (i !== -1) o.waiters.splice(i, 1);
      },
    };
  }

  /** Gives back a slot taken by acquire(): the stream has closed. */
  release(key: string, connection: PooledHttp2Connection, member: Http2Member | null): void {
    if (member !== null) connection.members.delete(member);
    connection.inUse--;
    const origin = this.origins.get(key);
    if (connection.inUse === 0) this.idle(connection, origin);
    if (origin !== undefined) this.pump(key, origin);
  }

  /**
   * A connection with no stream left waits idleTimeoutMs for the next
   * WebSocket without holding the process open, then closes
   * (test/client/http2.test.ts, "idle connections close").
   */
  private idle(connection: PooledHttp2Connection, origin: Origin | undefined): void {
    if (connection.session.closed) return;
    if (connection.retired || this.closed || origin === undefined) {
      connection.session.close();
      return;
    }
    connection.session.unref();
    this.timers.schedule(connection, this.timers.now() + origin.options.idleTimeoutMs);
  }

  /** Hands free slots to waiters, and dials when they need more room than the connections have. */
  private pump(key: string, origin: Origin): void {
    while (origin.waiters.length > 0) {
      const c = origin.connections.find((x) => !x.retired && x.inUse < x.maxStreams);
      if (c === undefined) break;
      c.inUse++;
      if (c.inUse === 1) {
        this.timers.cancel(c);
        c.session.ref();
      }
      origin.waiters.shift()!.resolve(c);
    }
    if (origin.waiters.length === 0 || origin.dialing) return;
    const open = origin.connections.filter((x) => !x.retired).length;
    if (open >= origin.options.maxConnections) return;
    origin.dialing = true;
    const options = origin.options;
    options.dial().then(
      (session) => {
        origin.dialing = false;
        if (this.closed) {
          session.destroy();
          return;
        }
        const connection = this.add(key, origin, session);
        this.pump(key, origin);
        // Its waiters may have given up meanwhile (timeout, abort): unused, it is idle from the start.
        if (connection.inUse === 0) this.idle(connection, origin);
      },
      (err: unknown) => {
        origin.dialing = false;
        if (options.unavailable(err)) origin.unavailable = err;
        // The waiters would all meet the same failure: each gets it (and falls back to HTTP/1.1, or fails).
        for (const w of origin.waiters.splice(0)) w.reject(err);
        if (origin.connections.length === 0 && origin.unavailable === undefined) this.origins.delete(key);
      },
    );
  }

  private add(key: string, origin: Origin, session: ClientHttp2Session): PooledHttp2Connection {
    // RFC 9113 section 6.5.2: no limit until the peer sets one; node's own queueing is never relied on.
    const peerMax = session.remoteSettings.maxConcurrentStreams ?? 0xffffffff;
    const connection = new PooledHttp2Connection(session, Math.max(1, peerMax), (c) => {
      if (c.inUse === 0) this.retire(c, true);
    });
    origin.connections.push(connection);
    session.on('goaway', (code: number) => {
      // node closes the connection itself after a GOAWAY (at once for an error code, once its streams end for NO_ERROR).
      this.retire(connection, false);
      for (const m of [...connection.members]) m.goaway(code);
    });
    session.on('error', () => undefined);
    session.once('close', () => {
      this.retire(connection, false);
      const i = origin.connections.indexOf(connection);
      if (i !== -1) origin.connections.splice(i, 1);
      if (origin.connections.length === 0 && origin.waiters.length === 0 && origin.unavailable === undefined && !origin.dialing) this.origins.delete(key);
      else this.pump(key, origin);
    });
    return connection;
  }

  private retire(connection: PooledHttp2Connection, close: boolean): void {
    this.timers.cancel(connection);
    connection.retired = true;
    if (close && !connection.session.closed) connection.session.close();
  }

  /**
   * Closes every connection (the context is closing): idle ones at once,
   * busy ones once their streams have ended (GOAWAY first, RFC 9113 section
   * 6.8); waiters are told.
   */
  close(): void {
    this.closed = true;
    for (const origin of this.origins.values()) {
      for (const w of origin.waiters.splice(0)) w.reject(new TransportError('ERR_ABORTED', 'the context was closed'));
      for (const c of origin.connections) {
        this.timers.cancel(c);
        c.retired = true;
        if (!c.session.closed) {
          if (c.inUse === 0) c.session.destroy();
          else c.session.close();
        }
      }
    }
  }
}

/** NO_ERROR (RFC 9113 section 7): a GOAWAY that is a graceful shutdown. */
export const HTTP2_NO_ERROR: number = h2constants.NGHTTP2_NO_ERROR;
/** REFUSED_STREAM (RFC 9113 section 7): the stream was not processed and may be retried (section 8.7). */
export const HTTP2_REFUSED_STREAM: number = h2constants.NGHTTP2_REFUSED_STREAM;
