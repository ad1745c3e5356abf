import { applyMask } from './mask.js';

export interface EncodeOptions {
  fin?: boolean;
  /** RSV bits (0x4 = RSV1) set by an extension. */
  rsv?: number;
  /** 4 fresh random bytes for a client frame (RFC 6455 section 5.3), null for a server frame. */
  mask: Uint8Array | null;
  /** Allocates the frame's buffer when the payload is copied (default Buffer.allocUnsafe). */
  alloc?: ((size: number) => Buffer) | null;
}

/** Size of a frame header for a payload of `length` bytes (RFC 6455 section 5.2). */
export function headerSize(length: number, masked: boolean): number {
  return (length < 126 ? 2 : length < 0x10000 ? 4 : 10) + (masked ? 4 : 0);
}

function writeHeader(target: Buffer, opcode: number, length: number, opts: EncodeOptions): number {
  const fin = opts.fin ?? true;
  target[0] = (fin ? 0x80 : 0) | ((opts.rsv ?? 0) << 4) | opcode;
  const maskBit = opts.mask ? 0x80 : 0;
  let p: number;
  if (length < 126) {
    target[1] = maskBit | length;
    p = 2;
  } else if (length < 0x10000) {
    target[1] = maskBit | 126;
    target.writeUInt16BE(length, 2);
    p = 4;
  } else {
    target[1] = maskBit | 127;
    target.writeUInt32BE(Math.floor(length / 0x100000000), 2);
    target.writeUInt32BE(length >>> 0, 6);
    p = 10;
  }
  if (opts.mask) {
    target[p] = opts.mask[0];
    target[p + 1] = opts.mask[1];
    target[p + 2] = opts.mask[2];
    target[p + 3] = opts.mask[3];
    p += 4;
  }
  return p;
}

/**
 * Builds one frame. The payload is always copied into memory the library owns
 * (invariant S2: what goes on the wire is what the application sent when it
 * sent it, whatever it does with its buffer afterwards), and since it is
 * copied anyway it is copied right behind its header: one buffer, one
 * allocation, whatever the size. (Header and payload as two buffers would
 * cost node:tls a third copy of the payload: its writev joins the buffers
 * before encrypting.) test/core/frame-serializer.test.ts checks the copy.
 */
export function encodeFrame(opcode: number, payload: Uint8Array, opts: EncodeOptions): Buffer[] {
  const length = payload.length;
  const hsize = headerSize(length, opts.mask !== null);
  const out = opts.alloc ? opts.alloc(hsize + length) : Buffer.allocUnsafe(hsize + length);
  writeHeader(out, opcode, length, opts);
  out.set(payload, hsize);
  if (opts.mask) applyMask(out, opts.mask, 0, hsize, hsize + length);
  return [out];
}

/**
 * Builds a frame from a payload the library already owns (a string it encoded
 * itself, or an explicit ownership transfer): no copy for server frames; for
 * client frames the payload is masked in place.
 */
export function encodeOwnedFrame(opcode: number, payload: Buffer, opts: EncodeOptions): Buffer[] {
  const length = payload.length;
  if (length <= 1024) return encodeFrame(opcode, payload, opts);
  const header = Buffer.allocUnsafe(headerSize(length, opts.mask !== null));
  writeHeader(header, opcode, length, opts);
  if (opts.mask) applyMask(payload, opts.mask);
  return [header, payload];
}
