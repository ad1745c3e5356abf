/**
 * connect() through real proxies: Debian's tinyproxy (HTTP CONNECT, with and
 * without BasicAuth, and as an https:// proxy behind a TLS terminator of the
 * test's own) and microsocks (SOCKS5, with and without a username and
 * password), to ws:// and wss:// echo servers on 127.0.0.1. Recording relays
 * in front of the proxies and the targets show which bytes reached whom: the
 * proxy's credentials never reach the target, the target's never reach the
 * proxy outside the tunnel (and, for wss://, not at all: the tunnel carries
 * TLS). Each proxy is stopped in after(), whatever the tests did.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, HandshakeError, TransportError, type ConnectOptions, type WebSocketServer } from '../../src/index.js';
import { testCert } from '../helpers/certs.js';
import { requirePeer } from '../helpers/peers.js';
import { microsocksAvailable, startMicrosocks, startRecorder, startTinyproxy, startTlsTerminator, tinyproxyAvailable, type Recorder, type Running } from '../helpers/proxies.js';

const skipTinyproxy = requirePeer('tinyproxy', tinyproxyAvailable(), 'apt-get install tinyproxy');
const skipMicrosocks = requirePeer('microsocks', microsocksAvailable(), 'apt-get install microsocks');

const PROXY_USER = 'proxyuser';
const PROXY_PASSWORD = 'proxy-pw-Zq81';
const TARGET_TOKEN = 'Bearer target-token-Kx93';
const TARGET_PASSWORD = 'target-pw-Jw55';

const stops: Array<() => Promise<void>> = [];
after(async () => {
  for (const stop of stops.reverse()) await stop().catch(() => {});
});

interface Echo {
  port: number;
  /** The request headers of each upgrade the server accepted. */
  headers: Array<ReadonlyMap<string, readonly string[]>>;
}

async function echoServer(tls: boolean): Promise<Echo> {
  const cert = testCert();
  const headers: Echo['headers'] = [];
  const server: WebSocketServer = createServer({
    port: 0,
    keepalive: null,
    ...(tls ? { tls: { key: cert.key, cert: cert.cert } } : {}),
    handler: {
      onOpen: (session) => void headers.push(session.request.headers),
      onMessage: (session, message) => void session.send(message.binary ? message.data : message.text),
    },
    onError: () => {},
  });
  const { port } = await server.listen(0, '127.0.0.1');
  stops.push(() => server.close());
  return { port, headers };
}

async function recorder(port: number): Promise<Recorder> {
  const r = await startRecorder(port);
  stops.push(() => r.close());
  return r;
}

/** Opens, sends one message, expects it back, closes cleanly. */
async function echoThrough(url: string, options: ConnectOptions): Promise<void> {
  const client = await connect(url, { handshakeTimeoutMs: 8000, keepalive: null, tls: { ca: testCert().ca }, ...options });
  client.send('hello through the proxy');
  const iterator = client.messages()[Symbol.asyncIterator]();
  const first = await iterator.next();
  assert.equal(first.done, false);
  assert.equal(first.value.text, 'hello through the proxy');
  client.close(1000);
  const info = await client.closed;
  assert.equal(info.code, 1000);
}

async function rejection(p: Promise<unknown>): Promise<Error & { code?: string; status?: number }> {
  try {
    const s = (await p) as { terminate(): void };
    s.terminate();
  } catch (err) {
    return err as Error;
  }
  assert.fail('connect() succeeded');
}

/** The bytes of the first connection a relay saw, up to and including the first blank line: the CONNECT request. */
function connectHead(r: Recorder, index = 0): string {
  const up = Buffer.concat(r.connections[index].up).toString('latin1');
  return up.slice(0, up.indexOf('\r\n\r\n') + 4);
}

const running = async <T extends Running>(p: Promise<T>): Promise<T> => {
  const r = await p;
  stops.push(() => r.stop());
  return r;
};

