import type { HttpHead } from '../core/http-head.js';
import type { ExtendedConnectInfo } from '../core/handshake.js';
import { InvalidStateError } from '../core/errors.js';
import type { UpgradeRequest } from './server-session.js';
import { splitTarget } from './handshake-request.js';

/**
 * The UpgradeRequest of a WebSocket opened by an HTTP/2 extended CONNECT
 * (RFC 8441). `headers` holds every field of the request, the pseudo-header
 * fields included (':method', ':protocol', ':scheme', ':authority',
 * ':path'); `host` is the :authority. HPACK has already decoded the head, so
 * there is no text to keep: the parsed fields stay until release().
 */
export class Http2HandshakeRequest implements UpgradeRequest {
  readonly secure: boolean;
  readonly remoteAddress: string | undefined;
  readonly url: string;
  readonly host: string;
  readonly origin: string | undefined;
  readonly protocols: readonly string[];
  #headers: ReadonlyMap<string, readonly string[]> | null;
  #query: URLSearchParams | null = null;

  constructor(head: HttpHead, info: ExtendedConnectInfo, remoteAddress: string | undefined, secure: boolean) {
    this.secure = secure;
    this.remoteAddress = remoteAddress;
    this.url = head.target;
    this.host = info.host;
    this.origin = info.origin;
    this.protocols = info.protocols;
    this.#headers = head.headers;
  }

  get httpVersion(): '2' {
    return '2';
  }

  get path(): string {
    return splitTarget(this.url).path;
  }

  get query(): URLSearchParams {
    return (this.#query ??= new URLSearchParams(splitTarget(this.url).query));
  }

  get headers(): ReadonlyMap<string, readonly string[]> {
    if (this.#headers === null) throw new InvalidStateError('read request.headers', 'open and its request headers were released after onOpen (retainRequestHeaders: false)');
    return this.#headers;
  }

  /** Nothing to compact: the fields are already parsed (HandshakeRequest's counterpart). */
  compact(): void {
    this.#query = null;
  }

  /** Lets the header fields go (server option retainRequestHeaders: false). */
  release(): void {
    this.#headers = null;
    this.#query = null;
  }
}

/**
 * The head of an HTTP/2 request as the handshake functions take it: node's
 * raw header list (name, value, name, value...; names lower-cased by HPACK,
 * RFC 9113 section 8.2.1), pseudo-header fields kept as fields.
 */
export function headOfHttp2Request(rawHeaders: readonly string[]): HttpHead {
  const headers = new Map<string, string[]>();
  const raw: Array<[string, string]> = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i].toLowerCase();
    const value = rawHeaders[i + 1];
    raw.push([name, value]);
    const list = headers.get(name);
    if (list) list.push(value);
    else headers.set(name, [value]);
  }
  const method = headers.get(':method')?.[0] ?? '';
  const target = headers.get(':path')?.[0] ?? '';
  return { kind: 'request', method, target, status: 0, reason: '', version: '2', headers, rawHeaders: raw };
}
