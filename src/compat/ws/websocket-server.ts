import { EventEmitter } from 'node:events';
import { createServer as createHttpServer, STATUS_CODES, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { HandshakeError } from '../../core/errors.js';
import { acceptKey, isValidKey, validateUpgradeRequest } from '../../core/handshake.js';
import { isToken } from '../../core/http-head.js';
import { negotiateDeflate, validateDeflateConfig } from '../../core/deflate-negotiation.js';
import { formatExtension, parseExtensionHeader, type ExtensionOffer } from '../../core/extension-header.js';
import type { MessageCodec } from '../../core/message-codec.js';
import { Context } from '../../transport/context.js';
import { DeflateCodec, validateZlibOptions, type PerMessageDeflateOptions } from '../../transport/permessage-deflate.js';
import { setNoDelay } from '../../transport/stream-adapter.js';
import { headOfRequest } from '../../server/handshake-request.js';
import { deflateOf, WS_DEFAULT_CONCURRENCY, type WsCommonOptions, type WsPerMessageDeflateOptions } from './options.js';
import { WebSocket } from './websocket.js';

export interface VerifyClientInfo {
  origin: string | undefined;
  secure: boolean;
  req: IncomingMessage;
}
export type VerifyClientCallback = (result: boolean, code?: number, name?: string, headers?: Record<string, string | number>) => void;
export type VerifyClient = ((info: VerifyClientInfo) => boolean) | ((info: VerifyClientInfo, callback: VerifyClientCallback) => void);

export interface WebSocketServerOptions extends WsCommonOptions {
  port?: number;
  host?: string;
  backlog?: number;
  server?: HttpServer | HttpsServer;
  noServer?: boolean;
  path?: string;
  verifyClient?: VerifyClient;
  /** Picks the subprotocol (read at every upgrade); false answers without one. Default: the client's first. */
  handleProtocols?: ((protocols: Set<string>, request: IncomingMessage) => string | false) | null;
  clientTracking?: boolean;
  perMessageDeflate?: boolean | WsPerMessageDeflateOptions;
  /** The class of the sockets the server makes (a subclass of this module's WebSocket). */
  WebSocket?: typeof WebSocket;
}

const RUNNING = 0;
const CLOSING = 1;
const CLOSED = 2;

/** Sockets handed to a handleUpgrade() already: a second call for one is a misconfiguration. */
const UPGRADED = Symbol('sockeye.ws.upgraded');

/**
 * ws's WebSocketServer over sockeye's engine. It takes ws 8's options and
 * emits ws's events; each connection is a WebSocket driving a sockeye
 * Session. The opening handshake makes ws's checks (and answers with its
 * statuses and texts), then sockeye's stricter ones (RFC 6455 section 4.2.1).
 * Guarded by test/compat/ws/websocket-server.test.ts.
 */
export class WebSocketServer extends EventEmitter {
  readonly options: WebSocketServerOptions;
  /** Connected sockets (with clientTracking, the default). */
  readonly clients: Set<WebSocket> | undefined;
  #server: HttpServer | HttpsServer | null = null;
  #state = RUNNING;
  #shouldEmitClose = false;
  #deflate: PerMessageDeflateOptions | null;
  #context: Context;
  #removeListeners: (() => void) | null = null;

  constructor(options: WebSocketServerOptions = {}, callback?: () => void) {
    super();
    const o = { allowSynchronousEvents: true, autoPong: true, clientTracking: true, perMessageDeflate: false as boolean | WsPerMessageDeflateOptions, handleProtocols: null, WebSocket, ...options };
    this.options = o;
    const port = options.port;
    if ((port == null && !options.server && !options.noServer) || (port != null && (options.server || options.noServer)) || (options.server && options.noServer)) {
      throw new TypeError('One and only one of the "port", "server", or "noServer" options must be specified');
    }
    this.#deflate = deflateOf(o.perMessageDeflate);
    if (this.#deflate) {
      validateDeflateConfig(this.#deflate);
      validateZlibOptions(this.#deflate);
    }
    const pmd = typeof o.perMessageDeflate === 'object' ? o.perMessageDeflate : undefined;
    this.#context = new Context({ zlibConcurrency: pmd?.concurrencyLimit ?? WS_DEFAULT_CONCURRENCY });
    if (port != null) {
      const server = createHttpServer((_req, res) => {
        const body = STATUS_CODES[426]!;
        res.writeHead(426, { 'Content-Length': body.length, 'Content-Type': 'text/plain' });
        res.end(body);
      });
      this.#server = server;
      server.listen(port, options.host, options.backlog, callback);
    } else if (options.server) {
      this.#server = options.server;
    }
    if (this.#server) {
      const server = this.#server;
      const onListening = () => this.emit('listening');
      const onError = (err: Error) => this.emit('error', err);
      const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        this.handleUpgrade(req, socket, head, (ws) => this.emit('connection', ws, req));
      };
      server.on('listening', onListening);
      server.on('error', onError);
      server.on('upgrade', onUpgrade);
      this.#removeListeners = () => {
        server.off('listening', onListening);
        server.off('error', onError);
        server.off('upgrade', onUpgrade);
      };
    }
    if (o.clientTracking) this.clients = new Set();
  }

  /** The HTTP server under this one (made for `port`, or given as `server`; null in noServer mode), as ws has it. */
  get _server(): HttpServer | HttpsServer | null {
    return this.#server;
  }

  /** The bound address of the server (null before it listens); throws in noServer mode. */
  address(): AddressInfo | string | null {
    if (this.options.noServer) throw new Error('The server is operating in "noServer" mode');
    if (!this.#server) return null;
    return this.#server.address();
  }

  /**
   * Stops accepting connections (and closes the HTTP server if this server
   * made it). Open connections are left alone, as in ws: 'close' is emitted
   * once the last one has closed (with client tracking) and the HTTP server
   * has closed.
   */
  close(cb?: (err?: Error) => void): void {
    if (this.#state === CLOSED) {
      if (cb) this.once('close', () => cb(new Error('The server is not running')));
      process.nextTick(() => this.#emitClose());
      return;
    }
    if (cb) this.once('close', cb);
    if (this.#state === CLOSING) return;
    this.#state = CLOSING;
    if (this.options.noServer || this.options.server) {
      this.#removeListeners?.();
      this.#removeListeners = null;
      if (this.clients && this.clients.size > 0) this.#shouldEmitClose = true;
      else process.nextTick(() => this.#emitClose());
    } else {
      const server = this.#server!;
      this.#removeListeners?.();
      this.#removeListeners = null;
      server.close(() => this.#emitClose());
    }
  }

  #emitClose(): void {
    this.#state = CLOSED;
    this.emit('close');
  }

  /** Whether this server handles `req`: by default, whether its path is the `path` option (when set). */
  shouldHandle(req: IncomingMessage): boolean {
    if (this.options.path) {
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      return (q === -1 ? url : url.slice(0, q)) === this.options.path;
    }
    return true;
  }

  /**
   * Completes (or refuses) the opening handshake of an HTTP upgrade request,
   * calling `cb(ws, req)` with the open WebSocket.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, cb: (ws: WebSocket, req: IncomingMessage) => void): void {
    socket.on('error', destroyOnError);
    const key = req.headers['sec-websocket-key'];
    const upgrade = req.headers.upgrade;
    const version = Number(req.headers['sec-websocket-version']);
    if (req.method !== 'GET') return this.#refuse(req, socket, 405, 'Invalid HTTP method');
    if (upgrade === undefined || upgrade.toLowerCase() !== 'websocket') return this.#refuse(req, socket, 400, 'Invalid Upgrade header');
    if (key === undefined || !isValidKey(key)) return this.#refuse(req, socket, 400, 'Missing or invalid Sec-WebSocket-Key header');
    if (version !== 13 && version !== 8) return this.#refuse(req, socket, 400, 'Missing or invalid Sec-WebSocket-Version header', { 'Sec-WebSocket-Version': '13, 8' });
    if (!this.shouldHandle(req)) return abortHandshake(socket, 400);
    const protocolHeader = req.headers['sec-websocket-protocol'];
    let protocols = new Set<string>();
    if (protocolHeader !== undefined) {
      const list = protocolHeader.split(',').map((p) => p.trim());
      protocols = new Set(list);
      if (list.some((p) => !isToken(p)) || protocols.size !== list.length) return this.#refuse(req, socket, 400, 'Invalid Sec-WebSocket-Protocol header');
    }
    let offers: ExtensionOffer[] = [];
    const extHeader = req.headers['sec-websocket-extensions'];
    if (this.#deflate && extHeader !== undefined) {
      try {
        offers = parseExtensionHeader(extHeader);
      } catch {
        return this.#refuse(req, socket, 400, 'Invalid or unacceptable Sec-WebSocket-Extensions header');
      }
    }
    // sockeye's checks, stricter than ws's (RFC 6455 section 4.2.1: Host, Connection, HTTP/1.1...). Version 8
    // (a draft ws still accepts) is let through them: its handshake is the same.
    try {
      const parsed = headOfRequest(req);
      if (version === 8) parsed.headers.set('sec-websocket-version', ['13']);
      validateUpgradeRequest(parsed);
    } catch (err) {
      const status = err instanceof HandshakeError ? (err.status ?? 400) : 400;
      return this.#refuse(req, socket, status, (err as Error).message);
    }
    const verify = this.options.verifyClient;
    if (verify) {
      const origin = req.headers[version === 8 ? 'sec-websocket-origin' : 'origin'];
      const tls = req.socket as { authorized?: boolean; encrypted?: boolean };
      const vinfo: VerifyClientInfo = { origin: Array.isArray(origin) ? origin[0] : origin, secure: !!(tls.authorized || tls.encrypted), req };
      if (verify.length === 2) {
        (verify as (i: VerifyClientInfo, c: VerifyClientCallback) => void)(vinfo, (ok, code, name, headers) => {
          if (!ok) return abortHandshake(socket, code || 401, name, headers);
          this.#complete(key, protocols, offers, req, socket, head, cb);
        });
        return;
      }
      if (!(verify as (i: VerifyClientInfo) => boolean)(vinfo)) return abortHandshake(socket, 401);
    }
    this.#complete(key, protocols, offers, req, socket, head, cb);
  }

  #complete(key: string, protocols: Set<string>, offers: ExtensionOffer[], req: IncomingMessage, socket: Duplex, head: Buffer, cb: (ws: WebSocket, req: IncomingMessage) => void): void {
    if (!socket.readable || !socket.writable) {
      socket.destroy();
      return;
    }
    const marked = socket as Duplex & { [UPGRADED]?: boolean };
    if (marked[UPGRADED]) throw new Error('server.handleUpgrade() was called more than once with the same socket, possibly due to a misconfiguration');
    if (this.#state > RUNNING) return abortHandshake(socket, 503);
    const lines = ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${acceptKey(key)}`];
    const WS = this.options.WebSocket ?? WebSocket;
    const ws = new WS(null);
    let protocol = '';
    if (protocols.size > 0) {
      // Read at every upgrade: graphql-ws sets handleProtocols after the server is made.
      const handle = this.options.handleProtocols;
      const picked = handle ? handle(protocols, req) : protocols.values().next().value;
      if (picked) {
        protocol = picked;
        lines.push(`Sec-WebSocket-Protocol: ${protocol}`);
      }
    }
    let codec: MessageCodec | null = null;
    const extensions: string[] = [];
    if (this.#deflate && offers.length > 0) {
      const agreed = negotiateDeflate(offers, this.#deflate);
      if (agreed) {
        lines.push(`Sec-WebSocket-Extensions: ${formatExtension(agreed.response)}`);
        codec = new DeflateCodec('server', agreed.params, this.#deflate, this.#context.zlib);
        extensions.push(agreed.response.name);
      }
    }
    this.emit('headers', lines, req);
    // Lines an application added go out as they are, one per line: a CR or LF in one would split the head.
    if (lines.some((l) => /[\r\n]/.test(String(l)))) {
      codec?.close();
      abortHandshake(socket, 500);
      this.emit('error', new TypeError('a line added in the "headers" event contains CR or LF'));
      return;
    }
    socket.write(lines.concat('\r\n').join('\r\n'));
    socket.removeListener('error', destroyOnError);
    marked[UPGRADED] = true;
    setNoDelay(socket);
    const clients = this.clients;
    if (clients) clients.add(ws);
    ws._attach({
      socket,
      head,
      role: 'server',
      context: this.#context,
      protocol,
      extensions,
      codec,
      options: this.options,
      onClosed: (w) => {
        if (clients) {
          clients.delete(w);
          if (this.#shouldEmitClose && clients.size === 0) process.nextTick(() => this.#emitClose());
        }
      },
    });
    cb(ws, req);
  }

  /** A handshake ws refuses: to a 'wsClientError' listener if there is one, or answered with `status`. */
  #refuse(req: IncomingMessage, socket: Duplex, status: number, message: string, headers?: Record<string, string>): void {
    if (this.listenerCount('wsClientError') > 0) {
      const err = new Error(message);
      this.emit('wsClientError', err, socket, req);
      return;
    }
    abortHandshake(socket, status, message, headers);
  }
}

function destroyOnError(this: Duplex): void {
  this.destroy();
}

/** Answers a refused handshake with `status` (ws's response: text body, Connection: close) and closes the socket. */
function abortHandshake(socket: Duplex, status: number, message?: string, headers?: Record<string, string | number>): void {
  const body = message || STATUS_CODES[status] || '';
  const all: Record<string, string | number> = { Connection: 'close', 'Content-Type': 'text/html', 'Content-Length': Buffer.byteLength(body), ...headers };
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` + Object.keys(all).map((h) => `${h}: ${all[h]}`).join('\r\n') + '\r\n\r\n' + body);
}
