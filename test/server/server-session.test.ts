/**
 * ServerSession.resume() over real sockets where nothing can be resumed: a
 * server without a broker, and one whose broker keeps no history (the
 * in-process LocalBroker), refuse with ResumeError ERR_NOT_DURABLE and leave
 * the session out of the topic; a session that is no longer open is refused
 * with InvalidStateError naming its state. Resuming for real is in
 * test/pubsub/broker-binding.test.ts and test/pubsub/cluster-resume.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, InvalidStateError, LocalBrokerHub, ResumeError, type ClientSession, type ServerOptions, type ServerSession } from '../../src/index.js';
import { startServer, withTimeout } from '../helpers/ws-pair.js';

/** A server, one client, and the server's session of it. */
async function oneSession(options: ServerOptions): Promise<{ session: ServerSession; client: ClientSession; close(): Promise<void> }> {
  let opened!: (s: ServerSession) => void;
  const session = new Promise<ServerSession>((r) => (opened = r));
  const t = await startServer({ ...options, handler: { onOpen: (s) => opened(s) } });
  const client = await connect(t.url(), { keepalive: null });
  return {
    session: await withTimeout(session, 5000, 'the session to open'),
    client,
    async close() {
      client.terminate();
      await t.server.close();
    },
  };
}

function notDurable(topic: string) {
  return (e: unknown) => e instanceof ResumeError && e.code === 'ERR_NOT_DURABLE' && e.topic === topic && e.since === '5-1';
}

describe('ServerSession.resume()', () => {
  it('without a broker: ERR_NOT_DURABLE, and the session is in no topic', async () => {
    const s = await oneSession({});
    try {
      await assert.rejects(s.session.resume('feed', '5-1'), notDurable('feed'));
      assert.deepEqual(s.session.topics, []);
    } finally {
      await s.close();
    }
  });

  it('with a broker that keeps no history (LocalBroker): ERR_NOT_DURABLE, and the session is in no topic', async () => {
    const s = await oneSession({ broker: new LocalBrokerHub().broker() });
    try {
      await assert.rejects(s.session.resume('feed', '5-1'), notDurable('feed'));
      assert.deepEqual(s.session.topics, []);
      assert.equal(s.session.subscribe('feed'), true, 'a plain subscription still works');
    } finally {
      await s.close();
    }
  });

  it('a session that is no longer open: InvalidStateError naming its state', async () => {
    const s = await oneSession({});
    try {
      s.session.close(1000);
      await assert.rejects(s.session.resume('feed'), (e: unknown) => e instanceof InvalidStateError && /closing|closed/.test(e.message));
    } finally {
      await s.close();
    }
  });
});
