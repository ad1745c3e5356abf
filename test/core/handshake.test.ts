import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  WEBSOCKET_GUID,
  acceptKey,
  buildRejectResponse,
  buildUpgradeRequest,
  buildUpgradeResponse,
  buildExtendedConnectRequest,
  isValidKey,
  parseTokenList,
  validateUpgradeRequest,
  validateUpgradeResponse,
  validateExtendedConnect,
  validateExtendedConnectResponse,
  type UpgradeRequestOptions,
} from '../../src/core/handshake.js';
import { HttpHeadParser, type HttpHead } from '../../src/core/http-head.js';
import { HandshakeError, InvalidArgumentError } from '../../src/core/errors.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';
const FRAMES = Buffer.from([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);

function parse(text: string | Buffer, kind: 'request' | 'response', maxHeadBytes?: number): HttpHead {
  const result = new HttpHeadParser(kind, maxHeadBytes === undefined ? undefined : { maxHeadBytes }).push(
    typeof text === 'string' ? Buffer.from(text, 'latin1') : text,
  );
  assert.ok(result);
  return result.head;
}

type Lines = Array<[string, string]>;
const BASE_REQUEST: Lines = [
  ['Host', 'server.example.com'],
  ['Upgrade', 'websocket'],
  ['Connection', 'Upgrade'],
  ['Sec-WebSocket-Key', KEY],
  ['Sec-WebSocket-Version', '13'],
];

/** A request head from the base headers, with `drop` removed and `add` appended. */
function request(opts: { line?: string; drop?: string[]; add?: Lines } = {}): HttpHead {
  const drop = (opts.drop ?? []).map((n) => n.toLowerCase());
  const lines = BASE_REQUEST.filter(([n]) => !drop.includes(n.toLowerCase())).concat(opts.add ?? []);
  const text = (opts.line ?? 'GET /chat HTTP/1.1') + '\r\n' + lines.map(([n, v]) => `${n}: ${v}\r\n`).join('') + '\r\n';
  return parse(text, 'request', 1 << 20);
}

const BASE_RESPONSE: Lines = [
  ['Upgrade', 'websocket'],
  ['Connection', 'Upgrade'],
  ['Sec-WebSocket-Accept', ACCEPT],
];

function response(opts: { line?: string; drop?: string[]; add?: Lines } = {}): HttpHead {
  const drop = (opts.drop ?? []).map((n) => n.toLowerCase());
  const lines = BASE_RESPONSE.filter(([n]) => !drop.includes(n.toLowerCase())).concat(opts.add ?? []);
  const text = (opts.line ?? 'HTTP/1.1 101 Switching Protocols') + '\r\n' + lines.map(([n, v]) => `${n}: ${v}\r\n`).join('') + '\r\n';
  return parse(text, 'response', 1 << 20);
}

function rejects(fn: () => unknown, code: string, status: number | undefined, headers?: Record<string, string>): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof HandshakeError, `expected HandshakeError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.status, status);
    if (headers !== undefined) assert.deepEqual(err.headers, headers);
    return true;
  });
}

function refuses(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

const CLIENT = { key: KEY, protocols: [] as string[], offeredExtensions: [] as string[] };

describe('acceptKey / isValidKey', () => {
  it('computes the RFC 6455 section 1.3 example', () => {
    assert.equal(WEBSOCKET_GUID, '258EAFA5-E914-47DA-95CA-C5AB0DC85B11');
    assert.equal(acceptKey(KEY), ACCEPT);
  });

  it('accepts base64 of exactly 16 bytes', () => {
    assert.ok(isValidKey(KEY));
    assert.ok(isValidKey(Buffer.alloc(16, 0xff).toString('base64')));
    assert.ok(isValidKey(Buffer.alloc(16).toString('base64')));
  });

  it('rejects everything else', () => {
    for (const key of [
      '',
      'dGhlIHNhbXBsZSBub25jZQ=', // 23 chars
      'dGhlIHNhbXBsZSBub25jZQ===',
      'dGhlIHNhbXBsZSBub25jZQAA', // 18 bytes, no padding
      Buffer.alloc(15).toString('base64') + '=',
      Buffer.alloc(17).toString('base64'),
      'dGhlIHNhbXBsZSBub25jZR==', // non-zero pad bits (RFC 4648 section 3.5)
      'dGhlIHNhbXBsZS-ub25jZQ==', // URL-safe alphabet
      'dGhlIHNhbXBsZS_ub25jZQ==',
      'dGhlIHNhbXBsZS ub25jZQ==',
      'dGhlIHNhbXBsZS.ub25jZQ==',
      ' GhlIHNhbXBsZSBub25jZQ==',
    ]) {
      assert.equal(isValidKey(key), false, key);
    }
  });

  it('agrees with a decode and canonical re-encode on 20,000 keys, valid and nearly valid', () => {
    // The reference: a key is valid when it decodes to 16 bytes that encode back to the same text.
    const reference = (key: string) => key.length === 24 && Buffer.from(key, 'base64').length === 16 && Buffer.from(key, 'base64').toString('base64') === key;
    const junk = 'ABQgwz09+/-_=. \u00e9\u0000:%';
    let seed = 12345;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    let valid = 0;
    for (let i = 0; i < 20_000; i++) {
      const bytes = Buffer.alloc(16);
      for (let j = 0; j < 16; j++) bytes[j] = rand(256);
      const chars = [...bytes.toString('base64')];
      // Most keys get one or two characters replaced: by junk, by any base64 digit (which may
      // set pad bits in the 22nd), or have one removed or added.
      const edits = rand(3);
      for (let e = 0; e < edits; e++) {
        const at = rand(chars.length);
        const kind = rand(4);
        if (kind === 0) chars[at] = junk[rand(junk.length)];
        else if (kind === 1) chars[at] = Buffer.from([rand(256)]).toString('base64')[0];
        else if (kind === 2) chars.splice(at, 1);
        else chars.splice(at, 0, junk[rand(junk.length)]);
      }
      const key = chars.join('');
      const expected = reference(key);
      if (expected) valid++;
      assert.equal(isValidKey(key), expected, JSON.stringify(key));
    }
    // Both outcomes were exercised in earnest.
    assert.ok(valid > 5000 && valid < 15_000, `${valid} valid keys`);
  });
});

describe('parseTokenList', () => {
  it('splits, trims OWS and skips empty elements', () => {
    assert.deepEqual(parseTokenList(' a ,\tb,, ,c,'), ['a', 'b', 'c']);
    assert.deepEqual(parseTokenList(''), []);
  });

  it('throws HandshakeError 400 on a non-token element', () => {
    for (const v of ['a b', 'a, b c', 'a;b', '"a"', 'a/b', 'é']) rejects(() => parseTokenList(v), 'ERR_BAD_TOKEN_LIST', 400);
  });

  it('is linear on inputs built for regex backtracking', () => {
    for (const v of ['a' + ' '.repeat(50000) + 'b', 'a,'.repeat(20000) + '(', ' ,'.repeat(50000) + '\x00']) {
      const start = performance.now();
      assert.throws(() => parseTokenList(v), HandshakeError);
      const elapsed = performance.now() - start;
      assert.ok(elapsed < 500, `took ${elapsed.toFixed(1)} ms`);
    }
  });
});

describe('validateUpgradeRequest', () => {
  it('accepts the RFC 6455 section 1.3 request and reports what it asked for', () => {
    const info = validateUpgradeRequest(
      request({
        add: [
          ['Origin', 'http://example.com'],
          ['Sec-WebSocket-Protocol', 'chat, superchat'],
          ['Sec-WebSocket-Extensions', 'permessage-deflate; client_max_window_bits'],
        ],
      }),
    );
    assert.deepEqual(info, {
      key: KEY,
      path: '/chat',
      host: 'server.example.com',
      origin: 'http://example.com',
      protocols: ['chat', 'superchat'],
      extensions: [{ name: 'permessage-deflate', params: [['client_max_window_bits', true]] }],
    });
  });

  it('defaults: no origin, no protocols, no extensions', () => {
    const info = validateUpgradeRequest(request());
    assert.equal(info.origin, undefined);
    assert.deepEqual(info.protocols, []);
    assert.deepEqual(info.extensions, []);
  });

  it('matches Upgrade and Connection tokens case-insensitively, within lists', () => {
    validateUpgradeRequest(
      request({
        drop: ['Upgrade', 'Connection'],
        add: [
          ['Upgrade', 'h2c, WebSocket'],
          ['Connection', 'keep-alive, UPGRADE'],
        ],
      }),
    );
    validateUpgradeRequest(
      request({
        drop: ['Upgrade', 'Connection'],
        add: [
          ['Upgrade', 'HTTP/2.0'],
          ['Upgrade', 'websocket'],
          ['Connection', 'keep-alive'],
          ['Connection', 'upgrade'],
        ],
      }),
    );
  });

  it('joins Sec-WebSocket-Protocol and Sec-WebSocket-Extensions lines', () => {
    const info = validateUpgradeRequest(
      request({
        add: [
          ['Sec-WebSocket-Protocol', 'a'],
          ['Sec-WebSocket-Protocol', 'b, c'],
          ['Sec-WebSocket-Extensions', 'x'],
          ['Sec-WebSocket-Extensions', 'y; p=1'],
        ],
      }),
    );
    assert.deepEqual(info.protocols, ['a', 'b', 'c']);
    assert.deepEqual(
      info.extensions.map((e) => e.name),
      ['x', 'y'],
    );
  });

  it('answers 405 with Allow: GET to other methods', () => {
    rejects(() => validateUpgradeRequest(request({ line: 'POST /chat HTTP/1.1' })), 'ERR_BAD_METHOD', 405, { Allow: 'GET' });
    rejects(() => validateUpgradeRequest(request({ line: 'get /chat HTTP/1.1' })), 'ERR_BAD_METHOD', 405);
  });

  it('answers 400 to HTTP/1.0', () => {
    rejects(() => validateUpgradeRequest(request({ line: 'GET /chat HTTP/1.0' })), 'ERR_BAD_HTTP_VERSION', 400);
  });

  it('answers 400 to a missing, empty or repeated Host', () => {
    rejects(() => validateUpgradeRequest(request({ drop: ['Host'] })), 'ERR_BAD_HOST', 400);
    rejects(() => validateUpgradeRequest(request({ drop: ['Host'], add: [['Host', '']] })), 'ERR_BAD_HOST', 400);
    rejects(() => validateUpgradeRequest(request({ add: [['host', 'evil.example.com']] })), 'ERR_BAD_HOST', 400);
  });

  it('answers 400 when Upgrade lacks websocket', () => {
    rejects(() => validateUpgradeRequest(request({ drop: ['Upgrade'] })), 'ERR_BAD_UPGRADE', 400);
    rejects(() => validateUpgradeRequest(request({ drop: ['Upgrade'], add: [['Upgrade', 'h2c']] })), 'ERR_BAD_UPGRADE', 400);
    rejects(() => validateUpgradeRequest(request({ drop: ['Upgrade'], add: [['Upgrade', 'websocket2']] })), 'ERR_BAD_UPGRADE', 400);
    rejects(() => validateUpgradeRequest(request({ drop: ['Upgrade'], add: [['Upgrade', 'web socket']] })), 'ERR_BAD_UPGRADE', 400);
    rejects(() => validateUpgradeRequest(request({ drop: ['Upgrade'], add: [['Upgrade', 'websocket, a/']] })), 'ERR_BAD_UPGRADE', 400);
  });

  it('answers 400 when Connection lacks upgrade', () => {
    rejects(() => validateUpgradeRequest(request({ drop: ['Connection'] })), 'ERR_BAD_CONNECTION', 400);
    rejects(() => validateUpgradeRequest(request({ drop: ['Connection'], add: [['Connection', 'keep-alive']] })), 'ERR_BAD_CONNECTION', 400);
    rejects(() => validateUpgradeRequest(request({ drop: ['Connection'], add: [['Connection', 'upgraded']] })), 'ERR_BAD_CONNECTION', 400);
    rejects(() => validateUpgradeRequest(request({ drop: ['Connection'], add: [['Connection', 'keep alive, upgrade']] })), 'ERR_BAD_CONNECTION', 400);
  });

  it('answers 400 to a missing, repeated or malformed key', () => {
    rejects(() => validateUpgradeRequest(request({ drop: ['Sec-WebSocket-Key'] })), 'ERR_BAD_KEY', 400);
    rejects(() => validateUpgradeRequest(request({ add: [['Sec-WebSocket-Key', KEY]] })), 'ERR_BAD_KEY', 400);
    for (const key of ['', 'short==', Buffer.alloc(20).toString('base64'), 'dGhlIHNhbXBsZSBub25jZR==']) {
      rejects(() => validateUpgradeRequest(request({ drop: ['Sec-WebSocket-Key'], add: [['Sec-WebSocket-Key', key]] })), 'ERR_BAD_KEY', 400);
    }
  });

  it('answers 426 with Sec-WebSocket-Version: 13 to a missing or other version (RFC 6455 section 4.4)', () => {
    const headers = { 'Sec-WebSocket-Version': '13' };
    rejects(() => validateUpgradeRequest(request({ drop: ['Sec-WebSocket-Version'] })), 'ERR_BAD_VERSION', 426, headers);
    for (const v of ['8', '12', '14', '13, 8', '013', '']) {
      rejects(() => validateUpgradeRequest(request({ drop: ['Sec-WebSocket-Version'], add: [['Sec-WebSocket-Version', v]] })), 'ERR_BAD_VERSION', 426, headers);
    }
  });

  it('answers 400 to a repeated version', () => {
    rejects(() => validateUpgradeRequest(request({ add: [['Sec-WebSocket-Version', '13']] })), 'ERR_BAD_VERSION', 400);
  });

  it('answers 400 to bad subprotocol lists', () => {
    for (const v of ['a b', 'chat, chat', 'a, "b"', '', ' , ', 'a;b']) {
      rejects(() => validateUpgradeRequest(request({ add: [['Sec-WebSocket-Protocol', v]] })), 'ERR_BAD_PROTOCOL', 400);
    }
    rejects(
      () =>
        validateUpgradeRequest(
          request({
            add: [
              ['Sec-WebSocket-Protocol', 'chat'],
              ['Sec-WebSocket-Protocol', 'chat'],
            ],
          }),
        ),
      'ERR_BAD_PROTOCOL',
      400,
    );
  });

  it('processes subprotocol values built for regex backtracking in well under a second', () => {
    for (const v of ['a' + ' '.repeat(50000) + 'b', 'a,'.repeat(20000) + '(', 'a, '.repeat(20000) + 'a']) {
      const head = request({ add: [['Sec-WebSocket-Protocol', v]] });
      const start = performance.now();
      rejects(() => validateUpgradeRequest(head), 'ERR_BAD_PROTOCOL', 400);
      const elapsed = performance.now() - start;
      assert.ok(elapsed < 500, `took ${elapsed.toFixed(1)} ms`);
    }
  });

  it('answers 400 to a bad extensions header', () => {
    rejects(() => validateUpgradeRequest(request({ add: [['Sec-WebSocket-Extensions', 'permessage-deflate;']] })), 'ERR_BAD_EXTENSION_HEADER', 400);
    rejects(() => validateUpgradeRequest(request({ add: [['Sec-WebSocket-Extensions', '']] })), 'ERR_BAD_EXTENSION_HEADER', 400);
  });

  it('treats extension names __proto__ and constructor as data', () => {
    const info = validateUpgradeRequest(request({ add: [['Sec-WebSocket-Extensions', '__proto__; constructor=1, constructor']] }));
    assert.deepEqual(info.extensions, [
      { name: '__proto__', params: [['constructor', '1']] },
      { name: 'constructor', params: [] },
    ]);
    assert.equal(Object.keys(Object.prototype).length, 0);
  });

  it('answers 400 to a repeated Origin', () => {
    rejects(
      () =>
        validateUpgradeRequest(
          request({
            add: [
              ['Origin', 'http://a.example'],
              ['Origin', 'http://b.example'],
            ],
          }),
        ),
      'ERR_BAD_ORIGIN',
      400,
    );
  });

  it('answers 400 to a request announcing a body (the bytes after the head are frames)', () => {
    rejects(() => validateUpgradeRequest(request({ add: [['Content-Length', '5']] })), 'ERR_UNEXPECTED_BODY', 400);
    rejects(() => validateUpgradeRequest(request({ add: [['Transfer-Encoding', 'chunked']] })), 'ERR_UNEXPECTED_BODY', 400);
    validateUpgradeRequest(request({ add: [['Content-Length', '0']] }));
  });

  it('takes the resource name from origin-form or absolute-form targets', () => {
    assert.equal(validateUpgradeRequest(request({ line: 'GET /a/../b?x=1&y HTTP/1.1' })).path, '/a/../b?x=1&y');
    const abs = validateUpgradeRequest(request({ line: 'GET http://other.example:8080/chat?x=1 HTTP/1.1' }));
    assert.equal(abs.path, '/chat?x=1');
    assert.equal(abs.host, 'other.example:8080', 'RFC 7230 section 5.4: the target authority wins over Host');
    assert.equal(validateUpgradeRequest(request({ line: 'GET HTTPS://h.example HTTP/1.1' })).path, '/');
    assert.equal(validateUpgradeRequest(request({ line: 'GET https://h.example?q HTTP/1.1' })).path, '/?q');
  });

  it('answers 400 to other targets', () => {
    for (const target of ['*', 'server.example.com:80', 'ws://h/chat', 'ftp://h/x', 'http:///x', 'http://u@h/x', '/chat#frag', 'chat']) {
      rejects(() => validateUpgradeRequest(request({ line: `GET ${target} HTTP/1.1` })), 'ERR_BAD_TARGET', 400);
    }
  });

  it('refuses a response head', () => {
    refuses(() => validateUpgradeRequest(response()), 'ERR_BAD_HEAD_KIND');
  });
});

describe('buildUpgradeResponse', () => {
  it('builds the RFC 6455 section 1.3 answer', () => {
    assert.equal(
      buildUpgradeResponse({ key: KEY }).toString('latin1'),
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ' + ACCEPT + '\r\n\r\n',
    );
  });

  it('adds the selected protocol, extensions and extra headers', () => {
    const text = buildUpgradeResponse({
      key: KEY,
      protocol: 'chat',
      extensions: [{ name: 'permessage-deflate', params: [['server_no_context_takeover', true]] }],
      headers: [['X-Server', 'sockeye']],
    }).toString('latin1');
    assert.ok(text.endsWith('Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\nX-Server: sockeye\r\n\r\n'), text);
    assert.ok(!buildUpgradeResponse({ key: KEY, extensions: [] }).toString().includes('Extensions'));
  });

  it('refuses bad arguments', () => {
    refuses(() => buildUpgradeResponse({ key: 'nope' }), 'ERR_BAD_KEY');
    refuses(() => buildUpgradeResponse({ key: KEY, protocol: 'a b' }), 'ERR_BAD_PROTOCOL');
    refuses(() => buildUpgradeResponse({ key: KEY, protocol: 'a\r\nX: y' }), 'ERR_BAD_PROTOCOL');
    refuses(() => buildUpgradeResponse({ key: KEY, extensions: [{ name: 'a,b', params: [] }] }), 'ERR_BAD_EXTENSION');
    refuses(() => buildUpgradeResponse({ key: KEY, headers: [['X', 'a\r\nSet-Cookie: evil']] }), 'ERR_BAD_HEADER');
    refuses(() => buildUpgradeResponse({ key: KEY, headers: [['X Y', 'a']] }), 'ERR_BAD_HEADER');
    for (const name of ['sec-websocket-accept', 'Upgrade', 'CONNECTION', 'Sec-WebSocket-Protocol', 'Sec-WebSocket-Extensions', 'Content-Length']) {
      refuses(() => buildUpgradeResponse({ key: KEY, headers: [[name, 'x']] }), 'ERR_BAD_HEADER');
    }
  });
});

describe('buildRejectResponse', () => {
  it('builds a complete answer with Connection: close and a counted body', () => {
    const bytes = buildRejectResponse(403, 'forbidden — go away', { 'X-Reason': 'origin' });
    const result = new HttpHeadParser('response').push(bytes);
    assert.ok(result);
    assert.equal(result.head.status, 403);
    assert.equal(result.head.reason, 'Forbidden');
    assert.deepEqual(result.head.headers.get('connection'), ['close']);
    assert.deepEqual(result.head.headers.get('content-type'), ['text/plain; charset=utf-8']);
    assert.deepEqual(result.head.headers.get('x-reason'), ['origin']);
    assert.equal(result.head.headers.get('content-length')?.[0], String(result.rest.length));
    assert.equal(result.rest.toString('utf8'), 'forbidden — go away');
  });

  it('carries the headers of a HandshakeError (426 version, 405 allow)', () => {
    try {
      validateUpgradeRequest(request({ drop: ['Sec-WebSocket-Version'] }));
      assert.fail('should throw');
    } catch (err) {
      assert.ok(err instanceof HandshakeError && err.status !== undefined);
      const head = parse(buildRejectResponse(err.status, err.message, err.headers), 'response');
      assert.equal(head.status, 426);
      assert.equal(head.reason, 'Upgrade Required');
      assert.deepEqual(head.headers.get('sec-websocket-version'), ['13']);
    }
  });

  it('handles an empty message and unknown statuses', () => {
    const head = parse(buildRejectResponse(499, ''), 'response');
    assert.equal(head.status, 499);
    assert.deepEqual(head.headers.get('content-length'), ['0']);
  });

  it('refuses bad statuses and headers', () => {
    for (const status of [101, 199, 204, 304, 600, 400.5, NaN]) refuses(() => buildRejectResponse(status, 'x'), 'ERR_BAD_STATUS');
    refuses(() => buildRejectResponse(400, 'x', { 'X-A': 'a\r\n\r\n<html>' }), 'ERR_BAD_HEADER');
    refuses(() => buildRejectResponse(400, 'x', { 'X-A': 'a\x00' }), 'ERR_BAD_HEADER');
    refuses(() => buildRejectResponse(400, 'x', { 'X:A': 'a' }), 'ERR_BAD_HEADER');
    refuses(() => buildRejectResponse(400, 'x', { 'Content-Length': '0' }), 'ERR_BAD_HEADER');
    refuses(() => buildRejectResponse(400, 'x', { connection: 'keep-alive' }), 'ERR_BAD_HEADER');
  });
});

describe('buildUpgradeRequest', () => {
  const base: UpgradeRequestOptions = { host: 'server.example.com', path: '/chat', key: KEY };

  it('builds the RFC 6455 section 1.3 request', () => {
    assert.equal(
      buildUpgradeRequest({ ...base, origin: 'http://example.com', protocols: ['chat', 'superchat'] }).toString('latin1'),
      'GET /chat HTTP/1.1\r\n' +
        'Host: server.example.com\r\n' +
        'Upgrade: websocket\r\n' +
        'Connection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${KEY}\r\n` +
        'Sec-WebSocket-Version: 13\r\n' +
        'Origin: http://example.com\r\n' +
        'Sec-WebSocket-Protocol: chat, superchat\r\n' +
        '\r\n',
    );
  });

  it('adds extensions and extra headers, in order', () => {
    const text = buildUpgradeRequest({
      ...base,
      extensions: [{ name: 'permessage-deflate', params: [['client_max_window_bits', true]] }],
      headers: [
        ['Authorization', 'Bearer abc'],
        ['Cookie', 'a=1'],
      ],
    }).toString('latin1');
    assert.ok(text.endsWith('Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\nAuthorization: Bearer abc\r\nCookie: a=1\r\n\r\n'), text);
  });

  it('refuses CR, LF and NUL in header values', () => {
    for (const value of ['a\r\nX-Evil: 1', 'a\nb', 'a\rb', 'a\x00b', 'a\x7f', 'a\u0100']) {
      refuses(() => buildUpgradeRequest({ ...base, headers: [['X-Test', value]] }), 'ERR_BAD_HEADER');
    }
  });

  it('refuses header names that are not tokens', () => {
    for (const name of ['', 'X Test', 'X:Test', 'X\r\nY', 'Ä', '(x)']) {
      refuses(() => buildUpgradeRequest({ ...base, headers: [[name, 'v']] }), 'ERR_BAD_HEADER');
    }
  });

  it('refuses headers that would override the handshake', () => {
    for (const name of ['Upgrade', 'connection', 'Sec-WebSocket-Key', 'SEC-WEBSOCKET-VERSION', 'Sec-WebSocket-Extensions', 'Sec-WebSocket-Protocol', 'Host', 'Origin', 'Content-Length', 'Transfer-Encoding']) {
      refuses(() => buildUpgradeRequest({ ...base, headers: [[name, 'x']] }), 'ERR_BAD_HEADER');
    }
  });

  it('refuses protocols that are not tokens or are repeated', () => {
    for (const protocols of [['a b'], ['chat\r\nX-Evil: 1'], [''], ['a,b'], ['chat', 'chat'], ['ok', ' padded']]) {
      refuses(() => buildUpgradeRequest({ ...base, protocols }), 'ERR_BAD_PROTOCOL');
    }
  });

  it('refuses bad host, path, key, origin and extensions', () => {
    refuses(() => buildUpgradeRequest({ ...base, host: '' }), 'ERR_BAD_HOST');
    refuses(() => buildUpgradeRequest({ ...base, host: 'a\r\nX: y' }), 'ERR_BAD_HOST');
    refuses(() => buildUpgradeRequest({ ...base, host: 'a b' }), 'ERR_BAD_HOST');
    for (const path of ['', 'chat', '/a b', '/a#b', '/a\r\n', '/é']) refuses(() => buildUpgradeRequest({ ...base, path }), 'ERR_BAD_PATH');
    refuses(() => buildUpgradeRequest({ ...base, key: 'abc' }), 'ERR_BAD_KEY');
    refuses(() => buildUpgradeRequest({ ...base, origin: 'http://a\r\nX: y' }), 'ERR_BAD_ORIGIN');
    refuses(() => buildUpgradeRequest({ ...base, extensions: [{ name: 'a b', params: [] }] }), 'ERR_BAD_EXTENSION');
  });
});

