/**
 * A bounded, incremental HTTP/1.1 head parser (RFC 7230 sections 3 to 3.2).
 *
 * It is fed bytes in any chunking and answers once the blank line that ends the
 * head has arrived, handing back the bytes that followed it untouched: after a
 * successful upgrade those are already WebSocket frames (RFC 6455 section 4.1,
 * "the server may send data immediately after the handshake") and must not be
 * lost.
 *
 * The parser is strict on purpose. RFC 7230 section 3.5 allows a recipient to
 * accept bare LF, and section 3.2.4 allows obsolete line folding to be undone,
 * but every leniency in head parsing is a request-smuggling or header-injection
 * seam between two parsers that disagree. sockeye only talks WebSocket, whose
 * peers all send canonical CRLF heads, so it rejects everything else.
 *
 * The grammar helpers (token, field-value, OWS) are exported for the
 * handshake and extension-header modules, which share RFC 7230's grammar.
 */
import { HandshakeError, InvalidArgumentError, InvalidStateError } from './errors.js';

export interface HttpHead {
  kind: 'request' | 'response';
  /** Request method (case-sensitive, RFC 7230 section 3.1.1); '' for responses. */
  method: string;
  /** The request-target as sent; '' for responses. */
  target: string;
  /** Response status code; 0 for requests. */
  status: number;
  /** Response reason phrase (may be empty); '' for requests. */
  reason: string;
  /** '1.1' or '1.0'. */
  version: string;
  /** Lower-cased field names to their values, in order, trimmed of OWS. */
  headers: Map<string, string[]>;
  /** Field names as sent, with their trimmed values, in order. */
  rawHeaders: Array<[string, string]>;
}

export interface HttpHeadLimits {
  /** Most bytes the head may take, its final CRLF CRLF included. Default 16384. */
  maxHeadBytes: number;
  /** Most header fields (not counting the start line). Default 100. */
  maxHeaders: number;
}

const DEFAULT_MAX_HEAD_BYTES = 16384;
const DEFAULT_MAX_HEADERS = 100;

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;

/** RFC 7230 section 3.2.6: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
export function isTchar(c: number): boolean {
  if (c >= 0x30 && c <= 0x39) return true; // DIGIT
  if (c >= 0x41 && c <= 0x5a) return true; // ALPHA upper
  if (c >= 0x61 && c <= 0x7a) return true; // ALPHA lower
  switch (c) {
    case 0x21: // !
    case 0x23: // #
    case 0x24: // $
    case 0x25: // %
    case 0x26: // &
    case 0x27: // '
    case 0x2a: // *
    case 0x2b: // +
    case 0x2d: // -
    case 0x2e: // .
    case 0x5e: // ^
    case 0x5f: // _
    case 0x60: // `
    case 0x7c: // |
    case 0x7e: // ~
      return true;
    default:
      return false;
  }
}

/** RFC 7230 section 3.2.6: token = 1*tchar. */
export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    if (!isTchar(s.charCodeAt(i))) return false;
  }
  return true;
}

/**
 * A character allowed inside a field value (RFC 7230 section 3.2: field-vchar,
 * SP, HTAB; obs-text 0x80-0xFF is kept because it decodes losslessly as
 * latin1). Every other CTL, NUL and DEL included, is refused: they are what
 * header injection and parser confusion are made of.
 */
export function isFieldValueChar(c: number): boolean {
  return c === HTAB || (c >= SP && c <= 0xff && c !== 0x7f);
}

/** Every character of `s` passes isFieldValueChar. */
export function isFieldValue(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    if (!isFieldValueChar(s.charCodeAt(i))) return false;
  }
  return true;
}

/**
 * Trims OWS (SP / HTAB, RFC 7230 section 3.2.3) from both ends. Not
 * String.prototype.trim, which would also eat U+00A0 and other characters
 * that are legitimate obs-text in a latin1-decoded value.
 */
