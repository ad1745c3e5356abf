/**
 * The first incident in docs/architecture.md ("The incidents behind S1 and
 * S2"): large sends over TLS stalled for good in libwebsockets. The TLS layer
 * answered "want read" while the event loop heard "want write", switched off
 * POLLOUT, and the connection froze.
 *
 * Invariant S1: reads never wait for writes, and a "would block" in one
 * direction is never taken for the other one. Here both ends of a wss://
 * connection push 256 MiB at each other at the same time, in 1 MiB messages,
 * through a raw TCP relay that moves at most 16 KiB at a time and stops
 * reading until it has written, with small socket buffers everywhere: TLS
 * reads and writes on both ends are blocked over and over, each end must keep
 * reading while its own writes are stuck, or both stall. The transfer must
 * finish and what each side received must be, byte for byte (SHA-256), what
 * the other sent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHash, type Hash } from 'node:crypto';
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { connect, createServer, type ClientSession, type Session, type WebSocketServer } from '../../src/index.js';
import { testCert } from '../helpers/certs.js';
import { startFreezeProxy, type FreezeProxy } from '../helpers/freeze-proxy.js';

const MESSAGE_BYTES = 1024 * 1024;
const MESSAGES = 256; // 256 MiB each way
/** Socket-level high-water mark for every stream we can set it on (Node does not expose SO_SNDBUF/SO_RCVBUF). */
const SOCKET_HWM = 4096;
/** Session-level high-water mark: above this bufferedAmount, send() answers 'backpressure'. */
const SESSION_HWM = 64 * 1024;
/** The client paces on bufferedAmount, as a browser-style application would. */
const CLIENT_MAX_BUFFERED = 3 * MESSAGE_BYTES;
/** No byte of progress for this long counts as the incident's freeze (fails with the progress so far). */
const STALL_MS = 30_000;
const OVERALL_MS = 220_000;

const ZEROS = Buffer.alloc(MESSAGE_BYTES);

/**
 * Message `index` of `side`: 1 MiB of AES-128-CTR keystream, keyed by the
 * side and started at a counter block carrying the index. Pseudo-random,
 * different for every message and side, and reproducible, so both hashes can
 * be computed independently of what went over the wire.
 */
function payload(side: 'client' | 'server', index: number): Buffer {
  const key = createHash('sha256').update(`sockeye-s1-${side}`).digest().subarray(0, 16);
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(index, 0);
  return createCipheriv('aes-128-ctr', key, iv).update(ZEROS);
}

interface Flow {
  sent: number;
  received: number;
  sentHash: Hash;
  receivedHash: Hash;
  wrongSizes: number;
}

function newFlow(): Flow {
  return { sent: 0, received: 0, sentHash: createHash('sha256'), receivedHash: createHash('sha256'), wrongSizes: 0 };
}

