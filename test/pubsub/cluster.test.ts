/**
 * The node:cluster broker with real workers: this test file's process is the
 * cluster primary (it runs the relay, clusterBrokerPrimary()), and forks
 * four workers running test/pubsub/cluster-worker.ts, each a sockeye server
 * with a ClusterBroker. The workers all listen on port 0 and so share one
 * port (the primary accepts and hands connections out in turn); each greets
 * its clients with its node id, and clients are opened until every worker
 * has one.
 *
 * - a publish on one worker reaches the subscribers on every worker, exactly
 *   once each, in its order, also with two workers publishing at once;
 * - the relay forwards a topic only to the workers subscribed to it, never
 *   back to its origin (its counters);
 * - subscriber counts across the cluster, and the list of live nodes;
 * - a worker that stops (SIGSTOP: alive, silent) is declared down after two
 *   missed heartbeats, the others report it naming their topics, and when
 *   it resumes it reports what it may have lost and joins again with its
 *   topics; a worker killed is reported down at once (its exit).
 *
 * Every wait is bounded; every worker is killed at the end, even after a
 * failure (and each exits by itself if this process goes).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import { connect, clusterBrokerPrimary, type BrokerError, type BrokerNodeInfo, type ClientSession, type ClusterRelay } from '../../src/index.js';
import { waitUntil, withTimeout } from '../helpers/ws-pair.js';

const HEARTBEAT_MS = 200;
const WORKERS = 4;

interface Reply {
  id: number;
  count?: number;
  nodes?: string[];
  errors?: Array<{ code: string; topics: string[]; node?: string; message: string }>;
  state?: string;
  error?: string;
}

/** The workers and the clients: the test's own state, in one object. */
class Cluster {
  relay!: ClusterRelay;
  readonly workers = new Map<string, Worker>();
  port = 0;
  readonly clients = new Map<string, ClientSession>();
  readonly inboxes = new Map<string, AsyncIterator<{ text: string }>>();
  readonly downs: Array<{ node: BrokerNodeInfo; reason: string; at: number }> = [];
  readonly relayErrors: BrokerError[] = [];
  private nextId = 1;

  /** Asks a worker (over IPC) and waits, bounded, for its answer. */
  ask(node: string, command: Record<string, unknown>): Promise<Reply> {
    const w = this.workers.get(node)!;
    const id = this.nextId++;
    return withTimeout(
      new Promise<Reply>((resolve) => {
        const on = (m: Reply) => {
          if (m.id !== id) return;
          w.off('message', on);
          resolve(m);
        };
        w.on('message', on);
        w.send({ ...command, id });
      }),
      5000,
      `${node} to answer ${JSON.stringify(command)}`,
    );
  }

  async next(node: string, what: string): Promise<string> {
    const r = await withTimeout(this.inboxes.get(node)!.next(), 5000, `${what} at the client of ${node}`);
    assert.equal(r.done, false, `the client of ${node} closed while waiting for ${what}`);
    return r.value.text;
  }

  async command(node: string, text: string): Promise<void> {
    this.clients.get(node)!.send(text);
    assert.equal(await this.next(node, `the answer to ${text}`), `ok ${text}`);
  }

  ids(): string[] {
    return [...this.workers.keys()];
  }

  killAll(): void {
    for (const w of this.workers.values()) if (!w.isDead()) w.process.kill('SIGKILL');
  }
}

