/**
 * The in-process broker: three real servers of one process share topics
 * through a LocalBrokerHub, with real clients. A publish on one server
 * reaches the subscribers on all three exactly once each, in order (its own
 * directly, never echoed back); a server without subscribers of a topic is
 * not handed its publications; presence sums the servers; closing a server
 * takes it out of the hub.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, InvalidArgumentError, InvalidStateError, LocalBrokerHub, type ClientSession, type LocalBroker, type Publication, type ServerHandler } from '../../src/index.js';
import { startServer, waitUntil, withTimeout, type TestServer } from '../helpers/ws-pair.js';

/** Subscribes each session to the topics of its URL (?topics=a,b). */
const subscribeFromQuery: ServerHandler = {
  onOpen(session) {
    for (const t of (session.request.query.get('topics') ?? '').split(',')) if (t) session.subscribe(t);
  },
};

interface Node {
  t: TestServer;
  broker: LocalBroker;
  /** Publications the hub handed to this node. */
  handed: Publication[];
  errors: unknown[];
}

async function nodes(hub: LocalBrokerHub, n: number): Promise<Node[]> {
  const out: Node[] = [];
  for (let i = 0; i < n; i++) {
    const broker = hub.broker();
    const handed: Publication[] = [];
    const deliver = broker.deliver.bind(broker);
    broker.deliver = (p) => {
      handed.push(p);
      deliver(p);
    };
    const errors: unknown[] = [];
    const t = await startServer({ handler: subscribeFromQuery, broker, onError: (e) => errors.push(e) });
    out.push({ t, broker, handed, errors });
  }
  return out;
}

async function take(c: ClientSession, n: number): Promise<string[]> {
  const got: string[] = [];
  const inbox = c.messages();
  for (let i = 0; i < n; i++) got.push((await withTimeout(inbox.next(), 5000, `message ${i}`)).value!.text);
  return got;
}

describe('LocalBroker', () => {
  it('a publish on one server reaches the subscribers of all, exactly once each, in order; a node without subscribers is not handed it', async () => {
    const hub = new LocalBrokerHub();
    const ns = await nodes(hub, 3);
    const clients: ClientSession[] = [];
    try {
      for (const n of ns) clients.push(await connect(n.t.url('/?topics=news'), { keepalive: null }));
      clients.push(await connect(ns[0].t.url('/?topics=news,sport'), { keepalive: null }));
      // Node 2 has a session in 'sport' too; node 1 has none, so it is never handed 'sport'.
      clients.push(await connect(ns[2].t.url('/?topics=sport'), { keepalive: null }));
      await waitUntil(() => ns.every((n) => n.t.server.subscriberCount('news') >= 1) && ns[2].t.server.subscriberCount('sport') === 1, 5000, 'subscriptions');
      const results = [];
      for (let i = 0; i < 50; i++) {
        results.push(ns[i % 3].t.server.publish('news', `news ${i}`));
        if (i % 10 === 0) ns[0].t.server.publish('sport', `sport ${i}`);
      }
      // publish() counts this node's sessions: node 0 has two in 'news', the others one.
      assert.deepEqual(
        results.slice(0, 3).map((r) => r.accepted),
        [2, 1, 1],
      );
      const expected = Array.from({ length: 50 }, (_, i) => `news ${i}`);
      for (const c of clients.slice(0, 3)) assert.deepEqual(await take(c, 50), expected);
      const both = await take(clients[3], 55);
      assert.deepEqual(
        both.filter((m) => m.startsWith('news')),
        expected,
      );
      assert.deepEqual(
        both.filter((m) => m.startsWith('sport')),
        ['sport 0', 'sport 10', 'sport 20', 'sport 30', 'sport 40'],
      );
      assert.deepEqual(await take(clients[4], 5), ['sport 0', 'sport 10', 'sport 20', 'sport 30', 'sport 40']);
      // Never echoed: each node was handed only the other nodes' publications.
      for (const [i, n] of ns.entries()) {
        assert.ok(
          n.handed.every((p) => p.origin !== n.broker.nodeId),
          `node ${i} was handed its own publication`,
        );
      }
      assert.equal(ns[1].handed.filter((p) => p.topic === 'sport').length, 0, 'node 1 has no sport subscriber');
      assert.equal(ns[2].handed.filter((p) => p.topic === 'sport').length, 5);
      assert.equal(ns[0].handed.length, 33, "node 0 is handed the others' news: 33 of 50");
      for (const n of ns) assert.deepEqual(n.errors, []);
    } finally {
      for (const c of clients) c.terminate();
      for (const n of ns) await n.t.server.close();
    }
  });

  it('clusterSubscriberCount() sums every server, and follows sessions that leave; nodes() lists the servers; close() leaves the hub', async () => {
    const hub = new LocalBrokerHub();
    const ns = await nodes(hub, 3);
    const clients: ClientSession[] = [];
    try {
      clients.push(await connect(ns[0].t.url('/?topics=room'), { keepalive: null }));
      clients.push(await connect(ns[0].t.url('/?topics=room'), { keepalive: null }));
      clients.push(await connect(ns[1].t.url('/?topics=room'), { keepalive: null }));
      await waitUntil(() => ns[0].t.server.subscriberCount('room') === 2 && ns[1].t.server.subscriberCount('room') === 1, 5000, 'subscriptions');
      assert.equal(await ns[2].t.server.clusterSubscriberCount('room'), 3);
      assert.equal(await ns[2].t.server.clusterSubscriberCount('nowhere'), 0);
      clients[2].close();
      await waitUntil(() => ns[1].t.server.subscriberCount('room') === 0, 5000, 'the session on node 1 to leave');
      assert.equal(await ns[0].t.server.clusterSubscriberCount('room'), 2);
      assert.deepEqual(
        (await ns[0].broker.nodes()).map((n) => n.id),
        ns.map((n) => n.broker.nodeId),
      );
      await ns[2].t.server.close();
      assert.deepEqual(
        (await ns[0].broker.nodes()).map((n) => n.id),
        [ns[0].broker.nodeId, ns[1].broker.nodeId],
      );
      assert.throws(() => ns[2].broker.publish({ topic: 'room', payload: Buffer.from('x'), binary: false, compress: true, origin: 'x', seq: 1, prev: 0 }), InvalidStateError);
    } finally {
      for (const c of clients) c.terminate();
      for (const n of ns) await n.t.server.close();
    }
  });

  it('a broker serves one server: attaching it twice fails naming the state; node ids are unique in a hub', async () => {
    const hub = new LocalBrokerHub();
    const broker = hub.broker('one');
    const t = await startServer({ handler: {}, broker });
    try {
      assert.throws(() => broker.attach({} as never), (e: unknown) => e instanceof InvalidStateError && /attached to a server/.test(e.message));
      assert.throws(() => hub.broker('one'), InvalidArgumentError);
      assert.equal(hub.broker().nodeId, 'local-1');
    } finally {
      await t.server.close();
    }
  });
});
