/** True on little-endian hosts, where a word read from bytes b0..b7 is b0 | b1 << 8 | ... */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Below this many bytes the 32-bit path's view is not worth creating. */
const WORD_PATH_MIN = 64;
/** From this many bytes on, the 64-bit path (see applyMaskKey). */
const WIDE_PATH_MIN = 1024;

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

/**
 * The key rotated so that its byte m lands on the first byte of a word
 * (little-endian), repeated in both halves of a 64-bit word: the mask cycle is
 * 4 bytes, so an 8-byte word sees it twice.
 */
function wideKey(key: number, m: number): bigint {
  const word = (m === 0 ? key : (key >>> (m << 3)) | (key << (32 - (m << 3)))) >>> 0;
  return (BigInt(word) << 32n) | BigInt(word);
}

/**
 * applyMask() with the key packed by packMask(). Long runs are XORed a word at
 * a time through a typed-array view of the aligned middle of the range (the
 * key rotated to the byte it starts on):
 * - from 1 KiB, 64 bits at a time through a BigUint64Array: V8 (Node 20 and
 *   later) compiles the XOR of a BigUint64Array element with a BigInt to plain
 *   64-bit instructions, 1.8x the 32-bit loop on 64 KiB to 16 MiB (7.5 -> 14-16
 *   GB/s; unmasking was 15-20% of the 64 KiB and 1 MiB echo profiles);
 * - from 64 bytes, 32 bits at a time through an Int32Array (making the
 *   BigInt key costs more than it saves below about 1 KiB);
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
    xorWords(new BigUint64Array(data.buffer, data.byteOffset + i, words), wideKey(key, m), words);
    i += words << 3;
    // The mask phase is unchanged after whole words.
    maskBytes(data, data, i, i, end - i, key, m);
    return;
  }
  if (end - i >= WORD_PATH_MIN && LITTLE_ENDIAN) {
    // Bytes up to the first 4-byte-aligned offset of the underlying ArrayBuffer.
    while (((data.byteOffset + i) & 3) !== 0) {
      data[i] ^= key >>> (m << 3);
      i++;
      m = (m + 1) & 3;
    }
    const words = (end - i) >>> 2;
    const word = m === 0 ? key : (key >>> (m << 3)) | (key << (32 - (m << 3)));
    const view = new Int32Array(data.buffer, data.byteOffset + i, words);
    // Unrolled by 8: about 1.5x the simple loop in V8 (fewer loop checks per word).
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
    i += words << 2;
    maskBytes(data, data, i, i, end - i, key, m);
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

/** In place: v[w] ^= k for every word. Unrolled by 8 (about 1.15x the simple loop). */
function xorWords(v: BigUint64Array, k: bigint, words: number): void {
  let w = 0;
  for (; w + 8 <= words; w += 8) {
    v[w] ^= k;
    v[w + 1] ^= k;
    v[w + 2] ^= k;
    v[w + 3] ^= k;
    v[w + 4] ^= k;
    v[w + 5] ^= k;
    v[w + 6] ^= k;
    v[w + 7] ^= k;
  }
  for (; w < words; w++) v[w] ^= k;
}

/** d[w] = s[w] ^ k for every word. */
function xorWordsInto(d: BigUint64Array, s: BigUint64Array, k: bigint, words: number): void {
  let w = 0;
  for (; w + 8 <= words; w += 8) {
    d[w] = s[w] ^ k;
    d[w + 1] = s[w + 1] ^ k;
    d[w + 2] = s[w + 2] ^ k;
    d[w + 3] = s[w + 3] ^ k;
    d[w + 4] = s[w + 4] ^ k;
    d[w + 5] = s[w + 5] ^ k;
    d[w + 6] = s[w + 6] ^ k;
    d[w + 7] = s[w + 7] ^ k;
  }
  for (; w < words; w++) d[w] = s[w] ^ k;
}

/** Byte at a time: dst[d + k] = src[s + k] ^ key byte (m + k) & 3, for k < n. Returns the phase after. */
function maskBytes(dst: Uint8Array, src: Uint8Array, d: number, s: number, n: number, key: number, m: number): number {
  for (let k = 0; k < n; k++) {
    dst[d + k] = src[s + k] ^ (key >>> (m << 3));
    m = (m + 1) & 3;
  }
  return m;
}

/**
 * Copies src[srcStart, srcEnd) to dst at dstStart, masked or unmasked on the
 * way (XOR is its own inverse), in one pass where the two ranges sit at the
 * same offset modulo 8 in their ArrayBuffers; otherwise as a native copy and
 * an in-place pass. `offset` is the payload position of src[srcStart] in its
 * frame (the mask phase). `src` is not modified.
 *
 * Used to mask a client frame while copying its payload behind the header.
 * (Tried for joining a frame that arrived in several reads, unmasked on the
 * way: on 64 KiB to 1 MiB echoes it was no faster than unmasking each read in
 * place while it is still in cache and joining them with a native copy, so
 * the parser does that.)
 */
export function maskCopy(dst: Uint8Array, dstStart: number, src: Uint8Array, srcStart: number, srcEnd: number, key: number, offset = 0): void {
  const n = srcEnd - srcStart;
  if (n < WIDE_PATH_MIN || !LITTLE_ENDIAN || ((dst.byteOffset + dstStart - (src.byteOffset + srcStart)) & 7) !== 0) {
    if (n < WORD_PATH_MIN) {
      maskBytes(dst, src, dstStart, srcStart, n, key, offset & 3);
      return;
    }
    dst.set(src.subarray(srcStart, srcEnd), dstStart);
    applyMaskKey(dst, key, offset, dstStart, dstStart + n);
    return;
  }
  // Same alignment: bytes up to the first aligned word of both, then words, then the tail.
  let pre = (8 - ((dst.byteOffset + dstStart) & 7)) & 7;
  const m = maskBytes(dst, src, dstStart, srcStart, pre, key, offset & 3);
  const words = (n - pre) >>> 3;
  xorWordsInto(
    new BigUint64Array(dst.buffer, dst.byteOffset + dstStart + pre, words),
    new BigUint64Array(src.buffer, src.byteOffset + srcStart + pre, words),
    wideKey(key, m),
    words,
  );
  pre += words << 3;
  maskBytes(dst, src, dstStart + pre, srcStart + pre, n - pre, key, m);
}
