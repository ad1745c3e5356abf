import { InvalidStateError } from '../core/errors.js';
import { BrokerError, type Broker, type BrokerHost, type Publication } from './broker.js';
import { fanOutOwned, ownPayload, type FanOutOptions, type FanOutResult, type FanOutTarget } from './fan-out.js';
import { MAX_TOPIC_LENGTH, Topics, type Subscriber, type TopicObserver } from './topics.js';
import { BrokerCounters } from './broker-counters.js';

/**
 * Most topics whose last publication a node remembers for `prev`. Past it the
 * oldest is forgotten (first in, first out: remembering costs one Map.set per
 * publication, no reordering), and the next publication on a forgotten topic
 * says prev 0, which receivers take unchecked: one link of that topic's chain
 * goes unverified, nothing is reported falsely (test/pubsub/broker-binding.test.ts,
 * "a forgotten topic restarts its chain").
 */
export const MAX_REMEMBERED_TOPICS = 65_536;

/**
 * Binds a Broker to one server's topics: the node's side of every broker.
 * It owns the server's Topics registry (as its TopicObserver, so the broker
 * hears of a topic on the 0→1 and 1→0 transitions only), stamps this node's
 * publications (seq, prev), and checks and fans out those of other nodes.
 * Stamping and checking live here, not in each broker, so that every broker
 * (in-process, node:cluster, Redis) gets the same guarantees from one
 * tested piece.
 *
 * A server without a broker has no binding at all: publish() is a local
 * fan-out, with nothing of this on its path.
 */
export class BrokerBinding<S extends Subscriber & FanOutTarget> implements TopicObserver, BrokerHost {
  readonly broker: Broker;
  readonly topics: Topics<S>;
  /** What server.metrics() reports of the broker (the server's own object, or one of the binding's). */
  readonly counters: BrokerCounters;
  private readonly report: (error: unknown) => void;
  private readonly maxRemembered: number;
  private state: 'open' | 'closed' = 'open';
  /** The last seq this node used. */
  private seq = 0;
  /** Per topic, the seq of this node's last publication on it (bounded by maxRemembered). */
  private readonly lastSent = new Map<string, number>();
  /** Per origin, per topic with local subscribers, the seq last delivered from it. */
  private readonly lastReceived = new Map<string, Map<string, number>>();

  constructor(broker: Broker, report: (error: unknown) => void, maxRememberedTopics = MAX_REMEMBERED_TOPICS, counters: BrokerCounters = new BrokerCounters()) {
    this.broker = broker;
    this.report = report;
    this.counters = counters;
    this.maxRemembered = Math.max(1, maxRememberedTopics);
    this.topics = new Topics<S>(this);
    broker.attach(this);
  }

  /**
   * Delivers to the local subscribers directly (exactly once, the frame
   * built once), then hands the same bytes to the broker for the other nodes.
   */
  publish(topic: string, data: string | Uint8Array, options: FanOutOptions = {}): FanOutResult {
    const payload = ownPayload(data);
    const binary = options.binary ?? typeof data !== 'string';
    const compress = options.compress ?? true;
    const result = fanOutOwned(this.topics.subscribers(topic), payload, binary, compress);
    // A name no node can subscribe to reaches no one anywhere: not worth a message.
    if (this.state === 'open' && typeof topic === 'string' && topic.length > 0 && topic.length <= MAX_TOPIC_LENGTH) {
      const seq = ++this.seq;
      const prev = this.lastSent.get(topic) ?? 0;
      if (prev === 0 && this.lastSent.size >= this.maxRemembered) this.lastSent.delete(this.lastSent.keys().next().value as string);
      this.lastSent.set(topic, seq);
      this.broker.publish({ topic, payload, binary, compress, origin: this.broker.nodeId, seq, prev });
      this.counters.publicationsSent++;
    }
    return result;
  }

