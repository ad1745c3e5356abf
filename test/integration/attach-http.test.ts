/**
 * Attaching to an existing node:http / node:https server through its
 * 'upgrade' event (createServer({ server })): the HTTP server keeps answering
 * plain requests itself, WebSocket upgrades work on the same port, and
 * closing sockeye's server closes its sessions but leaves the HTTP server
 * listening.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, get as httpGet, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, get as httpsGet } from 'node:https';
import type { AddressInfo } from 'node:net';
import { connect, createServer, type CloseInfo, type ServerSession } from '../../src/index.js';
import { testCert } from '../helpers/certs.js';
import { withTimeout } from '../helpers/ws-pair.js';

function fetchText(secure: boolean, port: number, path: string, ca?: Buffer): Promise<{ status: number; body: string }> {
  return withTimeout(
    new Promise((resolve, reject) => {
      const get = secure ? httpsGet : httpGet;
      const req = get({ host: '127.0.0.1', port, path, ca, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
    }),
    5000,
    `GET ${path}`,
  );
}

for (const secure of [false, true]) {
  const scheme = secure ? 'wss' : 'ws';
  describe(`attached to node:${secure ? 'https' : 'http'}`, () => {
    it('plain requests stay with the HTTP server, upgrades go to sockeye, and sockeye.close() leaves the HTTP server up', { timeout: 30_000 }, async () => {
      const cert = secure ? testCert() : null;
      const onRequest = (req: { url?: string }, res: { writeHead(s: number, h: Record<string, string>): void; end(b: string): void }) => {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.end(`http says hi to ${req.url}`);
      };
      const http: HttpServer = cert ? createHttpsServer({ key: cert.key, cert: cert.cert }, onRequest) : createHttpServer(onRequest);
      const serverCloses: CloseInfo[] = [];
      const sessions: ServerSession[] = [];
      const ws = createServer({
        server: http,
        keepalive: null,
        onError: () => {},
        handler: {
          onOpen(s) {
            sessions.push(s);
          },
          onMessage(s, m) {
            s.send(`ws:${m.text}`);
          },
          onClose(_s, info) {
            serverCloses.push(info);
          },
        },
      });
      await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', () => resolve()));
      const port = (http.address() as AddressInfo).port;
      const tls = cert ? { tls: { ca: cert.ca } } : {};
      try {
        assert.equal(ws.port, port, 'the attached server reports the HTTP server\'s port');

        const plain = await fetchText(secure, port, '/index.html', cert?.ca);
        assert.deepEqual(plain, { status: 200, body: 'http says hi to /index.html' });

        const a = await connect(`${scheme}://127.0.0.1:${port}/a`, { keepalive: null, ...tls });
        const b = await connect(`${scheme}://127.0.0.1:${port}/b`, { keepalive: null, ...tls });
        a.send('one');
        b.send('two');
        assert.equal((await withTimeout(a.messages().next(), 5000, 'echo a')).value?.text, 'ws:one');
        assert.equal((await withTimeout(b.messages().next(), 5000, 'echo b')).value?.text, 'ws:two');
        assert.equal(sessions.length, 2);
        assert.ok(sessions.every((s) => s.request.secure === secure));
        assert.deepEqual(sessions.map((s) => s.request.path).sort(), ['/a', '/b']);

        // A plain request while WebSocket sessions are open still goes to the HTTP handler.
        assert.equal((await fetchText(secure, port, '/during', cert?.ca)).body, 'http says hi to /during');

        await withTimeout(ws.close(), 10_000, 'sockeye close');
        // Both sessions were closed with 1001 (RFC 6455 section 7.4.1: going away).
        const [ia, ib] = await Promise.all([withTimeout(a.closed, 5000, 'a closed'), withTimeout(b.closed, 5000, 'b closed')]);
        for (const info of [ia, ib]) {
          assert.equal(info.code, 1001);
          assert.equal(info.wasClean, true);
        }
        assert.equal(serverCloses.length, 2);
        assert.equal(ws.clients.size, 0);

        // The HTTP server is still listening and answering.
        assert.equal(http.listening, true);
        assert.equal((await fetchText(secure, port, '/after', cert?.ca)).body, 'http says hi to /after');
        // And sockeye no longer takes upgrades from it.
        assert.equal(http.listenerCount('upgrade'), 0);
      } finally {
        await ws.close();
        http.closeAllConnections?.();
        await new Promise<void>((resolve) => http.close(() => resolve()));
      }
    });
  });
}

describe('attached: handleUpgrade() for custom routing', () => {
  it('an application upgrade listener can hand some requests to sockeye and refuse others itself', async () => {
    const http = createHttpServer((_req, res) => res.end('plain'));
    // No `server` option: the application routes by itself.
    const ws = createServer({
      keepalive: null,
      handler: {
        onMessage(s, m) {
          s.send(m.text.toUpperCase());
        },
      },
    });
    http.on('upgrade', (req, socket, head) => {
      if (req.url === '/ws') ws.handleUpgrade(req, socket, head);
      else socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', () => resolve()));
    const port = (http.address() as AddressInfo).port;
    try {
      const c = await connect(`ws://127.0.0.1:${port}/ws`, { keepalive: null });
      c.send('shout');
      assert.equal((await withTimeout(c.messages().next(), 5000, 'echo')).value?.text, 'SHOUT');
      await assert.rejects(connect(`ws://127.0.0.1:${port}/elsewhere`, { keepalive: null }), (err: unknown) => (err as { status?: number }).status === 404);
      c.close();
      await withTimeout(c.closed, 5000, 'close');
    } finally {
      await ws.close();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    }
  });
});
