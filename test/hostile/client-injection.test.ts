/**
 * Hostile input reaching the CLIENT through the application: header names
 * and values, subprotocols and origins with CR, LF, NUL or other characters
 * that would let whoever controls them inject header lines or split the
 * request (HTTP request smuggling, CWE-113). connect() validates everything
 * it will write before it dials (src/client/connect.ts builds the request
 * first), so a bad argument rejects with InvalidArgumentError and NOTHING is
 * sent: the listening socket below never even accepts a connection.
 *
 * Characters above U+00FF are refused too: the head is written as latin1,
 * where '\u010d\u010a' would become the bytes CR LF.
 *
 * A URL is different: the WHATWG URL parser removes tabs and newlines and
 * percent-encodes the rest, so a URL cannot inject; the last case checks
 * that what reaches the server is a single, well-formed request line.
 *
 * These are client-side cases: there is no server under attack, so there is
 * no canary; the server here only counts connections.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { connect, InvalidArgumentError, type ConnectOptions } from '../../src/index.js';
import { delay, switchingProtocols, waitUntil } from './harness.js';

describe('hostile: header injection through connect() options', () => {
  let server: Server;
  let port: number;
  let accepted = 0;
  const heads: string[] = [];
  const sockets = new Set<Socket>();

  before(async () => {
    // A minimal server: counts connections, records each request head and answers 101 (for the URL case).
    server = createNetServer((socket) => {
      accepted++;
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {});
      let buf = '';
      socket.on('data', (d: Buffer) => {
        buf += d.toString('latin1');
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = buf.slice(0, end);
        heads.push(head);
        const key = /\r\nSec-WebSocket-Key: ([^\r]+)/i.exec(head)?.[1] ?? '';
        socket.write(switchingProtocols(key));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const bad: Array<[string, ConnectOptions, string]> = [
    ['a header value with CRLF and an injected header', { headers: { 'X-Token': 'abc\r\nX-Injected: yes' } }, 'ERR_BAD_HEADER'],
    ['a header value with a bare LF', { headers: { 'X-Token': 'abc\nX-Injected: yes' } }, 'ERR_BAD_HEADER'],
    ['a header value with a bare CR', { headers: { 'X-Token': 'abc\rdef' } }, 'ERR_BAD_HEADER'],
    ['a header value with NUL', { headers: { 'X-Token': 'abc\0def' } }, 'ERR_BAD_HEADER'],
    ['a header value with DEL and other controls', { headers: { 'X-Token': 'a\x7fb\x01c' } }, 'ERR_BAD_HEADER'],
    ['a header value with U+010D U+010A (CR LF once written as latin1)', { headers: { 'X-Token': 'abc\u010d\u010aX-Injected: yes' } }, 'ERR_BAD_HEADER'],
    ['a header value that ends a head early (CRLF CRLF, then a smuggled request)', { headers: { 'X-Token': 'a\r\n\r\nGET /admin HTTP/1.1' } }, 'ERR_BAD_HEADER'],
    ['a header name with CRLF', { headers: { 'X-A\r\nX-Injected': 'v' } }, 'ERR_BAD_HEADER'],
    ['a header name with a space', { headers: { 'X Token': 'v' } }, 'ERR_BAD_HEADER'],
    ['a header name with a colon', { headers: { 'X-Token:': 'v' } }, 'ERR_BAD_HEADER'],
    ['an empty header name', { headers: { '': 'v' } }, 'ERR_BAD_HEADER'],
    ['headers as pairs, with CRLF in a value', { headers: [['X-A', 'ok'], ['X-B', 'v\r\nX-Injected: 1']] as Array<[string, string]> }, 'ERR_BAD_HEADER'],
    ['a Host header overriding the handshake', { headers: { Host: 'evil.example' } }, 'ERR_BAD_HEADER'],
    ['a Sec-WebSocket-Key header overriding the handshake', { headers: { 'Sec-WebSocket-Key': 'AAAAAAAAAAAAAAAAAAAAAA==' } }, 'ERR_BAD_HEADER'],
    ['a Content-Length header (a body would desynchronise the frames)', { headers: { 'Content-Length': '5' } }, 'ERR_BAD_HEADER'],
    ['a Transfer-Encoding header', { headers: { 'Transfer-Encoding': 'chunked' } }, 'ERR_BAD_HEADER'],
    ['a subprotocol with CRLF', { protocol: 'chat\r\nX-Injected: yes' }, 'ERR_BAD_PROTOCOL'],
    ['a subprotocol with a space', { protocol: 'chat v2' }, 'ERR_BAD_PROTOCOL'],
    ['a subprotocol with a comma (two protocols in one)', { protocol: 'chat,admin' }, 'ERR_BAD_PROTOCOL'],
    ['an empty subprotocol', { protocol: '' }, 'ERR_BAD_PROTOCOL'],
    ['a subprotocol with U+010D U+010A', { protocol: 'chat\u010d\u010a' }, 'ERR_BAD_PROTOCOL'],
    ['a duplicate subprotocol', { protocol: ['chat', 'chat'] }, 'ERR_BAD_PROTOCOL'],
    ['an origin with CRLF', { origin: 'https://a.example\r\nX-Injected: yes' }, 'ERR_BAD_ORIGIN'],
    ['an origin with NUL', { origin: 'https://a.example\0' }, 'ERR_BAD_ORIGIN'],
  ];

  for (const [what, options, code] of bad) {
    it(`${what}: connect() rejects with ${code}, nothing is sent`, async () => {
      const before = accepted;
      await assert.rejects(connect(`ws://127.0.0.1:${port}/`, { keepalive: null, ...options }), (err: unknown) => {
        assert.ok(err instanceof InvalidArgumentError, `got ${String(err)}`);
        assert.equal(err.code, code);
        return true;
      });
      // Give a connection that was (wrongly) dialled time to be accepted.
      await delay(50);
      assert.equal(accepted, before, 'a TCP connection was made');
    });
  }

  it('after all of them: the server accepted 0 connections', () => {
    assert.equal(accepted, 0);
    assert.equal(heads.length, 0);
  });

  it('a URL with CR, LF and U+010D U+010A in its path cannot inject: one request line, percent-encoded', async () => {
    const c = await connect(`ws://127.0.0.1:${port}/a\r\nX-Injected: yes/\u010d\u010aZ`, { keepalive: null });
    try {
      await waitUntil(() => heads.length === 1, 5000, 'the request head');
      const lines = heads[0].split('\r\n');
      assert.match(lines[0], /^GET \/[!-~]+ HTTP\/1\.1$/);
      assert.ok(!lines.some((l) => /^X-Injected/i.test(l)), 'an injected header line');
      assert.ok(!heads[0].includes('\u010d') && !heads[0].includes('\n\n'));
    } finally {
      c.terminate();
    }
  });
});
