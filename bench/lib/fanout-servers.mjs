// What the fan-out servers of bench/fanout-redis.mjs share: their options,
// the topic (sockeye) or room (socket.io) every client joins, and the
// channels the harness watches in Redis to know every process is subscribed.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const FANOUT_TOPIC = 'fan';
export const FANOUT_ROOM = 'fan';
/** sockeye's broker: channelPrefix 'fanbench:' + the topic. */
export const SOCKEYE_CHANNEL = `fanbench:${FANOUT_TOPIC}`;
/** socket.io's Redis adapter with key 'fanbench-sio': its request channel for the default namespace, subscribed once per process. */
export const SOCKETIO_KEY = 'fanbench-sio';
export const SOCKETIO_CHANNEL = `${SOCKETIO_KEY}-request#/#`;

/** --redis URL, --node-id ID; anything else ends the process (exit 64). */
export function fanoutOptions(argv = process.argv.slice(2)) {
  const opts = { redis: null, nodeId: undefined, redisClientVersion: null };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--redis' && argv[i + 1]) opts.redis = argv[++i];
    else if (argv[i] === '--node-id' && argv[i + 1]) opts.nodeId = argv[++i];
    else {
      process.stderr.write(`bench fan-out server: unknown option ${argv[i]}\n`);
      process.exit(64);
    }
  }
  if (opts.redis) opts.redisClientVersion = packageVersion('redis');
  return opts;
}

/** The version of a package as this directory resolves it (bench/node_modules first, then the project's), or null. */
export function packageVersion(name) {
  try {
    const main = fileURLToPath(import.meta.resolve(name));
    const at = main.lastIndexOf(`/node_modules/${name}/`);
    if (at < 0) return null;
    return JSON.parse(readFileSync(`${main.slice(0, at)}/node_modules/${name}/package.json`, 'utf8')).version;
  } catch {
    return null;
  }
}