describe('round trip', () => {
  it('client request -> server validation -> 101 -> client validation, frames preserved', () => {
    const requestBytes = buildUpgradeRequest({
      host: 'localhost:7681',
      path: '/echo?room=1',
      key: KEY,
      protocols: ['lws-mirror-protocol', 'dumb-increment-protocol'],
      extensions: [
        { name: 'permessage-deflate', params: [['client_max_window_bits', true]] },
        { name: 'permessage-deflate', params: [] },
      ],
      origin: 'https://app.example',
      headers: [['User-Agent', 'sockeye-test']],
    });

    const serverParse = new HttpHeadParser('request').push(Buffer.concat([requestBytes, FRAMES]));
    assert.ok(serverParse);
    assert.deepEqual(serverParse.rest, FRAMES);
    const info = validateUpgradeRequest(serverParse.head);
    assert.equal(info.path, '/echo?room=1');
    assert.equal(info.host, 'localhost:7681');
    assert.equal(info.origin, 'https://app.example');
    assert.deepEqual(info.protocols, ['lws-mirror-protocol', 'dumb-increment-protocol']);
    assert.equal(info.extensions.length, 2);

    const selected = info.extensions[0];
    const responseBytes = buildUpgradeResponse({ key: info.key, protocol: info.protocols[1], extensions: [selected] });
    const clientParse = new HttpHeadParser('response').push(Buffer.concat([responseBytes, FRAMES]));
    assert.ok(clientParse);
    assert.deepEqual(clientParse.rest, FRAMES);
    const agreed = validateUpgradeResponse(clientParse.head, {
      key: KEY,
      protocols: ['lws-mirror-protocol', 'dumb-increment-protocol'],
      offeredExtensions: ['permessage-deflate'],
    });
    assert.deepEqual(agreed, {
      protocol: 'dumb-increment-protocol',
      extensions: [{ name: 'permessage-deflate', params: [['client_max_window_bits', true]] }],
    });
  });
});

