/**
 * The opening handshake over real sockets (RFC 6455 section 4).
 *
 * Server side: hand-made requests from raw TCP sockets get the right HTTP
 * status (and the headers that status requires); subprotocols route to the
 * right handler and the chosen one is echoed (section 4.2.2 item 5.4).
 *
 * Client side: a raw TCP server answers crafted responses, and our client
 * refuses every answer section 4.1 says to refuse; bad arguments (CR/LF in a
 * header value or protocol name) are refused before any connection is made.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { connect, HandshakeError, InvalidArgumentError, InvalidStateError, type ServerHandler, type UpgradeRequest } from '../../src/index.js';
import {
  RawClient,
  acceptFor,
  newKey,
  serverFrame,
  startRawServer,
  startServer,
  switchingProtocols,
  upgradeRequest,
  waitUntil,
  withTimeout,
  type RawServer,
  type TestServer,
} from '../helpers/ws-pair.js';

/** Sends `request` on a fresh raw connection and returns the server's (non-101) answer. */
async function rejection(port: number, request: string): Promise<{ status: number; headers: Map<string, string[]>; body: string }> {
  const c = await RawClient.connect(port);
  try {
    c.write(request);
    return await c.waitRejection(5000);
  } finally {
    c.destroy();
  }
}

function prefixHandler(prefix: string): ServerHandler {
  return {
    onMessage(session, m) {
      session.send(`${prefix}:${m.text}`);
    },
  };
}

