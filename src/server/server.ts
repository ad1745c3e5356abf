import { chmod, lstat, unlink } from 'node:fs/promises';
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type TlsOptions } from 'node:tls';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse, ServerHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { KeepaliveOptions } from '../core/connection.js';
import { DEFAULT_CLOSE_TIMEOUT_MS, resolveLimits } from '../core/connection.js';
import { HandshakeError, InvalidArgumentError, InvalidStateError, TransportError, WebSocketError } from '../core/errors.js';
import { acceptKey, buildRejectResponse, buildUpgradeResponse, validateExtendedConnect, validateUpgradeRequest } from '../core/handshake.js';
import { HttpHeadParser, type HttpHead } from '../core/http-head.js';
import { negotiateDeflate, validateDeflateConfig } from '../core/deflate-negotiation.js';
import { formatExtensions, type ExtensionOffer } from '../core/extension-header.js';
import type { MessageCodec } from '../core/message-codec.js';
import { DeflateCodec, validateZlibOptions, type PerMessageDeflateOptions } from '../transport/permessage-deflate.js';
import { Context } from '../transport/context.js';
import type { Session } from '../transport/session.js';
import type { TimerEntry } from '../transport/timer-wheel.js';
import { DEFAULT_KEEPALIVE, type Handler, type SessionLimits } from '../transport/types.js';
import { ServerSession, type UpgradeRequest } from './server-session.js';
import { HandshakeRequest, headOfRequest, splitTarget } from './handshake-request.js';
import { Topics } from '../pubsub/topics.js';
import { fanOut, type FanOutOptions, type FanOutResult } from '../pubsub/fan-out.js';
import type { Broker } from '../pubsub/broker.js';
import { BrokerBinding, type DurableEnvelope } from '../pubsub/broker-binding.js';
import { encodeClosePayload } from '../core/close-payload.js';
import { isEncrypted, remoteAddressOf } from '../transport/stream-adapter.js';
import type { CloseInfo } from '../transport/types.js';
import { ServerMetrics, validateMetricsOptions, type MetricsOptions, type MetricsSnapshot } from './metrics.js';
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus } from './prometheus.js';
import { Http2Front, validateHttp2Options, type Http2Options } from './http2-front.js';
import { headOfHttp2Request, Http2HandshakeRequest } from './http2-request.js';

/** The answer of verifyClient: true accepts; false answers 403; an object answers its status. */
export type VerifyResult = boolean | { status: number; message?: string; headers?: Record<string, string> };

/**
 * A handler whose sessions carry `T` as `session.data` (an empty object until
 * assigned). Without a type argument, `data` is `unknown`: usable only after
 * narrowing, never `any` (test/types/generics.test.ts).
 */
export type ServerHandler<T = unknown> = Handler<ServerSession<T>>;

