// Runs every compiled test file under dist/test, and the benchmark's own
// tests under bench/test (plain .mjs: they check that the load generators
// catch every broken echo; bench/test/loadgen.test.mjs builds the C generator
// with make first), with node's own test runner.
// Node 20's --test does not expand globs, so the file list is built here.
// Usage: node scripts/run-tests.mjs [substring-filter...]
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function walk(dir, suffix, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, suffix, out);
    else if (name.endsWith(suffix)) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
let files = [...walk('dist/test', '.test.js', []).sort(), ...walk('bench/test', '.test.mjs', []).sort()];
if (filters.length > 0) files = files.filter((f) => filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error('run-tests: no test files found (did the build run?)');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
