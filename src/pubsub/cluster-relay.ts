import cluster, { type Worker } from 'node:cluster';
import { InvalidArgumentError, InvalidStateError } from '../core/errors.js';
import { BrokerError, type BrokerNodeInfo, type Publication } from './broker.js';
import { DEFAULT_HISTORY_LENGTH, TopicHistory } from './history.js';
import { ResumeError } from './offset.js';
import {
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_MAX_QUEUED_BYTES,
  DEFAULT_REQUEST_TIMEOUT_MS,
  PROTOCOL_VERSION,
  TAG,
  isProtocolMessage,
  queuedSize,
  type ToRelay,
  type ToWorker,
} from './cluster-protocol.js';

export interface ClusterRelayOptions {
  /** How often each worker node says it is alive; a node is down after two missed heartbeats. Default 1000 ms. */
  heartbeatMs?: number;
  /** Most bytes waiting in one worker's IPC queue; a publication past it is dropped for that worker (and reported). Default 64 MiB. */
  maxQueuedBytes?: number;
  /**
   * Publications each durable topic keeps (the workers' ClusterBroker
   * `durable` option) for sessions that resume: a resume from before the
   * oldest kept fails with ERR_OFFSET_TRIMMED. Kept in this process, so they
   * outlive any worker, not the primary. Default 10000.
   */
  historyLength?: number;
  /** How long a presence query waits for the nodes' answers. Default 5000 ms. */
  queryTimeoutMs?: number;
  onNodeUp?(node: BrokerNodeInfo): void;
  /** A node exited, disconnected, or missed two heartbeats; `reason` says which. */
  onNodeDown?(node: BrokerNodeInfo, reason: string): void;
  /** Publications the relay had to drop (a worker's queue over maxQueuedBytes), a worker refused (its node id taken, its channel not 'advanced'). Default: printed to stderr. */
  onError?(error: BrokerError): void;
}

/** Counters of the relay, per node: what it forwarded to each, what it dropped for each. */
export interface ClusterRelayStats {
  /** Publications received from every node. */
  received: number;
  nodes: ReadonlyArray<{ id: string; forwarded: number; dropped: number; topics: number }>;
}

interface Link {
  readonly id: string;
  readonly worker: Worker;
  readonly pid: number;
  readonly topics: Set<string>;
  lastSeen: number;
  queuedBytes: number;
  forwarded: number;
  dropped: number;
}

interface CountQuery {
  waiting: Set<Link>;
  sum: number;
  resolve(n: number): void;
  reject(e: BrokerError): void;
  timer: NodeJS.Timeout;
}

/**
 * The primary's side of the node:cluster broker: relays publications between
 * the worker nodes over their IPC channels, forwarding each only to the nodes
 * subscribed to its topic (never back to its origin), watches their
 * heartbeats and answers presence queries. Made by clusterBrokerPrimary().
 *
 * Order: a node's publications reach the relay in order on its channel and
 * leave on each receiver's channel in the same order. Loss: the relay drops
 * a publication for a worker whose queue is over maxQueuedBytes (reported
 * here, and at the receiver as a gap on that topic); a node that is down
 * loses what was in flight (reported at every node, ERR_BROKER_NODE_DOWN).
 */
export class ClusterRelay {
  readonly heartbeatMs: number;
  private readonly options: ClusterRelayOptions;
  private readonly maxQueuedBytes: number;
  private readonly queryTimeoutMs: number;
  private readonly links = new Map<string, Link>();
  private readonly byTopic = new Map<string, Set<Link>>();
  private readonly queries = new Map<number, CountQuery>();
  /** Durable topics' histories, numbered in this relay's era (its start time: offsets of an earlier primary never match). */
  private readonly histories = new Map<string, TopicHistory>();
  private readonly era = Date.now();
  private readonly historyLength: number;
  /** Nodes declared down whose worker is still there, told so once (until they join again or the worker goes). */
  private readonly evicted = new Map<string, Worker>();
  private nextQuery = 1;
  private received = 0;
  private closed = false;
  private readonly timer: NodeJS.Timeout;
  private lastCheck = Date.now();
  private readonly onMessage = (worker: Worker, m: unknown) => this.handle(worker, m);
  private readonly onExit = (worker: Worker, code: number, signal: string) => this.workerGone(worker, `exited (${signal || `code ${code}`})`);
  private readonly onDisconnect = (worker: Worker) => this.workerGone(worker, 'disconnected');

