/**
 * The package as a user gets it: `npm pack` of this checkout (already built
 * by `npm test`'s pretest, so packing runs no scripts), its contents, and the
 * tarball installed into an empty project, with no network, where an ES
 * module program and a CommonJS program each run a server and a client
 * through the package's name, and `npx sockeye --version` answers.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

function run(cmd: string, args: string[], cwd: string, timeoutMs = 120_000): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' } });
  assert.equal(r.error, undefined, `${cmd} ${args.join(' ')}: ${String(r.error)}`);
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} exited ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

/** An echo through the package: a server on a free port of 127.0.0.1, a client that sends one message and prints the reply. */
const program = (load: string) => `${load}
(async () => {
  const server = createServer({ port: 0, host: '127.0.0.1', handler: { onMessage(s, m) { s.send(m.text.toUpperCase()); } } });
  await server.listen();
  const client = await connect('ws://127.0.0.1:' + server.port + '/');
  const it = client.messages();
  client.send('hello from ' + kind);
  const reply = await it.next();
  client.close();
  await client.closed;
  await server.close();
  if (!(new ProtocolError('ERR_X', 'x') instanceof WebSocketError)) throw new Error('error classes');
  console.log(reply.value.text + ' ' + typeof CloseCode.Normal);
})().catch((e) => { console.error(e); process.exit(1); });
`;

describe('the npm package', () => {
  let dir = '';
  let tarball = '';
  let files: string[] = [];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'sockeye-pack-'));
    const r = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], ROOT);
    const info = JSON.parse(r.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    tarball = join(dir, info[0].filename);
    files = info[0].files.map((f) => f.path).sort();
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('holds the JavaScript (ES module and CommonJS), the types, the CLI, the demo page, README and LICENSE, and nothing else', () => {
    for (const f of [
      'package.json',
      'README.md',
      'LICENSE',
      'dist/src/index.js',
      'dist/src/index.d.ts',
      'dist/src/core/index.js',
      'dist/src/core/index.d.ts',
      'dist/src/cli/main.js',
      'dist/cjs/package.json',
      'dist/cjs/src/index.js',
      'dist/cjs/src/index.d.ts',
      'dist/cjs/src/core/index.js',
      'dist/src/compat/ws/index.js',
      'dist/src/compat/ws/index.d.ts',
      'dist/cjs/src/compat/ws/require.cjs',
      'dist/cjs/src/compat/ws/require.d.cts',
      'dist/src/redis/index.js',
      'dist/src/redis/index.d.ts',
      'dist/cjs/src/redis/index.js',
      'dist/cjs/src/redis/index.d.ts',
      'demo-page/index.html',
    ]) {
      assert.ok(files.includes(f), `${f} is in the package`);
    }
    const stray = files.filter((f) => f.endsWith('.map') || f.endsWith('.ts') && !f.endsWith('.d.ts') || f.startsWith('dist/test/') || f.startsWith('src/') || f.startsWith('test/') || f.startsWith('bench/') || f.endsWith('.tsbuildinfo'));
    assert.deepEqual(stray, [], 'no source maps, sources, tests or benchmarks');
  });

  it('installs into an empty project without the network; ESM and CommonJS programs run (sockeye, sockeye/core, sockeye/ws, sockeye/redis), and npx sockeye --version answers', () => {
    const app = join(dir, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', tarball], app);

    writeFileSync(join(app, 'esm.mjs'), program("import { createServer, connect, CloseCode, ProtocolError, WebSocketError } from 'sockeye';\nconst kind = 'esm';"));
    writeFileSync(join(app, 'cjs.cjs'), program("const { createServer, connect, CloseCode, ProtocolError, WebSocketError } = require('sockeye');\nconst kind = 'cjs';"));
    assert.equal(run(process.execPath, ['esm.mjs'], app, 30_000).stdout.trim(), 'HELLO FROM ESM number');
    assert.equal(run(process.execPath, ['cjs.cjs'], app, 30_000).stdout.trim(), 'HELLO FROM CJS number');

    writeFileSync(join(app, 'core.cjs'), "const core = require('sockeye/core');\nconsole.log(typeof core.FrameParser, typeof core.Connection);\n");
    assert.equal(run(process.execPath, ['core.cjs'], app, 30_000).stdout.trim(), 'function function');

    // sockeye/ws as code written for ws loads it: require() gives the WebSocket class with the rest on it.
    writeFileSync(
      join(app, 'ws.cjs'),
      "const WebSocket = require('sockeye/ws');\nconst { WebSocketServer } = require('sockeye/ws');\nconsole.log(typeof WebSocket, WebSocket.OPEN, WebSocket.Server === WebSocketServer, typeof WebSocket.createWebSocketStream);\n",
    );
    assert.equal(run(process.execPath, ['ws.cjs'], app, 30_000).stdout.trim(), 'function 1 true function');
    writeFileSync(join(app, 'ws.mjs'), "import WebSocket, { WebSocketServer } from 'sockeye/ws';\nconsole.log(typeof WebSocket, WebSocket.CLOSED, WebSocket.WebSocketServer === WebSocketServer);\n");
    assert.equal(run(process.execPath, ['ws.mjs'], app, 30_000).stdout.trim(), 'function 3 true');

    // sockeye/redis needs its optional peer, node-redis: not installed with sockeye, copied here from this
    // checkout (no network). Both module systems load the entry and see the same broker factory.
    assert.equal(spawnSync(process.execPath, ['-e', "require('sockeye/redis')"], { cwd: app, encoding: 'utf8' }).status, 1, 'without node-redis the entry does not load');
    for (const dep of ['redis', '@redis']) cpSync(join(ROOT, 'node_modules', dep), join(app, 'node_modules', dep), { recursive: true });
    writeFileSync(join(app, 'redis.cjs'), "const { createRedisBroker, RedisBroker } = require('sockeye/redis');\nconsole.log(typeof createRedisBroker, typeof RedisBroker);\n");
    assert.equal(run(process.execPath, ['redis.cjs'], app, 30_000).stdout.trim(), 'function function');
    writeFileSync(join(app, 'redis.mjs'), "import { createRedisBroker, RedisBroker } from 'sockeye/redis';\nconsole.log(typeof createRedisBroker, typeof RedisBroker);\n");
    assert.equal(run(process.execPath, ['redis.mjs'], app, 30_000).stdout.trim(), 'function function');

    const v = run('npx', ['--no-install', 'sockeye', '--version'], app, 30_000);
    assert.match(v.stdout, new RegExp(`sockeye ${VERSION.replace(/\./g, '\\.')}`));
  });
});
