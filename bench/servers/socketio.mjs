// socket.io 4 fan-out server for bench/fanout-redis.mjs: the WebSocket
// transport only (no HTTP long-polling, so the clients connect straight to
// /socket.io/?EIO=4&transport=websocket), socket.io's default options
// otherwise. Every client joins one room when it connects; every "fan" event
// a client emits goes to the room with io.to(room).emit('fan', data).
//   --redis URL     the Redis adapter (@socket.io/redis-adapter, the benchmark's own
//                   package: npm --prefix bench ci) on that Redis, with two node-redis
//                   clients (publisher and subscriber), so the room spans processes
//   --node-id ID    accepted for symmetry with the sockeye server (unused)
// Prints "LISTENING <port>" once bound to 127.0.0.1 (with --redis, once both
// Redis clients are connected); answers "gc" with a MEMORY line that also has
// `members` (this process's sockets in the room); exits when stdin closes.
import { createServer as createHttpServer } from 'node:http';
import { info, serveUntilStdinCloses } from '../lib/server-life.mjs';
import { fanoutOptions, FANOUT_ROOM, packageVersion, SOCKETIO_KEY } from '../lib/fanout-servers.mjs';

const opts = fanoutOptions();
let Server;
try {
  ({ Server } = await import('socket.io'));
} catch (error) {
  process.stderr.write(`socket.io server: socket.io is not installed (it is a devDependency of sockeye: npm ci): ${error.message}\n`);
  process.exit(3);
}

const http = createHttpServer();
const io = new Server(http, { transports: ['websocket'], serveClient: false });
let redisClients = [];
if (opts.redis) {
  let createAdapter;
  try {
    ({ createAdapter } = await import('@socket.io/redis-adapter'));
  } catch (error) {
    process.stderr.write(`socket.io server: @socket.io/redis-adapter is not installed (the benchmark's own packages: npm --prefix bench ci): ${error.message}\n`);
    process.exit(3);
  }
  const { createClient } = await import('redis');
  const pub = createClient({ url: opts.redis });
  const sub = pub.duplicate();
  for (const c of [pub, sub]) c.on('error', (error) => process.stderr.write(`socket.io server: redis: ${error.message}\n`));
  await Promise.all([pub.connect(), sub.connect()]);
  redisClients = [pub, sub];
  io.adapter(createAdapter(pub, sub, { key: SOCKETIO_KEY }));
}

io.on('connection', (socket) => {
  // Joined before the client can send anything: the connect packet and this handler run in one turn.
  socket.join(FANOUT_ROOM);
  socket.on('fan', (data) => io.to(FANOUT_ROOM).emit('fan', data));
});

info({
  fanout: `io.to(room).emit('fan', data), websocket transport only, socket.io ${packageVersion('socket.io')}${opts.redis ? `, @socket.io/redis-adapter ${packageVersion('@socket.io/redis-adapter')} on node-redis ${opts.redisClientVersion}` : ', in-memory adapter'}`,
});
await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));
serveUntilStdinCloses(
  http.address().port,
  async () => {
    // io.close() also closes the HTTP server and every client (and the adapter's subscriptions).
    await new Promise((resolve) => io.close(() => resolve()));
    await Promise.all(redisClients.map((c) => c.quit().catch(() => c.destroy?.())));
  },
  () => io.engine.clientsCount,
  () => ({ members: io.of('/').adapter.rooms.get(FANOUT_ROOM)?.size ?? 0 }),
);
