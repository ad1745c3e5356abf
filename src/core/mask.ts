/** True on little-endian hosts, where a word read from bytes b0..b7 is b0 | b1 << 8 | ... */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Below this many bytes the 32-bit path's view is not worth creating. */
const WORD_PATH_MIN = 64;
/** From this many bytes on, the 64-bit path (see applyMaskKey). */
const WIDE_PATH_MIN = 1024;
// Every path must give the bytes of RFC 6455 section 5.3's formula, at every alignment, mask phase
// and length: test/core/mask.test.ts.

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
 * applyMask() with the key packed by packMask(). Long runs are XORed a word at
 * a time through a typed-array view of the aligned middle of the range (the
 * key rotated to the byte it starts on):
 * - from 1 KiB, 64 bits at a time through a BigUint64Array: V8 (Node 20 and
 *   later) compiles the XOR of a BigUint64Array element with a BigInt to plain
 *   64-bit instructions, the widest XOR JavaScript has (xorWords);
 * - from 64 bytes, 32 bits at a time through an Int32Array (below about
 *   1 KiB the 64-bit path's longer alignment prefix costs more than its wider
 *   words save);
 * - below that, a byte at a time, four per loop turn.
 */
export function applyMaskKey(data: Uint8Array, key: number, offset = 0, start = 0, end = data.length): void {
  let i = start;
  let m = offset & 3;
  if (end - i >= WIDE_PATH_MIN && LITTLE_ENDIAN) {
    // Bytes up to the first 8-byte-aligned offset of the underlying ArrayBuffer.
    while (((data.byteOffset + i) & 7) !== 0) {
      data[i] ^= key >>> (m << 3);
      i++;
      m = (m + 1) & 3;
    }
    const words = (end - i) >>> 3;
    xorWords(new BigUint64Array(data.buffer, data.byteOffset + i, words), wideKey(rotateKey(key, m)), words);
    maskTail(data, i + (words << 3), end, key, m);
    return;
  }
  if (end - i >= WORD_PATH_MIN && LITTLE_ENDIAN) {
    // Bytes up to the first 4-byte-aligned offset of the underlying ArrayBuffer. (Not to 8, to share
    // this loop with the path above: the longer prefix costs more than it saves below 1 KiB.)
    while (((data.byteOffset + i) & 3) !== 0) {
      data[i] ^= key >>> (m << 3);
      i++;
      m = (m + 1) & 3;
    }
    const words = (end - i) >>> 2;
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
    maskTail(data, i + (words << 2), end, key, m);
    return;
  }
  // Align the mask cycle to 0 so the main loop can unroll four bytes at a time.
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
