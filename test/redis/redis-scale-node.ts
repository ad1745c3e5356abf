/**
 * A sockeye server with a Redis broker in a process of its own, for
 * test/redis/redis-scale.test.ts (not a test itself). Argument: a JSON object
 * { url, nodeId, prefix, maxQueuedBytes }. It listens on 127.0.0.1 (port 0),
 * subscribes every session to 'news', prints 'port N' once its broker is
 * ready, then obeys stdin lines: 'publish COUNT SIZE' publishes COUNT
 * messages "NODEID I" padded to SIZE bytes on 'news', a batch per turn of the
 * event loop, and prints 'published COUNT'.
 */
import { createInterface } from 'node:readline';
import { createServer } from '../../src/index.js';
import { createRedisBroker } from '../../src/redis/index.js';

interface Args {
  url: string;
  nodeId: string;
  prefix: string;
  maxQueuedBytes: number;
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;
const broker = createRedisBroker({ url: args.url, nodeId: args.nodeId, channelPrefix: args.prefix, keyPrefix: args.prefix, heartbeatMs: 200 });
const server = createServer({
  keepalive: null,
  broker,
  limits: { maxQueuedBytes: args.maxQueuedBytes },
  // A subscriber over its queue limit is reported here; the test counts nothing from it.
  onError: () => undefined,
  handler: {
    onOpen(session) {
      session.subscribe('news');
    },
  },
});

let next = 0;
function publish(count: number, size: number): void {
  let left = count;
  const batch = () => {
    for (let i = 0; i < 20 && left > 0; i++, left--) {
      const text = `${args.nodeId} ${next++} `;
      server.publish('news', text.padEnd(size, '.'));
    }
    if (left > 0) setImmediate(batch);
    else process.stdout.write(`published ${count}\n`);
  };
  batch();
}

async function main(): Promise<void> {
  const { port } = await server.listen(0, '127.0.0.1');
  await broker.ready();
  process.stdout.write(`port ${port}\n`);
  createInterface({ input: process.stdin }).on('line', (line) => {
    const [cmd, count, size] = line.split(' ');
    if (cmd === 'publish') publish(Number(count), Number(size));
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
