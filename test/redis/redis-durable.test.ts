/**
 * Durable topics of the Redis broker (at least once, Redis Streams) against
 * a real redis-server with persistence (append-only file, fsync at every
 * write), started by this file and killed at the end. One node reaches Redis
 * through a relay that can cut it off (startCutProxy), the others directly:
 * - what is published while a node is cut off is replayed when it is back,
 *   in order, nothing lost, nothing twice; a non-durable topic is reported;
 * - Redis killed and restarted: what it had kept is replayed, and what was
 *   published while it was down waited in the publisher's outbox;
 * - a publication whose acknowledgement was lost is sent again, and its
 *   repeat is dropped by seq at the receiver without a report;
 * - entries trimmed (MAXLEN) before a node could read them are reported.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { requirePeer } from '../helpers/peers.js';
import { RedisServer, redisServerAvailable, startCutProxy, type CutProxy } from '../helpers/redis-server.js';
import { waitUntil } from '../helpers/ws-pair.js';
import { eventually, rawClient, startNode, type Recorder, type TestNode } from './redis-test-nodes.js';

const skip = requirePeer('redis-server', redisServerAvailable(), 'apt-get install redis-server');

describe('RedisBroker, durable topics', { skip }, () => {
  let redis: RedisServer;
  let prefixes = 0;
  const prefix = () => `d${++prefixes}:`;

  before(async () => {
    redis = await RedisServer.start({ persistent: true });
  });
  after(async () => {
    await redis?.stop();
  });

  const numbers = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `m${from + i}`);
  const ledger = (r: Recorder) => r.texts().filter((t) => t.startsWith('m'));
  /**
   * What a node reported about the durable topic, less the other node being taken for down: true
   * whenever it was cut off for over two heartbeats (a loaded machine makes that likely), and no loss
   * on a durable topic. Nothing else may be there: no gap, no repeat, nothing lost.
   */
  const ledgerReports = (n: TestNode) => n.errors.filter((e) => e.topics.includes('ledger') && e.code !== 'ERR_BROKER_NODE_DOWN');

  async function pair(options: { proxied: 'a' | 'b'; heartbeatMs?: number; streamMaxLength?: number }): Promise<{ a: TestNode; b: TestNode; proxy: CutProxy; stream: string }> {
    const p = prefix();
    const proxy = await startCutProxy(redis.port);
    const common = { channelPrefix: p, keyPrefix: p, durable: ['ledger'], heartbeatMs: options.heartbeatMs ?? 100, streamMaxLength: options.streamMaxLength };
    const a = await startNode({ ...common, url: options.proxied === 'a' ? proxy.url : redis.url, nodeId: 'a' });
    const b = await startNode({ ...common, url: options.proxied === 'b' ? proxy.url : redis.url, nodeId: 'b' });
    return { a, b, proxy, stream: `${p}stream:ledger` };
  }

  it('what is published while a node is cut off is replayed when it is back: in order, nothing lost, nothing twice; its non-durable topic is reported', async () => {
    const { a, b, proxy } = await pair({ proxied: 'b' });
    try {
      await a.client(['ledger']);
      const r = await b.client(['ledger', 'chat']);
      await eventually(async () => (await a.broker.subscriberCount('ledger')) === 2, 5000, 'b subscribed');
      for (let i = 1; i <= 20; i++) a.t.server.publish('ledger', `m${i}`);
      await waitUntil(() => ledger(r).length === 20, 5000, 'the first 20');

      proxy.cut();
      await waitUntil(() => b.broker.state === 'disconnected', 5000, 'b disconnected');
      await waitUntil(() => b.errors.some((e) => e.code === 'ERR_BROKER_DISCONNECTED'), 5000, 'b reports');
      for (let i = 21; i <= 60; i++) a.t.server.publish('ledger', `m${i}`);
      await new Promise((res) => setTimeout(res, 100));
      assert.equal(ledger(r).length, 20, 'nothing reaches b while it is cut off');
      proxy.restore();

      await waitUntil(() => ledger(r).length >= 60, 10_000, 'the replay');
      await new Promise((res) => setTimeout(res, 200));
      assert.deepEqual(ledger(r), numbers(1, 60));
      // Reported: the non-durable topic only (the durable one lost nothing).
      for (const e of b.errors.filter((x) => x.code !== 'ERR_BROKER_NODE_DOWN')) {
        assert.equal(e.code, 'ERR_BROKER_DISCONNECTED', e.message);
        assert.deepEqual(e.topics, ['chat']);
      }
      assert.deepEqual(ledgerReports(a), []);
      assert.deepEqual(ledgerReports(b), []);
    } finally {
      await Promise.all([a.close(), b.close()]);
      await proxy.close();
    }
  });

  it('Redis killed and restarted with its data: what it kept is replayed, and what was published while it was down is sent when it is back', async () => {
    const { a, b, proxy, stream } = await pair({ proxied: 'b' });
    try {
      const r = await b.client(['ledger']);
      await eventually(async () => (await a.broker.subscriberCount('ledger')) === 1, 5000, 'b subscribed');
      for (let i = 1; i <= 10; i++) a.t.server.publish('ledger', `m${i}`);
      await waitUntil(() => ledger(r).length === 10, 5000, 'the first 10');
      // b is away while 11-30 go into the stream; then Redis dies with them unread by b.
      proxy.cut();
      for (let i = 11; i <= 30; i++) a.t.server.publish('ledger', `m${i}`);
      const raw = await rawClient(redis.url);
      await eventually(async () => Number(await raw.send(['XLEN', stream])) === 30, 5000, '30 entries stored');
      await raw.close();
      await redis.kill();
      await waitUntil(() => a.broker.state === 'disconnected', 5000, 'a disconnected');
      // Published while Redis is down: they wait in a's outbox.
      for (let i = 31; i <= 40; i++) a.t.server.publish('ledger', `m${i}`);
      await redis.restart();
      proxy.restore();
      await waitUntil(() => ledger(r).length >= 40, 15_000, 'all 40');
      await new Promise((res) => setTimeout(res, 200));
      assert.deepEqual(ledger(r), numbers(1, 40));
      for (const n of [a, b]) assert.deepEqual(ledgerReports(n), [], `${n.broker.nodeId} lost nothing on the durable topic`);
    } finally {
      await Promise.all([a.close(), b.close()]);
      await proxy.close();
    }
  });

  it('a publication whose acknowledgement was lost is sent again, and the repeat is dropped by seq at the receiver without a report', async () => {
    // Heartbeats of 1 s: the few hundred ms a is muted must not get it taken for down.
    const { a, b, proxy, stream } = await pair({ proxied: 'a', heartbeatMs: 1000 });
    const raw = await rawClient(redis.url);
    try {
      const r = await b.client(['ledger']);
      await eventually(async () => (await a.broker.subscriberCount('ledger')) === 1, 5000, 'b subscribed');
      for (let i = 1; i <= 5; i++) a.t.server.publish('ledger', `m${i}`);
      await waitUntil(() => ledger(r).length === 5, 5000, 'the first 5');
      // Redis does the next XADDs, a never hears that it did: they stay in a's outbox.
      proxy.mute();
      for (let i = 6; i <= 8; i++) a.t.server.publish('ledger', `m${i}`);
      await waitUntil(() => ledger(r).length === 8, 5000, 'b reads 6-8 from the stream');
      proxy.cut();
      proxy.restore();
      await waitUntil(() => a.broker.state === 'open', 5000, 'a back');
      for (let i = 9; i <= 10; i++) a.t.server.publish('ledger', `m${i}`);
      await waitUntil(() => ledger(r).length >= 10, 5000, 'all 10');
      await new Promise((res) => setTimeout(res, 200));
      // 6-8 are twice in the stream (at least once), once at the client (dropped by seq, not reported).
      assert.equal(Number(await raw.send(['XLEN', stream])), 13);
      assert.deepEqual(ledger(r), numbers(1, 10));
      assert.deepEqual(ledgerReports(b), []);
    } finally {
      await raw.close();
      await Promise.all([a.close(), b.close()]);
      await proxy.close();
    }
  });

  it('entries trimmed (MAXLEN ~) before a node could read them are reported when it is back, naming the topic', async () => {
    const { a, b, proxy } = await pair({ proxied: 'b', streamMaxLength: 10 });
    try {
      const r = await b.client(['ledger']);
      await eventually(async () => (await a.broker.subscriberCount('ledger')) === 1, 5000, 'b subscribed');
      a.t.server.publish('ledger', 'm1');
      await waitUntil(() => ledger(r).length === 1, 5000, 'the first');
      proxy.cut();
      // Approximate trimming drops whole nodes of the stream (100 entries each by default): 500 make sure.
      for (let i = 2; i <= 500; i++) a.t.server.publish('ledger', `m${i}`);
      await new Promise((res) => setTimeout(res, 300));
      proxy.restore();
      await waitUntil(() => b.errors.some((e) => e.code === 'ERR_BROKER_BACKLOG'), 10_000, 'the trimming reported');
      const trimmed = b.errors.find((e) => e.code === 'ERR_BROKER_BACKLOG')!;
      assert.deepEqual(trimmed.topics, ['ledger']);
      await waitUntil(() => ledger(r).at(-1) === 'm500', 10_000, 'the rest');
      // What was left is delivered in order, after a gap.
      const got = ledger(r).map((t) => Number(t.slice(1)));
      assert.ok(got.length < 500);
      assert.deepEqual(got, [...got].sort((x, y) => x - y));
      assert.ok(b.errors.some((e) => e.code === 'ERR_BROKER_GAP' && e.node === 'a'));
    } finally {
      await Promise.all([a.close(), b.close()]);
      await proxy.close();
    }
  });
});
