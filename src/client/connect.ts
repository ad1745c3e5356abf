import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import type { KeepaliveOptions } from '../core/connection.js';
import { DEFAULT_CLOSE_TIMEOUT_MS } from '../core/connection.js';
import { HandshakeError, InvalidArgumentError, TimeoutError, TransportError, WebSocketError } from '../core/errors.js';
import { buildExtendedConnectRequest, buildUpgradeRequest, validateExtendedConnectResponse, validateUpgradeResponse } from '../core/handshake.js';
import type { ExtensionOffer } from '../core/extension-header.js';
import { HttpHeadParser } from '../core/http-head.js';
import { acceptDeflateResponse, buildDeflateOffer, PERMESSAGE_DEFLATE } from '../core/deflate-negotiation.js';
import type { MessageCodec } from '../core/message-codec.js';
import { DeflateCodec, validateZlibOptions, type PerMessageDeflateOptions } from '../transport/permessage-deflate.js';
import { Context } from '../transport/context.js';
import { Session } from '../transport/session.js';
import { DEFAULT_KEEPALIVE, type Handler, type SessionLimits } from '../transport/types.js';
import { setNoDelay } from '../transport/stream-adapter.js';
import { openTunnel, selectProxy, type ProxyConfig } from './proxy.js';
import type { Duplex } from 'node:stream';
import type { ClientHttp2Stream } from 'node:http2';
import { HTTP2_NO_ERROR, HTTP2_REFUSED_STREAM, type Http2Member, type PooledHttp2Connection } from '../transport/http2-pool.js';
import { cancelStream, dialHttp2, http2Choice, isHttp2Unavailable, responseHead, toOutgoingHeaders, type ClientHttp2Options, type Http2Endpoint } from './http2.js';

/**
 * A handler whose sessions carry `T` as `session.data` (an empty object until
 * assigned). Without a type argument, `data` is `unknown`: usable only after
 * narrowing, never `any` (test/types/generics.test.ts).
 */
export type ClientHandler<T = unknown> = Handler<ClientSession<T>>;

export interface ConnectOptions<T = unknown> {
  /** Subprotocol(s) to offer, in order of preference. */
  protocol?: string | string[];
  /** Extra request headers (validated: no CR, LF or NUL, names must be tokens). */
  headers?: Record<string, string> | Iterable<[string, string]>;
  origin?: string;
  /** TLS options for wss:// (ca, cert, key, servername, ...). */
  tls?: TlsConnectionOptions;
  /** Accept any server certificate (self-signed test servers). */
  insecure?: boolean;
  /** Event handler; without onMessage/onFragment, messages are buffered for messages(). */
  handler?: ClientHandler<T>;
  /** Default: ping after 30 s quiet, hang up after 60 s. null disables. */
  keepalive?: KeepaliveOptions | null;
  limits?: Partial<SessionLimits>;
  /** Offer permessage-deflate (RFC 7692). Default false. */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  closeTimeoutMs?: number;
  /** Aborts the opening handshake: connect() rejects with TransportError ERR_ABORTED. No effect once it has resolved. */
  signal?: AbortSignal;
  /** Connect plus opening handshake must finish within this time. Default 10000 ms. */
  handshakeTimeoutMs?: number;
  /**
   * Connect over the unix domain socket at this path instead of TCP; the URL
   * still gives the request path and the Host header. A ws+unix:// URL says
   * the same in the URL (ws+unix:///run/app.sock:/chat).
   */
  socketPath?: string;
  /**
   * Follow 301, 302, 303, 307 and 308 answers to the opening handshake, up to
   * maxRedirects of them. Default false: a redirect rejects with its Location.
   * On a redirect to another origin, Authorization and Cookie headers are not
   * sent on; a redirect from wss:// to ws:// is refused.
   */
  followRedirects?: boolean;
  /** Most redirects followed for one connect() (with followRedirects). Default 10. */
  maxRedirects?: number;
  /**
   * The proxy to go through: an http://, https://, socks5:// or socks5h://
   * URL, with user:password@ for the proxy's own authentication. false (or
   * '') goes direct whatever the environment says. Without it, the
   * environment names the proxy, read as curl reads it (docs/api.md, "Proxies").
   */
  proxy?: string | URL | false;
  /** TLS options for an https:// proxy (ca, ...); `tls` is the target's alone and never goes to the proxy. */
  proxyTls?: TlsConnectionOptions;
  /** Largest HTTP head accepted from the server. Default 16384. */
  maxHeadBytes?: number;
  /**
   * Share timers, randomness and HTTP/2 connections with other clients; by
   * default each client has its own.
   */
  context?: Context;
  /**
   * Open the WebSocket as a stream of an HTTP/2 connection (RFC 8441
   * extended CONNECT) instead of a connection of its own. wss: negotiates h2
   * by TLS ALPN; ws: speaks cleartext HTTP/2 with prior knowledge (the
   * server must expect it: no Upgrade: h2c is tried). Clients that share a
   * `context` (and the same `tls` object and `insecure`) share connections:
   * one per origin, more when the server's SETTINGS_MAX_CONCURRENT_STREAMS
   * is reached, up to maxConnectionsPerOrigin. A server that does not take
   * WebSockets over HTTP/2 gets the usual HTTP/1.1 upgrade on a new
   * connection, unless `'require'` (or `{ fallback: false }`): then
   * connect() rejects with HandshakeError ERR_HTTP2_UNAVAILABLE. Through a
   * proxy, HTTP/1.1 is used. Default false.
   */
  http2?: boolean | 'require' | ClientHttp2Options;
  /** Errors thrown by handlers. Default: printed to stderr. */
  onError?(error: unknown, session: ClientSession<T>): void;
}

