/**
 * The Sec-WebSocket-Extensions grammar, RFC 6455 section 9.1:
 *
 *   Sec-WebSocket-Extensions = extension-list
 *   extension-list = 1#extension
 *   extension = extension-token *( ";" extension-param )
 *   extension-token = registered-token
 *   registered-token = token
 *   extension-param = token [ "=" (token | quoted-string) ]
 *       ; When using the quoted-string syntax variant, the value
 *       ; after quoted-string unescaping MUST conform to the
 *       ; 'token' ABNF.
 *
 * with token, quoted-string, OWS and the #list rule from RFC 7230 (sections
 * 3.2.3, 3.2.6 and 7). The parser is a single forward pass over the
 * characters, no regular expressions, so its cost is linear in the input
 * whatever a peer sends.
 *
 * Only syntax lives here. Which extensions and parameters are acceptable
 * (duplicate parameters, values in range) is the negotiating extension's
 * business, e.g. RFC 7692 section 7 for permessage-deflate.
 */
import { HandshakeError, InvalidArgumentError } from './errors.js';
import { isTchar, isToken } from './http-head.js';

export interface ExtensionOffer {
  /** Extension name, lower-cased. */
  name: string;
  /** Parameters in order; names lower-cased; `true` for a parameter without a value. */
  params: Array<[string, string | true]>;
}

/**
 * Parses a header value (several header lines may already be joined with
 * ', ', as RFC 7230 section 3.2.2 allows for list-valued fields). Throws
 * HandshakeError 'ERR_BAD_EXTENSION_HEADER' (status 400) on any syntax error,
 * including a value with no extension at all (1#extension needs one).
 *
 * Extension and parameter names are tokens compared case-insensitively, so
 * they are returned lower-cased; values are returned as sent (unquoted).
 */
export function parseExtensionHeader(value: string): ExtensionOffer[] {
  const out: ExtensionOffer[] = [];
  const n = value.length;
  let i = 0;

  const fail = (what: string): never => {
    throw new HandshakeError('ERR_BAD_EXTENSION_HEADER', `bad Sec-WebSocket-Extensions header: ${what} at offset ${i} (RFC 6455 section 9.1)`, 400);
  };
  const skipOws = (): void => {
    while (i < n) {
      const c = value.charCodeAt(i);
      if (c !== 0x20 && c !== 0x09) break;
      i++;
    }
  };
  const readToken = (what: string): string => {
    const start = i;
    while (i < n && isTchar(value.charCodeAt(i))) i++;
    if (i === start) fail(`expected ${what}`);
    return value.slice(start, i);
  };
  // RFC 7230 section 3.2.6: quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE
  const readQuoted = (): string => {
    i++; // opening DQUOTE
    let s = '';
    for (;;) {
      if (i >= n) fail('unterminated quoted-string');
      const c = value.charCodeAt(i);
      if (c === 0x22) {
        i++;
        break;
      }
      if (c === 0x5c) {
        // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
        i++;
        if (i >= n) fail('unterminated quoted-pair');
        const q = value.charCodeAt(i);
        if (!(q === 0x09 || (q >= 0x20 && q <= 0xff && q !== 0x7f))) fail('bad quoted-pair');
        s += value[i];
        i++;
        continue;
      }
      // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
      if (!(c === 0x09 || (c >= 0x20 && c <= 0xff && c !== 0x7f))) fail('control character in quoted-string');
      s += value[i];
      i++;
    }
    // RFC 6455 section 9.1: the unescaped value must itself be a token.
    if (!isToken(s)) fail('quoted parameter value is not a token once unquoted');
    return s;
  };

  for (;;) {
    skipOws();
    if (i >= n) break;
    if (value.charCodeAt(i) === 0x2c) {
      // RFC 7230 section 7: empty list elements are accepted and ignored.
      i++;
      continue;
    }
    const name = readToken('an extension name').toLowerCase();
    const params: Array<[string, string | true]> = [];
    skipOws();
    while (i < n && value.charCodeAt(i) === 0x3b) {
      i++;
      skipOws();
      const param = readToken('a parameter name').toLowerCase();
      skipOws();
      let paramValue: string | true = true;
      if (i < n && value.charCodeAt(i) === 0x3d) {
        i++;
        skipOws();
        paramValue = i < n && value.charCodeAt(i) === 0x22 ? readQuoted() : readToken('a parameter value');
        skipOws();
      }
      params.push([param, paramValue]);
    }
    out.push({ name, params });
    if (i >= n) break;
    if (value.charCodeAt(i) !== 0x2c) fail('expected "," or ";"');
    i++;
  }
  if (out.length === 0) fail('no extension');
  return out;
}

/**
 * 'permessage-deflate; client_max_window_bits=10; server_no_context_takeover'.
 * Names and values must be tokens (a token never needs quoting, and RFC 6455
 * section 9.1 allows nothing else), so what is written always parses back;
 * otherwise InvalidArgumentError 'ERR_BAD_EXTENSION'.
 */
export function formatExtension(ext: ExtensionOffer): string {
  if (typeof ext.name !== 'string' || !isToken(ext.name)) {
    throw new InvalidArgumentError('ERR_BAD_EXTENSION', `extension name ${JSON.stringify(ext.name)} is not a token (RFC 6455 section 9.1)`);
  }
  let s = ext.name;
  for (const [name, value] of ext.params) {
    if (typeof name !== 'string' || !isToken(name)) {
      throw new InvalidArgumentError('ERR_BAD_EXTENSION', `extension parameter name ${JSON.stringify(name)} is not a token`);
    }
    if (value === true) {
      s += '; ' + name;
    } else if (typeof value === 'string' && isToken(value)) {
      s += '; ' + name + '=' + value;
    } else {
      throw new InvalidArgumentError('ERR_BAD_EXTENSION', `value of extension parameter ${name} is not a token`);
    }
  }
  return s;
}

/** Several extensions joined by ', ' (RFC 7230 section 7 list). */
export function formatExtensions(exts: ExtensionOffer[]): string {
  return exts.map(formatExtension).join(', ');
}
