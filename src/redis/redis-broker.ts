import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { createClient, createCluster, type RedisClientOptions, type RedisClusterOptions, type RedisFunctions, type RedisModules, type RedisScripts, type RespVersions, type TypeMapping } from 'redis';
import { InvalidArgumentError, InvalidStateError } from '../core/errors.js';
import { BrokerError, type Broker, type BrokerHost, type BrokerNodeInfo, type Publication } from '../pubsub/broker.js';
import { decodePublication, encodePublicationBytes, HEADER_BYTES, MAX_ORIGIN_BYTES } from './redis-codec.js';
import { ClusterLink, type ClusterClient } from './redis-cluster-link.js';
import { DurableOutbox, StreamReader } from './redis-durable.js';
import { isReplyError, isTransientReply, messageOf, type RedisLink } from './redis-link.js';
import { HEARTBEAT_SCRIPT, MARK_DOWN_SCRIPT, PresenceWatch, REGISTRY_SCRIPT, formatEntry, isAlive, parseEntry, parseRegistry, type NodeEntry } from './redis-presence.js';

type AnyClientOptions = RedisClientOptions<RedisModules, RedisFunctions, RedisScripts, RespVersions, TypeMapping>;
type AnyClusterOptions = RedisClusterOptions<RedisModules, RedisFunctions, RedisScripts, RespVersions, TypeMapping>;

/** What the broker reads of a node-redis client given as `redis` (what createClient() returns, whatever its modules or RESP). */
interface RedisClientSource {
  readonly options: Pick<AnyClientOptions, 'socket' | 'url'> | undefined;
  duplicate(overrides: Partial<AnyClientOptions>): unknown;
}

/** What the broker reads of a node-redis cluster client given as `redis` (what createCluster() returns). */
interface RedisClusterSource {
  readonly _options: Pick<AnyClusterOptions, 'defaults' | 'rootNodes'>;
  duplicate(overrides: Partial<AnyClusterOptions>): unknown;
  getSlotMaster(slot: number): unknown;
}

function isClusterSource(source: RedisClientSource | RedisClusterSource): source is RedisClusterSource {
  return typeof (source as Partial<RedisClusterSource>).getSlotMaster === 'function';
}

/** The node-redis options the broker passes on to its connections (TLS, credentials, database...). */
export type RedisClientSettings = Pick<RedisClientOptions, 'socket' | 'username' | 'password' | 'database' | 'pingInterval'>;

export interface RedisBrokerOptions {
  /** The Redis server. Default `redis://127.0.0.1:6379`. */
  url?: string;
  /**
   * A Redis Cluster instead of one server: the URLs of one or more of its nodes, from which the broker
   * discovers the others (give several: any one that answers will do). Pub/sub is then sharded (see
   * `sharded`) and durable topics' streams share one hash tag. Not with `url`.
   */
  cluster?: readonly string[];
  /**
   * A node-redis client (createClient) or cluster client (createCluster), instead of `url`, `cluster` and
   * `client`: the broker's connections are copies of it (duplicate()) with the broker's own reconnect strategy
   * and offline queue. The broker neither connects, uses nor closes the one given. A cluster client is as `cluster`.
   */
  redis?: RedisClientSource | RedisClusterSource;
  /** More node-redis client options (`socket` for TLS or timeouts, `username`, `password`, `database`, `pingInterval`). The broker sets its own reconnect strategy. */
  client?: RedisClientSettings;
  /** This node's id, unique among the nodes, 1 to 255 bytes of UTF-8. Default `<hostname>-<pid>-<6 random hex digits>`. */
  nodeId?: string;
  /** Prefix of the pub/sub channel of each topic (channel = prefix + topic). Default `sockeye:`. */
  channelPrefix?: string;
  /** Prefix of the broker's keys: the streams of durable topics and the presence hashes. Default `sockeye:`. */
  keyPrefix?: string;
  /**
   * Sharded pub/sub (SPUBLISH, SSUBSCRIBE; Redis 7) instead of PUBLISH, SUBSCRIBE: what a Redis Cluster needs to keep a
   * message on its channel's shard. Default false for one server, true on a cluster (`cluster`, or a cluster client as `redis`), where false is refused
   * (ERR_BROKER_OPTION): a plain PUBLISH in a cluster goes to every node of it.
   */
  sharded?: boolean;
  /** The durable topics (at least once, through Redis Streams): a list, or a test. Every node must be given the same. Default none. */
  durable?: readonly string[] | ((topic: string) => boolean);
  /** Entries a durable topic's stream keeps (XADD MAXLEN ~ N). Default 10000. */
  streamMaxLength?: number;
  /** How often each node writes its heartbeat (and its subscriber counts); a node is down after two missed. Default 1000 ms, at least 10. */
  heartbeatMs?: number;
  /** How long a subscribe, unsubscribe or presence query may take. Default 5000 ms. */
  requestTimeoutMs?: number;
  /** Most bytes of this node's publications handed to Redis and not yet acknowledged (durable ones included); past it a publication is not sent (ERR_BROKER_BACKLOG). Default 64 MiB. */
  maxQueuedBytes?: number;
  /** Longest wait between two reconnect attempts (they start at 50 ms and double). Default 2000 ms. */
  reconnectMaxDelayMs?: number;
  /** How long close() waits for unacknowledged publications and for Redis to answer before it drops the connections. Default 2000 ms. */
  closeTimeoutMs?: number;
}

