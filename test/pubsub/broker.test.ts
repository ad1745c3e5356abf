/**
 * The Broker interface as a server uses it (createServer({ broker })), with a
 * broker written here against the interface alone, the way a Redis broker
 * will be: the server attaches it, drives subscribe/unsubscribe on its
 * topics' transitions (sessions closing included), hands it this node's
 * publications, fans out what it receives to real clients, reports a gap
 * through onError as a BrokerError naming the topic, and closes it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  BrokerError,
  WebSocketError,
  connect,
  type Broker,
  type BrokerHost,
  type BrokerNodeInfo,
  type Publication,
} from '../../src/index.js';
import { startServer, waitUntil, withTimeout } from '../helpers/ws-pair.js';

class TestBroker implements Broker {
  readonly nodeId = 'node-a';
  host: BrokerHost | null = null;
  readonly calls: string[] = [];
  readonly sent: Publication[] = [];
  attach(host: BrokerHost): void {
    this.host = host;
  }
  publish(p: Publication): void {
    this.sent.push(p);
  }
  async subscribe(topic: string): Promise<void> {
    this.calls.push(`+${topic}`);
  }
  async unsubscribe(topic: string): Promise<void> {
    this.calls.push(`-${topic}`);
  }
  async subscriberCount(topic: string): Promise<number> {
    return this.host!.subscriberCount(topic) + 10;
  }
  async nodes(): Promise<readonly BrokerNodeInfo[]> {
    return [];
  }
  async close(): Promise<void> {
    this.calls.push('close');
  }
}

describe('Broker under a server', () => {
  it('BrokerError is a WebSocketError with a stable code, the topics and the node', () => {
    const e = new BrokerError('ERR_BROKER_GAP', 'lost', ['a', 'b'], 'n1');
    assert.ok(e instanceof WebSocketError);
    assert.equal(e.name, 'BrokerError');
    assert.equal(e.code, 'ERR_BROKER_GAP');
    assert.deepEqual(e.topics, ['a', 'b']);
    assert.equal(e.node, 'n1');
    assert.equal(e.closeCode, undefined);
  });

  it('drives the broker on topic transitions, delivers, reports a gap naming the topic, and closes it', async () => {
    const broker = new TestBroker();
    const errors: unknown[] = [];
    const t = await startServer({
      broker,
      onError: (e) => errors.push(e),
      handler: { onOpen: (s) => void s.subscribe(s.request.query.get('t') ?? 'none') },
    });
    const one = await connect(t.url('/?t=quotes'), { keepalive: null });
    const two = await connect(t.url('/?t=quotes'), { keepalive: null });
    try {
      assert.equal(broker.host !== null, true, 'attached by createServer()');
      await waitUntil(() => t.server.subscriberCount('quotes') === 2, 5000, 'two subscribers');
      assert.deepEqual(broker.calls, ['+quotes'], 'one subscribe for two sessions');
      assert.equal(await t.server.clusterSubscriberCount('quotes'), 12);

      // This node's publication: delivered here once, and handed to the broker once.
      assert.equal(t.server.publish('quotes', 'local').accepted, 2);
      assert.deepEqual(
        broker.sent.map((p) => [p.origin, p.seq, p.prev, p.payload.toString()]),
        [['node-a', 1, 0, 'local']],
      );

      // Another node's publications: 4 and 5 on this topic were lost on the way.
      const remote = (seq: number, prev: number): Publication => ({ topic: 'quotes', payload: Buffer.from(`remote ${seq}`), binary: false, compress: true, origin: 'node-b', seq, prev });
      broker.host!.receive(remote(3, 0));
      broker.host!.receive(remote(6, 5));
      for (const c of [one, two]) {
        const inbox = c.messages();
        const got = [];
        for (let i = 0; i < 3; i++) got.push((await withTimeout(inbox.next(), 5000, `message ${i}`)).value!.text);
        assert.deepEqual(got, ['local', 'remote 3', 'remote 6']);
      }
      assert.equal(errors.length, 1);
      const gap = errors[0] as BrokerError;
      assert.ok(gap instanceof BrokerError);
      assert.equal(gap.code, 'ERR_BROKER_GAP');
      assert.deepEqual(gap.topics, ['quotes']);
      assert.equal(gap.node, 'node-b');

      // The sessions leaving, one by closing: one unsubscribe, on the last.
      one.close();
      await waitUntil(() => t.server.subscriberCount('quotes') === 1, 5000, 'one left');
      assert.deepEqual(broker.calls, ['+quotes']);
      two.close();
      await waitUntil(() => t.server.subscriberCount('quotes') === 0, 5000, 'none left');
      assert.deepEqual(broker.calls, ['+quotes', '-quotes']);
    } finally {
      one.terminate();
      two.terminate();
      await t.server.close();
    }
    assert.deepEqual(broker.calls.at(-1), 'close', 'closed with its server');
  });
});
