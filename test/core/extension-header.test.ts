import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatExtension, formatExtensions, parseExtensionHeader, type ExtensionOffer } from '../../src/core/extension-header.js';
import { HandshakeError, InvalidArgumentError } from '../../src/core/errors.js';

function expectBad(value: string): void {
  assert.throws(
    () => parseExtensionHeader(value),
    (err: unknown) => err instanceof HandshakeError && err.code === 'ERR_BAD_EXTENSION_HEADER' && err.status === 400,
    `should reject ${JSON.stringify(value)}`,
  );
}

describe('parseExtensionHeader', () => {
  it('parses a single extension without parameters', () => {
    assert.deepEqual(parseExtensionHeader('permessage-deflate'), [{ name: 'permessage-deflate', params: [] }]);
  });

  it('parses parameters with and without values, in order', () => {
    assert.deepEqual(parseExtensionHeader('permessage-deflate; client_max_window_bits; server_max_window_bits=10; server_no_context_takeover'), [
      {
        name: 'permessage-deflate',
        params: [
          ['client_max_window_bits', true],
          ['server_max_window_bits', '10'],
          ['server_no_context_takeover', true],
        ],
      },
    ]);
  });

  it('parses several extensions, including offers of the same one (RFC 7692 section 5 fallbacks)', () => {
    assert.deepEqual(parseExtensionHeader('permessage-deflate; client_max_window_bits=10, permessage-deflate, x-webkit-deflate-frame'), [
      { name: 'permessage-deflate', params: [['client_max_window_bits', '10']] },
      { name: 'permessage-deflate', params: [] },
      { name: 'x-webkit-deflate-frame', params: [] },
    ]);
  });

  it('accepts OWS around separators and "=", and tabs', () => {
    assert.deepEqual(parseExtensionHeader(' \tfoo \t;\t a = 1 ;b\t,\tbar '), [
      {
        name: 'foo',
        params: [
          ['a', '1'],
          ['b', true],
        ],
      },
      { name: 'bar', params: [] },
    ]);
  });

  it('ignores empty list elements (RFC 7230 section 7), as produced by joining header lines', () => {
    assert.deepEqual(parseExtensionHeader(', foo ,, , bar,'), [
      { name: 'foo', params: [] },
      { name: 'bar', params: [] },
    ]);
  });

  it('lower-cases extension and parameter names, keeps values as sent', () => {
    assert.deepEqual(parseExtensionHeader('PerMessage-Deflate; Client_Max_Window_Bits=AbC'), [
      { name: 'permessage-deflate', params: [['client_max_window_bits', 'AbC']] },
    ]);
  });

  it('unquotes quoted-string values, including quoted-pairs', () => {
    assert.deepEqual(parseExtensionHeader('foo; a="10"; b="x\\y\\z"; c = "1"'), [
      {
        name: 'foo',
        params: [
          ['a', '10'],
          ['b', 'xyz'],
          ['c', '1'],
        ],
      },
    ]);
  });

  it('rejects quoted values that are not tokens once unquoted (RFC 6455 section 9.1)', () => {
    expectBad('foo; a=""');
    expectBad('foo; a="1 0"');
    expectBad('foo; a="a,b"');
    expectBad('foo; a="a\\"b"');
    expectBad('foo; a="\\ "');
  });

  it('rejects syntax errors with ERR_BAD_EXTENSION_HEADER / 400', () => {
    for (const value of [
      '',
      ' ',
      ',',
      ', ,',
      ';',
      'foo;',
      'foo; ',
      'foo;;a',
      'foo; =1',
      'foo; a=',
      'foo; a= ;b',
      'foo; a=1 2',
      'foo bar',
      'foo; a b',
      'foo; a="1',
      'foo; a="1\\',
      'foo; a="1"x',
      '"foo"',
      'foo, ;a',
      'fo@o',
      'foo; a=b=c',
      'foo; a=1;',
      'foo; a="\x01"',
      'foo\x00',
      'foo; a=é',
    ]) {
      expectBad(value);
    }
  });

  it('treats __proto__ and constructor as ordinary names', () => {
    const parsed = parseExtensionHeader('__proto__; constructor=1; __proto__, constructor; toString');
    assert.deepEqual(parsed, [
      {
        name: '__proto__',
        params: [
          ['constructor', '1'],
          ['__proto__', true],
        ],
      },
      { name: 'constructor', params: [['tostring', true]] },
    ]);
    assert.equal(Object.getPrototypeOf(parsed[0]), Object.prototype);
    assert.equal(({} as Record<string, unknown>).constructor, Object);
    assert.equal(Object.keys(Object.prototype).length, 0);
  });

  it('runs in linear time on hostile input', () => {
    const inputs = [
      'a' + ' '.repeat(50000) + 'b',
      'a,'.repeat(20000) + '(',
      'a;'.repeat(20000) + '(',
      'a; b="' + 'x'.repeat(50000),
      'a; b=' + '"x"'.repeat(20000),
      ', '.repeat(50000),
    ];
    for (const value of inputs) {
      const start = performance.now();
      assert.throws(() => parseExtensionHeader(value), HandshakeError);
      const elapsed = performance.now() - start;
      assert.ok(elapsed < 500, `took ${elapsed.toFixed(1)} ms on ${JSON.stringify(value.slice(0, 20))}`);
    }
  });
});

describe('formatExtension(s)', () => {
  const deflate: ExtensionOffer = {
    name: 'permessage-deflate',
    params: [
      ['client_max_window_bits', '10'],
      ['server_no_context_takeover', true],
    ],
  };

  it('formats one extension', () => {
    assert.equal(formatExtension(deflate), 'permessage-deflate; client_max_window_bits=10; server_no_context_takeover');
    assert.equal(formatExtension({ name: 'x', params: [] }), 'x');
  });

  it('joins several with ", "', () => {
    assert.equal(formatExtensions([deflate, { name: 'x', params: [] }]), 'permessage-deflate; client_max_window_bits=10; server_no_context_takeover, x');
    assert.equal(formatExtensions([]), '');
  });

  it('round-trips through the parser', () => {
    const exts: ExtensionOffer[] = [deflate, { name: 'permessage-deflate', params: [['client_max_window_bits', true]] }, { name: 'a', params: [] }];
    assert.deepEqual(parseExtensionHeader(formatExtensions(exts)), exts);
  });

  it('refuses names and values that are not tokens (they could inject header syntax)', () => {
    const bad: ExtensionOffer[] = [
      { name: '', params: [] },
      { name: 'a b', params: [] },
      { name: 'a\r\nX-Evil: 1', params: [] },
      { name: 'a', params: [['b;c', true]] },
      { name: 'a', params: [['b', '1, evil']] },
      { name: 'a', params: [['b', '']] },
      { name: 'a', params: [['b', '"q"']] },
    ];
    for (const ext of bad) {
      assert.throws(() => formatExtension(ext), (err: unknown) => err instanceof InvalidArgumentError && err.code === 'ERR_BAD_EXTENSION', JSON.stringify(ext));
    }
  });
});
