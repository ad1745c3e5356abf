/**
 * Sockeye nodes with Redis brokers, for the Redis broker's tests (not a test
 * itself): servers on 127.0.0.1 whose sessions subscribe to the topics of
 * their URL (?topics=a,b), each with its own broker and the errors it reported.
 */
import { createClient } from 'redis';
import { BrokerError, connect, type ClientSession, type ServerHandler } from '../../src/index.js';
import { createRedisBroker, type RedisBroker, type RedisBrokerOptions } from '../../src/redis/index.js';
import { startServer, withTimeout, type TestServer } from '../helpers/ws-pair.js';

/** Subscribes each session to the topics of its URL (?topics=a,b). */
export const subscribeFromQuery: ServerHandler = {
  onOpen(session) {
    for (const t of (session.request.query.get('topics') ?? '').split(',')) if (t) session.subscribe(t);
  },
};

export interface TestNode {
  t: TestServer;
  broker: RedisBroker;
  /** What the server's onError got: BrokerErrors, and anything else. */
  errors: BrokerError[];
  other: unknown[];
  clients: ClientSession[];
  /** A client of this node subscribed to `topics`, with every message it gets recorded. */
  client(topics: string[]): Promise<Recorder>;
  close(): Promise<void>;
}

export interface Recorder {
  session: ClientSession;
  got: Array<{ text: string; data: Buffer; binary: boolean }>;
  texts(): string[];
}

export async function startNode(options: RedisBrokerOptions): Promise<TestNode> {
  const broker = createRedisBroker({ heartbeatMs: 100, reconnectMaxDelayMs: 100, requestTimeoutMs: 3000, closeTimeoutMs: 1000, ...options });
  const errors: BrokerError[] = [];
  const other: unknown[] = [];
  const t = await startServer({
    handler: subscribeFromQuery,
    broker,
    onError: (e) => {
      if (e instanceof BrokerError) errors.push(e);
      else other.push(e);
    },
  });
  await withTimeout(broker.ready(), 10_000, `broker ${broker.nodeId} ready`);
  const clients: ClientSession[] = [];
  let closed = false;
  return {
    t,
    broker,
    errors,
    other,
    clients,
    async client(topics) {
      const session = await connect(t.url(`/?topics=${topics.join(',')}`), {
        keepalive: null,
        handler: {
          onMessage(_s, m) {
            rec.got.push({ text: m.binary ? '' : m.text, data: Buffer.from(m.data), binary: m.binary });
          },
        },
      });
      const rec: Recorder = { session, got: [], texts: () => rec.got.map((g) => g.text) };
      clients.push(session);
      return rec;
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const c of clients) c.close();
      await Promise.all(clients.map((c) => withTimeout(c.closed, 5000, 'client closed').catch(() => undefined)));
      await withTimeout(t.server.close(), 10_000, 'server closed');
    },
  };
}

/** A plain node-redis client, for what the tests check or do behind the brokers' backs. */
export async function rawClient(url: string): Promise<{ send(args: Array<string | Buffer>): Promise<unknown>; close(): Promise<void> }> {
  const c = createClient({ url, socket: { reconnectStrategy: false } });
  c.on('error', () => undefined);
  await c.connect();
  return {
    send: (args) => c.sendCommand(args),
    close: async () => {
      if (c.isOpen) c.destroy();
    },
  };
}

/** Polls an async condition every 20 ms until it holds; fails after `ms`. */
export async function eventually(cond: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Subscribers of `channel` in Redis (PUBSUB NUMSUB, or SHARDNUMSUB). */
export async function numsub(raw: { send(args: string[]): Promise<unknown> }, channel: string, sharded = false): Promise<number> {
  const r = (await raw.send(['PUBSUB', sharded ? 'SHARDNUMSUB' : 'NUMSUB', channel])) as unknown[];
  return Number(r[1]);
}