describe('validateUpgradeResponse', () => {
  it('accepts a plain 101, case-insensitively', () => {
    assert.deepEqual(validateUpgradeResponse(response(), CLIENT), { protocol: undefined, extensions: [] });
    validateUpgradeResponse(
      response({
        drop: ['Upgrade', 'Connection'],
        add: [
          ['Upgrade', 'WebSocket'],
          ['Connection', 'keep-alive, UPGRADE'],
        ],
      }),
      CLIENT,
    );
  });

  it('allows the server to pick no protocol when some were offered', () => {
    assert.equal(validateUpgradeResponse(response(), { ...CLIENT, protocols: ['chat'] }).protocol, undefined);
  });

  it('fails on a non-101 status, keeping the status and the headers', () => {
    const head = response({
      line: 'HTTP/1.1 403 Forbidden',
      drop: ['Upgrade', 'Connection', 'Sec-WebSocket-Accept'],
      add: [
        ['X-Reason', 'origin'],
        ['Set-Cookie', 'a=1'],
        ['Set-Cookie', 'b=2'],
        ['__proto__', 'data'],
      ],
    });
    assert.throws(
      () => validateUpgradeResponse(head, CLIENT),
      (err: unknown) => {
        assert.ok(err instanceof HandshakeError);
        assert.equal(err.code, 'ERR_UNEXPECTED_STATUS');
        assert.equal(err.status, 403);
        assert.ok(err.message.includes('403 Forbidden'));
        assert.ok(err.headers);
        assert.equal(err.headers['x-reason'], 'origin');
        assert.equal(err.headers['set-cookie'], 'a=1, b=2');
        assert.equal(Object.getOwnPropertyDescriptor(err.headers, '__proto__')?.value, 'data');
        assert.equal(err.headers.constructor, undefined);
        return true;
      },
    );
    rejects(() => validateUpgradeResponse(response({ line: 'HTTP/1.1 200 OK' }), CLIENT), 'ERR_UNEXPECTED_STATUS', 200);
    rejects(() => validateUpgradeResponse(response({ line: 'HTTP/1.1 302 Found', add: [['Location', '/x']] }), CLIENT), 'ERR_UNEXPECTED_STATUS', 302,
      Object.assign(Object.create(null) as Record<string, string>, {
        upgrade: 'websocket',
        connection: 'Upgrade',
        'sec-websocket-accept': ACCEPT,
        location: '/x',
      }),
    );
  });

  it('fails on a wrong Upgrade or Connection', () => {
    rejects(() => validateUpgradeResponse(response({ drop: ['Upgrade'] }), CLIENT), 'ERR_BAD_UPGRADE', undefined);
    rejects(() => validateUpgradeResponse(response({ drop: ['Upgrade'], add: [['Upgrade', 'h2c']] }), CLIENT), 'ERR_BAD_UPGRADE', undefined);
    rejects(() => validateUpgradeResponse(response({ drop: ['Upgrade'], add: [['Upgrade', 'websocket, h2c']] }), CLIENT), 'ERR_BAD_UPGRADE', undefined);
    rejects(() => validateUpgradeResponse(response({ drop: ['Connection'] }), CLIENT), 'ERR_BAD_CONNECTION', undefined);
    rejects(() => validateUpgradeResponse(response({ drop: ['Connection'], add: [['Connection', 'close']] }), CLIENT), 'ERR_BAD_CONNECTION', undefined);
  });

  it('fails on a missing, wrong or repeated Sec-WebSocket-Accept', () => {
    rejects(() => validateUpgradeResponse(response({ drop: ['Sec-WebSocket-Accept'] }), CLIENT), 'ERR_BAD_ACCEPT', undefined);
    rejects(() => validateUpgradeResponse(response(), { ...CLIENT, key: Buffer.alloc(16).toString('base64') }), 'ERR_BAD_ACCEPT', undefined);
    rejects(
      () => validateUpgradeResponse(response({ drop: ['Sec-WebSocket-Accept'], add: [['Sec-WebSocket-Accept', ACCEPT.toLowerCase()]] }), CLIENT),
      'ERR_BAD_ACCEPT',
      undefined,
    );
    rejects(() => validateUpgradeResponse(response({ add: [['Sec-WebSocket-Accept', ACCEPT]] }), CLIENT), 'ERR_BAD_ACCEPT', undefined);
  });

  it('fails on a subprotocol that was not offered, several, or one when none was offered', () => {
    const offered = { ...CLIENT, protocols: ['chat', 'superchat'] };
    assert.equal(validateUpgradeResponse(response({ add: [['Sec-WebSocket-Protocol', 'superchat']] }), offered).protocol, 'superchat');
    rejects(() => validateUpgradeResponse(response({ add: [['Sec-WebSocket-Protocol', 'other']] }), offered), 'ERR_BAD_PROTOCOL', undefined);
    rejects(() => validateUpgradeResponse(response({ add: [['Sec-WebSocket-Protocol', 'Chat']] }), offered), 'ERR_BAD_PROTOCOL', undefined);
    rejects(() => validateUpgradeResponse(response({ add: [['Sec-WebSocket-Protocol', 'chat, superchat']] }), offered), 'ERR_BAD_PROTOCOL', undefined);
    rejects(
      () =>
        validateUpgradeResponse(
          response({
            add: [
              ['Sec-WebSocket-Protocol', 'chat'],
              ['Sec-WebSocket-Protocol', 'chat'],
            ],
          }),
          offered,
        ),
      'ERR_BAD_PROTOCOL',
      undefined,
    );
    rejects(() => validateUpgradeResponse(response({ add: [['Sec-WebSocket-Protocol', '']] }), offered), 'ERR_BAD_PROTOCOL', undefined);
    rejects(() => validateUpgradeResponse(response({ add: [['Sec-WebSocket-Protocol', 'a b']] }), offered), 'ERR_BAD_PROTOCOL', undefined);
    rejects(() => validateUpgradeResponse(response({ add: [['Sec-WebSocket-Protocol', 'chat']] }), CLIENT), 'ERR_BAD_PROTOCOL', undefined);
  });

  it('fails on an extension that was not offered or is answered twice', () => {
    const offered = { ...CLIENT, offeredExtensions: ['Permessage-Deflate'] };
    assert.deepEqual(validateUpgradeResponse(response({ add: [['Sec-WebSocket-Extensions', 'permessage-deflate; server_no_context_takeover']] }), offered).extensions, [
      { name: 'permessage-deflate', params: [['server_no_context_takeover', true]] },
    ]);
    rejects(() => validateUpgradeResponse(response({ add: [['Sec-WebSocket-Extensions', 'x-unknown']] }), offered), 'ERR_BAD_EXTENSION', undefined);
    rejects(() => validateUpgradeResponse(response({ add: [['Sec-WebSocket-Extensions', 'permessage-deflate']] }), CLIENT), 'ERR_BAD_EXTENSION', undefined);
    rejects(() => validateUpgradeResponse(response({ add: [['Sec-WebSocket-Extensions', 'permessage-deflate, permessage-deflate']] }), offered), 'ERR_BAD_EXTENSION', undefined);
    rejects(
      () =>
        validateUpgradeResponse(
          response({
            add: [
              ['Sec-WebSocket-Extensions', 'permessage-deflate'],
              ['Sec-WebSocket-Extensions', 'permessage-deflate'],
            ],
          }),
          offered,
        ),
      'ERR_BAD_EXTENSION',
      undefined,
    );
    rejects(() => validateUpgradeResponse(response({ add: [['Sec-WebSocket-Extensions', '__proto__']] }), offered), 'ERR_BAD_EXTENSION', undefined);
  });

  it('reports a malformed extensions header without an HTTP status', () => {
    const offered = { ...CLIENT, offeredExtensions: ['permessage-deflate'] };
    rejects(() => validateUpgradeResponse(response({ add: [['Sec-WebSocket-Extensions', 'permessage-deflate;']] }), offered), 'ERR_BAD_EXTENSION_HEADER', undefined);
  });

  it('refuses a request head', () => {
    refuses(() => validateUpgradeResponse(request(), CLIENT), 'ERR_BAD_HEAD_KIND');
  });
});