/** A client-side session; `messages()` iterates what arrives. */
export class ClientSession<T = unknown> extends Session<T> {
  readonly url: URL;
  /** Response headers of the opening handshake (lower-cased names; over HTTP/2, `:status` among them). */
  readonly responseHeaders: ReadonlyMap<string, readonly string[]>;
  constructor(init: ConstructorParameters<typeof Session<T>>[0], url: URL, responseHeaders: ReadonlyMap<string, readonly string[]>) {
    super(init);
    this.url = url;
    this.responseHeaders = responseHeaders;
  }
}

interface Target {
  url: URL;
  secure: boolean;
  host: string;
  port: number;
  hostHeader: string;
  path: string;
  /** A unix domain socket to dial instead of host and port (ws+unix:). */
  socketPath?: string;
}

/** Parses and checks a ws:// or wss:// URL (RFC 6455 section 3). */
export function parseWebSocketUrl(input: string | URL): Target {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    // The commonest cause after a typo: a port out of range, which URL refuses without saying so.
    const port = /^[a-z+]+:\/\/[^/?#]*:(\d+)/i.exec(String(input))?.[1];
    if (port !== undefined && Number(port) > 65535) throw new InvalidArgumentError('ERR_BAD_URL', `bad port ${port} in ${String(input)}: a port is 0 to 65535`);
    throw new InvalidArgumentError('ERR_BAD_URL', `not a URL: ${String(input)} (a WebSocket URL looks like ws://host:port/path or wss://host/path)`);
  }
  let secure: boolean;
  if (url.protocol === 'ws+unix:') return unixTarget(url, String(input));
  if (url.protocol === 'ws:' || url.protocol === 'http:') secure = false;
  else if (url.protocol === 'wss:' || url.protocol === 'https:') secure = true;
  else throw new InvalidArgumentError('ERR_BAD_URL', `unsupported scheme ${url.protocol} in ${String(input)} (ws:, wss: or ws+unix:; a WebSocket URL looks like ws://host:port/path or wss://host/path)`);
  // Section 3: "Fragment identifiers are meaningless in the context of WebSocket URIs and MUST NOT be used".
  if (url.hash !== '' || String(input).includes('#')) throw new InvalidArgumentError('ERR_BAD_URL', 'a WebSocket URL may not have a fragment');
  if (url.hostname === '') throw new InvalidArgumentError('ERR_BAD_URL', 'a WebSocket URL needs a host');
  // http: and https: are read as ws: and wss: (as the WHATWG WebSocket does), and named so from here on.
  if (url.protocol === 'http:' || url.protocol === 'https:') {
    url = new URL(url.href);
    url.protocol = secure ? 'wss:' : 'ws:';
  }
  const defaultPort = secure ? 443 : 80;
  const port = url.port === '' ? defaultPort : Number(url.port);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const hostHeader = url.port === '' ? url.hostname : `${url.hostname}:${url.port}`;
  return { url, secure, host, port, hostHeader, path: (url.pathname || '/') + url.search };
}

