// Raw node:net (or node:tls with --tls) echo server: the ceiling. No
// WebSocket framing at all; every chunk read is written back (with --fanout:
// to every connected socket). Prints "LISTENING <port>"; exits when its stdin
// closes.
import { createServer as createNetServer } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { serverOptions, serveSockets } from '../lib/server-life.mjs';

const opts = serverOptions();
const sockets = new Set();
const onSocket = (socket) => {
  // ws and sockeye both disable Nagle on their sockets; so does the ceiling.
  socket.setNoDelay(true);
  sockets.add(socket);
  if (opts.fanout) socket.on('data', (chunk) => { for (const s of sockets) s.write(chunk); });
  else socket.on('data', (chunk) => socket.write(chunk));
  socket.on('end', () => socket.end());
  socket.on('error', () => {});
  socket.on('close', () => sockets.delete(socket));
};
const server = opts.tls ? createTlsServer({ ...opts.tls }, onSocket) : createNetServer(onSocket);
if (opts.tls) server.on('tlsClientError', () => {});
await serveSockets(server, sockets);
