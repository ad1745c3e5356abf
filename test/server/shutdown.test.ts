/**
 * server.shutdown(): graceful shutdown for a restart. Every client gets close
 * 1012 "service restart" (or the code given) with the reason, after the last
 * byte of what was queued for it (S4: a large message still queued behind a
 * client that is not reading goes out whole first); new connections are
 * refused from the moment it starts; it resolves once the last connection
 * has gone, or at timeoutMs, terminating the clients that never answered the
 * close and saying how many. A call in the wrong state, or with a code a
 * server may not send, fails at once.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, InvalidArgumentError, InvalidStateError, TransportError, type ClientSession, type CloseInfo, type ServerSession } from '../../src/index.js';
import { RawClient, pseudoRandomBytes, sha256, startServer, waitUntil, withTimeout } from '../helpers/ws-pair.js';

describe('server.shutdown()', () => {
  it('closes every client with 1012 and the reason, refuses new connections at once, resolves when all are gone', async () => {
    const serverCloses: CloseInfo[] = [];
    const t = await startServer({ handler: { onClose: (_s, info) => serverCloses.push(info) } });
    const clients: ClientSession[] = [];
    try {
      for (let i = 0; i < 3; i++) clients.push(await connect(t.url(), { keepalive: null }));
      // A connection whose handshake has not finished is dropped too.
      const half = await RawClient.connect(t.port);
      await waitUntil(() => t.server.clients.size === 3, 5000, '3 sessions');
      const done = t.server.shutdown();
      await assert.rejects(connect(t.url(), { keepalive: null, handshakeTimeoutMs: 2000 }), TransportError, 'a new connection is refused');
      const result = await withTimeout(done, 10_000, 'shutdown()');
      assert.deepEqual(result, { sessions: 3, terminated: 0 });
      assert.equal(t.server.clients.size, 0, 'every session is gone when it resolves');
      for (const c of clients) {
        const info = await withTimeout(c.closed, 5000, 'the client to close');
        assert.deepEqual([info.code, info.reason, info.wasClean], [1012, 'service restart', true]);
      }
      assert.deepEqual(
        serverCloses.map((i) => i.wasClean),
        [true, true, true],
      );
      await withTimeout(half.closed, 5000, 'the half-open connection to be dropped');
      assert.throws(() => t.server.shutdown(), (e: unknown) => e instanceof InvalidStateError && /closing/.test(e.message));
    } finally {
      for (const c of clients) c.terminate();
      await t.server.close();
    }
  });

  it('a large message still queued is flushed whole before the close frame, with the code and reason given', async () => {
    let session!: ServerSession;
    const t = await startServer({ handler: { onOpen: (s) => (session = s) } });
    const client = await connect(t.url(), { keepalive: null, limits: { maxMessageBytes: 32 << 20 } });
    try {
      await waitUntil(() => session !== undefined, 5000, 'the session');
      // The client reads nothing for now: the message waits in the server's queue.
      client.pauseReading();
      const big = pseudoRandomBytes(24 << 20, 42);
      const digest = sha256(big);
      assert.notEqual(session.send(big), 'dropped');
      big.fill(0);
      await new Promise((r) => setTimeout(r, 50));
      assert.ok(session.bufferedAmount > 0, `still queued at shutdown (${session.bufferedAmount} bytes)`);
      const done = t.server.shutdown({ code: 1001, reason: 'moving to another host' });
      await new Promise((r) => setTimeout(r, 100));
      client.resumeReading();
      const inbox = client.messages();
      const m = await withTimeout(inbox.next(), 15_000, 'the large message');
      assert.equal(m.done, false);
      assert.equal(m.value!.data.length, 24 << 20);
      assert.equal(sha256(m.value!.data), digest, 'every byte, in order');
      assert.equal((await withTimeout(inbox.next(), 5000, 'the end')).done, true);
      const info = await client.closed;
      assert.deepEqual([info.code, info.reason, info.wasClean], [1001, 'moving to another host', true]);
      assert.deepEqual(await withTimeout(done, 10_000, 'shutdown()'), { sessions: 1, terminated: 0 });
    } finally {
      client.terminate();
      await t.server.close();
    }
  });

  it('timeoutMs terminates a client that never answers the close, says so, and leaves the others their clean close', async () => {
    const serverCloses = new Map<string, CloseInfo>();
    // A close timeout far beyond the shutdown's: only timeoutMs can end the silent client in time.
    const t = await startServer({ closeTimeoutMs: 60_000, handler: { onClose: (s, info) => serverCloses.set(s.request.path, info) } });
    const silent = await RawClient.open(t.port, { path: '/silent' });
    const polite = await connect(t.url('/polite'), { keepalive: null });
    try {
      await waitUntil(() => t.server.clients.size === 2, 5000, '2 sessions');
      const started = Date.now();
      const result = await withTimeout(t.server.shutdown({ timeoutMs: 300 }), 10_000, 'shutdown()');
      const took = Date.now() - started;
      assert.deepEqual(result, { sessions: 2, terminated: 1 });
      assert.ok(took >= 250 && took < 5000, `resolved after ${took} ms`);
      // The silent one was sent the close frame (it just never answered), then dropped.
      assert.deepEqual(await silent.waitClose(), { code: 1012, reason: 'service restart' });
      await withTimeout(silent.closed, 5000, 'the silent client to be dropped');
      assert.equal(serverCloses.get('/silent')?.code, 1006);
      assert.equal(serverCloses.get('/silent')?.error?.code, 'ERR_TERMINATED');
      assert.equal(serverCloses.get('/polite')?.wasClean, true);
      const info = await polite.closed;
      assert.deepEqual([info.code, info.reason], [1012, 'service restart']);
    } finally {
      silent.destroy();
      polite.terminate();
      await t.server.close();
    }
  });

  it('a code a server may not send, or a bad timeout, fails at once and the server carries on', async () => {
    const t = await startServer({ handler: {} });
    const client = await connect(t.url(), { keepalive: null });
    try {
      assert.throws(() => t.server.shutdown({ code: 1005 }), InvalidArgumentError);
      assert.throws(() => t.server.shutdown({ reason: 'x'.repeat(200) }), InvalidArgumentError);
      assert.throws(() => t.server.shutdown({ timeoutMs: -1 }), InvalidArgumentError);
      assert.equal(client.state, 'open');
      const again = await connect(t.url(), { keepalive: null });
      await waitUntil(() => t.server.clients.size === 2, 5000, 'a new connection accepted');
      again.terminate();
      await waitUntil(() => t.server.clients.size === 1, 5000, 'the terminated one gone');
      assert.deepEqual(await withTimeout(t.server.shutdown({ timeoutMs: 5000 }), 10_000, 'shutdown()'), { sessions: 1, terminated: 0 });
    } finally {
      client.terminate();
    }
  });
});