/** connecting (never connected yet), open (every connection up), disconnected (one is down and reconnecting), closing, closed. */
export type RedisBrokerState = 'connecting' | 'open' | 'disconnected' | 'closing' | 'closed';

const DEFAULTS = {
  url: 'redis://127.0.0.1:6379',
  channelPrefix: 'sockeye:',
  keyPrefix: 'sockeye:',
  streamMaxLength: 10_000,
  heartbeatMs: 1000,
  requestTimeoutMs: 5000,
  maxQueuedBytes: 64 * 1024 * 1024,
  reconnectMaxDelayMs: 2000,
  closeTimeoutMs: 2000,
} as const;

/** XREAD COUNT: entries taken per stream per read. */
const READ_BATCH = 256;
/** XREAD BLOCK: a new durable topic is read at the latest this late when CLIENT UNBLOCK is refused (ACL). */
const READ_BLOCK_MS = 1000;
/** Bytes of a publication besides its payload and origin, counted against maxQueuedBytes. */
const OVERHEAD_BYTES = HEADER_BYTES + 64;

interface Waiter {
  resolve(): void;
  reject(error: Error): void;
}

/**
 * The Redis broker: the nodes of a deployment (processes, machines) share
 * topics through one Redis 7, or a Redis Cluster. Each node has up to three
 * links: one for commands (PUBLISH, XADD, heartbeats, presence), one
 * subscribed to the channels of its topics, and, with durable topics, one
 * blocked in XREAD. On a cluster each link is a node-redis cluster client
 * (redis-cluster-link.ts) with a connection to each node it needs, pub/sub is
 * sharded, and every command stays within one slot (streamKey(), the
 * {presence} tag).
 *
 * Delivery is at most once by default: a publication is a PUBLISH (or
 * SPUBLISH) of its bytes (redis-codec.ts) to the topic's channel; Redis
 * sends it to the nodes subscribed at that moment, in order per connection,
 * so per publisher. A lost connection loses what was in flight: the node
 * reports ERR_BROKER_DISCONNECTED naming its topics, reconnects with backoff
 * and subscribes its topics again (its host's subscribedTopics()). A durable
 * topic is at least once (redis-durable.ts).
 *
 * Presence: every heartbeatMs each node writes its entry and its subscriber
 * counts (redis-presence.ts) and looks at the others'; one that missed two
 * heartbeats is reported down (host.nodeDown), one that closed is forgotten
 * (host.nodeLeft).
 */
export class RedisBroker implements Broker {
  readonly nodeId: string;
  private host: BrokerHost | null = null;
  private attached = false;
  private closing: Promise<void> | null = null;
  private closed = false;
  private readonly o: Required<Omit<RedisBrokerOptions, 'client' | 'nodeId' | 'durable' | 'sharded' | 'cluster' | 'redis'>> & { sharded: boolean };
  /** On a Redis Cluster (the cluster option, or a cluster client as redis). */
  private readonly clustered: boolean;
  /** Where Redis is, for messages (passwords hidden). */
  private readonly where: string;
  /** The subscriber link when on a cluster: it says which node serves a channel. */
  private readonly subCluster: ClusterLink | null = null;
  /** Cluster nodes (host:port) whose loss the subscriber link reported and that are not back yet. */
  private readonly lostNodes = new Set<string>();
  private readonly isDurable: (topic: string) => boolean;
  private readonly cmd: RedisLink;
  private readonly sub: RedisLink;
  private readonly reader: RedisLink | null;
  private readonly links: RedisLink[];
  private readonly outbox: DurableOutbox;
  private readonly streams: StreamReader | null;
  private readonly watch: PresenceWatch;
  /** One listener per subscribed channel, the same function at every (re)subscribe, so node-redis never holds two. */
  private readonly listeners = new Map<string, (message: Buffer) => void>();
  private readonly waiters = new Map<RedisLink, Set<Waiter>>();
  private readonly everReady = new Set<RedisLink>();
  /** Bytes of non-durable publications handed to Redis and not yet acknowledged. */
  private inFlightBytes = 0;
  private readonly inFlightDrained: Array<() => void> = [];
  /** Topics whose publications failed since the last report, reported together (one error per burst, not per message). */
  private readonly lostTopics = new Set<string>();
  private lostReason = '';
  private lostTimer: NodeJS.Immediate | null = null;
  private subscriberLinkUp = false;
  /** A link loss was reported since the last heartbeat: missing heartbeats are not reported again. */
  private lossReported = false;
  private heartbeat: NodeJS.Timeout | null = null;
  private beating = false;
  private lastBeatAt = 0;
  private beatFailed = false;
  private firstBeat = false;
  private readyPromise: Promise<void>;
  /** The first failure to reach Redis was reported to the server (once: node-redis retries without end). */
  private unreachableReported = false;
  private settleReady: Waiter | null = null;

