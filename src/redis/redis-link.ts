import { ErrorReply, RESP_TYPES } from 'redis';

/**
 * What the Redis broker uses of a node-redis client: narrowed to these few
 * members so that the broker's code does not depend on node-redis's command
 * typings (its generics are large), and so that it is plain which calls it
 * makes. Every command goes through sendCommand with its words spelled out.
 */
export interface RedisLink {
  readonly isReady: boolean;
  readonly isOpen: boolean;
  connect(): Promise<unknown>;
  sendCommand<T = unknown>(args: ReadonlyArray<string | Buffer>, options?: { typeMapping?: typeof BUFFERS }): Promise<T>;
  subscribe(channel: string, listener: (message: Buffer, channel: Buffer) => unknown, bufferMode: true): Promise<void>;
  unsubscribe(channel?: string): Promise<void>;
  sSubscribe(channel: string, listener: (message: Buffer, channel: Buffer) => unknown, bufferMode: true): Promise<void>;
  sUnsubscribe(channel?: string): Promise<void>;
  getPubSubListeners(type: 'CHANNELS' | 'SHARDED'): Map<string, unknown>;
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'ready', listener: () => void): unknown;
  close(): Promise<void>;
  destroy(): void;
}

/** Replies as Buffers (payloads are bytes, not text), and RESP3 maps as flat [key, value, ...] arrays. */
export const BUFFERS = {
  [RESP_TYPES.BLOB_STRING]: Buffer,
  [RESP_TYPES.SIMPLE_STRING]: Buffer,
  [RESP_TYPES.MAP]: Array,
} as const;

/** An answer of Redis itself (WRONGTYPE, NOPERM, OOM...), as opposed to a lost or closed connection. */
export function isReplyError(err: unknown): boolean {
  return err instanceof ErrorReply;
}

/**
 * An answer of Redis that means "not now" rather than "never": a cluster node
 * that has not yet found the cluster whole after a restart (CLUSTERDOWN), a
 * slot being moved (TRYAGAIN), a server loading its data (LOADING), a replica
 * without its master (MASTERDOWN), a script running (BUSY). What met one is
 * tried again, not given up (test/redis/redis-cluster.test.ts, "streams'
 * shard is down").
 */
export function isTransientReply(err: unknown): boolean {
  return err instanceof ErrorReply && /^(CLUSTERDOWN|TRYAGAIN|LOADING|MASTERDOWN|BUSY)\b/.test(err.message);
}

/** A message for a failure of any kind. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Compares two stream ids ("ms-seq"): negative, 0 or positive. */
export function compareStreamIds(a: string, b: string): number {
  const [am, as] = splitId(a);
  const [bm, bs] = splitId(b);
  return am !== bm ? (am < bm ? -1 : 1) : as < bs ? -1 : as > bs ? 1 : 0;
}

function splitId(id: string): [bigint, bigint] {
  const m = /^(\d+)-(\d+)$/.exec(id);
  return m ? [BigInt(m[1]), BigInt(m[2])] : [0n, 0n];
}
