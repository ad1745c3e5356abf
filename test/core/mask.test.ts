import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  applyMask,
  applyMaskKey,
  applyMaskKeyByPath,
  compileSimdMasker,
  copyMasked,
  MASK_THRESHOLDS,
  maskPathFor,
  packMask,
  type MaskPath,
} from '../../src/core/mask.js';
import { MASK_SIMD_WASM_BASE64 } from '../../src/core/mask-simd-bytes.js';
import { testBytes, xorMask } from '../helpers/frames.js';

const bytes = testBytes;

const KEYS = [Buffer.from([0, 0, 0, 0]), Buffer.from([0xff, 0xff, 0xff, 0xff]), Buffer.from([0x37, 0xfa, 0x21, 0x3d]), Buffer.from([1, 2, 3, 4])];

/**
 * Masks `n` bytes in a view starting `align` bytes into a larger buffer (so the
 * aligned middle starts at each possible place; `wordBytes`, 4 or 8, only names
 * the alignment in messages), checks them against the formula, and checks that
 * the bytes on either side of the view are untouched.
 */
function checkAligned(key: Buffer, n: number, align: number, offset: number, seed: number, wordBytes: number): void {
  const data = bytes(n, seed);
  const backing = Buffer.alloc(n + 16, 0xaa);
  const work = backing.subarray(align + 1, align + 1 + n);
  data.copy(work);
  applyMask(work, key, offset);
  assert.deepEqual(work, xorMask(data, key, offset), `key ${key.toString('hex')} length ${n} alignment ${work.byteOffset & (wordBytes - 1)} offset ${offset}`);
  assert.equal(backing[align], 0xaa);
  assert.equal(backing[align + 1 + n], 0xaa);
}

describe('applyMask (RFC 6455 section 5.3)', () => {
  it('matches the section 5.3 formula (octet i XOR key[i MOD 4]) for every length 0..40 and every offset 0..7', () => {
    for (const key of KEYS) {
      for (let n = 0; n <= 40; n++) {
        for (let offset = 0; offset < 8; offset++) {
          const data = bytes(n, n * 31 + offset);
          const expected = xorMask(data, key, offset);
          const work = Buffer.from(data);
          applyMask(work, key, offset);
          assert.deepEqual(work, expected, `key ${key.toString('hex')} length ${n} offset ${offset}`);
        }
      }
    }
  });

  it('matches the formula on lengths from 63 bytes to 4 KiB for every 4-byte alignment, mask phase, range and tail length', () => {
    for (const key of KEYS) {
      for (const n of [63, 64, 65, 66, 67, 68, 100, 127, 1024, 1031, 4099]) {
        for (let align = 0; align < 4; align++) {
          for (let offset = 0; offset < 4; offset++) {
            checkAligned(key, n, align, offset, n * 7 + align * 3 + offset, 4);
          }
        }
      }
      // A sub-range [start, end) of a longer buffer, on the word path.
      const data = bytes(300, 5);
      const work = Buffer.from(data);
      applyMask(work, key, 2, 13, 250);
      assert.deepEqual(work, Buffer.concat([data.subarray(0, 13), xorMask(data.subarray(13, 250), key, 2), data.subarray(250)]));
    }
  });

  it('matches the formula on lengths from 1 KiB to 64 KiB for every 8-byte alignment, mask phase and tail length', () => {
    for (const key of KEYS) {
      for (const n of [1023, 1024, 1025, 1031, 1032, 1088, 1144, 1151, 4096, 4099, 65543]) {
        for (let align = 0; align < 8; align++) {
          for (let offset = 0; offset < 4; offset++) {
            checkAligned(key, n, align, offset, n * 5 + align * 3 + offset, 8);
          }
        }
      }
    }
  });

  it('the RFC section 5.7 example: "Hello" masked with 37 fa 21 3d', () => {
    const data = Buffer.from('Hello');
    applyMask(data, Buffer.from([0x37, 0xfa, 0x21, 0x3d]));
    assert.deepEqual(data, Buffer.from([0x7f, 0x9f, 0x4d, 0x51, 0x58]));
  });

  it('masks only [start, end), leaving the rest of the buffer untouched', () => {
    const key = KEYS[2];
    for (let start = 0; start <= 9; start++) {
      for (let end = start; end <= 20; end++) {
        const data = bytes(20, start * 100 + end);
        const work = Buffer.from(data);
        applyMask(work, key, 0, start, end);
        const expected = Buffer.concat([data.subarray(0, start), xorMask(data.subarray(start, end), key), data.subarray(end)]);
        assert.deepEqual(work, expected, `range [${start}, ${end})`);
      }
    }
  });

  it('masking in pieces with running offsets equals masking the whole payload at once, for every split', () => {
    const key = KEYS[2];
    const data = bytes(37, 7);
    const whole = xorMask(data, key);
    for (let a = 0; a <= data.length; a++) {
      for (let b = a; b <= data.length; b++) {
        const work = Buffer.from(data);
        // Three pieces as a parser sees them: [0,a), [a,b), [b,n), each with its payload offset.
        applyMask(work.subarray(0, a), key, 0);
        applyMask(work.subarray(a, b), key, a);
        applyMask(work.subarray(b), key, b);
        assert.deepEqual(work, whole, `split at ${a}, ${b}`);
      }
    }
  });

  it('is its own inverse', () => {
    const data = bytes(1000, 3);
    const work = Buffer.from(data);
    applyMask(work, KEYS[3], 5);
    assert.notDeepEqual(work, data);
    applyMask(work, KEYS[3], 5);
    assert.deepEqual(work, data);
  });

  it('works on a plain Uint8Array view into a larger buffer', () => {
    const backing = bytes(64, 9);
    const view = new Uint8Array(backing.buffer, backing.byteOffset + 10, 20);
    const before = Buffer.from(backing);
    applyMask(view, KEYS[2], 1);
    assert.deepEqual(Buffer.from(backing.subarray(0, 10)), before.subarray(0, 10));
    assert.deepEqual(Buffer.from(backing.subarray(30)), before.subarray(30));
    assert.deepEqual(Buffer.from(view), xorMask(before.subarray(10, 30), KEYS[2], 1));
  });
});