/**
 * RFC 8441: the head of an HTTP/2 request or response as an HTTP/2 layer
 * hands it over (HPACK-decoded fields, lower-case names, pseudo-header
 * fields among them; :method and :path also as method and target, :status
 * as status).
 */
function h2Head(kind: 'request' | 'response', fields: Lines): HttpHead {
  const headers = new Map<string, string[]>();
  for (const [name, value] of fields) headers.set(name, [...(headers.get(name) ?? []), value]);
  const first = (name: string) => headers.get(name)?.[0];
  return {
    kind,
    method: kind === 'request' ? (first(':method') ?? '') : '',
    target: kind === 'request' ? (first(':path') ?? '') : '',
    status: kind === 'response' ? Number(first(':status') ?? 0) : 0,
    reason: '',
    version: '2',
    headers,
    rawHeaders: fields,
  };
}

const BASE_CONNECT: Lines = [
  [':method', 'CONNECT'],
  [':protocol', 'websocket'],
  [':scheme', 'https'],
  [':authority', 'server.example.com'],
  [':path', '/chat?room=1'],
  ['sec-websocket-version', '13'],
];

/** An extended CONNECT from the base fields, with the fields named in `drop` removed and `add` appended. */
function connectHead(opts: { drop?: string[]; add?: Lines; set?: Lines } = {}): HttpHead {
  const drop = [...(opts.drop ?? []), ...(opts.set ?? []).map(([n]) => n)];
  return h2Head('request', BASE_CONNECT.filter(([n]) => !drop.includes(n)).concat(opts.set ?? [], opts.add ?? []));
}

