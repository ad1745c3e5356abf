import cluster from 'node:cluster';
import { InvalidStateError } from '../core/errors.js';
import { BrokerError, type Broker, type BrokerHost, type BrokerNodeInfo, type Publication } from './broker.js';
import type { HistoryRange } from './history.js';
import { ResumeError } from './offset.js';
import {
  DEFAULT_MAX_QUEUED_BYTES,
  DEFAULT_REQUEST_TIMEOUT_MS,
  PROTOCOL_VERSION,
  TAG,
  isProtocolMessage,
  queuedSize,
  type QueryKind,
  type ToRelay,
  type ToWorker,
} from './cluster-protocol.js';

export { ClusterRelay, clusterBrokerPrimary, type ClusterRelayOptions, type ClusterRelayStats } from './cluster-relay.js';

export interface ClusterBrokerOptions {
  /** This node's id, unique in the cluster. Default `worker-<cluster.worker.id>`. */
  nodeId?: string;
  /** How long a subscribe acknowledgement or a presence query may take. Default 5000 ms. */
  requestTimeoutMs?: number;
  /** Most bytes waiting in the IPC channel to the primary; a publication past it is dropped for the other nodes (and reported). Default 64 MiB. */
  maxQueuedBytes?: number;
  /**
   * The durable topics (a list, or a test; every worker must be given the
   * same): their publications are numbered by the relay in the primary, which
   * keeps a bounded history of each (clusterBrokerPrimary's historyLength)
   * and delivers them to every worker subscribed, the publishing one
   * included, so that sessions can resume them (session.resume()). Default none.
   */
  durable?: readonly string[] | ((topic: string) => boolean);
}

/** The broker's link to the primary: joining (hello sent), open (welcomed), disconnected (for good), closed. */
export type ClusterBrokerState = 'unattached' | 'joining' | 'open' | 'disconnected' | 'closed';

interface Pending {
  /** What was sent, kept to be sent again when the node joins again after an eviction. */
  readonly message: ToRelay;
  resolve(value: Extract<ToWorker, { t: 'ack' | 'reply' | 'range' }>): void;
  reject(error: BrokerError): void;
  timer: NodeJS.Timeout;
}

/**
 * The node:cluster broker, in a worker: publications go to the primary's
 * relay (clusterBrokerPrimary()) over the worker's IPC channel, which sends
 * them on to the other workers subscribed to their topic. One channel, in
 * order, both ways: a node's publications reach every other node in the
 * order it published them.
 *
 * Liveness: the node sends a heartbeat every `heartbeatMs` (the relay's
 * option, told in its welcome). A node that misses two is declared down: the
 * others report what they may have lost, and the node itself, if it was only
 * stalled, is told, reports the same and joins again with its topics. A
 * primary that goes away (the IPC channel disconnects) is reported once,
 * naming every local topic; publications to other nodes are dropped from
 * then on.
 */
export class ClusterBroker implements Broker {
  readonly nodeId: string;
  private _state: ClusterBrokerState = 'unattached';
  private host: BrokerHost | null = null;
  private readonly requestTimeoutMs: number;
  private readonly maxQueuedBytes: number;
  private queuedBytes = 0;
  private heartbeat: NodeJS.Timeout | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private readonly durable: (topic: string) => boolean;
  private readonly onMessage = (m: unknown) => this.handle(m);
  private readonly onDisconnect = () => this.disconnected('the IPC channel to the primary closed');

  constructor(options: ClusterBrokerOptions = {}) {
    if (!cluster.isWorker || !cluster.worker || typeof process.send !== 'function') {
      throw new InvalidStateError('create a cluster broker', 'not in a cluster worker');
    }
    this.nodeId = options.nodeId ?? `worker-${cluster.worker.id}`;
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.maxQueuedBytes = options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    const durable = options.durable;
    if (typeof durable === 'function') this.durable = durable;
    else {
      const set = new Set(durable ?? []);
      this.durable = (topic) => set.has(topic);
    }
  }

  keepsHistory(topic: string): boolean {
    return this.durable(topic);
  }

  /** The relay's history of durable `topic` after `since` (null: only its newest offset). */
  async history(topic: string, since: string | null): Promise<HistoryRange> {
    const m = (await this.request({ [TAG]: PROTOCOL_VERSION, n: this.nodeId, t: 'hist', id: this.nextId++, topic, since })) as Extract<ToWorker, { t: 'range' }>;
    if (m.error) throw new ResumeError(m.error.code, m.error.message, topic, since, m.error.oldest);
    return { entries: m.entries.map(asBuffers), last: m.last };
  }