  constructor(options: RedisBrokerOptions = {}) {
    this.nodeId = options.nodeId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    const idBytes = Buffer.byteLength(this.nodeId, 'utf8');
    if (idBytes === 0 || idBytes > MAX_ORIGIN_BYTES || /\s/.test(this.nodeId)) {
      throw new InvalidArgumentError('ERR_BROKER_NODE_ID', `nodeId is 1 to ${MAX_ORIGIN_BYTES} bytes of UTF-8 without white space (got '${this.nodeId}')`);
    }
    const source = options.redis;
    const clusterUrls = options.cluster === undefined ? null : [...options.cluster];
    if (source !== undefined) {
      if (typeof source !== 'object' || source === null || typeof source.duplicate !== 'function') throw new InvalidArgumentError('ERR_BROKER_OPTION', 'redis is a node-redis client (createClient) or cluster client (createCluster)');
      const others = (['url', 'cluster', 'client'] as const).filter((k) => options[k] !== undefined);
      if (others.length > 0) throw new InvalidArgumentError('ERR_BROKER_OPTION', `redis and ${others.join(', ')} are exclusive: the broker takes its connection settings from the client given as redis`);
    }
    this.clustered = clusterUrls !== null || (source !== undefined && isClusterSource(source));
    if (clusterUrls) {
      if (clusterUrls.length === 0 || clusterUrls.some((u) => typeof u !== 'string' || u === '')) throw new InvalidArgumentError('ERR_BROKER_OPTION', 'cluster is a list of one or more node URLs');
      if (options.url !== undefined) throw new InvalidArgumentError('ERR_BROKER_OPTION', 'url and cluster are exclusive: url for one Redis server, cluster for the nodes of a Redis Cluster');
    }
    if (this.clustered) {
      if (options.sharded === false) {
        throw new InvalidArgumentError(
          'ERR_BROKER_OPTION',
          'sharded: false is refused on a Redis Cluster: a plain PUBLISH in a Redis Cluster is sent to every node of the cluster, so pub/sub would not scale with the shards; leave sharded out (it is true on a cluster)',
        );
      }
    }
    this.o = {
      url: options.url ?? DEFAULTS.url,
      channelPrefix: options.channelPrefix ?? DEFAULTS.channelPrefix,
      keyPrefix: options.keyPrefix ?? DEFAULTS.keyPrefix,
      sharded: options.sharded ?? this.clustered,
      streamMaxLength: options.streamMaxLength ?? DEFAULTS.streamMaxLength,
      heartbeatMs: options.heartbeatMs ?? DEFAULTS.heartbeatMs,
      requestTimeoutMs: options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
      maxQueuedBytes: options.maxQueuedBytes ?? DEFAULTS.maxQueuedBytes,
      reconnectMaxDelayMs: options.reconnectMaxDelayMs ?? DEFAULTS.reconnectMaxDelayMs,
      closeTimeoutMs: options.closeTimeoutMs ?? DEFAULTS.closeTimeoutMs,
    };
    for (const [name, min] of [['heartbeatMs', 10], ['streamMaxLength', 1], ['requestTimeoutMs', 1], ['maxQueuedBytes', 1], ['reconnectMaxDelayMs', 1], ['closeTimeoutMs', 0]] as const) {
      const v = this.o[name];
      if (!(Number.isFinite(v) && v >= min)) throw new InvalidArgumentError('ERR_BROKER_OPTION', `${name} is a number of at least ${min} (got ${String(v)})`);
    }
    const durable = options.durable;
    if (typeof durable === 'function') this.isDurable = durable;
    else {
      const set = new Set(durable ?? []);
      this.isDurable = (topic) => set.has(topic);
    }
    const seeds = clusterUrls ?? (source && isClusterSource(source) ? source._options.rootNodes.map((n) => n.url ?? 'a root node without url') : null);
    const url = source && !isClusterSource(source) ? (source.options?.url ?? 'the client given as redis') : this.o.url;
    this.where = seeds ? `the Redis Cluster nodes ${seeds.map(redactUrl).join(', ')}` : redactUrl(url);
    this.watch = new PresenceWatch(this.nodeId);
    this.readyPromise = this.armReady();

    const maxDelay = this.o.reconnectMaxDelayMs;
    const backoff = (retries: number) => Math.min(50 * 2 ** retries, maxDelay) + Math.floor(Math.random() * 50);
    const make = (role: 'cmd' | 'sub' | 'read'): RedisLink => {
      // The user's settings: the client option, or those of the client given as redis (a cluster's per-node defaults).
      const base: Partial<AnyClientOptions> | undefined = source ? (isClusterSource(source) ? source._options.defaults : source.options) : options.client;
      const settings = {
        ...base,
        // Commands while a link is down fail at once (and are reported) instead of piling up unbounded (S3);
        // durable publications wait in the bounded outbox instead.
        disableOfflineQueue: true,
        name: `sockeye:${role}:${this.nodeId}`,
        socket: {
          ...(base?.socket as object | undefined),
          // Always reconnect (node-redis gives up on a socket timeout by default): 50 ms doubling to maxDelay, with jitter
          // so that the nodes of a deployment do not all come back in the same millisecond.
          reconnectStrategy: backoff,
        },
      } as Partial<AnyClientOptions>;
      // The subscriber connects to the nodes of its channels only, the reader to the streams' node only.
      const clusterOverrides = { defaults: settings, minimizeConnections: role !== 'cmd' };
      let link: RedisLink;
      if (this.clustered) {
        const cluster = source
          ? (source as RedisClusterSource).duplicate(clusterOverrides)
          : // Every node's connection gets the defaults: node-redis does not carry rootNodes' settings over to the nodes it discovers.
            createCluster({ rootNodes: clusterUrls!.map((u) => ({ url: u })), ...clusterOverrides } as RedisClusterOptions);
        link = new ClusterLink(cluster as unknown as ClusterClient, { anchorKey: this.streamKey(''), readyNeedsEveryNode: role === 'read', retryDelay: backoff });
      } else {
        link = (source ? (source as RedisClientSource).duplicate(settings) : createClient({ ...settings, url: this.o.url } as RedisClientOptions)) as unknown as RedisLink;
      }
      link.on('error', (err) => this.linkError(link, err));
      link.on('ready', () => this.linkReady(link));
      return link;
    };
    this.cmd = make('cmd');
    this.sub = make('sub');
    if (this.sub instanceof ClusterLink) {
      this.subCluster = this.sub;
      this.sub.onNode((address, err) => this.subscriberNode(address, err));
    }
    this.reader = durable === undefined ? null : make('read');
    this.links = this.reader ? [this.cmd, this.sub, this.reader] : [this.cmd, this.sub];
    this.outbox = new DurableOutbox({
      link: this.cmd,
      maxLength: this.o.streamMaxLength,
      refused: (p, err) => this.lostPublication(p.topic, `Redis refused it: ${messageOf(err)}`),
    });
    this.streams = this.reader
      ? new StreamReader({
          nodeId: this.nodeId,
          reader: this.reader,
          link: this.cmd,
          batch: READ_BATCH,
          blockMs: READ_BLOCK_MS,
          keyOf: (topic) => this.streamKey(topic),
          deliver: (p) => this.deliver(p),
          malformed: (topic, reason) => this.malformed(topic, reason),
          lost: (topics, reason) => this.report(new BrokerError('ERR_BROKER_BACKLOG', `node ${this.nodeId}: ${reason}: lost on these topics`, topics)),
          failed: (err) => this.report(new BrokerError('ERR_BROKER_DISCONNECTED', `node ${this.nodeId} could not read its durable topics: ${messageOf(err)}`, [], undefined, { cause: err })),
        })
      : null;
    for (const link of this.links) link.connect().catch(() => undefined); // failures come as 'error' events; close() ends the attempts
  }

