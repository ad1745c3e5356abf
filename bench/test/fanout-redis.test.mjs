// Checks bench/fanout-redis.mjs at a tiny scale (50 clients, one short round
// per row, its own redis-server): every row runs and every delivery counted
// was verified. And checks the C generator's engine.io mode, which the
// socket.io rows use, against small fake socket.io servers: it must pass
// against a correct one (answering its pings) and fail, naming the fault,
// against one that corrupts a payload byte, the event's framing, or leaves
// the handshake out. No timing is asserted.
// Run: node --test bench/test/fanout-redis.test.mjs (after `npm run build`).
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { wsServer } from './helpers.mjs';

const BENCH = dirname(dirname(fileURLToPath(import.meta.url)));
const LOADGEN = join(BENCH, 'loadgen', 'loadgen');
const NO_REDIS = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).error ? 'redis-server is not installed (Debian: apt-get install redis-server)' : false;

before(() => {
  const r = spawnSync('make', ['-s', '-C', join(BENCH, 'loadgen')], { encoding: 'utf8' });
  if (r.error) throw new Error(`cannot run make to build the C load generator (${r.error.message}): install gcc and make`);
  assert.equal(r.status, 0, `make -C bench/loadgen failed:\n${r.stdout}${r.stderr}`);
});

test('fanout-redis at 50 clients: every row runs, every delivery counted was verified, redis-server is stopped', { skip: NO_REDIS }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sockeye-fanout-redis-'));
  try {
    const json = join(dir, 'rows.json');
    const args = [join(BENCH, 'fanout-redis.mjs'), '--clients', '50', '--rounds', '1', '--duration', '0.3', '--warmup', '0.1', '--no-pin', '--out', join(dir, 'report.md'), '--json', json];
    const { code, stderr } = await new Promise((resolve, reject) => {
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (c) => (err += c));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`fanout-redis did not finish within 60 s:\n${err}`));
      }, 60_000);
      child.on('close', (c) => {
        clearTimeout(timer);
        resolve({ code: c, stderr: err });
      });
    });
    assert.equal(code, 0, stderr);
    const { meta, rows } = JSON.parse(readFileSync(json, 'utf8'));
    // The socket.io adapter row needs the benchmark's own packages (npm --prefix bench ci); without them the report says so.
    // CI installs them (.ci/run): there the row must run.
    const adapter = meta.versions.adapter !== null;
    if (process.env.CI === 'true') assert.ok(adapter, '@socket.io/redis-adapter is not installed (npm --prefix bench ci)');
    const expected = ['sockeye', 'sockeye-redis', ...(adapter ? ['socketio-redis'] : []), 'socketio'];
    assert.deepEqual(rows.map((r) => r.id), expected);
    if (!adapter) assert.ok(meta.skipped.some((s) => s.startsWith('socketio-redis: @socket.io/redis-adapter is not installed')), meta.skipped.join('\n'));
    for (const r of rows) {
      assert.equal(r.ok, 1, `${r.id}: ${r.errors.join('; ')}`);
      assert.deepEqual(r.errors, []);
      assert.ok(r.broadcasts > 0, `${r.id}: no broadcast completed`);
      assert.equal(r.deliveriesVerified, r.broadcasts * 50, `${r.id}: deliveries are broadcasts × clients`);
      assert.equal(r.clients, 50);
    }
    assert.equal(rows.find((r) => r.id === 'sockeye-redis').processes, 2);
    const report = readFileSync(join(dir, 'report.md'), 'utf8');
    for (const r of rows) assert.ok(report.includes(`| ${r.title} |`), `the report has a row for ${r.id}`);
    assert.match(report, /redis-server \d/);
    // Nothing of the run is left: no redis-server, server or generator started by it (by their command lines).
    const left = spawnSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.includes(`--port ${meta.redisPort}`) || l.includes(`127.0.0.1:${meta.redisPort}`) || l.includes(dir));
    assert.deepEqual(left, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------ the generator's engine.io mode

const OPEN = '0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}';

/**
 * A fake socket.io server on ws: the engine.io open packet, the namespace
 * connect, then every event a client sends goes to every client through
 * deliver(text, client index, message number) (return null to send nothing).
 */
function fakeSocketIo({ deliver = (text) => text, open = OPEN, pingEveryMs = 0, onPong = () => {} } = {}) {
  let n = 0;
  return wsServer(
    (ws, data, isBinary, _k, wss) => {
      const text = data.toString();
      if (text === '40') return ws.send('40{"sid":"def"}');
      if (text === '3') return onPong();
      n++;
      [...wss.clients].forEach((c, i) => {
        const out = deliver(text, i, n);
        if (out !== null) c.send(out);
      });
    },
    (ws) => {
      ws.send(open);
      if (pingEveryMs) {
        const t = setInterval(() => ws.send('2'), pingEveryMs);
        ws.on('close', () => clearInterval(t));
      }
    },
  );
}

function generate(port, overrides = {}) {
  const config = { mode: 'ws', workload: 'fanout', protocol: 'engine.io', port, size: 64, connections: 5, depth: 1, warmupMs: 50, durationMs: 400, stallTimeoutMs: 1000, closeTimeoutMs: 1000, ...overrides };
  const child = spawn(LOADGEN, [JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('loadgen did not finish within 20 s'));
    }, 20_000);
    child.stdout.on('data', (c) => (out += c));
    child.on('close', (code) => {
      clearTimeout(timer);
      try {
        resolve({ code, result: JSON.parse(out.trim().split('\n').pop()) });
      } catch {
        reject(new Error(`loadgen exited (${code}) with ${JSON.stringify(out)}`));
      }
    });
  });
}