  get state(): ClusterBrokerState {
    return this._state;
  }

  attach(host: BrokerHost): void {
    if (this._state !== 'unattached') throw new InvalidStateError('attach a broker', this._state);
    this.host = host;
    process.on('message', this.onMessage);
    process.on('disconnect', this.onDisconnect);
    this.join();
  }

  publish(publication: Publication): void {
    this.check('publish');
    // Disconnected for good: reported once, naming every topic, when it happened.
    if (this._state === 'disconnected') return;
    const m: ToRelay = this.durable(publication.topic)
      ? { [TAG]: PROTOCOL_VERSION, n: this.nodeId, t: 'pub', p: publication, d: true }
      : { [TAG]: PROTOCOL_VERSION, n: this.nodeId, t: 'pub', p: publication };
    const size = queuedSize(m);
    if (this.queuedBytes + size > this.maxQueuedBytes) {
      this.host!.error(
        new BrokerError('ERR_BROKER_BACKLOG', `publication ${publication.seq} on topic '${publication.topic}' not sent to other nodes: the IPC queue to the primary is over ${this.maxQueuedBytes} bytes`, [publication.topic]),
      );
      return;
    }
    this.queuedBytes += size;
    this.post(m, () => {
      this.queuedBytes -= size;
    });
  }

  subscribe(topic: string): Promise<void> {
    return this.request({ [TAG]: PROTOCOL_VERSION, n: this.nodeId, t: 'sub', id: this.nextId++, topic }).then(() => undefined);
  }

  unsubscribe(topic: string): Promise<void> {
    return this.request({ [TAG]: PROTOCOL_VERSION, n: this.nodeId, t: 'unsub', id: this.nextId++, topic }).then(() => undefined);
  }

  async subscriberCount(topic: string): Promise<number> {
    return (await this.query({ q: 'count', topic })).count ?? 0;
  }

  async nodes(): Promise<readonly BrokerNodeInfo[]> {
    return (await this.query({ q: 'nodes' })).nodes ?? [];
  }

  close(): Promise<void> {
    if (this._state === 'closed') return Promise.resolve();
    const wasLinked = this._state === 'joining' || this._state === 'open';
    this.stop('closed');
    this.failPending(new BrokerError('ERR_BROKER_DISCONNECTED', 'the broker closed', []));
    this.host = null;
    if (!wasLinked || !process.connected) return Promise.resolve();
    // 'bye' goes after every publication already queued on the channel: the others get them all, then forget us.
    return new Promise((resolve) => this.post({ [TAG]: PROTOCOL_VERSION, n: this.nodeId, t: 'bye' }, () => resolve()));
  }

  private join(): void {
    this._state = 'joining';
    // The probe arrives as a Uint8Array only over an 'advanced' channel: the relay checks it.
    this.post({ [TAG]: PROTOCOL_VERSION, n: this.nodeId, t: 'hello', pid: process.pid, probe: new Uint8Array(1) });
  }

  private handle(raw: unknown): void {
    if (!isProtocolMessage(raw) || raw.n !== this.nodeId || this.host === null) return;
    const m = raw as ToWorker;
    const host = this.host;
    switch (m.t) {
      case 'welcome':
        if (this._state !== 'joining') return;
        this._state = 'open';
        this.heartbeat = setInterval(() => this.post({ [TAG]: PROTOCOL_VERSION, n: this.nodeId, t: 'beat' }), m.heartbeatMs);
        this.heartbeat.unref();
        return;
      case 'pub':
        host.receive(asBuffers(m.p));
        return;
      case 'ack':
      case 'range':
      case 'reply': {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        clearTimeout(p.timer);
        if (m.t === 'reply' && m.error) p.reject(new BrokerError(m.error.code, m.error.message, [], m.error.node));
        else p.resolve(m);
        return;
      }
      case 'count':
        this.post({ [TAG]: PROTOCOL_VERSION, n: this.nodeId, t: 'count-reply', id: m.id, count: host.subscriberCount(m.topic) });
        return;
      case 'down':
        host.nodeDown(m.node, m.reason);
        return;
      case 'left':
        host.nodeLeft(m.node);
        return;
      case 'evicted':
        this.rejoin(m.reason);
        return;
      case 'refused':
        this.disconnected(`refused by the primary: ${m.reason}`);
        return;
      case 'relay-closed':
        this.disconnected('the relay in the primary closed');
        return;
    }
  }