const { wordPathMin, widePathMin, simdPathMin, simdBlock } = MASK_THRESHOLDS;
const SIMD_BYTES = Buffer.from(MASK_SIMD_WASM_BASE64, 'base64');
/** The word paths run on little-endian hosts only (applyMaskKeyByPath refuses them elsewhere). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const PATHS: readonly MaskPath[] = LITTLE_ENDIAN ? ['bytes', 'words32', 'words64', 'simd'] : ['bytes', 'simd'];

/** n - 1, n and n + 1 for each n (none below 0), sorted, without repeats. */
function around(...ns: number[]): number[] {
  return [...new Set(ns.flatMap((n) => [n - 1, n, n + 1]).filter((n) => n >= 0))].sort((a, b) => a - b);
}

/**
 * Masks `n` bytes through one path (or applyMaskKey itself), from mask phase
 * `offset`, in a view of a larger buffer whose byteOffset is `align` mod 16,
 * and compares them with the formula's bytes; the 16 bytes on either side of
 * the view must not change.
 */
function checkPath(path: MaskPath | 'auto', data: Buffer, expected: Buffer, key: Buffer, align: number, offset: number): void {
  const n = data.length;
  const backing = Buffer.alloc(n + 48, 0xaa);
  const at = 16 + ((align - backing.byteOffset) & 15);
  const work = backing.subarray(at, at + n);
  assert.equal(work.byteOffset & 15, align);
  data.copy(work);
  if (path === 'auto') applyMaskKey(work, packMask(key), offset);
  else assert.ok(applyMaskKeyByPath(path, work, packMask(key), offset), `path ${path} cannot run here`);
  if (!work.equals(expected)) {
    let wrong = 0;
    while (work[wrong] === expected[wrong]) wrong++;
    assert.fail(`${path}: key ${key.toString('hex')} length ${n} byteOffset ${work.byteOffset} phase ${offset}: first wrong byte at ${wrong}`);
  }
  for (let i = 1; i <= 16; i++) {
    assert.equal(backing[at - i], 0xaa, `${path}: byte ${-i} before the view changed`);
    assert.equal(backing[at + n + i - 1], 0xaa, `${path}: byte ${i - 1} after the view changed`);
  }
}