  /** Where the broker's links are. */
  get state(): RedisBrokerState {
    if (this.closed) return 'closed';
    if (this.closing) return 'closing';
    if (this.everReady.size < this.links.length) return 'connecting';
    return this.links.every((l) => l.isReady) ? 'open' : 'disconnected';
  }

  /** Resolves once every connection is up and this node is in the registry (its first heartbeat); rejects if the broker closes first. */
  ready(): Promise<void> {
    return this.readyPromise;
  }

  attach(host: BrokerHost): void {
    if (this.closing) throw new InvalidStateError('attach a broker', 'closed');
    if (this.attached) throw new InvalidStateError('attach a broker', 'attached to a server');
    this.attached = true;
    this.host = host;
  }

  publish(p: Publication): void {
    this.check('publish');
    const size = p.payload.length + OVERHEAD_BYTES + p.origin.length;
    if (this.inFlightBytes + this.outbox.bytes + size > this.o.maxQueuedBytes) {
      this.report(new BrokerError('ERR_BROKER_BACKLOG', `publication ${p.seq} on topic '${p.topic}' not sent to other nodes: over ${this.o.maxQueuedBytes} bytes wait for Redis`, [p.topic]));
      return;
    }
    if (this.isDurable(p.topic)) {
      this.outbox.push(p, this.streamKey(p.topic), size);
      return;
    }
    if (!this.cmd.isReady) {
      this.lostPublication(p.topic, 'not connected to Redis');
      return;
    }
    this.inFlightBytes += size;
    this.cmd.sendCommand([this.o.sharded ? 'SPUBLISH' : 'PUBLISH', this.channel(p.topic), encodePublicationBytes(p)]).then(
      () => this.settled(size),
      (err: unknown) => {
        this.settled(size);
        this.lostPublication(p.topic, messageOf(err));
      },
    );
  }

  subscribe(topic: string): Promise<void> {
    this.check('subscribe');
    const work = this.isDurable(topic)
      ? this.untilDone(this.cmd, topic, () => (this.streams!.has(topic) ? Promise.resolve() : this.streams!.add(topic)))
      : this.untilDone(this.sub, topic, () => this.subscribeChannel(topic));
    return this.deadline(work, topic, 'subscribe to');
  }

