/**
 * sockeye's built-in fuzzing engine: a structure-aware mutation fuzzer
 * without coverage instrumentation. Jazzer.js (coverage-guided) is the
 * engine of `npm run fuzz` and CI; this one is the fallback where Jazzer.js
 * cannot be built (FUZZ_ENGINE=builtin selects it; see fuzz/README.md). The
 * targets export both Jazzer.js's `fuzz(data)` and this engine's `target`.
 *
 * How it works: the checked-in seed corpus (fuzz/corpus/<target>/) is run
 * first, then inputs are derived from it by stacked mutations (bit flips,
 * byte insertions and deletions, block duplication, splicing two inputs,
 * dictionary tokens from fuzz/dict/<target>.dict, tweaks of 1/2/4/8-byte
 * big-endian numbers such as length fields, truncation) and by the target's
 * own structure-aware mutator (frames, head lines, extension parameters).
 * Without coverage feedback, an input is kept as a further seed when the
 * target reports a behaviour signature not seen before (which events and
 * error codes it produced).
 *
 * Everything is determined by the seed: a run is reproducible, and the
 * input of a finding is saved so that it replays on its own.
 *
 * The fuzz loop runs in a worker thread so that the main thread can detect
 * a hang (no progress for hangMs) and stop it: a synchronous infinite loop
 * cannot be interrupted from inside. The worker shares the input in flight
 * through a SharedArrayBuffer, so a hang or a crash of the worker (an
 * exception thrown asynchronously) is still reported with its input.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { Rng } from './rng.js';
import type { FuzzTarget } from './targets/common.js';
import { loadTarget, type TargetName } from './targets/index.js';

export interface FuzzOptions {
  target: TargetName | string;
  /**
   * URL of a module exporting `target` to fuzz instead of the named one
   * (the engine's own tests use a target with planted bugs).
   */
  targetModule?: string;
  /** PRNG seed; the same seed, corpus and dictionary give the same inputs. */
  seed: number;
  /** Most mutated inputs to run (after the seeds). */
  runs: number;
  /** Most seconds to fuzz (after the seeds); whichever of runs and seconds comes first ends the run. */
  seconds: number;
  /** Seed corpus directory (every file is one input). */
  corpusDir: string;
  /** libFuzzer-format dictionary file, if any. */
  dictPath?: string;
  /** A run with no progress for this long is a hang. Default 30000. */
  hangMs?: number;
  /** Where to write the inputs of findings; default: not written. */
  findingsDir?: string;
  /** Stop after this many distinct findings. Default 5. */
  maxFindings?: number;
}

export interface Finding {
  /** 'exception' (thrown by the target), 'hang', or 'crash' (the worker died). */
  kind: 'exception' | 'hang' | 'crash';
  message: string;
  stack: string;
  input: Buffer;
  /** Where the input was written, if findingsDir was given. */
  file?: string;
}

export interface FuzzReport {
  target: string;
  seed: number;
  /** Seed inputs run as they are. */
  seedInputs: number;
  /** Mutated inputs run. */
  runs: number;
  /** Distinct behaviour signatures seen. */
  signatures: number;
  /** Inputs in the working corpus at the end (seeds plus kept inputs). */
  corpusSize: number;
  elapsedMs: number;
  findings: Finding[];
}

// ---------------------------------------------------------------- corpus & dictionary

export function loadCorpus(dir: string): Buffer[] {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return [];
  }
  return names.filter((n) => !n.startsWith('.')).map((n) => readFileSync(join(dir, n)));
}

/**
 * libFuzzer / AFL dictionary syntax: one token per line, `name="value"` or
 * `"value"`, with \\, \" and \xNN escapes; '#' starts a comment line.
 */
export function parseDictionary(text: string): Buffer[] {
  const out: Buffer[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const q = line.indexOf('"');
    if (q < 0 || !line.endsWith('"') || line.length - q < 2) throw new Error(`bad dictionary line: ${line}`);
    const body = line.slice(q + 1, -1);
    const bytes: number[] = [];
    for (let i = 0; i < body.length; i++) {
      const c = body[i];
      if (c !== '\\') {
        bytes.push(body.charCodeAt(i) & 0xff);
        continue;
      }
      const n = body[i + 1];
      if (n === 'x') {
        bytes.push(parseInt(body.slice(i + 2, i + 4), 16));
        i += 3;
      } else {
        bytes.push(n.charCodeAt(0));
        i += 1;
      }
    }
    out.push(Buffer.from(bytes));
  }
  return out;
}

// ---------------------------------------------------------------- mutation

const INTERESTING_8 = [0, 1, 0x7e, 0x7f, 0x80, 0x81, 0xff, 0x7d, 0x0d, 0x0a, 0x20, 0x09, 0x2c, 0x3b, 0x3d, 0x22, 0x3a, 0x00];
const INTERESTING_16 = [0, 0x7d, 0x7e, 0x7f, 0xff, 0x100, 0x3e8, 0x3ed, 0x3ee, 0x7fff, 0x8000, 0xfffe, 0xffff];

