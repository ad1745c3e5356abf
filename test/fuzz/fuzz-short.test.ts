/**
 * The bounded fuzzing pass that CI runs with `npm test` (issue 6): every
 * fuzz target, its checked-in seed corpus replayed and then a fixed number
 * of mutated inputs from a fixed seed, so a run is reproducible. Any finding
 * fails the test with the input in hex (write it to
 * fuzz/regressions/<target>/ and it becomes a regression test).
 *
 * This is sockeye's own mutation engine (fuzz/engine.ts), not Jazzer.js:
 * Jazzer.js 4.0.0 installs from npm but its libFuzzer addon needs glibc 2.38
 * and cannot load here (fuzz/README.md). `npm run fuzz` runs the same
 * targets for longer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runFuzz, type FuzzReport } from '../../fuzz/engine.js';
import { TARGETS, type TargetName } from '../../fuzz/targets/index.js';

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..');

/** Runs per target: a few seconds each on this 2-core machine. */
const RUNS: Record<TargetName, number> = {
  'frame-parser': 25_000,
  'http-head': 25_000,
  'extension-negotiation': 40_000,
  inflate: 4000,
};

function describeFindings(r: FuzzReport): string {
  return r.findings.map((f) => `${f.kind}: ${f.message}\n  input (hex): ${f.input.toString('hex')}\n  ${f.stack.split('\n').slice(1, 6).join('\n  ')}`).join('\n');
}

for (const name of TARGETS) {
  test(`fuzz ${name}: seeds and ${RUNS[name]} mutated inputs, no finding`, { timeout: 120_000 }, async () => {
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
    console.log(`# fuzz ${name}: ${report.seedInputs} seeds + ${report.runs} runs in ${report.elapsedMs} ms, ${report.signatures} behaviours, corpus ${report.corpusSize}`);
  });
}