export function trimOws(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isOws(s.charCodeAt(start))) start++;
  while (end > start && isOws(s.charCodeAt(end - 1))) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

function isOws(c: number): boolean {
  return c === SP || c === HTAB;
}

/** VCHAR (0x21-0x7E): what a request-target may consist of (RFC 3986 characters only). */
function isVchar(c: number): boolean {
  return c >= 0x21 && c <= 0x7e;
}

/** 'HTTP/d.d' to 'd.d', or undefined when it is not an HTTP-version at all (RFC 7230 section 2.6: case-sensitive). */
function parseHttpVersion(s: string): string | undefined {
  if (s.length !== 8 || !s.startsWith('HTTP/') || s.charCodeAt(6) !== 0x2e) return undefined;
  const major = s.charCodeAt(5);
  const minor = s.charCodeAt(7);
  if (major < 0x30 || major > 0x39 || minor < 0x30 || minor > 0x39) return undefined;
  return s.slice(5);
}

/** The empty buffer a parser holds before and after a head: one for all (nothing can be written to it), not an allocation per connection. */
const NO_BYTES = Buffer.alloc(0);

type ParserState = 'reading' | 'complete' | 'failed';

/**
 * Incremental head parser. Work per pushed byte is constant: the search for
 * CRLF CRLF is a four-state matcher whose state survives between pushes, so a
 * head trickled in one byte at a time costs the same as one pushed whole.
 * Stored bytes never exceed maxHeadBytes.
 */
export class HttpHeadParser {
  readonly #kind: 'request' | 'response';
  readonly #maxHeadBytes: number;
  readonly #maxHeaders: number;
  #state: ParserState = 'reading';
  /** Head bytes received so far; grows by doubling, capped at maxHeadBytes. */
  #buf: Buffer = NO_BYTES;
  #len = 0;
  /**
   * How much of CR LF CR LF ends the bytes scanned so far: 0 nothing, 1 CR,
   * 2 CRLF, 3 CRLF CR. Since a CR must always be followed by LF and an LF
   * always preceded by CR, this also enforces strict line endings.
   */
  #match = 0;
  /** Lines ended so far (start line included), to refuse too many headers early. */
  #lines = 0;

  constructor(kind: 'request' | 'response', limits?: Partial<HttpHeadLimits>) {
    this.#kind = kind;
    this.#maxHeadBytes = positiveInt(limits?.maxHeadBytes, DEFAULT_MAX_HEAD_BYTES, 'maxHeadBytes');
    this.#maxHeaders = positiveInt(limits?.maxHeaders, DEFAULT_MAX_HEADERS, 'maxHeaders');
  }

