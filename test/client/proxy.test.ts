/**
 * src/client/proxy.ts without real proxies: which proxy the option and the
 * environment select (curl's rules, the environment passed in, never
 * process.env), how proxy URLs are read, and the tunnel's edge cases against
 * fake proxies of our own on 127.0.0.1 (bytes after the answer kept, answers
 * in any chunking, malformed and oversized answers, a silent proxy and the
 * handshake timeout, abort). test/client/proxy-peers.test.ts runs the real
 * ones (tinyproxy, microsocks).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { connect, HandshakeError, InvalidArgumentError, TimeoutError, TransportError } from '../../src/index.js';
import { noProxyMatches, openTunnel, parseProxyUrl, proxyFromEnv, redactProxyUrl, selectProxy, type ProxyEnv, type TunnelOptions } from '../../src/client/proxy.js';
import { Context } from '../../src/transport/context.js';

const ws = { secure: false, host: 'example.test', port: 80 };
const wss = { secure: true, host: 'example.test', port: 443 };
/** The proxy's display (scheme://host:port) and where it came from, or null. */
const chosen = (target: typeof ws, env: ProxyEnv, option?: string | URL | false) => {
  const p = selectProxy(target, option, env);
  return p === null ? null : `${p.display} from ${p.source}`;
};

describe('the proxy from the environment (curl: libcurl-env(3), lib/url.c detect_proxy)', () => {
  it('ws:// reads ws_proxy, WS_PROXY, then http_proxy, then all_proxy, ALL_PROXY', () => {
    assert.equal(chosen(ws, { ws_proxy: 'http://a:1', WS_PROXY: 'http://b:1', http_proxy: 'http://c:1', all_proxy: 'http://d:1' }), 'http://a:1 from the environment variable ws_proxy');
    assert.equal(chosen(ws, { WS_PROXY: 'http://b:1', http_proxy: 'http://c:1', all_proxy: 'http://d:1' }), 'http://b:1 from the environment variable WS_PROXY');
    assert.equal(chosen(ws, { http_proxy: 'http://c:1', all_proxy: 'http://d:1' }), 'http://c:1 from the environment variable http_proxy');
    assert.equal(chosen(ws, { all_proxy: 'http://d:1', ALL_PROXY: 'http://e:1' }), 'http://d:1 from the environment variable all_proxy');
    assert.equal(chosen(ws, { ALL_PROXY: 'socks5h://e:1' }), 'socks5h://e:1 from the environment variable ALL_PROXY');
    assert.equal(chosen(ws, {}), null);
  });

  it('HTTP_PROXY in capitals is never read (curl: a CGI program gets it from a "Proxy:" request header)', () => {
    assert.equal(chosen(ws, { HTTP_PROXY: 'http://evil:1' }), null);
    assert.equal(chosen(ws, { HTTP_PROXY: 'http://evil:1', ALL_PROXY: 'http://ok:1' }), 'http://ok:1 from the environment variable ALL_PROXY');
  });

  it('wss:// reads wss_proxy, WSS_PROXY, then https_proxy, HTTPS_PROXY, then all_proxy, ALL_PROXY; never http_proxy', () => {
    const all = { wss_proxy: 'http://a:1', WSS_PROXY: 'http://b:1', https_proxy: 'http://c:1', HTTPS_PROXY: 'http://d:1', all_proxy: 'http://e:1', ALL_PROXY: 'http://f:1', http_proxy: 'http://g:1', ws_proxy: 'http://h:1' };
    const order = ['wss_proxy', 'WSS_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY'];
    const env: Record<string, string> = { ...all };
    for (const name of order) {
      assert.match(String(chosen(wss, env)), new RegExp(` from the environment variable ${name}$`));
      delete env[name];
    }
    assert.equal(chosen(wss, env), null, 'http_proxy and ws_proxy are for ws:// only');
  });

  it('a variable set to the empty string counts as unset (curl_getenv)', () => {
    assert.equal(chosen(ws, { ws_proxy: '', http_proxy: 'http://c:1' }), 'http://c:1 from the environment variable http_proxy');
    assert.equal(chosen(ws, { no_proxy: '', NO_PROXY: 'example.test', http_proxy: 'http://c:1' }), null);
  });

  it('no_proxy is read before NO_PROXY, and applies before any proxy variable', () => {
    assert.equal(chosen(ws, { no_proxy: 'other.test', NO_PROXY: 'example.test', http_proxy: 'http://c:1' }), 'http://c:1 from the environment variable http_proxy');
    assert.equal(chosen(ws, { NO_PROXY: 'example.test', http_proxy: 'http://c:1' }), null);
    assert.equal(chosen(wss, { no_proxy: 'example.test', wss_proxy: 'http://c:1', ALL_PROXY: 'http://d:1' }), null);
  });

  it('the proxy option wins over the environment and its NO_PROXY; false and "" go direct', () => {
    const env = { http_proxy: 'http://env:1', no_proxy: '*' };
    assert.equal(chosen(ws, env, 'socks5://opt:9'), 'socks5://opt:9 from the proxy option');
    assert.equal(chosen(ws, env, new URL('socks5h://opt:9')), 'socks5h://opt:9 from the proxy option');
    assert.equal(chosen(ws, { http_proxy: 'http://env:1' }, false), null);
    assert.equal(chosen(ws, { http_proxy: 'http://env:1' }, ''), null);
    assert.throws(() => selectProxy(ws, 42 as unknown as string, {}), (e: unknown) => e instanceof InvalidArgumentError && e.code === 'ERR_BAD_PROXY');
  });

  it('a unix-socket target never goes through a proxy, option or environment', () => {
    const unix = { ...ws, socketPath: '/run/app.sock' };
    assert.equal(selectProxy(unix, 'http://opt:1', {}), null);
    assert.equal(selectProxy(unix, undefined, { http_proxy: 'http://env:1', all_proxy: 'http://env:1' }), null);
    assert.equal(proxyFromEnv(unix, { all_proxy: 'http://env:1' }), null);
  });

  it('a bad proxy URL is an InvalidArgumentError naming its variable, with the password hidden', () => {
    for (const [env, re] of [
      [{ http_proxy: 'ftp://user:hunter2@p:21' }, /^bad proxy URL ftp:\/\/\*\*\*@p:21 \(from the environment variable http_proxy\): unsupported scheme ftp:/],
      [{ all_proxy: 'socks4://user:hunter2@p:1080' }, /unsupported scheme socks4:/],
      [{ http_proxy: 'http://user:hunter2@p:99999' }, /^bad proxy URL http:\/\/\*\*\*@p:99999 .*not a URL/],
      [{ http_proxy: 'http://us%3Aer:hunter2@p:1' }, /a Basic user name cannot contain ":"/],
      [{ http_proxy: 'http://user:hunter2%ZZ@p:1' }, /not a URL|percent-encoding/],
    ] as const) {
      assert.throws(
        () => selectProxy(ws, undefined, env),
        (e: unknown) => e instanceof InvalidArgumentError && e.code === 'ERR_BAD_PROXY' && re.test(e.message) && !e.message.includes('hunter2'),
        JSON.stringify(env),
      );
    }
  });
});