describe('through tinyproxy (HTTP CONNECT, RFC 9110 section 9.3.6)', { skip: skipTinyproxy }, () => {
  let plain: Echo;
  let secure: Echo;
  let plainRelay: Recorder;
  let open: Running;
  let authed: Running & { log(): string };
  let authedRelay: Recorder;

  before(async () => {
    plain = await echoServer(false);
    secure = await echoServer(true);
    plainRelay = await recorder(plain.port);
    const ports = [plain.port, secure.port, plainRelay.port];
    open = await running(startTinyproxy({ connectPorts: ports }));
    authed = await running(startTinyproxy({ connectPorts: ports, auth: { user: PROXY_USER, password: PROXY_PASSWORD } }));
    authedRelay = await recorder(authed.port);
  });

  it('ws:// and wss:// echo through a proxy without authentication', async () => {
    await echoThrough(`ws://127.0.0.1:${plain.port}/`, { proxy: `http://127.0.0.1:${open.port}` });
    await echoThrough(`wss://127.0.0.1:${secure.port}/`, { proxy: `http://127.0.0.1:${open.port}` });
    await echoThrough(`wss://localhost:${secure.port}/`, { proxy: new URL(`http://127.0.0.1:${open.port}`) });
  });

  it('ws:// and wss:// echo with Proxy-Authorization: Basic from the proxy URL', async () => {
    const proxy = `http://${PROXY_USER}:${PROXY_PASSWORD}@127.0.0.1:${authed.port}`;
    await echoThrough(`ws://127.0.0.1:${plain.port}/`, { proxy });
    await echoThrough(`wss://127.0.0.1:${secure.port}/`, { proxy });
  });

  it('407 without credentials, 401 with wrong ones: HandshakeError ERR_PROXY_AUTH naming the proxy, never the password', async () => {
    const none = await rejection(connect(`ws://127.0.0.1:${plain.port}/`, { proxy: `http://127.0.0.1:${authed.port}` }));
    assert.ok(none instanceof HandshakeError);
    assert.equal(none.code, 'ERR_PROXY_AUTH');
    assert.equal(none.status, 407);
    assert.match(none.message, new RegExp(`^proxy http://127\\.0\\.0\\.1:${authed.port} refused CONNECT to 127\\.0\\.0\\.1:${plain.port}: 407 Proxy Authentication Required \\(no credentials were sent`));
    const wrong = await rejection(connect(`wss://127.0.0.1:${secure.port}/`, { proxy: `http://${PROXY_USER}:wrong-${PROXY_PASSWORD}@127.0.0.1:${authed.port}` }));
    assert.ok(wrong instanceof HandshakeError);
    assert.equal(wrong.code, 'ERR_PROXY_AUTH');
    // tinyproxy 1.11 answers wrong credentials with 401, not 407: both are the proxy's refusal of them.
    assert.equal(wrong.status, 401);
    assert.equal(wrong.message, `proxy http://127.0.0.1:${authed.port} refused CONNECT to 127.0.0.1:${secure.port}: 401 Unauthorized (it refused the credentials in the proxy URL)`);
    assert.ok(!wrong.message.includes(PROXY_PASSWORD) && !String(wrong.stack).includes(PROXY_PASSWORD));
  });

  it('a port tinyproxy does not allow (ConnectPort): ERR_PROXY_REFUSED with its status', async () => {
    const e = await rejection(connect('ws://127.0.0.1:9/', { proxy: `http://127.0.0.1:${open.port}` }));
    assert.ok(e instanceof HandshakeError);
    assert.equal(e.code, 'ERR_PROXY_REFUSED');
    assert.equal(e.status, 403);
    assert.match(e.message, new RegExp(`^proxy http://127\\.0\\.0\\.1:${open.port} refused CONNECT to 127\\.0\\.0\\.1:9: 403 `));
  });

  it("proxy credentials reach only the proxy; the target's Authorization and URL userinfo never reach it outside the tunnel", async () => {
    const proxy = `http://${PROXY_USER}:${PROXY_PASSWORD}@127.0.0.1:${authedRelay.port}`;
    const before = authedRelay.connections.length;
    const seen = plain.headers.length;
    await echoThrough(`ws://alice:${TARGET_PASSWORD}@127.0.0.1:${plainRelay.port}/`, { proxy, headers: { Authorization: TARGET_TOKEN } });
    // The CONNECT request: the target's authority, Host and Proxy-Authorization, nothing else (RFC 9110 section 9.3.6).
    const basic = Buffer.from(`${PROXY_USER}:${PROXY_PASSWORD}`).toString('base64');
    assert.equal(connectHead(authedRelay, before), `CONNECT 127.0.0.1:${plainRelay.port} HTTP/1.1\r\nHost: 127.0.0.1:${plainRelay.port}\r\nProxy-Authorization: Basic ${basic}\r\n\r\n`);
    // What the target received, byte for byte through its relay, and as the server parsed it.
    const atTarget = plainRelay.upBytes().toString('latin1');
    assert.ok(atTarget.includes(TARGET_TOKEN), 'the relay in front of the target sees the upgrade request');
    for (const secret of [PROXY_PASSWORD, basic, 'Proxy-Authorization', PROXY_USER]) assert.ok(!atTarget.includes(secret), `${secret} reached the target`);
    assert.equal(plain.headers.length, seen + 1);
    assert.equal(plain.headers[seen].get('proxy-authorization'), undefined);
    assert.deepEqual(plain.headers[seen].get('authorization'), [TARGET_TOKEN]);
    // The URL's userinfo is sent to no one (docs/api.md: "Credentials in the URL are not sent").
    assert.ok(!Buffer.concat(authedRelay.connections[before].up).toString('latin1').includes(TARGET_PASSWORD));
    assert.ok(!atTarget.includes(TARGET_PASSWORD));

    // wss://: everything after the CONNECT request is TLS, so the proxy sees none of the target's credentials at all.
    const next = authedRelay.connections.length;
    await echoThrough(`wss://alice:${TARGET_PASSWORD}@127.0.0.1:${secure.port}/`, { proxy, headers: { Authorization: TARGET_TOKEN } });
    const atProxy = Buffer.concat(authedRelay.connections[next].up).toString('latin1');
    for (const secret of [TARGET_TOKEN, 'target-token', TARGET_PASSWORD, 'alice']) assert.ok(!atProxy.includes(secret), `${secret} reached the proxy`);
    const last = secure.headers[secure.headers.length - 1];
    assert.equal(last.get('proxy-authorization'), undefined);
    assert.deepEqual(last.get('authorization'), [TARGET_TOKEN]);
  });

  describe('an https:// proxy (TLS to the proxy, then TLS to the target inside it for wss://)', () => {
    let terminator: Recorder;
    before(async () => {
      terminator = await startTlsTerminator(authed.port);
      stops.push(() => terminator.close());
    });

    it('ws:// and wss:// echo, the proxy trusted through proxyTls', async () => {
      const proxy = `https://${PROXY_USER}:${PROXY_PASSWORD}@127.0.0.1:${terminator.port}`;
      const before = terminator.connections.length;
      await echoThrough(`ws://127.0.0.1:${plain.port}/`, { proxy, proxyTls: { ca: testCert().ca } });
      await echoThrough(`wss://127.0.0.1:${secure.port}/`, { proxy, proxyTls: { ca: testCert().ca }, headers: { Authorization: TARGET_TOKEN } });
      assert.match(connectHead(terminator, before), /^CONNECT 127\.0\.0\.1:\d+ HTTP\/1\.1\r\nHost: /);
      assert.ok(!Buffer.concat(terminator.connections[before + 1].up).includes(TARGET_TOKEN), 'the target token inside the TLS tunnel');
    });

    it("the target's tls options are not the proxy's: an untrusted proxy certificate says to use proxyTls", async () => {
      const e = await rejection(connect(`wss://127.0.0.1:${secure.port}/`, { proxy: `https://127.0.0.1:${terminator.port}`, tls: { ca: testCert().ca } }));
      assert.ok(e instanceof TransportError);
      assert.equal(e.code, 'ERR_PROXY_CONNECT');
      assert.match(e.message, new RegExp(`^cannot connect to proxy https://127\\.0\\.0\\.1:${terminator.port} .*: the proxy's certificate is not trusted; pass its CA as proxyTls: \\{ ca \\}$`));
    });
  });
});

