import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HttpHeadParser, isToken, trimOws, type HttpHead } from '../../src/core/http-head.js';
import { HandshakeError, InvalidArgumentError, InvalidStateError } from '../../src/core/errors.js';

const REQUEST =
  'GET /chat?x=1 HTTP/1.1\r\n' +
  'Host: server.example.com\r\n' +
  'Upgrade: websocket\r\n' +
  'Connection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
  'Sec-WebSocket-Version: 13\r\n' +
  'X-Multi: one\r\n' +
  'x-multi: two\r\n' +
  '\r\n';
/** A masked "Hello" text frame (RFC 6455 section 5.7) standing in for the first frames after the head. */
const FRAMES = Buffer.from([0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);

function parseAll(text: string | Buffer, kind: 'request' | 'response' = 'request', limits?: { maxHeadBytes?: number; maxHeaders?: number }) {
  const parser = new HttpHeadParser(kind, limits);
  const result = parser.push(typeof text === 'string' ? Buffer.from(text, 'latin1') : text);
  assert.ok(result, 'head should be complete');
  return result;
}

function expectError(fn: () => unknown, code: string, status: number | undefined, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof HandshakeError, `expected HandshakeError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.equal(err.status, status);
    if (message !== undefined) assert.match(err.message, message);
    return true;
  });
}

function expectRequestError(text: string, code: string, status: number, message?: RegExp): void {
  expectError(() => new HttpHeadParser('request').push(Buffer.from(text, 'latin1')), code, status, message);
}

function headOf(result: { head: HttpHead }): unknown {
  const h = result.head;
  return { ...h, headers: [...h.headers] };
}

describe('HttpHeadParser: requests', () => {
  it('parses the request line and headers', () => {
    const { head, rest } = parseAll(REQUEST);
    assert.equal(head.kind, 'request');
    assert.equal(head.method, 'GET');
    assert.equal(head.target, '/chat?x=1');
    assert.equal(head.version, '1.1');
    assert.equal(head.status, 0);
    assert.equal(head.reason, '');
    assert.deepEqual(head.headers.get('host'), ['server.example.com']);
    assert.deepEqual(head.headers.get('x-multi'), ['one', 'two']);
    assert.deepEqual(head.rawHeaders[5], ['X-Multi', 'one']);
    assert.deepEqual(head.rawHeaders[6], ['x-multi', 'two']);
    assert.equal(head.rawHeaders.length, 7);
    assert.equal(rest.length, 0);
  });

  it('accepts HTTP/1.0', () => {
    assert.equal(parseAll('GET / HTTP/1.0\r\n\r\n').head.version, '1.0');
  });

  it('keeps the bytes after the head as rest (they are the first frames)', () => {
    const { rest } = parseAll(Buffer.concat([Buffer.from(REQUEST), FRAMES]));
    assert.deepEqual(rest, FRAMES);
  });

  it('gives the same head and rest whatever byte the input is split at', () => {
    const all = Buffer.concat([Buffer.from(REQUEST), FRAMES]);
    const expected = parseAll(all);
    for (let split = 0; split <= all.length; split++) {
      const parser = new HttpHeadParser('request');
      let result = parser.push(all.subarray(0, split));
      let rest: Buffer;
      if (result) {
        rest = Buffer.concat([result.rest, all.subarray(split)]);
      } else {
        result = parser.push(all.subarray(split));
        assert.ok(result, `complete after split at ${split}`);
        rest = result.rest;
      }
      assert.deepEqual(headOf(result), headOf(expected), `head differs when split at ${split}`);
      assert.deepEqual(rest, FRAMES, `rest differs when split at ${split}`);
    }
  });

  it('gives the same result when fed one byte at a time', () => {
    const all = Buffer.concat([Buffer.from(REQUEST), FRAMES]);
    const parser = new HttpHeadParser('request');
    let result: ReturnType<HttpHeadParser['push']> = null;
    let i = 0;
    while (result === null) result = parser.push(all.subarray(i, ++i));
    assert.deepEqual(headOf(result), headOf(parseAll(all)));
    assert.deepEqual(Buffer.concat([result.rest, all.subarray(i)]), FRAMES);
  });

  it('accepts a plain Uint8Array', () => {
    const bytes = new Uint8Array(Buffer.concat([Buffer.from(REQUEST), FRAMES]));
    const result = new HttpHeadParser('request').push(bytes.subarray(0));
    assert.ok(result);
    assert.deepEqual(Buffer.from(result.rest), FRAMES);
  });

  it('parses a 16 KiB head fed one byte at a time in linear time', () => {
    let text = 'GET / HTTP/1.1\r\n';
    for (let i = 0; text.length < 16384 - 400; i++) text += `X-Filler-${i}: ${'v'.repeat(200)}\r\n`;
    text += '\r\n';
    assert.ok(text.length <= 16384);
    const bytes = Buffer.from(text);
    const parser = new HttpHeadParser('request');
    const start = performance.now();
    let result = null;
    for (let i = 0; i < bytes.length; i++) result = parser.push(bytes.subarray(i, i + 1));
    const elapsed = performance.now() - start;
    assert.ok(result);
    assert.equal(result.head.rawHeaders.length, text.split('\r\n').length - 3);
    assert.ok(elapsed < 200, `took ${elapsed.toFixed(1)} ms`);
  });

  it('stays linear for a 512 KiB head fed one byte at a time (a rescan would take minutes)', () => {
    const limit = 512 * 1024;
    const text = 'GET / HTTP/1.1\r\nX-Big: ' + 'v'.repeat(limit - 100) + '\r\n\r\n';
    const bytes = Buffer.from(text);
    const parser = new HttpHeadParser('request', { maxHeadBytes: limit });
    const start = performance.now();
    let result = null;
    for (let i = 0; i < bytes.length; i++) result = parser.push(bytes.subarray(i, i + 1));
    const elapsed = performance.now() - start;
    assert.ok(result);
    assert.ok(elapsed < 2000, `took ${elapsed.toFixed(1)} ms`);
  });

  it('trims OWS (SP and HTAB only) around values', () => {
    const { head } = parseAll('GET / HTTP/1.1\r\nA:  \t spaced out \t \r\nB:\r\nC: \xa0nbsp\xa0\r\n\r\n');
    assert.deepEqual(head.headers.get('a'), ['spaced out']);
    assert.deepEqual(head.headers.get('b'), ['']);
    // U+00A0 is obs-text, not OWS: String.prototype.trim would have eaten it.
    assert.deepEqual(head.headers.get('c'), ['\xa0nbsp\xa0']);
  });

  it('decodes obs-text as latin1 and allows HTAB inside values', () => {
    const bytes = Buffer.concat([Buffer.from('GET / HTTP/1.1\r\nX: a\tb '), Buffer.from([0xe9, 0xff]), Buffer.from('\r\n\r\n')]);
    assert.deepEqual(parseAll(bytes).head.headers.get('x'), ['a\tb \xe9\xff']);
  });

  it('keeps header names like __proto__ and constructor as plain data', () => {
    const { head } = parseAll('GET / HTTP/1.1\r\n__proto__: polluted\r\nconstructor: x\r\nHasOwnProperty: y\r\n\r\n');
    assert.deepEqual(head.headers.get('__proto__'), ['polluted']);
    assert.deepEqual(head.headers.get('constructor'), ['x']);
    assert.deepEqual(head.headers.get('hasownproperty'), ['y']);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(Object.getPrototypeOf(head.headers), Map.prototype);
    assert.equal(head.headers.get('toString'), undefined);
  });
});

describe('HttpHeadParser: limits', () => {
  it('refuses a head larger than maxHeadBytes with 431, pushed whole', () => {
    const text = 'GET / HTTP/1.1\r\nX: ' + 'a'.repeat(20000) + '\r\n\r\n';
    expectRequestError(text, 'ERR_HEAD_TOO_LARGE', 431);
  });

  it('refuses a head that never ends once maxHeadBytes have arrived, without waiting for more', () => {
    const parser = new HttpHeadParser('request', { maxHeadBytes: 64 });
    assert.equal(parser.push(Buffer.from('GET / HTTP/1.1\r\nX: ')), null);
    expectError(() => parser.push(Buffer.from('a'.repeat(100))), 'ERR_HEAD_TOO_LARGE', 431);
    const trickle = new HttpHeadParser('request', { maxHeadBytes: 64 });
    const bytes = Buffer.from('GET / HTTP/1.1\r\nX: ' + 'a'.repeat(100));
    let i = 0;
    expectError(() => {
      for (; i < bytes.length; i++) trickle.push(bytes.subarray(i, i + 1));
    }, 'ERR_HEAD_TOO_LARGE', 431);
    assert.equal(i, 63, 'fails on the 64th byte');
  });

  it('accepts a head of exactly maxHeadBytes, with frames after it in the same chunk', () => {
    const base = 'GET / HTTP/1.1\r\nX: \r\n\r\n';
    const text = base.replace('X: ', 'X: ' + 'a'.repeat(100 - base.length));
    assert.equal(text.length, 100);
    const { rest } = parseAll(Buffer.concat([Buffer.from(text), FRAMES]), 'request', { maxHeadBytes: 100 });
    assert.deepEqual(rest, FRAMES);
    expectError(() => parseAll(text.replace('X: ', 'X: a'), 'request', { maxHeadBytes: 100 }), 'ERR_HEAD_TOO_LARGE', 431);
  });

  it('refuses more than maxHeaders fields with 431 (and accepts exactly maxHeaders)', () => {
    const head = (n: number) => 'GET / HTTP/1.1\r\n' + Array.from({ length: n }, (_, i) => `H${i}: v\r\n`).join('') + '\r\n';
    assert.equal(parseAll(head(100)).head.rawHeaders.length, 100);
    expectRequestError(head(101), 'ERR_TOO_MANY_HEADERS', 431);
    assert.equal(parseAll(head(3), 'request', { maxHeaders: 3 }).head.rawHeaders.length, 3);
    expectError(() => parseAll(head(4), 'request', { maxHeaders: 3 }), 'ERR_TOO_MANY_HEADERS', 431);
  });

  it('refuses nonsensical limits', () => {
    assert.throws(() => new HttpHeadParser('request', { maxHeadBytes: 0 }), InvalidArgumentError);
    assert.throws(() => new HttpHeadParser('request', { maxHeaders: 1.5 }), InvalidArgumentError);
  });
});

describe('HttpHeadParser: malformed requests', () => {
  it('answers 505 to an HTTP version other than 1.0 and 1.1', () => {
    expectRequestError('GET / HTTP/2.0\r\n\r\n', 'ERR_BAD_HTTP_VERSION', 505);
    expectRequestError('GET / HTTP/1.2\r\n\r\n', 'ERR_BAD_HTTP_VERSION', 505);
    expectRequestError('GET / HTTP/0.9\r\n\r\n', 'ERR_BAD_HTTP_VERSION', 505);
  });

  it('answers 400 to something that is not an HTTP version at all', () => {
    for (const v of ['HTTP/1', 'http/1.1', 'HTTP/1.1x', 'HTTP/a.b', 'HTTP/11', '']) {
      expectRequestError(`GET / ${v}\r\n\r\n`, 'ERR_BAD_HTTP_HEAD', 400);
    }
  });

  it('refuses obsolete line folding with 400', () => {
    expectRequestError('GET / HTTP/1.1\r\nX-A: one\r\n two\r\n\r\n', 'ERR_BAD_HTTP_HEAD', 400, /folding/);
    expectRequestError('GET / HTTP/1.1\r\nX-A: one\r\n\tX-B: two\r\n\r\n', 'ERR_BAD_HTTP_HEAD', 400, /folding/);
  });

  it('refuses whitespace between a field name and the colon with 400', () => {
    expectRequestError('GET / HTTP/1.1\r\nHost : x\r\n\r\n', 'ERR_BAD_HTTP_HEAD', 400, /whitespace between header field name and colon/);
    expectRequestError('GET / HTTP/1.1\r\nHost\t: x\r\n\r\n', 'ERR_BAD_HTTP_HEAD', 400, /whitespace between header field name and colon/);
  });

  it('refuses control characters in values with 400', () => {
    for (const c of ['\x00', '\x01', '\x0b', '\x1f', '\x7f']) {
      expectRequestError(`GET / HTTP/1.1\r\nX: a${c}b\r\n\r\n`, 'ERR_BAD_HTTP_HEAD', 400, /control character/);
    }
  });

  it('refuses a bare CR with 400, wherever it is', () => {
    expectRequestError('GET / HTTP/1.1\r\nX: a\rb\r\n\r\n', 'ERR_BAD_HTTP_HEAD', 400, /bare CR/);
    expectRequestError('GET / HTTP/1.1\rX: a\r\n\r\n', 'ERR_BAD_HTTP_HEAD', 400, /bare CR/);
    expectRequestError('GET / HTTP/1.1\r\nX: a\r\n\rX', 'ERR_BAD_HTTP_HEAD', 400, /bare CR/);
    // Also when the CR and the byte after it come in different chunks.
    const parser = new HttpHeadParser('request');
    assert.equal(parser.push(Buffer.from('GET / HTTP/1.1\r\nX: a\r')), null);
    expectError(() => parser.push(Buffer.from('b')), 'ERR_BAD_HTTP_HEAD', 400);
  });

  it('refuses bare LF line endings with 400', () => {
    expectRequestError('GET / HTTP/1.1\nHost: x\n\n', 'ERR_BAD_HTTP_HEAD', 400);
    expectRequestError('GET / HTTP/1.1\r\nHost: x\r\n\n', 'ERR_BAD_HTTP_HEAD', 400);
  });

  it('refuses field names that are not tokens, empty or without a colon', () => {
    for (const line of ['Fo@o: x', 'F(o): x', ': x', 'NoColon', 'Fö: x', '"q": x']) {
      expectRequestError(`GET / HTTP/1.1\r\n${line}\r\n\r\n`, 'ERR_BAD_HTTP_HEAD', 400);
    }
  });

  it('refuses malformed request lines', () => {
    for (const line of ['GET  / HTTP/1.1', 'GET / HTTP/1.1 ', ' GET / HTTP/1.1', 'GET /', 'GET', 'G(T / HTTP/1.1', 'GET /a\x01 HTTP/1.1', 'GET /\xe9 HTTP/1.1', '']) {
      expectRequestError(`${line}\r\n\r\n`, 'ERR_BAD_HTTP_HEAD', 400);
    }
  });

  it('refuses an empty line before the request line (strict, unlike RFC 7230 section 3.5 allows)', () => {
    expectRequestError('\r\nGET / HTTP/1.1\r\n\r\n', 'ERR_BAD_HTTP_HEAD', 400);
  });

  it('keeps the method as sent (methods are case-sensitive)', () => {
    assert.equal(parseAll('get / HTTP/1.1\r\n\r\n').head.method, 'get');
  });
});

describe('HttpHeadParser: responses', () => {
  it('parses a status line and headers', () => {
    const { head, rest } = parseAll(
      Buffer.concat([Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n'), FRAMES]),
      'response',
    );
    assert.equal(head.kind, 'response');
    assert.equal(head.status, 101);
    assert.equal(head.reason, 'Switching Protocols');
    assert.equal(head.method, '');
    assert.equal(head.target, '');
    assert.equal(head.version, '1.1');
    assert.deepEqual(head.headers.get('upgrade'), ['websocket']);
    assert.deepEqual(rest, FRAMES);
  });

  it('accepts an empty reason phrase', () => {
    assert.equal(parseAll('HTTP/1.1 403 \r\n\r\n', 'response').head.reason, '');
  });

  it('raises the same codes with no status (nobody is answered)', () => {
    const bad = (text: string, code: string) => expectError(() => new HttpHeadParser('response').push(Buffer.from(text, 'latin1')), code, undefined);
    bad('HTTP/2.0 101 OK\r\n\r\n', 'ERR_BAD_HTTP_VERSION');
    bad('HTTP/1.1 101 OK\r\nX : y\r\n\r\n', 'ERR_BAD_HTTP_HEAD');
    bad('HTTP/1.1 101 OK\r\nX: y\r\n z\r\n\r\n', 'ERR_BAD_HTTP_HEAD');
    bad('HTTP/1.1 101 OK\r\nX: \x00\r\n\r\n', 'ERR_BAD_HTTP_HEAD');
    bad('HTTP/1.1 101 OK\rX\r\n\r\n', 'ERR_BAD_HTTP_HEAD');
    bad('HTTP/1.1 101\r\n\r\n', 'ERR_BAD_HTTP_HEAD');
    bad('HTTP/1.1 20 OK\r\n\r\n', 'ERR_BAD_HTTP_HEAD');
    bad('HTTP/1.1 1011 OK\r\n\r\n', 'ERR_BAD_HTTP_HEAD');
    bad('HTTP/1.1 099 OK\r\n\r\n', 'ERR_BAD_HTTP_HEAD');
    bad('HTTP/1.1 600 OK\r\n\r\n', 'ERR_BAD_HTTP_HEAD');
    bad('HTTP/1.1 -01 OK\r\n\r\n', 'ERR_BAD_HTTP_HEAD');
    bad('HTTP/1.1 101 OK\x01\r\n\r\n', 'ERR_BAD_HTTP_HEAD');
    const big = new HttpHeadParser('response', { maxHeadBytes: 32 });
    expectError(() => big.push(Buffer.from('HTTP/1.1 101 OK\r\nX: ' + 'a'.repeat(40))), 'ERR_HEAD_TOO_LARGE', undefined);
  });
});

describe('HttpHeadParser: state', () => {
  it('refuses pushes after the head completed', () => {
    const parser = new HttpHeadParser('request');
    assert.ok(parser.push(Buffer.from(REQUEST)));
    assert.throws(() => parser.push(FRAMES), (err: unknown) => err instanceof InvalidStateError && err.state === 'complete');
  });

  it('refuses pushes after a failure', () => {
    const parser = new HttpHeadParser('request');
    assert.throws(() => parser.push(Buffer.from('GET / HTTP/1.1\nX')), HandshakeError);
    assert.throws(() => parser.push(Buffer.from(REQUEST)), (err: unknown) => err instanceof InvalidStateError && err.state === 'failed');
  });

  it('returns null for empty chunks while incomplete', () => {
    const parser = new HttpHeadParser('request');
    assert.equal(parser.push(Buffer.alloc(0)), null);
    assert.equal(parser.push(Buffer.from('GET / HTTP/1.1\r\n')), null);
    assert.equal(parser.push(new Uint8Array(0)), null);
    assert.ok(parser.push(Buffer.from('\r\n')));
  });
});

describe('grammar helpers', () => {
  it('isToken follows RFC 7230 tchar', () => {
    assert.ok(isToken("!#$%&'*+-.^_`|~09azAZ"));
    for (const s of ['', 'a b', 'a,b', 'a;b', 'a"b', 'a/b', 'a=b', 'a\tb', 'é', 'a\x7f', '(', ')', '<', '>', '@', '[', ']', '?', '{', '}', ':', '\\']) {
      assert.equal(isToken(s), false, JSON.stringify(s));
    }
  });

  it('trimOws trims SP and HTAB only', () => {
    assert.equal(trimOws(' \t a b \t '), 'a b');
    assert.equal(trimOws('\xa0a\xa0'), '\xa0a\xa0');
    assert.equal(trimOws('   '), '');
  });
});
