/**
 * The Redis broker at the scale of a small deployment: three server
 * processes (test/redis/redis-scale-node.ts) and 300 clients, against a real
 * redis-server. Every publication of every node reaches every subscriber
 * exactly once, in each publisher's order; a node killed with SIGKILL in
 * mid-stream leaves the others serving; a subscriber that stops reading on
 * one node slows nobody (its own maxQueuedBytes applies). And a Redis that
 * cannot be reached at start is a clear error, not a wait without end.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BrokerError, connect, createServer, type ClientSession } from '../../src/index.js';
import { createRedisBroker } from '../../src/redis/index.js';
import { requirePeer } from '../helpers/peers.js';
import { RedisServer, redisServerAvailable } from '../helpers/redis-server.js';
import { waitUntil, withTimeout } from '../helpers/ws-pair.js';
import { eventually, numsub, rawClient } from './redis-test-nodes.js';

const skip = requirePeer('redis-server', redisServerAvailable(), 'apt-get install redis-server');
const NODE_SCRIPT = fileURLToPath(new URL('./redis-scale-node.js', import.meta.url));

interface NodeProcess {
  id: string;
  child: ChildProcessWithoutNullStreams;
  port: number;
  out(): string;
  publish(count: number, size: number): Promise<void>;
  kill(): Promise<void>;
}

async function startNode(id: string, redisUrl: string, prefix: string, maxQueuedBytes: number): Promise<NodeProcess> {
  const child = spawn(process.execPath, [NODE_SCRIPT, JSON.stringify({ url: redisUrl, nodeId: id, prefix, maxQueuedBytes })], { stdio: 'pipe' });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
  const m = await withTimeout(
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const found = /^port (\d+)$/m.exec(out);
        if (found) resolve(found);
      };
      child.stdout.on('data', check);
      child.once('exit', (code) => reject(new Error(`node ${id} exited (${code}): ${out}`)));
    }),
    15_000,
    `node ${id} to listen`,
  );
  let published = 0;
  return {
    id,
    child,
    port: Number(m[1]),
    out: () => out,
    async publish(count, size) {
      published++;
      const want = published;
      child.stdin.write(`publish ${count} ${size}\n`);
      await waitUntil(() => (out.match(/^published \d+$/gm)?.length ?? 0) >= want, 15_000, `node ${id} to publish`);
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGKILL');
      await withTimeout(exited, 5000, `node ${id} to exit`);
    },
  };
}

interface Subscriber {
  node: string;
  session: ClientSession;
  texts: string[];
}

describe('the Redis broker at scale: three processes, 300 clients', { skip }, () => {
  let redis: RedisServer;
  before(async () => {
    redis = await RedisServer.start();
  });
  after(async () => {
    await redis?.stop();
  });

  it('every publication reaches every subscriber once, in order; a node killed mid-stream leaves the others serving; a stalled subscriber slows nobody', { timeout: 120_000 }, async () => {
    const prefix = 'scale:';
    const nodes: NodeProcess[] = [];
    const subscribers: Subscriber[] = [];
    const raw = await rawClient(redis.url);
    try {
      for (const id of ['a', 'b', 'c']) nodes.push(await startNode(id, redis.url, prefix, 256 * 1024));
      // 100 clients on each node, each recording what it gets.
      for (const node of nodes) {
        for (let i = 0; i < 100; i++) {
          const texts: string[] = [];
          const session = await connect(`ws://127.0.0.1:${node.port}/`, { keepalive: null, handler: { onMessage: (_s, m) => void texts.push(m.text) } });
          subscribers.push({ node: node.id, session, texts });
        }
      }
      await eventually(async () => (await numsub(raw, `${prefix}news`)) === 3, 10_000, 'every node subscribed in Redis');

      // One subscriber of node a stops reading: node a keeps serving its 99 others at their pace.
      const stalled = subscribers[0];
      stalled.session.pauseReading();

      // Round 1: every node publishes 100 messages of 1 KiB at once.
      await Promise.all(nodes.map((n) => n.publish(100, 1024)));
      const expect = (ids: string[], from: number, to: number) => ids.flatMap((id) => Array.from({ length: to - from }, (_, i) => `${id} ${from + i}`));
      const key = (t: string) => t.slice(0, t.indexOf(' ', t.indexOf(' ') + 1));
      const live = subscribers.filter((s) => s !== stalled);
      await waitUntil(() => live.every((s) => s.texts.length >= 300), 30_000, 'round 1 at every live subscriber');
      for (const s of live) {
        const got = s.texts.map(key);
        assert.deepEqual([...got].sort(), expect(['a', 'b', 'c'], 0, 100).sort(), `subscriber of node ${s.node}: each message once`);
        for (const id of ['a', 'b', 'c']) assert.deepEqual(got.filter((g) => g.startsWith(`${id} `)), expect([id], 0, 100), `${id}'s order kept`);
      }

      // Round 2: node c is killed with SIGKILL while a and b publish; their subscribers get all of a's and b's.
      const publishing = Promise.all([nodes[0].publish(100, 1024), nodes[1].publish(100, 1024)]);
      await nodes[2].kill();
      await publishing;
      const onAB = live.filter((s) => s.node !== 'c');
      await waitUntil(() => onAB.every((s) => s.texts.length >= 500), 30_000, 'round 2 at the subscribers of a and b');
      for (const s of onAB) {
        const round2 = s.texts.slice(300).map(key);
        assert.deepEqual([...round2].sort(), expect(['a', 'b'], 100, 200).sort(), `subscriber of node ${s.node}: round 2 whole`);
      }
      const ofC = subscribers.filter((s) => s.node === 'c');
      await waitUntil(() => ofC.every((s) => s.session.state === 'closed'), 10_000, "node c's clients to see it gone");
      for (const s of ofC) assert.equal((await s.session.closed).code, 1006);
    } finally {
      for (const s of subscribers) s.session.terminate();
      for (const n of nodes) await n.kill();
      await raw.close();
    }
  });

  it('Redis unreachable at start: ready() rejects with ERR_BROKER_DISCONNECTED naming the URL, the server hears it once, and it connects once Redis is up', { timeout: 60_000 }, async () => {
    const down = await RedisServer.start();
    await down.kill();
    const broker = createRedisBroker({ url: down.url, nodeId: 'early', reconnectMaxDelayMs: 100 });
    const reported: unknown[] = [];
    const server = createServer({ keepalive: null, broker, handler: {}, onError: (e) => void reported.push(e) });
    try {
      await assert.rejects(
        withTimeout(broker.ready(), 10_000, 'ready() to settle'),
        (e: unknown) => e instanceof BrokerError && e.code === 'ERR_BROKER_DISCONNECTED' && e.message.includes(`cannot reach Redis at ${down.url}`),
      );
      await waitUntil(() => reported.length >= 1, 5000, 'the report');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(reported.filter((e) => e instanceof BrokerError && e.code === 'ERR_BROKER_DISCONNECTED').length, 1, 'reported once, not at every attempt');
      await down.restart();
      await withTimeout(
        (async () => {
          for (;;) {
            try {
              await broker.ready();
              return;
            } catch {
              await new Promise((r) => setTimeout(r, 50));
            }
          }
        })(),
        20_000,
        'ready once Redis is up',
      );
      assert.equal(broker.state, 'open');
    } finally {
      await server.close();
      await down.stop();
    }
  });
});
