/**
 * `session.data`, the per-session application state. It is made on first use
 * (an idle connection whose handler never touches it does not pay for the
 * object), so these tests pin what a handler sees: an empty object by default,
 * the same object on every read, one per session, replaced by assignment.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type ServerSession } from '../../src/index.js';
import { openPair, startServer, withTimeout } from '../helpers/ws-pair.js';

describe('session.data', () => {
  it('is an empty object until used, and the same object on every read', async () => {
    const pair = await openPair({});
    try {
      const s = pair.serverSession as ServerSession<{ n?: number }>;
      const first = s.data;
      assert.deepEqual(first, {});
      assert.equal(Object.getPrototypeOf(first), Object.prototype);
      first.n = 1;
      assert.equal(s.data, first, 'a second read returns the object the first one made');
      assert.equal(s.data.n, 1);
      assert.deepEqual(pair.client.data, {}, 'the client side has its own');
    } finally {
      await pair.cleanup();
    }
  });

  it('can be replaced by assignment, and each session has its own', async () => {
    const seen: Array<ServerSession<{ id: number }>> = [];
    let next = 0;
    const t = await startServer({
      handler: {
        onOpen(session) {
          const s = session as ServerSession<{ id: number }>;
          if (next % 2 === 0) s.data = { id: next };
          else s.data.id = next;
          next++;
          seen.push(s);
        },
      },
    });
    const clients = [];
    try {
      for (let i = 0; i < 4; i++) clients.push(await connect(t.url('/'), { keepalive: null }));
      await withTimeout(
        (async () => {
          while (seen.length < 4) await new Promise((r) => setTimeout(r, 5));
        })(),
        5000,
        'four server sessions',
      );
      assert.deepEqual(
        seen.map((s) => s.data.id),
        [0, 1, 2, 3],
      );
      assert.equal(new Set(seen.map((s) => s.data)).size, 4, 'no two sessions share one object');
    } finally {
      for (const c of clients) c.close();
      await t.server.close();
    }
  });
});
