/**
 * The bounded fuzzing pass that `npm test` runs, with Jazzer.js:
 * each fuzz target runs coverage-guided for FUZZ_CI_SECONDS (default 10) from
 * its checked-in seed corpus and dictionary, in a fresh scratch corpus, and
 * must end without a finding. Each run must also show that coverage feedback
 * works: sockeye's code is instrumented (coverage counters after the seeds),
 * the features grew beyond what the seeds reached, and new inputs were kept.
 * A target with a planted bug must be found, saved and replayable, which
 * shows that the pass can fail.
 *
 * Jazzer.js is built by scripts/build-jazzer.mjs (fuzz/README.md, "Engine").
 * In CI (CI=true) it must build: a missing libFuzzer is a failure, not a
 * skip. Elsewhere, when it cannot be built, this falls back loudly to the
 * built-in engine (fuzz/engine.ts: no coverage feedback), a fixed number of
 * mutated inputs per target from a fixed seed.
 *
 * A finding fails the test with its input in hex: write it to
 * fuzz/regressions/<target>/ and test/fuzz/regressions.test.ts keeps it fixed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runFuzz, type FuzzReport } from '../../fuzz/engine.js';
import { ensureJazzer, jazzerPaths, runJazzer, type JazzerRunResult } from '../../fuzz/jazzer-runner.js';
import { TARGETS, loadTarget, type TargetName } from '../../fuzz/targets/index.js';
import { fuzz as plantedFuzz } from './jazzer-planted-target.js';

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..');
const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
const SECONDS = Number(process.env.FUZZ_CI_SECONDS ?? 10);
/** A fixed libFuzzer seed: the same mutations each time, as far as a time-bounded run allows. */
const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed0006);

function tail(r: JazzerRunResult, lines = 40): string {
  return r.output.split('\n').slice(-lines).join('\n');
}

function describeJazzerFailure(name: string, r: JazzerRunResult): string {
  const inputs = r.artifacts.map((a) => `  input ${a} (hex): ${readFileSync(a).toString('hex')}`).join('\n');
  return (
    `Jazzer.js on ${name}: ${r.outcome} (exit ${r.exitCode}, signal ${r.signal})\n${r.finding ?? ''}\n${inputs}\n` +
    `  replay: node fuzz/replay.mjs ${name} <input file>\n--- last lines of output ---\n${tail(r)}`
  );
}

const jazzer = ensureJazzer(ROOT, { quiet: true });

