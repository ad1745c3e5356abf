import { MASK_SIMD_WASM_BASE64 } from './mask-simd-bytes.js';

/** True on little-endian hosts, where a word read from bytes b0..b7 is b0 | b1 << 8 | ... */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

// Where each path starts (see applyMaskKey): the length from which it no longer loses to the paths
// below it, both on a whole view (the frame parser's case) and on a range of a larger buffer (the
// frame serializer's). `node bench/mask.mjs --paths [--range]` times every path at every size.
/** Below this many bytes, the byte loop: the 32-bit path's typed-array view costs more than its wider words save. */
const WORD_PATH_MIN = 256;
/** From this many bytes on, the 64-bit path rather than the 32-bit one. */
const WIDE_PATH_MIN = 512;
/**
 * From this many bytes on, the WebAssembly SIMD path when the runtime has it:
 * below it, the copies in and out and the call into WebAssembly cost more
 * than the 16-byte XOR saves.
 */
const SIMD_PATH_MIN = 192;
/**
 * Bytes masked per trip through the WebAssembly scratch (copy in, XOR, copy
 * out), so that the scratch stays small and in cache however long the range.
 * A multiple of 4, so every block starts at the mask phase of the first; it
 * must fit in mask-simd.wat's memory with the 63 bytes its loop runs past a
 * length (mask-simd.wat says how big that memory is). A socket chunk of up to
 * 64 KiB makes one trip.
 */
const SIMD_BLOCK = 65536;
// Every path must give the bytes of RFC 6455 section 5.3's formula, at every alignment, mask phase
// and length, and around every threshold and block boundary: test/core/mask.test.ts.

/**
 * For tests and the benchmark only (test/core/mask.test.ts, bench/mask.mjs;
 * src/core/index.ts does not export it): the constants above, so that the
 * tests check the lengths around each of them.
 */
export const MASK_THRESHOLDS: Readonly<{ wordPathMin: number; widePathMin: number; simdPathMin: number; simdBlock: number }> = Object.freeze({
  wordPathMin: WORD_PATH_MIN,
  widePathMin: WIDE_PATH_MIN,
  simdPathMin: SIMD_PATH_MIN,
  simdBlock: SIMD_BLOCK,
});

/**
 * A 4-byte masking key as one number: byte k of the key is (key >>> 8k) & 255.
 * The frame parser keeps the key of the frame being read in this form, so a
 * connection holds no Buffer for it.
 */
export function packMask(mask: Uint8Array, at = 0): number {
  return (mask[at] | (mask[at + 1] << 8) | (mask[at + 2] << 16) | (mask[at + 3] << 24)) | 0;
}

/**
 * XOR masking, RFC 6455 section 5.3. `offset` is how many payload bytes of the
 * same frame came before `data` (so a frame unmasked in several pieces keeps
 * its place in the 4-byte mask cycle). Works in place.
 */
export function applyMask(data: Uint8Array, mask: Uint8Array, offset = 0, start = 0, end = data.length): void {
  applyMaskKey(data, packMask(mask), offset, start, end);
}

/** The key rotated so that its byte m lands on the first byte of a 32-bit word (little-endian). */
function rotateKey(key: number, m: number): number {
  return m === 0 ? key : (key >>> (m << 3)) | (key << (32 - (m << 3)));
}

/**
 * Scratch for wideKey(): written, then read, within one synchronous call, so it
 * carries nothing from one call to the next (it is not shared mutable state:
 * no connection can see another's key through it).
 */
const KEY64 = new BigUint64Array(1);
const KEY32 = new Uint32Array(KEY64.buffer);

/**
 * A rotated key in both halves of a 64-bit word: the mask cycle is 4 bytes, so
 * an 8-byte word sees it twice. Made through a typed array rather than BigInt
 * arithmetic, which would allocate three heap BigInts per call.
 */
function wideKey(word: number): bigint {
  KEY32[0] = word;
  KEY32[1] = word;
  return KEY64[0];
}

