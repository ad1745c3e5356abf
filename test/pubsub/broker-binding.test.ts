/**
 * BrokerBinding, the node's side of every broker, against a broker that only
 * records what it is asked and subscribers that only record what they get:
 * the broker hears of a topic on its 0→1 and 1→0 transitions only, this
 * node's publications are stamped (seq across topics, prev per topic) and
 * delivered locally exactly once, and those of other nodes are checked
 * (a gap is reported naming the topic and origin, then delivered; an older
 * one is dropped and reported; an echo of our own is not delivered again)
 * and fanned out in order with one frame.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BrokerBinding, type DurableDelivery } from '../../src/pubsub/broker-binding.js';
import { TopicHistory, type HistoryRange } from '../../src/pubsub/history.js';
import { ResumeError } from '../../src/pubsub/offset.js';
import { InvalidStateError } from '../../src/core/errors.js';
import { BrokerError, type Broker, type BrokerHost, type BrokerNodeInfo, type Publication } from '../../src/pubsub/broker.js';
import type { FanOutTarget } from '../../src/pubsub/fan-out.js';
import type { Subscriber } from '../../src/pubsub/topics.js';
import type { SendStatus } from '../../src/transport/types.js';

class FakeSubscriber implements Subscriber, FanOutTarget {
  topicSet: Set<string> | null = null;
  readonly got: string[] = [];
  readonly frames: Buffer[][] = [];
  sendShared(frame: Buffer[], _frameBytes: number, payload: Buffer): SendStatus {
    this.frames.push(frame);
    this.got.push(payload.toString('utf8'));
    return 'sent';
  }
}

class RecordingBroker implements Broker {
  readonly nodeId: string;
  readonly calls: string[] = [];
  readonly published: Publication[] = [];
  host: BrokerHost | null = null;
  failSubscribe = false;
  constructor(nodeId = 'me') {
    this.nodeId = nodeId;
  }
  attach(host: BrokerHost): void {
    this.host = host;
  }
  publish(p: Publication): void {
    this.published.push(p);
  }
  subscribe(topic: string): Promise<void> {
    this.calls.push(`subscribe ${topic}`);
    return this.failSubscribe ? Promise.reject(new Error('no ack')) : Promise.resolve();
  }
  unsubscribe(topic: string): Promise<void> {
    this.calls.push(`unsubscribe ${topic}`);
    return Promise.resolve();
  }
  subscriberCount(): Promise<number> {
    return Promise.resolve(0);
  }
  nodes(): Promise<readonly BrokerNodeInfo[]> {
    return Promise.resolve([]);
  }
  close(): Promise<void> {
    this.calls.push('close');
    return Promise.resolve();
  }
}

function setup(maxRemembered?: number) {
  const broker = new RecordingBroker();
  const errors: BrokerError[] = [];
  const binding = new BrokerBinding<FakeSubscriber>(broker, (e) => errors.push(e as BrokerError), maxRemembered);
  return { broker, errors, binding, host: broker.host! };
}

function pub(origin: string, topic: string, seq: number, prev: number, text = `${origin}:${seq}`): Publication {
  return { topic, payload: Buffer.from(text), binary: false, compress: true, origin, seq, prev };
}

describe('BrokerBinding', () => {
  it('attaches itself to the broker and owns the topics', () => {
    const { broker, binding } = setup();
    assert.equal(broker.host, binding);
    const a = new FakeSubscriber();
    binding.topics.subscribe(a, 't');
    assert.equal(binding.subscriberCount('t'), 1);
    assert.deepEqual([...binding.subscribedTopics()], ['t']);
  });

  it('the broker hears of a topic on 0→1 and 1→0 only, not once per session, closing sessions included', () => {
    const { broker, binding } = setup();
    const [a, b, c] = [new FakeSubscriber(), new FakeSubscriber(), new FakeSubscriber()];
    binding.topics.subscribe(a, 'room');
    binding.topics.subscribe(b, 'room');
    binding.topics.subscribe(c, 'room');
    binding.topics.subscribe(a, 'room'); // already in: no change
    binding.topics.subscribe(b, 'other');
    assert.deepEqual(broker.calls, ['subscribe room', 'subscribe other']);
    binding.topics.unsubscribe(a, 'room');
    binding.topics.unsubscribe(a, 'room');
    binding.topics.removeAll(c); // a session closing
    assert.deepEqual(broker.calls, ['subscribe room', 'subscribe other']);
    binding.topics.removeAll(b); // the last one of both topics
    assert.deepEqual(broker.calls, ['subscribe room', 'subscribe other', 'unsubscribe room', 'unsubscribe other']);
    binding.topics.subscribe(a, 'room');
    assert.deepEqual(broker.calls.slice(4), ['subscribe room']);
  });

  it('a subscribe that fails is reported naming the topic', async () => {
    const { broker, binding, errors } = setup();
    broker.failSubscribe = true;
    binding.topics.subscribe(new FakeSubscriber(), 'prices');
    await new Promise((r) => setImmediate(r));
    assert.equal(errors.length, 1);
    assert.equal(errors[0].code, 'ERR_BROKER_SUBSCRIBE');
    assert.deepEqual(errors[0].topics, ['prices']);
    assert.match(errors[0].message, /prices.*no ack/);
  });

  it('publish() delivers locally once, with one frame, and stamps seq across topics and prev per topic', () => {
    const { broker, binding } = setup();
    const [a, b] = [new FakeSubscriber(), new FakeSubscriber()];
    binding.topics.subscribe(a, 'x');
    binding.topics.subscribe(b, 'x');
    const r = binding.publish('x', 'one');
    assert.deepEqual(r, { accepted: 2, dropped: 0, backpressure: 0 });
    binding.publish('y', 'two');
    binding.publish('x', 'three');
    binding.publish('y', Buffer.from('four'));
    assert.deepEqual(a.got, ['one', 'three']);
    assert.deepEqual(b.got, ['one', 'three']);
    assert.equal(a.frames[0], b.frames[0], 'the same frame object for both');
    const stamps = broker.published.map((p) => [p.topic, p.seq, p.prev, p.origin, p.binary]);
    assert.deepEqual(stamps, [
      ['x', 1, 0, 'me', false],
      ['y', 2, 0, 'me', false],
      ['x', 3, 1, 'me', false],
      ['y', 4, 2, 'me', true],
    ]);
    // The payload handed to the broker is the library's copy (S2), the one the local sessions got.
    const mine = Buffer.from('mutable');
    binding.publish('x', mine);
    mine.fill(0);
    assert.equal(broker.published[4].payload.toString(), 'mutable');
  });

  it('a topic no node can subscribe to is delivered nowhere and not sent', () => {
    const { broker, binding } = setup();
    binding.publish('', 'nothing');
    binding.publish('x'.repeat(5000), 'nothing');
    assert.equal(broker.published.length, 0);
  });

  it('a forgotten topic restarts its chain with prev 0 (MAX_REMEMBERED_TOPICS)', () => {
    const { broker, binding } = setup(2);
    binding.publish('a', '1');
    binding.publish('b', '2');
    binding.publish('c', '3'); // forgets 'a', the oldest
    binding.publish('a', '4');
    binding.publish('c', '5');
    assert.deepEqual(
      broker.published.map((p) => [p.topic, p.seq, p.prev]),
      [
        ['a', 1, 0],
        ['b', 2, 0],
        ['c', 3, 0],
        ['a', 4, 0],
        ['c', 5, 3],
      ],
    );
  });

  it('publications of other nodes reach the local subscribers in order, each once', () => {
    const { host, binding, errors } = setup();
    const [a, b] = [new FakeSubscriber(), new FakeSubscriber()];
    binding.topics.subscribe(a, 't');
    binding.topics.subscribe(b, 't');
    // Origin n1 publishes on t and on topics we do not see (the seq numbers skip them): no gap.
    host.receive(pub('n1', 't', 3, 0));
    host.receive(pub('n1', 't', 7, 3));
    host.receive(pub('n2', 't', 1, 0));
    host.receive(pub('n1', 't', 8, 7));
    host.receive(pub('n2', 't', 5, 1));
    assert.deepEqual(a.got, ['n1:3', 'n1:7', 'n2:1', 'n1:8', 'n2:5']);
    assert.deepEqual(b.got, a.got);
    assert.deepEqual(errors, []);
  });

  it('a gap is reported naming the topic and the origin, and what came is still delivered', () => {
    const { host, binding, errors } = setup();
    const a = new FakeSubscriber();
    binding.topics.subscribe(a, 'orders');
    host.receive(pub('n1', 'orders', 10, 4));
    // 11 and 12 on 'orders' never came: 13 says its previous on this topic is 12.
    host.receive(pub('n1', 'orders', 13, 12));
    assert.deepEqual(a.got, ['n1:10', 'n1:13']);
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof BrokerError);
    assert.equal(errors[0].code, 'ERR_BROKER_GAP');
    assert.deepEqual(errors[0].topics, ['orders']);
    assert.equal(errors[0].node, 'n1');
    assert.match(errors[0].message, /node n1 on topic 'orders' were lost: 10 was followed by 13/);
  });

  it('an older or repeated publication is dropped (at most once, in order) and reported', () => {
    const { host, binding, errors } = setup();
    const a = new FakeSubscriber();
    binding.topics.subscribe(a, 't');
    host.receive(pub('n1', 't', 5, 0));
    host.receive(pub('n1', 't', 5, 0));
    host.receive(pub('n1', 't', 4, 0));
    assert.deepEqual(a.got, ['n1:5']);
    assert.deepEqual(
      errors.map((e) => [e.code, e.topics, e.node]),
      [
        ['ERR_BROKER_OUT_OF_ORDER', ['t'], 'n1'],
        ['ERR_BROKER_OUT_OF_ORDER', ['t'], 'n1'],
      ],
    );
  });

  it('a redelivered repeat (at least once) is dropped without a report; a redelivery that is new is delivered', () => {
    const { host, binding, errors } = setup();
    const a = new FakeSubscriber();
    binding.topics.subscribe(a, 't');
    host.receive(pub('n1', 't', 1, 0));
    host.receive(pub('n1', 't', 2, 1));
    // The origin lost its link with 2 and 3 unacknowledged and sends both again: 2 had got through, 3 had not.
    host.receive({ ...pub('n1', 't', 2, 1), redelivery: true });
    host.receive({ ...pub('n1', 't', 3, 2), redelivery: true });
    assert.deepEqual(a.got, ['n1:1', 'n1:2', 'n1:3']);
    assert.equal(errors.length, 0);
    // Without the flag, the same repeat is still reported.
    host.receive(pub('n1', 't', 3, 2));
    assert.deepEqual(
      errors.map((e) => e.code),
      ['ERR_BROKER_OUT_OF_ORDER'],
    );
  });

  it('no echo: a publication of this node coming back through the broker is not delivered twice', () => {
    const { broker, host, binding } = setup();
    const a = new FakeSubscriber();
    binding.topics.subscribe(a, 't');
    binding.publish('t', 'mine');
    host.receive(broker.published[0]);
    assert.deepEqual(a.got, ['mine']);
  });

  it('a publication for a topic unsubscribed meanwhile is dropped quietly; a new subscription starts a new chain', () => {
    const { host, binding, errors } = setup();
    const a = new FakeSubscriber();
    binding.topics.subscribe(a, 't');
    host.receive(pub('n1', 't', 1, 0));
    binding.topics.unsubscribe(a, 't');
    host.receive(pub('n1', 't', 2, 1));
    binding.topics.subscribe(a, 't');
    host.receive(pub('n1', 't', 9, 5)); // 5 was published while we were not subscribed: not a gap
    assert.deepEqual(a.got, ['n1:1', 'n1:9']);
    assert.deepEqual(errors, []);
  });

  it('a node down is reported naming the local topics; a node that left is forgotten without a report', () => {
    const { host, binding, errors } = setup();
    const a = new FakeSubscriber();
    binding.topics.subscribe(a, 't');
    binding.topics.subscribe(a, 'u');
    host.receive(pub('n1', 't', 4, 0));
    host.nodeDown('n1', 'missed 2 heartbeats');
    assert.equal(errors.length, 1);
    assert.equal(errors[0].code, 'ERR_BROKER_NODE_DOWN');
    assert.equal(errors[0].node, 'n1');
    assert.deepEqual([...errors[0].topics].sort(), ['t', 'u']);
    assert.match(errors[0].message, /missed 2 heartbeats/);
    // Its state is forgotten: whatever it sends next (had it only stalled) starts a new chain.
    host.receive(pub('n1', 't', 9, 8));
    host.receive(pub('n2', 't', 1, 0));
    host.nodeLeft('n2');
    host.receive(pub('n2', 't', 5, 3));
    assert.equal(errors.length, 1);
    assert.deepEqual(a.got, ['n1:4', 'n1:9', 'n2:1', 'n2:5']);
  });

  it('counts publications sent and received, deliveries, gaps and errors by code (server.metrics())', async () => {
    const { broker, host, binding } = setup();
    const [a, b] = [new FakeSubscriber(), new FakeSubscriber()];
    binding.topics.subscribe(a, 't');
    binding.topics.subscribe(b, 't');
    binding.publish('t', 'one');
    binding.publish('', 'nowhere'); // a name no node can subscribe to: not handed to the broker
    host.receive(pub('n1', 't', 1, 0)); // 2 deliveries
    host.receive(pub('n1', 't', 5, 3)); // a gap, still delivered: 2 more
    host.receive(pub('n1', 't', 4, 1)); // older: dropped and reported
    host.receive(pub('n1', 'nobody', 6, 0)); // received, no subscriber here
    host.receive(pub('me', 't', 9, 0)); // an echo of our own: not counted as received
    host.error(new BrokerError('ERR_BROKER_BACKLOG', 'backlog', ['t']));
    host.nodeDown('n1', 'gone');
    broker.failSubscribe = true;
    binding.topics.subscribe(a, 'u');
    await new Promise((r) => setImmediate(r));
    const c = binding.counters;
    assert.equal(c.publicationsSent, 1);
    assert.equal(c.publicationsReceived, 4);
    assert.equal(c.deliveries, 4);
    assert.equal(c.gaps, 1);
    assert.deepEqual(Object.fromEntries(c.errors), {
      ERR_BROKER_GAP: 1,
      ERR_BROKER_OUT_OF_ORDER: 1,
      ERR_BROKER_BACKLOG: 1,
      ERR_BROKER_NODE_DOWN: 1,
      ERR_BROKER_SUBSCRIBE: 1,
    });
    // One fan-out timed per received publication that had subscribers (not per session).
    assert.equal(c.fanOut.count, 2);
  });

  it('after close(), publish() is local only, the broker is closed, and receive() fails naming the state', async () => {
    const { broker, host, binding } = setup();
    const a = new FakeSubscriber();
    binding.topics.subscribe(a, 't');
    await binding.close();
    await binding.close();
    assert.deepEqual(broker.calls, ['subscribe t', 'close']);
    binding.publish('t', 'late');
    assert.deepEqual(a.got, ['late']);
    assert.equal(broker.published.length, 0);
    binding.topics.unsubscribe(a, 't');
    assert.deepEqual(broker.calls, ['subscribe t', 'close'], 'no unsubscribe through a closed broker');
    assert.throws(() => host.receive(pub('n1', 't', 1, 0)), /unbound from its broker/);
  });
});

/**
 * A durable store in memory, as the cluster relay is one: numbers what is
 * published on topic 'd', keeps it, and hands it back (to every node, here
 * the only one) when told to; history() answers when the test says so, to
 * open the window in which live publications race the history.
 */
