/**
 * Runs a fuzz target under Jazzer.js (coverage-guided libFuzzer) in a child
 * process and reads libFuzzer's output: the coverage and feature counters
 * after the seed corpus (INITED) and at the end (DONE), executions per
 * second, how many new inputs were kept, and the artifact of a finding.
 * Used by `npm run fuzz` (fuzz/run.mjs) and by test/fuzz/fuzz-short.test.ts.
 *
 * What is built where, and why Jazzer.js 2.1.0 with an addon compiled here,
 * is in fuzz/README.md ("Engine"); scripts/build-jazzer.mjs builds it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';

/** Where the pieces live, relative to the repository root. */
export function jazzerPaths(root: string): { cli: string; cjsDir: string; addon: string } {
  return {
    cli: join(root, 'fuzz', 'jazzer', 'node_modules', '@jazzer.js', 'core', 'dist', 'cli.js'),
    cjsDir: join(root, '.tmp', 'fuzz-cjs'),
    addon: join(root, 'fuzz', 'jazzer', 'node_modules', '@jazzer.js', 'fuzzer', 'build', 'Release', 'jazzerjs.node'),
  };
}

export type JazzerAvailability = { ok: true } | { ok: false; why: string; detail: string };

/**
 * Builds (or finds up to date) everything a Jazzer.js run needs, by running
 * scripts/build-jazzer.mjs. On failure, `why` is the script's last line and
 * `detail` all it wrote to stderr.
 */
export function ensureJazzer(root: string, options: { quiet?: boolean } = {}): JazzerAvailability {
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'build-jazzer.mjs'), ...(options.quiet ? ['--quiet'] : [])], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  if (r.status === 0) return { ok: true };
  const err = (r.stderr ?? '').trim();
  if (!options.quiet && err) process.stderr.write(`${err}\n`);
  const last = err.split('\n').pop() ?? '';
  return { ok: false, why: last.replace(/^build-jazzer: /, '') || `build-jazzer exited with ${r.status ?? r.signal}`, detail: err };
}

export interface JazzerRunOptions {
  root: string;
  /** The CommonJS module that exports `fuzz(data)` (under .tmp/fuzz-cjs). */
  targetFile: string;
  /** Another exported function to fuzz instead of `fuzz`. */
  entryPoint?: string;
  /** Run the target with --sync (it returns nothing) or await its promise. */
  sync: boolean;
  /** -max_total_time. */
  seconds: number;
  /** Corpus directories; libFuzzer writes new inputs to the first one only. */
  corpusDirs: string[];
  /** libFuzzer dictionary (-dict). */
  dictPath?: string;
  maxLen: number;
  /** One input running longer than this is a timeout finding. */
  timeoutMs: number;
  rssLimitMb: number;
  /** Where a finding's input is written (crash-, timeout-, oom- + SHA-1). */
  artifactDir: string;
  /** Path fragments of the files to instrument (Jazzer.js --includes). */
  includes: string[];
  /** libFuzzer -seed (0 or absent: libFuzzer picks one and prints it). */
  seed?: number;
  extraLibFuzzerArgs?: string[];
  /** Called with every line of output as it arrives. */
  onLine?: (line: string) => void;
  /** Extra wall-clock time before the child is killed (startup, the seeds, the last input). */
  graceMs?: number;
}

export interface CoverageStats {
  runs: number;
  cov: number;
  ft: number;
  corp: number;
  execPerSec: number;
}

export type JazzerOutcome = 'ok' | 'finding' | 'timeout' | 'oom' | 'killed' | 'error';

export interface JazzerRunResult {
  outcome: JazzerOutcome;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** After the seed corpus ran. */
  inited?: CoverageStats;
  /** The last status line (DONE at a normal end). */
  last?: CoverageStats;
  /** stat::average_exec_per_sec, over the whole run. */
  averageExecPerSec?: number;
  /** Inputs added to corpusDirs[0] by this run. */
  newInputs: number;
  /** Files written to artifactDir by this run. */
  artifacts: string[];
  /** The finding as Jazzer.js printed it (exception and stack), when there was one. */
  finding?: string;
  /** libFuzzer's seed, as printed. */
  seed?: number;
  elapsedMs: number;
  /** The whole output (stdout and stderr interleaved). */
  output: string;
}

const STATUS = /^#(\d+)\s+(INITED|NEW|REDUCE|pulse|DONE|RELOAD)\s+cov: (\d+) ft: (\d+)(?: corp: (\d+)\/\S+)?.*?exec\/s: (\d+)/;

