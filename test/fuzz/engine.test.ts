/**
 * Tests of the fuzzing engine itself (fuzz/engine.ts): a fuzzer that cannot
 * find a planted bug, or that loses a hang or a crash, would make
 * fuzz-short.test.ts pass for nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mutate, parseDictionary, runFuzz, type FuzzOptions } from '../../fuzz/engine.js';
import { Rng, splitChunks } from '../../fuzz/rng.js';
import { target as planted } from './planted-target.js';

const PLANTED = new URL('./planted-target.js', import.meta.url).href;
const HELLO = Buffer.from([1, 7, 0x81, 0x05, ...Buffer.from('Hello')]);

function corpusWith(...inputs: Buffer[]): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'sockeye-fuzz-'));
  inputs.forEach((b, i) => writeFileSync(join(dir, `seed-${i}`), b));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function options(dir: string, extra: Partial<FuzzOptions>): FuzzOptions {
  return { target: 'planted', targetModule: PLANTED, seed: 42, runs: 20_000, seconds: 60, corpusDir: dir, ...extra };
}

test('finds a planted TypeError behind a structured input (a close frame with code 1005), reproducibly', { timeout: 120_000 }, async () => {
  const c = corpusWith(HELLO);
  try {
    const a = await runFuzz(options(c.dir, { maxFindings: 1 }));
    assert.equal(a.findings.length, 1, 'the planted bug was not found');
    const f = a.findings[0];
    assert.equal(f.kind, 'exception');
    assert.match(f.message, /^TypeError/);
    assert.ok(a.runs > 0 && a.runs < 20_000, `found after ${a.runs} runs`);
    // The saved input alone triggers the bug again.
    assert.throws(() => planted.run(f.input), TypeError);
    // Same seed, same corpus: the same run.
    const b = await runFuzz(options(c.dir, { maxFindings: 1 }));
    assert.equal(b.runs, a.runs);
    assert.deepEqual(b.findings[0].input, f.input);
  } finally {
    c.cleanup();
  }
});

test('a hang is stopped by the watchdog and reported with its input', { timeout: 60_000 }, async () => {
  const hang = Buffer.concat([HELLO, Buffer.from('HANG')]);
  const c = corpusWith(HELLO, hang);
  try {
    const r = await runFuzz(options(c.dir, { hangMs: 1500 }));
    assert.equal(r.findings.length, 1);
    assert.equal(r.findings[0].kind, 'hang');
    assert.deepEqual(r.findings[0].input, hang);
  } finally {
    c.cleanup();
  }
});

test('an asynchronous exception that kills the worker is reported as a crash with its input', { timeout: 60_000 }, async () => {
  const boom = Buffer.concat([HELLO, Buffer.from('BOOM')]);
  const c = corpusWith(boom);
  try {
    const r = await runFuzz(options(c.dir, {}));
    assert.equal(r.findings.length, 1);
    assert.equal(r.findings[0].kind, 'crash');
    assert.match(r.findings[0].message, /planted asynchronous crash/);
    assert.deepEqual(r.findings[0].input, boom);
  } finally {
    c.cleanup();
  }
});

test('dictionaries are read in libFuzzer syntax', () => {
  const d = parseDictionary('# comment\nname="a\\x00b"\n"\\"q\\\\"\n\nx="\\xff"\n');
  assert.deepEqual(d, [Buffer.from([0x61, 0, 0x62]), Buffer.from('"q\\'), Buffer.from([0xff])]);
  assert.throws(() => parseDictionary('no quotes'), /bad dictionary line/);
});

test('mutations stay within maxLen, vary, and are determined by the seed', () => {
  const corpus = [HELLO, Buffer.from([0, 0, 0x89, 0x00])];
  const dict = [Buffer.from([0x88, 0x02, 0x03, 0xed])];
  const run = (seed: number): string[] => {
    const rng = new Rng(seed);
    return Array.from({ length: 500 }, () => mutate(HELLO, corpus, dict, rng, planted).toString('hex'));
  };
  const a = run(7);
  assert.deepEqual(run(7), a);
  assert.ok(new Set(a).size > 300, `only ${new Set(a).size} distinct mutants of 500`);
  const big = new Rng(1);
  for (let i = 0; i < 300; i++) assert.ok(mutate(Buffer.alloc(1000, 0x41), corpus, dict, big, planted).length <= planted.maxLen);
});

test('split points cover every byte once, in order', () => {
  const data = Buffer.from(Array.from({ length: 5000 }, (_, i) => i & 0xff));
  for (let seed = 0; seed < 20; seed++) {
    const chunks = splitChunks(data, new Rng(seed));
    assert.ok(chunks.every((c) => c.length > 0));
    assert.deepEqual(Buffer.concat(chunks), data);
  }
});