/**
 * applyMask() with the key packed by packMask(). The range is XORed by one of
 * four paths, chosen by its length (pathFor):
 * - from SIMD_PATH_MIN, 16 bytes at a time by WebAssembly SIMD (maskSimd),
 *   when the runtime has WebAssembly and its SIMD (otherwise the paths below
 *   take every length);
 * - from WIDE_PATH_MIN, 64 bits at a time through a BigUint64Array: V8 (Node
 *   20 and later) compiles the XOR of a BigUint64Array element with a BigInt
 *   to plain 64-bit instructions, the widest XOR JavaScript has (maskWords64);
 * - from WORD_PATH_MIN, 32 bits at a time through an Int32Array (below
 *   WIDE_PATH_MIN the 64-bit path's longer alignment prefix costs about what
 *   its wider words save);
 * - below that, a byte at a time, four per loop turn.
 */
export function applyMaskKey(data: Uint8Array, key: number, offset = 0, start = 0, end = data.length): void {
  runPath(pathFor(end - start, true), data, key, offset & 3, start, end);
}

/**
 * Writes `src` unmasked into `dst` from `dstAt` on, leaving `src` as it was:
 * applyMaskKey and a copy in one. Through WebAssembly the block copied out of
 * the scratch goes straight to `dst`, one copy fewer than unmasking in place
 * and then copying (the frame parser's way into a message being joined,
 * test/core/mask.test.ts "copyMasked").
 */
export function copyMasked(src: Uint8Array, key: number, offset: number, dst: Uint8Array, dstAt: number): void {
  const n = src.length;
  const m = offset & 3;
  const simd = n >= SIMD_PATH_MIN ? simdMasker() : null;
  if (simd === null) {
    dst.set(src, dstAt);
    runPath(pathFor(n, false), dst, key, m, dstAt, dstAt + n);
    return;
  }
  simdCopy(simd, src, rotateKey(key, m), dst, dstAt);
}

/** The paths of applyMaskKey, by name. */
export type MaskPath = 'bytes' | 'words32' | 'words64' | 'simd';

/** The paths by number, as pathFor() and runPath() name them. */
const PATH_NAMES: readonly MaskPath[] = ['bytes', 'words32', 'words64', 'simd'];
const BYTES = 0;
const WORDS32 = 1;
const WORDS64 = 2;
const SIMD = 3;

/**
 * The path for a range of `length` bytes (with `simd` false: the path where
 * WebAssembly SIMD is missing). The one place where the thresholds are
 * applied: applyMaskKey and maskPathFor both ask it, so the tests of
 * maskPathFor check applyMaskKey's choice.
 */
function pathFor(length: number, simd: boolean): number {
  if (simd && length >= SIMD_PATH_MIN && simdMasker() !== null) return SIMD;
  if (length >= WIDE_PATH_MIN && LITTLE_ENDIAN) return WORDS64;
  if (length >= WORD_PATH_MIN && LITTLE_ENDIAN) return WORDS32;
  return BYTES;
}

/** Masks [start, end) from mask phase m through the path numbered `path`; false (nothing touched) when it cannot run here. */
function runPath(path: number, data: Uint8Array, key: number, m: number, start: number, end: number): boolean {
  if (path === SIMD) {
    const simd = simdMasker();
    if (simd === null) return false;
    maskSimd(simd, data, key, m, start, end);
  } else if (path === WORDS64) {
    if (!LITTLE_ENDIAN) return false;
    maskWords64(data, key, m, start, end);
  } else if (path === WORDS32) {
    if (!LITTLE_ENDIAN) return false;
    maskWords32(data, key, m, start, end);
  } else {
    maskBytes(data, key, m, start, end);
  }
  return true;
}

/**
 * For tests and the benchmark only (test/core/mask.test.ts, bench/mask.mjs;
 * src/core/index.ts does not export it): the path applyMaskKey takes for a
 * range of `length` bytes on this runtime, or with `simd` false, the one it
 * takes where WebAssembly SIMD is missing.
 */
export function maskPathFor(length: number, simd = true): MaskPath {
  return PATH_NAMES[pathFor(length, simd)];
}

/**
 * For tests and the benchmark only (test/core/mask.test.ts, bench/mask.mjs;
 * src/core/index.ts does not export it): applyMaskKey through the named path
 * whatever the length, so that each path is checked at every length. Returns
 * false, touching nothing, when that path cannot run here ('simd' without
 * WebAssembly SIMD; the word paths on a big-endian host).
 */
export function applyMaskKeyByPath(path: MaskPath, data: Uint8Array, key: number, offset = 0, start = 0, end = data.length): boolean {
  return runPath(PATH_NAMES.indexOf(path), data, key, offset & 3, start, end);
}

