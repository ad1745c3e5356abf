/**
 * Regression inputs for the fuzz targets, replayed in this process (plain
 * stack traces, no worker): every file of fuzz/regressions/<target>/ (inputs
 * of past findings, kept once fixed) and every seed of fuzz/corpus/<target>/.
 * Each must run through its target without a finding.
 *
 * To add a finding: copy its input from .tmp/fuzz-findings/<target>/ (or
 * the hex printed by fuzz-short.test.ts) to fuzz/regressions/<target>/<name>,
 * fix the bug, and this test keeps it fixed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TARGETS, loadTarget } from '../../fuzz/targets/index.js';

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..');

function files(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((n) => !n.startsWith('.') && !n.endsWith('.md')).sort().map((n) => join(dir, n)) : [];
}

for (const name of TARGETS) {
  test(`${name}: regression inputs and seed corpus replay without a finding`, { timeout: 60_000 }, async () => {
    const target = await loadTarget(name);
    const regressions = files(join(ROOT, 'fuzz', 'regressions', name));
    const seeds = files(join(ROOT, 'fuzz', 'corpus', name));
    assert.ok(seeds.length >= 10, `only ${seeds.length} seeds for ${name}`);
    const signatures = new Set<string>();
    for (const file of [...regressions, ...seeds]) {
      try {
        signatures.add(await target.run(readFileSync(file)));
      } catch (err) {
        assert.fail(`${file}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      }
    }
    // The seeds are chosen to cover different paths; many identical outcomes would mean a broken target.
    assert.ok(signatures.size >= Math.min(8, seeds.length / 2), `${name}: only ${signatures.size} distinct outcomes from ${seeds.length} seeds`);
  });
}