describe('NO_PROXY forms (curl: CURLOPT_NOPROXY(3), lib/noproxy.c)', () => {
  const cases: Array<[list: string, host: string, port: number, expected: boolean]> = [
    ['*', 'anything.test', 80, true],
    [' * ', 'anything.test', 80, true],
    ['example.test', 'example.test', 80, true],
    ['example.test', 'www.example.test', 80, true],
    ['example.test', 'notexample.test', 80, false],
    ['example.test', 'example.test.evil', 80, false],
    ['.example.test', 'example.test', 80, true],
    ['.example.test', 'a.b.example.test', 80, true],
    ['EXAMPLE.test.', 'www.Example.TEST.', 80, true],
    ['other.test, example.test', 'example.test', 80, true],
    ['other.test,,  example.test', 'example.test', 80, true],
    ['other.test example.test', 'example.test', 80, true],
    ['localhost,*', 'example.test', 80, false], // curl: "*" only alone
    ['127.0.0.1', '127.0.0.1', 80, true],
    ['127.0.0.1', '127.0.0.2', 80, false],
    ['127.0.0.0/8', '127.9.9.9', 80, true],
    ['10.0.0.0/8', '127.0.0.1', 80, false],
    ['192.168.0.0/33', '192.168.0.1', 80, false],
    ['::1', '::1', 80, true],
    ['::1', '0:0:0:0:0:0:0:1', 80, true],
    ['fd00::/8', 'fd12::5', 80, true],
    ['127.0.0.1', 'localhost', 80, false], // names are compared as written, never resolved
    ['localhost', '127.0.0.1', 80, false],
    ['example.test', '93.184.216.34', 80, false],
    // host:port, which curl does not read (it never matches there): only that port.
    ['example.test:8080', 'example.test', 8080, true],
    ['example.test:8080', 'example.test', 80, false],
    ['.example.test:443', 'www.example.test', 443, true],
    ['127.0.0.1:9000', '127.0.0.1', 9000, true],
    ['127.0.0.1:9000', '127.0.0.1', 9001, false],
    ['[::1]:9000', '::1', 9000, true],
    ['[::1]:9000', '::1', 80, false],
    ['[::1]', '::1', 80, true],
  ];
  for (const [list, host, port, expected] of cases) {
    it(`${JSON.stringify(list)} ${expected ? 'excludes' : 'does not exclude'} ${host}:${port}`, () => {
      assert.equal(noProxyMatches(list, host, port), expected);
    });
  }
  it('through selectProxy, with the target of a wss:// URL', () => {
    assert.equal(selectProxy({ secure: true, host: 'api.example.test', port: 8443 }, undefined, { no_proxy: '.example.test:8443', https_proxy: 'http://p:1' }), null);
    assert.notEqual(selectProxy({ secure: true, host: 'api.example.test', port: 443 }, undefined, { no_proxy: '.example.test:8443', https_proxy: 'http://p:1' }), null);
  });
});