if (jazzer.ok) {
  const { cjsDir } = jazzerPaths(ROOT);
  const sockeyeCode = `${join(cjsDir, 'src')}/`;

  for (const name of TARGETS) {
    test(`Jazzer.js ${name}: ${SECONDS} s coverage-guided from the seeds, no finding, coverage grows`, { timeout: (SECONDS + 90) * 1000 }, async () => {
      const target = await loadTarget(name);
      const scratch = mkdtempSync(join(tmpdir(), `sockeye-jazzer-${name}-`));
      const regressions = join(ROOT, 'fuzz', 'regressions', name);
      try {
        const r = await runJazzer({
          root: ROOT,
          targetFile: join(cjsDir, 'fuzz', 'targets', `${name}.js`),
          sync: !target.async,
          seconds: SECONDS,
          corpusDirs: [scratch, join(ROOT, 'fuzz', 'corpus', name), ...(existsSync(regressions) ? [regressions] : [])],
          dictPath: join(ROOT, 'fuzz', 'dict', `${name}.dict`),
          maxLen: target.maxLen,
          timeoutMs: 25_000,
          rssLimitMb: 2048,
          artifactDir: join(ROOT, '.tmp', 'fuzz-findings', name),
          includes: [sockeyeCode],
          seed: SEED,
        });
        assert.equal(r.outcome, 'ok', describeJazzerFailure(name, r));
        assert.ok(r.inited && r.last, `no libFuzzer status lines for ${name}:\n${tail(r)}`);
        const { inited, last } = r;
        console.log(
          `jazzer ${name}: cov ${inited.cov} -> ${last.cov}, ft ${inited.ft} -> ${last.ft}, corpus ${inited.corp} -> ${last.corp} ` +
            `(${r.newInputs} new inputs), ${last.runs} runs, ${r.averageExecPerSec ?? last.execPerSec} exec/s, ${(r.elapsedMs / 1000).toFixed(1)} s`,
        );
        // The seeds alone reach a few hundred edges of sockeye's code; near zero would mean the instrumentation is off.
        assert.ok(inited.cov >= 100, `${name}: only ${inited.cov} covered edges after the seeds: is sockeye's code instrumented?`);
        assert.ok(last.ft > inited.ft, `${name}: features did not grow (${inited.ft} -> ${last.ft}): no coverage feedback`);
        assert.ok(r.newInputs > 0, `${name}: no new input kept in ${SECONDS} s`);
      } finally {
        rmSync(scratch, { recursive: true, force: true });
      }
    });
  }

  test('Jazzer.js finds a planted bug behind a close frame, exits 77 and saves an input that replays it', { timeout: 120_000 }, async () => {
    const work = mkdtempSync(join(tmpdir(), 'sockeye-jazzer-planted-'));
    try {
      const seeds = join(work, 'seeds');
      const scratch = join(work, 'scratch');
      const artifacts = join(work, 'artifacts');
      mkdirSync(seeds, { recursive: true });
      // A close frame (code 1000, reason "xyzw") and a ping: the reason is not at the end of the input,
      // so libFuzzer can write the compared string in place.
      writeFileSync(join(seeds, 'close-then-ping'), Buffer.from([0x01, 0x00, 0x88, 0x06, 0x03, 0xe8, ...Buffer.from('xyzw'), 0x89, 0x00]));
      const r = await runJazzer({
        root: ROOT,
        targetFile: join(cjsDir, 'test', 'fuzz', 'jazzer-planted-target.js'),
        sync: true,
        seconds: 60,
        corpusDirs: [scratch, seeds],
        dictPath: join(ROOT, 'fuzz', 'dict', 'frame-parser.dict'),
        maxLen: 256,
        timeoutMs: 10_000,
        rssLimitMb: 2048,
        artifactDir: artifacts,
        // Only the planted target is instrumented, and inputs are not shrunk (which would move the
        // reason to the end of the input): the bug is found in a few thousand runs, not by luck.
        includes: ['jazzer-planted-target.js'],
        seed: SEED,
        extraLibFuzzerArgs: ['-reduce_inputs=0'],
      });
      console.log(`jazzer planted: ${r.outcome} after ${r.last?.runs ?? '?'} runs, ${(r.elapsedMs / 1000).toFixed(1)} s`);
      assert.equal(r.outcome, 'finding', `the planted bug was not found in 60 s:\n${tail(r)}`);
      assert.equal(r.exitCode, 77);
      assert.match(r.finding ?? '', /TypeError/);
      assert.equal(r.artifacts.length, 1, `artifacts: ${r.artifacts.join(', ')}`);
      assert.match(r.artifacts[0], /crash-[0-9a-f]{40}$/);
      // The saved input alone triggers the bug again (here in the ESM build, outside Jazzer.js).
      const input = readFileSync(r.artifacts[0]);
      assert.throws(() => plantedFuzz(input), TypeError);
      assert.ok(input.includes('BOOM'), `saved input ${input.toString('hex')}`);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  for (const sync of [true, false]) {
    test(`Jazzer.js stops a hanging input (${sync ? '--sync' : 'async'}) after -timeout, exits 70 and saves it`, { timeout: 60_000 }, async () => {
      const work = mkdtempSync(join(tmpdir(), 'sockeye-jazzer-hang-'));
      try {
        const seeds = join(work, 'seeds');
        mkdirSync(seeds, { recursive: true });
        const hang = Buffer.from('..HANG');
        writeFileSync(join(seeds, 'hang'), hang);
        const r = await runJazzer({
          root: ROOT,
          targetFile: join(cjsDir, 'test', 'fuzz', 'jazzer-planted-target.js'),
          entryPoint: sync ? 'fuzzHang' : 'fuzzHangAsync',
          sync,
          seconds: 30,
          corpusDirs: [join(work, 'scratch'), seeds],
          maxLen: 64,
          timeoutMs: 2000,
          rssLimitMb: 2048,
          artifactDir: join(work, 'artifacts'),
          includes: ['jazzer-planted-target.js'],
          seed: SEED,
          graceMs: 20_000,
        });
        assert.equal(r.outcome, 'timeout', `the hang was not reported as a timeout:\n${tail(r)}`);
        assert.equal(r.exitCode, 70);
        assert.equal(r.artifacts.length, 1, `artifacts: ${r.artifacts.join(', ')}`);
        assert.match(r.artifacts[0], /timeout-[0-9a-f]{40}$/);
        assert.deepEqual(readFileSync(r.artifacts[0]), hang);
        assert.ok(r.elapsedMs < 20_000, `took ${r.elapsedMs} ms`);
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    });
  }
} else if (IN_CI) {
  test('Jazzer.js builds in CI (fuzz/README.md, "Engine")', () => {
    assert.fail(`Jazzer.js cannot be built: ${jazzer.why}\n${jazzer.detail}`);
  });
} else {
  console.log(
    '\n*** Jazzer.js (coverage-guided fuzzing) is NOT available here:\n' +
      `***   ${jazzer.why}\n` +
      '*** Falling back to the built-in engine (NO coverage feedback). CI requires Jazzer.js;\n' +
      '*** see fuzz/README.md ("Engine") for what it needs (e.g. apt-get install libclang-rt-14-dev g++).\n',
  );

  /** Runs per target: a few seconds each on a 2-core machine. */
  const RUNS: Record<TargetName, number> = {
    'frame-parser': 25_000,
    'http-head': 25_000,
    'extension-negotiation': 40_000,
    inflate: 4000,
  };

  const describeFindings = (r: FuzzReport): string =>
    r.findings.map((f) => `${f.kind}: ${f.message}\n  input (hex): ${f.input.toString('hex')}\n  ${f.stack.split('\n').slice(1, 6).join('\n  ')}`).join('\n');

  for (const name of TARGETS) {
    test(`built-in engine (Jazzer.js unavailable) ${name}: seeds and ${RUNS[name]} mutated inputs, no finding`, { timeout: 120_000 }, async () => {
      const report = await runFuzz({
        target: name,
        seed: 0x5eed0006,
        runs: RUNS[name],
        // Bounded by runs; the time cap only guards against a machine far slower than expected.
        seconds: 90,
        corpusDir: join(ROOT, 'fuzz', 'corpus', name),
        dictPath: join(ROOT, 'fuzz', 'dict', `${name}.dict`),
        hangMs: 30_000,
        findingsDir: join(ROOT, '.tmp', 'fuzz-findings'),
      });
      assert.deepEqual(report.findings.length, 0, `fuzz findings for ${name}:\n${describeFindings(report)}`);
      assert.ok(report.seedInputs >= 10, `only ${report.seedInputs} seed inputs for ${name}`);
      assert.equal(report.runs, RUNS[name], `ran ${report.runs} of ${RUNS[name]} inputs in ${report.elapsedMs} ms`);
      assert.ok(report.signatures > 5, `only ${report.signatures} distinct behaviours for ${name}: the target is not exercising the code`);
      console.log(`fuzz ${name}: ${report.seedInputs} seeds + ${report.runs} runs in ${report.elapsedMs} ms, ${report.signatures} behaviours, corpus ${report.corpusSize}`);
    });
  }
}