export interface ServerOptions<T = unknown> {
  /** Port to listen on (0 picks a free one). Default 7681, as libwebsockets' test server. */
  port?: number;
  /** Address to listen on. Default '127.0.0.1': listening on every interface is a choice to make explicitly ('0.0.0.0' or '::'). */
  host?: string;
  /** Serve wss:// with these TLS options (key and cert at least). */
  tls?: TlsOptions;
  /** Attach to an existing node:http or node:https server through its 'upgrade' event instead of listening. */
  server?: HttpServer;
  /** Accept upgrades only at this path (others get 404). Default: any path. */
  path?: string;
  /** Handlers by subprotocol name; the first protocol the client offers that is here is chosen. */
  protocols?: Record<string, ServerHandler<T>>;
  /** Handler for clients that ask for no subprotocol, or for none that the server has. */
  handler?: ServerHandler<T>;
  /** Keepalive for every session (protocols may override). Default ping after 30 s quiet, hang up after 60 s. null disables. */
  keepalive?: KeepaliveOptions | null;
  limits?: Partial<SessionLimits>;
  /**
   * Accept permessage-deflate (RFC 7692) when a client offers it. Default
   * false. A protocol handler's own perMessageDeflate overrides it (false
   * declines compression for that subprotocol).
   */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  /** Wait this long for the peer's close frame. Default 5000 ms. */
  closeTimeoutMs?: number;
  /** The whole opening handshake must arrive within this time. Default 10000 ms. */
  handshakeTimeoutMs?: number;
  /** Largest HTTP head (431 above). Default 16384 bytes. */
  maxHeadBytes?: number;
  /** Most header fields (431 above). Default 100. */
  maxHeaders?: number;
  /**
   * Whether `session.request.headers` stays readable for the whole session
   * (default true). With false, the headers are released once `onOpen`
   * returns, and reading them later throws an InvalidStateError; `url`,
   * `path`, `query`, `host`, `origin`, `protocols`, `remoteAddress` and
   * `secure` stay. Every idle connection otherwise keeps its upgrade
   * request's text: 0.5-1 KB for a browser's, with a cookie.
   */
  retainRequestHeaders?: boolean;
  /**
   * Serves plain HTTP requests on the same port (libwebsockets' "HTTP on the
   * same port"): a request without an Upgrade header is handed, bytes
   * untouched, to an internal node:http server that calls this. Keep-alive
   * HTTP connections that later ask for an upgrade still become WebSockets.
   * Without it, such requests are answered 426. Over HTTP/2 it gets node:http2's
   * compatibility objects (Http2ServerRequest, Http2ServerResponse), which
   * have the same url, method, headers, writeHead(), setHeader() and end().
   */
  onHttpRequest?(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void;
  /**
   * WebSockets over HTTP/2 (RFC 8441) on the same port. With `tls`, on by
   * default: ALPN offers "h2" and "http/1.1", and a connection that chose h2
   * runs HTTP/2, advertising SETTINGS_ENABLE_CONNECT_PROTOCOL; HTTP/1.1
   * connections are served exactly as without it. Without TLS, off by
   * default; `true` (or an Http2Options object) turns on cleartext HTTP/2
   * with prior knowledge (h2c, RFC 9113 section 3.3): a connection that
   * begins with the HTTP/2 preface runs HTTP/2, any other HTTP/1.1. `false`
   * turns HTTP/2 off. Not used by a server attached to a node:http server.
   */
  http2?: boolean | Http2Options;
  /** Decides whether to accept a client (origin checks, auth). */
  verifyClient?: (request: UpgradeRequest) => VerifyResult | Promise<VerifyResult>;
  /** Errors that belong to no session's handler: a handler that threw, a failed handshake. Default: printed to stderr. */
  onError?(error: unknown, session?: ServerSession<T>): void;
  context?: Context;
  /**
   * Carries publish() to the other nodes of a deployment (LocalBroker,
   * ClusterBroker, ...). Default none: this server is the only node, and
   * publish() is a local fan-out with no broker on its path. The server
   * attaches it, and closes it on close() and shutdown(). Its failures
   * (lost publications, a node down) go to onError, naming the topics.
   */
  broker?: Broker;
  /**
   * What subscribers of a durable topic are sent for each publication, built
   * from its offset and payload, so that clients can resume
   * (session.resume()): called once per publication on this node, the frame
   * then built once for every subscriber. Default none: the payload as
   * published (the offset is then not sent).
   */
  envelope?: DurableEnvelope;
  /**
   * Serves server.metrics() in the Prometheus text format on the server's own
   * port: `{ path: '/metrics' }` answers GET and HEAD on that path (before
   * onHttpRequest, which gets every other plain request). Default none: the
   * path is then an ordinary one. Not with `server` (answer
   * renderPrometheus(wsServer.metrics()) from that server's handler).
   */
  metrics?: MetricsOptions;
}

/** Where listen() makes a unix domain socket. */
export interface UnixListenOptions {
  path: string;
  /** Permission bits of the socket file (e.g. 0o660). Default: as the process's umask leaves them. */
  mode?: number;
}

/**
 * Before listening on `path`: a socket file left by a server that is gone
 * (nothing accepts a connection on it) is removed; a socket a live server
 * listens on is left alone, and listen() then fails with EADDRINUSE; any
 * other file is never removed.
 */
async function removeStaleSocket(path: string): Promise<void> {
  let stat;
  try {
    stat = await lstat(path);
  } catch {
    return; // nothing there
  }
  if (!stat.isSocket()) throw new TransportError('ERR_LISTEN', `cannot listen on ${path}: the file exists and is not a socket`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = netConnect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (!live) await unlink(path).catch(() => undefined);
}

export interface ShutdownOptions {
  /** Close code sent to every session: 1012 "service restart" (default) or 1001 "going away", or any code a server may send. */
  code?: number;
  /** Close reason. Default 'service restart'. */
  reason?: string;
  /** Sessions still there after this long are terminated (1006). Default: none (each is bounded by its closeTimeoutMs). */
  timeoutMs?: number;
}

/** How a shutdown() went. */
export interface ShutdownResult {
  /** Sessions that were open or closing when it began. */
  sessions: number;
  /** Of those, the ones still there at timeoutMs, terminated. */
  terminated: number;
}

interface PendingHandshake extends TimerEntry {
  socket: Duplex;
}

/**
 * A WebSocket server: listens (ws or wss) or attaches to an HTTP server,
 * performs the opening handshake, routes to a handler by subprotocol, and
 * runs sessions.
 */
export class WebSocketServer<T = unknown> {
  readonly options: ServerOptions<T>;
  readonly context: Context;
  private readonly protocols: Map<string, ServerHandler>;
  private netServer: NetServer | null = null;
  private readonly attached: HttpServer | null;
  private readonly sessions = new Set<ServerSession>();
  private readonly topics: Topics<ServerSession<never>>;
  private readonly brokerBinding: BrokerBinding<ServerSession<never>> | null;
  // One function for every session (a closure per session made inside the
  // handshake would keep that handshake's whole scope alive with it).
  private readonly onSessionHandlerError = (err: unknown, s: Session<never>): void => this.report(err, s as unknown as ServerSession);
  private readonly onSessionFinished = (s: Session<never>, info: CloseInfo): void => {
    this.sessions.delete(s as unknown as ServerSession);
    this.topics.removeAll(s as unknown as ServerSession<never>);
    this.counts.closed(info.code);
  };
  /** What server.metrics() reports; its session counters are shared by every session of this server. */
  private readonly counts = new ServerMetrics();
  /** ServerOptions.metrics.path, validated; null without the endpoint. */
  private readonly metricsPath: string | null;
  /** Limits per handler, resolved once and shared by its sessions (read only). */
  private readonly handlerLimits = new WeakMap<ServerHandler, Partial<SessionLimits>>();
  private readonly handshakes = new Set<PendingHandshake>();
  private closing = false;
  /** Internal node:http server for onHttpRequest (never listens; sockets are handed to it). */
  private httpHandoff: HttpServer | null = null;
  private readonly httpSockets = new Set<Socket>();
  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => this.handleUpgrade(req, socket, head);
  /** HTTP/2 on the listening port (made on the first HTTP/2 connection), or null. */
  private h2: Http2Front | null = null;

  constructor(options: ServerOptions<T> = {}) {
    this.options = options;
    this.context = options.context ?? new Context();
    // Stored without their data type: each session gets its handler's, the server only routes.
    this.protocols = new Map(Object.entries((options.protocols ?? {}) as Record<string, ServerHandler>));
    // A bad permessage-deflate configuration fails here, at start-up, not at the first client.
    for (const pmd of [options.perMessageDeflate, options.handler?.perMessageDeflate, ...[...this.protocols.values()].map((h) => h.perMessageDeflate)]) {
      if (pmd && pmd !== true) {
        validateDeflateConfig(pmd);
        validateZlibOptions(pmd);
      }
    }
    this.metricsPath = validateMetricsOptions(options.metrics, options.server !== undefined);
    if (typeof options.http2 === 'object' && options.http2 !== null) validateHttp2Options(options.http2);
    this.attached = options.server ?? null;
    if (this.attached) this.attached.on('upgrade', this.onUpgrade);
    // With a broker, its binding owns the topics: it hears of each topic's first and last subscriber.
    this.brokerBinding = options.broker ? new BrokerBinding<ServerSession<never>>(options.broker, (err) => this.report(err), undefined, this.counts.broker, options.envelope ?? null) : null;
    this.topics = this.brokerBinding?.topics ?? new Topics<ServerSession<never>>();
  }

  private limitsFor(handler: ServerHandler): Partial<SessionLimits> {
    let l = this.handlerLimits.get(handler);
    if (!l) {
      const merged = { ...this.options.limits, ...handler.limits };
      l = { ...merged, ...resolveLimits(merged) };
      this.handlerLimits.set(handler, l);
    }
    return l;
  }

  /** Sessions that are open or closing. */
  get clients(): ReadonlySet<ServerSession<T>> {
    return this.sessions as unknown as ReadonlySet<ServerSession<T>>;
  }

  /**
   * Sends one message to every open session (or those `filter` accepts).
   * The payload is copied once and the frame built once, then written to
   * each session (sessions with permessage-deflate compress their own copy).
   * Each session's limits apply: a session over maxQueuedBytes drops it and
   * gets an onError, as with send(). Returns how many accepted and dropped it.
   */
  broadcast(data: string | Uint8Array, options: FanOutOptions & { filter?: (session: ServerSession<T>) => boolean } = {}): FanOutResult {
    const filter = options.filter;
    // Timed once per call, not per session (sockeye_fanout_duration_seconds).
    const started = this.context.now();
    const result = fanOut(filter ? filtered(this.sessions, filter as (s: ServerSession) => boolean) : this.sessions, data, options);
    this.counts.broadcast.observe((this.context.now() - started) / 1000);
    return result;
  }

  /**
   * Sends one message to every session subscribed to `topic` (session.subscribe()), as broadcast() does,
   * and, with a broker, to the other nodes' subscribers. The result counts this node's sessions.
   * On a durable topic (broker.keepsHistory()) every node's subscribers, this one's included, get it
   * through the durable store with its offset: the result then counts none.
   */
  publish(topic: string, data: string | Uint8Array, options: FanOutOptions = {}): FanOutResult {
    const started = this.context.now();
    const result = this.brokerBinding ? this.brokerBinding.publish(topic, data, options) : fanOut(this.topics.subscribers(topic), data, options);
    this.counts.publish.observe((this.context.now() - started) / 1000);
    return result;
  }

  /**
   * The server's counters now: connections, handshakes refused, messages and
   * bytes each way, dropped sends, backpressure, queued bytes, keepalive
   * round-trip times, fan-out durations and the broker's publications
   * (docs/api.md, "Metrics"). A new object each call; counting itself costs a
   * few additions where each event happens (test/server/metrics.test.ts).
   */
  metrics(): MetricsSnapshot {
    return this.counts.snapshot(this.sessions);
  }

  /** Subscribers of `topic` on every node of the broker (this server's count without one). */
  clusterSubscriberCount(topic: string): Promise<number> {
    if (this.brokerBinding) return this.brokerBinding.broker.subscriberCount(topic);
    return Promise.resolve(this.subscriberCount(topic));
  }

  /** Number of sessions subscribed to `topic`. */
  subscriberCount(topic: string): number {
    return this.topics.subscribers(topic).size;
  }

  /** The address the server listens on (after listen() on a port). */
  address(): AddressInfo {
    const a = (this.netServer ?? this.attached)?.address();
    if (typeof a === 'string') throw new InvalidStateError('read the address', `listening on the unix socket ${a} (see socketPath)`);
    if (!a) throw new InvalidStateError('read the address', 'not listening');
    return a;
  }

  /** The path of the unix socket the server listens on (after listen({ path })), else undefined. */
  get socketPath(): string | undefined {
    const a = this.netServer?.address();
    return typeof a === 'string' ? a : undefined;
  }

  get port(): number {
    return this.address().port;
  }

  /** Starts listening on a TCP port; resolves with the bound address. */
  listen(port?: number, host?: string): Promise<AddressInfo>;
  /**
   * Starts listening on a unix domain socket at `path`, its file made with
   * permissions `mode` (e.g. 0o660; default: as the umask leaves them). A
   * stale socket file that nothing listens on any more is replaced; a live
   * one (EADDRINUSE) or a file that is not a socket is an error
   * (test/server/unix-socket.test.ts).
   */
  listen(options: UnixListenOptions): Promise<{ path: string }>;
  listen(portOrUnix?: number | UnixListenOptions, host?: string): Promise<AddressInfo | { path: string }> {
    if (typeof portOrUnix === 'object') return this.listenUnix(portOrUnix);
    return this.listenTcp(portOrUnix ?? this.options.port ?? 7681, host ?? this.options.host ?? '127.0.0.1');
  }

  private async listenUnix(options: UnixListenOptions): Promise<{ path: string }> {
    const { path, mode } = options;
    if (typeof path !== 'string' || path === '') throw new InvalidArgumentError('ERR_BAD_PATH', 'listen({ path }) needs the path of a unix socket');
    if (mode !== undefined && !(Number.isInteger(mode) && mode >= 0 && mode <= 0o777)) throw new InvalidArgumentError('ERR_BAD_MODE', `mode must be permission bits from 0 to 0o777, not ${String(mode)}`);
    await removeStaleSocket(path);
    await this.bind((server) => server.listen(path));
    if (mode !== undefined) await chmod(path, mode);
    return { path };
  }

  private listenTcp(port: number, host: string): Promise<AddressInfo> {
    return this.bind((server) => server.listen(port, host)).then((server) => server.address() as AddressInfo);
  }

  /** Makes the listening server and starts it with `start`; resolves once it listens. */
  private bind(start: (server: NetServer) => void): Promise<NetServer> {
    if (this.attached) throw new InvalidStateError('listen', 'attached to an HTTP server');
    if (this.netServer) throw new InvalidStateError('listen', 'already listening');
    const onSocket = (socket: Socket) => this.acceptSocket(socket, !!this.options.tls);
    let server: NetServer;
    if (this.options.tls) {
      // RFC 7301: h2 first, so that a client offering both gets HTTP/2 (RFC 9113 section 3.2).
      const ALPNProtocols = this.http2Enabled ? ['h2', 'http/1.1'] : ['http/1.1'];
      const tlsServer = createTlsServer({ ALPNProtocols, handshakeTimeout: this.options.handshakeTimeoutMs ?? 10_000, noDelay: true, ...this.options.tls }, onSocket);
      // A client that sends garbage instead of a ClientHello harms only itself.
      tlsServer.on('tlsClientError', (err, socket) => {
        socket.destroy();
        this.counts.tlsFailures++;
        this.report(new WebSocketError('ERR_TLS_HANDSHAKE', `TLS handshake failed: ${err.message}`, 1015, { cause: err }));
      });
      server = tlsServer;
    } else {
      // TCP_NODELAY set as each connection is accepted (cheaper than a setNoDelay() call per socket).
      server = createNetServer({ noDelay: true }, onSocket);
    }
    this.netServer = server;
    return new Promise((resolve, reject) => {
      // Every error sockeye reports is a WebSocketError (docs/api.md, "Errors"); Node's (EADDRINUSE,
      // EACCES...) is its cause, and the server may listen again (test/integration/failures.test.ts).
      const failed = (err: Error) => {
        this.netServer = null;
        reject(new TransportError('ERR_LISTEN', err.message, { cause: err }));
      };
      server.once('error', failed);
      server.once('listening', () => {
        server.off('error', failed);
        server.on('error', (err) => this.report(err));
        resolve(server);
      });
      start(server);
    });
  }

  /**
   * Stops accepting, closes every session with `code` (1001 "going away" by
   * default), waits for them to finish (each bounded by its close timeout),
   * closes the broker, if any, and releases the timers.
   */
  async close(code = 1001, reason = 'server shutting down'): Promise<void> {
    await this.drain(code, reason, undefined);
  }

  /**
   * Graceful shutdown, for a restart or a deploy: stops accepting at once
   * (new connections are refused, pending handshakes dropped), closes every
   * session with `code` (1012 "service restart" by default, so clients know to
   * reconnect, or 1001), each after what it has queued (S4), and resolves
   * once the last connection has gone. With `timeoutMs`, the sessions still
   * there then are terminated, and the result says how many. The broker, if
   * any, is closed last. Throws InvalidStateError if the server is already
   * closing, and InvalidArgumentError for a code a server may not send.
   */
  shutdown(options: ShutdownOptions = {}): Promise<ShutdownResult> {
    const { code = 1012, reason = 'service restart', timeoutMs } = options;
    if (this.closing) throw new InvalidStateError('shut down the server', 'closing');
    // A bad code or reason fails here, before anything has stopped.
    encodeClosePayload(code, reason);
    if (timeoutMs !== undefined && !(timeoutMs >= 0)) throw new InvalidArgumentError('ERR_BAD_TIMEOUT', `timeoutMs is a number of ms, 0 or more (got ${timeoutMs})`);
    return this.drain(code, reason, timeoutMs);
  }

  private async drain(code: number, reason: string, timeoutMs: number | undefined): Promise<ShutdownResult> {
    this.closing = true;
    const serverClosed = this.netServer
      ? new Promise<void>((resolve) => this.netServer!.close(() => resolve()))
      : Promise.resolve();
    if (this.attached) this.attached.off('upgrade', this.onUpgrade);
    for (const h of this.handshakes) {
      this.context.timers.cancel(h);
      h.socket.destroy();
    }
    this.handshakes.clear();
    // GOAWAY on every HTTP/2 connection: no new stream; its WebSockets close below like the others.
    this.h2?.close();
    // node:http only tracks connections of a listening server, so the handed-off sockets are tracked here.
    for (const sock of this.httpSockets) sock.destroy();
    this.httpSockets.clear();
    // Stops node:http's connection-checking interval (close() of a server that never listened only reports that).
    this.httpHandoff?.close(() => {});
    const all = [...this.sessions];
    const remaining = new Set(all);
    const gone = Promise.all(all.map((s) => s.closed.then(() => remaining.delete(s))));
    for (const s of all) s.close(code, reason);
    let terminated = 0;
    if (timeoutMs !== undefined && remaining.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const late = await Promise.race([gone.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), timeoutMs)))]);
      clearTimeout(timer);
      // Each is reported as it ends (onClose 1006 ERR_TERMINATED, with its unsent messages counted: S4).
      if (late) {
        for (const s of remaining) {
          if (s.lifecycleState === 'released') continue;
          terminated++;
          s.terminate();
        }
      }
    }
    await gone;
    // HTTP requests still open on an HTTP/2 connection would keep it (and the listener) up.
    this.h2?.destroy();
    await serverClosed;
    await this.brokerBinding?.close().catch((err: unknown) => this.report(err));
    if (!this.options.context) this.context.close();
    return { sessions: all.length, terminated };
  }

  /**
   * Handles an HTTP upgrade request from a node:http server (what `server`
   * in the options wires up; callable directly for custom routing).
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    void this.upgrade(socket, headOfRequest(req), head, isEncrypted(socket));
  }

  /** HTTP/2 is on for connections this server accepts (see ServerOptions.http2). */
  private get http2Enabled(): boolean {
    const h2 = this.options.http2;
    return h2 === undefined ? !!this.options.tls : h2 !== false;
  }

  /** The HTTP/2 front, made when the first HTTP/2 connection comes. */
  private http2Front(): Http2Front {
    if (this.h2) return this.h2;
    const h2 = this.options.http2;
    const front = new Http2Front(
      {
        ...(typeof h2 === 'object' ? h2 : {}),
        handshakeTimeoutMs: this.options.handshakeTimeoutMs ?? 10_000,
        maxHeadBytes: this.options.maxHeadBytes ?? 16384,
        maxHeaders: this.options.maxHeaders ?? 100,
      },
      {
        extendedConnect: (stream, rawHeaders, secure) => this.handleExtendedConnect(stream, rawHeaders, secure),
        // The metrics path answers over HTTP/2 as over HTTP/1.1 (test/server/metrics-endpoint.test.ts).
        onHttpRequest:
          this.options.onHttpRequest || this.metricsPath !== null
            ? (req, res) => {
                if (this.isMetricsTarget(req.url)) this.serveMetrics(req, res);
                else if (this.options.onHttpRequest) this.options.onHttpRequest(req, res);
                else {
                  this.counts.handshakeFailed(426);
                  res.writeHead(426, { 'sec-websocket-version': '13', 'content-type': 'text/plain; charset=utf-8' });
                  res.end('this endpoint speaks WebSocket only');
                }
              }
            : undefined,
        refused: (status) => this.counts.handshakeFailed(status),
        report: (err) => this.report(err),
      },
      this.context,
    );
    return (this.h2 = front);
  }

  private acceptSocket(socket: Socket, secure: boolean): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    // ALPN chose HTTP/2 (RFC 9113 section 3.2): the connection is node:http2's, its streams ours.
    if (secure && (socket as Socket & { alpnProtocol?: string | false }).alpnProtocol === 'h2') {
      this.http2Front().accept(socket);
      return;
    }
    const parser = new HttpHeadParser('request', { maxHeadBytes: this.options.maxHeadBytes, maxHeaders: this.options.maxHeaders });
    const pending: PendingHandshake = {
      socket,
      // The timer wheel's links, present from the start so every pending handshake has one shape.
      wheelSlot: -1,
      wheelPrev: null,
      wheelNext: null,
      onTimer: () => {
        // The head did not arrive in time (a trickling client): answer 408 and drop it.
        // done() first: the head parser must stop listening, or the rest of a head arriving
        // after the 408 would still open a session (test/hostile/trickle.test.ts).
        done();
        this.reject(socket, 408, 'opening handshake timed out');
      },
    };
    this.handshakes.add(pending);
    this.context.timers.schedule(pending, this.context.now() + (this.options.handshakeTimeoutMs ?? 10_000));
    const done = () => {
      this.handshakes.delete(pending);
      this.context.timers.cancel(pending);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onError);
    };
    const onError = () => {
      done();
      socket.destroy();
    };
    // The head's raw bytes, kept only when a plain HTTP request may have to be replayed to node:http (bounded by maxHeadBytes).
    const raw: Buffer[] | null = this.options.onHttpRequest || this.metricsPath !== null ? [] : null;
    // Cleartext HTTP/2 with prior knowledge (RFC 9113 section 3.3): the first bytes are looked at
    // until they either are the connection preface or cannot be.
    let sniffed: Buffer | null = !secure && this.http2Enabled ? EMPTY : null;
    const onData = (input: Buffer) => {
      let chunk = input;
      if (sniffed !== null) {
        const seen = sniffed.length === 0 ? chunk : Buffer.concat([sniffed, chunk]);
        const n = Math.min(seen.length, H2_PREFACE.length);
        if (seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) {
          if (seen.length < H2_PREFACE.length) {
            sniffed = seen;
            return;
          }
          done();
          socket.pause();
          // node:http2 reads what is already buffered before the socket's own reads (it emulates receiving it).
          socket.unshift(seen);
          this.http2Front().accept(socket);
          return;
        }
        sniffed = null;
        chunk = seen;
      }
      let result;
      try {
        raw?.push(chunk);
        result = parser.push(chunk);
      } catch (err) {
        done();
        if (err instanceof HandshakeError) this.reject(socket, err.status ?? 400, err.message, err.headers);
        else this.reject(socket, 400, 'bad request');
        return;
      }
      if (!result) return;
      done();
      // Reading stops until the session takes over, so no frame that follows the head is lost or reordered.
      socket.pause();
      if (raw && !result.head.headers.has('upgrade') && (this.options.onHttpRequest || this.isMetricsTarget(result.head.target))) {
        this.handOffHttp(socket, Buffer.concat(raw));
        return;
      }
      // Frames that came with the head (rare: a client waits for the 101) are copied out of the read's buffer.
      void this.upgrade(socket, result.head, result.rest.length === 0 ? result.rest : Buffer.from(result.rest), secure);
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onError);
  }

  private handOffHttp(socket: Socket, bytes: Buffer): void {
    if (!this.httpHandoff) {
      const headTimeout = this.options.handshakeTimeoutMs ?? 10_000;
      const http = createHttpServer(
        // A later request on a kept-alive connection gets the same head deadline as an upgrade (slowloris).
        { maxHeaderSize: this.options.maxHeadBytes ?? 16384, headersTimeout: headTimeout, requestTimeout: Math.max(headTimeout, 30_000), connectionsCheckingInterval: Math.min(1000, headTimeout) },
        (req, res) => this.onHttpRequest(req, res),
      );
      http.on('upgrade', this.onUpgrade);
      http.on('clientError', (err: NodeJS.ErrnoException, sock) => {
        // A head over maxHeaderSize is 431 (RFC 6585 section 5), as on the first request of the
        // connection, not 400 (test/hostile/http-same-port.test.ts).
        const overflow = err.code === 'HPE_HEADER_OVERFLOW';
        if (sock.writable) sock.end(`HTTP/1.1 ${overflow ? '431 Request Header Fields Too Large' : '400 Bad Request'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
        else sock.destroy();
      });
      this.httpHandoff = http;
      // node:http tracks connections and enforces headersTimeout/requestTimeout only once it has emitted
      // 'listening'; this server never listens (sockets are handed to it), so it is told it is.
      http.emit('listening');
    }
    this.httpSockets.add(socket);
    socket.once('close', () => this.httpSockets.delete(socket));
    socket.unshift(bytes);
    this.httpHandoff.emit('connection', socket);
    socket.resume();
  }

  /** A plain HTTP request handed to node:http: the metrics endpoint, else onHttpRequest, else 426 as on the first request. */
  private onHttpRequest(req: IncomingMessage, res: ServerResponse): void {
    if (this.isMetricsTarget(req.url ?? '')) this.serveMetrics(req, res);
    else if (this.options.onHttpRequest) this.options.onHttpRequest(req, res);
    else {
      // A keep-alive connection opened for the metrics asked for something else: answered as a
      // first request would be, and counted as one (test/server/metrics-endpoint.test.ts).
      this.counts.handshakeFailed(426);
      res.writeHead(426, { Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', Connection: 'close', 'Content-Type': 'text/plain' });
      res.end('this endpoint speaks WebSocket only');
    }
  }

  private isMetricsTarget(target: string): boolean {
    return this.metricsPath !== null && splitTarget(target).path === this.metricsPath;
  }

  /** GET or HEAD of the metrics path: the snapshot in the Prometheus text format 0.0.4 (over HTTP/1.1 or HTTP/2). */
  private serveMetrics(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' });
      res.end('method not allowed');
      return;
    }
    const body = renderPrometheus(this.metrics());
    res.writeHead(200, { 'Content-Type': PROMETHEUS_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
    if (req.method === 'HEAD') res.end();
    else res.end(body);
  }

  private upgrade(socket: Duplex, head: HttpHead, rest: Buffer, secure: boolean): Promise<void> {
    if (!head.headers.has('upgrade')) {
      // A plain HTTP request on a WebSocket-only endpoint (RFC 6455 section 4.2.2 / RFC 7231 6.5.15).
      this.reject(socket, 426, 'this endpoint speaks WebSocket only', { Upgrade: 'websocket', 'Sec-WebSocket-Version': '13' });
      return Promise.resolve();
    }
    return this.open(socket, rest, {
      validate: () => {
        const info = validateUpgradeRequest(head);
        return { info, request: new HandshakeRequest(head, info, socket, secure) };
      },
      accept: (key, protocol, extensions) => socket.write(buildUpgradeResponse({ key: key!, protocol, extensions })),
      reject: (status, message, headers) => this.reject(socket, status, message, headers),
    });
  }

  /**
   * Answers an HTTP/2 extended CONNECT (RFC 8441) on `stream`, whose request
   * came with `rawHeaders` (node's list: name, value, ...): what the server
   * does with every stream of its HTTP/2 connections, callable directly for
   * a node:http2 server of one's own (created with settings
   * `{ enableConnectProtocol: true }`). Validation, routing, verifyClient,
   * permessage-deflate and limits are those of HTTP/1.1; the answer is
   * :status 200 and the session runs over the stream.
   */
  handleExtendedConnect(stream: ServerHttp2Stream, rawHeaders: readonly string[], secure = stream.session?.encrypted === true): void {
    void this.open(stream, EMPTY, {
      validate: () => {
        const head = headOfHttp2Request(rawHeaders);
        const info = validateExtendedConnect(head);
        return { info, request: new Http2HandshakeRequest(head, info, remoteAddressOf(stream), secure) };
      },
      accept: (key, protocol, extensions) => {
        // RFC 8441 section 5: 200, and the subprotocol and extensions as over HTTP/1.1. A key sent anyway
        // (undici does) is answered, so that a client that checks the accept finds it right.
        const headers: Record<string, string> = { ':status': '200' };
        if (protocol !== undefined) headers['sec-websocket-protocol'] = protocol;
        if (extensions.length > 0) headers['sec-websocket-extensions'] = formatExtensions(extensions);
        if (key !== undefined) headers['sec-websocket-accept'] = acceptKey(key);
        stream.respond(headers);
      },
      reject: (status, message, headers) => {
        // Counted even when the stream has gone already, as over HTTP/1.1 (test/server/http2.test.ts).
        this.counts.handshakeFailed(status);
        rejectStream(stream, status, message, headers);
      },
    });
  }

  /**
   * The opening handshake after the transport's own checks, the same for
   * HTTP/1.1 and HTTP/2: path, subprotocol routing, verifyClient,
   * permessage-deflate, then the session over `socket`.
   */
  private async open(socket: Duplex, rest: Buffer, channel: HandshakeChannel): Promise<void> {
    // Until the session owns the socket (or it is rejected), nobody else listens for its errors:
    // a peer that resets the connection meanwhile (e.g. during an async verifyClient) would raise
    // an unhandled ECONNRESET and crash the whole process (test/hostile/reset-after-answer.test.ts).
    const onEarlyError = () => socket.destroy();
    socket.on('error', onEarlyError);
    try {
      const { info, request } = channel.validate();
      const path = request.path;
      if (this.options.path !== undefined && path !== this.options.path) {
        channel.reject(404, 'no WebSocket endpoint at this path');
        return;
      }
      let protocol: string | undefined;
      let handler: ServerHandler | undefined;
      for (const p of info.protocols) {
        const h = this.protocols.get(p);
        if (h) {
          protocol = p;
          handler = h;
          break;
        }
      }
      handler ??= this.options.handler;
      if (!handler) {
        channel.reject(400, info.protocols.length > 0 ? 'none of the offered subprotocols is supported' : 'a subprotocol is required');
        return;
      }
      if (this.options.verifyClient) {
        const verdict = await this.options.verifyClient(request);
        if (verdict !== true) {
          const v = verdict === false ? { status: 403, message: 'forbidden' } : verdict;
          channel.reject(v.status, v.message ?? 'refused', v.headers);
          return;
        }
      }
      if (this.closing || socket.destroyed) {
        socket.destroy();
        return;
      }
      // Extensions: permessage-deflate if enabled for this handler and acceptable; any other offer is declined by omission (RFC 6455 section 9.1).
      let codec: MessageCodec | null = null;
      const extensions: ExtensionOffer[] = [];
      const pmd = handler.perMessageDeflate !== undefined ? handler.perMessageDeflate : this.options.perMessageDeflate;
      if (pmd) {
        const config: PerMessageDeflateOptions = pmd === true ? {} : pmd;
        const agreed = negotiateDeflate(info.extensions, config);
        if (agreed) {
          extensions.push(agreed.response);
          codec = new DeflateCodec('server', agreed.params, config, this.context.zlib);
        }
      }
      channel.accept(info.key, protocol, extensions);
      const session = new ServerSession<Record<string, unknown>>(
        {
          role: 'server',
          socket,
          context: this.context,
          handler: handler as Handler<unknown>,
          protocol,
          extensions: extensions.length === 0 ? NO_EXTENSIONS : extensions.map((e) => e.name),
          codec,
          limits: this.limitsFor(handler),
          keepalive: handler.keepalive !== undefined ? handler.keepalive : this.options.keepalive !== undefined ? this.options.keepalive : DEFAULT_KEEPALIVE,
          closeTimeoutMs: this.options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS,
          head: rest,
          onHandlerError: this.onSessionHandlerError,
          onFinished: this.onSessionFinished,
          counters: this.counts.sessions,
        },
        request,
        this.topics,
        this.brokerBinding,
      );
      this.sessions.add(session);
      this.counts.opened++;
      socket.off('error', onEarlyError);
      session.start(rest);
      // onOpen has seen the parsed request; from here the session keeps only its text, or with
      // retainRequestHeaders: false only its target and what the handshake settled.
      if (this.options.retainRequestHeaders === false) request.release();
      else request.compact();
    } catch (err) {
      if (err instanceof HandshakeError) channel.reject(err.status ?? 400, err.message, err.headers);
      else {
        this.report(err);
        channel.reject(500, 'internal error');
      }
    }
  }

  private reject(socket: Duplex, status: number, message: string, headers?: Record<string, string>): void {
    // Counted even when the client has gone already: the handshake failed all the same.
    this.counts.handshakeFailed(status);
    if (socket.destroyed) return;
    // The peer may reset the connection instead of reading the answer: that error is expected
    // and must not go unhandled, or it crashes the process (test/hostile/reset-after-answer.test.ts).
    socket.on('error', () => socket.destroy());
    socket.end(buildRejectResponse(status, message, headers));
    // Do not wait for a misbehaving client to read the answer.
    const t = setTimeout(() => socket.destroy(), 1000);
    t.unref();
    socket.once('close', () => clearTimeout(t));
  }

  private report(error: unknown, session?: ServerSession): void {
    if (this.options.onError) this.options.onError(error, session as ServerSession<T> | undefined);
    else console.error('sockeye:', error);
  }
}

/** Creates a server; call listen() on it (unless it is attached to an HTTP server). */
export function createServer<T = unknown>(options: ServerOptions<T> = {}): WebSocketServer<T> {
  return new WebSocketServer<T>(options);
}

export type { Session };

/** Shared by every session that negotiated no extension (read only). */
const NO_EXTENSIONS: readonly string[] = Object.freeze([]);

const EMPTY = Buffer.alloc(0);

/** The client connection preface of HTTP/2 (RFC 9113 section 3.4). */
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** What differs between an HTTP/1.1 upgrade and an HTTP/2 extended CONNECT around the shared handshake. */
interface HandshakeChannel {
  /** Validates the request (throws HandshakeError with the status to answer). */
  validate(): { info: { key: string | undefined; protocols: readonly string[]; extensions: ExtensionOffer[] }; request: UpgradeRequest & { release(): void; compact(): void } };
  accept(key: string | undefined, protocol: string | undefined, extensions: ExtensionOffer[]): void;
  reject(status: number, message: string, headers?: Record<string, string>): void;
}

/**
 * Refuses an extended CONNECT with the status HTTP/1.1 would get, a text
 * body, and the stream ended (its connection and other streams carry on).
 * Header names are lower-cased (RFC 9113 section 8.2.1); a field HTTP/2 may
 * not carry (from verifyClient, say) is left out rather than failing the answer.
 */
function rejectStream(stream: ServerHttp2Stream, status: number, message: string, headers?: Record<string, string>): void {
  if (stream.destroyed || stream.closed) return;
  stream.on('error', () => stream.destroy());
  if (stream.headersSent) {
    stream.close();
    return;
  }
  const out: Record<string, string> = { ':status': String(status), 'content-type': 'text/plain; charset=utf-8' };
  for (const [name, value] of Object.entries(headers ?? {})) {
    const lower = name.toLowerCase();
    if (!H2_FORBIDDEN.has(lower) && lower.charCodeAt(0) !== 0x3a) out[lower] = value;
  }
  try {
    stream.respond(out);
  } catch {
    stream.respond({ ':status': String(status), 'content-type': 'text/plain; charset=utf-8' });
  }
  stream.end(message);
}

/** Fields HTTP/2 forbids (RFC 9113 section 8.2.2) or that node:http2 computes itself. */
const H2_FORBIDDEN = new Set(['connection', 'upgrade', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'content-length', 'content-type']);

function* filtered<S>(all: Iterable<S>, keep: (s: S) => boolean): Generator<S> {
  for (const s of all) if (keep(s)) yield s;
}