async function withFake(options, overrides, check) {
  const server = await fakeSocketIo(options);
  try {
    await check(await generate(server.port, overrides));
  } finally {
    await server.stop();
  }
}

test('engine.io mode passes against a correct socket.io-like server, answering its pings with pongs', async () => {
  let pongs = 0;
  await withFake({ pingEveryMs: 20, onPong: () => pongs++ }, {}, ({ code, result }) => {
    assert.equal(code, 0, result.error);
    assert.ok(result.broadcasts > 0);
    assert.equal(result.deliveries, result.broadcasts * 5);
  });
  assert.ok(pongs > 0, 'the generator answered the pings');
});

test('engine.io mode: a payload byte changed for one client fails the run, naming the byte', () =>
  withFake({ deliver: (text, i, n) => (i === 3 && n === 4 ? text.slice(0, 40) + (text[40] === 'A' ? 'B' : 'A') + text.slice(41) : text) }, {}, ({ code, result }) => {
    assert.equal(code, 2);
    assert.match(result.error, /echoed payload differs from the sent one at byte 30 of message 3/);
  }));

test('engine.io mode: an event of another name fails the run', () =>
  withFake({ deliver: (text) => text.replace('"fan"', '"fun"') }, {}, ({ code, result }) => {
    assert.equal(code, 2);
    assert.match(result.error, /socket\.io event differs from 42\["fan","\.\.\."\] at byte 5/);
  }));

test('engine.io mode: an event cut short of its closing bracket fails the run', () =>
  withFake({ deliver: (text) => text.slice(0, -1) }, {}, ({ code, result }) => {
    assert.equal(code, 2);
    assert.match(result.error, /socket\.io event has \d+ bytes, sent 76/);
  }));

test('engine.io mode: a server that never sends the open packet fails the run at the handshake', () =>
  withFake({ open: '40{"sid":"x"}' }, { connectTimeoutMs: 2000 }, ({ code, result }) => {
    assert.equal(code, 2);
    assert.match(result.error, /unexpected packet in the socket\.io handshake: engine\.io packet "40\{"sid":"x"\}"/);
  }));

test('engine.io mode: a delivery missing for one client fails the run, naming how many had it', () =>
  withFake({ deliver: (text, i) => (i === 2 ? null : text) }, {}, ({ code, result }) => {
    assert.equal(code, 2);
    assert.match(result.error, /broadcast 0 reached 4 of 5 clients/);
  }));
