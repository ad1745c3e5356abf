import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { remoteAddressOf } from '../transport/stream-adapter.js';
import { HttpHeadParser, type HttpHead } from '../core/http-head.js';
import { validateUpgradeRequest, type UpgradeRequestInfo } from '../core/handshake.js';
import type { UpgradeRequest } from './server-session.js';
import { InvalidStateError } from '../core/errors.js';

const NO_PROTOCOLS: readonly string[] = Object.freeze([]);

/** What a released request still answers (see release()); strings are flat copies, holding no part of the head. */
interface Kept {
  url: string;
  host: string;
  origin: string | undefined;
  protocols: readonly string[];
}

/**
 * The UpgradeRequest a session keeps for its whole life, in little memory:
 * one string (the validated head, rebuilt from its parsed lines), the
 * stream and a flag. Everything else (headers, query, host, ...) is parsed again from
 * that string on first use and kept only until compact(): the parsed head (a
 * Map of arrays, a lower-cased copy of every name, the query's
 * URLSearchParams) would cost every idle server connection far more than its
 * text (test/server/handshake-request.test.ts).
 */
export class HandshakeRequest implements UpgradeRequest {
  readonly secure: boolean;
  /**
   * Where the peer's address comes from: the connection's stream, asked on
   * first read (node:net then keeps it), or the address itself. Asking at
   * every handshake would cost a getpeername() system call and the
   * address's object and string on every idle connection, for a value many
   * applications never read (test/server/handshake-request.test.ts).
   */
  readonly #peer: Duplex | string | undefined;
  #source: string;
  /** Set by release(): the head's text is gone and only these remain. */
  #kept: Kept | null = null;
  #head: HttpHead | null;
  #info: UpgradeRequestInfo | null;
  #query: URLSearchParams | null = null;

  constructor(head: HttpHead, info: UpgradeRequestInfo, peer: Duplex | string | undefined, secure: boolean) {
    this.secure = secure;
    this.#peer = peer;
    this.#head = head;
    this.#info = info;
    // One flat string of the head as parsed (names as sent, values trimmed): it parses back to the same head.
    // Array join builds a flat string: no rope of parts, no slice of the read buffer's text.
    const lines = [`${head.method} ${head.target} HTTP/${head.version}`];
    for (const [name, value] of head.rawHeaders) lines.push(`${name}: ${value}`);
    this.#source = lines.join('\r\n');
  }

  /**
   * The peer's IP address, read from the socket the first time it is asked
   * for. Read while the connection is open (in verifyClient or onOpen, say),
   * it stays known after the close; first asked after the socket has closed,
   * it is undefined, as node:net's own socket.remoteAddress is.
   */
  get remoteAddress(): string | undefined {
    const peer = this.#peer;
    return peer === undefined || typeof peer === 'string' ? peer : remoteAddressOf(peer);
  }

  /** Always '1.1': the request was an HTTP/1.1 upgrade (validateUpgradeRequest() accepts no other). */
  get httpVersion(): '1.1' {
    return '1.1';
  }

  /** Forgets what was parsed (the session keeps only the head's text). */
  compact(): void {
    this.#head = null;
    this.#info = null;
    this.#query = null;
  }

  /**
   * Keeps only the target and what the handshake settled (host, origin,
   * protocols) and lets the head's text go: server option
   * `retainRequestHeaders: false`, once onOpen has returned. A browser's
   * upgrade request with a cookie is 0.5-1 KB, held by every idle connection
   * for a `headers` that most applications read only in onOpen (libwebsockets
   * and uWebSockets give the headers only during the handshake). Best called
   * before compact(), while the head is still parsed (after it, the text is
   * parsed once more).
   */
  release(): void {
    if (this.#kept) return;
    const protocols = this.protocols;
    const origin = this.origin;
    this.#kept = {
      url: flat(this.url),
      host: flat(this.host),
      origin: origin === undefined ? undefined : flat(origin),
      protocols: protocols.length === 0 ? NO_PROTOCOLS : protocols.map(flat),
    };
    this.#source = '';
    this.compact();
  }

  private get head(): HttpHead {
    if (this.#head) return this.#head;
    if (this.#kept) throw new InvalidStateError('read request.headers', 'open and its request headers were released after onOpen (retainRequestHeaders: false)');
    const parser = new HttpHeadParser('request', { maxHeadBytes: this.#source.length + 4, maxHeaders: Number.MAX_SAFE_INTEGER });
    const r = parser.push(Buffer.from(this.#source + '\r\n\r\n', 'latin1'));
    // The text was rebuilt from a head that parsed and validated: it cannot fail to parse again.
    if (!r) throw new Error('internal: the stored handshake head no longer parses');
    return (this.#head = r.head);
  }

  private get info(): UpgradeRequestInfo {
    return (this.#info ??= validateUpgradeRequest(this.head));
  }

  get url(): string {
    return this.#kept ? this.#kept.url : this.head.target;
  }

  get path(): string {
    return splitTarget(this.url).path;
  }

  get query(): URLSearchParams {
    return (this.#query ??= new URLSearchParams(splitTarget(this.url).query));
  }

  get host(): string {
    return this.#kept ? this.#kept.host : this.info.host;
  }

  get origin(): string | undefined {
    return this.#kept ? this.#kept.origin : this.info.origin;
  }

  get headers(): ReadonlyMap<string, readonly string[]> {
    return this.head.headers;
  }

  get protocols(): readonly string[] {
    return this.#kept ? this.#kept.protocols : this.info.protocols;
  }
}

/**
 * A copy of `s` that shares no memory with the string it was cut from: V8
 * makes a substring of 13 characters or more a view of its parent, which
 * would keep the whole head alive.
 */
function flat(s: string): string {
  return s.length < 13 ? s : Buffer.from(s, 'latin1').toString('latin1');
}

/**
 * The head of a message node:http has parsed (a request's 'upgrade' event on a
 * server, or a response's on a client), in the shape the handshake functions take.
 */
export function headOfRequest(req: IncomingMessage, kind: 'request' | 'response' = 'request'): HttpHead {
  const headers = new Map<string, string[]>();
  const rawHeaders: Array<[string, string]> = [];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i];
    const value = req.rawHeaders[i + 1];
    rawHeaders.push([name, value]);
    const key = name.toLowerCase();
    const list = headers.get(key);
    if (list) list.push(value);
    else headers.set(key, [value]);
  }
  if (kind === 'response') return { kind, method: '', target: '', status: req.statusCode ?? 0, reason: req.statusMessage ?? '', version: req.httpVersion, headers, rawHeaders };
  return { kind, method: req.method ?? '', target: req.url ?? '/', status: 0, reason: '', version: req.httpVersion, headers, rawHeaders };
}

/** A request-target split at its first '?': the path, and the query without the '?' ('' if none). */
export function splitTarget(target: string): { path: string; query: string } {
  const q = target.indexOf('?');
  return q === -1 ? { path: target, query: '' } : { path: target.slice(0, q), query: target.slice(q + 1) };
}
