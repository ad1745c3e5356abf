import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Duplex } from 'node:stream';
import { acceptKey, isValidKey, validateUpgradeResponse } from '../../core/handshake.js';
import { isToken } from '../../core/http-head.js';
import { acceptDeflateResponse, buildDeflateOffer, PERMESSAGE_DEFLATE } from '../../core/deflate-negotiation.js';
import { formatExtension, parseExtensionHeader } from '../../core/extension-header.js';
import type { MessageCodec } from '../../core/message-codec.js';
import { Context } from '../../transport/context.js';
import { DeflateCodec, validateZlibOptions } from '../../transport/permessage-deflate.js';
import { setNoDelay } from '../../transport/stream-adapter.js';
import { headOfRequest } from '../../server/handshake-request.js';
import { deflateOf, WS_DEFAULT_CONCURRENCY } from './options.js';
import type { WebSocket, WebSocketClientOptions } from './websocket.js';

/** Options of ours that https.request() must not see. */
const OWN_OPTIONS = [
  'allowSynchronousEvents',
  'autoPong',
  'closeTimeout',
  'maxPayload',
  'maxFragments',
  'maxBufferedChunks',
  'skipUTF8Validation',
  'maxQueuedBytes',
  'handshakeTimeout',
  'followRedirects',
  'maxRedirects',
  'origin',
  'protocolVersion',
  'perMessageDeflate',
  'finishRequest',
  'generateMask',
] as const;

/**
 * The client's opening handshake, as ws does it: an HTTP GET request through
 * node:http or node:https (so `agent`, `createConnection`, `auth` and the TLS
 * options work as with ws), then sockeye's checks of the answer (RFC 6455
 * section 4.1) on top of ws's, and the socket handed to a sockeye session.
 * Errors that ws throws synchronously are thrown here; later failures reach
 * the WebSocket as 'error' then 'close' (1006).
 */
