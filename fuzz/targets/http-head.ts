/**
 * Fuzz target: the bounded HTTP/1.1 head parser (HttpHeadParser) and the
 * handshake checks on top of it (validateUpgradeRequest,
 * validateUpgradeResponse), plus the client's request builder.
 *
 * Input layout:
 *   byte 0   flags: bit 0 kind (0 request, 1 response); bit 1 builder mode;
 *            bits 2-3 maxHeaders profile; bits 4-5 maxHeadBytes profile
 *   byte 1   seed of the split points
 *   rest     the head bytes (parser mode), or in builder mode the fields
 *            host, path, protocols (comma-separated), origin, header name,
 *            header value, separated by NUL bytes
 *
 * Invariants checked:
 *   1. Only WebSocketErrors escape (HandshakeError for bad input); a request
 *      the server refuses always carries the HTTP status to answer
 *      (400-599), as validateUpgradeRequest documents.
 *   2. Chunking does not matter: the head pushed whole and pushed in random
 *      pieces gives the same head (or the same error).
 *   3. Boundaries: a head completes exactly at the first CRLF CRLF, never
 *      beyond maxHeadBytes, and `rest` is exactly the bytes after it
 *      (RFC 6455 section 4.1: they are frames and must not be lost).
 *   4. Round trip: a request the server accepts gets a 101 from
 *      buildUpgradeResponse that the client's validateUpgradeResponse
 *      accepts, with the subprotocol the server picked.
 *   5. Builder: buildUpgradeRequest either refuses its arguments
 *      (InvalidArgumentError: nothing is sent, the CRLF-injection guard) or
 *      builds a request that the server's parser and validator accept with
 *      the same path, subprotocols, origin and extra header.
 */
import { HandshakeError, InvalidArgumentError, WebSocketError } from '../../src/core/errors.js';
import { HttpHeadParser, trimOws, type HttpHead } from '../../src/core/http-head.js';
import { acceptKey, buildUpgradeRequest, buildUpgradeResponse, validateUpgradeRequest, validateUpgradeResponse } from '../../src/core/handshake.js';
import { acceptDeflateResponse, negotiateDeflate } from '../../src/core/deflate-negotiation.js';
import { Rng, splitChunks } from '../rng.js';
import { check, errorKey, expectOnlyWebSocketErrors, type FuzzTarget } from './common.js';

/** A fixed Sec-WebSocket-Key (RFC 6455 section 4.1's example); its accept value is what responses are checked against. */
export const FUZZ_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
export const FUZZ_ACCEPT = acceptKey(FUZZ_KEY);
const MAX_HEADERS = [100, 3, 10, 1000] as const;
const MAX_HEAD_BYTES = [16384, 64, 512, 4096] as const;

interface Outcome {
  head: HttpHead | null;
  rest: Buffer | null;
  error: WebSocketError | undefined;
}

function push(kind: 'request' | 'response', chunks: Buffer[], maxHeaders: number, maxHeadBytes: number): Outcome {
  const parser = new HttpHeadParser(kind, { maxHeaders, maxHeadBytes });
  for (let i = 0; i < chunks.length; i++) {
    const r = expectOnlyWebSocketErrors(() => parser.push(chunks[i]));
    if (r.error) {
      check(r.error instanceof HandshakeError, () => `head parser threw ${errorKey(r.error)}`);
      if (kind === 'request') check(statusOk(r.error), () => `request refused without a status: ${errorKey(r.error)}`);
      // A failed parser refuses more input with InvalidStateError, never anything else.
      const after = expectOnlyWebSocketErrors(() => parser.push(Buffer.from('x')));
      check(after.error !== undefined && after.error.code === 'ERR_INVALID_STATE', 'push after failure did not refuse');
      return { head: null, rest: null, error: r.error };
    }
    // The rest of this chunk, then what the caller would have read next.
    if (r.value) return { head: r.value.head, rest: Buffer.concat([r.value.rest, ...chunks.slice(i + 1)]), error: undefined };
  }
  return { head: null, rest: null, error: undefined };
}

function statusOk(err: WebSocketError): boolean {
  const status = (err as HandshakeError).status;
  return err instanceof HandshakeError && typeof status === 'number' && status >= 400 && status <= 599;
}

function describe(o: Outcome): string {
  if (o.error) return `error ${errorKey(o.error)} ${(o.error as HandshakeError).status ?? ''}`;
  if (!o.head) return 'incomplete';
  const h = o.head;
  return JSON.stringify([h.kind, h.method, h.target, h.status, h.reason, h.version, h.rawHeaders, [...h.headers]]) + ' rest ' + o.rest!.toString('hex');
}

