/**
 * The errors sockeye/ws raises for a peer's faults are ws's (doc/ws.md,
 * "Error codes"): the class, the message, the `code` string, and the close
 * code sent to the peer. Each fault goes over a real socket from a raw
 * client to a sockeye/ws server, and from a raw server to a sockeye/ws
 * client; the engine finds it, the adapter names it as ws does.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from '../../../src/compat/ws/index.js';
import { toWsError } from '../../../src/compat/ws/errors.js';
import { LimitExceededError, TransportError, WebSocketError } from '../../../src/core/errors.js';
import { RawClient, closePayload, decodeClose, startRawServer, switchingProtocols, withTimeout } from '../../helpers/ws-pair.js';
import { frame, Op, RSV1, RSV2, RSV3 } from '../../helpers/frames.js';

const MASK = [0x11, 0x22, 0x33, 0x44];

interface Fault {
  name: string;
  /** The offending bytes, as a client would send them (masked). */
  bytes: Buffer;
  ctor: typeof Error | typeof RangeError;
  message: string;
  code: string;
  close: number;
}

const faults: Fault[] = [
  { name: 'RSV1 without an extension', bytes: frame({ opcode: Op.Text, payload: 'x', rsv: RSV1, mask: MASK }), ctor: RangeError, message: 'Invalid WebSocket frame: RSV1 must be clear', code: 'WS_ERR_UNEXPECTED_RSV_1', close: 1002 },
  { name: 'RSV2', bytes: frame({ opcode: Op.Text, payload: 'x', rsv: RSV2, mask: MASK }), ctor: RangeError, message: 'Invalid WebSocket frame: RSV2 and RSV3 must be clear', code: 'WS_ERR_UNEXPECTED_RSV_2_3', close: 1002 },
  { name: 'RSV3', bytes: frame({ opcode: Op.Binary, payload: 'x', rsv: RSV3, mask: MASK }), ctor: RangeError, message: 'Invalid WebSocket frame: RSV2 and RSV3 must be clear', code: 'WS_ERR_UNEXPECTED_RSV_2_3', close: 1002 },
  { name: 'reserved opcode 3', bytes: frame({ opcode: 0x3, payload: 'x', mask: MASK }), ctor: RangeError, message: 'Invalid WebSocket frame: invalid opcode 3', code: 'WS_ERR_INVALID_OPCODE', close: 1002 },
  { name: 'reserved control opcode 0xb', bytes: frame({ opcode: 0xb, mask: MASK }), ctor: RangeError, message: 'Invalid WebSocket frame: invalid opcode 11', code: 'WS_ERR_INVALID_OPCODE', close: 1002 },
  { name: 'a continuation with nothing to continue', bytes: frame({ opcode: Op.Continuation, payload: 'x', mask: MASK }), ctor: RangeError, message: 'Invalid WebSocket frame: invalid opcode 0', code: 'WS_ERR_INVALID_OPCODE', close: 1002 },
  {
    name: 'a new text message inside a fragmented one',
    bytes: Buffer.concat([frame({ opcode: Op.Text, payload: 'a', fin: false, mask: MASK }), frame({ opcode: Op.Text, payload: 'b', mask: MASK })]),
    ctor: RangeError,
    message: 'Invalid WebSocket frame: invalid opcode 1',
    code: 'WS_ERR_INVALID_OPCODE',
    close: 1002,
  },
  { name: 'a fragmented ping', bytes: frame({ opcode: Op.Ping, fin: false, mask: MASK }), ctor: RangeError, message: 'Invalid WebSocket frame: FIN must be set', code: 'WS_ERR_EXPECTED_FIN', close: 1002 },
  { name: 'a ping of 126 bytes', bytes: frame({ opcode: Op.Ping, payload: Buffer.alloc(126), mask: MASK }), ctor: RangeError, message: 'Invalid WebSocket frame: invalid payload length 126', code: 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH', close: 1002 },
  { name: 'a close frame of 1 byte', bytes: frame({ opcode: Op.Close, payload: Buffer.from([0x03]), mask: MASK }), ctor: RangeError, message: 'Invalid WebSocket frame: invalid payload length 1', code: 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH', close: 1002 },
  { name: 'close code 1005 on the wire', bytes: frame({ opcode: Op.Close, payload: closePayload(1005), mask: MASK }), ctor: RangeError, message: 'Invalid WebSocket frame: invalid status code 1005', code: 'WS_ERR_INVALID_CLOSE_CODE', close: 1002 },
  { name: 'close code 2999', bytes: frame({ opcode: Op.Close, payload: closePayload(2999), mask: MASK }), ctor: RangeError, message: 'Invalid WebSocket frame: invalid status code 2999', code: 'WS_ERR_INVALID_CLOSE_CODE', close: 1002 },
  { name: 'a close reason that is not UTF-8', bytes: frame({ opcode: Op.Close, payload: Buffer.concat([closePayload(1000), Buffer.from([0xff])]), mask: MASK }), ctor: Error, message: 'Invalid WebSocket frame: invalid UTF-8 sequence', code: 'WS_ERR_INVALID_UTF8', close: 1007 },
  { name: 'text that is not UTF-8', bytes: frame({ opcode: Op.Text, payload: Buffer.from([0xc0, 0x80]), mask: MASK }), ctor: Error, message: 'Invalid WebSocket frame: invalid UTF-8 sequence', code: 'WS_ERR_INVALID_UTF8', close: 1007 },
  {
    name: 'a 64-bit length with the top bit set',
    bytes: frame({ opcode: Op.Binary, mask: MASK, lengthEncoding: 64, declaredLength: 0x8000000000000000n }),
    ctor: RangeError,
    message: 'Unsupported WebSocket frame: payload length > 2^53 - 1',
    code: 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH',
    // ws sends 1009; RFC 6455 section 5.2 makes this a framing error (docs/migrating-from-ws.md).
    close: 1002,
  },
  { name: 'a message over maxPayload', bytes: frame({ opcode: Op.Binary, payload: Buffer.alloc(2049), mask: MASK }), ctor: RangeError, message: 'Max payload size exceeded', code: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', close: 1009 },
];

const open: Array<{ close(cb?: () => void): void }> = [];
after(async () => {
  for (const s of open) await new Promise<void>((resolve) => s.close(() => resolve()));
});

describe('a client fault seen by a sockeye/ws server', () => {
  for (const f of faults) {
    it(f.name, async () => {
      const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', maxPayload: 2048 });
      open.push(wss);
      await once(wss, 'listening');
      const errors: Array<Error & { code?: string }> = [];
      const closed = new Promise<number>((resolve) =>
        wss.on('connection', (ws: WebSocket) => {
          ws.on('error', (e: Error) => errors.push(e));
          ws.on('close', (code: number) => resolve(code));
        }),
      );
      const raw = await RawClient.open((wss.address() as AddressInfo).port);
      raw.write(f.bytes);
      const sent = await raw.waitClose(5000);
      assert.equal(sent.code, f.close, 'close code sent to the peer');
      raw.destroy();
      await withTimeout(closed, 5000, "the server socket's close");
      assert.equal(errors.length, 1, 'one error event');
      const [err] = errors;
      assert.equal(err.constructor, f.ctor);
      assert.equal(err.message, f.message);
      assert.equal(err.code, f.code);
      assert.ok(err.cause instanceof WebSocketError, 'the engine error is the cause');
      for (const c of wss.clients ?? []) c.terminate();
    });
  }
});

describe('a server fault seen by a sockeye/ws client', () => {
  it('a masked frame from the server: WS_ERR_UNEXPECTED_MASK, 1002', async () => {
    const server = await startRawServer((socket, req) => {
      socket.write(switchingProtocols(req.key));
      socket.write(frame({ opcode: Op.Text, payload: 'hi', mask: MASK }));
    });
    open.push({ close: (cb) => void server.close().then(cb) });
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/`, { perMessageDeflate: false });
    const [err] = (await withTimeout(once(ws, 'error'), 5000, 'error')) as [Error & { code?: string }];
    assert.ok(err instanceof RangeError);
    assert.equal(err.message, 'Invalid WebSocket frame: MASK must be clear');
    assert.equal(err.code, 'WS_ERR_UNEXPECTED_MASK');
    const [code] = (await withTimeout(once(ws, 'close'), 7000, 'close')) as [number];
    // The raw server never answers our close frame: the socket ends without a closing handshake.
    assert.equal(code, 1006);
  });

  it("the close frame the client sends for a server's bad close code is 1002", async () => {
    let answered: { code: number; reason: string } | null = null;
    const server = await startRawServer((socket, req) => {
      socket.write(switchingProtocols(req.key));
      socket.write(frame({ opcode: Op.Close, payload: closePayload(1004) }));
      let buf = Buffer.alloc(0);
      socket.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 2 && (buf[0] & 0x0f) === Op.Close) {
          const len = buf[1] & 0x7f;
          const key = buf.subarray(2, 6);
          const payload = Buffer.from(buf.subarray(6, 6 + len));
          for (let i = 0; i < payload.length; i++) payload[i] ^= key[i % 4];
          answered = decodeClose({ fin: true, rsv: 0, opcode: Op.Close, masked: true, payload });
          socket.end();
        }
      });
    });
    open.push({ close: (cb) => void server.close().then(cb) });
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/`, { perMessageDeflate: false });
    const [err] = (await withTimeout(once(ws, 'error'), 5000, 'error')) as [Error & { code?: string }];
    assert.equal(err.code, 'WS_ERR_INVALID_CLOSE_CODE');
    await withTimeout(once(ws, 'close'), 5000, 'close');
    assert.equal(answered!.code, 1002);
  });
});

describe('toWsError', () => {
  it('leaves out what ws does not report: transport failures', () => {
    assert.equal(toWsError(new TransportError('ERR_SOCKET', 'socket error: ECONNRESET')), null);
  });

  it('keeps the engine error for limits ws does not have', () => {
    const e = new LimitExceededError('maxControlFramesPerSecond', 'too many pings', 1008);
    assert.equal(toWsError(e), e);
  });

  it('names maxFragments as ws names its fragment limit', () => {
    const e = toWsError(new LimitExceededError('maxFragments', 'message of more than 3 frames', 1008)) as Error & { code: string; closeCode: number };
    assert.equal(e.message, 'Too many message fragments');
    assert.equal(e.code, 'WS_ERR_TOO_MANY_BUFFERED_PARTS');
    assert.equal(e.closeCode, 1008);
  });
});