/**
 * ws+unix:///path/to.sock:/request/path?query (ws's form): the socket's path
 * up to the first colon, the request path after it ("/" when there is none).
 * The Host header is "localhost": there is no host to name.
 */
function unixTarget(url: URL, input: string): Target {
  if (url.hash !== '' || input.includes('#')) throw new InvalidArgumentError('ERR_BAD_URL', 'a WebSocket URL may not have a fragment');
  if (url.host !== '') throw new InvalidArgumentError('ERR_BAD_URL', `a ws+unix: URL names a socket file, not a host: ws+unix:///path/to.sock:/request/path, not ${input}`);
  const pathname = decodeURIComponent(url.pathname);
  const colon = pathname.indexOf(':');
  const socketPath = colon === -1 ? pathname : pathname.slice(0, colon);
  const requestPath = colon === -1 || colon === pathname.length - 1 ? '/' : pathname.slice(colon + 1);
  if (socketPath === '' || socketPath === '/') throw new InvalidArgumentError('ERR_BAD_URL', `no socket path in ${input} (ws+unix:///path/to.sock:/request/path)`);
  return { url, secure: false, host: 'localhost', port: 0, hostHeader: 'localhost', path: requestPath + url.search, socketPath };
}

/**
 * Opens a WebSocket connection. Resolves once the opening handshake has
 * succeeded; rejects with a HandshakeError (bad answer or status),
 * TransportError (connect or TLS failure) or TimeoutError.
 */
export function connect<T = unknown>(url: string | URL, options: ConnectOptions<T> = {}): Promise<ClientSession<T>> {
  // Not an async function: the session reaches the caller in the same microtask as connectOnce() resolves,
  // before the frames that came with the 101 answer are processed, so that a pauseReading() right after
  // connect() holds them all (test/integration/flow-control.test.ts, "a client paused right after connect()").
  if (!options.followRedirects) return connectOnce(url, options, false);
  return connectFollowing(url, options);
}

async function connectFollowing<T>(url: string | URL, options: ConnectOptions<T>): Promise<ClientSession<T>> {
  const max = options.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
  if (!(Number.isInteger(max) && max >= 0)) throw new InvalidArgumentError('ERR_BAD_REDIRECTS', `maxRedirects must be a whole number, 0 or more, not ${String(max)}`);
  let current: string | URL = url;
  let currentOptions = options;
  for (let redirects = 0; ; redirects++) {
    try {
      return await connectOnce(current, currentOptions, true);
    } catch (err) {
      if (!(err instanceof RedirectAnswer)) throw err;
      if (redirects === max) throw new HandshakeError('ERR_TOO_MANY_REDIRECTS', `${err.from.href}: more than ${max} redirects (maxRedirects); the last went to ${err.location}`, err.status, err.headers);
      const next = redirectTarget(err, currentOptions);
      current = next.url;
      currentOptions = next.options;
    }
  }
}

const DEFAULT_MAX_REDIRECTS = 10;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** A redirect answer connectOnce() hands back to connect() to follow (never seen by the application). */
class RedirectAnswer extends HandshakeError {
  constructor(
    readonly from: URL,
    readonly location: string,
    status: number,
    headers: Record<string, string> | undefined,
  ) {
    super('ERR_UNEXPECTED_STATUS', `redirect to ${location}`, status, headers);
  }
}

/**
 * Where a redirect leads, and the options for going there. The Location is
 * resolved against the URL that answered (a relative one included; http(s)
 * is read as ws(s) as for any URL given to connect()). Going to another
 * origin (scheme, host or port), the request's Authorization and Cookie
 * headers stay behind, as fetch does on a cross-origin redirect; going from
 * wss:// to ws:// would send in clear what was asked for over TLS, and is
 * refused. test/client/redirects.test.ts.
 */