  unsubscribe(topic: string): Promise<void> {
    this.check('unsubscribe');
    if (this.isDurable(topic)) {
      this.streams!.remove(topic);
      return Promise.resolve();
    }
    this.listeners.delete(topic);
    // Down: node-redis subscribes the channel again when it reconnects, and reconcile() then drops it.
    if (!this.sub.isReady) return Promise.resolve();
    const ch = this.channel(topic);
    const work = (this.o.sharded ? this.sub.sUnsubscribe(ch) : this.sub.unsubscribe(ch)).catch((err: unknown) => {
      if (isReplyError(err)) throw err;
    });
    return this.deadline(work, topic, 'unsubscribe from');
  }

  async subscriberCount(topic: string): Promise<number> {
    this.check('count subscribers');
    const host = this.host!;
    return this.request([topic], async () => {
      const { now, registry } = await this.registry();
      const others = [...registry.values()].filter((e) => e.id !== this.nodeId && isAlive(e, now));
      const counts = await Promise.all(others.map((e) => this.cmd.sendCommand<unknown>(['HGET', this.countsKey(e.id), topic])));
      // This node's own count is live; the others' are as of their last heartbeat.
      let n = host.subscriberCount(topic);
      for (const c of counts) if (c !== null && c !== undefined) n += Number(String(c)) || 0;
      return n;
    });
  }

  async nodes(): Promise<readonly BrokerNodeInfo[]> {
    this.check('list nodes');
    return this.request([], async () => {
      const { now, registry } = await this.registry();
      return [...registry.values()].filter((e) => isAlive(e, now)).map((e) => ({ id: e.id, pid: e.pid, lastSeen: e.lastSeen }));
    });
  }

  /**
   * Leaves in good order, within closeTimeoutMs: waits for this node's
   * publications to be acknowledged (reporting any that were not), marks
   * its presence entry as left and removes its counts, unsubscribes, and
   * closes its connections (destroyed if Redis does not answer in time), so
   * nothing of it keeps the process alive. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  // ------------------------------------------------------------ internals

  private async shutdown(): Promise<void> {
    const deadline = Date.now() + this.o.closeTimeoutMs;
    const left = () => Math.max(0, deadline - Date.now());
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    if (this.cmd.isReady) await bounded(Promise.all([this.outbox.whenDrained(), this.nonDurableDrained()]), left());
    const unsent = this.outbox.takeAll();
    if (unsent.length > 0) {
      const topics = [...new Set(unsent.map((p) => p.topic))];
      this.report(new BrokerError('ERR_BROKER_DISCONNECTED', `node ${this.nodeId} closed with ${unsent.length} durable publications not stored in Redis: the other nodes never get them`, topics));
    }
    this.flushLost();
    // The reader is only ever blocked in XREAD: nothing of it is worth waiting for.
    this.reader?.destroy();
    await this.streams?.close();
    if (this.cmd.isReady) await bounded(this.beat('left'), left()).catch(() => undefined);
    if (this.sub.isReady) await bounded(this.o.sharded ? this.sub.sUnsubscribe() : this.sub.unsubscribe(), left()).catch(() => undefined);
    await bounded(Promise.allSettled([this.cmd, this.sub].filter((l) => l.isOpen).map((l) => l.close())), left());
    for (const l of this.links) if (l.isOpen) l.destroy();
    this.closed = true;
    const error = new InvalidStateError('wait for the broker', 'closed');
    for (const set of this.waiters.values()) for (const w of set) w.reject(error);
    this.waiters.clear();
    this.settleReady?.reject(error);
    this.host = null;
  }

  private linkReady(link: RedisLink): void {
    if (this.closing) return;
    this.everReady.add(link);
    const waiting = this.waiters.get(link);
    this.waiters.delete(link);
    for (const w of waiting ?? []) w.resolve();
    if (link === this.cmd) {
      this.outbox.linkReady();
      if (!this.heartbeat) {
        this.heartbeat = setInterval(() => this.tick(), this.o.heartbeatMs);
        this.heartbeat.unref();
      }
      this.tick();
    } else if (link === this.sub) {
      this.subscriberLinkUp = true;
      this.reconcile();
    } else {
      this.streams?.readerReady();
    }
    this.checkReady();
  }

  /** A fresh promise for ready(), settled by the next start-up (resolved) or the next failed attempt before it (rejected). */
  private armReady(): Promise<void> {
    const p = new Promise<void>((resolve, reject) => (this.settleReady = { resolve, reject }));
    // Not awaited by everyone: a broker closed before it was ready must not leave an unhandled rejection.
    p.catch(() => undefined);
    return p;
  }

  private checkReady(): void {
    if (this.firstBeat && this.everReady.size === this.links.length) {
      this.settleReady?.resolve();
      this.settleReady = null;
    }
  }