describe('proxy URLs', () => {
  it("schemes, curl's default ports, credentials percent-decoded", () => {
    const p = (s: string | URL) => {
      const c = parseProxyUrl(s, 'test');
      return [c.protocol, c.host, c.port, c.username, c.password, c.display];
    };
    assert.deepEqual(p('proxy.test:3128'), ['http', 'proxy.test', 3128, '', '', 'http://proxy.test:3128'], 'no scheme: http, as curl guesses');
    assert.deepEqual(p('http://proxy.test'), ['http', 'proxy.test', 1080, '', '', 'http://proxy.test:1080'], "curl's CURL_DEFAULT_PROXY_PORT");
    assert.deepEqual(p('http://proxy.test:80'), ['http', 'proxy.test', 80, '', '', 'http://proxy.test:80']);
    assert.deepEqual(p('https://proxy.test'), ['https', 'proxy.test', 443, '', '', 'https://proxy.test:443']);
    assert.deepEqual(p('socks5h://u%40x:p%3As@[::1]'), ['socks5h', '::1', 1080, 'u@x', 'p:s', 'socks5h://[::1]:1080']);
    assert.deepEqual(p('SOCKS5://proxy.test:1081/'), ['socks5', 'proxy.test', 1081, '', '', 'socks5://proxy.test:1081']);
    assert.deepEqual(p(new URL('http://proxy.test')), ['http', 'proxy.test', 80, '', '', 'http://proxy.test:80'], 'a URL object says 80');
  });

  it('SOCKS5 credentials within RFC 1929 bounds', () => {
    assert.throws(() => parseProxyUrl(`socks5://${'u'.repeat(256)}:p@h:1`, 'test'), /RFC 1929/);
    assert.throws(() => parseProxyUrl(`socks5://u:${'p'.repeat(256)}@h:1`, 'test'), /RFC 1929/);
    assert.throws(() => parseProxyUrl('socks5://:secret@h:1', 'test'), /RFC 1929/);
    assert.equal(parseProxyUrl('socks5://u:@h:1', 'test').password, '');
  });

  it('redaction hides everything up to the last "@" of the authority', () => {
    assert.equal(redactProxyUrl('http://user:p@ss@host:1'), 'http://***@host:1');
    assert.equal(redactProxyUrl('user:pw@host:1'), '***@host:1');
    assert.equal(redactProxyUrl('http://host:1'), 'http://host:1');
  });
});

// Fake proxies: a server that runs `script` on each connection.
const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

async function fakeProxy(script: (socket: Socket, received: () => Buffer) => void): Promise<{ port: number; received: Buffer[] }> {
  const received: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const mine: Buffer[] = [];
    socket.on('data', (d: Buffer) => {
      mine.push(Buffer.from(d));
      received.push(Buffer.from(d));
    });
    script(socket, () => Buffer.concat(mine));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  closers.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as AddressInfo).port, received };
}