function redirectTarget<T>(answer: RedirectAnswer, options: ConnectOptions<T>): { url: URL; options: ConnectOptions<T> } {
  let next: URL;
  try {
    next = new URL(answer.location, answer.from);
  } catch {
    throw new HandshakeError('ERR_BAD_REDIRECT', `${answer.from.href}: redirect to ${JSON.stringify(answer.location)}, which is not a URL`, answer.status, answer.headers);
  }
  const target = parseWebSocketUrl(next);
  const fromTarget = parseWebSocketUrl(answer.from);
  if (fromTarget.secure && !target.secure) throw new HandshakeError('ERR_BAD_REDIRECT', `${answer.from.href}: refusing a redirect from wss:// to ${next.href}, which is not encrypted`, answer.status, answer.headers);
  if (fromTarget.socketPath !== undefined || target.socketPath !== undefined || options.socketPath !== undefined) {
    throw new HandshakeError('ERR_BAD_REDIRECT', `${answer.from.href}: redirect to ${next.href}; redirects are not followed over a unix socket`, answer.status, answer.headers);
  }
  const sameOrigin = fromTarget.secure === target.secure && fromTarget.host === target.host && fromTarget.port === target.port;
  if (sameOrigin || options.headers === undefined) return { url: target.url, options };
  const pairs: Array<[string, string]> = Symbol.iterator in options.headers ? [...(options.headers as Iterable<[string, string]>)] : Object.entries(options.headers);
  const kept = pairs.filter(([name]) => !/^(authorization|cookie)$/i.test(name));
  return { url: target.url, options: { ...options, headers: kept } };
}

