import { InvalidArgumentError } from '../core/errors.js';

/** What the topic registry needs of a subscriber: a place to remember its own topics. */
export interface Subscriber {
  /** The topics this subscriber is in (null until its first subscribe). */
  topicSet: Set<string> | null;
}

/**
 * Told when a topic gains its first subscriber and loses its last one (the
 * server's broker binding: a broker hears of a topic once per node, not once
 * per session; test/pubsub/broker-binding.test.ts).
 */
export interface TopicObserver {
  first(topic: string): void;
  last(topic: string): void;
}

/** Longest topic name, in UTF-16 code units: names are application keys, not payloads. */
export const MAX_TOPIC_LENGTH = 1024;

/**
 * Topics and their subscribers, for one server. A subscriber remembers its
 * topics too, so leaving (or closing) costs its own topics, not all topics.
 * An empty topic is deleted, so the registry holds only live topics.
 */
export class Topics<S extends Subscriber> {
  private readonly byTopic = new Map<string, Set<S>>();
  private readonly observer: TopicObserver | null;

  constructor(observer: TopicObserver | null = null) {
    this.observer = observer;
  }

  /** Adds `s` to `topic`; false if it was already in it. */
  subscribe(s: S, topic: string): boolean {
    checkTopic(topic);
    let set = this.byTopic.get(topic);
    if (!set) this.byTopic.set(topic, (set = new Set()));
    if (set.has(s)) return false;
    set.add(s);
    (s.topicSet ??= new Set()).add(topic);
    // An empty topic is deleted, so a topic of one subscriber had none before.
    if (set.size === 1) this.observer?.first(topic);
    return true;
  }

  /** Removes `s` from `topic`; false if it was not in it. */
  unsubscribe(s: S, topic: string): boolean {
    const set = this.byTopic.get(topic);
    if (!set || !set.delete(s)) return false;
    s.topicSet?.delete(topic);
    if (set.size === 0) {
      this.byTopic.delete(topic);
      this.observer?.last(topic);
    }
    return true;
  }

  /** Removes `s` from every topic (when it closes). */
  removeAll(s: S): void {
    const mine = s.topicSet;
    if (!mine) return;
    for (const topic of mine) {
      const set = this.byTopic.get(topic);
      if (!set) continue;
      set.delete(s);
      if (set.size === 0) {
        this.byTopic.delete(topic);
        this.observer?.last(topic);
      }
    }
    s.topicSet = null;
  }

  /** The subscribers of `topic` (empty if none). */
  subscribers(topic: string): ReadonlySet<S> {
    return this.byTopic.get(topic) ?? EMPTY;
  }

  /** Names of the topics that have at least one subscriber. */
  names(): IterableIterator<string> {
    return this.byTopic.keys();
  }
}

const EMPTY: ReadonlySet<never> = new Set<never>();

function checkTopic(topic: unknown): asserts topic is string {
  if (typeof topic !== 'string' || topic.length === 0 || topic.length > MAX_TOPIC_LENGTH) {
    throw new InvalidArgumentError('ERR_BAD_TOPIC', `a topic is a string of 1 to ${MAX_TOPIC_LENGTH} characters`);
  }
}
