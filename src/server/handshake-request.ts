import { HttpHeadParser, type HttpHead } from '../core/http-head.js';
import { validateUpgradeRequest, type UpgradeRequestInfo } from '../core/handshake.js';
import type { UpgradeRequest } from './server-session.js';

/**
 * The UpgradeRequest a session keeps for its whole life, in little memory:
 * one string (the validated head, rebuilt from its parsed lines) plus two
 * scalars. Everything else (headers, query, host, ...) is parsed again from
 * that string on first use and kept only until compact(). An idle server
 * connection used to keep the parsed head (a Map of arrays, a lower-cased
 * copy of every name, the query's URLSearchParams): about 1.5 KB each.
 */
export class HandshakeRequest implements UpgradeRequest {
  readonly secure: boolean;
  readonly remoteAddress: string | undefined;
  readonly #source: string;
  #head: HttpHead | null;
  #info: UpgradeRequestInfo | null;
  #query: URLSearchParams | null = null;

  constructor(head: HttpHead, info: UpgradeRequestInfo, remoteAddress: string | undefined, secure: boolean) {
    this.secure = secure;
    this.remoteAddress = remoteAddress;
    this.#head = head;
    this.#info = info;
    // One flat string of the head as parsed (names as sent, values trimmed): it parses back to the same head.
    // Array join builds a flat string: no rope of parts, no slice of the read buffer's text.
    const lines = [`${head.method} ${head.target} HTTP/${head.version}`];
    for (const [name, value] of head.rawHeaders) lines.push(`${name}: ${value}`);
    this.#source = lines.join('\r\n');
  }

  /** Forgets what was parsed (the session keeps only the head's text). */
  compact(): void {
    this.#head = null;
    this.#info = null;
    this.#query = null;
  }

  private get head(): HttpHead {
    if (this.#head) return this.#head;
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
    return this.head.target;
  }

  get path(): string {
    return splitTarget(this.url).path;
  }

  get query(): URLSearchParams {
    return (this.#query ??= new URLSearchParams(splitTarget(this.url).query));
  }

  get host(): string {
    return this.info.host;
  }

  get origin(): string | undefined {
    return this.info.origin;
  }

  get headers(): ReadonlyMap<string, readonly string[]> {
    return this.head.headers;
  }

  get protocols(): readonly string[] {
    return this.info.protocols;
  }
}

/** A request-target split at its first '?': the path, and the query without the '?' ('' if none). */
export function splitTarget(target: string): { path: string; query: string } {
  const q = target.indexOf('?');
  return q === -1 ? { path: target, query: '' } : { path: target.slice(0, q), query: target.slice(q + 1) };
}