function connectOnce<T>(url: string | URL, options: ConnectOptions<T>, followRedirects: boolean): Promise<ClientSession<T>> {
  // Everything the application passed in is validated before a byte is sent.
  let target: Target;
  let request: Buffer;
  let proxy: ProxyConfig | null;
  const deflateConfig: PerMessageDeflateOptions | null = options.perMessageDeflate ? (options.perMessageDeflate === true ? {} : options.perMessageDeflate) : null;
  const context = options.context ?? new Context();
  const ownContext = !options.context;
  const key = context.newKey();
  const protocols = options.protocol === undefined ? [] : Array.isArray(options.protocol) ? options.protocol : [options.protocol];
  let h2: Required<ClientHttp2Options> | null;
  let extensions: ExtensionOffer[];
  let headers: Array<[string, string]>;
  try {
    h2 = http2Choice(options.http2);
    target = parseWebSocketUrl(url);
    if (options.socketPath !== undefined) {
      if (typeof options.socketPath !== 'string' || options.socketPath === '') throw new InvalidArgumentError('ERR_BAD_PATH', 'socketPath must be the path of a unix socket');
      target = { ...target, socketPath: options.socketPath };
    }
    proxy = selectProxy(target, options.proxy, process.env);
    headers = options.headers === undefined ? [] : Symbol.iterator in options.headers ? [...(options.headers as Iterable<[string, string]>)] : Object.entries(options.headers);
    if (deflateConfig) validateZlibOptions(deflateConfig);
    extensions = deflateConfig ? [buildDeflateOffer(deflateConfig)] : [];
    request = buildUpgradeRequest({ host: target.hostHeader, path: target.path, key, protocols, origin: options.origin, headers, extensions });
  } catch (err) {
    if (ownContext) context.close();
    return Promise.reject(err);
  }

  // The handshake timeout runs from here: through a proxy it covers the proxy's exchange too.
  const deadline = context.now() + (options.handshakeTimeoutMs ?? 10_000);
  const deferStart = followRedirects || h2 !== null;
  const offeredExtensions = deflateConfig ? [PERMESSAGE_DEFLATE] : [];
  const codecFor = (agreedExtensions: ExtensionOffer[]): MessageCodec | null => {
    const deflateAnswer = agreedExtensions.find((e) => e.name === PERMESSAGE_DEFLATE);
    return deflateAnswer && deflateConfig ? new DeflateCodec('client', acceptDeflateResponse(deflateAnswer, deflateConfig), deflateConfig, context.zlib) : null;
  };
  /** The session over `socket` (a TCP or TLS connection, or an HTTP/2 stream) once the handshake has succeeded. */
  const newSession = (socket: Duplex, protocol: string | undefined, agreedExtensions: ExtensionOffer[], codec: MessageCodec | null, responseHeaders: ReadonlyMap<string, readonly string[]>): ClientSession<T> => {
    const handler = options.handler ?? {};
    return new ClientSession<T>(
      {
        role: 'client',
        socket,
        context,
        handler: handler as Handler<unknown>,
        protocol,
        extensions: agreedExtensions.map((e) => e.name),
        codec,
        limits: options.limits ?? {},
        keepalive: options.keepalive !== undefined ? options.keepalive : DEFAULT_KEEPALIVE,
        closeTimeoutMs: options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS,
        head: Buffer.alloc(0),
        inbox: !handler.onMessage && !handler.onFragment,
        onHandlerError: (e, s) => (options.onError ? options.onError(e, s as unknown as ClientSession<T>) : console.error('sockeye:', e)),
        onFinished: () => {
          if (ownContext) context.close();
        },
      },
      target.url,
      responseHeaders,
    );
  };
  /** What a failed answer rejects with: a redirect to follow, a status said in the user's terms, or the error as it is. */
  const answerError = (err: unknown, body: Buffer | null): WebSocketError => {
    if (err instanceof HandshakeError && err.code === 'ERR_UNEXPECTED_STATUS' && body !== null) {
      const location = err.headers?.location;
      if (followRedirects && location !== undefined && REDIRECT_STATUSES.has(err.status ?? 0)) return new RedirectAnswer(target.url, location, err.status!, err.headers);
      return unexpectedStatus(err, target, body);
    }
    if (err instanceof WebSocketError) return err;
    return new HandshakeError('ERR_HANDSHAKE', String(err));
  };
  /** The opening handshake on a new connection, or on `tunnel`, a proxy's connection that relays to the target (TLS inside it for wss://). */
  const dial = (tunnel: Socket | null): Promise<ClientSession<T>> => new Promise<ClientSession<T>>((resolve, reject) => {
    let socket: Socket;
    if (target.secure) {
      const tlsOpts: TlsConnectionOptions = {
        ...(tunnel !== null ? { socket: tunnel } : target.socketPath !== undefined ? { path: target.socketPath } : { host: target.host, port: target.port }),
        ALPNProtocols: ['http/1.1'],
        ...(isIP(target.host) === 0 ? { servername: target.host } : {}),
        ...(options.insecure ? { rejectUnauthorized: false } : {}),
        ...options.tls,
      };
      socket = tlsConnect(tlsOpts);
    } else if (tunnel !== null) {
      socket = tunnel;
    } else {
      socket = target.socketPath !== undefined ? netConnect({ path: target.socketPath }) : netConnect({ host: target.host, port: target.port });
    }
    setNoDelay(socket);
    const parser = new HttpHeadParser('response', { maxHeadBytes: options.maxHeadBytes });
    let settled = false;
    const timer = {
      onTimer: () => fail(new TimeoutError('ERR_HANDSHAKE_TIMEOUT', `opening handshake not finished within ${options.handshakeTimeoutMs ?? 10_000} ms`)),
    };
    context.timers.schedule(timer, deadline);

    const cleanup = () => {
      context.timers.cancel(timer);
      socket.off(target.secure ? 'secureConnect' : 'connect', onConnect);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      options.signal?.removeEventListener('abort', onAbort);
    };
    const fail = (err: WebSocketError) => {
      if (settled) return;
      settled = true;
      cleanup();
      socket.destroy();
      if (ownContext) context.close();
      reject(err);
    };
    const onConnect = () => {
      socket.write(request);
    };
    const onError = (err: Error) => fail(new TransportError('ERR_CONNECT', `cannot connect to ${target.url.href}: ${err.message}${connectHint(err, target.secure)}`, { cause: err }));
    const onClose = () =>
      fail(new TransportError('ERR_CONNECTION_CLOSED', `${target.url.href}: the server closed the connection during the opening handshake${target.secure ? '' : ' (if it speaks TLS on this port, use wss://)'}`));
    const onData = (chunk: Buffer) => {
      let result: ReturnType<HttpHeadParser['push']> = null;
      try {
        result = parser.push(chunk);
        if (!result) return;
        const agreed = validateUpgradeResponse(result.head, { key, protocols, offeredExtensions: deflateConfig ? [PERMESSAGE_DEFLATE] : [] });
        const codec = codecFor(agreed.extensions);
        settled = true;
        cleanup();
        socket.pause();
        const session = newSession(socket, agreed.protocol, agreed.extensions, codec, result.head.headers);
        resolve(session);
        // Frames that came in the same packet as the 101 answer are processed after the caller got the session,
        // copied out of the read's buffer (the usual empty rest needs no copy, as on the server).
        const rest = result.rest.length === 0 ? result.rest : Buffer.from(result.rest);
        // Through connect()'s redirect loop (or after an HTTP/2 attempt) the session reaches the caller a few
        // microtasks later: the frames wait for the next turn of the event loop then (test/client/redirects.test.ts,
        // "paused right after"); without it, connect() hands the session on before this microtask runs.
        if (deferStart) startNextTurn(session, socket, rest);
        else queueMicrotask(() => session.start(rest));
      } catch (err) {
        if (err instanceof HandshakeError && !result && tlsRecord(chunk) && !target.secure) {
          fail(new HandshakeError(err.code, `${target.url.href}: the server answered with TLS, not HTTP: use wss://`));
        } else fail(answerError(err, result === null ? null : result.rest));
      }
    };
    if (tunnel === null || target.secure) socket.on(target.secure ? 'secureConnect' : 'connect', onConnect);
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    if (tunnel !== null && !target.secure) {
      // A plain tunnel is open already: the request goes now, and reading resumes (openTunnel paused it, bytes that came early put back).
      onConnect();
      socket.resume();
    }
    // The WHATWG WebSocket's close() while CONNECTING must abort the handshake ("fail the WebSocket connection").
    const onAbort = () => fail(new TransportError('ERR_ABORTED', `${target.url.href}: the opening handshake was aborted`));
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort);
  });
  /**
   * The opening handshake as a stream of a pooled HTTP/2 connection (RFC
   * 8441 section 5): extended CONNECT, 200, then the session over the stream.
   */
  const viaHttp2 = (choice: Required<ClientHttp2Options>): Promise<ClientSession<T>> => new Promise<ClientSession<T>>((resolve, reject) => {
    const timeoutMs = options.handshakeTimeoutMs ?? 10_000;
    const endpoint: Http2Endpoint = {
      secure: target.secure,
      host: target.host,
      port: target.port,
      authority: target.hostHeader,
      href: target.url.href,
      socketPath: target.socketPath,
      tls: { ...(isIP(target.host) === 0 ? { servername: target.host } : {}), ...(options.insecure ? { rejectUnauthorized: false } : {}), ...options.tls },
      timeoutMs,
      connectError: (err) => new TransportError('ERR_CONNECT', `cannot connect to ${target.url.href}: ${err.message}${connectHint(err, target.secure)}`, { cause: err }),
    };
    const pool = context.http2;
    // Connections are shared by origin, and only under the same TLS settings (a client that accepts any certificate shares nothing with one that checks).
    const poolKey = `${target.secure ? 'wss' : 'ws'}://${target.host}:${target.port}|${target.socketPath ?? ''}|${options.insecure ? 1 : 0}|${pool.idOf(options.tls)}`;
    let lease: ReturnType<typeof pool.acquire>;
    let retries = 0;
    let settled = false;
    let connection: PooledHttp2Connection | null = null;
    let stream: ClientHttp2Stream | null = null;
    const timer = { onTimer: () => fail(new TimeoutError('ERR_HANDSHAKE_TIMEOUT', `opening handshake not finished within ${timeoutMs} ms`)) };
    context.timers.schedule(timer, deadline);
    const onAbort = () => fail(new TransportError('ERR_ABORTED', `${target.url.href}: the opening handshake was aborted`));
    const cleanup = () => {
      context.timers.cancel(timer);
      options.signal?.removeEventListener('abort', onAbort);
    };
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      cleanup();
      lease.cancel();
      // The stream's 'close' gives its slot back; a slot taken for a stream never opened goes back here.
      if (stream !== null) cancelStream(stream);
      else if (connection !== null) pool.release(poolKey, connection, null);
      reject(err);
    };
    const onLease = (c: PooledHttp2Connection): void => {
      if (settled) {
        pool.release(poolKey, c, null);
        return;
      }
      connection = c;
      let s: ClientHttp2Stream;
      try {
        const fields = buildExtendedConnectRequest({ scheme: target.secure ? 'https' : 'http', authority: target.hostHeader, path: target.path, protocols, extensions, origin: options.origin, headers });
        s = c.session.request(toOutgoingHeaders(fields), { endStream: false });
      } catch (err) {
        fail(err instanceof WebSocketError ? err : new TransportError('ERR_CONNECTION_CLOSED', `${target.url.href}: cannot open an HTTP/2 stream: ${(err as Error).message}`, { cause: err }));
        return;
      }
      stream = s;
      let session: ClientSession<T> | null = null;
      let goneAway = false;
      let goawayBeforeResponse = false;
      // RFC 9113 section 6.8: after GOAWAY with NO_ERROR the streams open may finish; a WebSocket has no end of
      // its own, so each closes with 1001 (going away), its queued messages sent first (S4). With an error code
      // node ends the connection at once: each WebSocket ends with 1006 and counts its unsent messages.
      // test/client/http2.test.ts ("GOAWAY").
      const member: Http2Member = {
        goaway: (code) => {
          if (session === null) goawayBeforeResponse = true;
          if (code !== HTTP2_NO_ERROR) return;
          goneAway = true;
          session?.close(1001, 'the HTTP/2 connection is going away');
        },
      };
      c.members.add(member);
      s.once('close', () => pool.release(poolKey, c, member));
      // The session takes the stream's errors once it starts; until then (and after) this one keeps them from being unhandled.
      s.on('error', () => undefined);
      const onEarlyClose = () => {
        // RFC 9113 section 8.7: a stream refused (REFUSED_STREAM, or beyond the last stream of a GOAWAY) was not
        // processed, and may be tried again: once more, on a connection with room (test/client/http2.test.ts, "refused").
        if (!settled && retries < 1 && (s.rstCode === HTTP2_REFUSED_STREAM || goawayBeforeResponse)) {
          retries++;
          stream = null;
          connection = null;
          attempt();
          return;
        }
        fail(new TransportError('ERR_CONNECTION_CLOSED', `${target.url.href}: the server ${s.rstCode !== undefined && s.rstCode !== HTTP2_NO_ERROR ? `reset the stream (RST_STREAM ${s.rstCode})` : 'closed the stream'} during the opening handshake`));
      };
      s.once('close', onEarlyClose);
      s.once('response', (responseHeaders) => {
        s.off('close', onEarlyClose);
        if (settled) return;
        try {
          const head = responseHead(responseHeaders);
          const agreed = validateExtendedConnectResponse(head, { protocols, offeredExtensions });
          const codec = codecFor(agreed.extensions);
          settled = true;
          cleanup();
          const opened = newSession(s, agreed.protocol, agreed.extensions, codec, head.headers);
          session = opened;
          resolve(opened);
          startNextTurn(opened, s, Buffer.alloc(0), () => {
            if (goneAway) opened.close(1001, 'the HTTP/2 connection is going away');
          });
        } catch (err) {
          fail(answerError(err, Buffer.alloc(0)));
        }
      });
    };
    const attempt = (): void => {
      lease = pool.acquire(poolKey, { maxConnections: choice.maxConnectionsPerOrigin, idleTimeoutMs: choice.idleTimeoutMs, dial: () => dialHttp2(endpoint, context), unavailable: isHttp2Unavailable });
      lease.promise.then(onLease, fail);
    };
    attempt();
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort);
  });
  if (h2 !== null) {
    if (proxy === null) {
      return viaHttp2(h2).catch((err: unknown) => {
        // RFC 8441 is optional for a server: one that does not do it gets the HTTP/1.1 upgrade on a new connection.
        if (h2.fallback && isHttp2Unavailable(err) && !options.signal?.aborted) return dial(null);
        if (ownContext) context.close();
        throw err;
      });
    }
    if (!h2.fallback) {
      if (ownContext) context.close();
      return Promise.reject(new HandshakeError('ERR_HTTP2_UNAVAILABLE', `${target.url.href}: WebSockets over HTTP/2 are not opened through a proxy (http2: 'require')`));
    }
  }
  if (proxy === null) return dial(null);
  const tunnelled = openTunnel(proxy, { host: target.host, port: target.port, href: target.url.href }, { context, deadline, timeoutMs: options.handshakeTimeoutMs ?? 10_000, signal: options.signal, proxyTls: options.proxyTls, maxHeadBytes: options.maxHeadBytes });
  return tunnelled.then(
    (tunnel) =>
      dial(tunnel).catch((err: unknown) => {
        // TLS to the target runs inside the tunnel: a failure there ends the proxy's connection too.
        tunnel.destroy();
        throw err;
      }),
    (err: unknown) => {
      if (ownContext) context.close();
      throw err;
    },
  );
}

