/**
 * Fault: the peer half-closes the TCP connection (socket.end(): a FIN)
 * without a close frame. RFC 6455 section 7.1.5: the connection was closed
 * without a closing handshake, so the close code is 1006 (abnormal closure).
 * Expected on the sockeye side: everything that arrived complete before the
 * FIN is delivered first, then onError (ERR_CONNECTION_LOST), then onClose
 * with 1006 and wasClean false, each exactly once and in that order; sockeye
 * ends its side too (the peer sees the TCP connection close), and every
 * resource is freed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type ClientSession, type ServerSession } from '../../src/index.js';
import { RawClient, delay, encodeRawFrame, serverFrame, startRawServer, switchingProtocols, waitUntil, withTimeout } from '../helpers/ws-pair.js';
import { EventRecorder, activeResources, assertLifecycle, assertResourcesBack } from './events.js';

describe('fault: half-close from the peer without a close frame', () => {
  const clientSide: Array<[string, Buffer[], string[]]> = [
    ['right after the handshake', [], []],
    ['after a complete message', [encodeRawFrame(0x1, 'hello')], ['message 5']],
    ['in the middle of a frame', [encodeRawFrame(0x2, Buffer.alloc(1000, 0x61)).subarray(0, 500)], []],
    ['in the middle of a fragmented message', [encodeRawFrame(0x1, 'part one ', { fin: false })], []],
  ];
  for (const [when, bytes, middle] of clientSide) {
    it(`a client half-closes ${when}: the server session gets ${[...middle, 'error', '1006'].join(', ')}, once, in order; the server ends its side; all freed`, async () => {
      const baseline = activeResources();
      const rec = new EventRecorder<ServerSession>();
      const server = createServer({ keepalive: null, onError: () => {}, handler: rec.handler() });
      await server.listen(0, '127.0.0.1');
      try {
        const raw = await RawClient.open(server.port);
        await waitUntil(() => rec.logs.size === 1, 5000, 'the session');
        for (const b of bytes) raw.write(b);
        raw.socket.end();
        await rec.waitClosed(1);
        // The server closes its side: the raw client sees the whole TCP connection close.
        await raw.waitClosed(5000);
        await delay(200);
        assertLifecycle(rec.only(), 1006, { errorCode: 'ERR_CONNECTION_LOST', middle });
        assert.equal(rec.only().closeInfo!.wasClean, false);
        // 1006 is never sent on the wire (RFC 6455 section 7.4.1): nothing came back.
        assert.deepEqual(raw.frames, []);
        assert.equal(server.clients.size, 0);
        raw.destroy();
      } finally {
        await server.close();
      }
      await assertResourcesBack(baseline);
    });
  }

  const serverSide: Array<[string, Buffer[], string[]]> = [
    ['right after the 101', [], []],
    ['after a complete message', [serverFrame(0x1, 'hello')], ['message 5']],
    ['in the middle of a frame', [serverFrame(0x2, Buffer.alloc(1000, 0x62)).subarray(0, 500)], []],
  ];
  for (const [when, bytes, middle] of serverSide) {
    it(`a server half-closes ${when}: the client gets ${[...middle, 'error', '1006'].join(', ')}, once, in order; all freed`, async () => {
      const baseline = activeResources();
      let peerSawClose = false;
      const raw = await startRawServer((socket, request) => {
        socket.on('close', () => (peerSawClose = true));
        socket.write(Buffer.concat([Buffer.from(switchingProtocols(request.key)), ...bytes]));
        socket.end();
      });
      const rec = new EventRecorder<ClientSession>();
      let client: ClientSession | null = null;
      try {
        client = await connect(`ws://127.0.0.1:${raw.port}/`, { keepalive: null, handler: rec.handler() });
        const info = await withTimeout(client.closed, 10_000, 'the client to close');
        await delay(200);
        assert.equal(info.code, 1006);
        assert.equal(info.wasClean, false);
        assertLifecycle(rec.only(), 1006, { errorCode: 'ERR_CONNECTION_LOST', middle });
        await waitUntil(() => peerSawClose, 5000, 'the client to end its side');
      } finally {
        client?.terminate();
        await raw.close();
      }
      await assertResourcesBack(baseline);
    });
  }
});
