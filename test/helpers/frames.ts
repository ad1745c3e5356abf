/**
 * Hand-built RFC 6455 frames for tests, written from the wire format of
 * section 5.2 and independently of src/core/frame-serializer.ts (and of
 * src/core/mask.ts), so the parser is never checked against its own twin.
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-------+-+-------------+-------------------------------+
 *   |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
 *   |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
 *   |N|V|V|V|       |S|             |                               |
 *   | |1|2|3|       |K|             |                               |
 *   +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
 *   |     Extended payload length continued, if payload len == 127  |
 *   + - - - - - - - - - - - - - - - +-------------------------------+
 *   |                               |Masking-key, if MASK set to 1  |
 *   +-------------------------------+-------------------------------+
 *   | Masking-key (continued)       |          Payload Data         |
 *   +-------------------------------- - - - - - - - - - - - - - - - +
 *
 * Nothing here validates: a test can build any frame, including ones the RFC
 * forbids (reserved bits, reserved opcodes, oversized control frames, lengths
 * that lie, a 64-bit length with the top bit set).
 */

/** Opcode numbers, section 5.2 (spelled out here rather than imported). */
export const Op = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;

/** RSV bit values as the 3-bit `rsv` field below uses them. */
export const RSV1 = 0b100;
export const RSV2 = 0b010;
export const RSV3 = 0b001;

export interface FrameSpec {
  opcode: number;
  /** Payload; a string is encoded as UTF-8. Default empty. */
  payload?: Uint8Array | string;
  /** FIN bit; default true. */
  fin?: boolean;
  /** The three RSV bits as one number: 4 = RSV1, 2 = RSV2, 1 = RSV3. Default 0. */
  rsv?: number;
  /** A 4-byte masking key: the frame gets the MASK bit and a masked payload. Absent or null: unmasked. */
  mask?: Uint8Array | readonly number[] | null;
  /** Force the length encoding: 7 (in the second byte), 16 (126 + 2 bytes) or 64 (127 + 8 bytes). Default: the minimal one. */
  lengthEncoding?: 7 | 16 | 64;
  /** The payload length written in the header, if it must differ from the real payload length (a lying header). */
  declaredLength?: number | bigint;
}

export function utf8(s: string): Buffer {
  return Buffer.from(s, 'utf8');
}

function payloadBytes(p: Uint8Array | string | undefined): Buffer {
  if (p === undefined) return Buffer.alloc(0);
  return typeof p === 'string' ? utf8(p) : Buffer.from(p.buffer, p.byteOffset, p.byteLength);
}

/** XORs `data` with `key` into a new buffer; `offset` is the position of data[0] in the payload (section 5.3: j = i MOD 4). */
export function xorMask(data: Uint8Array, key: Uint8Array | readonly number[], offset = 0): Buffer {
  const out = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] ^ key[(offset + i) % 4];
  return out;
}

/** Builds one frame exactly as `spec` says. */
export function frame(spec: FrameSpec): Buffer {
  const payload = payloadBytes(spec.payload);
  const declared = BigInt(spec.declaredLength ?? payload.length);
  const encoding = spec.lengthEncoding ?? (declared < 126n ? 7 : declared < 0x10000n ? 16 : 64);
  if (encoding === 7 && declared > 125n) throw new RangeError(`length ${declared} does not fit the 7-bit field`);
  if (encoding === 16 && declared > 0xffffn) throw new RangeError(`length ${declared} does not fit the 16-bit field`);
  const mask = spec.mask ?? null;
  if (mask !== null && mask.length !== 4) throw new RangeError('a masking key has 4 bytes');
  const extLen = encoding === 7 ? 0 : encoding === 16 ? 2 : 8;
  const head = Buffer.alloc(2 + extLen + (mask ? 4 : 0));
  const fin = spec.fin ?? true;
  const rsv = spec.rsv ?? 0;
  if (rsv < 0 || rsv > 7) throw new RangeError('rsv is 3 bits');
  if (spec.opcode < 0 || spec.opcode > 15) throw new RangeError('opcode is 4 bits');
  head[0] = (fin ? 0x80 : 0) | (rsv << 4) | spec.opcode;
  const maskBit = mask ? 0x80 : 0;
  if (encoding === 7) {
    head[1] = maskBit | Number(declared);
  } else if (encoding === 16) {
    head[1] = maskBit | 126;
    head[2] = Number(declared >> 8n) & 0xff;
    head[3] = Number(declared) & 0xff;
  } else {
    head[1] = maskBit | 127;
    // Big-endian, byte by byte (section 5.2: "network byte order").
    for (let i = 0; i < 8; i++) head[2 + i] = Number((declared >> BigInt(8 * (7 - i))) & 0xffn);
  }
  if (mask) {
    for (let i = 0; i < 4; i++) head[2 + extLen + i] = mask[i];
    return Buffer.concat([head, xorMask(payload, mask)]);
  }
  return Buffer.concat([head, payload]);
}

