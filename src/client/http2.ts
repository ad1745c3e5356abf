import { connect as h2Connect, constants as h2constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type IncomingHttpStatusHeader, type OutgoingHttpHeaders } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions as TlsConnectionOptions, type TLSSocket } from 'node:tls';
import { HandshakeError, InvalidArgumentError, TimeoutError, TransportError } from '../core/errors.js';
import type { HttpHead } from '../core/http-head.js';
import type { Context } from '../transport/context.js';

/** connect()'s `http2` option in full (`true` is all the defaults, `'require'` is `{ fallback: false }`). */
export interface ClientHttp2Options {
  /**
   * When the server does not take WebSockets over HTTP/2 (ALPN did not pick
   * h2, its SETTINGS lack SETTINGS_ENABLE_CONNECT_PROTOCOL = 1, or a ws://
   * server refused the HTTP/2 preface): true (the default) connects again
   * over HTTP/1.1 with the usual upgrade; false rejects with HandshakeError
   * ERR_HTTP2_UNAVAILABLE.
   */
  fallback?: boolean;
  /**
   * Most HTTP/2 connections to one origin in one Context. A WebSocket takes
   * a stream of a connection with room under the server's
   * SETTINGS_MAX_CONCURRENT_STREAMS; when all are full a new connection
   * opens, up to this many; beyond it the WebSocket waits for a stream to
   * free up, within handshakeTimeoutMs. Default 4.
   */
  maxConnectionsPerOrigin?: number;
  /** How long an HTTP/2 connection whose last WebSocket has closed stays open for the next one (it never keeps the process alive). Default 1000 ms. */
  idleTimeoutMs?: number;
}

export const DEFAULT_MAX_CONNECTIONS_PER_ORIGIN = 4;
export const DEFAULT_HTTP2_IDLE_MS = 1000;

/** connect()'s http2 option checked, with its defaults; null when HTTP/2 is not asked for. */
export function http2Choice(value: boolean | 'require' | ClientHttp2Options | undefined): Required<ClientHttp2Options> | null {
  if (value === undefined || value === false) return null;
  const o: ClientHttp2Options = value === true ? {} : value === 'require' ? { fallback: false } : value;
  if (typeof o !== 'object' || o === null) throw new InvalidArgumentError('ERR_BAD_OPTION', `http2 must be true, false, 'require' or an object, not ${String(value)}`);
  const max = o.maxConnectionsPerOrigin ?? DEFAULT_MAX_CONNECTIONS_PER_ORIGIN;
  if (!(Number.isInteger(max) && max >= 1)) throw new InvalidArgumentError('ERR_BAD_OPTION', `http2.maxConnectionsPerOrigin must be a whole number, 1 or more, not ${String(max)}`);
  const idle = o.idleTimeoutMs ?? DEFAULT_HTTP2_IDLE_MS;
  if (!(typeof idle === 'number' && idle >= 0 && Number.isFinite(idle))) throw new InvalidArgumentError('ERR_BAD_OPTION', `http2.idleTimeoutMs must be a number of ms, 0 or more, not ${String(idle)}`);
  return { fallback: o.fallback ?? true, maxConnectionsPerOrigin: max, idleTimeoutMs: idle };
}

/** Where and how to open an HTTP/2 connection. */
export interface Http2Endpoint {
  secure: boolean;
  host: string;
  port: number;
  /** The authority as the URL gives it (host[:port]). */
  authority: string;
  href: string;
  socketPath?: string;
  /** TLS options, ALPN aside (servername, ca, rejectUnauthorized...). */
  tls: TlsConnectionOptions;
  timeoutMs: number;
  /** Says a connect or TLS error in the user's terms. */
  connectError(err: Error): TransportError;
}

/** True for the error that sends a client back to HTTP/1.1. */
export function isHttp2Unavailable(err: unknown): boolean {
  return err instanceof HandshakeError && err.code === 'ERR_HTTP2_UNAVAILABLE';
}

/**
 * Opens an HTTP/2 connection fit for WebSockets: TLS with ALPN h2 for wss:
 * (RFC 9113 section 3.2), cleartext with prior knowledge for ws: (section
 * 3.3: the preface is sent at once, there is no Upgrade: h2c); resolves once
 * the server's SETTINGS have come with SETTINGS_ENABLE_CONNECT_PROTOCOL = 1
 * (RFC 8441 section 3: no :protocol may be sent before). A server that does
 * not do it rejects with HandshakeError ERR_HTTP2_UNAVAILABLE, the cue for
 * HTTP/1.1.
 */
