/**
 * Fault: a TLS alert in the middle of a wss:// stream.
 *
 * A relay between a sockeye client and a sockeye wss server forwards whole
 * TLS records and, after a first echo, inserts one forged application_data
 * record (random bytes: it cannot be decrypted, RFC 5246 section 6.2.3 /
 * RFC 8446 section 5.2) on a record boundary. The receiving TLS layer fails
 * with bad_record_mac and sends a real fatal alert to its peer (RFC 8446
 * section 6.2: "bad_record_mac ... MUST be sent"); under TLS 1.2 that alert
 * travels as a record of content type 21 (alert), which the relay sees and
 * the test asserts; under TLS 1.3 it is encrypted like any record.
 *
 * Expected on both sides: onOpen, the first echo, then onError (ERR_SOCKET,
 * carrying the TLS error: the decryption failure on one side, "alert bad
 * record mac" received on the other), then onClose with 1006 (no closing handshake was
 * possible, RFC 6455 section 7.1.5), each once and in that order; all
 * resources freed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { SecureVersion } from 'node:tls';
import { connect, createServer, type ClientSession, type ServerSession } from '../../src/index.js';
import { testCert } from '../helpers/certs.js';
import { delay, waitUntil, withTimeout } from '../helpers/ws-pair.js';
import { EventRecorder, activeResources, assertLifecycle, assertResourcesBack } from './events.js';
import { startFaultProxy } from './fault-proxy.js';

/** A forged TLS application_data record: header (type 23, version 3.3, length) and random bytes. */
function forgedRecord(): Buffer {
  const body = randomBytes(64);
  return Buffer.concat([Buffer.from([0x17, 0x03, 0x03, 0x00, body.length]), body]);
}

describe('fault: a TLS alert in the middle of the stream', () => {
  const cert = testCert();
  for (const version of ['TLSv1.2', 'TLSv1.3'] as SecureVersion[]) {
    for (const victim of ['server', 'client'] as const) {
      it(`${version}: a forged record reaches the ${victim}, which fails with bad_record_mac and alerts its peer: 1006 once on both sides, in order; all freed`, { timeout: 30_000 }, async (t) => {
        const baseline = activeResources();
        const serverRec = new EventRecorder<ServerSession>({ echo: true });
        const clientRec = new EventRecorder<ClientSession>();
        const server = createServer({
          keepalive: null,
          tls: { key: cert.key, cert: cert.cert, minVersion: version, maxVersion: version },
          onError: () => {},
          handler: serverRec.handler(),
        });
        await server.listen(0, '127.0.0.1');
        const proxy = await startFaultProxy(server.port, { tlsRecords: true });
        let client: ClientSession | null = null;
        try {
          client = await connect(`wss://127.0.0.1:${proxy.port}/`, { keepalive: null, tls: { ca: cert.ca }, handler: clientRec.handler() });
          await proxy.connected;
          client.send('before the alert');
          await waitUntil(() => clientRec.only().events.includes('message 16'), 5000, 'the first echo');
          const recordsToClient = proxy.toClient.records.length;
          const recordsToServer = proxy.toServer.records.length;
          if (victim === 'server') proxy.injectToServer(forgedRecord());
          else proxy.injectToClient(forgedRecord());

          const info = await withTimeout(client.closed, 10_000, 'the client to close');
          await serverRec.waitClosed(1);
          await delay(200);
          assert.equal(info.code, 1006);
          assert.equal(info.wasClean, false);
          const s = serverRec.only();
          const c = clientRec.only();
          assertLifecycle(s, 1006, { middle: ['message 16'], errorCode: 'ERR_SOCKET' });
          assertLifecycle(c, 1006, { middle: ['message 16'], errorCode: 'ERR_SOCKET' });
          const victimError = (victim === 'server' ? s : c).closeInfo!.error!.message;
          const peerError = (victim === 'server' ? c : s).closeInfo!.error!.message;
          t.diagnostic(`${victim}: ${victimError}`);
          t.diagnostic(`its peer: ${peerError}`);
          // TLS 1.3 (and 1.2 CBC) name it; TLS 1.2 with AES-GCM reports the failed AEAD open from the cipher provider.
          assert.match(victimError, /bad record mac|decryption failed|cipher operation failed/i);
          // The alert that went back: visible as a record of type 21 under TLS 1.2, and named in the peer's error.
          const alertWay = victim === 'server' ? proxy.toClient.records.slice(recordsToClient) : proxy.toServer.records.slice(recordsToServer);
          if (version === 'TLSv1.2') assert.ok(alertWay.includes(0x15), `records after the forgery: ${alertWay.join(',')}`);
          // The peer received a real fatal alert, bad_record_mac (alert number 20).
          assert.match(peerError, /alert bad record mac/i);
          assert.equal(server.clients.size, 0);
        } finally {
          client?.terminate();
          await proxy.close();
          await server.close();
        }
        await assertResourcesBack(baseline);
      });
    }
  }
});