  private linkError(link: RedisLink, err: Error): void {
    if (this.closing) return;
    if (!this.everReady.has(link)) {
      // Redis cannot be reached at start: a clear error now, not a ready() that never settles. node-redis
      // keeps trying; a later ready() waits for the next attempt (test/redis/redis-scale.test.ts, "unreachable").
      const where = this.where;
      const e = new BrokerError('ERR_BROKER_DISCONNECTED', `node ${this.nodeId} cannot reach Redis at ${where}: ${err.message} (it keeps trying)`, [], undefined, { cause: err });
      if (this.settleReady) {
        this.settleReady.reject(e);
        this.readyPromise = this.armReady();
      }
      if (!this.unreachableReported) {
        this.unreachableReported = true;
        this.report(e);
      }
      return;
    }
    // On a cluster, the subscriber's losses are per node (subscriberNode()); the others' are reported by what fails.
    if (this.clustered) return;
    // node-redis emits 'error' at the loss and at each failed attempt after it: reported at the loss only.
    if (link !== this.sub || !this.subscriberLinkUp) return;
    this.subscriberLinkUp = false;
    const topics = this.host ? [...this.host.subscribedTopics()].filter((t) => !this.isDurable(t)) : [];
    // Durable topics lose nothing here: their streams are read again from where this node was.
    if (topics.length === 0) return;
    this.lossReported = true;
    this.report(
      new BrokerError('ERR_BROKER_DISCONNECTED', `node ${this.nodeId} lost its Redis connection (${err.message}): publications of other nodes on these topics are lost until it is back`, topics, undefined, {
        cause: err,
      }),
    );
  }

  /**
   * On a cluster, the subscriber's connection to one node failed (`err`) or is back (null). A loss is
   * reported once, naming the non-durable topics whose channels that node serves: what other nodes
   * publish on them is lost until it is back, while the topics of the other shards carry on
   * (test/redis/redis-cluster.test.ts, "a killed shard").
   */
  private subscriberNode(address: string, err: Error | null): void {
    if (err === null) {
      this.lostNodes.delete(address);
      return;
    }
    if (this.closing || this.lostNodes.has(address) || !this.everReady.has(this.sub)) return;
    this.lostNodes.add(address);
    const host = this.host;
    const cluster = this.subCluster;
    if (!host || !cluster) return;
    const topics = [...host.subscribedTopics()].filter((t) => !this.isDurable(t) && cluster.nodeOf(this.channel(t)) === address);
    if (topics.length === 0) return;
    this.report(
      new BrokerError(
        'ERR_BROKER_DISCONNECTED',
        `node ${this.nodeId} lost its connection to the Redis Cluster node ${address} (${err.message}): publications of other nodes on these topics, whose channels that node serves, are lost until it is back`,
        topics,
        undefined,
        { cause: err },
      ),
    );
  }

  /**
   * The subscriber link is (back) up, node-redis having subscribed again
   * the channels it had: what the host wants (its subscribedTopics()) and
   * what Redis has are made the same, both ways.
   */
  private reconcile(): void {
    const host = this.host;
    if (!host || this.closing) return;
    const want = new Set<string>();
    for (const t of host.subscribedTopics()) if (!this.isDurable(t)) want.add(t);
    const have = this.sub.getPubSubListeners(this.o.sharded ? 'SHARDED' : 'CHANNELS');
    for (const t of want) {
      if (have.has(this.channel(t))) continue;
      this.untilDone(this.sub, t, () => this.subscribeChannel(t)).catch((err: unknown) => this.report(asBrokerError(err, 'subscribe to', t)));
    }
    const prefix = this.o.channelPrefix;
    for (const ch of [...have.keys()]) {
      const t = ch.startsWith(prefix) ? ch.slice(prefix.length) : null;
      if (t !== null && want.has(t)) continue;
      if (t !== null) this.listeners.delete(t);
      (this.o.sharded ? this.sub.sUnsubscribe(ch) : this.sub.unsubscribe(ch)).catch(() => undefined);
    }
  }

  private subscribeChannel(topic: string): Promise<void> {
    let listener = this.listeners.get(topic);
    if (!listener) this.listeners.set(topic, (listener = (message: Buffer) => this.onChannelMessage(topic, message)));
    const ch = this.channel(topic);
    return this.o.sharded ? this.sub.sSubscribe(ch, listener, true) : this.sub.subscribe(ch, listener, true);
  }

  /**
   * Runs `attempt` on `link` until it is done: a lost link is waited for
   * and the attempt made again, so a subscription asked for during an outage
   * is acknowledged when Redis is back. Ends quietly if the host no longer
   * wants the topic; an answer of Redis (an error reply) ends it as a failure.
   */
  private async untilDone(link: RedisLink, topic: string, attempt: () => Promise<void>): Promise<void> {
    for (;;) {
      if (this.closing) throw new BrokerError('ERR_BROKER_SUBSCRIBE', `the broker of node ${this.nodeId} closed`, [topic]);
      if (this.host && this.host.subscriberCount(topic) === 0) return;
      if (!link.isReady) {
        await this.waitReady(link);
        continue;
      }
      try {
        await attempt();
        return;
      } catch (err) {
        // A transient answer (CLUSTERDOWN while a restarted node rejoins, LOADING) is tried again like a lost link.
        if (isReplyError(err) && !isTransientReply(err)) throw err;
        // Lost during the attempt. Still "ready" means it is not noticed yet: not retried in a tight loop.
        if (link.isReady) await new Promise((r) => setTimeout(r, 50).unref());
      }
    }
  }