describe('validateExtendedConnect (RFC 8441 sections 4 and 5)', () => {
  it('accepts the extended CONNECT and reports what it asked for', () => {
    const info = validateExtendedConnect(connectHead({ add: [['sec-websocket-protocol', 'chat, superchat'], ['sec-websocket-extensions', 'permessage-deflate; client_max_window_bits'], ['origin', 'https://example.com']] }));
    assert.equal(info.path, '/chat?room=1');
    assert.equal(info.host, 'server.example.com');
    assert.deepEqual(info.protocols, ['chat', 'superchat']);
    assert.deepEqual(info.extensions.map((e) => e.name), ['permessage-deflate']);
    assert.equal(info.origin, 'https://example.com');
    assert.equal(info.key, undefined, 'section 5: no key is needed');
    const plain = validateExtendedConnect(connectHead({ set: [[':scheme', 'http'], [':path', '/']] }));
    assert.deepEqual([plain.path, plain.protocols, plain.extensions, plain.origin], ['/', [], [], undefined]);
  });

  it('returns a key sent anyway, and refuses a malformed or repeated one (400)', () => {
    assert.equal(validateExtendedConnect(connectHead({ add: [['sec-websocket-key', KEY]] })).key, KEY);
    rejects(() => validateExtendedConnect(connectHead({ add: [['sec-websocket-key', 'short']] })), 'ERR_BAD_KEY', 400);
    rejects(() => validateExtendedConnect(connectHead({ add: [['sec-websocket-key', KEY], ['sec-websocket-key', KEY]] })), 'ERR_BAD_KEY', 400);
  });

  it('answers 405 with Allow: CONNECT to another :method', () => {
    for (const method of ['GET', 'POST', 'connect']) {
      rejects(() => validateExtendedConnect(connectHead({ set: [[':method', method]] })), 'ERR_BAD_METHOD', 405, { Allow: 'CONNECT' });
    }
  });

  it('answers 400 to a missing, repeated or other :protocol', () => {
    rejects(() => validateExtendedConnect(connectHead({ drop: [':protocol'] })), 'ERR_BAD_UPGRADE', 400);
    for (const p of ['websockets', 'WebSocket', 'h2c', '']) rejects(() => validateExtendedConnect(connectHead({ set: [[':protocol', p]] })), 'ERR_BAD_UPGRADE', 400);
    rejects(() => validateExtendedConnect(connectHead({ add: [[':protocol', 'websocket']] })), 'ERR_BAD_UPGRADE', 400);
  });

  it('answers 400 to a missing or bad :scheme and :path', () => {
    rejects(() => validateExtendedConnect(connectHead({ drop: [':scheme'] })), 'ERR_BAD_TARGET', 400);
    for (const scheme of ['ws', 'wss', 'HTTPS', 'ftp']) rejects(() => validateExtendedConnect(connectHead({ set: [[':scheme', scheme]] })), 'ERR_BAD_TARGET', 400);
    rejects(() => validateExtendedConnect(connectHead({ add: [[':scheme', 'https']] })), 'ERR_BAD_TARGET', 400);
    rejects(() => validateExtendedConnect(connectHead({ drop: [':path'] })), 'ERR_BAD_TARGET', 400);
    for (const path of ['chat', '*', 'https://server.example.com/chat', '']) rejects(() => validateExtendedConnect(connectHead({ set: [[':path', path]] })), 'ERR_BAD_TARGET', 400);
  });

  it('answers 400 to a missing, empty, repeated or userinfo :authority', () => {
    rejects(() => validateExtendedConnect(connectHead({ drop: [':authority'] })), 'ERR_BAD_HOST', 400);
    rejects(() => validateExtendedConnect(connectHead({ set: [[':authority', '']] })), 'ERR_BAD_HOST', 400);
    rejects(() => validateExtendedConnect(connectHead({ set: [[':authority', 'user:pw@server.example.com']] })), 'ERR_BAD_HOST', 400);
    rejects(() => validateExtendedConnect(connectHead({ add: [[':authority', 'other.example.com']] })), 'ERR_BAD_HOST', 400);
  });

  it('answers 400 to each connection-specific field (RFC 9113 section 8.2.2)', () => {
    for (const name of ['connection', 'upgrade', 'keep-alive', 'proxy-connection', 'transfer-encoding']) {
      rejects(() => validateExtendedConnect(connectHead({ add: [[name, name === 'upgrade' ? 'websocket' : 'x']] })), 'ERR_BAD_CONNECTION', 400);
    }
  });

  it('answers 400 to a request announcing a body; content-length 0 is allowed', () => {
    rejects(() => validateExtendedConnect(connectHead({ add: [['content-length', '5']] })), 'ERR_UNEXPECTED_BODY', 400);
    rejects(() => validateExtendedConnect(connectHead({ add: [['content-length', '0'], ['content-length', '0']] })), 'ERR_UNEXPECTED_BODY', 400);
    assert.equal(validateExtendedConnect(connectHead({ add: [['content-length', '0']] })).path, '/chat?room=1');
  });

  it('answers 426 with Sec-WebSocket-Version: 13 to a missing or other version, 400 to a repeated one', () => {
    rejects(() => validateExtendedConnect(connectHead({ drop: ['sec-websocket-version'] })), 'ERR_BAD_VERSION', 426, { 'Sec-WebSocket-Version': '13' });
    rejects(() => validateExtendedConnect(connectHead({ set: [['sec-websocket-version', '8']] })), 'ERR_BAD_VERSION', 426, { 'Sec-WebSocket-Version': '13' });
    rejects(() => validateExtendedConnect(connectHead({ add: [['sec-websocket-version', '13']] })), 'ERR_BAD_VERSION', 400);
  });

  it('answers 400 to bad subprotocols, extensions and a repeated origin, as over HTTP/1.1', () => {
    for (const p of ['a b', 'chat, chat', ',', 'a;b']) rejects(() => validateExtendedConnect(connectHead({ add: [['sec-websocket-protocol', p]] })), 'ERR_BAD_PROTOCOL', 400);
    assert.throws(() => validateExtendedConnect(connectHead({ add: [['sec-websocket-extensions', 'permessage-deflate; =']] })), (e: unknown) => e instanceof HandshakeError && e.status === 400);
    rejects(() => validateExtendedConnect(connectHead({ add: [['origin', 'https://a.test'], ['origin', 'https://b.test']] })), 'ERR_BAD_ORIGIN', 400);
  });

  it('refuses a response head', () => {
    refuses(() => validateExtendedConnect(h2Head('response', [[':status', '200']])), 'ERR_BAD_HEAD_KIND');
  });
});