export function dialHttp2(endpoint: Http2Endpoint, context: Context): Promise<ClientHttp2Session> {
  return new Promise<ClientHttp2Session>((resolve, reject) => {
    let socket: Socket | TLSSocket;
    let session: ClientHttp2Session | null = null;
    let connected = false;
    let settled = false;
    const unavailable = (why: string) => new HandshakeError('ERR_HTTP2_UNAVAILABLE', `${endpoint.href}: the server does not take WebSockets over HTTP/2: ${why}`);
    const timer = { onTimer: () => fail(new TimeoutError('ERR_HANDSHAKE_TIMEOUT', `${endpoint.href}: HTTP/2 connection not ready within ${endpoint.timeoutMs} ms`)) };
    context.timers.schedule(timer, context.now() + endpoint.timeoutMs);
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      context.timers.cancel(timer);
      if (session !== null) session.destroy();
      socket.destroy();
      reject(err);
    };
    const done = (s: ClientHttp2Session) => {
      if (settled) return;
      settled = true;
      context.timers.cancel(timer);
      socket.off('error', onSocketError);
      resolve(s);
    };
    const onSocketError = (err: Error) => {
      if (!connected) fail(endpoint.connectError(err));
      // Cleartext: node reports a server that answers the preface in HTTP/1.1 as a protocol error on the socket.
      else if (!endpoint.secure) fail(unavailable(`it did not answer the HTTP/2 preface (${err.message})`));
      else fail(new TransportError('ERR_CONNECTION_CLOSED', `${endpoint.href}: HTTP/2 connection failed: ${err.message}`, { cause: err }));
    };
    const onConnected = () => {
      connected = true;
      if (endpoint.secure && (socket as TLSSocket).alpnProtocol !== 'h2') {
        fail(unavailable(`TLS ALPN chose ${JSON.stringify((socket as TLSSocket).alpnProtocol || 'nothing')}, not h2`));
        return;
      }
      const s = h2Connect(`${endpoint.secure ? 'https' : 'http'}://${endpoint.authority}`, { createConnection: () => socket });
      session = s;
      s.on('error', (err: Error) => {
        // Cleartext: a server without HTTP/2 answers the preface in HTTP/1.1 (or hangs up), which node reports as a protocol error.
        if (!endpoint.secure) fail(unavailable(`it did not answer the HTTP/2 preface (${err.message})`));
        else fail(new TransportError('ERR_CONNECTION_CLOSED', `${endpoint.href}: HTTP/2 connection failed: ${err.message}`, { cause: err }));
      });
      s.once('close', () => fail(endpoint.secure ? new TransportError('ERR_CONNECTION_CLOSED', `${endpoint.href}: the server closed the HTTP/2 connection before its SETTINGS`) : unavailable('it closed the connection on the HTTP/2 preface')));
      s.once('remoteSettings', (settings) => {
        if (settings.enableConnectProtocol !== true) fail(unavailable('its SETTINGS lack SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 (RFC 8441 section 3)'));
        else done(s);
      });
    };
    if (endpoint.secure) {
      const where = endpoint.socketPath !== undefined ? { path: endpoint.socketPath } : { host: endpoint.host, port: endpoint.port };
      socket = tlsConnect({ ...where, ...endpoint.tls, ALPNProtocols: ['h2', 'http/1.1'] });
      socket.once('secureConnect', onConnected);
    } else {
      socket = endpoint.socketPath !== undefined ? netConnect({ path: endpoint.socketPath }) : netConnect({ host: endpoint.host, port: endpoint.port });
      socket.once('connect', onConnected);
    }
    socket.on('error', onSocketError);
  });
}

/** The request fields of buildExtendedConnectRequest() as node:http2 takes them (a repeated name becomes a list). */
export function toOutgoingHeaders(fields: ReadonlyArray<[string, string]>): OutgoingHttpHeaders {
  const out: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  for (const [name, value] of fields) {
    const had = out[name];
    out[name] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value];
  }
  return out;
}

/** node's response headers as the core's response head (:status as the status; names already lower-case, RFC 9113 section 8.2.1). */
export function responseHead(headers: IncomingHttpHeaders & IncomingHttpStatusHeader): HttpHead {
  const map = new Map<string, string[]>();
  const raw: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const values = Array.isArray(value) ? value : [String(value)];
    map.set(name, values);
    for (const v of values) raw.push([name, v]);
  }
  return { kind: 'response', method: '', target: '', status: Number(headers[':status'] ?? 0), reason: '', version: '2', headers: map, rawHeaders: raw };
}

/** RST_STREAM with CANCEL (RFC 8441 section 5.1: what a TCP reset is for a WebSocket on a stream). */
export function cancelStream(stream: ClientHttp2Stream): void {
  if (!stream.closed && !stream.destroyed) stream.close(h2constants.NGHTTP2_CANCEL);
  stream.destroy();
}
