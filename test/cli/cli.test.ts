// End-to-end tests of the `sockeye` bin: each test spawns the compiled CLI
// (node dist/src/cli/main.js) and talks to it through its stdio, its exit
// status and a server or client of ours in this process.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { connect, createServer, type ServerSession, type WebSocketServer, type Message, type CloseInfo, type UpgradeRequest } from '../../src/index.js';
import { testCert } from '../helpers/certs.js';
import { delay } from '../helpers/ws-pair.js';
import { cli, MAIN, reap, within, WAIT_MS, type Cli } from '../helpers/cli-child.js';
import { freePort } from '../helpers/free-port.js';

/** Runs `sockeye serve ...` and resolves once it prints its listening line. */
async function serve(args: string[], env?: Record<string, string>): Promise<{ c: Cli; url: string; port: number }> {
  const c = cli(['serve', ...args], { env, stdin: null });
  const m = await c.waitFor(/^sockeye: echo server listening on (wss?:\/\/127\.0\.0\.1:(\d+)\/)\n/m);
  return { c, url: m[1], port: Number(m[2]) };
}

/** A server of ours on 127.0.0.1:0. */
async function ourServer(options: Parameters<typeof createServer>[0]): Promise<{ server: WebSocketServer; url: string }> {
  const server = createServer({ keepalive: null, ...options });
  const a = await server.listen(0, '127.0.0.1');
  return { server, url: `ws://127.0.0.1:${a.port}/` };
}

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}