describe('buildExtendedConnectRequest (RFC 8441 section 5)', () => {
  const base = { scheme: 'https' as const, authority: 'server.example.com:8443', path: '/chat?room=1' };

  it('builds the pseudo-header fields first, then the version, origin, subprotocols, extensions and extra fields, lower-cased', () => {
    assert.deepEqual(buildExtendedConnectRequest(base), [
      [':method', 'CONNECT'],
      [':protocol', 'websocket'],
      [':scheme', 'https'],
      [':authority', 'server.example.com:8443'],
      [':path', '/chat?room=1'],
      ['sec-websocket-version', '13'],
    ]);
    const full = buildExtendedConnectRequest({ ...base, scheme: 'http', protocols: ['chat', 'superchat'], extensions: [{ name: 'permessage-deflate', params: [['client_max_window_bits', true]] }], origin: 'https://example.com', headers: [['X-Token', 'abc'], ['Cookie', 'a=1']] });
    assert.deepEqual(full.slice(5), [
      ['sec-websocket-version', '13'],
      ['origin', 'https://example.com'],
      ['sec-websocket-protocol', 'chat, superchat'],
      ['sec-websocket-extensions', 'permessage-deflate; client_max_window_bits'],
      ['x-token', 'abc'],
      ['cookie', 'a=1'],
    ]);
    assert.equal(full[2][1], 'http');
    assert.ok(!full.some(([n]) => n === 'sec-websocket-key' || n === 'host' || n === 'upgrade' || n === 'connection'), 'no HTTP/1.1 handshake fields');
  });

  it('round trip: what it builds passes validateExtendedConnect with the same offer', () => {
    const fields = buildExtendedConnectRequest({ ...base, protocols: ['chat'], extensions: [{ name: 'permessage-deflate', params: [] }], origin: 'https://example.com' });
    const info = validateExtendedConnect(h2Head('request', fields));
    assert.deepEqual([info.path, info.host, info.protocols, info.extensions.map((e) => e.name), info.origin], ['/chat?room=1', 'server.example.com:8443', ['chat'], ['permessage-deflate'], 'https://example.com']);
  });

  it('refuses a bad scheme, authority, path, subprotocol, origin or extension', () => {
    refuses(() => buildExtendedConnectRequest({ ...base, scheme: 'wss' as 'https' }), 'ERR_BAD_URL');
    refuses(() => buildExtendedConnectRequest({ ...base, authority: '' }), 'ERR_BAD_HOST');
    refuses(() => buildExtendedConnectRequest({ ...base, authority: 'a\r\nx: y' }), 'ERR_BAD_HOST');
    for (const path of ['', 'chat', '/a b', '/a#b']) refuses(() => buildExtendedConnectRequest({ ...base, path }), 'ERR_BAD_PATH');
    refuses(() => buildExtendedConnectRequest({ ...base, protocols: ['chat', 'chat'] }), 'ERR_BAD_PROTOCOL');
    refuses(() => buildExtendedConnectRequest({ ...base, origin: 'https://a\r\nx: y' }), 'ERR_BAD_ORIGIN');
    refuses(() => buildExtendedConnectRequest({ ...base, extensions: [{ name: 'a b', params: [] }] }), 'ERR_BAD_EXTENSION');
  });

  it('refuses extra fields that override the handshake or are connection-specific (RFC 9113 section 8.2.2)', () => {
    for (const name of ['Host', 'Upgrade', 'connection', 'Sec-WebSocket-Key', 'sec-websocket-version', 'Sec-WebSocket-Protocol', 'Sec-WebSocket-Extensions', 'Origin', 'Content-Length', 'Transfer-Encoding', 'keep-alive', 'proxy-connection']) {
      refuses(() => buildExtendedConnectRequest({ ...base, headers: [[name, 'x']] }), 'ERR_BAD_HEADER');
    }
    refuses(() => buildExtendedConnectRequest({ ...base, headers: [['x-a', 'b\r\nc']] }), 'ERR_BAD_HEADER');
  });
});

