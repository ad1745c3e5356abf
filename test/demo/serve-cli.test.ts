/**
 * `sockeye serve` (what `npm start` runs) is the demo server: the demo page
 * from the repository's demo-page/ over HTTP(S) and the libwebsockets test
 * protocols plus echo over WebSocket, on one port.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { connect } from '../../src/index.js';
import { withTimeout } from '../helpers/ws-pair.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const INDEX = fileURLToPath(new URL('../../../demo-page/index.html', import.meta.url));
const WAIT_MS = 20_000;

interface Served {
  child: ChildProcessWithoutNullStreams;
  out: () => string;
  err: () => string;
  port: number;
  exited: Promise<number | null>;
}

function run(args: string[]): { child: ChildProcessWithoutNullStreams; out: () => string; err: () => string; exited: Promise<number | null> } {
  const env = { ...process.env };
  delete env.PORT;
  const child = spawn(process.execPath, [MAIN, ...args], { env, stdio: 'pipe' });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return { child, out: () => out, err: () => err, exited };
}

async function serve(args: string[]): Promise<Served> {
  const r = run(['serve', '--port', '0', ...args]);
  const deadline = Date.now() + WAIT_MS;
  const line = /^sockeye: echo server listening on wss?:\/\/127\.0\.0\.1:(\d+)\/$/m;
  for (;;) {
    const m = line.exec(r.out());
    if (m) return { ...r, port: Number(m[1]) };
    if (Date.now() > deadline || r.child.exitCode !== null) {
      r.child.kill('SIGKILL');
      throw new Error(`no listening line\nstdout: ${r.out()}\nstderr: ${r.err()}`);
    }
    await new Promise((res) => setTimeout(res, 20));
  }
}

function reap(s: { child: ChildProcessWithoutNullStreams }): void {
  if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
}

async function stop(s: Served): Promise<void> {
  s.child.kill('SIGTERM');
  const code = await withTimeout(s.exited, WAIT_MS, 'serve to exit');
  assert.equal(code, 0, `stderr: ${s.err()}`);
}

describe('sockeye serve: the demo server', () => {
  it('serves demo-page/ and every protocol on one port, and exits 0 on SIGTERM', async () => {
    const s = await serve([]);
    try {
      assert.match(s.out(), new RegExp(`^sockeye: demo page at http://127\\.0\\.0\\.1:${s.port}/ `, 'm'));
      const page = await withTimeout(
        new Promise<{ status: number; type: string | undefined; body: Buffer }>((resolve, reject) => {
          httpGet({ host: '127.0.0.1', port: s.port, path: '/', agent: false }, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body: Buffer.concat(chunks) }));
          }).on('error', reject);
        }),
        WAIT_MS,
        'GET /',
      );
      assert.equal(page.status, 200);
      assert.equal(page.type, 'text/html; charset=utf-8');
      assert.ok(page.body.equals(readFileSync(INDEX)), 'the body is demo-page/index.html');
      const dumb = await connect(`ws://127.0.0.1:${s.port}/`, { protocol: 'dumb-increment-protocol' });
      const it = dumb.messages();
      assert.equal((await withTimeout(it.next(), WAIT_MS, 'a number')).value?.text, '0');
      assert.equal((await withTimeout(it.next(), WAIT_MS, 'a number')).value?.text, '1');
      const echo = await connect(`ws://127.0.0.1:${s.port}/`);
      echo.send('echo?');
      assert.equal((await withTimeout(echo.messages().next(), WAIT_MS, 'the echo')).value?.text, 'echo?');
      await stop(s);
      for (const c of [dumb, echo]) assert.equal((await withTimeout(c.closed, WAIT_MS, 'the close')).code, 1001);
    } finally {
      reap(s);
    }
  });

  it('--tls-self-signed serves https and wss with a fresh self-signed certificate', async () => {
    const s = await serve(['--tls-self-signed']);
    try {
      assert.match(s.out(), new RegExp(`^sockeye: demo page at https://127\\.0\\.0\\.1:${s.port}/ `, 'm'));
      assert.match(s.out(), new RegExp(`^sockeye: echo server listening on wss://127\\.0\\.0\\.1:${s.port}/$`, 'm'));
      const { status, san, selfSigned } = await withTimeout(
        new Promise<{ status: number; san: string; selfSigned: boolean }>((resolve, reject) => {
          const req = httpsRequest({ host: '127.0.0.1', port: s.port, path: '/', agent: false, rejectUnauthorized: false }, (res) => {
            const cert = (res.socket as TLSSocket).getPeerCertificate();
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode ?? 0, san: cert.subjectaltname ?? '', selfSigned: cert.issuer?.CN === cert.subject?.CN }));
          });
          req.on('error', reject);
          req.end();
        }),
        WAIT_MS,
        'GET / over https',
      );
      assert.equal(status, 200);
      assert.match(san, /IP Address:127\.0\.0\.1/);
      assert.match(san, /DNS:localhost/);
      assert.equal(selfSigned, true);
      // Without --insecure (or the certificate as CA) a client must refuse it.
      await assert.rejects(connect(`wss://127.0.0.1:${s.port}/`, { protocol: 'dumb-increment-protocol' }));
      const c = await connect(`wss://127.0.0.1:${s.port}/`, { protocol: 'dumb-increment-protocol', insecure: true });
      assert.equal((await withTimeout(c.messages().next(), WAIT_MS, 'a number')).value?.text, '0');
      await stop(s);
      await withTimeout(c.closed, WAIT_MS, 'the close');
    } finally {
      reap(s);
    }
  });

  it('--tls-self-signed prints where its certificate is; a client trusting that file connects; the file goes when the server exits', async () => {
    const s = await serve(['--tls-self-signed']);
    try {
      const m = /^sockeye: self-signed certificate at (\S+) \(sockeye connect --ca \1 wss:\/\/127\.0\.0\.1:(\d+)\/\)$/m.exec(s.out());
      assert.ok(m, s.out());
      assert.equal(Number(m[2]), s.port);
      const ca = readFileSync(m[1]);
      assert.match(ca.toString(), /^-----BEGIN CERTIFICATE-----/);
      const c = await connect(`wss://127.0.0.1:${s.port}/`, { protocol: 'dumb-increment-protocol', tls: { ca } });
      assert.equal((await withTimeout(c.messages().next(), WAIT_MS, 'a number')).value?.text, '0');
      await stop(s);
      await withTimeout(c.closed, WAIT_MS, 'the close');
      await withTimeout(s.exited, WAIT_MS, 'the exit');
      assert.equal(existsSync(m[1]), false, 'the certificate file is removed at exit');
    } finally {
      reap(s);
    }
  });

  it('refuses --tls-self-signed together with --tls-cert/--tls-key (exit 2), and documents it', async () => {
    const bad = run(['serve', '--tls-self-signed', '--tls-cert', 'c.pem', '--tls-key', 'k.pem']);
    assert.equal(await withTimeout(bad.exited, WAIT_MS, 'exit'), 2);
    assert.match(bad.err(), /--tls-self-signed or --tls-cert\/--tls-key, not both/);
    const help = run(['serve', '--help']);
    assert.equal(await withTimeout(help.exited, WAIT_MS, 'exit'), 0);
    for (const word of ['--tls-self-signed', 'dumb-increment-protocol', 'lws-mirror-protocol', 'lws-status', 'echo']) assert.ok(help.out().includes(word), word);
  });

  it('--max-message is enforced on the echo: a message of that size comes back, one byte more closes with 1009', async () => {
    const s = await serve(['--max-message', '1K', '--max-queued', '64MiB']);
    try {
      const c = await connect(`ws://127.0.0.1:${s.port}/`);
      const it = c.messages();
      c.send(Buffer.alloc(1024, 1));
      assert.equal((await withTimeout(it.next(), WAIT_MS, 'the echo')).value?.data.length, 1024);
      c.send(Buffer.alloc(1025, 2));
      const info = await withTimeout(c.closed, WAIT_MS, 'the close');
      assert.equal(info.code, 1009, `closed with ${info.code} ${info.reason}`);
      // The server goes on: a message within the limit on a new connection still comes back.
      const d = await connect(`ws://127.0.0.1:${s.port}/`);
      d.send('still here');
      assert.equal((await withTimeout(d.messages().next(), WAIT_MS, 'the echo')).value?.text, 'still here');
      await stop(s);
      await withTimeout(d.closed, WAIT_MS, 'the close');
    } finally {
      reap(s);
    }
  });

  it('permessage-deflate on the echo and lws-status by default and with --deflate, on no protocol with --no-deflate', async () => {
    for (const [args, expected] of [[[], ['permessage-deflate']], [['--deflate'], ['permessage-deflate']], [['--no-deflate'], []]] as const) {
      const s = await serve([...args]);
      try {
        for (const protocol of [undefined, 'lws-status']) {
          const c = await connect(`ws://127.0.0.1:${s.port}/`, { protocol, perMessageDeflate: true });
          assert.deepEqual(c.extensions, expected, `${args.join(' ') || 'no option'}: ${protocol ?? 'echo'}`);
          c.close();
          await withTimeout(c.closed, WAIT_MS, 'the close');
        }
        await stop(s);
      } finally {
        reap(s);
      }
    }
  });

  it('refuses a size that is not one, --deflate with --no-deflate, or an argument, naming what is wrong (exit 2); --help shows the options and the size syntax', async () => {
    const bad: Array<[string[], RegExp]> = [
      [['--max-message', '16MB'], /--max-message takes a size in bytes.*"16MB"/],
      [['--max-message', '1.5M'], /--max-message takes a size in bytes/],
      [['--max-queued', '0'], /--max-queued takes a size in bytes, at least 1/],
      [['--max-queued=-5'], /--max-queued takes a size in bytes/],
      [['--max-queued', 'lots'], /--max-queued takes a size in bytes/],
      [['--deflate', '--no-deflate'], /--deflate or --no-deflate, not both/],
      [['extra'], /serve takes no arguments, got "extra"/],
    ];
    for (const [args, message] of bad) {
      const r = run(['serve', '--port', '0', ...args]);
      assert.equal(await withTimeout(r.exited, WAIT_MS, 'exit'), 2, args.join(' '));
      assert.match(r.err(), message);
      assert.match(r.err(), /Usage: sockeye serve/);
    }
    const help = run(['serve', '--help']);
    assert.equal(await withTimeout(help.exited, WAIT_MS, 'exit'), 0);
    for (const word of ['--max-message BYTES', '--max-queued BYTES', '--deflate', '--no-deflate', 'default 16M', 'default 40M', '64MiB']) assert.ok(help.out().includes(word), word);
  });
});
