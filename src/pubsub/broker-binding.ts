import { InvalidStateError } from '../core/errors.js';
import { BrokerError, type Broker, type BrokerHost, type Publication } from './broker.js';
import { parseOffset, ResumeError } from './offset.js';
import { CatchUp, MAX_HELD_BYTES, type DurableFrame, type ResumeResult } from './resume.js';
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

/** One publication of a durable topic, as the envelope gets it. */
export interface DurableDelivery {
  readonly topic: string;
  /** Its offset: what a client gives back to session.resume() to get what followed it. */
  readonly offset: string;
  /** The bytes published (UTF-8 for text); shared, never to be modified. */
  readonly payload: Buffer;
  readonly binary: boolean;
}

/**
 * Builds what subscribers of a durable topic are sent for one publication
 * (createServer({ envelope })), so that a client learns each offset: called
 * once per publication per node (the frame is then built once for all its
 * subscribers), and once per publication a resume sends from the history.
 * A string goes as TEXT, bytes as BINARY.
 */
export type DurableEnvelope = (delivery: DurableDelivery) => string | Uint8Array;


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
  /** The broker's subscription of each topic this node subscribes, as first() asked for it: what a resume waits for. */
  private readonly subscribing = new Map<string, Promise<void>>();
  /** Per durable topic, the sessions catching up on it (session.resume()): live publications are held for them. */
  private readonly catchingUp = new Map<string, Map<S, CatchUp>>();
  private readonly envelope: DurableEnvelope | null;

  constructor(
    broker: Broker,
    report: (error: unknown) => void,
    maxRememberedTopics = MAX_REMEMBERED_TOPICS,
    counters: BrokerCounters = new BrokerCounters(),
    envelope: DurableEnvelope | null = null,
  ) {
    this.broker = broker;
    this.envelope = envelope;
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
    // A durable topic's publication reaches this node's subscribers through the store, with its offset,
    // after the ones published before it (test/pubsub/broker-binding.test.ts, "durable"): none is sent here.
    const durable = this.broker.keepsHistory?.(topic) === true;
    if (durable && this.state !== 'open') {
      this.fail(new BrokerError('ERR_BROKER_DISCONNECTED', `a publication on durable topic '${topic}' after the broker closed: it was not stored`, [topic]));
      return { accepted: 0, dropped: 0, backpressure: 0 };
    }
    const result = durable ? { accepted: 0, dropped: 0, backpressure: 0 } : fanOutOwned(this.topics.subscribers(topic), payload, binary, compress);
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
    this.subscribing.clear();
    await this.broker.close();
  }

  // ------------------------------------------------------- TopicObserver

  first(topic: string): void {
    if (this.state !== 'open') return;
    const subscribed = this.broker.subscribe(topic);
    this.subscribing.set(topic, subscribed);
    // A request the broker drops because it is closing (server.close(), shutdown()) is no failure to report.
    subscribed.catch((err: unknown) => this.state === 'open' && this.fail(asBrokerError(err, 'subscribe to', topic)));
  }

  last(topic: string): void {
    // Whatever comes next on this topic, after a new first subscriber, starts a new chain.
    for (const [origin, byTopic] of this.lastReceived) if (byTopic.delete(topic) && byTopic.size === 0) this.lastReceived.delete(origin);
    this.subscribing.delete(topic);
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
    // A durable one comes back through the store with its offset: that is its only delivery here.
    if (p.origin === this.broker.nodeId && p.offset === undefined) return;
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
    let result: FanOutResult;
    if (p.offset === undefined) result = fanOutOwned(subscribers, p.payload, p.binary, p.compress);
    else {
      // Enveloped once for every local subscriber; those catching up hold it until their history is sent.
      let frame: DurableFrame;
      try {
        frame = this.frameOf(p, p.offset);
      } catch (err) {
        // The application's envelope threw: this publication reaches no local subscriber, and that is said.
        this.report(err);
        return;
      }
      const catching = this.catchingUp.get(p.topic);
      const live = catching ? without(subscribers, catching, frame) : subscribers;
      result = fanOutOwned(live, frame.payload, frame.binary, frame.compress);
    }
    this.counters.fanOut.observe((performance.now() - started) / 1000);
    this.counters.deliveries += result.accepted;
  }

  error(error: BrokerError): void {
    this.fail(error);
  }

  /**
   * Subscribes `s` to durable `topic` and sends it what was published after
   * `since` (none when null), then the live publications, each once and in
   * offset order. The session is in the topic before the history is asked
   * for, and what comes live meanwhile is held (CatchUp), so nothing falls
   * between the history and the live stream. On failure the session is left
   * unsubscribed, nothing sent, and the promise rejects: ResumeError
   * ERR_OFFSET_TRIMMED when what followed `since` is no longer all kept
   * (test/pubsub/broker-binding.test.ts, "resume"); BrokerError
   * ERR_BROKER_BACKLOG when more than MAX_HELD_BYTES came live meanwhile.
   */
  async resume(s: S, topic: string, since: string | null): Promise<ResumeResult> {
    if (this.state !== 'open') throw new InvalidStateError('resume a topic', 'unbound from its broker');
    if (this.broker.keepsHistory?.(topic) !== true || this.broker.history === undefined) {
      throw new ResumeError('ERR_NOT_DURABLE', `topic '${topic}' is not durable on this server's broker: it keeps no history to resume from`, topic, since);
    }
    if (since !== null && parseOffset(since) === null) throw new ResumeError('ERR_BAD_OFFSET', `not an offset: ${JSON.stringify(since)} (an offset is '<era>-<n>')`, topic, since);
    let catching = this.catchingUp.get(topic);
    if (catching?.has(s)) throw new InvalidStateError(`resume topic '${topic}'`, 'already resuming it');
    if (!this.topics.subscribe(s, topic)) throw new InvalidStateError(`resume topic '${topic}'`, 'already subscribed to it');
    const catchUp = new CatchUp(since);
    if (!catching) this.catchingUp.set(topic, (catching = new Map()));
    catching.set(s, catchUp);
    try {
      // The node's subscription first: what is stored after it comes live, what before is in the range.
      await this.subscribing.get(topic);
      const range = await this.broker.history(topic, since);
      if (catchUp.overflowed) {
        throw new BrokerError('ERR_BROKER_BACKLOG', `resuming topic '${topic}': over ${MAX_HELD_BYTES} bytes of live publications came while its history was on its way`, [topic]);
      }
      const frames = catchUp.finish(range.entries.map((p) => this.frameOf(p, p.offset!)));
      let sent = 0;
      for (const f of frames) if (fanOutOwned([s], f.payload, f.binary, f.compress).accepted === 1) sent++;
      const lastFrame = frames.at(-1);
      return { delivered: sent, offset: lastFrame?.offset ?? range.last ?? since };
    } catch (err) {
      this.topics.unsubscribe(s, topic);
      throw err;
    } finally {
      catching.delete(s);
      if (catching.size === 0 && this.catchingUp.get(topic) === catching) this.catchingUp.delete(topic);
    }
  }

  /** What subscribers are sent for a durable publication: the envelope's bytes, or the payload as it is. */
  private frameOf(p: Publication, offset: string): DurableFrame {
    if (!this.envelope) return { offset, payload: p.payload, binary: p.binary, compress: p.compress };
    const built = this.envelope({ topic: p.topic, offset, payload: p.payload, binary: p.binary });
    return { offset, payload: ownPayload(built), binary: typeof built !== 'string', compress: p.compress };
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

/** The subscribers not catching up; each one catching up holds `frame` instead. */
function* without<S>(subscribers: ReadonlySet<S>, catching: ReadonlyMap<S, CatchUp>, frame: DurableFrame): Generator<S> {
  for (const s of subscribers) {
    const c = catching.get(s);
    if (c) c.hold(frame);
    else yield s;
  }
}

function asBrokerError(err: unknown, what: string, topic: string): BrokerError {
  if (err instanceof BrokerError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new BrokerError('ERR_BROKER_SUBSCRIBE', `could not ${what} topic '${topic}': ${message}`, [topic], undefined, { cause: err });
}