/** Stacked mutations of `input` (1-5 of them), cut to maxLen. */
export function mutate(input: Buffer, corpus: readonly Buffer[], dict: readonly Buffer[], rng: Rng, target: FuzzTarget): Buffer {
  let b: Buffer = Buffer.from(input);
  const stack = 1 + rng.below(5);
  for (let s = 0; s < stack; s++) {
    const op = rng.below(target.mutate ? 14 : 11);
    switch (op) {
      case 0: // flip a bit
        if (b.length > 0) b[rng.below(b.length)] ^= 1 << rng.below(8);
        break;
      case 1: // random byte
        if (b.length > 0) b[rng.below(b.length)] = rng.below(256);
        break;
      case 2: // interesting byte
        if (b.length > 0) b[rng.below(b.length)] = rng.pick(INTERESTING_8);
        break;
      case 3: {
        // insert random bytes
        const at = rng.below(b.length + 1);
        b = Buffer.concat([b.subarray(0, at), rng.bytes(1 + rng.below(8)), b.subarray(at)]);
        break;
      }
      case 4: {
        // delete a range
        if (b.length < 2) break;
        const at = rng.below(b.length);
        const n = 1 + rng.below(Math.min(32, b.length - at));
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + n)]);
        break;
      }
      case 5: {
        // duplicate a block somewhere (repeated frames, headers, parameters)
        if (b.length === 0) break;
        const from = rng.below(b.length);
        const n = 1 + rng.below(Math.min(64, b.length - from));
        const block = b.subarray(from, from + n);
        const times = rng.oneIn(4) ? 1 + rng.below(16) : 1;
        const at = rng.below(b.length + 1);
        b = Buffer.concat([b.subarray(0, at), ...Array.from({ length: times }, () => block), b.subarray(at)]);
        break;
      }
      case 6: {
        // splice: a prefix of this input and a suffix of another
        const other = rng.pick(corpus);
        if (other.length === 0) break;
        b = Buffer.concat([b.subarray(0, rng.below(b.length + 1)), other.subarray(rng.below(other.length))]);
        break;
      }
      case 7:
      case 8: {
        // dictionary token, inserted or written over
        if (dict.length === 0) break;
        const token = rng.pick(dict);
        const at = rng.below(b.length + 1);
        b = op === 7 ? Buffer.concat([b.subarray(0, at), token, b.subarray(at)]) : Buffer.concat([b.subarray(0, at), token, b.subarray(Math.min(b.length, at + token.length))]);
        break;
      }
      case 9: {
        // tweak a big-endian number: length fields, close codes, window bits
        const width = rng.pick([1, 2, 2, 4, 8]);
        if (b.length < width) break;
        const at = rng.below(b.length - width + 1);
        if (width === 2 && rng.oneIn(2)) {
          b.writeUInt16BE(rng.pick(INTERESTING_16), at);
        } else {
          let v = 0n;
          for (let i = 0; i < width; i++) v = (v << 8n) | BigInt(b[at + i]);
          v += BigInt(rng.range(-35, 35));
          if (rng.oneIn(4)) v = rng.oneIn(2) ? (1n << BigInt(width * 8 - 1)) : (1n << BigInt(width * 8)) - 1n;
          for (let i = width - 1; i >= 0; i--) {
            b[at + i] = Number(v & 0xffn);
            v >>= 8n;
          }
        }
        break;
      }
      case 10: // truncate
        if (b.length > 2) b = b.subarray(0, 2 + rng.below(b.length - 2));
        break;
      default: {
        const m = target.mutate!(b, rng);
        if (m) b = m;
        break;
      }
    }
  }
  return b.length > target.maxLen ? Buffer.from(b.subarray(0, target.maxLen)) : Buffer.from(b);
}

// ---------------------------------------------------------------- worker side

/** Shared layout: [0] inputs started, [1] length of the input in flight, then its bytes. */
const SHARED_HEADER = 8;

interface WorkerInput {
  sockeyeFuzzWorker: true;
  options: FuzzOptions;
  shared: SharedArrayBuffer;
}

