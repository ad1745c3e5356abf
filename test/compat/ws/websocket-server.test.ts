/**
 * sockeye/ws's WebSocketServer against ws 8's documented behaviour
 * (doc/ws.md, "Class: WebSocketServer"): the three modes, the handshake's
 * refusals with ws's statuses and texts, verifyClient in both forms,
 * handleProtocols read at every upgrade, the 'headers' event, client
 * tracking, close(), and a subclass of WebSocket. Raw clients check the
 * bytes of each answer.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer, type WebSocketServerOptions } from '../../../src/compat/ws/index.js';
import { RawClient, clientFrame, upgradeRequest, withTimeout, waitUntil } from '../../helpers/ws-pair.js';

const servers: Array<WebSocketServer | HttpServer> = [];
after(async () => {
  for (const s of servers) {
    if (s instanceof WebSocketServer) {
      for (const c of s.clients ?? []) c.terminate();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    } else {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  }
});

async function listening(options: Omit<WebSocketServerOptions, 'port'> = {}): Promise<{ wss: WebSocketServer; port: number }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', ...options });
  servers.push(wss);
  await withTimeout(once(wss, 'listening'), 5000, 'listening');
  return { wss, port: (wss.address() as AddressInfo).port };
}

async function refused(port: number, request: string): Promise<{ status: number; headers: Map<string, string[]>; body: string }> {
  const c = await RawClient.connect(port);
  c.write(request);
  return c.waitRejection(5000);
}

function opened(url: string, protocols?: string | string[], options = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, protocols, options);
  return withTimeout(
    new Promise<WebSocket>((resolve, reject) => {
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    }),
    5000,
    'open',
  );
}

describe('constructor', () => {
  it('takes exactly one of port, server and noServer', () => {
    const message = 'One and only one of the "port", "server", or "noServer" options must be specified';
    assert.throws(() => new WebSocketServer({}), { name: 'TypeError', message });
    assert.throws(() => new WebSocketServer({ port: 0, noServer: true }), { name: 'TypeError', message });
    assert.throws(() => new WebSocketServer({ server: createHttpServer(), noServer: true }), { name: 'TypeError', message });
  });

  it('port: listens, calls the callback and emits listening; a plain request gets 426', async () => {
    let called = false;
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' }, () => (called = true));
    servers.push(wss);
    await withTimeout(once(wss, 'listening'), 5000, 'listening');
    assert.equal(called, true);
    const { port, address } = wss.address() as AddressInfo;
    assert.equal(address, '127.0.0.1');
    const res = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(res.status, 426);
    assert.equal(await res.text(), 'Upgrade Required');
  });

  it('noServer: address() throws; the application calls handleUpgrade', async () => {
    const wss = new WebSocketServer({ noServer: true });
    assert.throws(() => wss.address(), { message: 'The server is operating in "noServer" mode' });
    const http = createHttpServer();
    servers.push(http, wss);
    http.on('upgrade', (req, socket, head) => {
      if (req.url === '/ws') wss.handleUpgrade(req, socket, head, (ws, r) => wss.emit('connection', ws, r));
      else socket.destroy();
    });
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    const port = (http.address() as AddressInfo).port;
    const got = new Promise<string>((resolve) => wss.on('connection', (ws: WebSocket) => ws.on('message', (d: Buffer) => resolve(d.toString()))));
    const c = await opened(`ws://127.0.0.1:${port}/ws`);
    c.send('via handleUpgrade');
    assert.equal(await withTimeout(got, 5000, 'message'), 'via handleUpgrade');
    c.terminate();
  });

  it('server: attaches to an HTTP server and relays its listening and error events', async () => {
    const http = createHttpServer();
    const wss = new WebSocketServer({ server: http });
    servers.push(http, wss);
    const listened = once(wss, 'listening');
    http.listen(0, '127.0.0.1');
    await withTimeout(listened, 5000, 'listening relayed');
    assert.equal((wss.address() as AddressInfo).port, (http.address() as AddressInfo).port);
    const errored = once(wss, 'error');
    http.emit('error', new Error('boom'));
    const [err] = await errored;
    assert.equal((err as Error).message, 'boom');
  });
});

describe('handshake refusals, as ws answers them', () => {
  it('a method other than GET is 405', async () => {
    const { port } = await listening();
    const r = await refused(port, upgradeRequest({ method: 'POST' }));
    assert.equal(r.status, 405);
    assert.equal(r.body, 'Invalid HTTP method');
  });

  it('a missing or bad key is 400 with ws text', async () => {
    const { port } = await listening();
    const r = await refused(port, upgradeRequest({ headers: { 'Sec-WebSocket-Key': 'short' } }));
    assert.equal(r.status, 400);
    assert.equal(r.body, 'Missing or invalid Sec-WebSocket-Key header');
    assert.equal(r.headers.get('connection')?.[0], 'close');
  });

  it('an unsupported version is 400 and names the versions spoken', async () => {
    const { port } = await listening();
    const r = await refused(port, upgradeRequest({ headers: { 'Sec-WebSocket-Version': '12' } }));
    assert.equal(r.status, 400);
    assert.equal(r.body, 'Missing or invalid Sec-WebSocket-Version header');
    assert.equal(r.headers.get('sec-websocket-version')?.[0], '13, 8');
  });

  it('a duplicated or malformed subprotocol list is 400', async () => {
    const { port } = await listening();
    for (const value of ['a, a', 'a b', 'a,,b']) {
      const r = await refused(port, upgradeRequest({ headers: { 'Sec-WebSocket-Protocol': value } }));
      assert.equal(r.status, 400, value);
      assert.equal(r.body, 'Invalid Sec-WebSocket-Protocol header', value);
    }
  });

  it('a malformed extension offer is 400 when permessage-deflate is on', async () => {
    const { port } = await listening({ perMessageDeflate: true });
    const r = await refused(port, upgradeRequest({ headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate; =x' } }));
    assert.equal(r.status, 400);
    assert.equal(r.body, 'Invalid or unacceptable Sec-WebSocket-Extensions header');
  });

  it('stricter than ws: a request without Host is refused (RFC 6455 section 4.2.1)', async () => {
    const { port } = await listening();
    const r = await refused(port, upgradeRequest({ headers: { Host: null } }));
    assert.equal(r.status, 400);
    assert.match(r.body, /Host/);
  });

  it('path: another path is 400; shouldHandle can be overridden', async () => {
    const { wss, port } = await listening({ path: '/chat' });
    assert.equal((await refused(port, upgradeRequest({ path: '/other' }))).status, 400);
    const ok = await opened(`ws://127.0.0.1:${port}/chat?room=1`);
    ok.terminate();
    wss.shouldHandle = (req: IncomingMessage) => req.url === '/custom';
    assert.equal((await refused(port, upgradeRequest({ path: '/chat' }))).status, 400);
    const custom = await opened(`ws://127.0.0.1:${port}/custom`);
    custom.terminate();
  });

  it('wsClientError: the listener gets the error, the socket and the request, and answers itself', async () => {
    const { wss, port } = await listening();
    wss.on('wsClientError', (err: Error, socket: import('node:stream').Duplex, req: IncomingMessage) => {
      socket.end(`HTTP/1.1 418 I'm a Teapot\r\nConnection: close\r\nContent-Length: ${err.message.length + req.url!.length}\r\n\r\n${err.message}${req.url}`);
    });
    const r = await refused(port, upgradeRequest({ path: '/x', headers: { 'Sec-WebSocket-Key': 'bad' } }));
    assert.equal(r.status, 418);
    assert.equal(r.body, 'Missing or invalid Sec-WebSocket-Key header/x');
  });
});

describe('verifyClient', () => {
  it('sync form: false is 401; the info has origin, secure and req', async () => {
    const seen: Array<{ origin: string | undefined; secure: boolean; url: string | undefined }> = [];
    const { port } = await listening({
      verifyClient: (info: { origin: string | undefined; secure: boolean; req: IncomingMessage }) => {
        seen.push({ origin: info.origin, secure: info.secure, url: info.req.url });
        return info.req.url !== '/deny';
      },
    });
    const r = await refused(port, upgradeRequest({ path: '/deny', headers: { Origin: 'https://a.example' } }));
    assert.equal(r.status, 401);
    const ok = await opened(`ws://127.0.0.1:${port}/allow`, undefined, { origin: 'https://b.example' });
    ok.terminate();
    assert.deepEqual(seen, [
      { origin: 'https://a.example', secure: false, url: '/deny' },
      { origin: 'https://b.example', secure: false, url: '/allow' },
    ]);
  });

  it('callback form: the status, reason and headers of a refusal; an acceptance after a delay', async () => {
    const { port } = await listening({
      verifyClient: (info: { req: IncomingMessage }, cb: (ok: boolean, code?: number, name?: string, headers?: Record<string, string>) => void) => {
        setTimeout(() => (info.req.url === '/no' ? cb(false, 403, 'Go away', { 'Retry-After': '120' }) : cb(true)), 20);
      },
    });
    const r = await refused(port, upgradeRequest({ path: '/no' }));
    assert.equal(r.status, 403);
    assert.equal(r.body, 'Go away');
    assert.equal(r.headers.get('retry-after')?.[0], '120');
    const ok = await opened(`ws://127.0.0.1:${port}/yes`);
    assert.equal(ok.readyState, WebSocket.OPEN);
    ok.terminate();
  });
});

describe('subprotocols and extensions', () => {
  it('the first offered protocol by default', async () => {
    const { wss, port } = await listening();
    const server = once(wss, 'connection');
    const c = await opened(`ws://127.0.0.1:${port}/`, ['one', 'two']);
    const [s] = (await server) as [WebSocket];
    assert.equal(c.protocol, 'one');
    assert.equal(s.protocol, 'one');
    c.terminate();
  });

  it('handleProtocols set after construction is used, with a Set and the request; false answers none', async () => {
    const { wss, port } = await listening();
    const calls: Array<[string[], string | undefined]> = [];
    wss.options.handleProtocols = (protocols: Set<string>, req: IncomingMessage) => {
      calls.push([[...protocols], req.url]);
      return protocols.has('two') ? 'two' : false;
    };
    const c = await opened(`ws://127.0.0.1:${port}/p`, ['one', 'two']);
    assert.equal(c.protocol, 'two');
    c.terminate();
    // A client that offered protocols and got none fails the handshake, as ws's client does.
    const failed = new WebSocket(`ws://127.0.0.1:${port}/q`, ['three']);
    const [err] = (await withTimeout(once(failed, 'error'), 5000, 'error')) as [Error];
    assert.equal(err.message, 'Server sent no subprotocol');
    assert.deepEqual(calls, [
      [['one', 'two'], '/p'],
      [['three'], '/q'],
    ]);
  });

  it('perMessageDeflate with ws options is negotiated and carries messages both ways', async () => {
    const { wss, port } = await listening({ perMessageDeflate: { serverNoContextTakeover: true, threshold: 0, zlibDeflateOptions: { level: 1 } } });
    let response = '';
    const client = new WebSocket(`ws://127.0.0.1:${port}/`);
    client.on('upgrade', (res: IncomingMessage) => (response = String(res.headers['sec-websocket-extensions'])));
    wss.on('connection', (ws: WebSocket) => ws.on('message', (d: Buffer, binary: boolean) => ws.send(d, { binary })));
    await withTimeout(once(client, 'open'), 5000, 'open');
    assert.match(response, /^permessage-deflate/);
    assert.match(response, /server_no_context_takeover/);
    assert.equal(client.extensions, 'permessage-deflate');
    const text = 'compressible '.repeat(5000);
    client.send(text);
    const [echo] = (await withTimeout(once(client, 'message'), 5000, 'echo')) as [Buffer];
    assert.equal(echo.toString(), text);
    client.terminate();
  });

  it('without perMessageDeflate an offer is declined', async () => {
    const { port } = await listening();
    const c = await opened(`ws://127.0.0.1:${port}/`, undefined, { perMessageDeflate: true });
    assert.equal(c.extensions, '');
    c.terminate();
  });
});

describe("the 'headers' event", () => {
  it('lines pushed into the array go out in the 101 answer', async () => {
    const { wss, port } = await listening();
    wss.on('headers', (headers: string[], req: IncomingMessage) => headers.push(`Set-Cookie: seen=${req.url!.slice(1)}`));
    const c = await RawClient.open(port, { path: '/abc' });
    assert.deepEqual(c.head!.headers.get('set-cookie'), ['seen=abc']);
    c.destroy();
  });

  it('a line with CR or LF is refused with 500 and an error event, never written as is', async () => {
    const { wss, port } = await listening();
    wss.on('headers', (headers: string[]) => headers.push('X-Evil: a\r\nX-Injected: b'));
    const errored = once(wss, 'error');
    const r = await refused(port, upgradeRequest());
    assert.equal(r.status, 500);
    assert.equal(r.headers.has('x-injected'), false);
    const [err] = (await errored) as [Error];
    assert.match(err.message, /CR or LF/);
  });
});

describe('clients and close()', () => {
  it('clients holds open sockets and loses them once closed; clientTracking: false has none', async () => {
    const { wss, port } = await listening();
    const c = await opened(`ws://127.0.0.1:${port}/`);
    await waitUntil(() => wss.clients!.size === 1, 5000, 'one client');
    const [s] = [...wss.clients!];
    assert.ok(s instanceof WebSocket);
    c.close(1000);
    await waitUntil(() => wss.clients!.size === 0, 5000, 'no client');
    const untracked = new WebSocketServer({ noServer: true, clientTracking: false });
    assert.equal(untracked.clients, undefined);
  });

  it('close() of a server it made: stops listening, emits close; a second close() reports it is not running', async () => {
    const { wss, port } = await listening();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    await assert.rejects(fetch(`http://127.0.0.1:${port}/`));
    const err = await new Promise<Error | undefined>((resolve) => wss.close((e) => resolve(e)));
    assert.equal(err?.message, 'The server is not running');
  });

  it('close() with an external server: open clients stay; close is emitted when the last one has gone; new upgrades get 503', async () => {
    const http = createHttpServer();
    const wss = new WebSocketServer({ noServer: true });
    servers.push(http, wss);
    http.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, () => {}));
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    const port = (http.address() as AddressInfo).port;
    const c = await opened(`ws://127.0.0.1:${port}/`);
    let closed = false;
    wss.close(() => (closed = true));
    const r = await refused(port, upgradeRequest());
    assert.equal(r.status, 503);
    assert.equal(closed, false);
    assert.equal(c.readyState, WebSocket.OPEN);
    c.close();
    await waitUntil(() => closed, 5000, "the server's close");
  });

  it('handleUpgrade twice with one socket throws', async () => {
    const http = createHttpServer();
    const wss = new WebSocketServer({ noServer: true });
    servers.push(http, wss);
    const thrown = new Promise<unknown>((resolve) => {
      http.on('upgrade', (req, socket, head) => {
        wss.handleUpgrade(req, socket, head, () => {
          try {
            wss.handleUpgrade(req, socket, head, () => {});
            resolve(null);
          } catch (err) {
            resolve(err);
          }
        });
      });
    });
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    const c = await opened(`ws://127.0.0.1:${(http.address() as AddressInfo).port}/`);
    const err = (await withTimeout(thrown, 5000, 'second handleUpgrade')) as Error;
    assert.match(err.message, /called more than once with the same socket/);
    c.terminate();
  });
});

describe('options carried to each socket', () => {
  it('WebSocket: the server makes sockets of the given subclass', async () => {
    class Tagged extends WebSocket {
      tag = 'mine';
    }
    const { wss, port } = await listening({ WebSocket: Tagged });
    const server = once(wss, 'connection');
    const c = await opened(`ws://127.0.0.1:${port}/`);
    const [s] = (await server) as [Tagged];
    assert.ok(s instanceof Tagged);
    assert.equal(s.tag, 'mine');
    c.terminate();
  });

  it('maxPayload: a larger message is an error with ws code on the server and 1009 for the client', async () => {
    const { wss, port } = await listening({ maxPayload: 1000 });
    const serverError = new Promise<Error & { code?: string }>((resolve) => wss.on('connection', (ws: WebSocket) => ws.on('error', resolve)));
    const c = await opened(`ws://127.0.0.1:${port}/`);
    const closed = once(c, 'close');
    c.send(Buffer.alloc(1001));
    const err = await withTimeout(serverError, 5000, 'server error');
    assert.ok(err instanceof RangeError);
    assert.equal(err.message, 'Max payload size exceeded');
    assert.equal(err.code, 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH');
    const [code] = (await withTimeout(closed, 5000, 'close')) as [number];
    assert.equal(code, 1009);
  });

  it('a protocol fault is an error with ws code and message, and the close code ws sends', async () => {
    const { wss, port } = await listening();
    const serverError = new Promise<Error & { code?: string }>((resolve) => wss.on('connection', (ws: WebSocket) => ws.on('error', resolve)));
    const raw = await RawClient.open(port);
    // An unmasked frame from a client (RFC 6455 section 5.1).
    raw.write(Buffer.from([0x81, 0x02, 0x68, 0x69]));
    const err = await withTimeout(serverError, 5000, 'server error');
    assert.ok(err instanceof RangeError);
    assert.equal(err.message, 'Invalid WebSocket frame: MASK must be set');
    assert.equal(err.code, 'WS_ERR_EXPECTED_MASK');
    assert.equal((await raw.waitClose()).code, 1002);
    raw.destroy();
  });

  it('invalid UTF-8 in a text message: WS_ERR_INVALID_UTF8 and 1007', async () => {
    const { wss, port } = await listening();
    const serverError = new Promise<Error & { code?: string }>((resolve) => wss.on('connection', (ws: WebSocket) => ws.on('error', resolve)));
    const raw = await RawClient.open(port);
    raw.write(clientFrame(0x1, Buffer.from([0xce, 0xba, 0xe1, 0xbd])));
    const err = await withTimeout(serverError, 5000, 'server error');
    assert.equal(err.message, 'Invalid WebSocket frame: invalid UTF-8 sequence');
    assert.equal(err.code, 'WS_ERR_INVALID_UTF8');
    assert.equal((await raw.waitClose()).code, 1007);
    raw.destroy();
  });
});