class StoreBroker extends RecordingBroker {
  readonly history_ = new TopicHistory(42, 5);
  readonly stored: Publication[] = [];
  historyGate: Promise<void> = Promise.resolve();
  subscribeGate: Promise<void> = Promise.resolve();
  keepsHistory(topic: string): boolean {
    return topic === 'd';
  }
  override publish(p: Publication): void {
    super.publish(p);
    if (p.topic === 'd') this.stored.push(this.history_.append(p));
  }
  /** Delivers every stored publication not yet delivered, as the store does, in order. */
  deliver(): void {
    for (const p of this.stored.splice(0)) this.host!.receive(p);
  }
  override subscribe(topic: string): Promise<void> {
    return super.subscribe(topic).then(() => this.subscribeGate).then(() => void this.calls.push(`subscribed ${topic}`));
  }
  async history(topic: string, since: string | null): Promise<HistoryRange> {
    this.calls.push(`history ${topic} ${since}`);
    await this.historyGate;
    return this.history_.range(topic, since);
  }
}

function durableSetup(envelope = (d: DurableDelivery) => `${d.offset}|${d.payload.toString()}`) {
  const broker = new StoreBroker();
  const errors: unknown[] = [];
  const envelopes: string[] = [];
  const binding = new BrokerBinding<FakeSubscriber>(broker, (e) => errors.push(e), undefined, undefined, (d) => {
    envelopes.push(d.offset);
    return envelope(d);
  });
  return { broker, errors, envelopes, binding };
}

