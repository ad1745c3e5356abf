// sockeye fan-out server for bench/fanout-redis.mjs: every client is
// subscribed to one topic when it opens (session.subscribe('fan') in onOpen),
// and every message a client sends is published to that topic with
// server.publish(), with the library's default options and limits.
//   --redis URL     give the server sockeye/redis's broker on that Redis, so a
//                   publication reaches the topic's subscribers on every process
//                   (without it: one process, publish() is a local fan-out)
//   --node-id ID    the broker's node id
// Prints "LISTENING <port>" once bound to 127.0.0.1 (and, with --redis, once
// the broker is ready); answers "gc" with a MEMORY line that also has
// `members` (server.subscriberCount of the topic); exits when stdin closes.
import { createServer } from '../../dist/src/index.js';
import { info, serveUntilStdinCloses } from '../lib/server-life.mjs';
import { fanoutOptions, FANOUT_TOPIC } from '../lib/fanout-servers.mjs';

const opts = fanoutOptions();
let dropped = 0;
let reported = 0;
let broker = null;
if (opts.redis) {
  const { createRedisBroker } = await import('../../dist/src/redis/index.js');
  // Its own prefixes, so the channel the harness watches (PUBSUB NUMSUB) is known: fanbench:fan.
  broker = createRedisBroker({ url: opts.redis, nodeId: opts.nodeId, channelPrefix: 'fanbench:', keyPrefix: 'fanbench:' });
}

const server = createServer({
  port: 0,
  host: '127.0.0.1',
  ...(broker ? { broker } : {}),
  handler: {
    onOpen(session) {
      session.subscribe(FANOUT_TOPIC);
    },
    onMessage(_session, message) {
      // One broadcast in flight at a time (the generator waits for every client): queues stay bounded.
      dropped += server.publish(FANOUT_TOPIC, message.data, { binary: message.binary }).dropped;
    },
  },
  onError(error) {
    // A broker error (a gap, a lost link) means a delivery may be missing: the generator then fails the
    // run on its own; say why here.
    if (reported++ < 5) process.stderr.write(`sockeye server error: ${error instanceof Error ? `${error.code ?? ''} ${error.message}` : String(error)}\n`);
  },
});

info({ fanout: broker ? `server.publish() to one topic, sockeye/redis broker (node-redis ${opts.redisClientVersion ?? '?'})` : 'server.publish() to one topic, no broker (local fan-out)' });
const { port } = await server.listen(0, '127.0.0.1');
if (broker) await broker.ready();
serveUntilStdinCloses(
  port,
  async () => {
    if (dropped > 0) process.stderr.write(`sockeye server: ${dropped} deliveries were dropped\n`);
    await server.close();
  },
  () => server.clients.size,
  () => ({ members: server.subscriberCount(FANOUT_TOPIC), dropped, errors: reported }),
);
