import { CloseCode, isValidWireCloseCode, MAX_CLOSE_REASON_BYTES } from './close-codes.js';
import { InvalidArgumentError, InvalidUtf8Error, ProtocolError } from './errors.js';
import { isValidUtf8 } from './utf8-validator.js';

/** Builds a close payload, refusing codes that may not be sent and reasons over 123 bytes. */
export function encodeClosePayload(code: number, reason: string): Buffer {
  if (!Number.isInteger(code) || !isValidWireCloseCode(code)) {
    throw new InvalidArgumentError('ERR_BAD_CLOSE_CODE', `close code ${code} may not be sent (RFC 6455 section 7.4)`);
  }
  const reasonBytes = Buffer.from(reason, 'utf8');
  if (reasonBytes.length > MAX_CLOSE_REASON_BYTES) {
    throw new InvalidArgumentError('ERR_CLOSE_REASON_TOO_LONG', `close reason of ${reasonBytes.length} bytes (max ${MAX_CLOSE_REASON_BYTES})`);
  }
  const out = Buffer.allocUnsafe(2 + reasonBytes.length);
  out.writeUInt16BE(code, 0);
  reasonBytes.copy(out, 2);
  return out;
}

/** Parses a received close payload (RFC 6455 section 5.5.1), throwing on a malformed one. */
export function decodeClosePayload(payload: Buffer): { code: number; reason: string } {
  if (payload.length === 0) return { code: CloseCode.NoStatus, reason: '' };
  if (payload.length === 1) throw new ProtocolError('ERR_BAD_CLOSE_PAYLOAD', 'close frame with a 1-byte payload');
  const code = payload.readUInt16BE(0);
  if (!isValidWireCloseCode(code)) throw new ProtocolError('ERR_BAD_CLOSE_CODE', `invalid close code ${code}`);
  const reasonBytes = payload.subarray(2);
  if (!isValidUtf8(reasonBytes)) throw new InvalidUtf8Error('close reason is not UTF-8');
  return { code, reason: reasonBytes.toString('utf8') };
}

/** Cuts a string to at most `max` UTF-8 bytes without splitting a character. */
export function truncateUtf8(s: string, max: number): string {
  const b = Buffer.from(s, 'utf8');
  if (b.length <= max) return s;
  let end = max;
  while (end > 0 && (b[end] & 0xc0) === 0x80) end--;
  return b.subarray(0, end).toString('utf8');
}
