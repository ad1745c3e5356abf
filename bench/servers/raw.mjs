// Raw node:net echo server: the ceiling. No WebSocket framing at all; every
// chunk read is written back. Prints "LISTENING <port>"; exits when its stdin
// closes.
import { createServer } from 'node:net';
import { serveUntilStdinCloses } from '../lib/server-life.mjs';

const sockets = new Set();
const server = createServer((socket) => {
  // ws and sockeye both disable Nagle on their sockets; so does the ceiling.
  socket.setNoDelay(true);
  sockets.add(socket);
  socket.on('data', (chunk) => socket.write(chunk));
  socket.on('end', () => socket.end());
  socket.on('error', () => {});
  socket.on('close', () => sockets.delete(socket));
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
serveUntilStdinCloses(server.address().port, async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => server.close(resolve));
});
