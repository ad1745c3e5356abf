/**
 * The README's command-line table ("The command line") says what each
 * sockeye command does next to wscat's and websocat's. Every sockeye cell is
 * run here as written (URL, PORT, FILE, PATH and PROXY filled in) against a server or
 * client of ours, and its effect checked; a row without a scenario, or a
 * scenario without a row, fails. The wscat cells are checked against the
 * real wscat's --help (a devDependency); websocat is not on npm or in
 * Debian 12, so its cells were taken from its manual.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, createServer, type ServerHandler, type ServerOptions, type ServerSession } from '../../src/index.js';
import { testCert } from '../helpers/certs.js';
import { cli, reap, within, type Cli } from '../helpers/cli-child.js';
import { startTinyproxy, tinyproxyAvailable } from '../helpers/proxies.js';
import { requirePeer } from '../helpers/peers.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

interface Row {
  to: string;
  wscat: string;
  websocat: string;
  sockeye: string;
}

/** The rows of the first table after the "### The command line" heading. */
function readmeRows(): Row[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf('### The command line');
  assert.notEqual(at, -1, 'README has a "### The command line" section');
  const lines = readme.slice(at).split('\n');
  const first = lines.findIndex((l) => l.startsWith('| to |'));
  assert.notEqual(first, -1, 'the section has the table');
  const rows: Row[] = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith('|')) break;
    // GitHub tables escape a pipe inside a cell as \|.
    const cells = line
      .split(/(?<!\\)\|/)
      .slice(1, -1)
      .map((c) => c.trim().replace(/\\\|/g, '|'));
    assert.equal(cells.length, 4, line);
    const code = (c: string) => /^`([^`]+)`/.exec(c)?.[1] ?? c;
    rows.push({ to: cells[0], wscat: code(cells[1]), websocat: code(cells[2]), sockeye: code(cells[3]) });
  }
  return rows;
}

/** Splits a cell into words as a POSIX shell would for these simple forms: spaces, and '...' quoting. */
function words(command: string): string[] {
  const out: string[] = [];
  for (const m of command.matchAll(/'([^']*)'|(\S+)/g)) out.push(m[1] ?? m[2]);
  return out;
}

interface Run {
  c: Cli;
}

/** Runs a sockeye cell: `echo X | sockeye ...` feeds X and a line feed on stdin; otherwise stdin stays open. */
function run(cell: string, fill: { URL?: string; PORT?: string; FILE?: string; PATH?: string; PROXY?: string }): Run {
  let stdin: string | null = null;
  let command = cell;
  const piped = /^echo (\S+) \| (.*)$/.exec(cell);
  if (piped) {
    stdin = piped[1] + '\n';
    command = piped[2];
  }
  const argv = words(command).map((w) => (w === 'URL' || w === 'PORT' || w === 'FILE' || w === 'PATH' || w === 'PROXY' ? (fill[w] ?? assert.fail(`${cell}: no ${w}`)) : w));
  assert.equal(argv.shift(), 'sockeye', cell);
  return { c: cli(argv, { stdin }) };
}

/** A server of ours on 127.0.0.1:0 that keeps its sessions' requests and messages. */
async function recordingServer(options: ServerOptions<unknown> = {}, handler: ServerHandler = {}, protocol?: string) {
  const sessions: ServerSession[] = [];
  const messages: Array<{ binary: boolean; data: Buffer }> = [];
  const recording: ServerHandler = {
    ...handler,
    onOpen(s) {
      sessions.push(s);
      handler.onOpen?.(s);
    },
    onMessage(s, m) {
      messages.push({ binary: m.binary, data: m.data });
      handler.onMessage?.(s, m);
    },
  };
  // With `protocol`, only clients that offer it are served (a plain server takes any client).
  const server = createServer({ keepalive: null, ...options, ...(protocol !== undefined ? { protocols: { [protocol]: recording } } : { handler: recording }) });
  const a = await server.listen(0, '127.0.0.1');
  const url = `${options.tls ? 'wss' : 'ws'}://127.0.0.1:${a.port}/`;
  return { server, url, sessions, messages };
}

const echo: ServerHandler = { onMessage: (s, m) => void s.send(m.data, { binary: m.binary }) };