async function workerMain(init: WorkerInput): Promise<void> {
  const { options, shared } = init;
  const counters = new Int32Array(shared, 0, 2);
  const inFlight = new Uint8Array(shared, SHARED_HEADER);
  const target: FuzzTarget = options.targetModule ? (await import(options.targetModule)).target : await loadTarget(options.target as TargetName);
  const seeds = loadCorpus(options.corpusDir);
  const dict = options.dictPath ? parseDictionary(readFileSync(options.dictPath, 'utf8')) : [];
  const corpus: Buffer[] = seeds.length > 0 ? [...seeds] : [Buffer.alloc(2)];
  const signatures = new Set<string>();
  const findings: Array<Omit<Finding, 'file'>> = [];
  const findingKeys = new Set<string>();
  const maxFindings = options.maxFindings ?? 5;
  const rng = new Rng(options.seed);

  const exec = async (input: Buffer): Promise<string | null> => {
    const n = Math.min(input.length, inFlight.length);
    inFlight.set(input.subarray(0, n));
    Atomics.store(counters, 1, n);
    Atomics.add(counters, 0, 1);
    try {
      const sig = target.async ? await target.run(input) : (target.run(input) as string);
      // Let timers and immediates the input scheduled run now, while it is still the input in flight:
      // an exception they throw kills the worker and is reported against this input.
      await new Promise((resolve) => setImmediate(resolve));
      return sig;
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      // Deduplicate on the kind and first line (numbers vary between inputs of one bug).
      const key = `${e.name}:${e.message.split('\n')[0].replace(/\d+/g, 'N')}`;
      if (!findingKeys.has(key)) {
        findingKeys.add(key);
        findings.push({ kind: 'exception', message: `${e.name}: ${e.message}`, stack: e.stack ?? '', input: Buffer.from(input) });
      }
      return null;
    }
  };

  const started = Date.now();
  for (const s of seeds) {
    const sig = await exec(s);
    if (sig !== null) signatures.add(sig);
  }
  const deadline = Date.now() + options.seconds * 1000;
  let runs = 0;
  while (runs < options.runs && Date.now() < deadline && findings.length < maxFindings) {
    // Prefer recently kept inputs a little: they hold the newest behaviour.
    const parent = rng.oneIn(3) ? corpus[corpus.length - 1 - rng.below(Math.min(32, corpus.length))] : rng.pick(corpus);
    const child = mutate(parent, corpus, dict, rng, target);
    runs++;
    const sig = await exec(child);
    if (sig !== null && !signatures.has(sig)) {
      signatures.add(sig);
      if (corpus.length < 4096) corpus.push(child);
    }
  }
  const report: Omit<FuzzReport, 'findings'> & { findings: Array<Omit<Finding, 'file'>> } = {
    target: options.target,
    seed: options.seed,
    seedInputs: seeds.length,
    runs,
    signatures: signatures.size,
    corpusSize: corpus.length,
    elapsedMs: Date.now() - started,
    findings,
  };
  parentPort!.postMessage(report);
}

if (!isMainThread && (workerData as WorkerInput | null)?.sockeyeFuzzWorker) {
  workerMain(workerData as WorkerInput).catch((err) => {
    // Failing to load the target or the corpus: report it as a crash through the error channel.
    throw err;
  });
}

// ---------------------------------------------------------------- main side

function saveFinding(f: Omit<Finding, 'file'>, dir: string | undefined, target: string): Finding {
  if (!dir) return f;
  const d = join(dir, target);
  mkdirSync(d, { recursive: true });
  const file = join(d, `${f.kind}-${createHash('sha1').update(f.input).digest('hex').slice(0, 16)}`);
  writeFileSync(file, f.input);
  return { ...f, file };
}

/** Fuzzes one target in a worker thread; resolves with the report (findings included, never rejects for them). */
export function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const hangMs = options.hangMs ?? 30_000;
  const shared = new SharedArrayBuffer(SHARED_HEADER + 1024 * 1024);
  const counters = new Int32Array(shared, 0, 2);
  const inFlight = new Uint8Array(shared, SHARED_HEADER);
  const currentInput = (): Buffer => Buffer.from(inFlight.subarray(0, Atomics.load(counters, 1)));
  const started = Date.now();
  const worker = new Worker(new URL(import.meta.url), { workerData: { sockeyeFuzzWorker: true, options, shared } satisfies WorkerInput });

  return new Promise<FuzzReport>((resolve, reject) => {
    let settled = false;
    let lastCount = -1;
    let lastChange = Date.now();
    const partial = (finding: Omit<Finding, 'file'>): FuzzReport => ({
      target: options.target,
      seed: options.seed,
      seedInputs: -1,
      runs: Atomics.load(counters, 0),
      signatures: -1,
      corpusSize: -1,
      elapsedMs: Date.now() - started,
      findings: [saveFinding(finding, options.findingsDir, options.target)],
    });
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearInterval(watchdog);
      fn();
    };
    const watchdog = setInterval(() => {
      const count = Atomics.load(counters, 0);
      if (count !== lastCount) {
        lastCount = count;
        lastChange = Date.now();
        return;
      }
      if (Date.now() - lastChange >= hangMs) {
        const input = currentInput();
        void worker.terminate();
        settle(() => resolve(partial({ kind: 'hang', message: `no progress for ${hangMs} ms on one input`, stack: '', input })));
      }
    }, 100);
    worker.once('message', (report: FuzzReport) => {
      settle(() => resolve({ ...report, findings: report.findings.map((f) => saveFinding({ ...f, input: Buffer.from(f.input) }, options.findingsDir, options.target)) }));
      void worker.terminate();
    });
    worker.once('error', (err) => {
      const input = currentInput();
      settle(() => resolve(partial({ kind: 'crash', message: `worker died: ${err.name}: ${err.message}`, stack: err.stack ?? '', input })));
    });
    worker.once('exit', (code) => {
      settle(() => reject(new Error(`fuzz worker for ${options.target} exited with code ${code} before reporting`)));
    });
  });
}

/** Runs one input through a target in this thread (replaying a finding or a corpus file). */
export async function replay(name: TargetName, input: Buffer): Promise<string> {
  const target = await loadTarget(name);
  return target.run(input);
}