test('S1: 256 MiB each way at once over wss through a 16 KiB relay arrives intact', { timeout: 240_000 }, async (t) => {
  const cert = testCert();
  const server = newFlow(); // what the server sends and receives
  const client = newFlow();
  const failures: string[] = [];
  let lastProgressAt = performance.now();
  let writableRequests = 0;
  let clientWaits = 0;
  let requestedAt = 0;
  let serverWaitMs = 0;
  let clientReceivedAtServerHalf = -1;
  let writableCallbacks = 0;
  let pingsSent = 0;
  let pongsReceived = 0;
  let pongOrderOk = true;

  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const checkDone = () => {
    if (server.received === MESSAGES && client.received === MESSAGES && server.sent === MESSAGES && client.sent === MESSAGES) finish();
  };

  // Server producer: sends until send() says 'backpressure', then waits for the writable callback it asked for.
  const serverPump = (session: Session) => {
    while (server.sent < MESSAGES) {
      const data = payload('server', server.sent);
      const status = session.send(data);
      if (status === 'dropped') {
        failures.push(`server send ${server.sent} dropped`);
        finish();
        return;
      }
      server.sentHash.update(data);
      server.sent++;
      lastProgressAt = performance.now();
      if (status === 'backpressure') {
        if (session.requestWritable()) {
          writableRequests++;
          requestedAt = performance.now();
        }
        return;
      }
    }
    checkDone();
  };

  let wss: WebSocketServer | null = null;
  let ws: ClientSession | null = null;
  let proxy: FreezeProxy | null = null;
  let pollTimer: NodeJS.Timeout | null = null;
  let pingTimer: NodeJS.Timeout | null = null;
  try {
    wss = createServer({
      // The server's TLSSocket keeps Node's 16 KiB default; highWaterMark here shrinks the raw TCP socket under it.
      tls: { key: cert.key, cert: cert.cert, highWaterMark: SOCKET_HWM },
      limits: { highWaterMark: SESSION_HWM },
      onError: (err) => failures.push(`server onError: ${String(err)}`),
      handler: {
        onOpen: (session) => serverPump(session),
        onWritable: (session) => {
          writableCallbacks++;
          serverWaitMs += performance.now() - requestedAt;
          serverPump(session);
        },
        onMessage: (_session, m) => {
          if (m.data.length !== MESSAGE_BYTES || !m.binary) server.wrongSizes++;
          server.receivedHash.update(m.data);
          server.received++;
          if (server.received === MESSAGES / 2) clientReceivedAtServerHalf = client.received;
          lastProgressAt = performance.now();
          checkDone();
        },
        onError: (_session, err) => failures.push(`server session error: ${err.code} ${err.message}`),
      },
    });
    const { port } = await wss.listen(0, '127.0.0.1');
    proxy = await startFreezeProxy({ targetPort: port, chunkSize: 16 * 1024, highWaterMark: SOCKET_HWM });

    // Client producer: keeps bufferedAmount under a bound, polling it like a browser application (no writable callback).
    const clientPump = (session: Session) => {
      pollTimer = null;
      if (session.state !== 'open') return;
      while (client.sent < MESSAGES && session.bufferedAmount < CLIENT_MAX_BUFFERED) {
        const data = payload('client', client.sent);
        const status = session.send(data);
        if (status === 'dropped') {
          failures.push(`client send ${client.sent} dropped`);
          finish();
          return;
        }
        client.sentHash.update(data);
        client.sent++;
        lastProgressAt = performance.now();
      }
      if (client.sent < MESSAGES) {
        clientWaits++;
        pollTimer = setTimeout(() => clientPump(session), 1);
      }
      else checkDone();
    };

    const started = performance.now();
    let nextPong = 1;
    ws = await connect(`wss://127.0.0.1:${proxy.port}/`, {
      tls: { ca: cert.ca, highWaterMark: SOCKET_HWM } as TlsConnectionOptions,
      limits: { highWaterMark: SESSION_HWM },
      onError: (err) => failures.push(`client onError: ${String(err)}`),
      handler: {
        onOpen: (session) => clientPump(session),
        onMessage: (_session, m) => {
          if (m.data.length !== MESSAGE_BYTES || !m.binary) client.wrongSizes++;
          client.receivedHash.update(m.data);
          client.received++;
          lastProgressAt = performance.now();
          checkDone();
        },
        // S1 also says control frames are answered while the outbound side is blocked.
        onPong: (_session, data) => {
          if (data.toString() !== `s1-${nextPong}`) pongOrderOk = false;
          nextPong++;
          pongsReceived++;
        },
        onError: (_session, err) => failures.push(`client session error: ${err.code} ${err.message}`),
      },
    });
    const session = ws;
    pingTimer = setInterval(() => {
      if (session.state === 'open' && session.ping(`s1-${pingsSent + 1}`) !== 'dropped') pingsSent++;
    }, 250);

    // Bounded wait: the whole transfer, a stall of STALL_MS, or the overall limit, whichever comes first.
    const watchdog = setInterval(() => {
      const now = performance.now();
      if (now - lastProgressAt > STALL_MS) failures.push(`stalled: no progress for ${STALL_MS} ms`);
      else if (now - started > OVERALL_MS) failures.push(`not finished within ${OVERALL_MS} ms`);
      else if (session.state === 'closed') failures.push('client session closed during the transfer');
      else return;
      finish();
    }, 500);
    ws.closed.then(() => finish());
    await done;
    clearInterval(watchdog);
    clearInterval(pingTimer);
    pingTimer = null;
    const elapsed = performance.now() - started;
    const progress = `server sent ${server.sent} received ${server.received}; client sent ${client.sent} received ${client.received}`;
    assert.deepEqual(failures, [], progress);
    t.diagnostic(`S1: 2 x ${MESSAGES} MiB over wss through the 16 KiB relay in ${(elapsed / 1000).toFixed(1)} s; ` +
      `${writableCallbacks} writable callbacks (server producer waited ${(serverWaitMs / 1000).toFixed(1)} s in all); ` +
      `${pongsReceived}/${pingsSent} pongs during the transfer; client had ${clientReceivedAtServerHalf} messages when the server had ${MESSAGES / 2}`);

    assert.equal(server.received, MESSAGES, progress);
    // The relay carried it all, and it was the bottleneck: the client's producer found its queue full again and again.
    const p = proxy;
    t.diagnostic(`relay: ${p.toServer.bytes} bytes to the server (${p.toServer.fullWrites} writes met a full socket), ` +
      `${p.toClient.bytes} to the client (${p.toClient.fullWrites}); client producer held back ${clientWaits} times`);
    assert.ok(p.toServer.bytes > MESSAGES * MESSAGE_BYTES && p.toClient.bytes > MESSAGES * MESSAGE_BYTES);
    assert.ok(clientWaits > 10, `the client producer was held back by backpressure (${clientWaits} times)`);
    assert.equal(client.received, MESSAGES, progress);
    assert.equal(server.wrongSizes, 0, 'every message the server received is 1 MiB binary');
    assert.equal(client.wrongSizes, 0, 'every message the client received is 1 MiB binary');

    // What each side received is exactly what the other sent, and what the generator says it sent.
    const expected = (side: 'client' | 'server') => {
      const h = createHash('sha256');
      for (let i = 0; i < MESSAGES; i++) h.update(payload(side, i));
      return h.digest('hex');
    };
    const clientSent = client.sentHash.digest('hex');
    const serverSent = server.sentHash.digest('hex');
    assert.equal(server.receivedHash.digest('hex'), clientSent, 'server received what the client sent');
    assert.equal(client.receivedHash.digest('hex'), serverSent, 'client received what the server sent');
    assert.equal(clientSent, expected('client'));
    assert.equal(serverSent, expected('server'));
    assert.notEqual(clientSent, serverSent);

    // The server's producer waited on writable callbacks: each one answered one of its requests.
    assert.ok(writableRequests > 0, 'the server producer hit backpressure and asked for writable callbacks');
    assert.equal(writableCallbacks, writableRequests);

    // Pings kept being answered while both directions were saturated (S1: control frames are read and answered).
    // Pongs still in flight when the transfer ends arrive before the close handshake finishes.
    const closed = ws.closed;
    ws.close(1000, 'done');
    const info = await closed;
    assert.equal(info.wasClean, true, `clean close, got ${info.code} ${info.error?.code ?? ''}`);
    assert.equal(info.code, 1000);
    assert.ok(pingsSent === 0 || pongsReceived > 0, `pongs arrived during the transfer (${pongsReceived}/${pingsSent})`);
    assert.equal(pongsReceived, pingsSent, 'every ping sent was answered before the close');
    assert.ok(pongOrderOk, 'pongs echo their pings, in order');
  } finally {
    if (pollTimer) clearTimeout(pollTimer);
    if (pingTimer) clearInterval(pingTimer);
    ws?.terminate();
    await proxy?.close();
    await wss?.close();
  }
});
