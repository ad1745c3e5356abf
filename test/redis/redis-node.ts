/**
 * A sockeye node in a process of its own, for test/redis/redis-broker.test.ts
 * (not a test itself: the runner takes only *.test.js). Arguments: a JSON
 * object { mode, url, nodeId, heartbeatMs, prefix, topic }.
 *
 * - mode 'serve': a server with a Redis broker and one client of its own
 *   subscribed to `topic`; prints 'ready' once the subscription is in effect,
 *   then lives until it is killed (the test SIGKILLs it: a node that dies
 *   without a word).
 * - mode 'close': the same, then publishes, closes the client and the server
 *   (which closes the broker) and prints 'closed'; the process must then
 *   exit by itself, nothing of the broker keeping it alive.
 */
import { connect, createServer } from '../../src/index.js';
import { createRedisBroker } from '../../src/redis/index.js';

interface Args {
  mode: 'serve' | 'close';
  url: string;
  nodeId: string;
  heartbeatMs: number;
  prefix: string;
  topic: string;
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;
const broker = createRedisBroker({ url: args.url, nodeId: args.nodeId, heartbeatMs: args.heartbeatMs, channelPrefix: args.prefix, keyPrefix: args.prefix, durable: [`${args.topic}-durable`] });
const server = createServer({
  keepalive: null,
  broker,
  onError: (e) => console.error(`node ${args.nodeId}:`, e),
  handler: {
    onOpen(session) {
      session.subscribe(args.topic);
      session.subscribe(`${args.topic}-durable`);
    },
  },
});

async function main(): Promise<void> {
  await broker.ready();
  const { port } = await server.listen(0, '127.0.0.1');
  const client = await connect(`ws://127.0.0.1:${port}/`, { keepalive: null });
  while (server.subscriberCount(args.topic) === 0) await new Promise((r) => setTimeout(r, 5));
  // In effect in Redis: this node's count is in the registry once a heartbeat has gone.
  await new Promise((r) => setTimeout(r, 2 * args.heartbeatMs));
  console.log('ready');
  if (args.mode === 'serve') return;
  server.publish(args.topic, 'bye');
  server.publish(`${args.topic}-durable`, 'bye');
  client.close();
  await client.closed;
  await server.close();
  console.log('closed');
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