describe('sockeye CLI', { concurrency: 3 }, () => {
  it('is an executable node script', () => {
    assert.equal(readFileSync(MAIN, 'utf8').split('\n')[0], '#!/usr/bin/env node');
  });

  it('prints usage for --help, <cmd> --help and help <cmd>, exit 0', async () => {
    const cases: Array<[string[], string]> = [
      [['--help'], 'Usage: sockeye <command>'],
      [['-h'], 'Usage: sockeye <command>'],
      [['serve', '--help'], 'Usage: sockeye serve'],
      [['connect', '-h'], 'Usage: sockeye connect URL'],
      [['help', 'connect'], 'Usage: sockeye connect URL'],
    ];
    await Promise.all(
      cases.map(async ([args, head]) => {
        const c = cli(args);
        assert.equal(await c.exited(), 0, args.join(' '));
        assert.ok(c.stdout().startsWith(head), `${args.join(' ')}: ${c.stdout()}`);
        assert.equal(c.stderr(), '');
      }),
    );
  });

  it('a bad command line prints the error and the usage to stderr, exit 2', async () => {
    const cases: Array<[string[], RegExp, string]> = [
      [[], /a command is needed/, 'Usage: sockeye <command>'],
      [['frobnicate'], /unknown command "frobnicate"/, 'Usage: sockeye <command>'],
      [['serve', '--bogus'], /Unknown option '--bogus'/, 'Usage: sockeye serve'],
      [['serve', '--port'], /--port/, 'Usage: sockeye serve'],
      [['serve', '--port', '65536'], /port number/, 'Usage: sockeye serve'],
      [['serve', '--tls-cert', 'x.pem'], /--tls-cert and --tls-key go together/, 'Usage: sockeye serve'],
      [['connect'], /connect needs a URL/, 'Usage: sockeye connect'],
      [['connect', 'ftp://127.0.0.1/'], /unsupported scheme/, 'Usage: sockeye connect'],
      [['connect', 'ws://127.0.0.1/', '--header', 'novalue'], /--header takes NAME:VALUE/, 'Usage: sockeye connect'],
      [['connect', 'ws://127.0.0.1/', '--insecure', '--ca', 'x.pem'], /exclude each other/, 'Usage: sockeye connect'],
      [['connect', 'ws://127.0.0.1/', '--frob'], /Unknown option '--frob'/, 'Usage: sockeye connect'],
      // Checked by the handshake builder before any I/O (nothing listens on port 9 anyway).
      [['connect', 'ws://127.0.0.1:9/', '--protocol', 'not a token'], /subprotocol "not a token" is not a token/, 'Usage: sockeye connect'],
      [['connect', 'ws://127.0.0.1:9/', '--header', 'Bad Name: x'], /Bad Name/, 'Usage: sockeye connect'],
      [['connect', 'ws://127.0.0.1:9/', '--header', 'Sec-WebSocket-Key: x'], /Sec-WebSocket-Key/i, 'Usage: sockeye connect'],
    ];
    await Promise.all(
      cases.map(async ([args, re, usage]) => {
        const c = cli(args);
        assert.equal(await c.exited(), 2, args.join(' '));
        assert.match(c.stderr(), re);
        assert.ok(c.stderr().includes(usage), `${args.join(' ')}: ${c.stderr()}`);
        assert.equal(c.stdout(), '');
      }),
    );
  });

  it('serve --port 0 prints its real port; connect sends stdin lines and prints the echoes, exit 0', async () => {
    const s = await serve(['--port', '0']);
    try {
      assert.notEqual(s.port, 0);
      // CRLF and a last line without a newline are lines too; an empty line is an empty message.
      const c = cli(['connect', s.url], { stdin: 'hello\nwörld\r\n\nno newline at the end' });
      assert.equal(await c.exited(), 0, c.stderr());
      assert.equal(c.stdout(), 'hello\nwörld\n\nno newline at the end\n');
      assert.match(c.stderr(), /^sockeye: connected to ws:\/\/127\.0\.0\.1:\d+\/\n/);
      assert.match(c.stderr(), /sockeye: closed 1000\n$/);
    } finally {
      reap(s.c);
    }
  });

  it('a large input (20000 lines, 4 MB) comes back whole and in order', async () => {
    const s = await serve(['--port', '0']);
    try {
      const lines = Array.from({ length: 20_000 }, (_, i) => `${i} ${'x'.repeat(200)}`);
      const input = lines.join('\n') + '\n';
      const c = cli(['connect', s.url], { stdin: input });
      assert.equal(await c.exited(), 0, c.stderr());
      // Compared as a whole: one lost, doubled or reordered line fails it.
      assert.ok(c.stdout() === input, `stdout differs from stdin (${c.stdout().length} vs ${input.length} chars)`);
    } finally {
      reap(s.c);
    }
  });

  it('serve echoes each message with its type', async () => {
    const s = await serve(['--port', '0']);
    try {
      const client = await within(connect(s.url), 'connect');
      const bin = Buffer.from([0, 1, 2, 0xff, 0xfe]);
      client.send('text');
      client.send(bin);
      client.send(Buffer.from('bytes as text'), { binary: false });
      const got: Message[] = [];
      const incoming = client.messages();
      while (got.length < 3) {
        const r = await within(incoming.next(), `echo ${got.length + 1}`);
        if (r.done) break;
        got.push(r.value);
      }
      client.close(1000);
      const info = await within(client.closed, 'client closed');
      assert.deepEqual(
        got.map((m) => [m.binary, m.data.toString('hex')]),
        [
          [false, Buffer.from('text').toString('hex')],
          [true, bin.toString('hex')],
          [false, Buffer.from('bytes as text').toString('hex')],
        ],
      );
      assert.equal(info.code, 1000);
      assert.equal(info.wasClean, true);
    } finally {
      reap(s.c);
    }
  });

  it('SIGTERM: serve closes its clients with 1001 and exits 0', async () => {
    const s = await serve(['--port', '0']);
    try {
      const client = await within(connect(s.url), 'connect');
      client.send('still here');
      // The echo proves the session is open on the server before the signal.
      const first = await within(client.messages().next(), 'first echo');
      assert.equal(first.done, false);
      s.c.child.kill('SIGTERM');
      const info = await within(client.closed, 'client closed');
      assert.equal(info.code, 1001);
      assert.equal(info.reason, 'server shutting down');
      assert.equal(info.wasClean, true);
      assert.equal(await s.c.exited(), 0, s.c.stderr());
      assert.match(s.c.stderr(), /SIGTERM, closing 1 connection with 1001/);
    } finally {
      reap(s.c);
    }
  });

  it('SIGINT: serve exits 0 and a connected `sockeye connect` sees 1001 and exits 0', async () => {
    const s = await serve(['--port', '0']);
    const c = cli(['connect', s.url], { stdin: null });
    try {
      await c.waitFor(/connected to/, 'stderr');
      c.child.stdin.write('before the signal\n');
      await c.waitFor(/^before the signal\n/);
      s.c.child.kill('SIGINT');
      assert.equal(await s.c.exited(), 0, s.c.stderr());
      // stdin is still open: the client exits because the connection ended, not because input did.
      assert.equal(await c.exited(), 0, c.stderr());
      assert.match(c.stderr(), /closed 1001 "server shutting down"/);
    } finally {
      reap(s.c);
      reap(c);
    }
  });

  it('serve --host listens on that address only; an empty --host is a usage error', async () => {
    // Any 127/8 address is loopback on Linux: 127.0.0.2 is an address other than the default.
    const c = cli(['serve', '--port', '0', '--host', '127.0.0.2'], { stdin: null });
    try {
      const m = await c.waitFor(/^sockeye: echo server listening on (ws:\/\/127\.0\.0\.2:(\d+)\/)$/m);
      const client = await connect(m[1], { keepalive: null });
      client.close();
      await within(client.closed, 'close');
      await assert.rejects(connect(`ws://127.0.0.1:${m[2]}/`), /ECONNREFUSED/);
      c.child.kill('SIGTERM');
      assert.equal(await c.exited(), 0, c.stderr());
    } finally {
      reap(c);
    }
    const empty = cli(['serve', '--host', '']);
    assert.equal(await empty.exited(), 2);
    assert.match(empty.stderr(), /--host needs an address/);
  });

  it('PORT sets the port; --port wins over it; a bad PORT is a usage error', async () => {
    const port = await freePort();
    const s = await serve([], { PORT: String(port) });
    reap(s.c);
    assert.equal(s.port, port);
    // With --port, PORT is not even looked at.
    const s2 = await serve(['--port', '0'], { PORT: 'not-a-port' });
    reap(s2.c);
    assert.notEqual(s2.port, 0);
    const bad = cli(['serve'], { env: { PORT: 'not-a-port' } });
    assert.equal(await bad.exited(), 2, bad.stderr());
    assert.match(bad.stderr(), /the PORT environment variable must be a port number/);
  });

  it('connect prints every message that arrives before the close answer, binary as hex, in order', async () => {
    const closed = deferred<CloseInfo>();
    const long = Buffer.alloc(40, 0xab);
    const { server, url } = await ourServer({
      handler: {
        onMessage(session, m) {
          // The client sends its close right after "go" (stdin ends there); these
          // go out before our answer to that close (RFC 6455 section 7.1.2 keeps order).
          if (m.text === 'go') {
            session.send('one');
            session.send(Buffer.from([0, 1, 2, 0xff]));
            session.send('');
            session.send(long);
            session.send(Buffer.from([7]));
            session.send('three');
          }
        },
        onClose(_s, info) {
          closed.resolve(info);
        },
      },
    });
    try {
      const c = cli(['connect', url], { stdin: 'go\n' });
      assert.equal(await c.exited(), 0, c.stderr());
      assert.equal(c.stdout(), ['one', '<binary 4 bytes: 000102ff>', '', `<binary 40 bytes: ${'ab'.repeat(32)}...>`, '<binary 1 byte: 07>', 'three', ''].join('\n'));
      const info = await within(closed.promise, 'server onClose');
      assert.equal(info.code, 1000);
      assert.equal(info.wasClean, true);
    } finally {
      await within(server.close(), 'server close');
    }
  });

  it('--echo sends every message back with its type and exits 0 when the server closes', async () => {
    const sent: Array<{ binary: boolean; data: Buffer }> = [
      { binary: false, data: Buffer.from('ping-1') },
      { binary: true, data: Buffer.from([0x00, 0x80, 0xff, 0x10]) },
      { binary: false, data: Buffer.from('ünïcødé ✓') },
      { binary: true, data: Buffer.alloc(70_000, 0x5a) },
    ];
    const back: Array<{ binary: boolean; data: Buffer }> = [];
    const closed = deferred<CloseInfo>();
    const { server, url } = await ourServer({
      handler: {
        onOpen(session) {
          for (const m of sent) session.send(m.data, { binary: m.binary });
        },
        onMessage(session, m) {
          back.push({ binary: m.binary, data: m.data });
          if (back.length === sent.length) session.close(1000, 'done');
        },
        onClose(_s, info) {
          closed.resolve(info);
        },
      },
    });
    // stdin stays open: in echo mode it is not read, and the end of the connection ends the client.
    const c = cli(['connect', url, '--echo'], { stdin: null });
    try {
      assert.equal(await c.exited(), 0, c.stderr());
      assert.deepEqual(back, sent);
      assert.equal((await within(closed.promise, 'server onClose')).wasClean, true);
      assert.match(c.stderr(), /closed 1000 "done"/);
      assert.equal(c.stdout().split('\n').length, sent.length + 1);
    } finally {
      reap(c);
      await within(server.close(), 'server close');
    }
  });

  it('--echo paces: a server that sends more than maxQueuedBytes and reads its echoes late gets every echo, no 1013', { timeout: 60_000 }, async () => {
    // 48 messages of 1 MiB: more than the client's default maxQueuedBytes (40 MiB) if it echoed without pacing.
    const COUNT = 48;
    const SIZE = 1 << 20;
    const payload = (i: number) => Buffer.alloc(SIZE, i & 0xff);
    let got = 0;
    let wrong = 0;
    const closed = deferred<CloseInfo>();
    const { server, url } = await ourServer({
      handler: {
        onOpen(session) {
          // The server reads none of its echoes for a second, then reads them slowly: an echo that did not
          // pace would queue all 48 MiB meanwhile and pass maxQueuedBytes.
          session.pauseReading();
          setTimeout(() => session.resumeReading(), 1000);
          void (async () => {
            for (let i = 0; i < COUNT; i++) {
              while (session.state === 'open' && session.bufferedAmount > 4 * SIZE) await delay(5);
              session.send(payload(i));
            }
          })();
        },
        onMessage(session, m) {
          if (!m.data.equals(payload(got))) wrong++;
          got++;
          if (got === COUNT) session.close(1000, 'done');
          else if (got % 8 === 0) {
            session.pauseReading();
            setTimeout(() => session.resumeReading(), 20);
          }
        },
        onClose(_s, info) {
          closed.resolve(info);
        },
      },
    });
    const c = cli(['connect', url, '--echo'], { stdin: null });
    try {
      assert.equal(await c.exited(), 0, c.stderr());
      assert.equal(got, COUNT, 'every echo came back');
      assert.equal(wrong, 0, 'each intact and in order');
      assert.equal((await within(closed.promise, 'server onClose')).code, 1000, 'closed by the server, not with 1013');
      assert.doesNotMatch(c.stderr(), /dropped|1013/);
    } finally {
      reap(c);
      await within(server.close(), 'server close');
    }
  });

  it('--echo exits 0 when it is the side that closes (SIGINT sends 1000)', async () => {
    const closed = deferred<CloseInfo>();
    const echoed = deferred<string>();
    const { server, url } = await ourServer({
      handler: {
        onOpen(session) {
          session.send('mirror me');
        },
        onMessage(_s, m) {
          echoed.resolve(m.text);
        },
        onClose(_s, info) {
          closed.resolve(info);
        },
      },
    });
    const c = cli(['connect', url, '--echo'], { stdin: null });
    try {
      assert.equal(await within(echoed.promise, 'echo'), 'mirror me');
      c.child.kill('SIGINT');
      assert.equal(await c.exited(), 0, c.stderr());
      const info = await within(closed.promise, 'server onClose');
      assert.equal(info.code, 1000);
      assert.equal(info.wasClean, true);
    } finally {
      reap(c);
      await within(server.close(), 'server close');
    }
  });

  it('--header fields arrive at the server', async () => {
    const seen = deferred<UpgradeRequest>();
    const { server, url } = await ourServer({
      verifyClient(req) {
        seen.resolve(req);
        return true;
      },
      handler: {},
    });
    try {
      const c = cli(['connect', url, '--header', 'X-Token: abc def', '--header', 'X-Empty:', '--header', 'X-Colon:a:b']);
      assert.equal(await c.exited(), 0, c.stderr());
      const req = await within(seen.promise, 'verifyClient');
      assert.deepEqual(req.headers.get('x-token'), ['abc def']);
      assert.deepEqual(req.headers.get('x-empty'), ['']);
      assert.deepEqual(req.headers.get('x-colon'), ['a:b']);
    } finally {
      await within(server.close(), 'server close');
    }
  });

  it('--protocol offers subprotocols in order and reports the one picked', async () => {
    const opened = deferred<ServerSession>();
    const { server, url } = await ourServer({
      protocols: {
        chat: {
          onOpen(session) {
            opened.resolve(session);
          },
        },
        other: {},
      },
    });
    try {
      const c = cli(['connect', url, '--protocol', 'nope', '--protocol', 'chat', '--protocol', 'other']);
      assert.equal(await c.exited(), 0, c.stderr());
      const session = await within(opened.promise, 'onOpen');
      assert.equal(session.protocol, 'chat');
      assert.deepEqual(session.request.protocols, ['nope', 'chat', 'other']);
      assert.match(c.stderr(), /connected to ws:\/\/127\.0\.0\.1:\d+\/ \(subprotocol chat\)/);
    } finally {
      await within(server.close(), 'server close');
    }
  });

  it('wss: serve --tls-cert/--tls-key; connect with --ca or --insecure, and fails without either', async () => {
    const cert = testCert();
    const s = await serve(['--port', '0', '--tls-cert', cert.certPath, '--tls-key', cert.keyPath]);
    try {
      assert.match(s.url, /^wss:\/\//);
      const [withCa, insecure, untrusted] = [
        cli(['connect', s.url, '--ca', cert.certPath], { stdin: 'over tls\n' }),
        cli(['connect', s.url, '--insecure'], { stdin: 'insecure but encrypted\n' }),
        cli(['connect', s.url], { stdin: 'never sent\n' }),
      ];
      assert.equal(await withCa.exited(), 0, withCa.stderr());
      assert.equal(withCa.stdout(), 'over tls\n');
      assert.equal(await insecure.exited(), 0, insecure.stderr());
      assert.equal(insecure.stdout(), 'insecure but encrypted\n');
      // A self-signed certificate is not trusted by default.
      assert.equal(await untrusted.exited(), 1);
      assert.match(untrusted.stderr(), /certificate/i);
      assert.equal(untrusted.stdout(), '');
    } finally {
      reap(s.c);
    }
  });

  it('connect --http2 opens the WebSocket over HTTP/2 and says so; against an HTTP/1.1-only server it falls back', async () => {
    const cert = testCert();
    const s = await serve(['--port', '0', '--tls-cert', cert.certPath, '--tls-key', cert.keyPath]);
    const plain = await serve(['--port', '0']);
    try {
      const [h2, h1] = [cli(['connect', s.url, '--http2', '--ca', cert.certPath], { stdin: 'over h2\n' }), cli(['connect', plain.url, '--http2'], { stdin: 'over h1\n' })];
      assert.equal(await h2.exited(), 0, h2.stderr());
      assert.equal(h2.stdout(), 'over h2\n');
      assert.match(h2.stderr(), /\(HTTP\/2\)\n/);
      assert.equal(await h1.exited(), 0, h1.stderr());
      assert.equal(h1.stdout(), 'over h1\n');
      assert.doesNotMatch(h1.stderr(), /HTTP\/2/);
    } finally {
      reap(s.c);
      reap(plain.c);
    }
  });

  it('failures go to stderr with exit 1: refused, handshake refused, abnormal close, error close, unreadable --ca', async () => {
    const port = await freePort();
    const { server, url } = await ourServer({
      verifyClient: (req) => (req.path === '/forbidden' ? { status: 403, message: 'go away' } : true),
      handler: {
        onMessage(session, m) {
          if (m.text === 'drop') session.terminate();
          if (m.text === 'fail') session.close(1011, 'broken');
        },
      },
    });
    try {
      const runs = await Promise.all(
        [
          { args: ['connect', `ws://127.0.0.1:${port}/`], re: /ECONNREFUSED/ },
          { args: ['connect', url + 'forbidden'], re: /server answered 403/ },
          { args: ['connect', url], stdin: 'drop\n', re: /closed abnormally \(1006\)/ },
          { args: ['connect', url], stdin: 'fail\n', re: /closed 1011 "broken"/ },
          { args: ['connect', url, '--ca', '/nonexistent/ca.pem'], re: /cannot read --ca/ },
        ].map(async (t) => {
          const c = cli(t.args, { stdin: t.stdin === undefined ? '' : null });
          if (t.stdin !== undefined) c.child.stdin.write(t.stdin);
          const code = await c.exited();
          return { t, code, stderr: c.stderr(), stdout: c.stdout() };
        }),
      );
      for (const r of runs) {
        assert.equal(r.code, 1, `${r.t.args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, r.t.re);
        assert.equal(r.stdout, '');
      }
    } finally {
      await within(server.close(), 'server close');
    }
  });

  it('short flags: -p offers a subprotocol, -H adds a header, -k accepts a self-signed certificate', async () => {
    const cert = testCert();
    const seen = deferred<UpgradeRequest>();
    const server = createServer({
      keepalive: null,
      tls: { key: cert.key, cert: cert.cert },
      verifyClient(req) {
        seen.resolve(req);
        return true;
      },
      protocols: { chat: {} },
    });
    const a = await server.listen(0, '127.0.0.1');
    try {
      const c = cli(['connect', `wss://127.0.0.1:${a.port}/`, '-p', 'chat', '-H', 'X-Token: t1', '-k']);
      assert.equal(await c.exited(), 0, c.stderr());
      const req = await within(seen.promise, 'verifyClient');
      assert.deepEqual(req.protocols, ['chat']);
      assert.deepEqual(req.headers.get('x-token'), ['t1']);
      assert.match(c.stderr(), /\(subprotocol chat\)/);
    } finally {
      await within(server.close(), 'server close');
    }
  });

  it('--newline sends each line with its line feed; without it, the line alone', async () => {
    for (const [flags, want] of [[['-n'], ['reset\n', 'closeme\n']], [[], ['reset', 'closeme']]] as const) {
      const got: string[] = [];
      const { server, url } = await ourServer({ handler: { onMessage: (_s, m) => void got.push(m.text) } });
      try {
        const c = cli(['connect', url, ...flags], { stdin: 'reset\ncloseme\n' });
        assert.equal(await c.exited(), 0, c.stderr());
        assert.deepEqual(got, want);
      } finally {
        await within(server.close(), 'server close');
      }
    }
  });

  it('--binary hex and base64: each line is one binary message; a line that does not decode is refused and counted', async () => {
    for (const [format, input] of [['hex', '00ff10\nzz\n'], ['base64', 'AP8Q\n*\n']] as const) {
      const got: Message[] = [];
      const { server, url } = await ourServer({ handler: { onMessage: (_s, m) => void got.push(m) } });
      try {
        const c = cli(['connect', url, '--binary', format], { stdin: input });
        assert.equal(await c.exited(), 0, c.stderr());
        assert.equal(got.length, 1, format);
        assert.equal(got[0].binary, true);
        assert.deepEqual(got[0].data, Buffer.from([0x00, 0xff, 0x10]));
        assert.match(c.stderr(), new RegExp(`line not sent: not ${format}`));
        assert.match(c.stderr(), /1 message was not sent/);
      } finally {
        await within(server.close(), 'server close');
      }
    }
  });

  it('--show-control prints pings and pongs and the close; --ping sends pings on a timer', async () => {
    let pingsSeen = 0;
    const { server, url } = await ourServer({
      handler: {
        onOpen(s) {
          s.ping(Buffer.from('hi'));
        },
        onPing() {
          if (++pingsSeen === 2) for (const s of server.clients) s.close(4000, 'enough');
        },
      },
    });
    try {
      const c = cli(['connect', url, '--show-control', '--ping', '0.05'], { stdin: null });
      assert.equal(await c.exited(), 1, c.stderr());
      const out = c.stdout();
      assert.match(out, /^<ping 6869>$/m);
      assert.match(out, /^<pong >$/m);
      assert.match(out, /^<close 4000 enough>$/m);
      assert.equal(pingsSeen, 2);
    } finally {
      await within(server.close(), 'server close');
    }
  });

  it('--deflate offers permessage-deflate and says it was agreed', async () => {
    const got: string[] = [];
    const { server, url } = await ourServer({ perMessageDeflate: true, handler: { onMessage: (_s, m) => void got.push(m.text) } });
    try {
      const text = 'compress me '.repeat(200);
      const c = cli(['connect', url, '--deflate'], { stdin: text + '\n' });
      assert.equal(await c.exited(), 0, c.stderr());
      assert.match(c.stderr(), /\(extensions permessage-deflate\)/);
      assert.deepEqual(got, [text]);
    } finally {
      await within(server.close(), 'server close');
    }
  });

  it('--handshake-timeout gives up on a server that never answers', async () => {
    const sockets: Array<import('node:net').Socket> = [];
    const silent = createNetServer((socket) => {
      sockets.push(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const port = (silent.address() as { port: number }).port;
      const started = Date.now();
      const c = cli(['connect', `ws://127.0.0.1:${port}/`, '--handshake-timeout', '300'], { stdin: null });
      assert.equal(await c.exited(), 1);
      assert.match(c.stderr(), /opening handshake not finished within 300 ms/);
      assert.ok(Date.now() - started < WAIT_MS);
    } finally {
      for (const socket of sockets) socket.destroy();
      await within(new Promise<void>((resolve) => silent.close(() => resolve())), 'the silent server to close');
    }
  });

  it('the new options check their values: a bad one is a usage error, exit 2', async () => {
    for (const [args, re] of [
      [['--binary', 'octal'], /--binary takes hex or base64/],
      [['--binary', 'hex', '-n'], /--newline applies to text lines/],
      [['--ping', '0'], /--ping takes a number of seconds above 0/],
      [['--handshake-timeout', 'soon'], /--handshake-timeout takes a whole number of milliseconds/],
      [['--output', 'octal'], /--output takes hex or base64/],
    ] as const) {
      const c = cli(['connect', 'ws://127.0.0.1:1/', ...args]);
      assert.equal(await c.exited(), 2, args.join(' '));
      assert.match(c.stderr(), re);
    }
  });

  it('--once: after stdin, replies are still printed until --wait passes with nothing new; then a clean close', async () => {
    const { server, url } = await ourServer({
      handler: {
        onMessage(session, m) {
          // Late replies: a plain connect would have closed before them.
          setTimeout(() => session.state === 'open' && session.send(`re: ${m.text}`), 150);
        },
      },
    });
    try {
      const c = cli(['connect', url, '--once', '--wait', '600'], { stdin: 'a\nb\n' });
      assert.equal(await c.exited(), 0, c.stderr());
      assert.equal(c.stdout(), 're: a\nre: b\n');
      assert.match(c.stderr(), /closed 1000/);
    } finally {
      await within(server.close(), 'server close');
    }
  });

  it('--once ends as soon as the server closes', async () => {
    const { server, url } = await ourServer({ handler: { onMessage: (s) => s.close(1000, 'done') } });
    try {
      const started = Date.now();
      const c = cli(['connect', url, '--once', '--wait', '10000'], { stdin: 'hi\n' });
      assert.equal(await c.exited(), 0, c.stderr());
      assert.ok(Date.now() - started < 9000, 'did not wait for --wait');
      assert.match(c.stderr(), /closed 1000 "done"/);
    } finally {
      await within(server.close(), 'server close');
    }
  });

  it('listen: prints what clients send, sends each stdin line to all of them, closes them with 1001 on SIGTERM', async () => {
    const c = cli(['listen', '--port', '0', '--show-control'], { stdin: null });
    try {
      const m = await c.waitFor(/^sockeye: listening on (ws:\/\/127\.0\.0\.1:\d+\/)$/m);
      const a = await connect(m[1], { keepalive: null });
      const b = await connect(m[1], { keepalive: null });
      a.send('from a');
      b.send(Buffer.from([1, 2, 3]));
      await c.waitFor(/^from a$/m);
      await c.waitFor(/^<binary 3 bytes: 010203>$/m);
      await c.waitFor(/client 2 connected/, 'stderr');
      c.child.stdin.write('to all\n');
      for (const client of [a, b]) {
        const got = await within(client.messages().next(), 'the line');
        assert.equal(got.value?.text, 'to all');
      }
      c.child.kill('SIGTERM');
      for (const client of [a, b]) assert.equal((await within(client.closed, 'close')).code, 1001);
      assert.equal(await c.exited(), 0, c.stderr());
      // Each client's close as the server saw it: the client's answer, which repeats the code.
      assert.equal(c.stdout().match(/^<close 1001>$/gm)?.length, 2);
    } finally {
      reap(c);
    }
  });

  it('connect --output base64 and listen --output hex print binary messages whole', async () => {
    const payload = Buffer.alloc(100, 0xab);
    const { server, url } = await ourServer({ handler: { onOpen: (s) => void s.send(payload) } });
    try {
      const c = cli(['connect', url, '--output', 'base64', '--once', '--wait', '300'], { stdin: '' });
      assert.equal(await c.exited(), 0, c.stderr());
      assert.equal(c.stdout(), payload.toString('base64') + '\n');
    } finally {
      await within(server.close(), 'server close');
    }
    const l = cli(['listen', '--port', '0', '--output', 'hex'], { stdin: null });
    try {
      const m = await l.waitFor(/^sockeye: listening on (ws:\/\/127\.0\.0\.1:\d+\/)$/m);
      const a = await connect(m[1], { keepalive: null });
      a.send(payload);
      await l.waitFor(new RegExp(`^${'ab'.repeat(100)}$`, 'm'));
      a.close();
      await within(a.closed, 'close');
      l.child.kill('SIGTERM');
      assert.equal(await l.exited(), 0, l.stderr());
    } finally {
      reap(l);
    }
  });

  it('listen -p: only clients offering one of its subprotocols are accepted', async () => {
    const c = cli(['listen', '--port', '0', '-p', 'chat'], { stdin: null });
    try {
      const m = await c.waitFor(/^sockeye: listening on (ws:\/\/127\.0\.0\.1:\d+\/)$/m);
      await assert.rejects(connect(m[1]), /400/);
      const ok = await connect(m[1], { protocol: 'chat', keepalive: null });
      assert.equal(ok.protocol, 'chat');
      ok.send('in chat');
      await c.waitFor(/^in chat$/m);
      ok.close();
      await within(ok.closed, 'close');
      c.child.kill('SIGTERM');
      assert.equal(await c.exited(), 0, c.stderr());
    } finally {
      reap(c);
    }
  });

  it('listen --tls-self-signed prints its certificate path; a client trusting that file gets wss://; the file goes at exit', async () => {
    const c = cli(['listen', '--port', '0', '--host', '127.0.0.1', '--tls-self-signed', '-n', '--binary', 'hex', '--show-control'], { stdin: null });
    try {
      const cert = await c.waitFor(/^sockeye: self-signed certificate at (\S+) \(sockeye connect --ca \1 wss:\/\/127\.0\.0\.1:\d+\/\)$/m);
      const m = await c.waitFor(/^sockeye: listening on (wss:\/\/127\.0\.0\.1:\d+\/)$/m);
      // Without the certificate the client refuses the server; with it, it connects.
      await assert.rejects(connect(m[1], { keepalive: null }), /not trusted/);
      const a = await connect(m[1], { keepalive: null, tls: { ca: readFileSync(cert[1]) } });
      // --binary hex: each stdin line is one binary message (-n does not apply to binary lines).
      c.child.stdin.write('00ff10\n');
      const got = await within(a.messages().next(), 'the binary line');
      assert.equal(got.value?.binary, true);
      assert.deepEqual(got.value?.data, Buffer.from([0x00, 0xff, 0x10]));
      a.ping(Buffer.from('hi'));
      await c.waitFor(/^<ping 6869>$/m);
      a.close(1000, 'bye');
      await within(a.closed, 'close');
      await c.waitFor(/^<close 1000 bye>$/m);
      c.child.kill('SIGTERM');
      assert.equal(await c.exited(), 0, c.stderr());
      assert.equal(existsSync(cert[1]), false, 'the certificate file is removed at exit');
    } finally {
      reap(c);
    }
    const both = cli(['listen', '--tls-self-signed', '--tls-cert', 'c.pem', '--tls-key', 'k.pem']);
    assert.equal(await both.exited(), 2);
    assert.match(both.stderr(), /--tls-self-signed or --tls-cert\/--tls-key, not both/);
  });

  it('listen --tls-cert/--tls-key serves wss://; -n sends each stdin line with its line feed', async () => {
    const { cert, certPath, keyPath } = testCert();
    const c = cli(['listen', '--port', '0', '--tls-cert', certPath, '--tls-key', keyPath, '-n'], { stdin: null });
    try {
      const m = await c.waitFor(/^sockeye: listening on (wss:\/\/127\.0\.0\.1:\d+\/)$/m);
      const a = await connect(m[1], { keepalive: null, tls: { ca: cert } });
      await c.waitFor(/client 1 connected/, 'stderr');
      c.child.stdin.write('reset\n');
      const got = await within(a.messages().next(), 'the line');
      assert.equal(got.value?.text, 'reset\n');
      a.close();
      await within(a.closed, 'close');
      c.child.kill('SIGTERM');
      assert.equal(await c.exited(), 0, c.stderr());
    } finally {
      reap(c);
    }
    const missing = cli(['listen', '--port', '0', '--tls-cert', certPath + '.missing', '--tls-key', keyPath]);
    assert.equal(await missing.exited(), 1);
    assert.match(missing.stderr(), /cannot read the TLS certificate or key/);
  });

  it('--reconnect: a refused connection is tried again until SIGINT; a 403 ends it at once', async () => {
    const port = await freePort();
    const c = cli(['connect', `ws://127.0.0.1:${port}/`, '--reconnect'], { stdin: null });
    try {
      await c.waitFor(/ECONNREFUSED.*; reconnecting in \d+ ms \(attempt 1\)/, 'stderr');
      await c.waitFor(/\(attempt 2\)/, 'stderr');
      c.child.kill('SIGINT');
      assert.equal(await c.exited(), 1);
      assert.match(c.stderr(), /stopped before connecting/);
    } finally {
      reap(c);
    }
    const { server, url } = await ourServer({ handler: {}, verifyClient: () => false });
    try {
      const refused = cli(['connect', url, '--reconnect'], { stdin: null });
      try {
        assert.equal(await refused.exited(), 1);
        assert.match(refused.stderr(), /403/);
        assert.doesNotMatch(refused.stderr(), /reconnecting/);
      } finally {
        reap(refused);
      }
    } finally {
      await within(server.close(), 'server close');
    }
  });

  it('--wait without --once, and a bad --binary for listen, are usage errors', async () => {
    const a = cli(['connect', 'ws://127.0.0.1:1/', '--wait', '100']);
    assert.equal(await a.exited(), 2);
    assert.match(a.stderr(), /--wait goes with --once/);
    const b = cli(['listen', '--binary', 'octal']);
    assert.equal(await b.exited(), 2);
    assert.match(b.stderr(), /--binary takes hex or base64/);
  });
});
