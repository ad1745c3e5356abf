// XOR masking benchmark (RFC 6455 section 5.3): in-place unmasking speed of
// src/core/mask.ts's paths, in GB/s, for each size:
//
//   js          the JavaScript path applyMaskKey takes at that size where
//               WebAssembly SIMD is missing (a byte loop, then 32-bit words
//               through an Int32Array, then 64-bit words through a
//               BigUint64Array; --paths times each of them at every size)
//   wasm        the WebAssembly SIMD path (mask-simd.wat) at every size: copy a
//               block of up to 64 KiB into the module's memory, XOR 16 bytes at
//               a time, copy it back out
//   applyMask   applyMaskKey itself, with its thresholds (the "path" column says
//               which path it takes at that size)
//   bufferutil  ws's native addon (C, 64 bits at a time), a reference line only;
//               loaded from bench/node_modules (npm --prefix bench ci)
//
// Every case works in place on a Buffer view at byteOffset 14 (a payload after
// a frame header), mask phase 0, the same bytes masked over and over: sizes up
// to 64 KiB are the frame parser's case (a socket chunk just read, in cache);
// 256 KiB to 16 MiB show what happens once the bytes leave the inner caches.
// Each sample times a loop of about --sample-ms; the implementations take
// turns within each round (their order rotating), and each figure is the
// median of --rounds samples, so that load from other processes falls on
// all of them alike.
//
//   node bench/mask.mjs          (under a minute; needs `npm run build` first)
//   options: --from DIR (compiled tree, default dist) --rounds N (21)
//            --sample-ms MS (10) --sizes 16,64,...,16777216
//            --paths (also a column for each JavaScript path at every size,
//            to place the thresholds between them)
//            --range (mask the range [14, 14 + size) of the whole Buffer, as the
//            frame serializer masks a payload after its header, instead of a
//            view that is all payload, as the frame parser does; bufferutil
//            still gets the view)
//
// Progress goes to stderr, the Markdown table to stdout.

import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const DEFAULT_SIZES = [16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1 << 20, 16 << 20];
/** Where the payload starts in its Buffer: after a 14-byte frame header (64-bit length, mask key). */
const BYTE_OFFSET = 14;

const { values: opts } = parseArgs({
  options: {
    from: { type: 'string', default: 'dist' },
    rounds: { type: 'string', default: '21' },
    'sample-ms': { type: 'string', default: '10' },
    sizes: { type: 'string' },
    paths: { type: 'boolean', default: false },
    range: { type: 'boolean', default: false },
  },
});
const rounds = Number(opts.rounds);
const sampleNs = Number(opts['sample-ms']) * 1e6;
const sizes = opts.sizes ? opts.sizes.split(',').map(Number) : DEFAULT_SIZES;

const maskJs = join(resolve(ROOT, opts.from), 'src', 'core', 'mask.js');
if (!existsSync(maskJs)) {
  console.error(`bench/mask: ${maskJs} not found (run npm run build first, or pass --from)`);
  process.exit(1);
}
const lib = await import(pathToFileURL(maskJs).href);
if (typeof lib.applyMaskKeyByPath !== 'function') {
  console.error(`bench/mask: ${maskJs} has no applyMaskKeyByPath (an older build: run npm run build again)`);
  process.exit(1);
}
const { applyMaskKey, applyMaskKeyByPath, maskPathFor, packMask } = lib;

let bufferutil = null;
try {
  bufferutil = createRequire(join(ROOT, 'bench', 'package.json'))('bufferutil');
} catch {
  console.error('bench/mask: bufferutil not installed (npm --prefix bench ci): its column is left empty');
}

/** The JavaScript paths, each at every size with --paths. */
const PATHS = ['bytes', 'words32', 'words64'];
const MASK = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
const KEY = packMask(MASK);

/**
 * The implementations, each masking in place (mask phase 0) the `n` bytes of
 * the view `d` at BYTE_OFFSET into `whole`: all of `d`, or with --range, the
 * range [BYTE_OFFSET, BYTE_OFFSET + n) of `whole`.
 */