/** Until `check` holds, bounded. */
async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`${what}: not within 15 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Ends an interactive client with SIGINT (a 1000 close) and expects a clean exit. */
async function interrupt(c: Cli): Promise<void> {
  c.child.kill('SIGINT');
  assert.equal(await c.exited(), 0, c.stderr());
}

/** Each sockeye cell of the table and what it must do. */
const SCENARIOS: Record<string, (cell: string) => Promise<void>> = {
  'sockeye connect URL': async (cell) => {
    const s = await recordingServer({}, echo);
    const { c } = run(cell, { URL: s.url });
    try {
      c.child.stdin.write('hello\n');
      await c.waitFor(/^hello$/m);
      c.child.stdin.end();
      assert.equal(await c.exited(), 0, c.stderr());
    } finally {
      reap(c);
      await s.server.close();
    }
  },
  'sockeye connect URL -p chat': async (cell) => {
    const s = await recordingServer({}, {}, 'chat');
    const { c } = run(cell, { URL: s.url });
    try {
      await c.waitFor(/connected to .* \(subprotocol chat\)/, 'stderr');
      assert.equal(s.sessions[0]?.protocol, 'chat');
      await interrupt(c);
    } finally {
      reap(c);
      await s.server.close();
    }
  },
  "sockeye connect URL -H 'X-Token: t'": async (cell) => {
    const s = await recordingServer();
    const { c } = run(cell, { URL: s.url });
    try {
      await c.waitFor(/connected to/, 'stderr');
      assert.deepEqual(s.sessions[0]?.request.headers.get('x-token'), ['t']);
      await interrupt(c);
    } finally {
      reap(c);
      await s.server.close();
    }
  },
  'sockeye connect URL -o https://app.test': async (cell) => {
    const s = await recordingServer();
    const { c } = run(cell, { URL: s.url });
    try {
      await c.waitFor(/connected to/, 'stderr');
      assert.equal(s.sessions[0]?.request.origin, 'https://app.test');
      await interrupt(c);
    } finally {
      reap(c);
      await s.server.close();
    }
  },
  'sockeye connect URL -L': async (cell) => {
    const s = await recordingServer({ verifyClient: (r) => (r.path === '/old' ? { status: 301, headers: { Location: '/new' } } : true) }, echo);
    const { c } = run(cell, { URL: `${s.url}old` });
    try {
      c.child.stdin.write('after a redirect\n');
      await c.waitFor(/^after a redirect$/m);
      assert.match(c.stderr(), /connected to ws:\/\/127\.0\.0\.1:\d+\/new/);
      assert.equal(s.sessions[0].request.path, '/new');
      await interrupt(c);
    } finally {
      reap(c);
      await s.server.close();
    }
  },
  'sockeye connect URL --proxy PROXY': async (cell) => {
    const s = await recordingServer({}, echo);
    const port = Number(new URL(s.url).port);
    const proxy = await startTinyproxy({ connectPorts: [port] });
    const { c } = run(cell, { URL: s.url, PROXY: `http://127.0.0.1:${proxy.port}` });
    try {
      c.child.stdin.write('through tinyproxy\n');
      await c.waitFor(/^through tinyproxy$/m);
      await interrupt(c);
      assert.match(proxy.log(), /CONNECT/, 'the proxy carried it');
    } finally {
      reap(c);
      await proxy.stop();
      await s.server.close();
    }
  },
  'sockeye connect URL --ca FILE': async (cell) => {
    const cert = testCert();
    const s = await recordingServer({ tls: { cert: cert.cert, key: cert.key } }, echo);
    const { c } = run(cell, { URL: s.url, FILE: cert.certPath });
    try {
      c.child.stdin.write('over tls\n');
      await c.waitFor(/^over tls$/m);
      await interrupt(c);
    } finally {
      reap(c);
      await s.server.close();
    }
  },
  'sockeye connect URL -k': async (cell) => {
    const cert = testCert();
    const s = await recordingServer({ tls: { cert: cert.cert, key: cert.key } }, echo);
    const { c } = run(cell, { URL: s.url });
    try {
      c.child.stdin.write('any certificate\n');
      await c.waitFor(/^any certificate$/m);
      await interrupt(c);
    } finally {
      reap(c);
      await s.server.close();
    }
  },
  'sockeye connect URL -n': async (cell) => {
    const s = await recordingServer();
    const { c } = run(cell, { URL: s.url });
    try {
      c.child.stdin.write('reset\n');
      await until(() => s.messages.length === 1, 'the line');
      assert.equal(s.messages[0].data.toString(), 'reset\n');
      assert.equal(s.messages[0].binary, false);
      await interrupt(c);
    } finally {
      reap(c);
      await s.server.close();
    }
  },
  'sockeye connect URL --binary hex': async (cell) => {
    const s = await recordingServer();
    const { c } = run(cell, { URL: s.url });
    try {
      c.child.stdin.write('00ff10\n');
      await until(() => s.messages.length === 1, 'the binary message');
      assert.deepEqual(s.messages[0], { binary: true, data: Buffer.from([0x00, 0xff, 0x10]) });
      await interrupt(c);
    } finally {
      reap(c);
      await s.server.close();
    }
  },
  'sockeye connect URL --output base64': async (cell) => {
    const payload = Buffer.from('binary\u0000payload');
    const s = await recordingServer({}, { onOpen: (session) => void session.send(payload) });
    const { c } = run(cell, { URL: s.url });
    try {
      await c.waitFor(new RegExp(`^${payload.toString('base64').replace(/[+/=]/g, '\\$&')}$`, 'm'));
      await interrupt(c);
    } finally {
      reap(c);
      await s.server.close();
    }
  },
  'sockeye connect URL --show-control': async (cell) => {
    const s = await recordingServer({}, { onOpen: (session) => void session.ping('hi') });
    const { c } = run(cell, { URL: s.url });
    try {
      await c.waitFor(/^<ping 6869>$/m);
      s.sessions[0].close(1000, 'bye');
      await c.waitFor(/^<close 1000 bye>$/m);
      assert.equal(await c.exited(), 0, c.stderr());
    } finally {
      reap(c);
      await s.server.close();
    }
  },
  'sockeye connect URL --ping 1': async (cell) => {
    let pings = 0;
    const s = await recordingServer({}, { onPing: () => void pings++ });
    const { c } = run(cell, { URL: s.url });
    try {
      await until(() => pings >= 2, 'two pings');
      await interrupt(c);
    } finally {
      reap(c);
      await s.server.close();
    }
  },
  'echo hello | sockeye connect URL --once': async (cell) => {
    const s = await recordingServer({}, echo);
    const { c } = run(cell, { URL: s.url });
    try {
      assert.equal(await c.exited(), 0, c.stderr());
      assert.equal(c.stdout(), 'hello\n');
    } finally {
      reap(c);
      await s.server.close();
    }
  },
  'sockeye connect URL --deflate': async (cell) => {
    const s = await recordingServer({ perMessageDeflate: true }, echo);
    const { c } = run(cell, { URL: s.url });
    try {
      await c.waitFor(/extensions permessage-deflate/, 'stderr');
      assert.deepEqual(s.sessions[0]?.extensions, ['permessage-deflate']);
      c.child.stdin.write('compressed\n');
      await c.waitFor(/^compressed$/m);
      await interrupt(c);
    } finally {
      reap(c);
      await s.server.close();
    }
  },
  'sockeye connect URL --handshake-timeout 3000': async (cell) => {
    // A TCP server that accepts and never answers the upgrade.
    const silent: NetServer = createNetServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const { port } = silent.address() as { port: number };
    const { c } = run(cell, { URL: `ws://127.0.0.1:${port}/` });
    try {
      const started = Date.now();
      assert.equal(await c.exited(), 1);
      assert.match(c.stderr(), /not finished within 3000 ms/);
      assert.ok(Date.now() - started >= 2900, 'it waited for the timeout');
    } finally {
      reap(c);
      silent.close();
    }
  },
  'sockeye connect URL --echo': async (cell) => {
    const s = await recordingServer({}, { onOpen: (session) => void session.send(Buffer.from([1, 2, 3])) });
    const { c } = run(cell, { URL: s.url });
    try {
      await until(() => s.messages.length === 1, 'the echo');
      assert.deepEqual(s.messages[0], { binary: true, data: Buffer.from([1, 2, 3]) });
      s.sessions[0].close(1000);
      assert.equal(await c.exited(), 0, c.stderr());
    } finally {
      reap(c);
      await s.server.close();
    }
  },
  'sockeye connect URL --reconnect': async (cell) => {
    // The server drops the first connection without a closing handshake (1006): the client comes back.
    const s = await recordingServer({}, { onMessage: (session, m) => void (m.text === 'first' && session.terminate()) });
    const { c } = run(cell, { URL: s.url });
    try {
      c.child.stdin.write('first\n');
      await c.waitFor(/connection closed \(1006\); reconnecting in \d+ ms \(attempt 1\)/, 'stderr');
      await c.waitFor(/reconnected to/, 'stderr');
      c.child.stdin.end('second\n');
      assert.equal(await c.exited(), 0, c.stderr());
      assert.equal(s.sessions.length, 2);
      assert.deepEqual(
        s.messages.map((m) => m.data.toString()),
        ['first', 'second'],
      );
    } finally {
      reap(c);
      await s.server.close();
    }
  },
  'sockeye connect --unix PATH ws://localhost/': async (cell) => {
    const dir = mkdtempSync(join(tmpdir(), 'sockeye-readme-'));
    const path = join(dir, 'app.sock');
    const server = createServer({ keepalive: null, handler: echo });
    await server.listen({ path });
    const { c } = run(cell, { PATH: path });
    try {
      c.child.stdin.write('over a unix socket\n');
      await c.waitFor(/^over a unix socket$/m);
      c.child.stdin.end();
      assert.equal(await c.exited(), 0, c.stderr());
    } finally {
      reap(c);
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
  'sockeye listen --unix PATH': async (cell) => {
    const dir = mkdtempSync(join(tmpdir(), 'sockeye-readme-'));
    const path = join(dir, 'listen.sock');
    const { c } = run(cell, { PATH: path });
    try {
      await c.waitFor(/^sockeye: listening on ws\+unix:\/\//m);
      const client = await connect(`ws+unix://${path}:/`, { keepalive: null });
      client.send('to the unix listener');
      await c.waitFor(/^to the unix listener$/m);
      c.child.kill('SIGTERM');
      assert.equal((await within(client.closed, 'close')).code, 1001);
      assert.equal(await c.exited(), 0, c.stderr());
    } finally {
      reap(c);
      rmSync(dir, { recursive: true, force: true });
    }
  },
  'sockeye listen --port PORT': async (cell) => {
    const { c } = run(cell, { PORT: '0' });
    try {
      const m = await c.waitFor(/^sockeye: listening on (ws:\/\/127\.0\.0\.1:\d+\/)$/m);
      const client = await connect(m[1], { keepalive: null });
      client.send('to the listener');
      await c.waitFor(/^to the listener$/m);
      c.child.kill('SIGTERM');
      assert.equal((await within(client.closed, 'close')).code, 1001);
      assert.equal(await c.exited(), 0, c.stderr());
    } finally {
      reap(c);
    }
  },
  'sockeye listen --port PORT --tls-self-signed': async (cell) => {
    const { c } = run(cell, { PORT: '0' });
    try {
      const cert = await c.waitFor(/^sockeye: self-signed certificate at (\S+) /m);
      const m = await c.waitFor(/^sockeye: listening on (wss:\/\/127\.0\.0\.1:\d+\/)$/m);
      const client = await connect(m[1], { keepalive: null, tls: { ca: readFileSync(cert[1]) } });
      client.send('over wss');
      await c.waitFor(/^over wss$/m);
      c.child.kill('SIGTERM');
      assert.equal(await c.exited(), 0, c.stderr());
    } finally {
      reap(c);
    }
  },
  'sockeye serve --port PORT': async (cell) => {
    const { c } = run(cell, { PORT: '0' });
    try {
      const m = await c.waitFor(/^sockeye: echo server listening on (ws:\/\/127\.0\.0\.1:\d+\/)$/m);
      const client = await connect(m[1], { keepalive: null });
      client.send('echo me');
      const got = await within(client.messages().next(), 'the echo');
      assert.equal(got.value?.text, 'echo me');
      client.close();
      await within(client.closed, 'close');
      c.child.kill('SIGTERM');
      assert.equal(await c.exited(), 0, c.stderr());
    } finally {
      reap(c);
    }
  },
};

describe("the README's command-line table", { concurrency: 4 }, () => {
  const rows = readmeRows();

  it('has a scenario here for every sockeye command, and a row for every scenario', () => {
    assert.ok(rows.length >= 15, `${rows.length} rows`);
    assert.deepEqual(rows.map((r) => r.sockeye).sort(), Object.keys(SCENARIOS).sort());
  });

  it("every wscat flag in it is one of the real wscat's", () => {
    const bin = join(ROOT, 'node_modules/wscat/bin/wscat');
    const help = execFileSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
    const known = new Set([...help.matchAll(/(?:^|[\s,])(--?[A-Za-z][\w-]*)/gm)].map((m) => m[1]));
    let checked = 0;
    for (const r of rows) {
      if (!r.wscat.startsWith('wscat')) continue;
      for (const w of words(r.wscat).filter((x) => x.startsWith('-'))) {
        assert.ok(known.has(w), `${r.to}: wscat has no ${w}`);
        checked++;
      }
    }
    assert.ok(checked >= 8, `${checked} wscat flags checked`);
  });

  for (const row of rows) {
    const scenario = SCENARIOS[row.sockeye];
    // The proxy row needs Debian's tinyproxy (a skip on a developer machine without it, a failure in CI).
    const skip = row.sockeye.includes('--proxy') ? requirePeer('tinyproxy', tinyproxyAvailable(), 'apt-get install tinyproxy') : false;
    it(`${row.to}: ${row.sockeye}`, { timeout: 60_000, skip }, async () => {
      assert.ok(scenario, `no scenario for ${row.sockeye}`);
      await scenario(row.sockeye);
    });
  }
});
