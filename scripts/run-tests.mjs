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
// Each file runs in a node --test process of its own, two at a time, each bounded in time: a file
// that leaves a handle open (a socket that reconnects, a timer) is killed after FILE_TIMEOUT_MS and
// fails the run, named, instead of hanging it. Not --test-force-exit: with several files at once it
// can drop the last verdicts a file's process reported before exiting (nodejs/node#64833), so a
// run's counts, even a failure's name, could go missing while it still passed.
const FILE_TIMEOUT_MS = Number(process.env.RUN_TESTS_FILE_TIMEOUT_MS) || 10 * 60_000;
const CONCURRENCY = 2;
const skipped = [];
const failedFiles = [];
const totals = { tests: 0, suites: 0, pass: 0, fail: 0, cancelled: 0, skipped: 0, todo: 0 };

/** Runs one file; resolves when its process has exited, with its TAP output printed as one block. */
function runFile(file) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--test', '--test-reporter=tap', file], { stdio: ['ignore', 'pipe', 'pipe'], env });
    const out = [];
    child.stdout.on('data', (c) => out.push(c));
    child.stderr.on('data', (c) => out.push(c));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, FILE_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const text = Buffer.concat(out).toString('utf8');
      process.stdout.write(`# file: ${file}\n${text}${text.endsWith('\n') ? '' : '\n'}`);
      for (const line of text.split('\n')) {
        const m = /^\s*ok \d+ - (.*?) # SKIP\s*(.*)$/.exec(line);
        if (m) skipped.push(`${m[1]}${m[2] ? `: ${m[2]}` : ''}`);
        const t = /^# (tests|suites|pass|fail|cancelled|skipped|todo) (\d+)$/.exec(line);
        if (t) totals[t[1]] += Number(t[2]);
      }
      if (timedOut) failedFiles.push(`${file}: still running after ${FILE_TIMEOUT_MS / 1000} s (a handle left open?), killed`);
      else if (code !== 0) failedFiles.push(`${file}: exit ${code ?? signal}`);
      resolve();
    });
  });
}

const queue = [...files];
await Promise.all(
  Array.from({ length: CONCURRENCY }, async () => {
    while (queue.length > 0) await runFile(queue.shift());
  }),
);
console.log(`# run-tests: ${files.length} files; ${Object.entries(totals).map(([k, v]) => `${k} ${v}`).join(', ')}`);
if (skipped.length === 0) console.log('# run-tests: nothing skipped');
else {
  console.log(`# run-tests: ${skipped.length} skipped (tests or whole suites), each with its reason:`);
  for (const s of skipped) console.log(`#   ${s}`);
}
if (failedFiles.length > 0) {
  console.log(`# run-tests: ${failedFiles.length} files failed:`);
  for (const f of failedFiles) console.log(`#   ${f}`);
  process.exit(1);
}
