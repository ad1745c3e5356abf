/**
 * What the socket.io and engine.io tests over sockeye/ws share
 * (test/compat/ws/socketio.test.ts, engineio.test.ts).
 */
import assert from 'node:assert/strict';
import { withTimeout } from './ws-pair.js';

export const WAIT = 5000;

/** Resolves with what `register`'s callback is given, or fails after `ms`. */
export function next<T>(register: (resolve: (value: T) => void) => void, what: string, ms = WAIT): Promise<T> {
  return withTimeout(new Promise<T>(register), ms, what);
}

/** Bytes of a binary payload as socket.io and engine.io hand it out (Buffer, ArrayBuffer or a view), or a failure. */
export function bytesOf(value: unknown): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof ArrayBuffer) return Buffer.from(value);
  if (ArrayBuffer.isView(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  assert.fail(`expected binary data, got ${typeof value}: ${String(value)}`);
}