/**
 * The bytes [i, end) from mask phase m, a byte at a time: the mask cycle is
 * first brought to phase 0, so the main loop can unroll four bytes at a time.
 */
function maskBytes(data: Uint8Array, key: number, m: number, i: number, end: number): void {
  while (i < end && m !== 0) {
    data[i] ^= key >>> (m << 3);
    i++;
    m = (m + 1) & 3;
  }
  const m0 = key & 0xff, m1 = (key >>> 8) & 0xff, m2 = (key >>> 16) & 0xff, m3 = key >>> 24;
  const limit = end - 3;
  for (; i < limit; i += 4) {
    data[i] ^= m0;
    data[i + 1] ^= m1;
    data[i + 2] ^= m2;
    data[i + 3] ^= m3;
  }
  for (let k = 0; i < end; i++, k++) data[i] ^= key >>> (k << 3);
}

/**
 * The bytes [i, end) from mask phase m, 32 bits at a time through an
 * Int32Array view of the 4-byte-aligned middle (the key rotated to the byte it
 * starts on). Little-endian hosts only.
 */
function maskWords32(data: Uint8Array, key: number, m: number, i: number, end: number): void {
  // Bytes up to the first 4-byte-aligned offset of the underlying ArrayBuffer. (Not to 8, as
  // maskWords64 does: below WIDE_PATH_MIN the longer prefix costs about what it saves.)
  while (i < end && ((data.byteOffset + i) & 3) !== 0) {
    data[i] ^= key >>> (m << 3);
    i++;
    m = (m + 1) & 3;
  }
  const words = (end - i) >>> 2;
  // (No words: i may be unaligned at the end, where no Int32Array view can start.)
  if (words > 0) {
    const word = rotateKey(key, m);
    const view = new Int32Array(data.buffer, data.byteOffset + i, words);
    // Unrolled by 8: fewer loop checks per word.
    let w = 0;
    for (; w + 8 <= words; w += 8) {
      view[w] ^= word;
      view[w + 1] ^= word;
      view[w + 2] ^= word;
      view[w + 3] ^= word;
      view[w + 4] ^= word;
      view[w + 5] ^= word;
      view[w + 6] ^= word;
      view[w + 7] ^= word;
    }
    for (; w < words; w++) view[w] ^= word;
  }
  maskTail(data, i + (words << 2), end, key, m);
}

/**
 * The bytes [i, end) from mask phase m, 64 bits at a time through a
 * BigUint64Array view of the 8-byte-aligned middle (xorWords). Little-endian
 * hosts only.
 */
function maskWords64(data: Uint8Array, key: number, m: number, i: number, end: number): void {
  // Bytes up to the first 8-byte-aligned offset of the underlying ArrayBuffer.
  while (i < end && ((data.byteOffset + i) & 7) !== 0) {
    data[i] ^= key >>> (m << 3);
    i++;
    m = (m + 1) & 3;
  }
  const words = (end - i) >>> 3;
  // (No words: i may be unaligned at the end, where no BigUint64Array view can start.)
  if (words > 0) xorWords(new BigUint64Array(data.buffer, data.byteOffset + i, words), wideKey(rotateKey(key, m)), words);
  maskTail(data, i + (words << 3), end, key, m);
}

/**
 * In place: v[w] ^= k for every word. Walks from the last word down, unrolled
 * by 16: V8 keeps a bounds check per element, and counting down from
 * `words - 1` to 0 makes each of them cheaper than counting up to `words`
 * (the hardware prefetcher follows a descending stream as well as an
 * ascending one). The word-count remainders are covered by
 * test/core/mask.test.ts.
 */
function xorWords(v: BigUint64Array, k: bigint, words: number): void {
  let w = words - 1;
  for (; w >= 15; w -= 16) {
    v[w] ^= k;
    v[w - 1] ^= k;
    v[w - 2] ^= k;
    v[w - 3] ^= k;
    v[w - 4] ^= k;
    v[w - 5] ^= k;
    v[w - 6] ^= k;
    v[w - 7] ^= k;
    v[w - 8] ^= k;
    v[w - 9] ^= k;
    v[w - 10] ^= k;
    v[w - 11] ^= k;
    v[w - 12] ^= k;
    v[w - 13] ^= k;
    v[w - 14] ^= k;
    v[w - 15] ^= k;
  }
  for (; w >= 0; w--) v[w] ^= k;
}