function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

describe('BrokerBinding, durable topics', () => {
  it('a publication on a durable topic reaches local subscribers through the store, with its offset, enveloped once', () => {
    const { broker, binding, envelopes } = durableSetup();
    const [a, b] = [new FakeSubscriber(), new FakeSubscriber()];
    binding.topics.subscribe(a, 'd');
    binding.topics.subscribe(b, 'd');
    const result = binding.publish('d', 'one');
    assert.deepEqual(result, { accepted: 0, dropped: 0, backpressure: 0 }, 'nothing delivered before the store numbered it');
    assert.deepEqual(a.got, []);
    assert.equal(broker.published.length, 1);
    assert.equal(broker.published[0].offset, undefined, 'the store assigns the offset, not the origin');
    binding.publish('d', 'two');
    broker.deliver();
    assert.deepEqual(a.got, ['42-1|one', '42-2|two']);
    assert.deepEqual(b.got, a.got);
    assert.deepEqual(envelopes, ['42-1', '42-2'], 'the envelope is built once per publication, not per subscriber');
    assert.equal(a.frames[0], b.frames[0], 'and the frame once');
  });

  it('a non-durable topic on the same broker is still delivered at once and never echoed', () => {
    const { broker, binding } = durableSetup();
    const a = new FakeSubscriber();
    binding.topics.subscribe(a, 'plain');
    binding.publish('plain', 'x');
    assert.deepEqual(a.got, ['x']);
    broker.host!.receive({ ...broker.published[0] });
    assert.deepEqual(a.got, ['x']);
  });

  it('an envelope that throws is reported and that publication skipped here; the next one goes', () => {
    const { broker, binding, errors } = durableSetup((d) => {
      if (d.payload.toString() === 'bad') throw new Error('envelope failed');
      return d.payload.toString();
    });
    const a = new FakeSubscriber();
    binding.topics.subscribe(a, 'd');
    binding.publish('d', 'bad');
    binding.publish('d', 'good');
    broker.deliver();
    assert.deepEqual(a.got, ['good']);
    assert.equal(errors.length, 1);
    assert.match(String(errors[0]), /envelope failed/);
  });

  it('resume: the history after the offset, then live, each once and in order, whatever arrives live while the history is on its way', async () => {
    const { broker, binding } = durableSetup();
    const early = new FakeSubscriber();
    binding.topics.subscribe(early, 'd');
    for (const t of ['m1', 'm2', 'm3']) binding.publish('d', t);
    broker.deliver();
    const late = new FakeSubscriber();
    const g = gate();
    broker.historyGate = g.promise;
    const resumed = binding.resume(late, 'd', '42-1');
    // Stored after the node subscribed but before the range is taken (in both), then after it (live only).
    binding.publish('d', 'm4');
    broker.deliver();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(late.got, [], 'held while catching up');
    assert.deepEqual(early.got.at(-1), '42-4|m4', 'the others are not held up');
    g.open();
    await new Promise((r) => setImmediate(r));
    binding.publish('d', 'm5');
    broker.deliver();
    const r = await resumed;
    binding.publish('d', 'm6');
    broker.deliver();
    assert.deepEqual(late.got, ['42-2|m2', '42-3|m3', '42-4|m4', '42-5|m5', '42-6|m6']);
    assert.equal(r.delivered, 3);
    assert.equal(r.offset, '42-4');
  });

  it("resume waits for the node's subscription to be in effect before it asks for the history", async () => {
    const { broker, binding } = durableSetup();
    const g = gate();
    broker.subscribeGate = g.promise;
    const a = new FakeSubscriber();
    const resumed = binding.resume(a, 'd', null);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(broker.calls, ['subscribe d']);
    g.open();
    const r = await resumed;
    assert.deepEqual(broker.calls, ['subscribe d', 'subscribed d', 'history d null']);
    assert.deepEqual(r, { delivered: 0, offset: '42-0' }, 'a position before the first publication');
  });

  it('resume without an offset sends nothing old and says where the topic is', async () => {
    const { broker, binding } = durableSetup();
    binding.topics.subscribe(new FakeSubscriber(), 'd');
    binding.publish('d', 'old');
    broker.deliver();
    const a = new FakeSubscriber();
    assert.deepEqual(await binding.resume(a, 'd', null), { delivered: 0, offset: '42-1' });
    assert.deepEqual(a.got, []);
    binding.publish('d', 'new');
    broker.deliver();
    assert.deepEqual(a.got, ['42-2|new']);
  });

  it('an offset older than the history keeps is ERR_OFFSET_TRIMMED: nothing sent, the session left out of the topic', async () => {
    const { broker, binding } = durableSetup();
    binding.topics.subscribe(new FakeSubscriber(), 'd');
    for (let i = 1; i <= 8; i++) binding.publish('d', `m${i}`); // keeps 4..8
    broker.deliver();
    const a = new FakeSubscriber();
    await assert.rejects(binding.resume(a, 'd', '42-2'), (e: unknown) => e instanceof ResumeError && e.code === 'ERR_OFFSET_TRIMMED' && e.oldest === '42-4');
    assert.deepEqual(a.got, []);
    assert.equal(a.topicSet?.has('d') ?? false, false);
    binding.publish('d', 'after');
    broker.deliver();
    assert.deepEqual(a.got, [], 'not subscribed');
    // 'after' made it 5..9 kept; the edge: everything after 4 is kept.
    const b = new FakeSubscriber();
    assert.equal((await binding.resume(b, 'd', '42-4')).delivered, 5);
    assert.deepEqual(b.got, ['42-5|m5', '42-6|m6', '42-7|m7', '42-8|m8', '42-9|after']);
  });

  it('more live publications than MAX_HELD_BYTES while the history is on its way fail the resume (ERR_BROKER_BACKLOG), nothing sent', async () => {
    const { broker, binding } = durableSetup();
    const a = new FakeSubscriber();
    const g = gate();
    broker.historyGate = g.promise;
    const resumed = binding.resume(a, 'd', null);
    await new Promise((r) => setImmediate(r));
    const mib = 'x'.repeat(1 << 20);
    for (let i = 0; i < 17; i++) binding.publish('d', mib);
    broker.deliver();
    g.open();
    await assert.rejects(resumed, (e: unknown) => e instanceof BrokerError && e.code === 'ERR_BROKER_BACKLOG' && e.topics.includes('d'));
    assert.deepEqual(a.got, []);
    assert.equal(a.topicSet?.has('d') ?? false, false);
  });

  it('refuses what it cannot do: a topic without history, a malformed offset, a topic the session is in', async () => {
    const { binding } = durableSetup();
    const a = new FakeSubscriber();
    await assert.rejects(binding.resume(a, 'plain', null), (e: unknown) => e instanceof ResumeError && e.code === 'ERR_NOT_DURABLE');
    await assert.rejects(binding.resume(a, 'd', 'yesterday'), (e: unknown) => e instanceof ResumeError && e.code === 'ERR_BAD_OFFSET');
    assert.equal(a.topicSet?.size ?? 0, 0);
    binding.topics.subscribe(a, 'd');
    await assert.rejects(binding.resume(a, 'd', null), (e: unknown) => e instanceof InvalidStateError && /already subscribed/.test(e.message));
    const plainBinding = setup().binding;
    await assert.rejects(plainBinding.resume(new FakeSubscriber(), 'd', null), (e: unknown) => e instanceof ResumeError && e.code === 'ERR_NOT_DURABLE');
  });
});
