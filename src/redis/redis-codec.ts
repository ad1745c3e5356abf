import { isValidUtf8 } from '../core/utf8-validator.js';
import type { Publication } from '../pubsub/broker.js';

/**
 * The bytes of one publication in Redis: a pub/sub message, or the one field
 * of a stream entry. Binary-safe (the payload is raw bytes, never text-encoded)
 * and self-describing enough to be refused when it is not ours:
 *
 *   0-1   'S' 'K'            magic
 *   2     1                  version
 *   3     flags              bit 0 binary, bit 1 compress, bit 2 redelivery; the rest 0
 *   4-9   seq                uint48 big-endian, from 1
 *   10-15 prev               uint48 big-endian, below seq
 *   16    n                  length of origin in bytes, 1-255
 *   17..  origin             n bytes of UTF-8
 *   ..end payload            the message (valid UTF-8 when not binary)
 *
 * The topic is not in it: it is the channel's (or stream key's) name, which the
 * receiver subscribed to and so knows already.
 *
 * 48 bits of seq are 2.8e14 publications of one node: 89 centuries at a
 * million a second, and still a safe integer in a JavaScript number.
 */
export const CODEC_VERSION = 1;
export const HEADER_BYTES = 17;
export const MAX_ORIGIN_BYTES = 255;
const MAX_SEQ = 2 ** 48 - 1;
const FLAG_BINARY = 1;
const FLAG_COMPRESS = 2;
const FLAG_REDELIVERY = 4;
const KNOWN_FLAGS = FLAG_BINARY | FLAG_COMPRESS | FLAG_REDELIVERY;

/** The header and the payload, as two buffers: the payload (the library's own, shared) is never copied to encode. */
export function encodePublication(p: Publication, redelivery = false): [Buffer, Buffer] {
  const origin = Buffer.from(p.origin, 'utf8');
  if (origin.length === 0 || origin.length > MAX_ORIGIN_BYTES) throw new RangeError(`node id is 1 to ${MAX_ORIGIN_BYTES} bytes of UTF-8 (got ${origin.length})`);
  const head = Buffer.allocUnsafe(HEADER_BYTES + origin.length);
  head[0] = 0x53;
  head[1] = 0x4b;
  head[2] = CODEC_VERSION;
  head[3] = (p.binary ? FLAG_BINARY : 0) | (p.compress ? FLAG_COMPRESS : 0) | (redelivery ? FLAG_REDELIVERY : 0);
  head.writeUIntBE(p.seq, 4, 6);
  head.writeUIntBE(p.prev, 10, 6);
  head[16] = origin.length;
  origin.copy(head, HEADER_BYTES);
  return [head, p.payload];
}

/** One buffer (what goes to Redis as one argument). */
export function encodePublicationBytes(p: Publication, redelivery = false): Buffer {
  const [head, payload] = encodePublication(p, redelivery);
  return Buffer.concat([head, payload], head.length + payload.length);
}

/** A decoded publication, or why the bytes are not one. */
export type Decoded = { ok: true; publication: Publication } | { ok: false; reason: string };

/**
 * Decodes strictly: anything other than exactly what encodePublication makes
 * is refused with a reason, never thrown and never half-taken (a raw client
 * can PUBLISH anything to a channel; test/redis/redis-codec.test.ts,
 * "refuses").
 * The payload is a view of `bytes` (a buffer node-redis made for this reply
 * and holds no longer), not a copy.
 */
export function decodePublication(topic: string, bytes: Buffer): Decoded {
  if (bytes.length < HEADER_BYTES) return { ok: false, reason: `${bytes.length} bytes, shorter than a header` };
  if (bytes[0] !== 0x53 || bytes[1] !== 0x4b) return { ok: false, reason: 'not a sockeye publication (bad magic)' };
  if (bytes[2] !== CODEC_VERSION) return { ok: false, reason: `unknown version ${bytes[2]}` };
  const flags = bytes[3];
  if ((flags & ~KNOWN_FLAGS) !== 0) return { ok: false, reason: `unknown flags 0x${flags.toString(16)}` };
  const seq = bytes.readUIntBE(4, 6);
  const prev = bytes.readUIntBE(10, 6);
  if (seq < 1 || seq > MAX_SEQ) return { ok: false, reason: `bad seq ${seq}` };
  if (prev >= seq) return { ok: false, reason: `prev ${prev} is not below seq ${seq}` };
  const n = bytes[16];
  if (n === 0 || bytes.length < HEADER_BYTES + n) return { ok: false, reason: `bad origin length ${n}` };
  const originBytes = bytes.subarray(HEADER_BYTES, HEADER_BYTES + n);
  if (!isValidUtf8(originBytes)) return { ok: false, reason: 'origin is not UTF-8' };
  const payload = bytes.subarray(HEADER_BYTES + n);
  const binary = (flags & FLAG_BINARY) !== 0;
  // A text message goes out as a text frame, which must be UTF-8 (RFC 6455 section 8.1): checked here, once per node.
  if (!binary && !isValidUtf8(payload)) return { ok: false, reason: 'text payload is not UTF-8' };
  const publication: Publication = {
    topic,
    payload,
    binary,
    compress: (flags & FLAG_COMPRESS) !== 0,
    origin: originBytes.toString('utf8'),
    seq,
    prev,
    ...((flags & FLAG_REDELIVERY) !== 0 ? { redelivery: true } : {}),
  };
  return { ok: true, publication };
}
