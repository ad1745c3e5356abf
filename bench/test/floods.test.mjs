// Checks bench/floods.mjs's own logic on small runs (a hundredth of each
// flood): it produces one row per flood and library, with the canary's
// figures, the server's RSS growth and the flooder's outcome read correctly
// (a close code where the server sent one, every echo counted once). Timing
// never decides anything here: the latencies are only checked to be numbers.
// Run: node --test bench/test/   (after `npm run build`; `npm test` runs it too)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = dirname(dirname(fileURLToPath(import.meta.url)));

/** Runs bench/floods.mjs with `args` and --json; resolves with its exit code and rows. */
function floods(args) {
  const child = spawn(process.execPath, [join(BENCH, 'floods.mjs'), ...args, '--json', '--no-pin'], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`bench/floods.mjs did not finish within 90 s: ${err}`));
    }, 90_000);
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    child.on('close', (code) => {
      clearTimeout(timer);
      try {
        resolve({ code, rows: JSON.parse(out) });
      } catch {
        reject(new Error(`no JSON rows (exit ${code}): ${err}`));
      }
    });
  });
}

test('a small run gives one complete row per flood and library, with the flooder outcome read right', { timeout: 120_000 }, async () => {
  const { code, rows } = await floods(['--rounds', '1', '--scale', '0.01', '--floods', 'pong,tiny-read', '--libraries', 'sockeye,ws']);
  assert.equal(code, 0);
  assert.deepEqual(
    rows.map((r) => `${r.flood} ${r.library}`),
    ['pong sockeye', 'pong ws', 'tiny-read sockeye', 'tiny-read ws'],
  );
  for (const r of rows) {
    const what = `${r.flood} against ${r.library}`;
    assert.equal(r.error, undefined, what);
    assert.equal(r.result.error, undefined, what);
    assert.deepEqual(r.canaryProblems, [], what);
    assert.ok(r.samples > 0, `${what}: canary samples`);
    assert.ok(r.p50 <= r.p99 && r.p99 <= r.max, `${what}: percentiles in order`);
    assert.ok(r.rssGrowth === null || Number.isFinite(r.rssGrowth), `${what}: RSS growth`);
    assert.equal(typeof r.flooder, 'string');
    assert.equal(r.acceptsNew, true, `${what}: the server echoed on a new connection afterwards`);
    assert.equal(r.frames, r.flood === 'pong' ? 2000 : 3000);
    assert.equal(r.rounds, 1);
  }
  const [pongSockeye, pongWs, tinySockeye, tinyWs] = rows;
  // 2,000 pongs at once are past sockeye's default burst of 1,000 control frames; ws has no such limit.
  assert.equal(pongSockeye.result.closeCode, 1008);
  assert.match(pongSockeye.flooder, /^closed 1008/);
  assert.equal(pongWs.result.closeCode, null);
  assert.equal(pongWs.result.written, 2000);
  for (const r of [tinySockeye, tinyWs]) {
    assert.equal(r.result.written, 3000);
    assert.equal(r.result.echoes, 3000, `${r.library}: every echo counted once`);
    assert.equal(r.result.wrong, 0);
    assert.match(r.flooder, /^served: 3,000 of 3,000 echoes$/);
  }
});

test('rounds are combined into one row per flood and library', { timeout: 120_000 }, async () => {
  const { code, rows } = await floods(['--rounds', '2', '--scale', '0.01', '--floods', 'pong', '--libraries', 'sockeye']);
  assert.equal(code, 0);
  assert.equal(rows.length, 1);
  const [r] = rows;
  assert.equal(r.error, undefined);
  assert.equal(r.rounds, 2);
  assert.equal(r.failedRounds, 0);
  assert.equal(r.p99s.length, 2);
  assert.ok(r.p99 >= Math.min(...r.p99s) && r.p99 <= Math.max(...r.p99s), 'the p99 shown is the median of the rounds');
  assert.ok(r.max >= Math.max(...r.p99s), 'max is the slowest echo of all rounds');
  // Both rounds had the same outcome, shown once.
  assert.match(r.flooder, /^closed 1008 \([\d,]+ frames written\)$/);
});

test('unknown floods and libraries are refused with a usage message', async () => {
  const child = spawn(process.execPath, [join(BENCH, 'floods.mjs'), '--floods', 'nonesuch'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c) => (err += c));
  const code = await new Promise((resolve) => child.on('close', resolve));
  assert.equal(code, 64);
  assert.match(err, /unknown flood nonesuch/);
});
