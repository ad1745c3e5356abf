import { InvalidArgumentError, InvalidStateError } from '../core/errors.js';
import type { Broker, BrokerHost, BrokerNodeInfo, Publication } from './broker.js';

/**
 * What the in-process brokers of one process share: which node subscribes to
 * which topic. A context object (nothing of it is module-level): the servers
 * that should see each other's publications are given brokers of one hub.
 */
export class LocalBrokerHub {
  private readonly nodes = new Map<string, LocalBroker>();
  private readonly byTopic = new Map<string, Set<LocalBroker>>();
  private nextId = 1;

  /** A broker for one more server of this process; `nodeId` defaults to 'local-1', 'local-2'... */
  broker(nodeId?: string): LocalBroker {
    return new LocalBroker(this, nodeId);
  }

  /** @internal */
  join(b: LocalBroker): void {
    if (this.nodes.has(b.nodeId)) throw new InvalidArgumentError('ERR_BROKER_NODE_ID', `node id '${b.nodeId}' is already taken in this hub`);
    this.nodes.set(b.nodeId, b);
  }

  /** @internal */
  leave(b: LocalBroker): void {
    if (this.nodes.get(b.nodeId) !== b) return;
    this.nodes.delete(b.nodeId);
    for (const [topic, set] of this.byTopic) if (set.delete(b) && set.size === 0) this.byTopic.delete(topic);
  }

  /** @internal */
  newId(): string {
    let id: string;
    do id = `local-${this.nextId++}`;
    while (this.nodes.has(id));
    return id;
  }

  /** @internal */
  subscribe(b: LocalBroker, topic: string): void {
    let set = this.byTopic.get(topic);
    if (!set) this.byTopic.set(topic, (set = new Set()));
    set.add(b);
  }

  /** @internal */
  unsubscribe(b: LocalBroker, topic: string): void {
    const set = this.byTopic.get(topic);
    if (set?.delete(b) && set.size === 0) this.byTopic.delete(topic);
  }

  /** @internal The nodes subscribed to `topic`, other than `origin`, are handed the publication, in the caller's turn. */
  publish(origin: LocalBroker, p: Publication): void {
    const set = this.byTopic.get(p.topic);
    if (!set) return;
    for (const b of set) if (b !== origin) b.deliver(p);
  }

  /** @internal */
  subscriberCount(topic: string): number {
    let n = 0;
    for (const b of this.byTopic.get(topic) ?? []) n += b.localCount(topic);
    return n;
  }

  /** @internal */
  members(): IterableIterator<LocalBroker> {
    return this.nodes.values();
  }
}

/**
 * The in-process broker: servers of one process (a ws and a wss listener, say)
 * share topics through a LocalBrokerHub. A publication is handed to the other
 * nodes' servers synchronously, inside publish(): nothing is serialized or
 * copied (the payload is the library's own, never modified), nothing can be
 * lost, and order is the publishing order. A server without any broker is
 * the one-node case and pays nothing for brokers at all.
 */
export class LocalBroker implements Broker {
  readonly nodeId: string;
  private readonly hub: LocalBrokerHub;
  private host: BrokerHost | null = null;
  private state: 'unattached' | 'attached' | 'closed' = 'unattached';

  constructor(hub: LocalBrokerHub, nodeId?: string) {
    this.hub = hub;
    this.nodeId = nodeId ?? hub.newId();
    hub.join(this);
  }

  attach(host: BrokerHost): void {
    if (this.state !== 'unattached') throw new InvalidStateError('attach a broker', this.state === 'closed' ? 'closed' : 'attached to a server');
    this.host = host;
    this.state = 'attached';
  }

  publish(publication: Publication): void {
    this.check('publish');
    this.hub.publish(this, publication);
  }

  subscribe(topic: string): Promise<void> {
    this.check('subscribe');
    this.hub.subscribe(this, topic);
    return Promise.resolve();
  }

  unsubscribe(topic: string): Promise<void> {
    this.check('unsubscribe');
    this.hub.unsubscribe(this, topic);
    return Promise.resolve();
  }

  subscriberCount(topic: string): Promise<number> {
    this.check('count subscribers');
    return Promise.resolve(this.hub.subscriberCount(topic));
  }

  nodes(): Promise<readonly BrokerNodeInfo[]> {
    this.check('list nodes');
    const now = Date.now();
    return Promise.resolve([...this.hub.members()].map((b) => ({ id: b.nodeId, pid: process.pid, lastSeen: now })));
  }

  close(): Promise<void> {
    if (this.state !== 'closed') {
      this.state = 'closed';
      this.hub.leave(this);
      this.host = null;
    }
    return Promise.resolve();
  }

  /** @internal from the hub */
  deliver(p: Publication): void {
    this.host?.receive(p);
  }

  /** @internal from the hub */
  localCount(topic: string): number {
    return this.host?.subscriberCount(topic) ?? 0;
  }

  private check(operation: string): void {
    if (this.state !== 'attached') throw new InvalidStateError(`${operation} through a broker`, this.state === 'closed' ? 'closed' : 'not attached to a server');
  }
}