/** What to try after a connect or TLS failure, from the error's code (docs/api.md, "Errors"). */
function connectHint(err: Error, secure: boolean): string {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (/SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|CERT_UNTRUSTED|CERT_HAS_EXPIRED|ERR_TLS_CERT_ALTNAME/.test(code)) {
    return ": the server's certificate is not trusted; pass its CA as tls: { ca }, or insecure: true for a test server";
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number|packet length too long/.test(err.message)) {
    return secure ? ': the server does not speak TLS on this port: use ws://' : '';
  }
  if (code === 'ECONNREFUSED') return ': nothing listens there (is the server running, and on this port?)';
  if (code === 'ENOENT') return ': there is no unix socket at that path (is the server running?)';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return ': the host name does not resolve';
  return '';
}

/** The first bytes of a TLS record (handshake or alert): a TLS server answering plain HTTP. */
function tlsRecord(chunk: Buffer): boolean {
  return chunk.length >= 3 && (chunk[0] === 0x15 || chunk[0] === 0x16) && chunk[1] === 0x03;
}

/** An answer other than 101, said in the user's terms, with the start of the body the server sent. */
function unexpectedStatus(err: HandshakeError, target: Target, body: Buffer): HandshakeError {
  const status = err.status ?? 0;
  const chunked = /chunked/i.test(err.headers?.['transfer-encoding'] ?? '');
  const snippet = (chunked ? dechunk(body) : body).subarray(0, 200).toString('utf8').replace(/\s+/g, ' ').trim();
  const said = snippet === '' ? '' : ` (the body begins: ${JSON.stringify(snippet)})`;
  let message: string;
  if (status >= 200 && status < 300) message = `${target.url.href} is not a WebSocket endpoint: ${err.message} to the upgrade request${said}`;
  else if (status >= 300 && status < 400 && err.headers?.location) message = `${target.url.href}: ${err.message}, redirecting to ${err.headers.location} (connect() follows redirects with followRedirects: true)`;
  else message = `${target.url.href}: ${err.message}${said}`;
  return new HandshakeError(err.code, message, err.status, err.headers);
}