/** Concatenates frames (or any bytes) into one fresh buffer. */
export function concat(...parts: Uint8Array[]): Buffer {
  return Buffer.concat(parts);
}

/** A close frame payload (section 5.5.1): 2-byte big-endian code, then the reason. */
export function closePayload(code: number, reason: string | Uint8Array = ''): Buffer {
  const r = typeof reason === 'string' ? utf8(reason) : Buffer.from(reason);
  const out = Buffer.alloc(2 + r.length);
  out[0] = (code >> 8) & 0xff;
  out[1] = code & 0xff;
  r.copy(out, 2);
  return out;
}

export interface DecodedFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  /** The masking key, or null. */
  mask: Buffer | null;
  /** The payload, unmasked. */
  payload: Buffer;
  /** Offset of the frame's first byte in the decoded input. */
  start: number;
  /** Size of the header (2 to 14 bytes). */
  headerLength: number;
  /** How the length was encoded. */
  lengthEncoding: 7 | 16 | 64;
}

/**
 * Decodes a byte string that must consist of whole frames (a test's own
 * reference decoder, used to read what the code under test wrote, and to lay
 * out test input). Throws on a truncated frame; checks nothing else.
 */
export function decodeFrames(bytes: Uint8Array): DecodedFrame[] {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: DecodedFrame[] = [];
  let p = 0;
  while (p < b.length) {
    const start = p;
    if (b.length - p < 2) throw new Error(`truncated frame header at ${p}`);
    const b0 = b[p];
    const b1 = b[p + 1];
    p += 2;
    let len = b1 & 0x7f;
    let lengthEncoding: 7 | 16 | 64 = 7;
    if (len === 126) {
      if (b.length - p < 2) throw new Error(`truncated 16-bit length at ${p}`);
      len = b[p] * 256 + b[p + 1];
      p += 2;
      lengthEncoding = 16;
    } else if (len === 127) {
      if (b.length - p < 8) throw new Error(`truncated 64-bit length at ${p}`);
      let l = 0;
      for (let i = 0; i < 8; i++) l = l * 256 + b[p + i];
      if (!Number.isSafeInteger(l)) throw new Error('length beyond 2^53');
      len = l;
      p += 8;
      lengthEncoding = 64;
    }
    const masked = (b1 & 0x80) !== 0;
    let mask: Buffer | null = null;
    if (masked) {
      if (b.length - p < 4) throw new Error(`truncated masking key at ${p}`);
      mask = Buffer.from(b.subarray(p, p + 4));
      p += 4;
    }
    const headerLength = p - start;
    if (b.length - p < len) throw new Error(`truncated payload at ${p}: ${len} bytes announced, ${b.length - p} present`);
    const raw = b.subarray(p, p + len);
    const payload = mask ? xorMask(raw, mask) : Buffer.from(raw);
    p += len;
    out.push({ fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, masked, mask, payload, start, headerLength, lengthEncoding });
  }
  return out;
}

/**
 * A frame as the peer of `role` sends it (RFC 6455 section 5.1): a client
 * masks every frame, so what a server receives is masked; a server masks
 * nothing. The masking key is derived from the frame itself (varied and
 * reproducible, never all zeros) unless `spec.mask` gives one.
 */
export function peerFrame(role: 'server' | 'client', spec: FrameSpec): Buffer {
  if (role === 'client') return frame({ ...spec, mask: null });
  if (spec.mask) return frame(spec);
  const n = payloadBytes(spec.payload).length;
  const key = [0x5a ^ (n & 0xff), 0xc3 ^ ((n >> 8) & 0xff), 0x11 + spec.opcode * 17, (spec.fin ?? true) ? 0x81 : 0x7e];
  return frame({ ...spec, mask: key });
}

/** `n` reproducible pseudo-random bytes (an LCG seeded with `seed`): binary payloads that are not valid UTF-8. */
export function testBytes(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}
