/**
 * Fault: a TCP reset (RST, socket.resetAndDestroy()) in the middle of a
 * frame, on each side.
 *
 * RFC 6455 section 7.1.5: when the TCP connection is closed without a
 * closing handshake, the close code is 1006 (abnormal closure), which is
 * never sent on the wire (section 7.4.1). Expected on the side that suffers
 * the reset: onOpen, then onError (ERR_SOCKET: the ECONNRESET), then onClose
 * with 1006 and wasClean false, each exactly once and in that order; the
 * partial message is never delivered; the session is released
 * (server.clients empty, `closed` resolved) and the TCP handles are freed
 * (process.getActiveResourcesInfo() back to the baseline).
 *
 * 1. A raw client resets mid-frame while the sockeye server receives.
 * 2. A raw server resets mid-frame while the sockeye client receives.
 * 3. sockeye to sockeye: a relay resets both connections once 1 MiB of a
 *    4 MiB message went through; both sides end with 1006 once, and the
 *    client reports the message as unsent (CloseInfo.unsentMessages, S4).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type ClientSession, type ServerSession } from '../../src/index.js';
import { RawClient, delay, startRawServer, switchingProtocols, waitUntil, withTimeout } from '../helpers/ws-pair.js';
import { EventRecorder, activeResources, assertLifecycle, assertResourcesBack } from './events.js';
import { startFaultProxy } from './fault-proxy.js';

/** A masked binary frame header announcing `length` (zero mask). */
function header(length: number, masked: boolean): Buffer {
  const h = Buffer.alloc(masked ? 14 : 10);
  h[0] = 0x82;
  h[1] = (masked ? 0x80 : 0) | 127;
  h.writeBigUInt64BE(BigInt(length), 2);
  return h;
}

describe('fault: TCP reset in the middle of a frame', () => {
  it('the client resets mid-frame: the server session gets error then 1006, once, in order; everything freed', async () => {
    const baseline = activeResources();
    const rec = new EventRecorder<ServerSession>();
    const server = createServer({ keepalive: null, onError: () => {}, handler: rec.handler() });
    await server.listen(0, '127.0.0.1');
    try {
      const raw = await RawClient.open(server.port);
      await waitUntil(() => rec.logs.size === 1, 5000, 'the session');
      // Half of a 100,000-byte frame, then RST.
      await new Promise<void>((resolve) => raw.socket.write(Buffer.concat([header(100_000, true), Buffer.alloc(50_000, 0x61)]), () => resolve()));
      await delay(50);
      raw.socket.resetAndDestroy();
      await rec.waitClosed(1);
      await delay(200); // nothing may fire after onClose
      const log = rec.only();
      assertLifecycle(log, 1006, { errorCode: 'ERR_SOCKET' });
      assert.equal(log.closeInfo!.wasClean, false);
      assert.match(log.closeInfo!.error!.message, /ECONNRESET/);
      assert.equal(server.clients.size, 0);
    } finally {
      await server.close();
    }
    await assertResourcesBack(baseline);
  });

  it('the server resets mid-frame: the client gets error then 1006, once, in order; closed resolves; everything freed', async () => {
    const baseline = activeResources();
    const raw = await startRawServer((socket, request) => {
      socket.write(switchingProtocols(request.key));
      socket.write(Buffer.concat([header(100_000, false), Buffer.alloc(50_000, 0x62)]), () => setTimeout(() => socket.resetAndDestroy(), 50));
    });
    const rec = new EventRecorder<ClientSession>();
    let client: ClientSession | null = null;
    try {
      client = await connect(`ws://127.0.0.1:${raw.port}/`, { keepalive: null, handler: rec.handler() });
      const info = await withTimeout(client.closed, 10_000, 'the client to close');
      await delay(200);
      assert.equal(info.code, 1006);
      assert.equal(info.wasClean, false);
      assert.equal(info.error?.code, 'ERR_SOCKET');
      assertLifecycle(rec.only(), 1006, { errorCode: 'ERR_SOCKET' });
    } finally {
      client?.terminate();
      await raw.close();
    }
    await assertResourcesBack(baseline);
  });

  it('sockeye to sockeye, a relay resets both sides 1 MiB into a 4 MiB message: 1006 once on each side; the message reported unsent; everything freed', { timeout: 30_000 }, async () => {
    const baseline = activeResources();
    const serverRec = new EventRecorder<ServerSession>();
    const clientRec = new EventRecorder<ClientSession>();
    const server = createServer({ keepalive: null, limits: { maxMessageBytes: 8 << 20 }, onError: () => {}, handler: serverRec.handler() });
    await server.listen(0, '127.0.0.1');
    const proxy = await startFaultProxy(server.port);
    let client: ClientSession | null = null;
    try {
      client = await connect(`ws://127.0.0.1:${proxy.port}/`, { keepalive: null, handler: clientRec.handler() });
      await proxy.connected;
      await waitUntil(() => serverRec.logs.size === 1, 5000, 'the server session');
      const handshakeBytes = proxy.toServer.bytes;
      proxy.whenToServerPasses(handshakeBytes + (1 << 20), () => proxy.resetBoth());
      const status = client.send(Buffer.alloc(4 << 20, 0x63));
      assert.notEqual(status, 'dropped');
      const info = await withTimeout(client.closed, 10_000, 'the client to close');
      await serverRec.waitClosed(1);
      await delay(200);
      assert.equal(info.code, 1006);
      assert.equal(info.unsentMessages, 1, 'the message cut by the reset is reported as unsent (S4)');
      // Each side: the reset is seen as an error (ECONNRESET, or EPIPE while writing), then 1006.
      assertLifecycle(clientRec.only(), 1006, { errorCode: /^error ERR_SOCKET$/ });
      assertLifecycle(serverRec.only(), 1006, { errorCode: /^error ERR_SOCKET$/ });
      assert.ok(!serverRec.only().events.some((e) => e.startsWith('message')), 'the partial message was never delivered');
      assert.equal(server.clients.size, 0);
    } finally {
      client?.terminate();
      await proxy.close();
      await server.close();
    }
    await assertResourcesBack(baseline);
  });
});