describe('server: rejections with the right HTTP status', () => {
  let t: TestServer;
  before(async () => {
    t = await startServer({ handler: prefixHandler('default') });
  });
  after(async () => {
    await t.server.close();
  });

  it('a non-GET method gets 405 with Allow: GET (RFC 6455 section 4.2.1 item 1, RFC 7231 section 6.5.5)', async () => {
    const r = await rejection(t.port, upgradeRequest({ method: 'POST', headers: { 'Content-Length': '0' } }));
    assert.equal(r.status, 405);
    assert.deepEqual(r.headers.get('allow'), ['GET']);
    assert.deepEqual(r.headers.get('connection'), ['close']);
  });

  it('a plain request without any Upgrade header gets 426 naming websocket and version 13', async () => {
    // server.ts: a request that does not try to upgrade at all is told what this endpoint speaks (RFC 7231 section 6.5.15).
    const r = await rejection(t.port, 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    assert.equal(r.status, 426);
    assert.deepEqual(r.headers.get('upgrade'), ['websocket']);
    assert.deepEqual(r.headers.get('sec-websocket-version'), ['13']);
  });

  it('an Upgrade header without "websocket" gets 400 (section 4.2.1 item 3)', async () => {
    const r = await rejection(t.port, upgradeRequest({ headers: { Upgrade: 'h2c' } }));
    assert.equal(r.status, 400);
  });

  it('a missing Connection header gets 400 (section 4.2.1 item 4)', async () => {
    const r = await rejection(t.port, upgradeRequest({ headers: { Connection: null } }));
    assert.equal(r.status, 400);
  });

  it('a Connection header without the "Upgrade" token gets 400', async () => {
    const r = await rejection(t.port, upgradeRequest({ headers: { Connection: 'keep-alive' } }));
    assert.equal(r.status, 400);
  });

  it('Sec-WebSocket-Version: 8 gets 426 with Sec-WebSocket-Version: 13 (section 4.4)', async () => {
    const r = await rejection(t.port, upgradeRequest({ headers: { 'Sec-WebSocket-Version': '8' } }));
    assert.equal(r.status, 426);
    assert.deepEqual(r.headers.get('sec-websocket-version'), ['13']);
  });

  it('a key that is not the base64 of 16 bytes gets 400 (section 4.2.1 item 5)', async () => {
    for (const key of ['dGhlIHNhbXBsZSBub25jZQ=', 'AAAAAAAAAAAAAAAAAAAAAAAAAA==', Buffer.alloc(15).toString('base64'), '']) {
      const r = await rejection(t.port, upgradeRequest({ key }));
      assert.equal(r.status, 400, `key ${JSON.stringify(key)}`);
    }
  });

  it('a head larger than maxHeadBytes (default 16384) gets 431', async () => {
    const r = await rejection(t.port, upgradeRequest({ headers: { 'X-Filler': 'a'.repeat(20_000) } }));
    assert.equal(r.status, 431);
  });

  it('more header fields than maxHeaders (default 100) gets 431', async () => {
    const headers: Record<string, string> = {};
    for (let i = 0; i < 120; i++) headers[`X-H${i}`] = 'v';
    const r = await rejection(t.port, upgradeRequest({ headers }));
    assert.equal(r.status, 431);
  });

  it('the server still accepts a good client after all that, and holds no stray session', async () => {
    const c = await RawClient.open(t.port);
    c.destroy();
    await waitUntil(() => t.server.clients.size === 0, 5000, 'the raw session is gone');
  });
});

describe('server: path, verifyClient and subprotocols', () => {
  it('a wrong path with the `path` option gets 404; the right path (with a query) is accepted', async () => {
    const t = await startServer({ path: '/chat', handler: prefixHandler('p') });
    try {
      assert.equal((await rejection(t.port, upgradeRequest({ path: '/other' }))).status, 404);
      assert.equal((await rejection(t.port, upgradeRequest({ path: '/chat/x' }))).status, 404);
      const c = await RawClient.open(t.port, { path: '/chat?room=1' });
      c.destroy();
    } finally {
      await t.server.close();
    }
  });

  it('verifyClient returning false gets 403; an object answers its status and headers; true accepts', async () => {
    const seen: UpgradeRequest[] = [];
    const t = await startServer({
      handler: prefixHandler('v'),
      async verifyClient(req) {
        seen.push(req);
        await new Promise((r) => setTimeout(r, 1)); // an asynchronous decision
        if (req.path === '/deny') return false;
        if (req.path === '/auth') return { status: 401, message: 'who are you', headers: { 'WWW-Authenticate': 'Basic realm="x"' } };
        return req.origin === 'https://good.example';
      },
    });
    try {
      const denied = await rejection(t.port, upgradeRequest({ path: '/deny' }));
      assert.equal(denied.status, 403);
      const auth = await rejection(t.port, upgradeRequest({ path: '/auth' }));
      assert.equal(auth.status, 401);
      assert.deepEqual(auth.headers.get('www-authenticate'), ['Basic realm="x"']);
      assert.equal(auth.body, 'who are you');
      assert.equal((await rejection(t.port, upgradeRequest({ path: '/ok', headers: { Origin: 'https://evil.example' } }))).status, 403);

      const client = await connect(t.url('/ok?a=b'), { origin: 'https://good.example', keepalive: null });
      client.send('hi');
      const r = await withTimeout(client.messages().next(), 5000, 'echo');
      assert.equal(r.value?.text, 'v:hi');
      const last = seen[seen.length - 1];
      assert.equal(last.path, '/ok');
      assert.equal(last.query.get('a'), 'b');
      assert.equal(last.origin, 'https://good.example');
      client.terminate();
    } finally {
      await t.server.close();
    }
    assert.equal(t.server.clients.size, 0);
  });

  it('an unknown subprotocol, or none, with no default handler gets 400', async () => {
    const t = await startServer({ protocols: { alpha: prefixHandler('alpha') } });
    try {
      assert.equal((await rejection(t.port, upgradeRequest({ headers: { 'Sec-WebSocket-Protocol': 'zeta' } }))).status, 400);
      assert.equal((await rejection(t.port, upgradeRequest())).status, 400);
      await assert.rejects(connect(t.url(), { protocol: 'zeta', keepalive: null }), (err: unknown) => err instanceof HandshakeError && err.status === 400);
    } finally {
      await t.server.close();
    }
  });

  it('routes to the handler of the first offered protocol the server has, and echoes that protocol', async () => {
    const t = await startServer({
      protocols: { alpha: prefixHandler('alpha'), beta: prefixHandler('beta') },
      handler: prefixHandler('default'),
    });
    try {
      // Raw: exactly one Sec-WebSocket-Protocol in the 101, naming the choice.
      const key = newKey();
      const raw = await RawClient.connect(t.port);
      raw.write(upgradeRequest({ key, headers: { 'Sec-WebSocket-Protocol': 'gamma, beta, alpha' } }));
      const head = await raw.waitHead();
      assert.equal(head.status, 101);
      assert.deepEqual(head.headers.get('sec-websocket-accept'), [acceptFor(key)]);
      assert.deepEqual(head.headers.get('sec-websocket-protocol'), ['beta']);
      raw.destroy();

      const cases: Array<[string[] | undefined, string | undefined, string]> = [
        [['gamma', 'beta', 'alpha'], 'beta', 'beta'],
        [['alpha', 'beta'], 'alpha', 'alpha'],
        [['gamma'], undefined, 'default'], // no match: the default handler, and no protocol header
        [undefined, undefined, 'default'],
      ];
      for (const [offer, chosen, prefix] of cases) {
        const c = await connect(t.url(), { protocol: offer, keepalive: null });
        assert.equal(c.protocol, chosen, `offer ${String(offer)}`);
        assert.equal(c.responseHeaders.get('sec-websocket-protocol')?.[0], chosen);
        c.send('x');
        const r = await withTimeout(c.messages().next(), 5000, 'echo');
        assert.equal(r.value?.text, `${prefix}:x`);
        c.close();
        await withTimeout(c.closed, 5000, 'close');
      }
    } finally {
      await t.server.close();
    }
  });
});

describe('client: refuses bad answers (RFC 6455 section 4.1)', () => {
  let raw: RawServer;
  before(async () => {
    raw = await startRawServer((socket, req) => {
      const path = /^GET (\S+)/.exec(req.head)![1];
      switch (path) {
        case '/unoffered-protocol':
          socket.write(switchingProtocols(req.key, { 'Sec-WebSocket-Protocol': 'mqtt' }));
          break;
        case '/two-protocols':
          socket.write(switchingProtocols(req.key, { 'Sec-WebSocket-Protocol': 'chat, superchat' }));
          break;
        case '/wrong-accept':
          socket.write(switchingProtocols(newKey()));
          break;
        case '/no-upgrade':
          socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(req.key)}\r\n\r\n`);
          break;
        case '/forbidden':
          socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nX-Why: no-entry\r\nContent-Length: 4\r\n\r\nnope');
          break;
        case '/ok':
          socket.write(switchingProtocols(req.key, { 'Sec-WebSocket-Protocol': 'chat' }));
          socket.write(serverFrame(0x1, 'welcome'));
          break;
        default:
          socket.destroy();
      }
    });
  });
  after(async () => {
    await raw.close();
  });

  const url = (path: string) => `ws://127.0.0.1:${raw.port}${path}`;

  it('a protocol it did not offer', async () => {
    await assert.rejects(connect(url('/unoffered-protocol'), { protocol: ['chat'], keepalive: null }), (err: unknown) => err instanceof HandshakeError && err.code === 'ERR_BAD_PROTOCOL');
    // Offering nothing and getting one is no better.
    await assert.rejects(connect(url('/unoffered-protocol'), { keepalive: null }), (err: unknown) => err instanceof HandshakeError && err.code === 'ERR_BAD_PROTOCOL');
  });

  it('more than one selected protocol', async () => {
    await assert.rejects(connect(url('/two-protocols'), { protocol: ['chat', 'superchat'], keepalive: null }), (err: unknown) => err instanceof HandshakeError && err.code === 'ERR_BAD_PROTOCOL');
  });

  it('a wrong Sec-WebSocket-Accept', async () => {
    await assert.rejects(connect(url('/wrong-accept'), { keepalive: null }), (err: unknown) => err instanceof HandshakeError && err.code === 'ERR_BAD_ACCEPT');
  });

  it('a 101 without Upgrade: websocket', async () => {
    await assert.rejects(connect(url('/no-upgrade'), { keepalive: null }), (err: unknown) => err instanceof HandshakeError && err.code === 'ERR_BAD_UPGRADE');
  });

  it('a non-101 status, with .status and the response headers', async () => {
    await assert.rejects(connect(url('/forbidden'), { keepalive: null }), (err: unknown) => {
      assert.ok(err instanceof HandshakeError);
      assert.equal(err.code, 'ERR_UNEXPECTED_STATUS');
      assert.equal(err.status, 403);
      assert.equal(err.headers?.['x-why'], 'no-entry');
      return true;
    });
  });

  it('(control) a correct answer from the same raw server is accepted', async () => {
    const c = await connect(url('/ok'), { protocol: ['chat'], keepalive: null });
    assert.equal(c.protocol, 'chat');
    const r = await withTimeout(c.messages().next(), 5000, 'the welcome frame');
    assert.equal(r.value?.text, 'welcome');
    c.terminate();
  });
});

describe('client: refuses header injection before connecting', () => {
  it('CR/LF/NUL in a header value, a header name or a protocol name: rejected, and no connection reaches the server', async () => {
    const raw = await startRawServer((socket) => socket.destroy());
    try {
      const url = `ws://127.0.0.1:${raw.port}/`;
      const bad: Array<Parameters<typeof connect>[1]> = [
        { headers: { 'X-Test': 'a\r\nInjected: yes' } },
        { headers: { 'X-Test': 'a\nb' } },
        { headers: { 'X-Test': 'a\rb' } },
        { headers: { 'X-Test': 'a\0b' } },
        { headers: { 'X-Te\r\nst': 'a' } },
        { headers: [['X-Test', 'ok'], ['X-Other', 'x\r\n\r\nGET / HTTP/1.1']] },
        { protocol: 'chat\r\nInjected: yes' },
        { protocol: ['chat', 'a\nb'] },
        { protocol: 'has space' },
        { origin: 'https://a.example\r\nX: y' },
      ];
      for (const options of bad) {
        await assert.rejects(connect(url, { keepalive: null, ...options }), (err: unknown) => err instanceof InvalidArgumentError, JSON.stringify(options));
      }
      // A sentinel connection made afterwards: once it is accepted, any
      // connection attempted earlier would have been accepted too.
      const sentinel = netConnect({ host: '127.0.0.1', port: raw.port });
      sentinel.on('error', () => {});
      await waitUntil(() => raw.accepted >= 1, 5000, 'the sentinel connection');
      sentinel.destroy();
      assert.equal(raw.accepted, 1, 'a rejected connect() opened a connection');
    } finally {
      await raw.close();
    }
  });
});

describe('server: retainRequestHeaders', () => {
  /** A server whose handler reports what the request answers in onOpen and again in onMessage. */
  async function probe(retainRequestHeaders: boolean | undefined): Promise<{ atOpen: unknown; later: unknown }> {
    let atOpen: unknown;
    let later: unknown;
    const read = (s: { request: UpgradeRequest }) => {
      const r = s.request;
      const kept = { url: r.url, path: r.path, query: r.query.get('room'), host: r.host, origin: r.origin, protocols: [...r.protocols], secure: r.secure, remote: r.remoteAddress };
      try {
        return { ...kept, token: r.headers.get('x-token') };
      } catch (e) {
        return { ...kept, error: e };
      }
    };
    const t = await startServer({
      ...(retainRequestHeaders === undefined ? {} : { retainRequestHeaders }),
      protocols: {
        chat: {
          onOpen(s) {
            atOpen = read(s);
          },
          onMessage(s) {
            later = read(s);
            s.send('done');
          },
        },
      },
    });
    const c = await connect(t.url('/room?room=7'), { protocol: ['chat'], origin: 'https://app.example.test', headers: { 'X-Token': 'secret-123' }, keepalive: null });
    try {
      c.send('go');
      const m = await withTimeout(c.messages().next(), 5000, 'the answer');
      assert.equal(m.done, false);
    } finally {
      c.close();
      await t.server.close();
    }
    return { atOpen, later };
  }

  const expectedKept = (port: number) => ({ url: '/room?room=7', path: '/room', query: '7', host: `127.0.0.1:${port}`, origin: 'https://app.example.test', protocols: ['chat'], secure: false, remote: '127.0.0.1' });

  it('by default the headers stay readable after onOpen', async () => {
    const { atOpen, later } = await probe(undefined);
    const port = Number(new URL(`http://${(atOpen as { host: string }).host}`).port);
    assert.deepEqual(atOpen, { ...expectedKept(port), token: ['secret-123'] });
    assert.deepEqual(later, { ...expectedKept(port), token: ['secret-123'] });
  });

  it('false: headers readable in onOpen, then released; reading them later throws InvalidStateError; the rest stays', async () => {
    const { atOpen, later } = await probe(false);
    const port = Number(new URL(`http://${(atOpen as { host: string }).host}`).port);
    assert.deepEqual(atOpen, { ...expectedKept(port), token: ['secret-123'] });
    const { error, ...rest } = later as { error?: unknown };
    assert.deepEqual(rest, expectedKept(port));
    assert.ok(error instanceof InvalidStateError, `expected an InvalidStateError, got ${String(error)}`);
    assert.equal(error.code, 'ERR_INVALID_STATE');
    assert.match(error.message, /retainRequestHeaders: false/);
  });
});
