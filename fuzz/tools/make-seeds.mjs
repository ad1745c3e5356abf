// Regenerates the checked-in seed corpus (fuzz/corpus/<target>/). Run after
// `npm run build`: node fuzz/tools/make-seeds.mjs
// Seeds are small, named after what they exercise, and deterministic (fixed
// masks), so regenerating them changes nothing unless this file changes.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { deflateRawSync, constants } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', 'corpus');
const B = (...parts) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.isBuffer(p) ? p : Buffer.from(p))));

// ------------------------------------------------------------ frames
const MASK = Buffer.from([0x37, 0xfa, 0x21, 0x3d]); // RFC 6455 section 5.7's example key
function frame(b0, payload, { masked, len7, ext } = {}) {
  payload = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : Buffer.from(payload ?? []);
  const n = payload.length;
  let head;
  if (ext === 64 || (ext === undefined && n > 0xffff)) {
    head = Buffer.alloc(10);
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(n), 2);
  } else if (ext === 16 || (ext === undefined && n > 125)) {
    head = Buffer.alloc(4);
    head[1] = 126;
    head.writeUInt16BE(n, 2);
  } else {
    head = Buffer.alloc(2);
    head[1] = len7 ?? n;
  }
  head[0] = b0;
  if (!masked) return B(head, payload);
  head[1] |= 0x80;
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= MASK[i & 3];
  return B(head, MASK, body);
}
const close = (code, reason = '') => B(Buffer.from([code >> 8, code & 0xff]), reason);

function frameSeeds() {
  const seeds = {};
  for (const role of ['server', 'client']) {
    const masked = role === 'server';
    const f = (b0, p, o = {}) => frame(b0, p, { masked, ...o });
    const flags = role === 'server' ? 0 : 1;
    const add = (name, bytes, extraFlags = 0, split = 7) => (seeds[`${role}-${name}`] = B([flags | extraFlags, split], bytes));
    add('text-hello', f(0x81, 'Hello'));
    add('binary-300', f(0x82, Buffer.alloc(300, 0xab)));
    add('text-16bit-nonminimal', f(0x81, 'short', { ext: 16 }));
    add('text-64bit-nonminimal', f(0x81, 'short', { ext: 64 }));
    add('fragmented-with-ping', B(f(0x01, 'Hel'), f(0x89, 'ping!'), f(0x80, 'lo')));
    add('fragmented-binary-3', B(f(0x02, [1, 2]), f(0x00, [3]), f(0x80, [4, 5])));
    add('empty-frames', B(f(0x81, ''), f(0x01, ''), f(0x00, ''), f(0x80, '')));
    add('utf8-split-over-fragments', B(f(0x01, Buffer.from([0xe2, 0x82])), f(0x80, Buffer.from([0xac]))));
    add('ping-pong-close', B(f(0x89, 'a'), f(0x8a, 'b'), f(0x88, close(1000, 'bye'))));
    add('close-empty', f(0x88, ''));
    add('close-4999', f(0x88, close(4999)));
    add('close-1005-invalid', f(0x88, close(1005)));
    add('close-1-byte', f(0x88, [0x03]));
    add('close-bad-utf8-reason', f(0x88, B(close(1000), [0xc0, 0xaf])));
    add('text-bad-utf8', f(0x81, Buffer.from([0x68, 0x69, 0xed, 0xa0, 0x80])));
    add('text-max-codepoint', f(0x81, Buffer.from([0xf4, 0x8f, 0xbf, 0xbf])));
    add('rsv1-without-extension', f(0xc1, 'x'));
    add('rsv1-allowed', f(0xc1, 'x'), 2);
    add('reserved-opcode-3', f(0x83, ''));
    add('reserved-opcode-b', f(0x8b, ''));
    add('control-126', f(0x89, Buffer.alloc(126, 0x70)));
    add('control-fragmented', f(0x09, 'x'));
    add('continuation-first', f(0x80, 'x'));
    add('text-inside-message', B(f(0x01, 'a'), f(0x81, 'b')));
    add('length-2^63', B([0x82, (masked ? 0x80 : 0) | 127, 0x80, 0, 0, 0, 0, 0, 0, 0], masked ? MASK : []));
    add('length-2^53', B([0x82, (masked ? 0x80 : 0) | 127, 0, 0x20, 0, 0, 0, 0, 0, 0], masked ? MASK : []));
    add('length-lie-short', B(f(0x82, Buffer.alloc(10)).subarray(0, 8)));
    add('wrong-mask-bit', frame(0x81, 'x', { masked: !masked }));
    add('frame-over-limit-profile0', f(0x82, Buffer.alloc(65)), 0);
    add('fragments-over-limit-profile0', B(f(0x02, 'a'), f(0x00, 'b'), f(0x00, 'c'), f(0x00, 'd'), f(0x80, 'e')));
    add('stream-fragmented-text', B(f(0x01, 'héllo '), f(0x80, 'wörld')), 4);
    add('stream-bad-utf8-late', B(f(0x01, 'good '), f(0x80, Buffer.from([0xff]))), 4);
    add('many-small-messages', B(...Array.from({ length: 20 }, (_, i) => f(0x81, `m${i}`))), 8);
    add('byte-split-seed-0', f(0x81, 'split everywhere'), 0, 0);
  }
  return seeds;
}

