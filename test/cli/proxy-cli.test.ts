/**
 * `sockeye connect --proxy URL` and `--no-proxy`, end to end: the CLI as a
 * child process (its own environment, so nothing here touches process.env),
 * a sockeye echo server in this process, and tinyproxy and microsocks with a
 * recording relay in front, to see that a connection did (or did not) go
 * through the proxy.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type WebSocketServer } from '../../src/index.js';
import { cli, reap, type Cli } from '../helpers/cli-child.js';
import { requirePeer } from '../helpers/peers.js';
import { microsocksAvailable, startMicrosocks, startRecorder, startTinyproxy, tinyproxyAvailable, type Recorder, type Running } from '../helpers/proxies.js';

const skip = requirePeer('tinyproxy', tinyproxyAvailable(), 'apt-get install tinyproxy') || requirePeer('microsocks', microsocksAvailable(), 'apt-get install microsocks');

/** Every proxy variable empty (curl reads empty as unset): the runner's own environment must not leak into these tests. */
const NO_ENV_PROXY: Record<string, string> = Object.fromEntries(
  ['ws_proxy', 'WS_PROXY', 'wss_proxy', 'WSS_PROXY', 'http_proxy', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY', 'no_proxy', 'NO_PROXY'].map((n) => [n, '']),
);

const stops: Array<() => Promise<void>> = [];
const children: Cli[] = [];
after(async () => {
  for (const c of children) reap(c);
  for (const stop of stops.reverse()) await stop().catch(() => {});
});

function run(args: string[], env: Record<string, string> = {}, stdin = 'hello\n'): Cli {
  const c = cli(args, { env: { ...NO_ENV_PROXY, ...env }, stdin });
  children.push(c);
  return c;
}

describe('sockeye connect through a proxy', { skip }, () => {
  let echoPort: number;
  let http: Running;
  let httpRelay: Recorder;
  let authed: Running;
  let socks: Running;
  let socksRelay: Recorder;

  before(async () => {
    const server: WebSocketServer = createServer({ keepalive: null, handler: { onMessage: (s, m) => void s.send(m.text) }, onError: () => {} });
    echoPort = (await server.listen(0, '127.0.0.1')).port;
    stops.push(() => server.close());
    http = await startTinyproxy({ connectPorts: [echoPort] });
    stops.push(() => http.stop());
    authed = await startTinyproxy({ connectPorts: [echoPort], auth: { user: 'cliuser', password: 'cli-secret-77' } });
    stops.push(() => authed.stop());
    httpRelay = await startRecorder(http.port);
    stops.push(() => httpRelay.close());
    socks = await startMicrosocks();
    stops.push(() => socks.stop());
    socksRelay = await startRecorder(socks.port);
    stops.push(() => socksRelay.close());
  });

  it('--proxy http://... and --proxy socks5h://...: the echo comes back through the proxy', async () => {
    const before = [httpRelay.connections.length, socksRelay.connections.length];
    for (const proxy of [`http://127.0.0.1:${httpRelay.port}`, `socks5h://127.0.0.1:${socksRelay.port}`]) {
      const c = run(['connect', `ws://127.0.0.1:${echoPort}/`, '--proxy', proxy, '--once', '--wait', '300']);
      assert.equal(await c.exited(), 0, c.stderr());
      assert.equal(c.stdout(), 'hello\n');
    }
    assert.equal(httpRelay.connections.length, before[0] + 1);
    assert.match(Buffer.concat(httpRelay.connections[before[0]].up).toString('latin1'), new RegExp(`^CONNECT 127\\.0\\.0\\.1:${echoPort} HTTP/1\\.1\\r\\n`));
    assert.equal(socksRelay.connections.length, before[1] + 1);
  });

  it('the environment names the proxy (http_proxy for ws://); --no-proxy goes direct; no_proxy excludes the host', async () => {
    const count = () => httpRelay.connections.length;
    const env = { http_proxy: `http://127.0.0.1:${httpRelay.port}` };
    let before = count();
    const viaEnv = run(['connect', `ws://127.0.0.1:${echoPort}/`, '--once', '--wait', '300'], env);
    assert.equal(await viaEnv.exited(), 0, viaEnv.stderr());
    assert.equal(viaEnv.stdout(), 'hello\n');
    assert.equal(count(), before + 1, 'through the proxy of the environment');

    before = count();
    const direct = run(['connect', `ws://127.0.0.1:${echoPort}/`, '--no-proxy', '--once', '--wait', '300'], env);
    assert.equal(await direct.exited(), 0, direct.stderr());
    assert.equal(direct.stdout(), 'hello\n');
    const excluded = run(['connect', `ws://127.0.0.1:${echoPort}/`, '--once', '--wait', '300'], { ...env, no_proxy: `127.0.0.0/8` });
    assert.equal(await excluded.exited(), 0, excluded.stderr());
    assert.equal(count(), before, 'neither went through the proxy');
  });

  it('a dead proxy in the environment fails the connection, naming the proxy; --no-proxy ignores it', async () => {
    const env = { http_proxy: 'http://127.0.0.1:1' };
    const failed = run(['connect', `ws://127.0.0.1:${echoPort}/`], env);
    assert.equal(await failed.exited(), 1);
    assert.match(failed.stderr(), /^sockeye: cannot connect to proxy http:\/\/127\.0\.0\.1:1 \(for ws:\/\/127\.0\.0\.1:\d+\/\): .*nothing listens there/m);
    const direct = run(['connect', `ws://127.0.0.1:${echoPort}/`, '--no-proxy', '--once', '--wait', '300'], env);
    assert.equal(await direct.exited(), 0, direct.stderr());
  });

  it('a proxy that wants credentials: exit 1 with its status, the password never printed', async () => {
    const none = run(['connect', `ws://127.0.0.1:${echoPort}/`, '--proxy', `http://127.0.0.1:${authed.port}`]);
    assert.equal(await none.exited(), 1);
    assert.match(none.stderr(), new RegExp(`^sockeye: proxy http://127\\.0\\.0\\.1:${authed.port} refused CONNECT to 127\\.0\\.0\\.1:${echoPort}: 407 Proxy Authentication Required`, 'm'));
    const wrong = run(['connect', `ws://127.0.0.1:${echoPort}/`, '--proxy', `http://cliuser:not-cli-secret-77@127.0.0.1:${authed.port}`]);
    assert.equal(await wrong.exited(), 1);
    assert.match(wrong.stderr(), /refused CONNECT .*it refused the credentials in the proxy URL/);
    assert.ok(!wrong.stderr().includes('cli-secret-77') && !wrong.stdout().includes('cli-secret-77'));
    const ok = run(['connect', `ws://127.0.0.1:${echoPort}/`, '--proxy', `http://cliuser:cli-secret-77@127.0.0.1:${authed.port}`, '--once', '--wait', '300']);
    assert.equal(await ok.exited(), 0, ok.stderr());
    assert.equal(ok.stdout(), 'hello\n');
  });

  it('usage errors, exit 2: --proxy with --no-proxy, with --unix, a bad proxy URL (its password hidden)', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--proxy', 'http://p:1', '--no-proxy'], /--proxy and --no-proxy exclude each other/],
      [['--proxy', 'http://p:1', '--unix', '/tmp/x.sock'], /--proxy does not apply to a unix socket/],
      [['--proxy', 'ftp://me:topsecret@p:21'], /bad proxy URL ftp:\/\/\*\*\*@p:21 \(from the proxy option\): unsupported scheme ftp:/],
    ];
    for (const [args, re] of cases) {
      const c = run(['connect', `ws://127.0.0.1:${echoPort}/`, ...args]);
      assert.equal(await c.exited(), 2, args.join(' '));
      assert.match(c.stderr(), re);
      assert.ok(!c.stderr().includes('topsecret'));
    }
    const badEnv = run(['connect', `ws://127.0.0.1:${echoPort}/`], { all_proxy: 'socks4://me:topsecret@p:1080' });
    assert.equal(await badEnv.exited(), 2);
    assert.match(badEnv.stderr(), /bad proxy URL socks4:\/\/\*\*\*@p:1080 \(from the environment variable all_proxy\)/);
    assert.ok(!badEnv.stderr().includes('topsecret'));
  });

  it('--help lists --proxy and --no-proxy', async () => {
    const c = run(['connect', '--help']);
    assert.equal(await c.exited(), 0);
    assert.match(c.stdout(), /^ {2}--proxy URL {8}go through this proxy/m);
    assert.match(c.stdout(), /^ {2}--no-proxy {9}go direct, whatever the environment says$/m);
  });
});
