/**
 * The README's table of connection errors, row by row: each failure of
 * connect() names the URL and says what to try, and keeps the underlying
 * error as its `cause` where there is one. Real servers on 127.0.0.1 (plain,
 * TLS with a self-signed certificate, a plain HTTP page).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect, createServer, HandshakeError, InvalidArgumentError, TransportError, type WebSocketServer } from '../../src/index.js';
import { testCert } from '../helpers/certs.js';

const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

async function wsServer(tls: boolean, protocols?: string[]): Promise<number> {
  const cert = testCert();
  const handler = { onMessage: () => {} };
  const server: WebSocketServer = createServer({
    port: 0,
    ...(tls ? { tls: { key: cert.key, cert: cert.cert } } : {}),
    ...(protocols ? { protocols: Object.fromEntries(protocols.map((p) => [p, handler])) } : { handler }),
    onError: () => {},
  });
  const { port } = await server.listen(0, '127.0.0.1');
  closers.push(() => server.close());
  return port;
}

async function httpPage(status: number, body: string, headers: Record<string, string> = {}): Promise<number> {
  const http: HttpServer = createHttpServer((_req, res) => {
    res.writeHead(status, { 'Content-Type': 'text/html', ...headers });
    res.end(body);
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  closers.push(async () => {
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  });
  return (http.address() as AddressInfo).port;
}

async function failure(url: string, options = {}): Promise<Error & { code?: string; cause?: unknown }> {
  try {
    const s = await connect(url, { handshakeTimeoutMs: 5000, ...options });
    s.terminate();
  } catch (err) {
    return err as Error;
  }
  assert.fail(`connect(${url}) succeeded`);
}

describe('connection errors say what to try (README, "Errors")', () => {
  it('a port out of range: bad port, with the valid range', async () => {
    const err = await failure('ws://127.0.0.1:99999/');
    assert.ok(err instanceof InvalidArgumentError);
    assert.equal(err.message, 'bad port 99999 in ws://127.0.0.1:99999/: a port is 0 to 65535');
  });

  it('not a URL: the shape of one', async () => {
    const err = await failure('localhost:8080');
    assert.ok(err instanceof InvalidArgumentError);
    assert.match(err.message, /looks like ws:\/\/host:port\/path/);
  });

  it('nothing listening: the URL and "is the server running"', async () => {
    const err = await failure('ws://127.0.0.1:1/');
    assert.ok(err instanceof TransportError);
    assert.match(err.message, /^cannot connect to ws:\/\/127\.0\.0\.1:1\/: connect ECONNREFUSED .*: nothing listens there/);
    assert.equal((err.cause as NodeJS.ErrnoException).code, 'ECONNREFUSED');
  });

  it('a self-signed certificate: pass its CA, or insecure for a test server; both then work', async () => {
    const port = await wsServer(true);
    const err = await failure(`wss://127.0.0.1:${port}/`);
    assert.ok(err instanceof TransportError);
    assert.match(err.message, /the server's certificate is not trusted; pass its CA as tls: \{ ca \}, or insecure: true for a test server$/);
    assert.match(String((err.cause as NodeJS.ErrnoException).code), /SELF_SIGNED/);
    for (const options of [{ tls: { ca: testCert().ca } }, { insecure: true }]) {
      const s = await connect(`wss://127.0.0.1:${port}/`, options);
      s.terminate();
    }
  });

  it('wss:// to a server without TLS: use ws://', async () => {
    const port = await wsServer(false);
    const err = await failure(`wss://127.0.0.1:${port}/`);
    assert.ok(err instanceof TransportError);
    assert.match(err.message, /the server does not speak TLS on this port: use ws:\/\/$/);
    assert.ok(err.cause instanceof Error);
  });

  it('ws:// to a TLS server: use wss://', async () => {
    const port = await wsServer(true);
    const err = await failure(`ws://127.0.0.1:${port}/`);
    assert.match(err.message, /use wss:\/\//);
  });

  it('a plain HTTP page: not a WebSocket endpoint, with the status and the start of the body', async () => {
    const port = await httpPage(200, '<!doctype html><title>Shop</title>');
    const err = await failure(`ws://127.0.0.1:${port}/shop`);
    assert.ok(err instanceof HandshakeError);
    assert.equal(err.status, 200);
    assert.equal(err.message, `ws://127.0.0.1:${port}/shop is not a WebSocket endpoint: server answered 200 OK to the upgrade request (the body begins: "<!doctype html><title>Shop</title>")`);
  });

  it("a refused subprotocol: the server's reason", async () => {
    const port = await wsServer(false, ['chat.v2']);
    const err = await failure(`ws://127.0.0.1:${port}/`, { protocol: 'chat.v1' });
    assert.ok(err instanceof HandshakeError);
    assert.equal(err.status, 400);
    assert.equal(err.message, `ws://127.0.0.1:${port}/: server answered 400 Bad Request (the body begins: "none of the offered subprotocols is supported")`);
  });

  it('a redirect: where to, and that connect() does not follow it', async () => {
    const port = await httpPage(301, '', { Location: 'wss://example.test/ws' });
    const err = await failure(`ws://127.0.0.1:${port}/old`);
    assert.ok(err instanceof HandshakeError);
    assert.equal(err.message, `ws://127.0.0.1:${port}/old: server answered 301 Moved Permanently, redirecting to wss://example.test/ws (connect() follows redirects with followRedirects: true)`);
  });
});