// ------------------------------------------------------------ heads
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';
const req = (...lines) => lines.join('\r\n') + '\r\n\r\n';
const baseReq = ['GET /chat HTTP/1.1', 'Host: server.example.com', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Key: ${KEY}`, 'Sec-WebSocket-Version: 13'];
const baseRes = ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${ACCEPT}`];

function headSeeds() {
  const s = {};
  const R = (name, text, flags = 0, split = 3) => (s[name] = B([flags, split], text));
  R('request-rfc-example', req(...baseReq, 'Origin: http://example.com', 'Sec-WebSocket-Protocol: chat, superchat'));
  R('request-deflate-offer', req(...baseReq, 'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, permessage-deflate'));
  R('request-with-frames-after', B(req(...baseReq), frame(0x81, 'early', { masked: true })));
  R('request-absolute-target', req('GET http://server.example.com/chat?x=1 HTTP/1.1', ...baseReq.slice(1)));
  R('request-http10', req('GET /chat HTTP/1.0', ...baseReq.slice(1)));
  R('request-no-host', req(baseReq[0], ...baseReq.slice(2)));
  R('request-two-hosts', req(...baseReq, 'Host: other'));
  R('request-bad-key', req(...baseReq.slice(0, 4), 'Sec-WebSocket-Key: c2hvcnQ=', 'Sec-WebSocket-Version: 13'));
  R('request-version-8', req(...baseReq.slice(0, 5), 'Sec-WebSocket-Version: 8'));
  R('request-post', req('POST /chat HTTP/1.1', ...baseReq.slice(1)));
  R('request-body', req(...baseReq, 'Content-Length: 5'));
  R('request-proto-names', req(...baseReq, 'Sec-WebSocket-Protocol: __proto__, constructor', '__proto__: x'));
  R('request-obs-fold', req(...baseReq, 'X-A: a', ' folded'));
  R('request-bare-lf', baseReq.join('\n') + '\n\n');
  R('request-space-before-colon', req(...baseReq, 'X-A : b'));
  R('request-many-headers', req(...baseReq, ...Array.from({ length: 12 }, (_, i) => `X-${i}: ${i}`)), 8);
  R('request-limit-64-bytes', req(...baseReq), 16);
  R('request-incomplete', baseReq.join('\r\n') + '\r\n');
  R('response-101', req(...baseRes), 1);
  R('response-101-protocol-deflate', req(...baseRes, 'Sec-WebSocket-Protocol: chat', 'Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10'), 1);
  R('response-101-wrong-accept', req(...baseRes.slice(0, 3), 'Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA='), 1);
  R('response-302', req('HTTP/1.1 302 Found', 'Location: ws://elsewhere/', '__proto__: y'), 1);
  R('response-101-unoffered-protocol', req(...baseRes, 'Sec-WebSocket-Protocol: other'), 1);
  R('response-101-unoffered-extension', req(...baseRes, 'Sec-WebSocket-Extensions: x-webkit-deflate-frame'), 1);
  R('response-bad-status', req('HTTP/1.1 1O1 Switching', ...baseRes.slice(1)), 1);
  R('response-with-frames-after', B(req(...baseRes), frame(0x81, 'hi')), 1);
  // Builder mode: host, path, protocols, origin, header name, header value (NUL-separated).
  const build = (...fields) => fields.join('\0');
  R('build-ok', build('127.0.0.1:8080', '/chat?room=1', 'chat,superchat', 'http://example.com', 'X-Token', 'abc'), 2);
  R('build-crlf-in-header', build('h', '/', '', 'o', 'X-A', 'a\r\nInjected: 1'), 2);
  R('build-crlf-in-protocol', build('h', '/', 'chat\r\nX: 1'), 2);
  R('build-space-in-host', build('h h', '/'), 2);
  R('build-fragment-path', build('h', '/a#b'), 2);
  R('build-reserved-header', build('h', '/', '', 'o', 'Sec-WebSocket-Key', 'x'), 2);
  R('build-duplicate-protocol', build('h', '/', 'a,a'), 2);
  return s;
}

