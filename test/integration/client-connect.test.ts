/**
 * How connect() fails before there is a session (docs/api.md, "Client":
 * it "rejects with a HandshakeError ..., a TransportError or a TimeoutError"):
 *
 * - a server that accepts the TCP connection and never answers the upgrade
 *   request: TimeoutError ERR_HANDSHAKE_TIMEOUT once handshakeTimeoutMs has
 *   passed, and the half-open connection is closed, not left behind;
 * - nobody listening: TransportError ERR_CONNECT, with Node's error as cause.
 *
 * The bad answers to the upgrade request (wrong accept key, protocol, status)
 * are in handshake.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { connect, TimeoutError, TransportError, WebSocketError } from '../../src/index.js';
import { waitUntil, withTimeout } from '../helpers/ws-pair.js';

/** Listens on 127.0.0.1, on a port the system picks; resolves with the port. */
async function listenLocal(server: NetServer): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

/** What connect(url) rejects with (null if it opened: that session is terminated at once), within 3 s. */
function connectError(url: string, handshakeTimeoutMs: number): Promise<unknown> {
  return withTimeout(
    connect(url, { keepalive: null, handshakeTimeoutMs }).then(
      (c) => {
        c.terminate();
        return null;
      },
      (e: unknown) => e,
    ),
    3000,
    'connect() to settle',
  );
}

/** A TCP server on 127.0.0.1 port 0 that accepts connections, reads them, and never writes a byte. */
async function silentServer() {
  const sockets = new Set<Socket>();
  const requests: string[] = [];
  let closedByPeer = 0;
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('data', (d: Buffer) => requests.push(d.toString('latin1')));
    socket.on('close', () => {
      sockets.delete(socket);
      closedByPeer++;
    });
  });
  const port = await listenLocal(server);
  return {
    port,
    requests,
    get closedByPeer() {
      return closedByPeer;
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('connect() failures', () => {
  it('rejects with a TimeoutError (ERR_HANDSHAKE_TIMEOUT) when the server never answers within handshakeTimeoutMs, and closes the connection', async () => {
    const silent = await silentServer();
    try {
      const err = await connectError(`ws://127.0.0.1:${silent.port}/`, 300);
      assert.ok(err instanceof TimeoutError, `a TimeoutError, not ${String(err)}`);
      assert.ok(err instanceof WebSocketError);
      assert.equal(err.code, 'ERR_HANDSHAKE_TIMEOUT');
      // The request did reach the server: the timeout is the handshake's, not the TCP connect's.
      assert.match(silent.requests.join(''), /^GET \/ HTTP\/1\.1\r\n/);
      // The client gave up on the connection instead of leaving it open.
      await waitUntil(() => silent.closedByPeer === 1, 2000, 'the client to close its socket');
    } finally {
      await silent.close();
    }
  });

  it('rejects with a TransportError (ERR_CONNECT) whose cause is Node\'s error when the connection is refused', async () => {
    // A port that was just free: listen on port 0, note it, close it.
    const probe = createNetServer();
    const port = await listenLocal(probe);
    await new Promise<void>((resolve) => probe.close(() => resolve()));

    const err = await connectError(`ws://127.0.0.1:${port}/`, 2000);
    assert.ok(err instanceof TransportError, `a TransportError, not ${String(err)}`);
    assert.ok(err instanceof WebSocketError);
    assert.equal(err.code, 'ERR_CONNECT');
    assert.equal((err.cause as NodeJS.ErrnoException).code, 'ECONNREFUSED');
  });
});