export function parseStatusLine(line: string): (CoverageStats & { kind: string }) | undefined {
  const m = STATUS.exec(line);
  if (!m) return undefined;
  return { kind: m[2], runs: Number(m[1]), cov: Number(m[3]), ft: Number(m[4]), corp: Number(m[5] ?? 0), execPerSec: Number(m[6]) };
}

function listFiles(dir: string): Set<string> {
  return new Set(existsSync(dir) ? readdirSync(dir) : []);
}

export function runJazzer(o: JazzerRunOptions): Promise<JazzerRunResult> {
  const { cli } = jazzerPaths(o.root);
  mkdirSync(o.artifactDir, { recursive: true });
  for (const d of o.corpusDirs) mkdirSync(d, { recursive: true });
  const beforeCorpus = listFiles(o.corpusDirs[0]);
  const beforeArtifacts = listFiles(o.artifactDir);
  const args = [
    cli,
    o.targetFile,
    ...o.corpusDirs,
    ...(o.entryPoint ? ['--fuzz_entry_point', o.entryPoint] : []),
    ...(o.sync ? ['--sync'] : []),
    ...o.includes.flatMap((i) => ['--includes', i]),
    '--timeout',
    String(o.timeoutMs),
    '--',
    `-max_total_time=${Math.max(1, Math.ceil(o.seconds))}`,
    `-max_len=${o.maxLen}`,
    `-rss_limit_mb=${o.rssLimitMb}`,
    `-artifact_prefix=${o.artifactDir.endsWith('/') ? o.artifactDir : `${o.artifactDir}/`}`,
    '-print_final_stats=1',
    ...(o.dictPath ? [`-dict=${o.dictPath}`] : []),
    ...(o.seed ? [`-seed=${o.seed}`] : []),
    ...(o.extraLibFuzzerArgs ?? []),
  ];
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: o.root, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let partial = '';
    let inited: CoverageStats | undefined;
    let last: CoverageStats | undefined;
    let averageExecPerSec: number | undefined;
    let seed: number | undefined;
    const onData = (chunk: Buffer): void => {
      const text = chunk.toString('utf8');
      // Bounded: a run prints a few hundred KB at most, but never keep more than 8 MB.
      if (output.length < 8 << 20) output += text;
      partial += text;
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const s = parseStatusLine(line);
        if (s) {
          if (s.kind === 'INITED') inited = s;
          last = s;
        }
        const avg = /^stat::average_exec_per_sec:\s+(\d+)/.exec(line);
        if (avg) averageExecPerSec = Number(avg[1]);
        const sd = /^INFO: Seed: (\d+)/.exec(line);
        if (sd) seed = Number(sd[1]);
        o.onLine?.(line);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    let killed = false;
    const limit = Math.ceil(o.seconds * 1000) + o.timeoutMs + (o.graceMs ?? 60_000);
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, limit);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (partial) onData(Buffer.from('\n'));
      let artifacts = [...listFiles(o.artifactDir)].filter((f) => !beforeArtifacts.has(f));
      let outcome: JazzerOutcome;
      if (killed) outcome = 'killed';
      else if (code === 0) outcome = 'ok';
      else if (artifacts.some((a) => a.startsWith('oom-'))) outcome = 'oom';
      else if (code === 70) outcome = 'timeout';
      else if (code === 77) outcome = 'finding';
      else outcome = 'error';
      if (outcome === 'timeout') {
        // The timeout watchdog (fuzz/jazzer/native/jazzer-shim.cpp) dumps through libFuzzer's crash path;
        // in --sync mode libFuzzer's own alarm may have written timeout-<same sha1> as well.
        artifacts = [
          ...new Set(
            artifacts.map((a) => {
              if (!a.startsWith('crash-')) return a;
              const renamed = `timeout-${a.slice('crash-'.length)}`;
              renameSync(join(o.artifactDir, a), join(o.artifactDir, renamed));
              return renamed;
            }),
          ),
        ];
      }
      const m = /^==\d+== (?:Uncaught Exception: )?([\s\S]*?)\n(?:MS: |==\d+== |artifact_prefix=)/m.exec(output);
      const newInputs = [...listFiles(o.corpusDirs[0])].filter((f) => !beforeCorpus.has(f)).length;
      resolve({
        outcome,
        exitCode: code,
        signal,
        inited,
        last,
        averageExecPerSec,
        newInputs,
        artifacts: artifacts.map((a) => join(o.artifactDir, a)),
        finding: outcome === 'finding' || outcome === 'timeout' ? m?.[1]?.trim() : undefined,
        seed,
        elapsedMs: Date.now() - started,
        output,
      });
    });
  });
}