export function openClient(ws: WebSocket, address: string | URL, protocols: string[], options: WebSocketClientOptions): void {
  const version = options.protocolVersion ?? 13;
  if (version !== 8 && version !== 13) throw new RangeError(`Unsupported protocol version: ${String(version)} (supported versions: 8, 13)`);
  let url: URL;
  if (address instanceof URL) url = address;
  else {
    try {
      url = new URL(address);
    } catch {
      throw new SyntaxError(`Invalid URL: ${address}`);
    }
  }
  if (url.protocol === 'http:') url = new URL('ws:' + url.href.slice(5));
  else if (url.protocol === 'https:') url = new URL('wss:' + url.href.slice(6));
  ws._url = url.href;
  const secure = url.protocol === 'wss:';
  const ipc = url.protocol === 'ws+unix:';
  let problem: string | null = null;
  if (url.protocol !== 'ws:' && !secure && !ipc) problem = 'The URL\'s protocol must be one of "ws:", "wss:", "http:", "https:", or "ws+unix:"';
  else if (ipc && url.pathname === '') problem = "The URL's pathname is empty";
  else if (url.hash !== '') problem = 'The URL contains a fragment identifier';
  if (problem !== null) {
    const err = new SyntaxError(problem);
    if (ws._redirects === 0) throw err;
    ws._fail(err);
    return;
  }
  const seen = new Set<string>();
  for (const p of protocols) {
    if (typeof p !== 'string' || !isToken(p) || seen.has(p)) throw new SyntaxError('An invalid or duplicated subprotocol was specified');
    seen.add(p);
  }

  const deflate = deflateOf(options.perMessageDeflate ?? true);
  if (deflate) validateZlibOptions(deflate);
  const pmd = typeof options.perMessageDeflate === 'object' ? options.perMessageDeflate : undefined;
  const context = new Context({ zlibConcurrency: pmd?.concurrencyLimit ?? WS_DEFAULT_CONCURRENCY });
  const key = context.newKey();

  const reqOptions: Record<string, unknown> = { ...options };
  for (const name of OWN_OPTIONS) delete reqOptions[name];
  // Names lower-cased, so that the headers a redirect must drop are found whatever their case.
  const headers: Record<string, string | string[] | number> = {};
  for (const [name, value] of Object.entries((options.headers ?? {}) as Record<string, string | string[] | number>)) headers[name.toLowerCase()] = value;
  headers['sec-websocket-version'] = version;
  headers['sec-websocket-key'] = key;
  headers.connection = 'Upgrade';
  headers.upgrade = 'websocket';
  if (deflate) headers['sec-websocket-extensions'] = formatExtension(buildDeflateOffer(deflate));
  if (protocols.length > 0) headers['sec-websocket-protocol'] = protocols.join(',');
  if (options.origin) headers[version === 13 ? 'origin' : 'sec-websocket-origin'] = options.origin;
  reqOptions.headers = headers;
  reqOptions.method = 'GET';
  if (options.handshakeTimeout) reqOptions.timeout = options.handshakeTimeout;
  if (url.username || url.password) reqOptions.auth = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
  const socketPath = ipc ? url.pathname.split(':')[0] : '';
  if (options.followRedirects) {
    if (ws._redirects === 0) {
      ws._origin = { ipc, secure, hostOrPath: ipc ? socketPath : url.host };
    } else if (ws.listenerCount('redirect') === 0 && ws._origin) {
      // As curl does: credentials and cookies go only to the same host (or socket), and never from wss: down
      // to ws:; the Host header only to the same host. With a 'redirect' listener the application decides.
      const o = ws._origin;
      const sameHost = ipc ? o.ipc && socketPath === o.hostOrPath : !o.ipc && url.host === o.hostOrPath;
      if (!sameHost || (o.secure && !secure)) {
        delete headers.authorization;
        delete headers.cookie;
        if (!sameHost) delete headers.host;
        delete reqOptions.auth;
      }
    }
    // The first credentials win: carried as a header, which a later URL's userinfo does not replace.
    if (typeof reqOptions.auth === 'string' && headers.authorization === undefined) headers.authorization = 'Basic ' + Buffer.from(reqOptions.auth).toString('base64');
  }
  if (ipc) {
    // ws+unix:/path/to/socket:/request/path?query
    const path = url.pathname.split(':')[1];
    reqOptions.socketPath = socketPath;
    reqOptions.path = (path || '/') + url.search;
    reqOptions.host = 'localhost';
  } else {
    reqOptions.host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    reqOptions.port = url.port === '' ? (secure ? 443 : 80) : url.port;
    reqOptions.path = url.pathname + url.search;
    if (secure && reqOptions.servername === undefined && !/^[\d.]+$|:/.test(reqOptions.host as string)) reqOptions.servername = reqOptions.host;
  }

  const req: ClientRequest = (secure ? httpsRequest : httpRequest)(reqOptions);
  ws._req = req;
  let done = false;
  const fail = (err: Error) => {
    if (done) return;
    done = true;
    context.close();
    if (ws._req === req) ws._req = null;
    ws._fail(err);
  };

  if (options.handshakeTimeout) {
    req.on('timeout', () => {
      req.destroy();
      fail(new Error('Opening handshake has timed out'));
    });
  }
  req.on('error', (err) => {
    // An aborted request (close() or terminate() while CONNECTING) reports its own error.
    if (ws._req !== req) return;
    fail(err);
  });
  req.on('response', (res: IncomingMessage) => {
    const location = res.headers.location;
    const status = res.statusCode ?? 0;
    if (location && options.followRedirects && status >= 300 && status < 400) {
      if (++ws._redirects > (options.maxRedirects ?? 10)) {
        req.destroy();
        fail(new Error('Maximum redirects exceeded'));
        return;
      }
      done = true;
      context.close();
      ws._req = null;
      req.destroy();
      res.resume();
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        ws._fail(new SyntaxError(`Invalid URL: ${location}`));
        return;
      }
      // The headers as sent (the first credentials among them); the next request drops what it must.
      const sent: Record<string, string | string[] | number> = { ...headers };
      for (const name of ['sec-websocket-version', 'sec-websocket-key', 'connection', 'upgrade', 'sec-websocket-extensions', 'sec-websocket-protocol']) delete sent[name];
      openClient(ws, next, protocols, { ...options, headers: sent as Record<string, string> });
      return;
    }
    // With a listener, the response is the application's to read; the WebSocket stays CONNECTING until
    // it calls close() or terminate(), as in ws.
    if (!ws.emit('unexpected-response', req, res)) {
      req.destroy();
      fail(new Error(`Unexpected server response: ${status}`));
    }
  });
  req.on('upgrade', (res: IncomingMessage, socket: Duplex, head: Buffer) => {
    ws._emitUpgrade(res);
    if (ws.readyState !== ws.CONNECTING || done) {
      socket.destroy();
      return;
    }
    const problem = checkAnswer(res, key, protocols, deflate !== null);
    if (problem !== null) {
      socket.destroy();
      fail(new Error(problem));
      return;
    }
    let codec: MessageCodec | null = null;
    let agreed;
    try {
      // sockeye's own checks, stricter than ws's (Connection must say Upgrade, one accept value...).
      agreed = validateUpgradeResponse(headOfRequest(res, 'response'), { key, protocols, offeredExtensions: deflate ? [PERMESSAGE_DEFLATE] : [] });
      const answer = agreed.extensions.find((e) => e.name === PERMESSAGE_DEFLATE);
      if (answer && deflate) codec = new DeflateCodec('client', acceptDeflateResponse(answer, deflate), deflate, context.zlib);
    } catch (err) {
      socket.destroy();
      // A bad extension answer gets ws's text (applications match on it); the engine's reason is the cause.
      const code = (err as { code?: unknown }).code;
      const extension = typeof code === 'string' && code.startsWith('ERR_BAD_EXTENSION');
      fail(new Error(extension ? 'Invalid Sec-WebSocket-Extensions header' : (err as Error).message, { cause: err }));
      return;
    }
    done = true;
    ws._req = null;
    setNoDelay(socket);
    ws._attach({
      socket,
      head,
      role: 'client',
      context,
      protocol: agreed.protocol ?? '',
      extensions: agreed.extensions.map((e) => e.name),
      codec,
      options,
      onClosed: () => context.close(),
    });
    ws._opened();
  });

  // Before the request is sent, so that a listener may still remove headers from it.
  if (ws._redirects > 0) ws.emit('redirect', ws.url, req);
  if (options.finishRequest) options.finishRequest(req, ws);
  else req.end();
}