  /**
   * Declared down while it was alive (stalled past two heartbeats): what it
   * published or should have received meanwhile may be lost, so that is
   * reported, then it joins again with its topics and its requests still
   * waiting, in their order.
   */
  private rejoin(reason: string): void {
    if (this._state !== 'open' && this._state !== 'joining') return;
    const topics = [...this.host!.subscribedTopics()];
    this.host!.error(new BrokerError('ERR_BROKER_DISCONNECTED', `node ${this.nodeId} was declared down by the primary (${reason}): publications to and from it on these topics may have been lost; joining again`, topics));
    this.stop('joining');
    this.join();
    for (const topic of topics) this.post({ [TAG]: PROTOCOL_VERSION, n: this.nodeId, t: 'sub', id: 0, topic });
    for (const p of this.pending.values()) this.post(p.message);
  }

  private disconnected(reason: string): void {
    if (this._state !== 'open' && this._state !== 'joining') return;
    const topics = this.host ? [...this.host.subscribedTopics()] : [];
    this.stop('disconnected');
    const error = new BrokerError('ERR_BROKER_DISCONNECTED', `node ${this.nodeId} lost the cluster (${reason}): publications to and from other nodes on these topics are lost from now on`, topics);
    this.failPending(error);
    this.host?.error(error);
  }

  private stop(state: ClusterBrokerState): void {
    this._state = state;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    if (state === 'closed' || state === 'disconnected') {
      process.off('message', this.onMessage);
      process.off('disconnect', this.onDisconnect);
    }
  }

  private request(message: Extract<ToRelay, { t: 'sub' | 'unsub' | 'query' | 'hist' }>): Promise<Extract<ToWorker, { t: 'ack' | 'reply' | 'range' }>> {
    this.check(message.t === 'query' ? 'query presence' : message.t === 'sub' ? 'subscribe' : message.t === 'hist' ? 'read history' : 'unsubscribe');
    if (this._state === 'disconnected') return Promise.reject(new BrokerError('ERR_BROKER_DISCONNECTED', `node ${this.nodeId} is disconnected from the cluster`, 'topic' in message ? [message.topic] : []));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(message.id);
        const what = message.t === 'query' ? 'presence query' : message.t === 'hist' ? `history request of topic '${message.topic}'` : `${message.t} of topic '${message.topic}'`;
        reject(new BrokerError(message.t === 'query' ? 'ERR_BROKER_TIMEOUT' : 'ERR_BROKER_SUBSCRIBE', `no answer from the primary to the ${what} within ${this.requestTimeoutMs} ms`, 'topic' in message ? [message.topic] : []));
      }, this.requestTimeoutMs);
      timer.unref();
      this.pending.set(message.id, { message, resolve, reject, timer });
      this.post(message);
    });
  }

  private query(kind: QueryKind): Promise<Extract<ToWorker, { t: 'reply' }>> {
    return this.request({ [TAG]: PROTOCOL_VERSION, n: this.nodeId, t: 'query', id: this.nextId++, ...kind }) as Promise<Extract<ToWorker, { t: 'reply' }>>;
  }

  private failPending(error: BrokerError): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(error);
    }
    this.pending.clear();
  }

  private check(operation: string): void {
    if (this._state === 'unattached' || this._state === 'closed') throw new InvalidStateError(`${operation} through the cluster broker`, this._state === 'closed' ? 'closed' : 'not attached to a server');
  }

  private post(m: ToRelay, done?: () => void): void {
    if (!process.connected) {
      done?.();
      return;
    }
    process.send!(m, undefined, undefined, done);
  }
}

/** An 'advanced' channel gives Buffers back as Buffers; a plain Uint8Array is wrapped, not copied. */
function asBuffers(p: Publication): Publication {
  const b = p.payload as Uint8Array;
  return Buffer.isBuffer(b) ? p : { ...p, payload: Buffer.from(b.buffer, b.byteOffset, b.byteLength) };
}

/** A node:cluster broker for this worker's server: createServer({ broker: createClusterBroker() }). */
export function createClusterBroker(options: ClusterBrokerOptions = {}): ClusterBroker {
  return new ClusterBroker(options);
}