  /** Leaves the broker; publish() is local only from here on. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.lastReceived.clear();
    await this.broker.close();
  }

  // ------------------------------------------------------- TopicObserver

  first(topic: string): void {
    if (this.state !== 'open') return;
    // A request the broker drops because it is closing (server.close(), shutdown()) is no failure to report.
    this.broker.subscribe(topic).catch((err: unknown) => this.state === 'open' && this.fail(asBrokerError(err, 'subscribe to', topic)));
  }

  last(topic: string): void {
    // Whatever comes next on this topic, after a new first subscriber, starts a new chain.
    for (const [origin, byTopic] of this.lastReceived) if (byTopic.delete(topic) && byTopic.size === 0) this.lastReceived.delete(origin);
    if (this.state !== 'open') return;
    // After the broker closed, a refused unsubscribe loses nothing: the whole node has left
    // (examples/cluster: a rolling restart reports no error).
    this.broker.unsubscribe(topic).catch((err: unknown) => this.state === 'open' && this.fail(asBrokerError(err, 'unsubscribe from', topic)));
  }

  // ---------------------------------------------------------- BrokerHost

  receive(p: Publication): void {
    if (this.state !== 'open') throw new InvalidStateError('receive a publication', 'unbound from its broker');
    // Delivered locally when it was published: a broker must not echo it, and if it did, delivering
    // it again would make it twice (test/pubsub/broker-binding.test.ts, "no echo").
    if (p.origin === this.broker.nodeId) return;
    this.counters.publicationsReceived++;
    const subscribers = this.topics.subscribers(p.topic);
    // Unsubscribed here since the broker sent it: nobody to deliver to, so nothing is lost.
    if (subscribers.size === 0) return;
    let byTopic = this.lastReceived.get(p.origin);
    if (!byTopic) this.lastReceived.set(p.origin, (byTopic = new Map()));
    const last = byTopic.get(p.topic);
    if (last !== undefined) {
      if (p.seq <= last) {
        // An at-least-once broker's resend after a lost link: its first sending got through, this is the
        // repeat, and dropping it is the point (test/pubsub/broker-binding.test.ts, "a redelivered repeat").
        if (p.redelivery === true) return;
        // At most once and in order: a publication older than one delivered is not delivered after it.
        this.fail(
          new BrokerError('ERR_BROKER_OUT_OF_ORDER', `publication ${p.seq} of node ${p.origin} on topic '${p.topic}' came after ${last}: dropped`, [p.topic], p.origin),
        );
        return;
      }
      // prev 0: the origin does not remember its previous one on this topic (MAX_REMEMBERED_TOPICS).
      // prev below last cannot follow from one origin's stamping; taken as a forgotten chain too.
      if (p.prev > last) {
        this.fail(
          new BrokerError(
            'ERR_BROKER_GAP',
            `publications of node ${p.origin} on topic '${p.topic}' were lost: ${last} was followed by ${p.seq}, whose previous on this topic is ${p.prev}`,
            [p.topic],
            p.origin,
          ),
        );
      }
    }
    byTopic.set(p.topic, p.seq);
    // Timed once per publication (not per session): the clock is read twice, the sessions are many.
    const started = performance.now();
    const result = fanOutOwned(subscribers, p.payload, p.binary, p.compress);
    this.counters.fanOut.observe((performance.now() - started) / 1000);
    this.counters.deliveries += result.accepted;
  }

  error(error: BrokerError): void {
    this.fail(error);
  }

  nodeDown(nodeId: string, reason: string): void {
    this.lastReceived.delete(nodeId);
    // Any local topic may have had a publication of that node in flight.
    const topics = [...this.topics.names()];
    this.fail(new BrokerError('ERR_BROKER_NODE_DOWN', `node ${nodeId} is down (${reason}): its publications still in flight on these topics are lost`, topics, nodeId));
  }

  nodeLeft(nodeId: string): void {
    this.lastReceived.delete(nodeId);
  }

  subscriberCount(topic: string): number {
    return this.topics.subscribers(topic).size;
  }

  subscribedTopics(): IterableIterator<string> {
    return this.topics.names();
  }

  /** Counts a broker failure by its code, then reports it (onError). */
  private fail(error: BrokerError): void {
    this.counters.error(error.code);
    this.report(error);
  }
}

function asBrokerError(err: unknown, what: string, topic: string): BrokerError {
  if (err instanceof BrokerError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new BrokerError('ERR_BROKER_SUBSCRIBE', `could not ${what} topic '${topic}': ${message}`, [topic], undefined, { cause: err });
}