  /**
   * Feeds bytes. Returns null while the head is incomplete; once complete,
   * the head and `rest`, the bytes after the blank line (a view into `chunk`,
   * possibly empty). Throws HandshakeError on bad input; any push after the
   * head completed or failed throws InvalidStateError.
   */
  push(chunk: Uint8Array): { head: HttpHead; rest: Buffer } | null {
    if (this.#state !== 'reading') {
      throw new InvalidStateError('push() to an HttpHeadParser', this.#state);
    }
    try {
      return this.#scan(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    } catch (err) {
      this.#state = 'failed';
      this.#buf = NO_BYTES;
      throw err;
    }
  }

  #scan(view: Buffer): { head: HttpHead; rest: Buffer } | null {
    // Never look past maxHeadBytes: a head that has not ended by then is refused.
    const n = Math.min(view.length, this.#maxHeadBytes - this.#len);
    let m = this.#match;
    let end = -1;
    for (let i = 0; i < n; i++) {
      const b = view[i];
      if (m === 1 || m === 3) {
        // RFC 7230 section 3.5: a bare CR is invalid outside a line ending.
        if (b !== LF) throw this.#error('ERR_BAD_HTTP_HEAD', 'bare CR in HTTP head (RFC 7230 section 3.5)', 400);
        if (m === 3) {
          end = i + 1;
          break;
        }
        m = 2;
        if (++this.#lines > this.#maxHeaders + 1) {
          throw this.#error('ERR_TOO_MANY_HEADERS', `more than ${this.#maxHeaders} header fields`, 431);
        }
      } else if (b === CR) {
        m++;
      } else if (b === LF) {
        // RFC 7230 section 3.5 lets a recipient accept bare LF; we do not (see the file comment).
        throw this.#error('ERR_BAD_HTTP_HEAD', 'bare LF in HTTP head: lines must end with CRLF (RFC 7230 section 3)', 400);
      } else {
        m = 0;
      }
    }
    this.#match = m;

    if (end === -1) {
      this.#append(view, n);
      if (this.#len >= this.#maxHeadBytes) {
        throw this.#error('ERR_HEAD_TOO_LARGE', `HTTP head larger than ${this.#maxHeadBytes} bytes`, 431);
      }
      return null;
    }

    let bytes: Buffer;
    if (this.#len === 0) {
      bytes = view.subarray(0, end); // the whole head came in one chunk: no copy
    } else {
      this.#append(view, end);
      bytes = this.#buf.subarray(0, this.#len);
    }
    const head = this.#parse(bytes);
    this.#state = 'complete';
    this.#buf = NO_BYTES;
    return { head, rest: view.subarray(end) };
  }

  #append(view: Buffer, n: number): void {
    if (n === 0) return;
    const need = this.#len + n;
    if (need > this.#buf.length) {
      // Doubling keeps byte-at-a-time feeding linear; the cap keeps it bounded.
      let cap = Math.max(this.#buf.length * 2, 256);
      while (cap < need) cap *= 2;
      const next = Buffer.allocUnsafe(Math.min(cap, this.#maxHeadBytes));
      this.#buf.copy(next, 0, 0, this.#len);
      this.#buf = next;
    }
    view.copy(this.#buf, this.#len, 0, n);
    this.#len = need;
  }

  /** `bytes` ends with CRLF CRLF and every CR in it is followed by LF, every LF preceded by CR. */
  #parse(bytes: Buffer): HttpHead {
    // latin1 maps every byte to one code unit: nothing is lost or merged.
    const lines = bytes.toString('latin1', 0, bytes.length - 4).split('\r\n');
    const head: HttpHead = {
      kind: this.#kind,
      method: '',
      target: '',
      status: 0,
      reason: '',
      version: '',
      headers: new Map(),
      rawHeaders: [],
    };
    if (this.#kind === 'request') this.#parseRequestLine(lines[0], head);
    else this.#parseStatusLine(lines[0], head);

    for (let i = 1; i < lines.length; i++) {
      const line = lines[i];
      const first = line.charCodeAt(0);
      if (isOws(first)) {
        // RFC 7230 section 3.2.4: obs-fold is deprecated; a server may reject it with 400.
        throw this.#error('ERR_BAD_HTTP_HEAD', 'obsolete line folding in HTTP head (RFC 7230 section 3.2.4)', 400);
      }
      const colon = line.indexOf(':');
      if (colon <= 0) throw this.#error('ERR_BAD_HTTP_HEAD', 'header line without a field name and colon', 400);
      const name = line.slice(0, colon);
      if (isOws(name.charCodeAt(name.length - 1))) {
        // RFC 7230 section 3.2.4: whitespace between field-name and colon MUST be rejected with 400.
        throw this.#error('ERR_BAD_HTTP_HEAD', 'whitespace between header field name and colon (RFC 7230 section 3.2.4)', 400);
      }
      if (!isToken(name)) throw this.#error('ERR_BAD_HTTP_HEAD', 'header field name is not a token (RFC 7230 section 3.2.6)', 400);
      const value = trimOws(line.slice(colon + 1));
      if (!isFieldValue(value)) {
        throw this.#error('ERR_BAD_HTTP_HEAD', `control character in the value of header ${name} (RFC 7230 section 3.2)`, 400);
      }
      head.rawHeaders.push([name, value]);
      // A Map, never a plain object: a peer-chosen name like __proto__ must stay data.
      const key = name.toLowerCase();
      const values = head.headers.get(key);
      if (values === undefined) head.headers.set(key, [value]);
      else values.push(value);
    }
    return head;
  }

  /** RFC 7230 section 3.1.1: request-line = method SP request-target SP HTTP-version CRLF */
  #parseRequestLine(line: string, head: HttpHead): void {
    const sp1 = line.indexOf(' ');
    const sp2 = sp1 < 0 ? -1 : line.indexOf(' ', sp1 + 1);
    if (sp1 <= 0 || sp2 < 0 || line.indexOf(' ', sp2 + 1) >= 0) {
      throw this.#error('ERR_BAD_HTTP_HEAD', 'malformed request line (RFC 7230 section 3.1.1)', 400);
    }
    const method = line.slice(0, sp1);
    if (!isToken(method)) throw this.#error('ERR_BAD_HTTP_HEAD', 'request method is not a token (RFC 7230 section 3.1.1)', 400);
    const target = line.slice(sp1 + 1, sp2);
    if (target.length === 0) throw this.#error('ERR_BAD_HTTP_HEAD', 'empty request-target', 400);
    for (let i = 0; i < target.length; i++) {
      if (!isVchar(target.charCodeAt(i))) {
        throw this.#error('ERR_BAD_HTTP_HEAD', 'invalid character in request-target (RFC 7230 section 5.3)', 400);
      }
    }
    head.method = method;
    head.target = target;
    head.version = this.#version(line.slice(sp2 + 1));
  }

  /** RFC 7230 section 3.1.2: status-line = HTTP-version SP status-code SP reason-phrase CRLF */
  #parseStatusLine(line: string, head: HttpHead): void {
    const sp1 = line.indexOf(' ');
    if (sp1 <= 0) throw this.#error('ERR_BAD_HTTP_HEAD', 'malformed status line (RFC 7230 section 3.1.2)', 400);
    const version = this.#version(line.slice(0, sp1));
    const code = line.slice(sp1 + 1, sp1 + 4);
    let status = 0;
    for (let i = 0; i < code.length; i++) {
      const c = code.charCodeAt(i);
      if (c < 0x30 || c > 0x39) break;
      status = status * 10 + (c - 0x30);
    }
    if (code.length !== 3 || status < 100 || status > 599 || String(status) !== code || line.charCodeAt(sp1 + 4) !== SP) {
      throw this.#error('ERR_BAD_HTTP_HEAD', 'malformed status line (RFC 7230 section 3.1.2)', 400);
    }
    const reason = line.slice(sp1 + 5);
    if (!isFieldValue(reason)) throw this.#error('ERR_BAD_HTTP_HEAD', 'control character in reason phrase', 400);
    head.version = version;
    head.status = status;
    head.reason = reason;
  }

  #version(s: string): string {
    const version = parseHttpVersion(s);
    if (version === undefined) throw this.#error('ERR_BAD_HTTP_HEAD', 'malformed HTTP version (RFC 7230 section 2.6)', 400);
    if (version !== '1.1' && version !== '1.0') {
      // RFC 7231 section 6.6.6: 505 HTTP Version Not Supported.
      throw this.#error('ERR_BAD_HTTP_VERSION', `unsupported HTTP version ${version}`, 505);
    }
    return version;
  }

  /**
   * On a request the status is the one the server will answer; on a response
   * there is no one to answer, so the status is left undefined.
   */
  #error(code: string, message: string, status: number): HandshakeError {
    return new HandshakeError(code, message, this.#kind === 'request' ? status : undefined);
  }
}

function positiveInt(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new InvalidArgumentError('ERR_BAD_LIMIT', `HttpHeadParser: ${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}