// ------------------------------------------------------------ extensions
function extensionSeeds() {
  const s = {};
  const E = (name, value, server = 0, client = 0) => (s[name] = B([server, client], value));
  E('deflate-plain', 'permessage-deflate');
  E('deflate-client-bits-novalue', 'permessage-deflate; client_max_window_bits');
  E('deflate-full', 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=9', 0x03, 0x2f);
  E('deflate-two-offers', 'permessage-deflate; server_max_window_bits=8, permessage-deflate', 0x10, 0x44);
  E('deflate-quoted', 'permessage-deflate; client_max_window_bits="12"');
  E('deflate-repeated-param', 'permessage-deflate; server_no_context_takeover; server_no_context_takeover');
  E('deflate-bad-bits', 'permessage-deflate; server_max_window_bits=16, permessage-deflate; server_max_window_bits=010');
  E('deflate-unknown-param', 'permessage-deflate; foo=1');
  E('other-extensions', 'x-webkit-deflate-frame, foo; bar="baz", permessage-deflate');
  E('empty-elements', ' , ,permessage-deflate,, ');
  E('proto-names', '__proto__; constructor=prototype, permessage-deflate');
  E('bad-quoted-pair', 'foo; bar="a\\');
  E('bad-char', 'foo; bar=a b');
  E('only-commas', ',,,');
  E('long-token', 'x'.repeat(300) + '; ' + 'y'.repeat(300));
  return s;
}

// ------------------------------------------------------------ inflate
function deflate(plain, windowBits = 15) {
  let b = deflateRawSync(plain, { windowBits, finishFlush: constants.Z_SYNC_FLUSH });
  if (b.subarray(b.length - 4).equals(Buffer.from([0, 0, 0xff, 0xff]))) b = b.subarray(0, b.length - 4);
  return b;
}
function inflateSeeds() {
  const s = {};
  // byte 0: bits 0-2 window (9+n), bit 3 connection mode, bit 4 text, bit 5 no context takeover;
  // byte 1: bits 0-1 limit profile [1, 100, 4096, 65536], bits 2-3 parts - 1.
  const I = (name, b0, b1, body) => (s[name] = B([b0, b1], body));
  // RFC 7692 section 7.2.3.1: "Hello" compressed.
  const hello = Buffer.from([0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
  I('rfc-hello-codec', 0x06, 0x02, hello);
  I('rfc-hello-connection-text', 0x1e, 0x06, hello);
  // RFC 7692 section 7.2.3.3: an uncompressed (stored) block.
  I('rfc-stored-block', 0x06, 0x02, Buffer.from([0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00]));
  // Section 7.2.3.4: a block with BFINAL set.
  I('rfc-bfinal', 0x06, 0x02, Buffer.from([0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]));
  I('empty-message', 0x0e, 0x02, Buffer.from([0x00]));
  I('bomb-1mb-zeros-codec', 0x06, 0x03, deflate(Buffer.alloc(1 << 20)));
  I('bomb-1mb-zeros-connection', 0x0e, 0x0f, deflate(Buffer.alloc(1 << 20)));
  I('over-limit-100', 0x06, 0x01, deflate(Buffer.alloc(101, 0x61)));
  I('exactly-limit-100', 0x06, 0x01, deflate(Buffer.alloc(100, 0x61)));
  I('bad-utf8-text', 0x1e, 0x02, deflate(Buffer.from([0x6f, 0x6b, 0xed, 0xa0, 0x80])));
  I('window-9', 0x00, 0x02, deflate(Buffer.from('abcabcabc'.repeat(50)), 9));
  I('garbage', 0x06, 0x02, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00, 0x01]));
  I('garbage-connection', 0x0e, 0x0a, Buffer.from([0x07, 0xff, 0x12]));
  I('random-text-3-parts', 0x1e, 0x0e, deflate(Buffer.from('The quick brown fox jumps over the lazy dog. '.repeat(20))));
  I('no-context-takeover', 0x26, 0x02, hello);
  return s;
}

const all = { 'frame-parser': frameSeeds(), 'http-head': headSeeds(), 'extension-negotiation': extensionSeeds(), inflate: inflateSeeds() };
for (const [target, seeds] of Object.entries(all)) {
  const dir = join(root, target);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const [name, bytes] of Object.entries(seeds)) writeFileSync(join(dir, name), bytes);
  console.log(`${target}: ${Object.keys(seeds).length} seeds`);
}