function checkRequest(head: HttpHead): string {
  const r = expectOnlyWebSocketErrors(() => validateUpgradeRequest(head));
  if (r.error) {
    check(statusOk(r.error), () => `validateUpgradeRequest refused without a status to answer: ${errorKey(r.error)}`);
    return `refused:${r.error.code}`;
  }
  const info = r.value;
  // Invariant 4: what the server answers, the client accepts.
  const protocol = info.protocols[0];
  const negotiated = negotiateDeflate(info.extensions, {});
  const response = buildUpgradeResponse({ key: info.key, protocol, extensions: negotiated ? [negotiated.response] : [] });
  const parsed = push('response', [response], 100, 16384);
  check(parsed.head !== null && parsed.rest!.length === 0, () => `the server's own 101 does not parse: ${describe(parsed)}`);
  const accepted = expectOnlyWebSocketErrors(() =>
    validateUpgradeResponse(parsed.head!, { key: info.key, protocols: info.protocols, offeredExtensions: info.extensions.map((e) => e.name) }),
  );
  check(accepted.error === undefined, () => `the client refuses the server's 101: ${errorKey(accepted.error)}`);
  check(accepted.value!.protocol === protocol, 'the client sees another subprotocol than the server picked');
  if (negotiated) {
    const ext = accepted.value!.extensions.find((e) => e.name === 'permessage-deflate');
    check(ext !== undefined, 'negotiated permessage-deflate missing from the parsed 101');
  }
  return `accepted:${info.protocols.length > 0}:${negotiated !== null}`;
}

function checkResponse(head: HttpHead): string {
  const r = expectOnlyWebSocketErrors(() =>
    validateUpgradeResponse(head, { key: FUZZ_KEY, protocols: ['chat', 'superchat'], offeredExtensions: ['permessage-deflate'] }),
  );
  if (r.error) {
    check(r.error instanceof HandshakeError, () => `validateUpgradeResponse threw ${errorKey(r.error)}`);
    if (r.error.code === 'ERR_UNEXPECTED_STATUS') {
      const headers = (r.error as HandshakeError).headers;
      check(headers !== undefined && Object.getPrototypeOf(headers) === null, 'response headers of a refusal are not a null-prototype object');
    }
    return `refused:${r.error.code}`;
  }
  for (const ext of r.value.extensions) {
    const a = expectOnlyWebSocketErrors(() => acceptDeflateResponse(ext, {}));
    if (a.error) check(a.error instanceof HandshakeError, () => `acceptDeflateResponse threw ${errorKey(a.error)}`);
  }
  return `accepted:${r.value.protocol ?? '-'}`;
}

function runBuilder(body: Buffer): string {
  const fields = body.toString('latin1').split('\0');
  const [host = 'example.com', path = '/', protos = '', origin, name, value] = fields;
  const protocols = protos === '' ? [] : protos.split(',');
  const headers: Array<[string, string]> = name !== undefined ? [[name, value ?? '']] : [];
  const built = expectOnlyWebSocketErrors(() => buildUpgradeRequest({ host, path, key: FUZZ_KEY, protocols, origin, headers }));
  if (built.error) {
    check(built.error instanceof InvalidArgumentError, () => `buildUpgradeRequest threw ${errorKey(built.error)}`);
    return `builder-refused:${built.error.code}`;
  }
  const parsed = push('request', [built.value], 100, 1 << 20);
  check(parsed.head !== null && parsed.rest!.length === 0, () => `a built request does not parse back: ${describe(parsed)}`);
  const v = expectOnlyWebSocketErrors(() => validateUpgradeRequest(parsed.head!));
  check(v.error === undefined, () => `a built request is refused by the server: ${errorKey(v.error)} ${v.error?.message}`);
  const info = v.value!;
  check(info.path === path, `path ${JSON.stringify(path)} became ${JSON.stringify(info.path)}`);
  check(JSON.stringify(info.protocols) === JSON.stringify(protocols), 'subprotocols changed on the way');
  if (origin !== undefined) check(info.origin === trimOws(origin), 'origin changed on the way');
  if (name !== undefined) {
    const got = parsed.head!.headers.get(name.toLowerCase());
    check(got !== undefined && got.includes(trimOws(value ?? '')), 'extra header changed on the way');
  }
  check(parsed.head!.headers.get('sec-websocket-key')?.[0] === FUZZ_KEY, 'key changed on the way');
  return `builder-ok:${protocols.length}`;
}