/** Waits until the bytes received on this connection end with `marker` (or contain `count` bytes), then runs `then`. */
function whenReceived(socket: Socket, received: () => Buffer, done: (b: Buffer) => boolean, then: () => void): void {
  const check = () => {
    if (done(received())) {
      socket.off('data', check);
      then();
    }
  };
  socket.on('data', check);
}

function tunnelOptions(extra: Partial<TunnelOptions> = {}): TunnelOptions & { context: Context } {
  const context = new Context();
  closers.push(async () => context.close());
  return { context, deadline: context.now() + 5000, timeoutMs: 5000, ...extra };
}

const TARGET = { host: 'example.test', port: 443, href: 'wss://example.test/' };

function readAll(socket: Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    const timer = setTimeout(() => reject(new Error(`fewer than ${n} bytes within 5 s`)), 5000);
    socket.on('data', (d: Buffer) => {
      parts.push(d);
      const all = Buffer.concat(parts);
      if (all.length >= n) {
        clearTimeout(timer);
        resolve(all);
      }
    });
    socket.resume();
  });
}

async function rejection(p: Promise<unknown>): Promise<Error & { code?: string; status?: number }> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  assert.fail('did not reject');
}

describe('HTTP CONNECT against fake proxies', () => {
  it('sends only the request line, Host and Proxy-Authorization; keeps the bytes after the 200 for what follows', async () => {
    const fake = await fakeProxy((socket, received) =>
      whenReceived(socket, received, (b) => b.includes('\r\n\r\n'), () => socket.write('HTTP/1.1 200 Connection established\r\nX-Extra: 1\r\n\r\nEARLY BYTES')),
    );
    const proxy = parseProxyUrl(`http://us%C3%A9r:p%40ss@127.0.0.1:${fake.port}`, 'test');
    const socket = await openTunnel(proxy, TARGET, tunnelOptions());
    assert.equal((await readAll(socket, 11)).toString(), 'EARLY BYTES');
    socket.destroy();
    const basic = Buffer.from('usér:p@ss', 'utf8').toString('base64');
    assert.equal(Buffer.concat(fake.received).toString('latin1'), `CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\nProxy-Authorization: Basic ${basic}\r\n\r\n`);
  });

  it('connect(): bytes in the same read as the 200 reach the handshake (ws://) and TLS (wss://)', async () => {
    // The proxy answers, and at once the "target" refuses: those bytes must be read as the target's answer.
    const early = await fakeProxy((socket, received) =>
      whenReceived(socket, received, (b) => b.includes('\r\n\r\n'), () => socket.write('HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n')),
    );
    const e1 = await rejection(connect('ws://example.test/', { proxy: `http://127.0.0.1:${early.port}`, handshakeTimeoutMs: 5000 }));
    assert.ok(e1 instanceof HandshakeError);
    assert.equal(e1.status, 403);
    assert.equal(e1.message, 'ws://example.test/: server answered 403 Forbidden');
    // Not TLS right after the 200: the TLS client read them (it fails on them instead of waiting for the timeout).
    const garbage = await fakeProxy((socket, received) => whenReceived(socket, received, (b) => b.includes('\r\n\r\n'), () => socket.write('HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 400 no TLS here\r\n\r\n')));
    const e2 = await rejection(connect('wss://example.test/', { proxy: `http://127.0.0.1:${garbage.port}`, handshakeTimeoutMs: 5000 }));
    assert.ok(e2 instanceof TransportError);
    assert.equal(e2.code, 'ERR_CONNECT');
    assert.match(e2.message, /^cannot connect to wss:\/\/example\.test\/: .*the server does not speak TLS on this port: use ws:\/\/$/s);
  });

  it('an IPv6 target in brackets; no Proxy-Authorization without credentials', async () => {
    const fake = await fakeProxy((socket, received) => whenReceived(socket, received, (b) => b.includes('\r\n\r\n'), () => socket.write('HTTP/1.0 200 OK\r\n\r\n')));
    const socket = await openTunnel(parseProxyUrl(`http://127.0.0.1:${fake.port}`, 'test'), { host: '::1', port: 8443, href: 'wss://[::1]:8443/' }, tunnelOptions());
    socket.destroy();
    assert.equal(Buffer.concat(fake.received).toString('latin1'), 'CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n');
  });

  it('an answer trickled one byte at a time', async () => {
    const answer = Buffer.from('HTTP/1.1 200 OK\r\nVia: 1.1 fake\r\n\r\nX');
    const fake = await fakeProxy((socket, received) =>
      whenReceived(socket, received, (b) => b.includes('\r\n\r\n'), () => {
        let i = 0;
        const next = () => {
          if (i < answer.length && !socket.destroyed) {
            socket.write(answer.subarray(i, ++i));
            setTimeout(next, 1);
          }
        };
        next();
      }),
    );
    const socket = await openTunnel(parseProxyUrl(`http://127.0.0.1:${fake.port}`, 'test'), TARGET, tunnelOptions());
    assert.equal((await readAll(socket, 1)).toString(), 'X');
    socket.destroy();
  });

  it('a refusal names the proxy, the target and the status; 407 says whether credentials were sent', async () => {
    const fake = await fakeProxy((socket, received) =>
      whenReceived(socket, received, (b) => b.includes('\r\n\r\n'), () => {
        const auth = received().includes('Proxy-Authorization');
        socket.end(auth ? 'HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n' : 'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="x"\r\n__proto__: data\r\n\r\n');
      }),
    );
    const e407 = await rejection(openTunnel(parseProxyUrl(`http://127.0.0.1:${fake.port}`, 'test'), TARGET, tunnelOptions()));
    assert.ok(e407 instanceof HandshakeError);
    assert.equal(e407.code, 'ERR_PROXY_AUTH');
    assert.equal(e407.status, 407);
    assert.equal(e407.headers?.['proxy-authenticate'], 'Basic realm="x"');
    assert.equal(Object.getPrototypeOf(e407.headers), null, 'a "__proto__" field stays data');
    assert.equal(e407.headers?.['__proto__'], 'data');
    assert.equal(e407.message, `proxy http://127.0.0.1:${fake.port} refused CONNECT to example.test:443: 407 Proxy Authentication Required (no credentials were sent: put them in the proxy URL, http://user:password@host:port)`);
    const e502 = await rejection(openTunnel(parseProxyUrl(`http://u:hunter2@127.0.0.1:${fake.port}`, 'test'), TARGET, tunnelOptions()));
    assert.ok(e502 instanceof HandshakeError);
    assert.equal(e502.code, 'ERR_PROXY_REFUSED');
    assert.equal(e502.message, `proxy http://127.0.0.1:${fake.port} refused CONNECT to example.test:443: 502 Bad Gateway`);
  });

  it('an answer that is not HTTP, and one larger than maxHeadBytes: ERR_PROXY_PROTOCOL', async () => {
    const garbage = await fakeProxy((socket) => socket.once('data', () => socket.write('SSH-2.0-OpenSSH_9.2\r\n\r\n')));
    const e1 = await rejection(openTunnel(parseProxyUrl(`http://127.0.0.1:${garbage.port}`, 'test'), TARGET, tunnelOptions()));
    assert.ok(e1 instanceof HandshakeError);
    assert.equal(e1.code, 'ERR_PROXY_PROTOCOL');
    assert.match(e1.message, /^proxy http:\/\/127\.0\.0\.1:\d+ answered CONNECT to example\.test:443 with something other than HTTP: /);
    const huge = await fakeProxy((socket) => socket.once('data', () => socket.write('HTTP/1.1 200 OK\r\nX: ' + 'a'.repeat(100_000))));
    const e2 = await rejection(openTunnel(parseProxyUrl(`http://127.0.0.1:${huge.port}`, 'test'), TARGET, tunnelOptions({ maxHeadBytes: 1024 })));
    assert.equal(e2.code, 'ERR_PROXY_PROTOCOL');
    assert.match(e2.message, /larger than 1024 bytes/);
  });

  it('nothing listening, and a proxy that hangs up: ERR_PROXY_CONNECT', async () => {
    const hangup = await fakeProxy((socket) => socket.once('data', () => socket.destroy()));
    const e1 = await rejection(openTunnel(parseProxyUrl(`http://127.0.0.1:${hangup.port}`, 'test'), TARGET, tunnelOptions()));
    assert.ok(e1 instanceof TransportError);
    assert.equal(e1.code, 'ERR_PROXY_CONNECT');
    assert.equal(e1.message, `proxy http://127.0.0.1:${hangup.port} closed the connection before it opened a tunnel to example.test:443 (for wss://example.test/)`);
    const e2 = await rejection(openTunnel(parseProxyUrl('http://u:hunter2@127.0.0.1:1', 'test'), TARGET, tunnelOptions()));
    assert.equal(e2.code, 'ERR_PROXY_CONNECT');
    assert.match(e2.message, /^cannot connect to proxy http:\/\/127\.0\.0\.1:1 \(for wss:\/\/example\.test\/\): connect ECONNREFUSED .*: nothing listens there \(is the proxy running, and on this port\?\)$/);
    assert.equal((e2.cause as NodeJS.ErrnoException).code, 'ECONNREFUSED');
  });

  it("a silent proxy: connect()'s handshake timeout covers the proxy's exchange; abort works there too", async () => {
    const silent = await fakeProxy(() => {});
    const started = Date.now();
    const e1 = await rejection(connect('ws://example.test/', { proxy: `http://127.0.0.1:${silent.port}`, handshakeTimeoutMs: 300 }));
    assert.ok(e1 instanceof TimeoutError);
    assert.equal(e1.code, 'ERR_HANDSHAKE_TIMEOUT');
    assert.match(e1.message, new RegExp(`^opening handshake not finished within 300 ms \\(ws://example\\.test/ through proxy http://127\\.0\\.0\\.1:${silent.port}, which had not opened the tunnel yet\\)$`));
    assert.ok(Date.now() - started < 3000);
    const controller = new AbortController();
    const pending = connect('ws://example.test/', { proxy: `socks5h://127.0.0.1:${silent.port}`, signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    const e2 = await rejection(pending);
    assert.ok(e2 instanceof TransportError);
    assert.equal(e2.code, 'ERR_ABORTED');
  });
});

describe('SOCKS5 against fake proxies', () => {
  /** A SOCKS5 server that accepts no-auth and answers CONNECT with `reply` (after which it sends `then`). */
  const socksFake = (reply: Buffer, then = Buffer.alloc(0)) =>
    fakeProxy((socket, received) => {
      whenReceived(socket, received, (b) => b.length >= 3, () => {
        socket.write(Buffer.from([5, 0]));
        whenReceived(socket, received, (b) => b.length > 3 + 4 && b.length >= 3 + 4 + (b[6] === 3 ? 1 + b[7] : b[6] === 1 ? 4 : 16) + 2, () => socket.write(Buffer.concat([reply, then])));
      });
    });

  it('sends the domain name (socks5h) and keeps the bytes after a reply with a domain-name address', async () => {
    const bound = Buffer.from('relay.example');
    const fake = await socksFake(Buffer.concat([Buffer.from([5, 0, 0, 3, bound.length]), bound, Buffer.from([0x1f, 0x90])]), Buffer.from('AFTER'));
    const socket = await openTunnel(parseProxyUrl(`socks5h://127.0.0.1:${fake.port}`, 'test'), TARGET, tunnelOptions());
    assert.equal((await readAll(socket, 5)).toString(), 'AFTER');
    socket.destroy();
    const name = Buffer.from('example.test');
    assert.deepEqual(Buffer.concat(fake.received), Buffer.concat([Buffer.from([5, 1, 0]), Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([1, 187])]));
  });

  it('socks5 resolves the name here and sends the address; IPv6 targets as 16 bytes', async () => {
    const reply = Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0, 80]);
    const v4 = await socksFake(reply);
    const s1 = await openTunnel(parseProxyUrl(`socks5://127.0.0.1:${v4.port}`, 'test'), { host: 'localhost', port: 8080, href: 'ws://localhost:8080/' }, tunnelOptions());
    s1.destroy();
    assert.deepEqual(Buffer.concat(v4.received).subarray(3), Buffer.from([5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90]));
    const v6 = await socksFake(reply);
    const s2 = await openTunnel(parseProxyUrl(`socks5h://127.0.0.1:${v6.port}`, 'test'), { host: '2001:db8::1:2', port: 443, href: 'wss://[2001:db8::1:2]/' }, tunnelOptions());
    s2.destroy();
    assert.deepEqual(Buffer.concat(v6.received).subarray(3), Buffer.from([5, 1, 0, 4, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 1, 187]));
    const mapped = await socksFake(reply);
    const s3 = await openTunnel(parseProxyUrl(`socks5h://127.0.0.1:${mapped.port}`, 'test'), { host: '::ffff:10.1.2.3', port: 80, href: 'ws://[::ffff:10.1.2.3]/' }, tunnelOptions());
    s3.destroy();
    assert.deepEqual([...Buffer.concat(mapped.received).subarray(3 + 4)], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3, 0, 80]);
  });

  it('socks5:// with a name that does not resolve here: ERR_CONNECT, pointing at socks5h://', async () => {
    const fake = await socksFake(Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]));
    const e = await rejection(openTunnel(parseProxyUrl(`socks5://127.0.0.1:${fake.port}`, 'test'), { host: 'no-such-host.invalid', port: 80, href: 'ws://no-such-host.invalid/' }, tunnelOptions()));
    assert.ok(e instanceof TransportError);
    assert.equal(e.code, 'ERR_CONNECT');
    assert.match(e.message, /^cannot connect to ws:\/\/no-such-host\.invalid\/: .*socks5:\/\/ resolves names locally; socks5h:\/\/ lets the proxy resolve them\)$/);
    assert.equal(fake.received.length, 0, 'the proxy was never dialled');
  });

  it('a reply code names the RFC 1928 meaning; a reply that is not SOCKS5 is ERR_PROXY_PROTOCOL', async () => {
    const refused = await socksFake(Buffer.from([5, 5, 0, 1, 0, 0, 0, 0, 0, 0]));
    const e1 = await rejection(openTunnel(parseProxyUrl(`socks5h://127.0.0.1:${refused.port}`, 'test'), TARGET, tunnelOptions()));
    assert.ok(e1 instanceof TransportError);
    assert.equal(e1.code, 'ERR_PROXY_REFUSED');
    assert.equal(e1.message, `proxy socks5h://127.0.0.1:${refused.port} refused CONNECT to example.test:443: SOCKS reply 5 (connection refused)`);
    const http = await fakeProxy((socket) => socket.once('data', () => socket.write('HTTP/1.1 400 Bad Request\r\n\r\n')));
    const e2 = await rejection(openTunnel(parseProxyUrl(`socks5h://127.0.0.1:${http.port}`, 'test'), TARGET, tunnelOptions()));
    assert.equal(e2.code, 'ERR_PROXY_PROTOCOL');
    assert.match(e2.message, /does not speak SOCKS5: its greeting answer has version 72/);
  });

  it('the username/password exchange (RFC 1929), and its refusal without the password in the message', async () => {
    const fake = await fakeProxy((socket, received) => {
      whenReceived(socket, received, (b) => b.length >= 4, () => {
        socket.write(Buffer.from([5, 2]));
        whenReceived(socket, received, (b) => b.length >= 4 + 2 + 4 + 1 + 7, () => socket.write(Buffer.from([1, 1])));
      });
    });
    const e = await rejection(openTunnel(parseProxyUrl(`socks5h://alice:hunter2@127.0.0.1:${fake.port}`, 'test'), TARGET, tunnelOptions()));
    assert.ok(e instanceof HandshakeError);
    assert.equal(e.code, 'ERR_PROXY_AUTH');
    assert.equal(e.message, `proxy socks5h://127.0.0.1:${fake.port} refused CONNECT to example.test:443: it refused the username and password (RFC 1929 status 1)`);
    assert.deepEqual(Buffer.concat(fake.received), Buffer.concat([Buffer.from([5, 2, 0, 2]), Buffer.from([1, 5]), Buffer.from('alice'), Buffer.from([7]), Buffer.from('hunter2')]));
  });
});