  constructor(options: ClusterRelayOptions = {}) {
    if (!cluster.isPrimary) throw new InvalidStateError('start the cluster relay', 'not in the cluster primary');
    const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    if (!(heartbeatMs >= 10)) throw new InvalidArgumentError('ERR_BAD_HEARTBEAT', `heartbeatMs is at least 10 (got ${heartbeatMs})`);
    this.options = options;
    this.heartbeatMs = heartbeatMs;
    this.maxQueuedBytes = options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    this.queryTimeoutMs = options.queryTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.historyLength = options.historyLength ?? DEFAULT_HISTORY_LENGTH;
    if (!(this.historyLength >= 1)) throw new InvalidArgumentError('ERR_BAD_HISTORY_LENGTH', `historyLength is at least 1 (got ${this.historyLength})`);
    // Payloads are Buffers: JSON would turn each into an array of numbers. Workers forked from here on
    // get the structured-clone channel; one forked with 'json' is refused at its hello (the probe).
    if (cluster.settings.serialization === 'json') {
      throw new InvalidArgumentError('ERR_BAD_SERIALIZATION', "the cluster broker needs serialization 'advanced' (cluster.setupPrimary), not 'json'");
    }
    cluster.setupPrimary({ serialization: 'advanced' });
    cluster.on('message', this.onMessage);
    cluster.on('exit', this.onExit);
    cluster.on('disconnect', this.onDisconnect);
    // A node is down once two heartbeats in a row are missing: checked at every interval, so it is
    // seen between 2 and 3 intervals after its last sign of life (test/pubsub/cluster.test.ts).
    this.timer = setInterval(() => this.checkHeartbeats(), heartbeatMs);
    this.timer.unref();
  }

  /** The live nodes (synchronous here in the primary). */
  nodes(): BrokerNodeInfo[] {
    return [...this.links.values()].map(info);
  }

  /** Ids of the nodes subscribed to `topic`. */
  subscribers(topic: string): string[] {
    return [...(this.byTopic.get(topic) ?? [])].map((l) => l.id);
  }

  /** Subscribers of `topic` summed over the nodes: each node subscribed to it is asked for its own count. */
  subscriberCount(topic: string): Promise<number> {
    if (this.closed) return Promise.reject(new InvalidStateError('count subscribers', 'relay closed'));
    const waiting = new Set(this.byTopic.get(topic) ?? []);
    if (waiting.size === 0) return Promise.resolve(0);
    return new Promise((resolve, reject) => {
      const id = this.nextQuery++;
      const timer = setTimeout(() => {
        this.queries.delete(id);
        const late = [...waiting].map((l) => l.id);
        reject(new BrokerError('ERR_BROKER_TIMEOUT', `no subscriber count from ${late.join(', ')} within ${this.queryTimeoutMs} ms`, [topic], late[0]));
      }, this.queryTimeoutMs);
      timer.unref();
      this.queries.set(id, { waiting, sum: 0, resolve, reject, timer });
      for (const l of waiting) this.send(l, { [TAG]: PROTOCOL_VERSION, n: l.id, t: 'count', id, topic });
    });
  }

  stats(): ClusterRelayStats {
    return {
      received: this.received,
      nodes: [...this.links.values()].map((l) => ({ id: l.id, forwarded: l.forwarded, dropped: l.dropped, topics: l.topics.size })),
    };
  }