/** The bytes after whole words, from mask phase m (unchanged by whole words): data[i] ^= key byte for i in [start, end). */
function maskTail(data: Uint8Array, start: number, end: number, key: number, m: number): void {
  for (let i = start; i < end; i++) {
    data[i] ^= key >>> (m << 3);
    m = (m + 1) & 3;
  }
}

/** An instance of mask-simd.wat. */
export interface SimdMasker {
  /** mask-simd.wat's $mask: XORs the memory's bytes [0, length rounded up to 64) with the (rotated) key. */
  readonly mask: (length: number, key: number) => void;
  /** The module's memory, which never grows (so this is never detached). */
  readonly memory: ArrayBuffer;
  /** Its first SIMD_BLOCK bytes: the scratch block. */
  readonly block: Uint8Array;
}

/** The part of the WebAssembly JavaScript API used here (the TypeScript lib of the library, without DOM, does not declare it). */
interface WasmApi {
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object) => { readonly exports: Readonly<Record<string, unknown>> };
}

/**
 * Compiles and instantiates `bytes` as mask-simd.wat, synchronously (the
 * module is a few hundred bytes). Null when the runtime has no WebAssembly
 * (node --jitless, --no-expose-wasm) or rejects the module (no SIMD: a
 * CompileError), or when the module lacks what mask.ts needs; applyMaskKey
 * then keeps to its JavaScript paths. Exported for test/core/mask.test.ts,
 * which feeds it modules that must be refused.
 */
export function compileSimdMasker(bytes: Uint8Array): SimdMasker | null {
  const api = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (api === undefined) return null;
  let exports: Readonly<Record<string, unknown>>;
  try {
    exports = new api.Instance(new api.Module(bytes)).exports;
  } catch {
    return null;
  }
  const mask = exports.mask;
  const memory = (exports.memory as { buffer?: unknown } | undefined)?.buffer;
  if (typeof mask !== 'function' || !(memory instanceof ArrayBuffer) || memory.byteLength < SIMD_BLOCK + 64) return null;
  return { mask: mask as (length: number, key: number) => void, memory, block: new Uint8Array(memory, 0, SIMD_BLOCK) };
}

/**
 * The instance applyMaskKey uses: made on first use, then kept for the life
 * of the process (undefined: not tried yet; null: this runtime cannot run it).
 * Its memory is scratch only: simdCopy writes a block in, masks it and reads
 * it back out within one synchronous call that runs no other code, so nothing
 * in it carries from one call to the next (whatever a call leaves there is
 * overwritten before it is read again), and no connection can see another's
 * bytes through it.
 */
let simdInstance: SimdMasker | null | undefined;

function simdMasker(): SimdMasker | null {
  if (simdInstance === undefined) simdInstance = compileSimdMasker(Buffer.from(MASK_SIMD_WASM_BASE64, 'base64'));
  return simdInstance;
}

/**
 * The bytes [i, end) from mask phase m through the WebAssembly scratch, in
 * place (simdCopy into the very bytes it reads). A whole view (the frame
 * parser's case: a piece of a socket chunk) is copied in as it is, without a
 * typed-array view of its own: a large part of the cost of a short range.
 */
function maskSimd(simd: SimdMasker, data: Uint8Array, key: number, m: number, i: number, end: number): void {
  simdCopy(simd, i === 0 && end === data.length ? data : data.subarray(i, end), rotateKey(key, m), data, i);
}

/**
 * `src` XORed with `word` (the key already rotated to src's first byte) into
 * dst from dstAt on, a block at a time: WebAssembly code reaches only its own
 * memory, so each block is copied in (Uint8Array.prototype.set, a memcpy),
 * XORed 16 bytes at a time, and copied out. `dst` may be `src` itself: a
 * block is all in before any of it goes out. Any byteOffset: the copies take
 * unaligned bytes, and the scratch starts 16-byte aligned.
 */
function simdCopy(simd: SimdMasker, src: Uint8Array, word: number, dst: Uint8Array, dstAt: number): void {
  const n = src.length;
  for (let i = 0; i < n; ) {
    const len = n - i < SIMD_BLOCK ? n - i : SIMD_BLOCK;
    simd.block.set(i === 0 && len === n ? src : src.subarray(i, i + len));
    simd.mask(len, word);
    dst.set(len === SIMD_BLOCK ? simd.block : new Uint8Array(simd.memory, 0, len), dstAt + i);
    i += len;
  }
}
