/**
 * The Redis broker on a real Redis Cluster (three redis-server processes in
 * cluster mode, started by this file on free ports of 127.0.0.1 and killed at
 * the end): the options a cluster refuses; plain topics whose channels live on
 * three different shards reach the subscribers of every node exactly once, in
 * each publisher's order, through sharded pub/sub only; presence works across
 * the shards; durable topics (their streams under one hash tag) are read with
 * one XREAD and replayed after a node's reader is cut off; and a killed
 * shard is reported, naming the topics it served, while the topics of the
 * other shards carry on.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BrokerError } from '../../src/index.js';
import { createCluster } from 'redis';
import { createRedisBroker } from '../../src/redis/index.js';
import { keySlot } from '../../src/redis/redis-slot.js';
import { requirePeer } from '../helpers/peers.js';
import { RedisCluster, redisClusterAvailable } from '../helpers/redis-cluster.js';
import { freePort } from '../helpers/free-port.js';
import { waitUntil, withTimeout } from '../helpers/ws-pair.js';
import { eventually, rawClient, startNode, type TestNode } from './redis-test-nodes.js';

const skip = requirePeer('redis-server and redis-cli', redisClusterAvailable(), 'apt-get install redis-server (redis-cli comes with redis-tools)');

describe('RedisBroker on a Redis Cluster', { skip }, () => {
  let cluster: RedisCluster;
  let ranges: Array<{ from: number; to: number; port: number }>;
  let prefixes = 0;
  const prefix = () => `c${++prefixes}:`;
  const ownerOf = (key: string) => ranges.find((r) => r.from <= keySlot(key) && keySlot(key) <= r.to)!.port;
  const urls = () => cluster.nodes.map((n) => n.url);

  before(async () => {
    cluster = await RedisCluster.start();
    ranges = await cluster.slotRanges();
    assert.equal(new Set(ranges.map((r) => r.port)).size, 3, 'three shards');
  });
  after(async () => {
    await cluster?.stop();
  });

  /** A report of a node's heartbeats coming late (the machine is loaded), not of the cluster: left out where a test counts reports. */
  const tookForDown = (e: BrokerError) => e.code === 'ERR_BROKER_NODE_DOWN' || /taken for down/.test(e.message);

  /** One topic per shard: topics whose channels (prefix + topic) hash to slots of three different nodes, by port. */
  function topicPerShard(p: string): Map<number, string> {
    const out = new Map<number, string>();
    for (let i = 0; out.size < 3 && i < 1000; i++) {
      const port = ownerOf(`${p}t${i}`);
      if (!out.has(port)) out.set(port, `t${i}`);
    }
    assert.equal(out.size, 3);
    return out;
  }

  async function nodes(n: number, options: Parameters<typeof startNode>[0]): Promise<TestNode[]> {
    const out: TestNode[] = [];
    // heartbeatMs 300: three nodes and three redis-servers share a small machine; a node taken for down meanwhile would add reports.
    for (let i = 0; i < n; i++) out.push(await startNode({ cluster: urls(), nodeId: `node-${i}`, heartbeatMs: 300, ...options }));
    return out;
  }

  async function closeAll(ns: TestNode[]): Promise<void> {
    await Promise.all(ns.map((n) => n.close().catch(() => undefined)));
  }

  /** Subscribers of a sharded channel, asked of the node that serves it; and of the plain channel of that name. */
  async function subscribers(channel: string): Promise<{ sharded: number; plain: number }> {
    const raw = await rawClient(`redis://127.0.0.1:${ownerOf(channel)}`);
    try {
      const s = (await raw.send(['PUBSUB', 'SHARDNUMSUB', channel])) as unknown[];
      const c = (await raw.send(['PUBSUB', 'NUMSUB', channel])) as unknown[];
      return { sharded: Number(s[1]), plain: Number(c[1]) };
    } finally {
      await raw.close();
    }
  }

  it('refuses sharded: false with cluster (a PUBLISH there goes to every node), url with cluster, and an empty cluster', () => {
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        return `${(err as { code?: string }).code}: ${(err as Error).message}`;
      }
      return 'no error';
    };
    assert.match(code(() => createRedisBroker({ cluster: ['redis://127.0.0.1:1'], sharded: false })), /^ERR_BROKER_OPTION: .*every node/);
    assert.match(code(() => createRedisBroker({ cluster: ['redis://127.0.0.1:1'], url: 'redis://127.0.0.1:1' })), /^ERR_BROKER_OPTION: url and cluster/);
    assert.match(code(() => createRedisBroker({ cluster: [] })), /^ERR_BROKER_OPTION: cluster/);
    const given = createCluster({ rootNodes: [{ url: 'redis://127.0.0.1:1' }] });
    assert.match(code(() => createRedisBroker({ redis: given, sharded: false })), /^ERR_BROKER_OPTION: .*every node/);
    assert.match(code(() => createRedisBroker({ redis: given, cluster: ['redis://127.0.0.1:1'] })), /^ERR_BROKER_OPTION: redis and cluster/);
  });

  it('an unreachable cluster: ready() rejects with ERR_BROKER_DISCONNECTED naming the nodes tried (password hidden), and the broker keeps trying', async () => {
    const port = await freePort();
    const broker = createRedisBroker({ cluster: [`redis://u:secret@127.0.0.1:${port}`], reconnectMaxDelayMs: 50 });
    try {
      const err = await withTimeout(broker.ready().then(() => null, (e: unknown) => e), 5000, 'ready() settles');
      assert.ok(err instanceof BrokerError, String(err));
      assert.equal(err.code, 'ERR_BROKER_DISCONNECTED');
      assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
      assert.doesNotMatch(err.message, /secret/);
      // A later ready() waits for a later attempt, which fails again.
      const again = await withTimeout(broker.ready().then(() => null, (e: unknown) => e), 5000, 'ready() settles again');
      assert.ok(again instanceof BrokerError);
      assert.equal(broker.state, 'connecting');
    } finally {
      await withTimeout(broker.close(), 5000, 'close');
    }
  });

  it('keySlot() is the slot Redis computes (CLUSTER KEYSLOT), hash tags included', async () => {
    for (const key of ['', 'a', 'foo', 'sockeye:news', 'c1:{presence}:nodes', 'x{streams}:ledger', '{}a', 'a{}{b}', '{a}{b}', 'né✓', 'user{1000}.following']) {
      assert.equal(keySlot(key), await cluster.keySlot(key), `slot of '${key}'`);
    }
  });

  it('topics on three shards reach the subscribers of every node exactly once, in each publisher\'s order, over sharded pub/sub only', async () => {
    const p = prefix();
    const topics = [...topicPerShard(p).values()];
    const ns = await nodes(3, { channelPrefix: p, keyPrefix: p });
    try {
      const recs = await Promise.all(ns.map((n) => n.client(topics)));
      await eventually(async () => {
        for (const t of topics) if ((await subscribers(p + t)).sharded !== 3) return false;
        return true;
      }, 8000, 'three nodes subscribed to each channel on its shard');
      for (const t of topics) assert.equal((await subscribers(p + t)).plain, 0, `no plain subscription to ${t}`);

      const sent = new Map<string, string[]>(topics.map((t) => [t, []]));
      for (let i = 0; i < 30; i++) {
        for (const t of topics) {
          const text = `n${i % 3} ${t} ${i}`;
          sent.get(t)!.push(text);
          ns[i % 3].t.server.publish(t, text);
        }
      }
      for (const r of recs) {
        await waitUntil(() => r.got.length >= 90, 8000, 'every message');
        for (const t of topics) {
          const texts = r.texts().filter((x) => x.split(' ')[1] === t);
          assert.deepEqual([...texts].sort(), [...sent.get(t)!].sort(), `exactly once on ${t}`);
          for (const origin of ['n0', 'n1', 'n2']) {
            assert.deepEqual(
              texts.filter((x) => x.startsWith(origin + ' ')),
              sent.get(t)!.filter((x) => x.startsWith(origin + ' ')),
              `${origin}'s order on ${t}`,
            );
          }
        }
      }
      await new Promise((r) => setTimeout(r, 200));
      for (const r of recs) assert.equal(r.got.length, 90, 'nothing more');
      for (const n of ns) assert.deepEqual([...n.errors.filter((e) => !tookForDown(e)).map((e) => e.message), ...n.other.map(String)], [], `${n.broker.nodeId} reported nothing`);
    } finally {
      await closeAll(ns);
    }
  });

  it('a broker made from a node-redis cluster client (redis option) works with one made from URLs, and leaves the client given alone', async () => {
    const p = prefix();
    const topics = [...topicPerShard(p).values()];
    const given = createCluster({ rootNodes: [{ url: cluster.nodes[1].url }], defaults: { socket: { connectTimeout: 2000 } } });
    const ns = [await startNode({ redis: given, nodeId: 'from-client', channelPrefix: p, keyPrefix: p, heartbeatMs: 300 }), ...(await nodes(1, { channelPrefix: p, keyPrefix: p }))];
    try {
      assert.equal(given.isOpen, false, 'the client given is not connected by the broker');
      const recs = await Promise.all(ns.map((n) => n.client(topics)));
      await eventually(async () => {
        for (const t of topics) if ((await subscribers(p + t)).sharded !== 2) return false;
        return true;
      }, 8000, 'both nodes subscribed to each channel on its shard');
      for (const t of topics) {
        ns[0].t.server.publish(t, `from-client ${t}`);
        ns[1].t.server.publish(t, `node-0 ${t}`);
      }
      for (const r of recs) {
        await waitUntil(() => r.got.length >= 6, 5000, 'both nodes\' messages');
        assert.deepEqual(r.texts().sort(), topics.flatMap((t) => [`from-client ${t}`, `node-0 ${t}`]).sort());
      }
      await eventually(async () => (await ns[1].broker.nodes()).map((n) => n.id).sort().join() === 'from-client,node-0', 5000, 'nodes() lists both');
    } finally {
      await closeAll(ns);
    }
    assert.equal(given.isOpen, false, 'nor closed: it was never opened');
  });

  it('presence on a cluster: subscriberCount sums the nodes, nodes() lists them', async () => {
    const p = prefix();
    const topics = [...topicPerShard(p).values()];
    const ns = await nodes(3, { channelPrefix: p, keyPrefix: p });
    try {
      await ns[0].client([topics[0]]);
      await ns[1].client([topics[0], topics[1]]);
      await ns[1].client([topics[0]]);
      await ns[2].client([topics[2]]);
      await eventually(async () => (await ns[2].broker.subscriberCount(topics[0])) === 3, 5000, `3 subscribers of ${topics[0]}`);
      // Each through eventually: on a loaded machine a heartbeat can come late, and a node unheard of for two is not counted.
      await eventually(async () => (await ns[0].broker.subscriberCount(topics[1])) === 1, 5000, `1 subscriber of ${topics[1]}`);
      await eventually(async () => (await ns[1].broker.subscriberCount(topics[2])) === 1, 5000, `1 subscriber of ${topics[2]}`);
      await eventually(async () => (await ns[0].broker.nodes()).map((n) => n.id).sort().join() === 'node-0,node-1,node-2', 5000, 'nodes() lists the three');
    } finally {
      await closeAll(ns);
    }
  });

  it('durable topics: their streams share one slot, one XREAD reads them all, and a node whose reader was cut off replays what it missed, in order, once', async () => {
    const p = prefix();
    const durable = ['ledger', 'journal'];
    const ns = await nodes(2, { channelPrefix: p, keyPrefix: p, durable });
    const [a, b] = ns;
    const streamsPort = ownerOf(`${p}{streams}:`);
    const raw = await rawClient(`redis://127.0.0.1:${streamsPort}`);
    try {
      const rec = await b.client(durable);
      await waitUntil(() => b.t.server.subscriberCount('ledger') === 1, 3000, 'subscribed');
      // Both topics in one XREAD: a CROSSSLOT refusal would show as an error and nothing delivered.
      a.t.server.publish('ledger', 'first ledger');
      a.t.server.publish('journal', 'first journal');
      await waitUntil(() => rec.got.length >= 2, 5000, 'the first two');
      assert.equal(keySlot(`${p}{streams}:ledger`), keySlot(`${p}{streams}:journal`));
      assert.equal(Number(await raw.send(['EXISTS', `${p}{streams}:ledger`])), 1, 'the stream is under the {streams} tag');

      // Cut b's reader off (its connection to the streams' node), and publish while it comes back.
      const list = String(await raw.send(['CLIENT', 'LIST']));
      const line = list.split('\n').find((l) => l.includes(`name=sockeye:read:${b.broker.nodeId} `));
      assert.ok(line, `b's reader is connected to the streams' node:\n${list}`);
      const id = /\bid=(\d+)/.exec(line)![1];
      await raw.send(['CLIENT', 'KILL', 'ID', id]);
      const sent: string[] = [];
      for (let i = 0; i < 50; i++) {
        const t = durable[i % 2];
        sent.push(`${t} ${i}`);
        a.t.server.publish(t, `${t} ${i}`);
      }
      await waitUntil(() => rec.got.length >= 52, 8000, 'the replay');
      await new Promise((r) => setTimeout(r, 200));
      // Order is per topic (per stream), not across topics.
      for (const t of durable) assert.deepEqual(rec.texts().slice(2).filter((x) => x.startsWith(t + ' ')), sent.filter((x) => x.startsWith(t + ' ')), `${t}: in order, each once`);
      assert.equal(rec.got.length, 52, 'nothing twice');
      const after = String(await raw.send(['CLIENT', 'LIST']));
      assert.ok(!after.includes(`id=${id} `) && after.includes(`name=sockeye:read:${b.broker.nodeId} `), 'b read again on a new connection');
      const errors = b.errors.filter((e) => e.topics.some((t) => durable.includes(t)));
      assert.deepEqual(errors.map((e) => `${e.code} ${e.message}`), [], 'nothing reported about the durable topics');
    } finally {
      await raw.close();
      await closeAll(ns);
    }
  });

  it('durable topics: publications made while the streams\' shard is down wait, and go when it is back, in order, once', async () => {
    const p = prefix();
    const ns = await nodes(2, { channelPrefix: p, keyPrefix: p, durable: ['ledger'] });
    const [a, b] = ns;
    const streams = cluster.nodes.find((n) => n.port === ownerOf(`${p}{streams}:`))!;
    try {
      const rec = await b.client(['ledger']);
      await waitUntil(() => b.t.server.subscriberCount('ledger') === 1, 3000, 'subscribed');
      await new Promise((r) => setTimeout(r, 200));
      await streams.kill();
      const sent = Array.from({ length: 20 }, (_, i) => `ledger ${i}`);
      for (const text of sent) a.t.server.publish('ledger', text);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(rec.got.length, 0, 'nothing can arrive while the streams are down');
      // Started again without its data: the stream is made anew by the publications that waited.
      await streams.restart();
      await waitUntil(() => rec.got.length >= 20, 10_000, 'the publications that waited');
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(rec.texts(), sent);
      // Nothing reported about the topic. (Heartbeats may fail meanwhile, reported without a topic, when the
      // streams' shard is also presence's; a node may be taken for down for it.)
      for (const n of ns) {
        const named = n.errors.filter((e) => !tookForDown(e) && e.topics.length > 0);
        assert.deepEqual(named.map((e) => `${e.code} ${e.message}`), [], `${n.broker.nodeId}: nothing lost, nothing reported`);
      }
    } finally {
      await closeAll(ns);
    }
  });

  // Last: it kills one of the cluster's shards (and starts it again, empty).
  it('a killed shard is reported by the nodes, naming the topics it served; the topics of the other shards and presence carry on; once it is back its topics are delivered again', async () => {
    const p = prefix();
    const byPort = topicPerShard(p);
    // A shard that serves neither presence (the {presence} slot) nor anything else this test needs.
    const victim = [...byPort.keys()].find((port) => port !== ownerOf(`${p}{presence}:nodes`))!;
    const lostTopic = byPort.get(victim)!;
    const liveTopics = [...byPort.values()].filter((t) => t !== lostTopic);
    const ns = await nodes(2, { channelPrefix: p, keyPrefix: p });
    const [a, b] = ns;
    try {
      const rec = await b.client([...byPort.values()]);
      await eventually(async () => {
        for (const t of byPort.values()) if ((await subscribers(p + t)).sharded !== 1) return false;
        return true;
      }, 8000, 'b subscribed to each channel');

      await cluster.nodes.find((n) => n.port === victim)!.kill();
      await waitUntil(() => b.errors.some((e) => e.code === 'ERR_BROKER_DISCONNECTED'), 5000, 'b reports the lost shard');
      const reports = b.errors.filter((e) => e.code === 'ERR_BROKER_DISCONNECTED' && !tookForDown(e));
      assert.equal(reports.length, 1, reports.map((e) => e.message).join('\n'));
      assert.deepEqual(reports[0].topics, [lostTopic]);
      assert.match(reports[0].message, new RegExp(`127\\.0\\.0\\.1:${victim}`));

      // a's publication on the lost shard's topic is reported by a (never silently dropped)...
      a.t.server.publish(lostTopic, 'into the void');
      await waitUntil(() => a.errors.some((e) => e.code === 'ERR_BROKER_DISCONNECTED' && e.topics.includes(lostTopic)), 5000, 'a reports its lost publication');
      // ...while the other shards' topics carry on.
      for (const t of liveTopics) for (let i = 0; i < 5; i++) a.t.server.publish(t, `${t} ${i}`);
      await waitUntil(() => rec.got.length >= 10, 5000, 'the other shards\' messages');
      assert.deepEqual(rec.texts().sort(), liveTopics.flatMap((t) => [0, 1, 2, 3, 4].map((i) => `${t} ${i}`)).sort());
      await eventually(async () => (await b.broker.nodes()).map((n) => n.id).sort().join() === 'node-0,node-1', 5000, 'nodes() lists both');
      await eventually(async () => (await a.broker.subscriberCount(liveTopics[0])) === 1, 5000, `1 subscriber of ${liveTopics[0]}`);

      // The shard back (without its data): b's subscription there is made again, and its topic delivered again.
      await cluster.nodes.find((n) => n.port === victim)!.restart();
      await eventually(async () => (await subscribers(p + lostTopic)).sharded === 1, 10_000, 'b subscribed again on the restarted shard');
      a.t.server.publish(lostTopic, 'back');
      await waitUntil(() => rec.texts().includes('back'), 5000, "the lost shard's topic delivered again");
      for (const n of ns) {
        const named = n.errors.filter((e) => !tookForDown(e));
        assert.ok(named.every((e) => e.topics.every((t) => t === lostTopic)), `${n.broker.nodeId}: only the lost topic is named: ${named.map((e) => e.message).join('\n')}`);
      }
    } finally {
      await closeAll(ns);
    }
  });
});
