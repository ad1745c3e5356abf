/** True on little-endian hosts, where a 32-bit word read from bytes b0..b3 is b0 | b1 << 8 | ... */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Below this many bytes the 32-bit path's view is not worth creating. */
const WORD_PATH_MIN = 64;

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
 * applyMask() with the key packed by packMask(). Long runs are XORed a 32-bit
 * word at a time through an Int32Array view of the aligned middle of the
 * range (the key rotated to the byte it starts on): a quarter of the
 * operations of a byte loop.
 */
export function applyMaskKey(data: Uint8Array, key: number, offset = 0, start = 0, end = data.length): void {
  let i = start;
  let m = offset & 3;
  if (end - i >= WORD_PATH_MIN && LITTLE_ENDIAN) {
    // Bytes up to the first 4-byte-aligned address of the underlying memory.
    while (((data.byteOffset + i) & 3) !== 0) {
      data[i] ^= key >>> (m << 3);
      i++;
      m = (m + 1) & 3;
    }
    const words = (end - i) >>> 2;
    // The key rotated so that its byte m lands on the first byte of each word (little-endian).
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
    // The mask phase is unchanged after whole words.
    for (; i < end; i++) {
      data[i] ^= key >>> (m << 3);
      m = (m + 1) & 3;
    }
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