describe('validateExtendedConnectResponse (RFC 8441 section 5)', () => {
  const offer = { protocols: ['chat', 'superchat'], offeredExtensions: ['permessage-deflate'] };

  it('accepts :status 200 with the subprotocol and extensions chosen from the offer', () => {
    assert.deepEqual(validateExtendedConnectResponse(h2Head('response', [[':status', '200']]), offer), { protocol: undefined, extensions: [] });
    const agreed = validateExtendedConnectResponse(h2Head('response', [[':status', '200'], ['sec-websocket-protocol', 'superchat'], ['sec-websocket-extensions', 'permessage-deflate; server_no_context_takeover']]), offer);
    assert.equal(agreed.protocol, 'superchat');
    assert.deepEqual(agreed.extensions.map((e) => e.name), ['permessage-deflate']);
  });

  it('rejects any other status with ERR_UNEXPECTED_STATUS, its status and its headers (pseudo-header fields left out)', () => {
    for (const status of [101, 201, 204, 301, 400, 403, 404, 426, 500]) {
      const head = h2Head('response', [[':status', String(status)], ['www-authenticate', 'Basic'], ['set-cookie', 'a=1'], ['set-cookie', 'b=2']]);
      rejects(() => validateExtendedConnectResponse(head, offer), 'ERR_UNEXPECTED_STATUS', status);
      assert.throws(() => validateExtendedConnectResponse(head, offer), (e: unknown) => {
        assert.deepEqual({ ...(e as HandshakeError).headers }, { 'www-authenticate': 'Basic', 'set-cookie': 'a=1, b=2' });
        return true;
      });
    }
  });

  it('checks a Sec-WebSocket-Accept only when a key was sent', () => {
    const withAccept = (accept: string) => h2Head('response', [[':status', '200'], ['sec-websocket-accept', accept]]);
    assert.doesNotThrow(() => validateExtendedConnectResponse(withAccept('anything'), offer));
    assert.doesNotThrow(() => validateExtendedConnectResponse(withAccept(ACCEPT), { ...offer, key: KEY }));
    assert.doesNotThrow(() => validateExtendedConnectResponse(h2Head('response', [[':status', '200']]), { ...offer, key: KEY }));
    rejects(() => validateExtendedConnectResponse(withAccept('wrong'), { ...offer, key: KEY }), 'ERR_BAD_ACCEPT', undefined);
    rejects(() => validateExtendedConnectResponse(h2Head('response', [[':status', '200'], ['sec-websocket-accept', ACCEPT], ['sec-websocket-accept', ACCEPT]]), { ...offer, key: KEY }), 'ERR_BAD_ACCEPT', undefined);
  });

  it('rejects a subprotocol or extension that was not offered, several subprotocols, an extension twice', () => {
    rejects(() => validateExtendedConnectResponse(h2Head('response', [[':status', '200'], ['sec-websocket-protocol', 'other']]), offer), 'ERR_BAD_PROTOCOL', undefined);
    rejects(() => validateExtendedConnectResponse(h2Head('response', [[':status', '200'], ['sec-websocket-protocol', 'chat, superchat']]), offer), 'ERR_BAD_PROTOCOL', undefined);
    rejects(() => validateExtendedConnectResponse(h2Head('response', [[':status', '200'], ['sec-websocket-protocol', 'chat']]), { protocols: [], offeredExtensions: [] }), 'ERR_BAD_PROTOCOL', undefined);
    rejects(() => validateExtendedConnectResponse(h2Head('response', [[':status', '200'], ['sec-websocket-extensions', 'x-other']]), offer), 'ERR_BAD_EXTENSION', undefined);
    rejects(() => validateExtendedConnectResponse(h2Head('response', [[':status', '200'], ['sec-websocket-extensions', 'permessage-deflate, permessage-deflate']]), offer), 'ERR_BAD_EXTENSION', undefined);
  });

  it('refuses a request head', () => {
    refuses(() => validateExtendedConnectResponse(connectHead(), offer), 'ERR_BAD_HEAD_KIND');
  });
});
