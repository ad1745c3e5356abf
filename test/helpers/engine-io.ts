/**
 * What the socket.io and engine.io tests over sockeye/ws share
 * (test/compat/ws/socketio.test.ts, engineio.test.ts).
 */
import assert from 'node:assert/strict';
import type { Socket as EioSocket } from 'engine.io';
import { NodeWebSocket } from 'engine.io-client';
import { WebSocket, type WebSocketClientOptions } from '../../src/compat/ws/index.js';
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

/** The sockeye socket under an engine.io socket's websocket transport (its `socket` property), or a failure. */
export function sockeyeSocketOf(socket: EioSocket): WebSocket {
  const transport = socket.transport;
  assert.equal(transport.name, 'websocket');
  assert.ok('socket' in transport, 'the websocket transport keeps its socket');
  const ws = transport.socket;
  assert.ok(ws instanceof WebSocket, 'the server-side socket is a sockeye/ws WebSocket');
  return ws;
}

/** Clients made by SockeyeTransport, in order. */
export const sockeyeClients: WebSocket[] = [];

/** engine.io-client's Node websocket transport with sockeye/ws's client in place of the ws package's. */
export class SockeyeTransport extends NodeWebSocket {
  override createSocket(uri: string, protocols: string | string[] | undefined, opts: Record<string, unknown>): WebSocket {
    const ws = new WebSocket(uri, protocols, opts as WebSocketClientOptions);
    sockeyeClients.push(ws);
    return ws;
  }
}
