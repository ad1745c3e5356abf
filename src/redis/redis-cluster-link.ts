import type { BUFFERS, RedisLink } from './redis-link.js';
import { keySlot } from './redis-slot.js';

type Listener = (message: Buffer, channel: Buffer) => unknown;

/** A cluster node as node-redis names it in its per-node events. */
export interface ClusterNodeInfo {
  readonly host: string;
  readonly port: number;
}

/**
 * What the broker uses of a node-redis cluster client (createCluster),
 * narrowed as RedisLink is for a plain client.
 */
export interface ClusterClient {
  readonly isReady: boolean;
  readonly isOpen: boolean;
  connect(): Promise<unknown>;
  sendCommand<T = unknown>(firstKey: string | Buffer | undefined, isReadonly: boolean | undefined, args: ReadonlyArray<string | Buffer>, options?: { typeMapping?: typeof BUFFERS }): Promise<T>;
  sSubscribe(channel: string, listener: Listener, bufferMode: true): Promise<void>;
  sUnsubscribe(channel: string, listener?: Listener, bufferMode?: true): Promise<void>;
  getNodeClientForKey(key: string): Promise<{ sendCommand<T = unknown>(args: ReadonlyArray<string | Buffer>): Promise<T> }>;
  getSlotMaster(slot: number): ClusterNodeInfo | undefined;
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'connect', listener: () => void): unknown;
  on(event: 'node-error', listener: (err: Error, node: ClusterNodeInfo) => void): unknown;
  on(event: 'node-ready', listener: (node: ClusterNodeInfo) => void): unknown;
  close(): Promise<void>;
  destroy(): void;
}

export interface ClusterLinkOptions {
  /**
   * A key of the slot that keyless commands of this link go to (CLIENT ID,
   * CLIENT UNBLOCK): the slot of the durable topics' streams, so that they
   * reach the node where the reader's XREAD is blocked.
   */
  readonly anchorKey: string;
  /** Ready only while every node this link has connected to is up (the reader: its one node is the streams' node). Default false: ready once the cluster is discovered. */
  readonly readyNeedsEveryNode?: boolean;
  /** Backoff between attempts to discover the cluster (node-redis tries the root nodes once per connect()). */
  readonly retryDelay: (attempt: number) => number;
}

/**
 * A node-redis cluster client behind the RedisLink face, so the broker's
 * code is the same for one server and for a cluster:
 *
 * - each command goes to the node of its key's slot: the routing key is
 *   taken from the command as the broker spells it (XADD, SPUBLISH, HGET,
 *   XINFO STREAM: the first argument after the name; EVAL: its first key;
 *   XREAD: the first stream), and every multi-key command the broker sends
 *   has its keys in one slot (one hash tag), as a cluster requires;
 * - CLIENT commands go to the anchor key's node, not to a random one;
 * - plain pub/sub is refused: in a cluster a PUBLISH goes to every node,
 *   which is what sharded pub/sub avoids (the broker requires it);
 * - per-node failures are passed on (onNode), so that the broker can name the
 *   topics of the shard that was lost (test/redis/redis-cluster.test.ts,
 *   "a killed shard").
 */
export class ClusterLink implements RedisLink {
  private readonly cluster: ClusterClient;
  private readonly o: ClusterLinkOptions;
  /** Channels subscribed through this link (node-redis keeps them across reconnects), with their listeners. */
  private readonly channels = new Map<string, Listener>();
  private readonly down = new Set<string>();
  private readonly readyListeners: Array<() => void> = [];
  private readonly errorListeners: Array<(err: Error) => void> = [];
  private readonly nodeListeners: Array<(address: string, err: Error | null) => void> = [];
  private discovered = false;
  private stopped = false;

  constructor(cluster: ClusterClient, options: ClusterLinkOptions) {
    this.cluster = cluster;
    this.o = options;
    cluster.on('error', (err) => {
      for (const l of this.errorListeners) l(err);
    });
    cluster.on('connect', () => {
      this.discovered = true;
      if (this.isReady) this.emitReady();
    });
    cluster.on('node-error', (err, node) => {
      const address = `${node.host}:${node.port}`;
      const wasReady = this.isReady;
      this.down.add(address);
      for (const l of this.nodeListeners) l(address, err);
      if (wasReady && !this.isReady) for (const l of this.errorListeners) l(err);
    });
    cluster.on('node-ready', (node) => {
      const address = `${node.host}:${node.port}`;
      const wasReady = this.isReady;
      const cameBack = this.down.delete(address);
      for (const l of this.nodeListeners) l(address, null);
      // 'ready' again when a lost node is back, as a plain client says it after a reconnect: the broker then sends
      // again what that node did not acknowledge (durable publications) and subscribes again what is missing.
      if (this.isReady && (cameBack || !wasReady)) this.emitReady();
    });
  }

