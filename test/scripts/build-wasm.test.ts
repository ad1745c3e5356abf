/**
 * scripts/build-wasm.mjs turns the WebAssembly text src/core/mask-simd.wat into
 * the bytes the library loads (src/core/mask-simd-bytes.ts, committed so that
 * a checkout compiles without wabt). The two must never drift apart: the
 * committed file must be exactly what the script makes of the .wat today.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

describe('scripts/build-wasm.mjs', () => {
  it('makes of src/core/mask-simd.wat exactly the committed src/core/mask-simd-bytes.ts', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-wasm.mjs'), '--stdout'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, `build-wasm failed: ${r.stderr}`);
    const committed = readFileSync(join(ROOT, 'src', 'core', 'mask-simd-bytes.ts'), 'utf8');
    assert.ok(r.stdout.length > 0, 'build-wasm printed nothing');
    assert.equal(committed, r.stdout, 'src/core/mask-simd-bytes.ts is stale: run node scripts/build-wasm.mjs and commit the result');
  });

  it('says in the generated file where it comes from', () => {
    const committed = readFileSync(join(ROOT, 'src', 'core', 'mask-simd-bytes.ts'), 'utf8');
    assert.match(committed.split('\n')[0], /^\/\/ Generated from src\/core\/mask-simd\.wat by scripts\/build-wasm\.mjs/);
  });
});
