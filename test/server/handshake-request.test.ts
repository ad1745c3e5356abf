import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HttpHeadParser } from '../../src/core/http-head.js';
import { validateUpgradeRequest } from '../../src/core/handshake.js';
import { HandshakeRequest } from '../../src/server/handshake-request.js';
import { InvalidStateError } from '../../src/core/errors.js';
import { createServer as createTcpServer, connect as tcpConnect, type Socket } from 'node:net';
import { once } from 'node:events';
import { Duplex } from 'node:stream';

function parse(text: string) {
  const r = new HttpHeadParser('request').push(Buffer.from(text, 'latin1'));
  assert.ok(r);
  return r.head;
}

const HEAD =
  'GET /chat/room?x=1&y=%C3%A9&x=2 HTTP/1.1\r\n' +
  'Host: example.test:8080\r\n' +
  'Upgrade: websocket\r\n' +
  'Connection: keep-alive, Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
  'Sec-WebSocket-Version: 13\r\n' +
  'Origin: https://app.example.test\r\n' +
  'Sec-WebSocket-Protocol: chat.v2,  chat.v1\r\n' +
  'Sec-WebSocket-Protocol: mqtt\r\n' +
  'X-Trailing-Space:   value with spaces \t \r\n' +
  '__proto__: not a prototype\r\n' +
  'User-Agent: caf\xe9/1.0\r\n' +
  '\r\n';

describe('HandshakeRequest', () => {
  it('answers the same before and after compact(): url, path, query, host, origin, protocols, headers', () => {
    const head = parse(HEAD);
    const info = validateUpgradeRequest(head);
    const req = new HandshakeRequest(head, info, '10.0.0.7', true);
    const snapshot = () => ({
      url: req.url,
      path: req.path,
      query: [...req.query.entries()],
      host: req.host,
      origin: req.origin,
      protocols: [...req.protocols],
      headers: [...req.headers.entries()].map(([k, v]) => [k, [...v]]),
      remoteAddress: req.remoteAddress,
      secure: req.secure,
    });
    const before = snapshot();
    assert.equal(before.url, '/chat/room?x=1&y=%C3%A9&x=2');
    assert.equal(before.path, '/chat/room');
    assert.deepEqual(before.query, [['x', '1'], ['y', 'é'], ['x', '2']]);
    assert.equal(before.host, 'example.test:8080');
    assert.equal(before.origin, 'https://app.example.test');
    assert.deepEqual(before.protocols, ['chat.v2', 'chat.v1', 'mqtt']);
    assert.deepEqual(req.headers.get('sec-websocket-protocol'), ['chat.v2,  chat.v1', 'mqtt']);
    assert.deepEqual(req.headers.get('x-trailing-space'), ['value with spaces']);
    assert.deepEqual(req.headers.get('__proto__'), ['not a prototype']);
    assert.deepEqual(req.headers.get('user-agent'), ['caf\xe9/1.0']);
    req.compact();
    assert.deepEqual(snapshot(), before);
    // Parsed again after compact(): every call after that sees the same values.
    req.compact();
    assert.deepEqual(snapshot(), before);
  });

  it('release() keeps url, path, query, host, origin, protocols, remoteAddress and secure; headers then fail, naming why', () => {
    for (const compactFirst of [false, true]) {
      const head = parse(HEAD);
      const req = new HandshakeRequest(head, validateUpgradeRequest(head), '10.0.0.7', true);
      const kept = () => ({ url: req.url, path: req.path, query: [...req.query.entries()], host: req.host, origin: req.origin, protocols: [...req.protocols], remoteAddress: req.remoteAddress, secure: req.secure });
      const before = kept();
      if (compactFirst) req.compact();
      req.release();
      assert.deepEqual(kept(), before);
      assert.throws(
        () => req.headers,
        (e: unknown) => e instanceof InvalidStateError && e.code === 'ERR_INVALID_STATE' && /request headers were released after onOpen \(retainRequestHeaders: false\)/.test(e.message),
      );
      // compact() and a second release() change nothing.
      req.compact();
      req.release();
      assert.deepEqual(kept(), before);
      assert.throws(() => req.headers, InvalidStateError);
    }
  });

  it('release() of a request without origin or subprotocols', () => {
    const head = parse('GET /a?b=c HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    const req = new HandshakeRequest(head, validateUpgradeRequest(head), undefined, false);
    req.release();
    assert.equal(req.url, '/a?b=c');
    assert.equal(req.query.get('b'), 'c');
    assert.equal(req.origin, undefined);
    assert.deepEqual(req.protocols, []);
  });

  it('a request without query, origin or subprotocols', () => {
    const head = parse('GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    const req = new HandshakeRequest(head, validateUpgradeRequest(head), undefined, false);
    req.compact();
    assert.equal(req.path, '/');
    assert.equal([...req.query].length, 0);
    assert.equal(req.origin, undefined);
    assert.deepEqual(req.protocols, []);
    assert.equal(req.remoteAddress, undefined);
    assert.equal(req.secure, false);
    assert.equal(req.headers.size, 5);
  });

  it('asks the stream for the peer address only when remoteAddress is read, and once asked keeps it past the close', async () => {
    let asked = 0;
    const stream = new Duplex({ read() {}, write(_c, _e, cb) { cb(); } });
    Object.defineProperty(stream, 'remoteAddress', { get: () => (asked++, '192.0.2.9') });
    const head = parse(HEAD);
    const req = new HandshakeRequest(head, validateUpgradeRequest(head), stream, false);
    req.compact();
    assert.equal(asked, 0, 'no getpeername() for a request whose address nobody reads');
    assert.equal(req.remoteAddress, '192.0.2.9');
    assert.equal(asked, 1);

    // Over a real TCP socket: read while open, it is still known once the socket has closed; a
    // request whose address was never read while open answers undefined after the close, as node:net does.
    const server = createTcpServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    const clients: Socket[] = [];
    try {
      const accepted: Socket[] = [];
      server.on('connection', (s) => accepted.push(s));
      for (let i = 0; i < 2; i++) {
        const c = tcpConnect(port, '127.0.0.1');
        clients.push(c);
        await once(c, 'connect');
      }
      while (accepted.length < 2) await new Promise((r) => setTimeout(r, 5));
      const readEarly = new HandshakeRequest(head, validateUpgradeRequest(head), accepted[0], false);
      const neverRead = new HandshakeRequest(head, validateUpgradeRequest(head), accepted[1], false);
      assert.equal(readEarly.remoteAddress, '127.0.0.1');
      for (const s of accepted) {
        s.destroy();
        await once(s, 'close');
      }
      assert.equal(readEarly.remoteAddress, '127.0.0.1');
      assert.equal(neverRead.remoteAddress, undefined);
    } finally {
      for (const c of clients) c.destroy();
      server.close();
    }
  });
});
