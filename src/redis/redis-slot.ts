/**
 * The hash slot of a Redis Cluster key or sharded channel: CRC16 (the
 * XMODEM variant: polynomial 0x1021, initial value 0) of the key, or of its
 * hash tag (what is between the first '{' and the first '}' after it, when
 * that is not empty), modulo 16384. The broker uses it to name the topics a
 * lost shard serves; test/redis/redis-slot.test.ts checks it against
 * Redis's own CLUSTER KEYSLOT.
 */
export const SLOTS = 16384;

const TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let b = 0; b < 8; b++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    t[i] = c;
  }
  return t;
})();

export function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const b of bytes) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ b) & 0xff];
  return crc;
}

export function keySlot(key: string | Buffer): number {
  let bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  const open = bytes.indexOf(0x7b); // '{'
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1); // '}'
    if (close > open + 1) bytes = bytes.subarray(open + 1, close);
  }
  return crc16(bytes) % SLOTS;
}
