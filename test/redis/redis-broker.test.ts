/**
 * The Redis broker against a real redis-server (started by this file on a
 * free port of 127.0.0.1, killed at the end), with several sockeye servers in
 * this process, each with its own broker, and real clients: a publish on one
 * node reaches the subscribers of all, exactly once, in each publisher's
 * order, binary-safe; Redis sends a topic only to the nodes subscribed to it;
 * presence counts and lists the nodes; a node killed is reported down after
 * two missed heartbeats, one that closes leaves quietly and lets its process
 * exit; malformed messages are reported, never delivered or fatal; sharded
 * pub/sub works; and when Redis dies and comes back, the topics are reported
 * (ERR_BROKER_DISCONNECTED) and then delivered again.
 * Durable topics: test/redis/redis-durable.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { encodePublicationBytes } from '../../src/redis/redis-codec.js';
import { createClient } from 'redis';
import { createRedisBroker } from '../../src/redis/index.js';
import { requirePeer } from '../helpers/peers.js';
import { RedisServer, redisServerAvailable } from '../helpers/redis-server.js';
import { waitUntil, withTimeout } from '../helpers/ws-pair.js';
import { eventually, numsub, rawClient, startNode, type TestNode } from './redis-test-nodes.js';

const skip = requirePeer('redis-server', redisServerAvailable(), 'apt-get install redis-server');
const NODE_SCRIPT = fileURLToPath(new URL('./redis-node.js', import.meta.url));

describe('RedisBroker', { skip }, () => {
  let redis: RedisServer;
  let prefixes = 0;
  /** Keys and channels of their own for each test, on the one server of this file. */
  const prefix = () => `t${++prefixes}:`;

  before(async () => {
    redis = await RedisServer.start();
  });
  after(async () => {
    await redis?.stop();
  });

  async function nodes(n: number, options: Parameters<typeof startNode>[0]): Promise<TestNode[]> {
    const out: TestNode[] = [];
    for (let i = 0; i < n; i++) out.push(await startNode({ url: redis.url, nodeId: `node-${i}`, ...options }));
    return out;
  }

  async function closeAll(ns: TestNode[]): Promise<void> {
    await Promise.all(ns.map((n) => n.close().catch(() => undefined)));
  }

  it('a publish on one node reaches the subscribers of every node exactly once, in its order, binary-safe; Redis carries a topic only to its subscribed nodes', async () => {
    const p = prefix();
    const ns = await nodes(3, { channelPrefix: p, keyPrefix: p });
    const raw = await rawClient(redis.url);
    try {
      const news = await Promise.all(ns.map((n) => n.client(['news'])));
      const both = await ns[0].client(['news', 'sport']);
      const sport2 = await ns[2].client(['sport']);
      // Each node subscribes a channel once, however many sessions: 3 for news, 2 for sport (node 1 has none).
      await eventually(async () => (await numsub(raw, `${p}news`)) === 3 && (await numsub(raw, `${p}sport`)) === 2, 5000, 'subscriptions in Redis');

      const sent: string[] = [];
      for (let i = 0; i < 60; i++) {
        const text = `n${i % 3} ${i} ✓`;
        sent.push(text);
        ns[i % 3].t.server.publish('news', text);
        if (i % 20 === 0) ns[1].t.server.publish('sport', `sport ${i}`);
      }
      const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      ns[1].t.server.publish('news', bytes);

      for (const r of [...news, both]) {
        await waitUntil(() => r.got.filter((g) => !g.binary).length + r.got.filter((g) => g.binary).length >= 61, 5000, 'every news message');
        const texts = r.got.filter((g) => !g.binary && g.text.startsWith('n')).map((g) => g.text);
        // Exactly once each...
        assert.deepEqual([...texts].sort(), [...sent].sort());
        // ...and in each publisher's order (publishers run side by side, so only their own order is kept).
        for (const origin of ['n0', 'n1', 'n2']) {
          assert.deepEqual(
            texts.filter((t) => t.startsWith(origin + ' ')),
            sent.filter((t) => t.startsWith(origin + ' ')),
          );
        }
        const binaries = r.got.filter((g) => g.binary);
        assert.equal(binaries.length, 1);
        assert.ok(binaries[0].data.equals(bytes), 'the bytes arrive as they were sent');
      }
      await waitUntil(() => sport2.got.length === 3 && both.got.filter((g) => g.text.startsWith('sport')).length === 3, 5000, 'sport');
      assert.deepEqual(sport2.texts(), ['sport 0', 'sport 20', 'sport 40']);

      // A node whose last session leaves unsubscribes: Redis stops sending it the topic.
      sport2.session.close();
      await eventually(async () => (await numsub(raw, `${p}sport`)) === 1, 5000, 'node 2 unsubscribed from sport');
      for (const n of ns) assert.deepEqual(n.errors, [], `no broker error on ${n.broker.nodeId}`);
    } finally {
      await raw.close();
      await closeAll(ns);
    }
  });

  it('presence: subscriber counts summed over the nodes, the live nodes listed; a node that closes leaves without being reported down', async () => {
    const p = prefix();
    const ns = await nodes(3, { channelPrefix: p, keyPrefix: p });
    try {
      await ns[0].client(['room']);
      await ns[0].client(['room', 'hall']);
      await ns[1].client(['room']);
      for (const n of ns) await eventually(async () => (await n.t.server.clusterSubscriberCount('room')) === 3, 5000, `count of room from ${n.broker.nodeId}`);
      assert.equal(await ns[2].broker.subscriberCount('hall'), 1);
      assert.equal(await ns[2].broker.subscriberCount('nothing'), 0);
      const listed = await ns[2].broker.nodes();
      assert.deepEqual(listed.map((x) => x.id).sort(), ['node-0', 'node-1', 'node-2']);
      for (const x of listed) {
        assert.equal(x.pid, process.pid);
        assert.ok(Math.abs(x.lastSeen - Date.now()) < 5000, 'lastSeen is a recent Date.now()');
      }

      await ns[1].close();
      await eventually(async () => (await ns[0].broker.nodes()).length === 2, 5000, 'node-1 gone from the list');
      assert.equal(await ns[2].broker.subscriberCount('room'), 2);
      // Four more heartbeats: a node that left is never taken for down.
      await new Promise((r) => setTimeout(r, 400));
      for (const n of [ns[0], ns[2]]) assert.deepEqual(n.errors, []);
    } finally {
      await closeAll(ns);
    }
  });

  it('a node killed (its process gone without a word) is reported down after two missed heartbeats, naming the topics', async () => {
    const p = prefix();
    const [a] = await nodes(1, { channelPrefix: p, keyPrefix: p });
    await a.client(['news']);
    const child = spawn(process.execPath, [NODE_SCRIPT, JSON.stringify({ mode: 'serve', url: redis.url, nodeId: 'doomed', heartbeatMs: 100, prefix: p, topic: 'news' })], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      let out = '';
      child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
      await waitUntil(() => out.includes('ready'), 10_000, 'the child node ready');
      await eventually(async () => (await a.broker.nodes()).some((x) => x.id === 'doomed'), 5000, 'the child node listed');
      assert.equal(await a.broker.subscriberCount('news'), 2);
      const killedAt = Date.now();
      child.kill('SIGKILL');
      await waitUntil(() => a.errors.some((e) => e.code === 'ERR_BROKER_NODE_DOWN'), 5000, 'ERR_BROKER_NODE_DOWN');
      const elapsed = Date.now() - killedAt;
      const down = a.errors.filter((e) => e.code === 'ERR_BROKER_NODE_DOWN');
      assert.equal(down.length, 1);
      assert.equal(down[0].node, 'doomed');
      assert.deepEqual(down[0].topics, ['news']);
      assert.match(down[0].message, /missed 2 heartbeats/);
      // Two missed heartbeats of 100 ms, judged at one of ours: not before 100 ms, well within 3 s.
      assert.ok(elapsed >= 100 && elapsed < 3000, `reported ${elapsed} ms after the kill`);
      assert.deepEqual(
        (await a.broker.nodes()).map((x) => x.id),
        ['node-0'],
      );
      assert.equal(await a.broker.subscriberCount('news'), 1);
    } finally {
      child.kill('SIGKILL');
      await a.close();
    }
  });

  it('a stalled node (SIGSTOP) is reported down by the others, and when it resumes it reports that it was taken for down', async () => {
    const p = prefix();
    const [a] = await nodes(1, { channelPrefix: p, keyPrefix: p });
    await a.client(['news']);
    const child = spawn(process.execPath, [NODE_SCRIPT, JSON.stringify({ mode: 'serve', url: redis.url, nodeId: 'sleeper', heartbeatMs: 100, prefix: p, topic: 'news' })], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let out = '';
      let err = '';
      child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
      child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
      await waitUntil(() => out.includes('ready'), 10_000, 'the child node ready');
      await eventually(async () => (await a.broker.nodes()).some((x) => x.id === 'sleeper'), 5000, 'the child node listed');
      child.kill('SIGSTOP');
      await waitUntil(() => a.errors.some((e) => e.code === 'ERR_BROKER_NODE_DOWN' && e.node === 'sleeper'), 5000, 'the stalled node reported down');
      child.kill('SIGCONT');
      await waitUntil(() => /taken for down by the others/.test(err), 5000, 'the node itself reports it');
      assert.match(err, /ERR_BROKER_DISCONNECTED/);
      // Back: it is listed again.
      await eventually(async () => (await a.broker.nodes()).some((x) => x.id === 'sleeper'), 5000, 'the child node listed again');
    } finally {
      child.kill('SIGKILL');
      await a.close();
    }
  });

  it('close() leaves in good order: what was published is delivered, nobody reports it down, and its process exits by itself', async () => {
    const p = prefix();
    // Heartbeats of 250 ms: a child process starved of CPU for a moment must not be taken for down here.
    const [a] = await nodes(1, { channelPrefix: p, keyPrefix: p, durable: ['news-durable'], heartbeatMs: 250 });
    const r = await a.client(['news', 'news-durable']);
    const child = spawn(process.execPath, [NODE_SCRIPT, JSON.stringify({ mode: 'close', url: redis.url, nodeId: 'leaver', heartbeatMs: 250, prefix: p, topic: 'news' })], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      let out = '';
      child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
      const code = await withTimeout(new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c))), 15_000, 'the child to exit by itself');
      assert.equal(code, 0);
      assert.match(out, /ready\s+closed/);
      await waitUntil(() => r.got.length === 2, 5000, 'both goodbyes');
      assert.deepEqual(r.texts().sort(), ['bye', 'bye']);
      await new Promise((res) => setTimeout(res, 1000));
      assert.deepEqual(a.errors, []);
      assert.deepEqual(
        (await a.broker.nodes()).map((x) => x.id),
        ['node-0'],
      );
    } finally {
      child.kill('SIGKILL');
      await a.close();
    }
  });

  it('malformed messages written to a channel or a stream by another client are reported naming the topic, never delivered, and the node carries on', async () => {
    const p = prefix();
    const [a, b] = await nodes(2, { channelPrefix: p, keyPrefix: p, durable: ['ledger'] });
    const raw = await rawClient(redis.url);
    try {
      const r = await a.client(['chat', 'ledger']);
      await eventually(async () => (await numsub(raw, `${p}chat`)) === 1, 5000, 'chat subscribed');
      await eventually(async () => (await a.broker.subscriberCount('ledger')) === 1, 5000, 'ledger subscribed');
      const good = encodePublicationBytes({ topic: 'chat', payload: Buffer.from('hi'), binary: false, compress: true, origin: 'x', seq: 1, prev: 0 });
      const badVersion = Buffer.from(good);
      badVersion[2] = 9;
      const badText = encodePublicationBytes({ topic: 'chat', payload: Buffer.from([0xff, 0xfe]), binary: false, compress: true, origin: 'x', seq: 2, prev: 1 });
      const badSeq = Buffer.from(good);
      badSeq.writeUIntBE(0, 4, 6);
      for (const m of [Buffer.from('hello, this is not a publication'), Buffer.alloc(0), badVersion, badText, badSeq, good.subarray(0, 17)]) await raw.send(['PUBLISH', `${p}chat`, m]);
      await raw.send(['XADD', `${p}stream:ledger`, '*', 'm', 'garbage']);
      await raw.send(['XADD', `${p}stream:ledger`, '*', 'other', 'field']);
      await waitUntil(() => a.errors.length >= 8, 5000, 'eight reports');
      assert.deepEqual(
        a.errors.map((e) => e.code),
        Array(8).fill('ERR_BROKER_MALFORMED'),
      );
      assert.deepEqual(a.errors.map((e) => e.topics[0]).sort(), [...Array(6).fill('chat'), 'ledger', 'ledger']);
      assert.match(a.errors.map((e) => e.message).join('\n'), /bad magic[\s\S]*unknown version 9[\s\S]*not UTF-8[\s\S]*bad seq 0/);
      // The node is fine: the next real publications arrive, and only they do.
      b.t.server.publish('chat', 'after');
      b.t.server.publish('ledger', 'after, durable');
      await waitUntil(() => r.got.length >= 2, 5000, 'the real publications');
      assert.deepEqual(r.texts().sort(), ['after', 'after, durable']);
    } finally {
      await raw.close();
      await closeAll([a, b]);
    }
  });

  it('sharded pub/sub (SPUBLISH, SSUBSCRIBE) carries publications the same way', async () => {
    const p = prefix();
    const ns = await nodes(2, { channelPrefix: p, keyPrefix: p, sharded: true });
    const raw = await rawClient(redis.url);
    try {
      const r = await ns[1].client(['shard']);
      await ns[0].client(['shard']);
      await eventually(async () => (await numsub(raw, `${p}shard`, true)) === 2, 5000, 'sharded subscriptions');
      assert.equal(await numsub(raw, `${p}shard`), 0, 'no plain subscription');
      for (let i = 0; i < 20; i++) ns[0].t.server.publish('shard', `s${i}`);
      await waitUntil(() => r.got.length === 20, 5000, 'sharded messages');
      assert.deepEqual(
        r.texts(),
        Array.from({ length: 20 }, (_, i) => `s${i}`),
      );
      for (const n of ns) assert.deepEqual(n.errors, []);
    } finally {
      await raw.close();
      await closeAll(ns);
    }
  });

  it('a broker made from a node-redis client (redis option) works with one made from a URL, with its connections copied from the client given (settings and all), which it leaves alone', async () => {
    const p = prefix();
    const given = createClient({ url: redis.url, name: 'not-the-broker' });
    const ns = [await startNode({ redis: given, nodeId: 'from-client', channelPrefix: p, keyPrefix: p, durable: ['ledger'] }), ...(await nodes(1, { channelPrefix: p, keyPrefix: p, durable: ['ledger'] }))];
    const raw = await rawClient(redis.url);
    try {
      assert.equal(given.isOpen, false, 'the client given is not connected by the broker');
      // Its own connection names (sockeye:<role>:<nodeId>) over the given client's.
      const list = String(await raw.send(['CLIENT', 'LIST']));
      for (const role of ['cmd', 'sub', 'read']) assert.ok(list.includes(`name=sockeye:${role}:from-client `), `${role} link copied from the client given:\n${list}`);
      const recs = await Promise.all(ns.map((n) => n.client(['news', 'ledger'])));
      await eventually(async () => (await numsub(raw, `${p}news`)) === 2, 5000, 'subscriptions');
      await waitUntil(() => ns.every((n) => n.t.server.subscriberCount('ledger') === 1), 3000, 'durable subscriptions');
      await new Promise((r) => setTimeout(r, 100));
      ns[0].t.server.publish('news', 'from-client');
      ns[1].t.server.publish('news', 'node-0');
      ns[0].t.server.publish('ledger', 'from-client ledger');
      for (const r of recs) {
        await waitUntil(() => r.got.length >= 3, 5000, 'the messages');
        assert.deepEqual(r.texts().sort(), ['from-client', 'from-client ledger', 'node-0']);
      }
      for (const n of ns) assert.deepEqual(n.errors, []);
    } finally {
      await raw.close();
      await closeAll(ns);
    }
    assert.equal(given.isOpen, false, 'nor closed: it was never opened');
    assert.throws(() => createRedisBroker({ redis: given, url: redis.url }), /redis and url are exclusive/);
  });

  it('Redis killed and restarted: each node reports ERR_BROKER_DISCONNECTED naming its topics, publications meanwhile are reported lost, and delivery resumes after the reconnect', async () => {
    const p = prefix();
    const [a, b] = await nodes(2, { channelPrefix: p, keyPrefix: p });
    try {
      await a.client(['live']);
      const r = await b.client(['live', 'other']);
      await eventually(async () => (await a.broker.subscriberCount('live')) === 2, 5000, 'both subscribed');
      a.t.server.publish('live', 'before');
      await waitUntil(() => r.got.length === 1, 5000, 'before');

      await redis.kill();
      await waitUntil(() => b.errors.some((e) => e.code === 'ERR_BROKER_DISCONNECTED'), 5000, 'B reports the loss');
      const lossB = b.errors.find((e) => e.code === 'ERR_BROKER_DISCONNECTED')!;
      assert.deepEqual([...lossB.topics].sort(), ['live', 'other']);
      assert.equal(b.broker.state, 'disconnected');
      a.t.server.publish('live', 'lost');
      await waitUntil(() => a.errors.some((e) => e.code === 'ERR_BROKER_DISCONNECTED' && /did not reach Redis/.test(e.message)), 5000, 'A reports its lost publication');

      await redis.restart();
      await waitUntil(() => a.broker.state === 'open' && b.broker.state === 'open', 10_000, 'both reconnected');
      const raw = await rawClient(redis.url);
      try {
        // Subscribed again (the host's topics): 2 nodes on live, 1 on other.
        await eventually(async () => (await numsub(raw, `${p}live`)) === 2 && (await numsub(raw, `${p}other`)) === 1, 5000, 'subscribed again');
      } finally {
        await raw.close();
      }
      a.t.server.publish('live', 'after');
      await waitUntil(() => r.got.length === 2, 5000, 'after');
      assert.deepEqual(r.texts(), ['before', 'after']);
      // Nothing else went wrong: B may also have taken A for down (A's heartbeats stopped while Redis was
      // away), or seen 'after' follow a publication it never got (a gap), both true.
      assert.deepEqual(
        b.errors.filter((e) => !['ERR_BROKER_DISCONNECTED', 'ERR_BROKER_NODE_DOWN', 'ERR_BROKER_GAP'].includes(e.code)),
        [],
      );
      assert.deepEqual(b.other, []);
    } finally {
      await closeAll([a, b]);
    }
  });

  it('options are checked at once; calls in the wrong state fail naming it', async () => {
    assert.throws(() => createRedisBroker({ url: redis.url, nodeId: 'has space' }), { code: 'ERR_BROKER_NODE_ID' });
    assert.throws(() => createRedisBroker({ url: redis.url, nodeId: 'x'.repeat(256) }), { code: 'ERR_BROKER_NODE_ID' });
    assert.throws(() => createRedisBroker({ url: redis.url, heartbeatMs: 5 }), { code: 'ERR_BROKER_OPTION' });
    const broker = createRedisBroker({ url: redis.url, nodeId: 'lonely' });
    assert.throws(() => broker.publish({ topic: 't', payload: Buffer.from('x'), binary: false, compress: true, origin: 'lonely', seq: 1, prev: 0 }), { code: 'ERR_INVALID_STATE' });
    await withTimeout(broker.ready(), 5000, 'ready');
    assert.equal(broker.state, 'open');
    await broker.close();
    await broker.close();
    assert.equal(broker.state, 'closed');
    assert.throws(() => broker.subscribe('t'), { code: 'ERR_INVALID_STATE' });
    assert.throws(() => broker.attach({} as never), { code: 'ERR_INVALID_STATE' });
  });
});