describe('connect() and the proxy option', () => {
  it('a bad maxHeadBytes through an HTTP proxy rejects, as it does without one', async () => {
    const fake = await fakeProxy(() => {});
    const e = await rejection(connect('ws://example.test/', { proxy: `http://127.0.0.1:${fake.port}`, maxHeadBytes: -1, handshakeTimeoutMs: 3000 }));
    assert.ok(e instanceof InvalidArgumentError);
    assert.equal(e.code, 'ERR_BAD_LIMIT');
  });

  it('rejects before dialling for a bad proxy option, the password hidden', async () => {
    const e = await rejection(connect('ws://127.0.0.1:1/', { proxy: 'gopher://user:hunter2@p:70' }));
    assert.ok(e instanceof InvalidArgumentError);
    assert.equal(e.code, 'ERR_BAD_PROXY');
    assert.ok(!e.message.includes('hunter2'));
  });

  it('a ws+unix: target dials its socket, never the proxy', async () => {
    const e = await rejection(connect('ws+unix:///nonexistent/sockeye-proxy-test.sock:/', { proxy: 'http://127.0.0.1:1', handshakeTimeoutMs: 2000 }));
    assert.equal(e.code, 'ERR_CONNECT');
    assert.match(e.message, /no unix socket at that path/);
  });
});