describe('applyMaskKey paths: bytes, 32-bit, 64-bit and WebAssembly SIMD (RFC 6455 section 5.3)', () => {
  it('the WebAssembly SIMD module compiles on this runtime (Node 20 and later have WebAssembly SIMD)', () => {
    // A module that no longer compiled would only slow applyMaskKey down to its JavaScript paths,
    // silently; this test makes it loud. (The fallback itself is checked below.)
    assert.notEqual(compileSimdMasker(SIMD_BYTES), null);
    assert.ok(applyMaskKeyByPath('simd', Buffer.alloc(1), 0));
  });

  it('the thresholds are in order and the block is a multiple of the 4-byte mask cycle', () => {
    assert.ok(wordPathMin < widePathMin, 'the 32-bit path starts below the 64-bit path');
    assert.ok(simdPathMin >= 16, 'the SIMD path needs at least one 16-byte vector');
    assert.equal(simdBlock % 4, 0);
  });

  it('applyMaskKey takes the path its thresholds name, and the JavaScript ones without WebAssembly SIMD', () => {
    for (const n of around(0, 16, wordPathMin, widePathMin, simdPathMin, simdBlock, 16 << 20)) {
      const js: MaskPath = !LITTLE_ENDIAN ? 'bytes' : n >= widePathMin ? 'words64' : n >= wordPathMin ? 'words32' : 'bytes';
      assert.equal(maskPathFor(n, false), js, `length ${n} without SIMD`);
      assert.equal(maskPathFor(n), n >= simdPathMin ? 'simd' : js, `length ${n}`);
    }
  });

  // Every length around every threshold and block boundary, at every byteOffset 0..15 (mod 16,
  // the widest alignment a path cares about) and every mask phase 0..3, through every path
  // whatever the length it is chosen for, and through applyMaskKey itself.
  const LENGTHS = [
    ...Array.from({ length: 41 }, (_, n) => n),
    // 64 and 1024 as well: the SIMD loop's 64-byte turn, and lengths a word path may round at.
    ...around(64, 1024, wordPathMin, widePathMin, simdPathMin, simdBlock, 2 * simdBlock, 2 * simdBlock + 7),
  ].filter((n, i, all) => all.indexOf(n) === i);
  const KEY = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);

  for (const path of [...PATHS, 'auto' as const]) {
    it(`${path === 'auto' ? 'applyMaskKey' : `the ${path} path`} matches the formula at every length around the thresholds and blocks, alignment 0..15 and phase 0..3`, () => {
      for (const n of LENGTHS) {
        const data = bytes(n, n * 13 + 1);
        for (let offset = 0; offset < 4; offset++) {
          const expected = xorMask(data, KEY, offset);
          for (let align = 0; align < 16; align++) checkPath(path, data, expected, KEY, align, offset);
        }
      }
    });
  }

  it('every path matches the formula for each key', () => {
    for (const path of PATHS) {
      for (const key of KEYS) {
        for (const n of [1, 7, 16, 17, 100, simdPathMin + 3]) {
          const data = bytes(n, n);
          for (let offset = 0; offset < 4; offset++) checkPath(path, data, xorMask(data, key, offset), key, offset * 3, offset);
        }
      }
    }
  });

  it('every path masks only [start, end) of a longer buffer, also from 0 and across blocks', () => {
    const key = KEYS[2];
    const ranges: Array<[number, number, number]> = [
      [3000, 0, 0], [3000, 13, 13], [3000, 13, 250], [3000, 0, 2000], [3000, 1, 2999], [3000, 700, 3000],
      [simdBlock + 300, 0, 300], [simdBlock + 300, 0, simdBlock], [simdBlock + 300, 5, simdBlock + 5], [2 * simdBlock + 9, 1, 2 * simdBlock + 8],
    ];
    for (const path of PATHS) {
      for (const [length, start, end] of ranges) {
        const data = bytes(length, start + end);
        const work = Buffer.from(data);
        assert.ok(applyMaskKeyByPath(path, work, packMask(key), 2, start, end));
        const expected = Buffer.concat([data.subarray(0, start), xorMask(data.subarray(start, end), key, 2), data.subarray(end)]);
        assert.ok(work.equals(expected), `${path}: range [${start}, ${end}) of ${length} bytes`);
      }
    }
  });

  it('every path matches the formula on 16 MiB at an odd byteOffset and phase', () => {
    const n = 16 << 20;
    const data = bytes(n, 99);
    const expected = xorMask(data, KEY, 3);
    for (const path of [...PATHS, 'auto' as const]) {
      const backing = Buffer.alloc(n + 14);
      const work = backing.subarray(14);
      data.copy(work);
      if (path === 'auto') applyMaskKey(work, packMask(KEY), 3);
      else assert.ok(applyMaskKeyByPath(path, work, packMask(KEY), 3));
      assert.ok(work.equals(expected), `${path}: 16 MiB`);
    }
  });

  it('the SIMD path leaves nothing behind: a call gives the same bytes whatever the calls before it masked', () => {
    // Its scratch holds the previous call's bytes (and, past the length, bytes XORed by the loop's
    // last 64-byte turn); none of them may reach the next call's output.
    const short = bytes(simdPathMin + 5, 1);
    const expected = xorMask(short, KEY, 1);
    for (const before of [bytes(simdBlock, 2), Buffer.alloc(simdBlock, 0xff), bytes(simdPathMin + 64, 3)]) {
      assert.ok(applyMaskKeyByPath('simd', before, 0x12345678, 2));
      const work = Buffer.from(short);
      assert.ok(applyMaskKeyByPath('simd', work, packMask(KEY), 1));
      assert.ok(work.equals(expected));
    }
  });

  it('compileSimdMasker refuses, without throwing, what the runtime rejects or what lacks what the SIMD path needs', () => {
    // Not WebAssembly, and a module cut short: the CompileError a runtime without SIMD raises too.
    assert.equal(compileSimdMasker(Buffer.from('not wasm')), null);
    assert.equal(compileSimdMasker(SIMD_BYTES.subarray(0, SIMD_BYTES.length - 3)), null);
    // A valid module with no exports.
    assert.equal(compileSimdMasker(Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00])), null);
    // The module with a memory of one page (limits min 1, max 1 instead of 2, 2): too small for a block.
    const memorySection = Buffer.from([0x05, 0x04, 0x01, 0x01, 0x02, 0x02]);
    const at = SIMD_BYTES.indexOf(memorySection);
    assert.ok(at > 0, 'the memory section is where this test expects it');
    const small = Buffer.from(SIMD_BYTES);
    small[at + 4] = 1;
    small[at + 5] = 1;
    assert.equal(compileSimdMasker(small), null);
  });

  for (const flag of ['--no-expose-wasm', '--jitless']) {
    it(`without WebAssembly (node ${flag}) applyMaskKey falls back to its JavaScript paths at every length`, () => {
      const maskUrl = new URL('../../src/core/mask.js', import.meta.url).href;
      const script = `
        import { applyMaskKey, applyMaskKeyByPath, maskPathFor, MASK_THRESHOLDS } from ${JSON.stringify(maskUrl)};
        const key = [0x37, 0xfa, 0x21, 0x3d];
        const packed = key[0] | key[1] << 8 | key[2] << 16 | key[3] << 24;
        const { simdPathMin, simdBlock } = MASK_THRESHOLDS;
        const wrong = [];
        if (applyMaskKeyByPath('simd', new Uint8Array(1), packed)) wrong.push('the simd path ran');
        for (const n of [simdPathMin - 1, simdPathMin, simdPathMin + 1, simdBlock + 1, 2 * simdBlock + 7]) {
          if (maskPathFor(n) === 'simd') wrong.push('length ' + n + ' is given to the simd path');
          for (let offset = 0; offset < 4; offset++) {
            const backing = new Uint8Array(n + 5);
            for (let i = 0; i < backing.length; i++) backing[i] = (i * 7 + n) & 255;
            const data = backing.subarray(5);
            const original = data.slice();
            applyMaskKey(data, packed, offset);
            for (let i = 0; i < n; i++) {
              if (data[i] !== (original[i] ^ key[(offset + i) % 4])) { wrong.push('length ' + n + ' phase ' + offset + ' byte ' + i); break; }
            }
          }
        }
        console.log(JSON.stringify({ wasm: typeof WebAssembly, wrong }));
      `;
      const r = spawnSync(process.execPath, [flag, '--input-type=module', '-e', script], { encoding: 'utf8', cwd: fileURLToPath(new URL('.', import.meta.url)) });
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as { wasm: string; wrong: string[] };
      assert.equal(out.wasm, 'undefined', `node ${flag} still has WebAssembly`);
      assert.deepEqual(out.wrong, []);
    });
  }
});

