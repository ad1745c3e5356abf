// `npm run fuzz`: runs every fuzz target (or those named) for a bounded time.
//
//   npm run fuzz                      every target, 60 s each
//   npm run fuzz -- frame-parser      one target
//   FUZZ_SECONDS=600 npm run fuzz     longer
//   FUZZ_SEED=1234 npm run fuzz       replay a run of the built-in engine
//   FUZZ_ENGINE=builtin|jazzer|auto   (default auto: Jazzer.js when its addon loads)
//
// Findings are written to .tmp/fuzz-findings/<target>/ and make the exit
// code 1. Replay one with: node fuzz/replay.mjs <target> <file>
// Expects a build (the npm script runs `npm run build` first).
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { runFuzz } = await import(join(root, 'dist/fuzz/engine.js'));
const { TARGETS } = await import(join(root, 'dist/fuzz/targets/index.js'));

const seconds = Number(process.env.FUZZ_SECONDS ?? 60);
if (!Number.isFinite(seconds) || seconds <= 0) throw new Error(`FUZZ_SECONDS must be a positive number, got ${process.env.FUZZ_SECONDS}`);
const seed = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) >>> 0 : (Date.now() ^ (process.pid << 16)) >>> 0;
const wanted = process.argv.slice(2);
for (const t of wanted) if (!TARGETS.includes(t)) throw new Error(`unknown target ${t} (targets: ${TARGETS.join(', ')})`);
const targets = wanted.length > 0 ? wanted : TARGETS;

/** Jazzer.js 4's libFuzzer addon is a prebuilt binary; on glibc < 2.38 it cannot load. */
function jazzerUsable() {
  try {
    createRequire(join(root, 'package.json'))('@jazzer.js/fuzzer');
    return { ok: true };
  } catch (err) {
    return { ok: false, why: String(err.message).split('\n')[0] };
  }
}

const engine = process.env.FUZZ_ENGINE ?? 'auto';
let useJazzer = false;
if (engine !== 'builtin') {
  const j = jazzerUsable();
  if (j.ok) useJazzer = true;
  else if (engine === 'jazzer') throw new Error(`FUZZ_ENGINE=jazzer but Jazzer.js cannot load: ${j.why}`);
  else console.log(`Jazzer.js not usable here (${j.why}); using the built-in mutation engine (fuzz/engine.ts).`);
}

let failed = false;
for (const name of targets) {
  const corpus = join(root, 'fuzz/corpus', name);
  const dict = join(root, 'fuzz/dict', `${name}.dict`);
  if (useJazzer) {
    // Coverage-guided run. New inputs go to a scratch corpus (first directory), never into the checked-in seeds.
    const scratch = join(root, '.tmp/fuzz-corpus', name);
    mkdirSync(scratch, { recursive: true });
    const findings = join(root, '.tmp/fuzz-findings', name);
    mkdirSync(findings, { recursive: true });
    const args = ['jazzer', join(root, 'dist/fuzz/targets', `${name}.js`), scratch, corpus, '--includes', 'dist/src', '--includes', 'dist/fuzz'];
    if (name !== 'inflate') args.push('--sync');
    args.push('--', `-max_total_time=${Math.ceil(seconds)}`, `-dict=${dict}`, '-max_len=4096', `-artifact_prefix=${findings}/`);
    console.log(`fuzz ${name} (Jazzer.js, ${seconds} s): npx ${args.join(' ')}`);
    const r = spawnSync('npx', args, { stdio: 'inherit', cwd: root });
    if (r.status !== 0) failed = true;
    continue;
  }
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
    `fuzz ${name}: seed ${seed}, ${report.seedInputs} seeds + ${report.runs} inputs in ${(report.elapsedMs / 1000).toFixed(1)} s (${rate}/s), ` +
      `${report.signatures} behaviours, working corpus ${report.corpusSize}, ${report.findings.length} finding(s)`,
  );
  for (const f of report.findings) {
    failed = true;
    console.log(`  ${f.kind}: ${f.message.split('\n')[0]}\n    input: ${f.file}\n    ${f.stack.split('\n').slice(1, 5).join('\n    ')}`);
  }
}
process.exit(failed ? 1 : 0);