  private waitReady(link: RedisLink): Promise<void> {
    if (link.isReady) return Promise.resolve();
    return new Promise((resolve, reject) => {
      let set = this.waiters.get(link);
      if (!set) this.waiters.set(link, (set = new Set()));
      set.add({ resolve, reject });
    });
  }

  private onChannelMessage(topic: string, message: Buffer): void {
    if (!this.host) return;
    const d = decodePublication(topic, message);
    if (!d.ok) this.malformed(topic, `message on channel '${this.channel(topic)}': ${d.reason}`);
    else if (d.publication.origin !== this.nodeId) this.deliver(d.publication);
  }

  private deliver(p: Publication): void {
    const host = this.host;
    if (!host) return;
    try {
      host.receive(p);
    } catch (err) {
      // Never thrown back into node-redis's reply parser: that would cost the connection.
      if (!this.closing) this.report(new BrokerError('ERR_BROKER_MALFORMED', `publication ${p.seq} of node ${p.origin} on topic '${p.topic}' could not be delivered: ${messageOf(err)}`, [p.topic], p.origin, { cause: err }));
    }
  }

  private malformed(topic: string, reason: string): void {
    this.report(new BrokerError('ERR_BROKER_MALFORMED', `node ${this.nodeId} dropped a malformed ${reason}`, [topic]));
  }

  private report(error: BrokerError): void {
    this.host?.error(error);
  }

  /** Publications that did not reach Redis: one report per burst, naming every topic of it. */
  private lostPublication(topic: string, reason: string): void {
    this.lostTopics.add(topic);
    this.lostReason ||= reason;
    this.lostTimer ??= setImmediate(() => this.flushLost());
  }

  private flushLost(): void {
    if (this.lostTimer) clearImmediate(this.lostTimer);
    this.lostTimer = null;
    if (this.lostTopics.size === 0) return;
    const topics = [...this.lostTopics];
    const reason = this.lostReason;
    this.lostTopics.clear();
    this.lostReason = '';
    this.report(new BrokerError('ERR_BROKER_DISCONNECTED', `publications of node ${this.nodeId} on these topics did not reach Redis (${reason}): the other nodes never get them`, topics));
  }

  private settled(size: number): void {
    this.inFlightBytes -= size;
    if (this.inFlightBytes === 0) for (const r of this.inFlightDrained.splice(0)) r();
  }

  private nonDurableDrained(): Promise<void> {
    if (this.inFlightBytes === 0) return Promise.resolve();
    return new Promise((resolve) => this.inFlightDrained.push(resolve));
  }

  private tick(): void {
    if (this.beating || this.closing || !this.cmd.isReady) return;
    this.beating = true;
    this.beat('up')
      .then(
        () => {
          this.beatFailed = false;
        },
        (err: unknown) => {
          // A lost link is reported as such; Redis refusing the script (NOPERM, say) once until it works again.
          if (isReplyError(err) && !this.beatFailed) {
            this.beatFailed = true;
            this.report(new BrokerError('ERR_BROKER_DISCONNECTED', `node ${this.nodeId} could not write its heartbeat: ${messageOf(err)}`, [], undefined, { cause: err }));
          }
        },
      )
      .finally(() => {
        this.beating = false;
      });
  }

  /** One heartbeat (state up) or the goodbye (left): writes this node's entry and counts, then judges the others. */
  private async beat(state: 'up' | 'left'): Promise<void> {
    const host = this.host;
    const args = [this.nodeId, String(process.pid), String(this.o.heartbeatMs), state, String(3 * this.o.heartbeatMs)];
    if (host && state === 'up') for (const t of host.subscribedTopics()) args.push(t, String(host.subscriberCount(t)));
    const reply = await this.cmd.sendCommand<unknown>(['EVAL', HEARTBEAT_SCRIPT, '2', this.registryKey(), this.countsKey(this.nodeId), ...args]);
    if (state === 'left' || !Array.isArray(reply)) return;
    const now = Number(reply[0]);
    const previous = parseEntry(this.nodeId, String(reply[1]));
    const registry = parseRegistry(Array.isArray(reply[2]) ? (reply[2] as unknown[]) : []);
    const local = Date.now();
    // Held up itself (a long synchronous task): the others' silence meanwhile proves nothing.
    const judgeDown = this.lastBeatAt !== 0 && local - this.lastBeatAt <= 1.5 * this.o.heartbeatMs;
    this.lastBeatAt = local;
    // Another node marked this one down (it was stalled, or cut off from Redis): the others forgot its
    // chains and reported it; what it sent or should have received meanwhile may be lost. Not said twice
    // when the lost link was reported already (test/redis/redis-broker.test.ts, "a stalled node").
    // Durable topics lose nothing by it: their streams are read from where this node was.
    const atRisk = host ? [...host.subscribedTopics()].filter((t) => !this.isDurable(t)) : [];
    if (previous?.state === 'down' && !this.lossReported && atRisk.length > 0) {
      this.report(
        new BrokerError(
          'ERR_BROKER_DISCONNECTED',
          `node ${this.nodeId} missed its heartbeats for ${now - previous.lastSeen} ms and was taken for down by the others: publications to and from it on these topics may have been lost`,
          atRisk,
        ),
      );
    }
    this.lossReported = false;
    if (!this.firstBeat) {
      this.firstBeat = true;
      this.checkReady();
    }
    if (!host || this.closing) return;
    const { down, left, mark } = this.watch.judge(now, registry, judgeDown);
    for (const e of mark) this.cmd.sendCommand(['EVAL', MARK_DOWN_SCRIPT, '1', this.registryKey(), e.id, formatEntry(e)]).catch(() => undefined);
    for (const [id, reason] of down) host.nodeDown(id, reason);
    for (const id of left) host.nodeLeft(id);
  }