/** ws's checks of the 101 answer, with its messages (applications match on them). Null when it passes. */
function checkAnswer(res: IncomingMessage, key: string, protocols: string[], offeredDeflate: boolean): string | null {
  const upgrade = res.headers.upgrade;
  if (upgrade === undefined || upgrade.toLowerCase() !== 'websocket') return 'Invalid Upgrade header';
  if (!isValidKey(key) || res.headers['sec-websocket-accept'] !== acceptKey(key)) return 'Invalid Sec-WebSocket-Accept header';
  const picked = res.headers['sec-websocket-protocol'];
  if (picked !== undefined) {
    if (protocols.length === 0) return 'Server sent a subprotocol but none was requested';
    if (!protocols.includes(picked)) return 'Server sent an invalid subprotocol';
  } else if (protocols.length > 0) return 'Server sent no subprotocol';
  const ext = res.headers['sec-websocket-extensions'];
  if (ext !== undefined) {
    if (!offeredDeflate) return 'Server sent a Sec-WebSocket-Extensions header but no extension was requested';
    let names: string[];
    try {
      names = parseExtensionHeader(ext).map((e) => e.name);
    } catch {
      return 'Invalid Sec-WebSocket-Extensions header';
    }
    if (names.length !== 1 || names[0] !== PERMESSAGE_DEFLATE) return 'Server indicated an extension that was not requested';
  }
  return null;
}