function runHeadTarget(data: Buffer): string {
  const flags = data.length > 0 ? data[0] : 0;
  const kind = flags & 1 ? 'response' : 'request';
  const body = data.subarray(2);
  if (flags & 2) return runBuilder(body);
  const maxHeaders = MAX_HEADERS[(flags >> 2) & 3];
  const maxHeadBytes = MAX_HEAD_BYTES[(flags >> 4) & 3];
  const seed = data.length > 1 ? data[1] : 0;

  const whole = push(kind, [Buffer.from(body)], maxHeaders, maxHeadBytes);
  const split = push(kind, splitChunks(body, new Rng(seed)), maxHeaders, maxHeadBytes);
  const a = describe(whole);
  check(a === describe(split), () => `split input parses differently:\n whole ${a}\n split ${describe(split)}`);

  // Invariant 3, checked against an independent search for the end of the head.
  const end = body.indexOf('\r\n\r\n');
  if (whole.head) {
    check(end >= 0 && end + 4 <= maxHeadBytes, `head completed without a blank line within ${maxHeadBytes} bytes`);
    check(whole.rest!.equals(body.subarray(end + 4)), 'rest is not exactly the bytes after the head');
  } else if (!whole.error) {
    check(end < 0 && body.length < maxHeadBytes, 'head still incomplete although it ended or hit its limit');
  }
  if (!whole.head) return `${kind}|${whole.error ? whole.error.code : 'incomplete'}`;
  return `${kind}|${kind === 'request' ? checkRequest(whole.head) : checkResponse(whole.head)}`;
}

export const target: FuzzTarget = {
  name: 'http-head',
  maxLen: 4096,
  async: false,
  run: runHeadTarget,
  mutate: mutateHead,
};

const LINES: readonly string[] = [
  'Host: 127.0.0.1',
  'Upgrade: websocket',
  'Connection: Upgrade',
  'Sec-WebSocket-Version: 13',
  `Sec-WebSocket-Key: ${FUZZ_KEY}`,
  `Sec-WebSocket-Accept: ${FUZZ_ACCEPT}`,
  'Sec-WebSocket-Protocol: chat, superchat',
  'Sec-WebSocket-Protocol: chat',
  'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits',
  'Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10',
  'Origin: http://example.com',
  'Content-Length: 0',
  'Transfer-Encoding: chunked',
  '__proto__: x',
  'constructor: y',
  'X-Folded: a\r\n b',
  'Bad Name: z',
  'Host:',
];

/** Head-aware mutation: insert, drop, duplicate or swap whole lines, or swap the start line. */
function mutateHead(data: Buffer, rng: Rng): Buffer | null {
  if (data.length < 2 || data[0] & 2) return null;
  const text = data.subarray(2).toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const headText = end >= 0 ? text.slice(0, end) : text;
  const after = end >= 0 ? text.slice(end) : '';
  const lines = headText.split('\r\n');
  const i = rng.below(lines.length);
  switch (rng.below(6)) {
    case 0:
      lines.splice(1 + rng.below(lines.length), 0, rng.pick(LINES));
      break;
    case 1:
      if (lines.length > 1) lines.splice(1 + rng.below(lines.length - 1), 1);
      break;
    case 2:
      lines.splice(i, 0, lines[i]);
      break;
    case 3: {
      const j = rng.below(lines.length);
      [lines[i], lines[j]] = [lines[j], lines[i]];
      break;
    }
    case 4:
      lines[0] = rng.pick(['GET / HTTP/1.1', 'GET /chat?x=1 HTTP/1.0', 'POST / HTTP/1.1', 'GET http://h/p HTTP/1.1', 'HTTP/1.1 101 Switching Protocols', 'HTTP/1.1 302 Found', 'HTTP/2.0 101 x', 'GET / HTTP/1.1 extra']);
      break;
    default: {
      // many copies of one line (header-count limits)
      const line = rng.pick(LINES);
      const n = rng.range(2, 120);
      for (let k = 0; k < n; k++) lines.splice(1, 0, line);
      break;
    }
  }
  return Buffer.concat([data.subarray(0, 2), Buffer.from(lines.join('\r\n') + after, 'latin1')]);
}

/** Jazzer.js entry point. */
export function fuzz(data: Buffer): void {
  runHeadTarget(data);
}