/** The data of the whole chunks at the start of a chunked body (RFC 9112 section 7.1), for an error message. */
function dechunk(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = body.indexOf('\r\n', at);
    if (eol === -1) break;
    const size = parseInt(body.subarray(at, eol).toString('latin1'), 16);
    if (!Number.isFinite(size) || size <= 0 || eol + 2 + size > body.length) break;
    parts.push(body.subarray(eol + 2, eol + 2 + size));
    at = eol + 4 + size;
  }
  return Buffer.concat(parts);
}

/**
 * Starts a session that its caller already has on the next turn of the event loop (after the
 * redirect loop or the HTTP/2 lease has handed it over). Until then its stream's error and close
 * are kept here: the caller may send at once on a stream the server has reset, and that write's
 * error would otherwise be unhandled (a crash), its close never told to the session, which would
 * wait for it forever (test/client/redirects.test.ts, "reset right after the 101";
 * test/client/http2.test.ts, "reset right after"). `then` runs after start() on a stream still open.
 */
function startNextTurn(session: ClientSession, stream: Duplex, head: Buffer, then?: () => void): void {
  let closedEarly = false;
  const keepError = () => undefined;
  const keepClose = () => void (closedEarly = true);
  stream.on('error', keepError);
  stream.once('close', keepClose);
  setImmediate(() => {
    stream.off('error', keepError);
    stream.off('close', keepClose);
    session.start(head);
    if (closedEarly) session.onStreamClose();
    else then?.();
  });
}