describe('ClusterBroker with node:cluster workers', () => {
  const c = new Cluster();

  before(async () => {
    c.relay = clusterBrokerPrimary({
      heartbeatMs: HEARTBEAT_MS,
      onNodeDown: (node, reason) => c.downs.push({ node, reason, at: Date.now() }),
      onError: (e) => c.relayErrors.push(e),
    });
    cluster.setupPrimary({ exec: fileURLToPath(new URL('./cluster-worker.js', import.meta.url)), silent: false });
    const ready = Array.from({ length: WORKERS }, () => {
      const w = cluster.fork();
      return withTimeout(
        new Promise<{ node: string; port: number }>((resolve, reject) => {
          w.on('message', (m: { ready?: boolean; node: string; port: number }) => {
            if (m.ready) {
              c.workers.set(m.node, w);
              resolve(m);
            }
          });
          w.once('exit', (code) => reject(new Error(`worker exited with ${code} before it was ready`)));
        }),
        15_000,
        'a worker to listen',
      );
    });
    const listening = await Promise.all(ready);
    c.port = listening[0].port;
    assert.ok(
      listening.every((l) => l.port === c.port),
      `workers listening on port 0 share one port: ${listening.map((l) => l.port).join(', ')}`,
    );
    // The primary hands connections out in turn: open clients until each worker has one.
    for (let i = 0; i < 30 && c.clients.size < WORKERS; i++) {
      const client = await connect(`ws://127.0.0.1:${c.port}/`, { keepalive: null });
      const inbox = client.messages();
      const hello = (await withTimeout(inbox.next(), 5000, 'the greeting')).value!.text;
      const node = hello.replace(/^hello /, '');
      if (c.clients.has(node)) {
        client.terminate();
        continue;
      }
      c.clients.set(node, client);
      c.inboxes.set(node, inbox);
    }
    assert.equal(c.clients.size, WORKERS, 'a client on every worker');
  });

  after(async () => {
    for (const client of c.clients.values()) client.terminate();
    c.killAll();
    c.relay?.close();
    await withTimeout(
      Promise.all([...c.workers.values()].map((w) => (w.isDead() ? undefined : new Promise((r) => w.once('exit', r))))),
      5000,
      'the workers to exit',
    ).catch(() => {});
  });

  it('a publish on any of four workers reaches the subscribers on every worker, exactly once each, in order', async () => {
    const [a] = c.ids();
    assert.equal(c.ids().length, 4);
    for (const node of c.ids()) await c.command(node, 'sub:news');
    await waitUntil(() => c.relay.subscribers('news').length === WORKERS, 5000, 'every node subscribed to news at the relay');
    // Every worker publishes at once: each one's order is kept at every subscriber, nothing is doubled.
    const prefixes = c.ids().map((_, i) => `P${i}:`);
    await Promise.all(c.ids().map((node, i) => c.ask(node, { test: 'publish', topic: 'news', prefix: prefixes[i], count: 200 })));
    for (const node of c.ids()) {
      const got: string[] = [];
      for (let i = 0; i < 200 * WORKERS; i++) got.push(await c.next(node, `message ${i}`));
      const expect = (p: string) => Array.from({ length: 200 }, (_, i) => `${p}${i}`);
      for (const p of prefixes) {
        assert.deepEqual(
          got.filter((m) => m.startsWith(p)),
          expect(p),
          `${p}'s messages at ${node}`,
        );
      }
    }
    // Nothing more was on its way: the next message anyone gets is this one.
    await c.ask(a, { test: 'publish', topic: 'news', prefix: 'end', count: 1 });
    for (const node of c.ids()) assert.equal(await c.next(node, 'the end marker'), 'end0');
    for (const node of c.ids()) assert.deepEqual((await c.ask(node, { test: 'errors' })).errors, []);
    assert.deepEqual(c.relayErrors, []);
  });

  it('a topic is forwarded only to the workers subscribed to it, never back to its origin', async () => {
    const [a, b, other] = c.ids();
    await c.command(a, 'sub:sport');
    await c.command(b, 'sub:sport');
    await waitUntil(() => c.relay.subscribers('sport').length === 2, 5000, 'two nodes subscribed to sport');
    const before = new Map(c.relay.stats().nodes.map((n) => [n.id, n.forwarded]));
    const receivedBefore = c.relay.stats().received;
    await c.ask(a, { test: 'publish', topic: 'sport', prefix: 'goal ', count: 50 });
    for (let i = 0; i < 50; i++) assert.equal(await c.next(a, 'goal'), `goal ${i}`);
    for (let i = 0; i < 50; i++) assert.equal(await c.next(b, 'goal'), `goal ${i}`);
    const stats = c.relay.stats();
    const delta = (id: string) => stats.nodes.find((n) => n.id === id)!.forwarded - before.get(id)!;
    assert.equal(stats.received - receivedBefore, 50);
    assert.equal(delta(b), 50, 'the other subscribed node got each');
    assert.equal(delta(a), 0, 'not echoed to its origin');
    assert.equal(delta(other), 0, 'not forwarded to a node without subscribers');
    // Unsubscribing takes the node out of the relay's table (its 1→0 transition).
    await c.command(b, 'unsub:sport');
    await waitUntil(() => c.relay.subscribers('sport').length === 1, 5000, 'b to leave sport at the relay');
    await c.ask(a, { test: 'publish', topic: 'sport', prefix: 'late ', count: 5 });
    for (let i = 0; i < 5; i++) assert.equal(await c.next(a, 'late'), `late ${i}`);
    assert.equal(c.relay.stats().nodes.find((n) => n.id === b)!.forwarded - before.get(b)!, 50);
  });

  it('counts subscribers across the cluster, and lists the live nodes', async () => {
    const [a, b, other] = c.ids();
    // A second session on a, found through the shared port like the first ones.
    const extra: ClientSession[] = [];
    try {
      let second: ClientSession | null = null;
      for (let i = 0; i < 20 && !second; i++) {
        const client = await connect(`ws://127.0.0.1:${c.port}/`, { keepalive: null });
        extra.push(client);
        const hello = (await withTimeout(client.messages().next(), 5000, 'the greeting')).value!.text;
        if (hello === `hello ${a}`) second = client;
      }
      assert.ok(second, `a second client on ${a}`);
      second.send('sub:presence');
      assert.equal((await withTimeout(second.messages().next(), 5000, 'the answer')).value!.text, 'ok sub:presence');
      await c.command(a, 'sub:presence');
      await c.command(b, 'sub:presence');
      await waitUntil(() => c.relay.subscribers('presence').length === 2, 5000, 'two nodes subscribed to presence');
      assert.equal((await c.ask(a, { test: 'local-count', topic: 'presence' })).count, 2);
      assert.equal((await c.ask(other, { test: 'count', topic: 'presence' })).count, 3);
      assert.equal(await c.relay.subscriberCount('presence'), 3);
      assert.equal((await c.ask(other, { test: 'count', topic: 'nobody' })).count, 0);
      assert.deepEqual((await c.ask(other, { test: 'nodes' })).nodes, [...c.ids()].sort());
      assert.deepEqual(
        c.relay
          .nodes()
          .map((n) => n.id)
          .sort(),
        [...c.ids()].sort(),
      );
      for (const n of c.relay.nodes()) assert.equal(n.pid, c.workers.get(n.id)!.process.pid);
      second.close();
      await withTimeout(second.closed, 5000, 'the second client to close');
      // Its session has gone on a: the count follows (a's broker stays subscribed, a has one left).
      let count = 0;
      for (let i = 0; i < 100 && (count = (await c.ask(other, { test: 'count', topic: 'presence' })).count!) !== 2; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(count, 2);
    } finally {
      for (const x of extra) x.terminate();
    }
  });

  it('a worker that stops is declared down after two missed heartbeats, reported by the others, and joins again when it resumes', async () => {
    const [a, b, stalled] = c.ids();
    await c.command(stalled, 'sub:weather');
    await c.command(a, 'sub:weather');
    await waitUntil(() => c.relay.subscribers('weather').length === 2, 5000, 'weather subscribed');
    const w = c.workers.get(stalled)!;
    const downsBefore = c.downs.length;
    const stoppedAt = Date.now();
    w.process.kill('SIGSTOP');
    try {
      await waitUntil(() => c.downs.length > downsBefore, 10 * HEARTBEAT_MS + 5000, `${stalled} to be declared down`);
      const down = c.downs[downsBefore];
      const took = down.at - stoppedAt;
      assert.equal(down.node.id, stalled);
      assert.equal(down.reason, 'missed 2 heartbeats');
      // Silence starts at most one interval before the stop; the check runs every interval.
      assert.ok(took >= HEARTBEAT_MS && took <= 4 * HEARTBEAT_MS + 1000, `declared down ${took} ms after it stopped`);
      assert.ok(!c.relay.nodes().some((n) => n.id === stalled));
      assert.deepEqual(c.relay.subscribers('weather'), [a]);
      // The others are told, and report what they may have lost, naming their topics.
      for (const node of [a, b]) {
        let errors: Reply['errors'] = [];
        for (let i = 0; i < 100 && !(errors = (await c.ask(node, { test: 'errors' })).errors)!.some((e) => e.code === 'ERR_BROKER_NODE_DOWN'); i++) await new Promise((r) => setTimeout(r, 20));
        const e = errors!.find((x) => x.code === 'ERR_BROKER_NODE_DOWN');
        assert.ok(e, `${node} reported ${stalled} down`);
        assert.equal(e.node, stalled);
        assert.ok(e.topics.includes('news'), `${node} names its topics: ${e.topics.join(', ')}`);
      }
    } finally {
      w.process.kill('SIGCONT');
    }
    // Resumed: it hears it was declared down, reports what it may have lost, and joins again with its topics.
    await waitUntil(() => c.relay.nodes().some((n) => n.id === stalled), 5000, `${stalled} to join again`);
    await waitUntil(() => c.relay.subscribers('weather').includes(stalled) && c.relay.subscribers('news').includes(stalled), 5000, 'its topics back at the relay');
    const errors = (await c.ask(stalled, { test: 'errors' })).errors!;
    const e = errors.find((x) => x.code === 'ERR_BROKER_DISCONNECTED');
    assert.ok(e, `${stalled} reported its eviction: ${JSON.stringify(errors)}`);
    assert.deepEqual([...e.topics].sort(), ['news', 'weather']);
    assert.equal((await c.ask(stalled, { test: 'state' })).state, 'open');
    await c.ask(a, { test: 'publish', topic: 'weather', prefix: 'rain ', count: 3 });
    for (let i = 0; i < 3; i++) assert.equal(await c.next(stalled, 'rain'), `rain ${i}`);
    for (let i = 0; i < 3; i++) assert.equal(await c.next(a, 'rain'), `rain ${i}`);
  });

  it('a worker killed is reported down at once; the others report it, naming their topics', async () => {
    const [, b, victim] = c.ids();
    const survivors = c.ids().filter((id) => id !== victim);
    const downsBefore = c.downs.length;
    c.workers.get(victim)!.process.kill('SIGKILL');
    await waitUntil(() => c.downs.length > downsBefore, 4 * HEARTBEAT_MS + 5000, `${victim} to be reported down`);
    assert.equal(c.downs[downsBefore].node.id, victim);
    assert.match(c.downs[downsBefore].reason, /exited \(SIGKILL\)|disconnected|missed 2 heartbeats/);
    assert.deepEqual(c.relay.nodes().map((n) => n.id).sort(), survivors.sort());
    for (const node of survivors) {
      let errors: Reply['errors'] = [];
      for (let i = 0; i < 100 && !(errors = (await c.ask(node, { test: 'errors' })).errors)!.some((e) => e.code === 'ERR_BROKER_NODE_DOWN' && e.node === victim); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(errors!.some((e) => e.code === 'ERR_BROKER_NODE_DOWN' && e.node === victim && e.topics.includes('news')), `${node} reported ${victim} down`);
    }
    // The survivors carry on.
    await c.ask(b, { test: 'publish', topic: 'news', prefix: 'after ', count: 2 });
    for (const node of survivors) for (let i = 0; i < 2; i++) assert.equal(await c.next(node, 'after'), `after ${i}`);
  });

  it("a worker forked with serialization 'json' is refused, and its broker says why", async () => {
    cluster.setupPrimary({ serialization: 'json' });
    const w = cluster.fork();
    cluster.setupPrimary({ serialization: 'advanced' });
    const node = await withTimeout(
      new Promise<string>((resolve) => w.on('message', (m: { ready?: boolean; node: string }) => m.ready && resolve(m.node))),
      15_000,
      'the json worker to listen',
    );
    c.workers.set(node, w);
    await waitUntil(() => c.relayErrors.some((e) => e.node === node), 5000, 'the relay to refuse it');
    assert.match(c.relayErrors.find((e) => e.node === node)!.message, /serialization 'advanced'/);
    assert.ok(!c.relay.nodes().some((n) => n.id === node));
    let reply: Reply = { id: 0 };
    for (let i = 0; i < 100 && (reply = await c.ask(node, { test: 'state' })).state !== 'disconnected'; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(reply.state, 'disconnected');
    const errors = (await c.ask(node, { test: 'errors' })).errors!;
    assert.equal(errors[0]?.code, 'ERR_BROKER_DISCONNECTED');
    assert.match(errors[0].message, /refused by the primary/);
  });
});
