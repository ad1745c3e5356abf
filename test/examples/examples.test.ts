// Runs every example in self-test mode and checks that what it prints is what
// its README says it prints: the ```text block under "## Self-test output",
// line for line. A <name> in that block stands for one word of output, and
// the same <name> must stand for the same word everywhere it appears (so the
// two SHA-256 lines of stream-file must agree). Some examples get further
// checks on the words their placeholders captured.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { testCert } from '../helpers/certs.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SOURCE = `${ROOT}examples/`;
const COMPILED = `${ROOT}dist/examples/`;
const WAIT_MS = 20_000;

/** The examples every checkout must have (the brief lists them); any other directory is checked too. */
const REQUIRED = ['client', 'echo-server', 'stream-file', 'tls-server', 'writable-producer'];

function exampleNames(): string[] {
  return readdirSync(SOURCE)
    .filter((n) => statSync(`${SOURCE}${n}`).isDirectory())
    .sort();
}

/** The lines of the ```text block that follows the "## Self-test output" heading. */
function expectedOutput(readme: string): string[] {
  const at = readme.search(/^## Self-test output$/m);
  assert.notEqual(at, -1, 'README has no "## Self-test output" section');
  const m = /^```text\n([\s\S]*?)^```$/m.exec(readme.slice(at));
  assert.ok(m, 'no ```text block under "## Self-test output"');
  const lines = m[1].replace(/\n$/, '').split('\n');
  assert.ok(lines.length > 0 && lines.every((l) => l.trim() !== ''), 'empty or blank lines in the expected output');
  return lines;
}

/**
 * Matches `actual` against the expected lines; returns what each placeholder
 * captured. Literal text is escaped; <name> matches a run of non-space
 * characters, the same one at each of its appearances.
 */
function matchOutput(expected: string[], actual: string[]): Map<string, string> {
  const captured = new Map<string, string>();
  assert.equal(actual.length, expected.length, `expected ${expected.length} lines, got ${actual.length}:\n${actual.join('\n')}`);
  for (let i = 0; i < expected.length; i++) {
    const names: string[] = [];
    const source = expected[i]
      .split(/(<[a-z0-9-]+>)/)
      .map((part) => {
        const ph = /^<([a-z0-9-]+)>$/.exec(part);
        if (!ph) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        names.push(ph[1]);
        return '(\\S+)';
      })
      .join('');
    const m = new RegExp(`^${source}$`).exec(actual[i]);
    assert.ok(m, `line ${i + 1}:\n  expected ${expected[i]}\n  actual   ${actual[i]}`);
    names.forEach((name, j) => {
      const value = m[j + 1];
      const before = captured.get(name);
      if (before !== undefined) assert.equal(value, before, `<${name}> on line ${i + 1} differs from its earlier value`);
      captured.set(name, value);
    });
  }
  return captured;
}

function runSelfTest(name: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [`${COMPILED}${name}/main.js`, ...args], {
      env: { ...process.env, SOCKEYE_EXAMPLE_SELFTEST: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    // An example that does not end by itself fails here instead of hanging the run.
    const timer = setTimeout(() => child.kill('SIGKILL'), WAIT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Arguments an example needs besides self-test mode. */
function extraArgs(name: string): string[] {
  if (name === 'tls-server') {
    const cert = testCert();
    return ['--cert', cert.certPath, '--key', cert.keyPath];
  }
  return [];
}

/** Examples that must write nothing to stderr. */
const QUIET = new Set(['cluster']);

/** What the placeholders of some examples must satisfy beyond matching. */
const CHECKS: Record<string, (values: Map<string, string>) => void> = {
  'writable-producer'(v) {
    // The stalled client must have made the producer wait at least once...
    assert.ok(Number(v.get('waits')) >= 1, `waits: ${v.get('waits')}`);
    // ...and bufferedAmount stays within one 8 KiB message (plus frame header) over the
    // socket's high-water mark (16 KiB in Node 20; allow 64 KiB), far below the 16 MB sent.
    const max = Number(v.get('max-buffered'));
    assert.ok(max > 0 && max <= 64 * 1024 + 8192 + 14, `max bufferedAmount ${max}`);
  },
  'stream-file'(v) {
    assert.match(v.get('sha256') ?? '', /^[0-9a-f]{64}$/);
    const total = 24 * 1024 * 1024;
    // One message of many fragments, none above the receiver's 1 MiB frame limit.
    assert.ok(Number(v.get('fragments')) > 1, `fragments: ${v.get('fragments')}`);
    assert.ok(Number(v.get('largest')) > 0 && Number(v.get('largest')) <= 1024 * 1024, `largest: ${v.get('largest')}`);
    // The receiver never held the file whole.
    assert.ok(Number(v.get('waiting')) < total, `waiting: ${v.get('waiting')}`);
  },
};

describe('the output matcher', () => {
  it('captures placeholders and requires repeated ones to agree', () => {
    const v = matchOutput(['a <x> b', 'c <x>, <y>'], ['a 12 b', 'c 12, z.q']);
    assert.equal(v.get('x'), '12');
    assert.equal(v.get('y'), 'z.q');
    assert.throws(() => matchOutput(['a <x>', 'b <x>'], ['a 1', 'b 2']), /differs/);
    assert.throws(() => matchOutput(['a (b)'], ['a b']), /line 1/);
    assert.throws(() => matchOutput(['one'], ['one', 'two']), /expected 1 lines/);
    assert.throws(() => matchOutput(['<x>'], ['has space']), /line 1/);
  });
});

describe('examples', { concurrency: 2 }, () => {
  it('every required example exists with main.ts and README.md', () => {
    const names = exampleNames();
    for (const n of REQUIRED) assert.ok(names.includes(n), `examples/${n} is missing`);
    for (const n of names) {
      assert.ok(statSync(`${SOURCE}${n}/main.ts`).isFile(), `examples/${n}/main.ts`);
      assert.ok(statSync(`${SOURCE}${n}/README.md`).isFile(), `examples/${n}/README.md`);
    }
  });

  for (const name of exampleNames()) {
    it(`${name}: self-test exits 0 and prints what its README says`, async () => {
      const expected = expectedOutput(readFileSync(`${SOURCE}${name}/README.md`, 'utf8'));
      const r = await runSelfTest(name, extraArgs(name));
      assert.equal(r.code, 0, `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
      const values = matchOutput(expected, r.stdout.replace(/\n$/, '').split('\n'));
      CHECKS[name]?.(values);
      // A rolling restart is routine: no worker may report an error on the way (the broker's close included).
      if (QUIET.has(name)) assert.equal(r.stderr, '', `${name} wrote to stderr`);
    });
  }
});
