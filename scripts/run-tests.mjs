// Runs every compiled test file under dist/test, and the benchmark's own
// tests under bench/test (plain .mjs: they check that the load generators
// catch every broken echo; bench/test/loadgen.test.mjs builds the C generator
// with make first), with node's own test runner.
// Node 20's --test does not expand globs, so the file list is built here.
// At the end it lists every test and suite that was skipped, with its reason.
// Usage: node scripts/run-tests.mjs [substring-filter...]
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';

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
// The runner's output goes through as it comes; skipped tests and suites (a peer that is not
// installed, say) are collected on the way and listed again at the very end, where they are seen:
// node's own count leaves skipped suites out.
// connect() follows the proxy environment variables as curl does; the tests talk to servers on
// 127.0.0.1 and must not go through a proxy the machine happens to set (the proxy tests pass theirs
// explicitly: test/client/proxy*.test.ts, test/cli/proxy-cli.test.ts).
const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(?:ws|wss|http|https|all|no)_proxy$/i.test(name)));
// --test-force-exit: a test file whose tests have all finished ends even if it left a handle open (a
// socket that reconnects, a timer), so one such leak fails or passes that file instead of hanging the run.
const child = spawn(process.execPath, ['--test', '--test-force-exit', '--test-concurrency=2', ...files], { stdio: ['inherit', 'pipe', 'inherit'], env });
const skipped = [];
let partial = '';
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  const lines = (partial + chunk.toString('utf8')).split('\n');
  partial = lines.pop() ?? '';
  for (const line of lines) {
    const m = /^\s*ok \d+ - (.*?) # SKIP\s*(.*)$/.exec(line);
    if (m) skipped.push(`${m[1]}${m[2] ? `: ${m[2]}` : ''}`);
  }
});
child.on('close', (code, signal) => {
  if (skipped.length === 0) console.log('# run-tests: nothing skipped');
  else {
    console.log(`# run-tests: ${skipped.length} skipped (tests or whole suites), each with its reason:`);
    for (const s of skipped) console.log(`#   ${s}`);
  }
  process.exit(code ?? (signal ? 1 : 0));
});