describe('copyMasked: unmasking into another buffer (RFC 6455 section 5.3)', () => {
  it('writes the formula\'s bytes at dstAt, touches nothing else of dst, and leaves src as it was', () => {
    const { simdPathMin, simdBlock } = MASK_THRESHOLDS;
    const lengths = [0, 1, 3, 64, simdPathMin - 1, simdPathMin, simdPathMin + 1, 4096, simdBlock - 1, simdBlock, simdBlock + 1, 2 * simdBlock + 7];
    for (const key of KEYS) {
      for (const n of lengths) {
        for (const offset of [0, 1, 2, 3, 5]) {
          for (const srcAlign of [0, 3]) {
            const data = bytes(n, n + offset);
            const src = Buffer.alloc(n + srcAlign);
            data.copy(src, srcAlign);
            const view = src.subarray(srcAlign);
            const dstAt = 7 + offset;
            const dst = Buffer.alloc(n + dstAt + 9, 0xaa);
            copyMasked(view, packMask(key), offset, dst, dstAt);
            const what = `key ${key.toString('hex')} length ${n} offset ${offset} src alignment ${srcAlign}`;
            assert.deepEqual(dst.subarray(dstAt, dstAt + n), xorMask(data, key, offset), what);
            assert.ok(dst.subarray(0, dstAt).every((b) => b === 0xaa), `${what}: nothing before dstAt`);
            assert.ok(dst.subarray(dstAt + n).every((b) => b === 0xaa), `${what}: nothing after`);
            assert.deepEqual(view, data, `${what}: src untouched`);
          }
        }
      }
    }
  });
});
