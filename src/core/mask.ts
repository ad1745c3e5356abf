/**
 * XOR masking, RFC 6455 section 5.3. `offset` is how many payload bytes of the
 * same frame came before `data` (so a frame unmasked in several pieces keeps
 * its place in the 4-byte mask cycle). Works in place.
 */
export function applyMask(data: Uint8Array, mask: Uint8Array, offset = 0, start = 0, end = data.length): void {
  let i = start;
  let m = offset & 3;
  // Align the mask cycle to 0 so the main loop can unroll four bytes at a time.
  while (i < end && m !== 0) {
    data[i] ^= mask[m];
    i++;
    m = (m + 1) & 3;
  }
  const m0 = mask[0], m1 = mask[1], m2 = mask[2], m3 = mask[3];
  const limit = end - 3;
  for (; i < limit; i += 4) {
    data[i] ^= m0;
    data[i + 1] ^= m1;
    data[i + 2] ^= m2;
    data[i + 3] ^= m3;
  }
  for (let k = 0; i < end; i++, k++) data[i] ^= mask[k];
}