  private async registry(): Promise<{ now: number; registry: Map<string, NodeEntry> }> {
    const reply = await this.cmd.sendCommand<unknown>(['EVAL', REGISTRY_SCRIPT, '1', this.registryKey()]);
    if (!Array.isArray(reply)) throw new Error('unexpected reply to the registry script');
    return { now: Number(reply[0]), registry: parseRegistry(Array.isArray(reply[1]) ? (reply[1] as unknown[]) : []) };
  }

  /** A presence query: fails at once when the command link is down, and after requestTimeoutMs. */
  private request<T>(topics: string[], run: () => Promise<T>): Promise<T> {
    if (!this.cmd.isReady) return Promise.reject(new BrokerError('ERR_BROKER_DISCONNECTED', `node ${this.nodeId} is not connected to Redis`, topics));
    const timeout = new BrokerError('ERR_BROKER_TIMEOUT', `no answer from Redis to a presence query within ${this.o.requestTimeoutMs} ms`, topics);
    return deadline(
      run().catch((err: unknown) => {
        throw err instanceof BrokerError ? err : new BrokerError('ERR_BROKER_DISCONNECTED', `presence query failed: ${messageOf(err)}`, topics, undefined, { cause: err });
      }),
      this.o.requestTimeoutMs,
      timeout,
    );
  }

  private deadline(work: Promise<void>, topic: string, what: string): Promise<void> {
    const timeout = new BrokerError('ERR_BROKER_SUBSCRIBE', `Redis did not acknowledge the ${what.split(' ')[0]} of topic '${topic}' within ${this.o.requestTimeoutMs} ms (retried at each reconnect)`, [topic]);
    return deadline(
      work.catch((err: unknown) => {
        throw asBrokerError(err, what, topic);
      }),
      this.o.requestTimeoutMs,
      timeout,
    );
  }

  private check(operation: string): void {
    if (this.closing) throw new InvalidStateError(`${operation} through the Redis broker`, 'closed');
    if (!this.host) throw new InvalidStateError(`${operation} through the Redis broker`, 'not attached to a server');
  }

  private channel(topic: string): string {
    return this.o.channelPrefix + topic;
  }

  /**
   * On a cluster the streams share one hash tag, so one slot: a node reads all its durable topics with one
   * XREAD BLOCK on one connection, which a cluster allows only for keys of one slot (CROSSSLOT otherwise).
   * The cost: durable topics live on one shard and do not spread over the others, as plain ones do
   * (test/redis/redis-cluster.test.ts, "durable").
   */
  private streamKey(topic: string): string {
    return this.clustered ? `${this.o.keyPrefix}{streams}:${topic}` : `${this.o.keyPrefix}stream:${topic}`;
  }

  private registryKey(): string {
    return `${this.o.keyPrefix}{presence}:nodes`;
  }

  private countsKey(nodeId: string): string {
    return `${this.o.keyPrefix}{presence}:counts:${nodeId}`;
  }
}

function asBrokerError(err: unknown, what: string, topic: string): BrokerError {
  if (err instanceof BrokerError) return err;
  return new BrokerError('ERR_BROKER_SUBSCRIBE', `could not ${what} topic '${topic}': ${messageOf(err)}`, [topic], undefined, { cause: err });
}

/** `p`, or `timeout` if it has not settled within `ms` (the work itself goes on). */
function deadline<T>(p: Promise<T>, ms: number, timeout: Error): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (t = setTimeout(() => reject(timeout), ms)))]).finally(() => clearTimeout(t));
}

/** A Redis URL without its password, for messages. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.href;
  } catch {
    return 'the configured URL';
  }
}

/** Waits for `p` at most `ms`; never rejects. */
async function bounded(p: Promise<unknown>, ms: number): Promise<void> {
  let t: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => undefined), new Promise<void>((resolve) => (t = setTimeout(resolve, ms)))]);
  clearTimeout(t);
}

/**
 * A Redis broker for this node's server: createServer({ broker: createRedisBroker({ url }) }).
 * It starts connecting at once; `await broker.ready()` before publishing if
 * the first publications matter (before it, non-durable ones are dropped and
 * reported).
 */
export function createRedisBroker(options: RedisBrokerOptions = {}): RedisBroker {
  return new RedisBroker(options);
}