  /** Stops relaying; the workers' brokers are told (each reports ERR_BROKER_DISCONNECTED). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    cluster.off('message', this.onMessage);
    cluster.off('exit', this.onExit);
    cluster.off('disconnect', this.onDisconnect);
    for (const l of this.links.values()) this.send(l, { [TAG]: PROTOCOL_VERSION, n: l.id, t: 'relay-closed' });
    this.links.clear();
    this.byTopic.clear();
    this.evicted.clear();
    for (const q of this.queries.values()) {
      clearTimeout(q.timer);
      q.reject(new BrokerError('ERR_BROKER_DISCONNECTED', 'the cluster relay closed', []));
    }
    this.queries.clear();
  }

  private handle(worker: Worker, raw: unknown): void {
    if (!isProtocolMessage(raw)) return;
    const m = raw as ToRelay;
    if (m.t === 'hello') {
      this.hello(worker, m.n, m.pid, m.probe);
      return;
    }
    const link = this.links.get(m.n);
    if (!link || link.worker !== worker) {
      // A node declared down (it missed its heartbeats, say while stopped) was told so once, in down();
      // what it sent before it heard is from its old life and dropped (it reports that itself when it
      // hears, then joins again: test/pubsub/cluster.test.ts, "a stalled worker"). A node never seen
      // is told once too.
      if (m.t !== 'bye' && this.evicted.get(m.n) !== worker) {
        this.evicted.set(m.n, worker);
        this.sendTo(worker, { [TAG]: PROTOCOL_VERSION, n: m.n, t: 'evicted', reason: 'unknown to the primary' });
      }
      return;
    }
    link.lastSeen = Date.now();
    switch (m.t) {
      case 'beat':
        return;
      case 'pub':
        this.forward(link, m);
        return;
      case 'sub': {
        let set = this.byTopic.get(m.topic);
        if (!set) this.byTopic.set(m.topic, (set = new Set()));
        set.add(link);
        link.topics.add(m.topic);
        this.send(link, { [TAG]: PROTOCOL_VERSION, n: link.id, t: 'ack', id: m.id });
        return;
      }
      case 'unsub':
        this.dropTopic(link, m.topic);
        this.send(link, { [TAG]: PROTOCOL_VERSION, n: link.id, t: 'ack', id: m.id });
        return;
      case 'count-reply': {
        const q = this.queries.get(m.id);
        if (!q || !q.waiting.delete(link)) return;
        q.sum += m.count;
        this.settle(m.id, q);
        return;
      }
      case 'query':
        this.query(link, m);
        return;
      case 'hist':
        this.range(link, m);
        return;
      case 'bye':
        this.remove(link);
        for (const other of this.links.values()) this.send(other, { [TAG]: PROTOCOL_VERSION, n: other.id, t: 'left', node: link.id });
        return;
    }
  }

  private hello(worker: Worker, id: string, pid: number, probe: unknown): void {
    const refuse = (reason: string) => {
      this.sendTo(worker, { [TAG]: PROTOCOL_VERSION, n: id, t: 'refused', reason });
      this.reportError(new BrokerError('ERR_BROKER_DISCONNECTED', `node ${id} (pid ${pid}) refused: ${reason}`, [], id));
    };
    if (!(probe instanceof Uint8Array)) {
      refuse("the worker's IPC channel does not use serialization 'advanced' (fork it after clusterBrokerPrimary())");
      return;
    }
    if (this.links.has(id)) {
      refuse(`node id '${id}' is already in use`);
      return;
    }
    this.evicted.delete(id);
    const link: Link = { id, worker, pid, topics: new Set(), lastSeen: Date.now(), queuedBytes: 0, forwarded: 0, dropped: 0 };
    this.links.set(id, link);
    this.send(link, { [TAG]: PROTOCOL_VERSION, n: id, t: 'welcome', heartbeatMs: this.heartbeatMs });
    this.options.onNodeUp?.(info(link));
  }

  private forward(origin: Link, m: Extract<ToRelay, { t: 'pub' }>): void {
    this.received++;
    let p: Publication = m.p;
    if (m.d) {
      // Numbered and kept here, in the order it came: each origin's channel is in order, so offsets follow
      // every publisher's order, and the origin gets it back with its offset (test/pubsub/cluster-resume.test.ts).
      let h = this.histories.get(p.topic);
      if (!h) this.histories.set(p.topic, (h = new TopicHistory(this.era, this.historyLength)));
      p = h.append(p);
    }
    const set = this.byTopic.get(p.topic);
    if (!set) return;
    for (const l of set) {
      if (l === origin && !m.d) continue;
      const out: ToWorker = { [TAG]: PROTOCOL_VERSION, n: l.id, t: 'pub', p };
      if (l.queuedBytes + queuedSize(out) > this.maxQueuedBytes) {
        // The receiver sees the gap too, at its next publication of this origin on this topic.
        l.dropped++;
        this.reportError(
          new BrokerError('ERR_BROKER_BACKLOG', `publication ${m.p.seq} of node ${origin.id} on topic '${m.p.topic}' dropped for node ${l.id}: its IPC queue is over ${this.maxQueuedBytes} bytes`, [m.p.topic], l.id),
        );
        continue;
      }
      l.forwarded++;
      this.send(l, out);
    }
  }

  private query(link: Link, m: Extract<ToRelay, { t: 'query' }>): void {
    const reply = (body: Omit<Extract<ToWorker, { t: 'reply' }>, typeof TAG | 'n' | 't' | 'id'>) =>
      this.send(link, { [TAG]: PROTOCOL_VERSION, n: link.id, t: 'reply', id: m.id, ...body });
    if (m.q === 'nodes') {
      reply({ nodes: this.nodes() });
      return;
    }
    this.subscriberCount(m.topic).then(
      (count) => reply({ count }),
      (err: unknown) => {
        const e = err instanceof BrokerError ? err : new BrokerError('ERR_BROKER_TIMEOUT', String(err), [m.topic]);
        reply({ error: { code: e.code, message: e.message, node: e.node } });
      },
    );
  }

  /**
   * A durable topic's history after an offset. Answered on the channel that
   * carries the topic's live publications to that node, after the
   * subscription the node asked for first: every publication numbered after
   * this range reaches the node live.
   */
  private range(link: Link, m: Extract<ToRelay, { t: 'hist' }>): void {
    const h = this.histories.get(m.topic) ?? new TopicHistory(this.era, this.historyLength);
    let out: ToWorker;
    try {
      const r = h.range(m.topic, m.since);
      out = { [TAG]: PROTOCOL_VERSION, n: link.id, t: 'range', id: m.id, entries: [...r.entries], last: r.last };
    } catch (err) {
      if (!(err instanceof ResumeError)) throw err;
      const e = err;
      out = { [TAG]: PROTOCOL_VERSION, n: link.id, t: 'range', id: m.id, entries: [], last: h.lastOffset, error: { code: e.code, message: e.message, oldest: e.oldest } };
    }
    this.send(link, out);
  }