describe('through microsocks (SOCKS5, RFC 1928 and RFC 1929)', { skip: skipMicrosocks }, () => {
  let plain: Echo;
  let secure: Echo;
  let plainRelay: Recorder;
  let open: Running;
  let authed: Running;
  let openRelay: Recorder;
  let authedRelay: Recorder;

  before(async () => {
    plain = await echoServer(false);
    secure = await echoServer(true);
    plainRelay = await recorder(plain.port);
    open = await running(startMicrosocks());
    authed = await running(startMicrosocks({ auth: { user: PROXY_USER, password: PROXY_PASSWORD } }));
    openRelay = await recorder(open.port);
    authedRelay = await recorder(authed.port);
  });

  it('ws:// and wss:// echo through socks5:// and socks5h://', async () => {
    for (const scheme of ['socks5', 'socks5h']) {
      await echoThrough(`ws://127.0.0.1:${plain.port}/`, { proxy: `${scheme}://127.0.0.1:${open.port}` });
      await echoThrough(`wss://localhost:${secure.port}/`, { proxy: `${scheme}://127.0.0.1:${open.port}` });
    }
  });

  it('socks5:// sends the address it resolved, socks5h:// sends the name (curl distinguishes them the same way)', async () => {
    const at = openRelay.connections.length;
    await echoThrough(`ws://localhost:${plain.port}/`, { proxy: `socks5://127.0.0.1:${openRelay.port}` });
    await echoThrough(`ws://localhost:${plain.port}/`, { proxy: `socks5h://127.0.0.1:${openRelay.port}` });
    const port = [plain.port >> 8, plain.port & 0xff];
    const request = (i: number) => Buffer.concat(openRelay.connections[i].up).subarray(3, 3 + 4 + 1 + 9 + 2);
    assert.deepEqual([...request(at).subarray(0, 10)], [5, 1, 0, 1, 127, 0, 0, 1, ...port]);
    assert.deepEqual(request(at + 1), Buffer.concat([Buffer.from([5, 1, 0, 3, 9]), Buffer.from('localhost'), Buffer.from(port)]));
  });

  it('ws:// and wss:// echo with username/password authentication', async () => {
    const proxy = `socks5h://${PROXY_USER}:${PROXY_PASSWORD}@127.0.0.1:${authed.port}`;
    await echoThrough(`ws://127.0.0.1:${plain.port}/`, { proxy });
    await echoThrough(`wss://127.0.0.1:${secure.port}/`, { proxy });
  });

  it('no credentials, or wrong ones: HandshakeError ERR_PROXY_AUTH naming the proxy, never the password', async () => {
    const none = await rejection(connect(`ws://127.0.0.1:${plain.port}/`, { proxy: `socks5://127.0.0.1:${authed.port}` }));
    assert.ok(none instanceof HandshakeError);
    assert.equal(none.code, 'ERR_PROXY_AUTH');
    assert.equal(
      none.message,
      `proxy socks5://127.0.0.1:${authed.port} refused CONNECT to 127.0.0.1:${plain.port}: none of the offered authentication methods (no authentication) is acceptable: it wants credentials; put them in the proxy URL, socks5://user:password@host:port`,
    );
    const wrong = await rejection(connect(`ws://127.0.0.1:${plain.port}/`, { proxy: `socks5://${PROXY_USER}:wrong-${PROXY_PASSWORD}@127.0.0.1:${authed.port}` }));
    assert.ok(wrong instanceof HandshakeError);
    assert.equal(wrong.code, 'ERR_PROXY_AUTH');
    assert.match(wrong.message, new RegExp(`^proxy socks5://127\\.0\\.0\\.1:${authed.port} refused CONNECT to 127\\.0\\.0\\.1:${plain.port}: it refused the username and password \\(RFC 1929 status [1-9]\\d*\\)$`));
    assert.ok(!wrong.message.includes(PROXY_PASSWORD));
  });

  it('a target that refuses: ERR_PROXY_REFUSED with the SOCKS reply code', async () => {
    const e = await rejection(connect('ws://127.0.0.1:9/', { proxy: `socks5h://127.0.0.1:${open.port}` }));
    assert.ok(e instanceof TransportError);
    assert.equal(e.code, 'ERR_PROXY_REFUSED');
    assert.match(e.message, new RegExp(`^proxy socks5h://127\\.0\\.0\\.1:${open.port} refused CONNECT to 127\\.0\\.0\\.1:9: SOCKS reply \\d+ \\(`));
  });

  it("proxy credentials reach only the proxy; the target's never reach it outside the tunnel", async () => {
    const proxy = `socks5h://${PROXY_USER}:${PROXY_PASSWORD}@127.0.0.1:${authedRelay.port}`;
    const at = authedRelay.connections.length;
    const seen = plain.headers.length;
    await echoThrough(`ws://alice:${TARGET_PASSWORD}@127.0.0.1:${plainRelay.port}/`, { proxy, headers: { Authorization: TARGET_TOKEN } });
    // The SOCKS exchange: greeting, RFC 1929 credentials, CONNECT; then the tunnel, which starts with the upgrade request.
    const up = Buffer.concat(authedRelay.connections[at].up);
    const user = Buffer.from(PROXY_USER);
    const pass = Buffer.from(PROXY_PASSWORD);
    const exchange = Buffer.concat([Buffer.from([5, 2, 0, 2, 1, user.length]), user, Buffer.from([pass.length]), pass, Buffer.from([5, 1, 0, 1, 127, 0, 0, 1, plainRelay.port >> 8, plainRelay.port & 0xff])]);
    assert.deepEqual(up.subarray(0, exchange.length), exchange);
    assert.match(up.subarray(exchange.length).toString('latin1'), /^GET \/ HTTP\/1\.1\r\n/);
    const atTarget = plainRelay.upBytes().toString('latin1');
    for (const secret of [PROXY_PASSWORD, PROXY_USER]) assert.ok(!atTarget.includes(secret), `${secret} reached the target`);
    assert.deepEqual(plain.headers[seen].get('authorization'), [TARGET_TOKEN]);
    assert.ok(!up.toString('latin1').includes(TARGET_PASSWORD));

    const next = authedRelay.connections.length;
    await echoThrough(`wss://alice:${TARGET_PASSWORD}@127.0.0.1:${secure.port}/`, { proxy, headers: { Authorization: TARGET_TOKEN } });
    const atProxy = Buffer.concat(authedRelay.connections[next].up).toString('latin1');
    for (const secret of ['target-token', TARGET_PASSWORD, 'alice']) assert.ok(!atProxy.includes(secret), `${secret} reached the proxy`);
  });
});
