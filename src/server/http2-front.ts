import { createServer as createH2Server, type Http2Server, type Http2ServerRequest, type Http2ServerResponse, type Http2Session, type ServerHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import { InvalidArgumentError } from '../core/errors.js';
import type { Context } from '../transport/context.js';
import type { TimerEntry } from '../transport/timer-wheel.js';

/** HTTP/2 on the WebSocket port (ServerOptions.http2). */
export interface Http2Options {
  /**
   * SETTINGS_MAX_CONCURRENT_STREAMS (RFC 9113 section 6.5.2): most streams,
   * WebSockets and HTTP requests together, open at once on one connection.
   * Default 100 (node:http2's own default is unlimited).
   */
  maxConcurrentStreams?: number;
  /**
   * SETTINGS_INITIAL_WINDOW_SIZE (RFC 9113 section 6.9.2): bytes a peer may
   * send on one stream before we read them. Default 65535.
   */
  initialWindowSize?: number;
  /** Memory one HTTP/2 connection may use for its own buffers, in MB (node:http2's maxSessionMemory). Default 10. */
  maxSessionMemory?: number;
}

/** Http2Options with their defaults, checked (the server calls it at construction: a bad option fails at start-up). */
export function validateHttp2Options(options: Http2Options): Required<Http2Options> {
  const maxConcurrentStreams = options.maxConcurrentStreams ?? 100;
  if (!(Number.isInteger(maxConcurrentStreams) && maxConcurrentStreams >= 1 && maxConcurrentStreams <= 0xffffffff)) {
    throw new InvalidArgumentError('ERR_BAD_OPTION', `http2.maxConcurrentStreams must be a whole number from 1 to 2^32-1, not ${String(maxConcurrentStreams)}`);
  }
  const initialWindowSize = options.initialWindowSize ?? 65535;
  if (!(Number.isInteger(initialWindowSize) && initialWindowSize >= 0 && initialWindowSize <= 0x7fffffff)) {
    throw new InvalidArgumentError('ERR_BAD_OPTION', `http2.initialWindowSize must be a whole number from 0 to 2^31-1 (RFC 9113 section 6.5.2), not ${String(initialWindowSize)}`);
  }
  const maxSessionMemory = options.maxSessionMemory ?? 10;
  if (!(typeof maxSessionMemory === 'number' && maxSessionMemory >= 1)) {
    throw new InvalidArgumentError('ERR_BAD_OPTION', `http2.maxSessionMemory is a number of MB, 1 or more, not ${String(maxSessionMemory)}`);
  }
  return { maxConcurrentStreams, initialWindowSize, maxSessionMemory };
}

/** What the HTTP/2 front hands back to the WebSocket server. */
export interface Http2FrontHost {
  /** An extended CONNECT (RFC 8441): answer it and, if accepted, run a session over the stream. */
  extendedConnect(stream: ServerHttp2Stream, rawHeaders: readonly string[], secure: boolean): void;
  /** Any other request; undefined answers it 426 (this endpoint speaks WebSocket only). */
  readonly onHttpRequest: ((req: Http2ServerRequest, res: Http2ServerResponse) => void) | undefined;
  /** The front refused a request that came for a WebSocket (a plain CONNECT, or 426 for any other request): counted as a failed handshake. */
  refused(status: number): void;
  report(error: unknown): void;
}

export interface Http2FrontOptions extends Http2Options {
  /** A connection that has opened no stream by then is closed (the HTTP/2 side of handshakeTimeoutMs). */
  handshakeTimeoutMs: number;
  maxHeadBytes: number;
  maxHeaders: number;
}

/** Pseudo-header fields node counts in maxHeaderListPairs on top of the header fields (RFC 8441 section 5 uses five). */
const PSEUDO_FIELDS = 5;

/** The timer of an HTTP/2 connection that has not opened a stream yet. */
interface PendingConnection extends TimerEntry {
  session: Http2Session;
}

/**
 * HTTP/2 on the port of a WebSocket server: an internal node:http2 server
 * that never listens, handed the connections that chose HTTP/2 (ALPN "h2",
 * or the connection preface in cleartext with prior knowledge, RFC 9113
 * section 3.3). It advertises SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441
 * section 3) and sorts the streams: an extended CONNECT goes to the
 * WebSocket server, any other request to onHttpRequest through node's
 * compatibility API. HTTP/1.1 connections never come here: they keep the
 * server's own HTTP/1.1 path.
 *
 * Each WebSocket is one stream: HTTP/2 flow control is per stream (RFC 9113
 * section 5.2), so a stream whose peer stops reading only fills its own
 * window and its session's queue (bounded by maxQueuedBytes), and a session
 * that pauses its reading holds only its own stream's window; the others
 * carry on (S1, S3).
 */
export class Http2Front {
  private readonly server: Http2Server;
  private readonly sessions = new Set<Http2Session>();
  private readonly pending = new Set<PendingConnection>();
  private readonly context: Context;
  private readonly handshakeTimeoutMs: number;

  constructor(options: Http2FrontOptions, host: Http2FrontHost, context: Context) {
    const { maxConcurrentStreams, initialWindowSize, maxSessionMemory } = validateHttp2Options(options);
    this.context = context;
    this.handshakeTimeoutMs = options.handshakeTimeoutMs;
    this.server = createH2Server({
      settings: {
        // RFC 8441 section 3: without it a client may not send :protocol.
        enableConnectProtocol: true,
        maxConcurrentStreams,
        initialWindowSize,
        // The head limits of HTTP/1.1, applied to HPACK's decoded header list (RFC 9113 section 6.5.2).
        maxHeaderListSize: options.maxHeadBytes,
      },
      maxHeaderListPairs: options.maxHeaders + PSEUDO_FIELDS,
      maxSessionMemory,
    });
    this.server.on('session', (session: Http2Session) => this.track(session));
    // node's compatibility API: CONNECT requests come as 'connect', the others as 'request'.
    this.server.on('connect', (req: Http2ServerRequest, res: Http2ServerResponse) => {
      const stream = req.stream;
      const secure = stream.session?.encrypted === true;
      if (req.headers[':protocol'] === undefined) {
        // A plain CONNECT (RFC 9113 section 8.5) asks for a tunnel: this server is not a proxy.
        host.refused(405);
        res.writeHead(405, { allow: 'CONNECT', 'content-type': 'text/plain; charset=utf-8' });
        res.end('this server opens WebSockets (RFC 8441), not tunnels');
        return;
      }
      host.extendedConnect(stream, req.rawHeaders, secure);
    });
    this.server.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => {
      const handler = host.onHttpRequest;
      if (handler) {
        try {
          handler(req, res);
        } catch (err) {
          host.report(err);
          if (!res.headersSent) res.writeHead(500);
          res.end();
        }
        return;
      }
      // As over HTTP/1.1 (426), without the Upgrade header HTTP/2 forbids (RFC 9113 section 8.2.2).
      host.refused(426);
      res.writeHead(426, { 'sec-websocket-version': '13', 'content-type': 'text/plain; charset=utf-8' });
      res.end('this endpoint speaks WebSocket only');
    });
    this.server.on('sessionError', (err: Error) => host.report(err));
  }

  /** Runs HTTP/2 on `socket`: a TLS socket that negotiated "h2", or a cleartext one that sent the preface. */
  accept(socket: Duplex): void {
    this.server.emit('connection', socket);
  }

  /** The number of HTTP/2 connections open. */
  get connections(): number {
    return this.sessions.size;
  }

  private track(session: Http2Session): void {
    this.sessions.add(session);
    const pending: PendingConnection = {
      session,
      wheelSlot: -1,
      wheelPrev: null,
      wheelNext: null,
      // A connection that opens no stream in time holds a socket for nothing (slowloris on HTTP/2).
      onTimer: () => {
        this.pending.delete(pending);
        session.destroy();
      },
    };
    this.pending.add(pending);
    this.context.timers.schedule(pending, this.context.now() + this.handshakeTimeoutMs);
    const settled = () => {
      if (!this.pending.delete(pending)) return;
      this.context.timers.cancel(pending);
    };
    session.once('stream', settled);
    session.once('close', () => {
      settled();
      this.sessions.delete(session);
    });
    // Errors of a connection end it; each of its WebSockets reports its own end (1006, unsent messages).
    session.on('error', () => session.destroy());
  }

  /**
   * Stops the HTTP/2 connections taking new streams: GOAWAY (RFC 9113 section
   * 6.8); the streams open go on until they end.
   */
  close(): void {
    for (const p of this.pending) this.context.timers.cancel(p);
    this.pending.clear();
    for (const s of this.sessions) if (!s.closed) s.close();
  }

  /** Ends every HTTP/2 connection at once (after close(), for what did not end by itself). */
  destroy(): void {
    for (const s of this.sessions) s.destroy();
    this.sessions.clear();
  }
}