  get isReady(): boolean {
    return this.discovered && this.cluster.isReady && (!this.o.readyNeedsEveryNode || this.down.size === 0);
  }

  get isOpen(): boolean {
    return this.cluster.isOpen;
  }

  /** Discovers the cluster, trying again with backoff until it works or the link is destroyed (node-redis tries once). */
  async connect(): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await this.cluster.connect();
        return;
      } catch (err) {
        if (this.stopped) return;
        // node-redis emitted 'error' for each root node it could not reach; this says the round failed.
        const e = err instanceof Error ? err : new Error(String(err));
        for (const l of this.errorListeners) l(e);
        await new Promise((r) => setTimeout(r, this.o.retryDelay(attempt)).unref());
      }
    }
  }

  sendCommand<T = unknown>(args: ReadonlyArray<string | Buffer>, options?: { typeMapping?: typeof BUFFERS }): Promise<T> {
    const name = String(args[0]).toUpperCase();
    if (name === 'CLIENT') return this.cluster.getNodeClientForKey(this.o.anchorKey).then((c) => c.sendCommand<T>(args));
    return this.cluster.sendCommand<T>(routingKey(name, args), false, args, options);
  }

  subscribe(): Promise<void> {
    return Promise.reject(new Error('plain pub/sub is not used on a Redis Cluster (a PUBLISH there goes to every node): sharded pub/sub only'));
  }

  unsubscribe(): Promise<void> {
    return this.subscribe();
  }

  async sSubscribe(channel: string, listener: Listener, bufferMode: true): Promise<void> {
    await this.cluster.sSubscribe(channel, listener, bufferMode);
    this.channels.set(channel, listener);
  }

  async sUnsubscribe(channel?: string): Promise<void> {
    const targets = channel === undefined ? [...this.channels.keys()] : [channel];
    await Promise.all(
      targets.map(async (ch) => {
        await this.cluster.sUnsubscribe(ch);
        this.channels.delete(ch);
      }),
    );
  }

  getPubSubListeners(type: 'CHANNELS' | 'SHARDED'): Map<string, unknown> {
    return type === 'SHARDED' ? new Map(this.channels) : new Map();
  }

  /** host:port of the node that serves `key`'s slot, or null before discovery. */
  nodeOf(key: string): string | null {
    try {
      const m = this.cluster.getSlotMaster(keySlot(key));
      return m ? `${m.host}:${m.port}` : null;
    } catch {
      return null;
    }
  }

  /** Per-node events: `err` set when a node's connection failed, null when it is (back) up. */
  onNode(listener: (address: string, err: Error | null) => void): void {
    this.nodeListeners.push(listener);
  }

  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'ready', listener: () => void): this;
  on(event: 'error' | 'ready', listener: ((err: Error) => void) | (() => void)): this {
    if (event === 'error') this.errorListeners.push(listener as (err: Error) => void);
    else this.readyListeners.push(listener as () => void);
    return this;
  }

  close(): Promise<void> {
    this.stopped = true;
    return this.cluster.close();
  }

  destroy(): void {
    this.stopped = true;
    this.cluster.destroy();
  }

  private emitReady(): void {
    for (const l of this.readyListeners) l();
  }
}

/** The key a command of the broker is routed by (see the class comment). */
function routingKey(name: string, args: ReadonlyArray<string | Buffer>): string | Buffer | undefined {
  switch (name) {
    case 'EVAL':
      return Number(args[2]) > 0 ? args[3] : undefined;
    case 'XREAD': {
      const i = args.findIndex((a) => String(a).toUpperCase() === 'STREAMS');
      return i >= 0 ? args[i + 1] : undefined;
    }
    case 'XINFO':
      return args[2];
    default:
      return args[1];
  }
}
