/** A byte-counting TCP relay for the permessage-deflate tests: proves on the wire that data was compressed. */
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';

/** A TCP relay that counts the bytes of each direction (client to server: up). */
export interface Counter {
  port: number;
  up: number;
  down: number;
  close(): Promise<void>;
}

export async function startCounter(target: number): Promise<Counter> {
  const sockets = new Set<Socket>();
  const counter = { port: 0, up: 0, down: 0, close: async () => {} };
  const server = createNetServer((client) => {
    const upstream = netConnect({ host: '127.0.0.1', port: target });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (d: Buffer) => (counter.up += d.length));
    upstream.on('data', (d: Buffer) => (counter.down += d.length));
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  counter.port = (server.address() as AddressInfo).port;
  counter.close = () => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return counter;
}