function implementations(n, whole) {
  const jsPath = maskPathFor(n, false);
  const start = BYTE_OFFSET;
  const end = BYTE_OFFSET + n;
  const impls = opts.range
    ? {
        js: () => applyMaskKeyByPath(jsPath, whole, KEY, 0, start, end),
        wasm: () => applyMaskKeyByPath('simd', whole, KEY, 0, start, end),
        applyMask: () => applyMaskKey(whole, KEY, 0, start, end),
      }
    : {
        js: (d) => applyMaskKeyByPath(jsPath, d, KEY, 0),
        wasm: (d) => applyMaskKeyByPath('simd', d, KEY, 0),
        applyMask: (d) => applyMaskKey(d, KEY, 0),
      };
  if (bufferutil) impls.bufferutil = (d) => bufferutil.unmask(d, MASK);
  if (opts.paths) {
    for (const path of PATHS) {
      impls[path] = opts.range ? () => applyMaskKeyByPath(path, whole, KEY, 0, start, end) : (d) => applyMaskKeyByPath(path, d, KEY, 0);
    }
  }
  return impls;
}

/** Nanoseconds for `iterations` calls. */
function time(f, d, iterations) {
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < iterations; r++) f(d);
  return Number(process.hrtime.bigint() - t0);
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function label(n) {
  if (n >= 1 << 20) return `${n / (1 << 20)} MiB`;
  if (n >= 1024) return `${n / 1024} KiB`;
  return `${n} B`;
}

const HAS_SIMD = applyMaskKeyByPath('simd', Buffer.alloc(1), KEY);
if (!HAS_SIMD) {
  console.error('bench/mask: this runtime has no WebAssembly SIMD: the wasm column is left empty');
}
console.error(`bench/mask: node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'} x${cpus().length}, load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);

const rows = [];
for (const n of sizes) {
  const backing = Buffer.alloc(n + BYTE_OFFSET);
  for (let i = 0; i < backing.length; i++) backing[i] = (i * 131 + 7) & 0xff;
  const d = backing.subarray(BYTE_OFFSET);
  const impls = implementations(n, backing);
  if (!HAS_SIMD) delete impls.wasm;

  // Every implementation must make the same bytes as the formula before it is timed.
  const expected = Buffer.from(d);
  for (let i = 0; i < n; i++) expected[i] ^= MASK[i & 3];
  for (const [name, f] of Object.entries(impls)) {
    const before = Buffer.from(backing);
    f(d);
    const ok = d.equals(expected) && backing.subarray(0, BYTE_OFFSET).equals(before.subarray(0, BYTE_OFFSET));
    before.copy(backing);
    if (!ok) throw new Error(`bench/mask: ${name} masks ${n} bytes wrongly`);
  }

  // Warm up (JIT, wasm tier-up) and size the sample loop: about sampleNs per sample.
  const iterations = {};
  for (const [name, f] of Object.entries(impls)) {
    let k = 1;
    let ns = time(f, d, k);
    for (let w = 0; w < 200 && ns < sampleNs; w++) {
      k *= 2;
      ns = time(f, d, k);
    }
    iterations[name] = Math.max(1, Math.round((k * sampleNs) / ns));
  }

  const names = Object.keys(impls);
  const gbps = Object.fromEntries(names.map((name) => [name, []]));
  for (let r = 0; r < rounds; r++) {
    for (let j = 0; j < names.length; j++) {
      const name = names[(j + r) % names.length];
      gbps[name].push((n * iterations[name]) / time(impls[name], d, iterations[name]));
    }
  }
  const row = { size: n, path: maskPathFor(n), ...Object.fromEntries(names.map((name) => [name, median(gbps[name])])) };
  rows.push(row);
  console.error(`  ${label(n)}: ${names.map((name) => `${name} ${row[name].toFixed(2)}`).join(', ')}`);
}

const fmt = (x) => (x === undefined ? '' : x.toFixed(2));
console.log(`XOR masking in place${opts.range ? ', a range of a Buffer' : ''}, GB/s (median of ${rounds} samples; node ${process.version})\n`);
const extra = opts.paths ? PATHS : [];
console.log(`| size | applyMask path | js | wasm | applyMask | bufferutil | wasm / js | applyMask / js |${extra.map((p) => ` ${p} |`).join('')}`);
console.log(`| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |${extra.map(() => ' ---: |').join('')}`);
for (const r of rows) {
  const ratio = (a, b) => (a === undefined || b === undefined ? '' : (a / b).toFixed(2));
  const cells = [label(r.size), r.path, fmt(r.js), fmt(r.wasm), fmt(r.applyMask), fmt(r.bufferutil), ratio(r.wasm, r.js), ratio(r.applyMask, r.js), ...extra.map((p) => fmt(r[p]))];
  console.log(`| ${cells.join(' | ')} |`);
}
console.error(`bench/mask: load at the end ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
