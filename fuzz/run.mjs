// `npm run fuzz`: runs every fuzz target (or those named) for a bounded time.
//
//   npm run fuzz                      every target, 60 s each
//   npm run fuzz -- frame-parser      one target
//   FUZZ_SECONDS=600 npm run fuzz     longer
//   FUZZ_SEED=1234 npm run fuzz       libFuzzer -seed (or the built-in engine's seed)
//   FUZZ_ENGINE=auto|jazzer|builtin   auto (default): Jazzer.js when it can be
//                                     built here, else the built-in engine, loudly
//   FUZZ_TIMEOUT_MS=25000             one input running longer is a finding (Jazzer.js)
//   FUZZ_RSS_MB=2048                  -rss_limit_mb (Jazzer.js)
//   FUZZ_VERBOSE=1                    print libFuzzer's NEW/REDUCE lines too
//
// Jazzer.js keeps the inputs it finds interesting in .tmp/fuzz-corpus/<target>/
// (reused by the next run); the checked-in seeds in fuzz/corpus/<target>/ are
// only read. Findings are written to .tmp/fuzz-findings/<target>/ and make the
// exit code 1; the whole libFuzzer output goes to .tmp/fuzz-logs/<target>.log.
// Replay a finding with: node fuzz/replay.mjs <target> <file>
// Expects a build (the npm script runs `npm run build` first).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { runFuzz } = await import(join(root, 'dist/fuzz/engine.js'));
const { TARGETS, loadTarget } = await import(join(root, 'dist/fuzz/targets/index.js'));
const { ensureJazzer, jazzerPaths, runJazzer } = await import(join(root, 'dist/fuzz/jazzer-runner.js'));

function numberFromEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${raw}`);
  return n;
}

const seconds = numberFromEnv('FUZZ_SECONDS', 60);
const timeoutMs = numberFromEnv('FUZZ_TIMEOUT_MS', 25_000);
const rssLimitMb = numberFromEnv('FUZZ_RSS_MB', 2048);
const verbose = process.env.FUZZ_VERBOSE === '1';
const seedEnv = process.env.FUZZ_SEED !== undefined && process.env.FUZZ_SEED !== '' ? Number(process.env.FUZZ_SEED) >>> 0 : undefined;
const wanted = process.argv.slice(2);
for (const t of wanted) if (!TARGETS.includes(t)) throw new Error(`unknown target ${t} (targets: ${TARGETS.join(', ')})`);
const targets = wanted.length > 0 ? wanted : TARGETS;

const engine = process.env.FUZZ_ENGINE ?? 'auto';
if (!['auto', 'jazzer', 'builtin'].includes(engine)) throw new Error(`FUZZ_ENGINE must be auto, jazzer or builtin, got ${engine}`);
let useJazzer = false;
if (engine !== 'builtin') {
  const j = ensureJazzer(root);
  if (j.ok) useJazzer = true;
  else if (engine === 'jazzer') {
    console.error(`FUZZ_ENGINE=jazzer, but Jazzer.js cannot be built here: ${j.why}`);
    process.exit(1);
  } else {
    console.error(
      '\n' +
        '*** Jazzer.js (coverage-guided) is NOT available here:\n' +
        `***   ${j.why}\n` +
        '*** Falling back to the built-in mutation engine, which has NO coverage feedback.\n' +
        '*** See fuzz/README.md ("Engine") for what the Jazzer.js build needs.\n',
    );
  }
}

function shortLine(line) {
  if (verbose) return true;
  if (/^#\d+\s+(NEW|REDUCE)\s/.test(line)) return false;
  if (/^"/.test(line) || /Recommended dictionary/.test(line)) return false;
  return line.trim() !== '';
}

let failed = false;
for (const name of targets) {
  const corpus = join(root, 'fuzz/corpus', name);
  const regressions = join(root, 'fuzz/regressions', name);
  const dict = join(root, 'fuzz/dict', `${name}.dict`);
  const findings = join(root, '.tmp/fuzz-findings', name);
  if (useJazzer) {
    const target = await loadTarget(name);
    const { cjsDir } = jazzerPaths(root);
    const scratch = join(root, '.tmp/fuzz-corpus', name);
    const logs = join(root, '.tmp/fuzz-logs');
    mkdirSync(logs, { recursive: true });
    console.log(`\nfuzz ${name}: Jazzer.js (libFuzzer), ${seconds} s, ${target.async ? 'async' : '--sync'}; new inputs go to ${relative(root, scratch)}/`);
    const r = await runJazzer({
      root,
      targetFile: join(cjsDir, 'fuzz', 'targets', `${name}.js`),
      sync: !target.async,
      seconds,
      corpusDirs: [scratch, corpus, ...(existsSync(regressions) ? [regressions] : [])],
      dictPath: dict,
      maxLen: target.maxLen,
      timeoutMs,
      rssLimitMb,
      artifactDir: findings,
      // Only sockeye's code is instrumented, not the harness around it.
      includes: [`${join(cjsDir, 'src')}/`],
      seed: seedEnv,
      onLine: (line) => {
        if (shortLine(line)) console.log(`  ${line}`);
      },
    });
    const log = join(logs, `${name}.log`);
    writeFileSync(log, r.output);
    const i = r.inited;
    const e = r.last;
    console.log(
      `fuzz ${name}: ${r.outcome}; seed ${r.seed ?? '?'}; ` +
        (i && e ? `cov ${i.cov} -> ${e.cov}, ft ${i.ft} -> ${e.ft}, corpus ${i.corp} -> ${e.corp} (${r.newInputs} new files), ${e.runs} runs, ` : '') +
        `${r.averageExecPerSec ?? e?.execPerSec ?? '?'} exec/s, ${(r.elapsedMs / 1000).toFixed(1)} s; log ${relative(root, log)}`,
    );
    if (r.outcome !== 'ok') {
      failed = true;
      if (r.finding) console.log(`  ${r.finding.split('\n').slice(0, 8).join('\n  ')}`);
      for (const a of r.artifacts) console.log(`  input: ${relative(root, a)}\n  replay: node fuzz/replay.mjs ${name} ${relative(root, a)}`);
      if (r.artifacts.length === 0) console.log(`  (no input saved; exit code ${r.exitCode}, signal ${r.signal}; see the log)`);
    }
    continue;
  }
  const seed = seedEnv ?? (Date.now() ^ (process.pid << 16)) >>> 0;
  const report = await runFuzz({
    target: name,
    seed,
    runs: Number.MAX_SAFE_INTEGER,
    seconds,
    corpusDir: corpus,
    dictPath: dict,
    findingsDir: join(root, '.tmp/fuzz-findings'),
  });
  const rate = Math.round((report.runs / Math.max(1, report.elapsedMs)) * 1000);
  console.log(
    `fuzz ${name} (built-in engine, no coverage feedback): seed ${seed}, ${report.seedInputs} seeds + ${report.runs} inputs in ${(report.elapsedMs / 1000).toFixed(1)} s (${rate}/s), ` +
      `${report.signatures} behaviours, working corpus ${report.corpusSize}, ${report.findings.length} finding(s)`,
  );
  for (const f of report.findings) {
    failed = true;
    console.log(`  ${f.kind}: ${f.message.split('\n')[0]}\n    input: ${f.file}\n    ${f.stack.split('\n').slice(1, 5).join('\n    ')}`);
  }
}
process.exit(failed ? 1 : 0);