  private settle(id: number, q: CountQuery): void {
    if (q.waiting.size > 0) return;
    clearTimeout(q.timer);
    this.queries.delete(id);
    q.resolve(q.sum);
  }

  private checkHeartbeats(): void {
    const now = Date.now();
    const lag = now - this.lastCheck;
    this.lastCheck = now;
    // The primary itself was held up (a long synchronous task): the heartbeats that came meanwhile
    // still wait in its channels, unread. Silence it caused proves nothing about the workers.
    if (lag > 1.5 * this.heartbeatMs) return;
    const deadline = now - 2 * this.heartbeatMs;
    for (const l of [...this.links.values()]) if (l.lastSeen < deadline) this.down(l, 'missed 2 heartbeats');
  }

  private workerGone(worker: Worker, reason: string): void {
    for (const [id, w] of [...this.evicted]) if (w === worker) this.evicted.delete(id);
    for (const l of [...this.links.values()]) if (l.worker === worker) this.down(l, reason);
  }

  /** A node is down: it is forgotten, every other node is told (each reports what it may have lost), and so is the node itself if it can still hear. */
  private down(link: Link, reason: string): void {
    this.remove(link);
    for (const other of this.links.values()) this.send(other, { [TAG]: PROTOCOL_VERSION, n: other.id, t: 'down', node: link.id, reason });
    if (link.worker.isConnected()) {
      this.evicted.set(link.id, link.worker);
      this.sendTo(link.worker, { [TAG]: PROTOCOL_VERSION, n: link.id, t: 'evicted', reason });
    }
    this.options.onNodeDown?.(info(link), reason);
  }

  private remove(link: Link): void {
    if (this.links.get(link.id) !== link) return;
    this.links.delete(link.id);
    for (const topic of [...link.topics]) this.dropTopic(link, topic);
    // A count that waited for this node is complete without it: its sessions are gone.
    for (const [id, q] of this.queries) if (q.waiting.delete(link)) this.settle(id, q);
  }

  private dropTopic(link: Link, topic: string): void {
    link.topics.delete(topic);
    const set = this.byTopic.get(topic);
    if (set?.delete(link) && set.size === 0) this.byTopic.delete(topic);
  }

  /** Sends to a node, keeping count of what waits in its channel (the bound on forwarded publications). */
  private send(link: Link, m: ToWorker): void {
    if (!link.worker.isConnected()) return;
    const size = queuedSize(m);
    link.queuedBytes += size;
    link.worker.send(m, () => {
      link.queuedBytes -= size;
    });
  }

  private sendTo(worker: Worker, m: ToWorker): void {
    if (worker.isConnected()) worker.send(m);
  }

  private reportError(e: BrokerError): void {
    if (this.options.onError) this.options.onError(e);
    else console.error('sockeye:', e);
  }
}

function info(l: Link): BrokerNodeInfo {
  return { id: l.id, pid: l.pid, lastSeen: l.lastSeen };
}

/**
 * Starts the node:cluster broker's relay in the primary: call it before
 * forking the workers (it sets their IPC serialization to 'advanced'), then
 * give each worker's server a createClusterBroker().
 */
export function clusterBrokerPrimary(options: ClusterRelayOptions = {}): ClusterRelay {
  return new ClusterRelay(options);
}
