/**
 * TCP relays to a port of 127.0.0.1 for the tests that look at the wire: one
 * that counts the bytes of each direction (the permessage-deflate tests: data
 * was compressed), and the relay they and the proxy tests' recorders share.
 */
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';

/** A TCP relay that counts the bytes of each direction (client to server: up). */
export interface Counter {
  port: number;
  up: number;
  down: number;
  close(): Promise<void>;
}

/** A listening relay: its port, and close() that drops every connection through it. */
export interface Relay {
  port: number;
  close(): Promise<void>;
}

/**
 * Relays each connection `server` accepts to 127.0.0.1:`target`, both ways;
 * `watch` sees each client socket and its upstream before any byte flows.
 * Either side closing closes both.
 */
export async function relayTo(server: Server, target: number, watch: (client: Socket, upstream: Socket) => void): Promise<Relay> {
  const sockets = new Set<Socket>();
  // A TLS server relays what it decrypted: its connections once their handshake is done.
  server.on(server instanceof TlsServer ? 'secureConnection' : 'connection', (client: Socket) => {
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
    watch(client, upstream);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export async function startCounter(target: number): Promise<Counter> {
  const counter: Counter = { port: 0, up: 0, down: 0, close: async () => {} };
  const relay = await relayTo(createNetServer(), target, (client, upstream) => {
    client.on('data', (d: Buffer) => (counter.up += d.length));
    upstream.on('data', (d: Buffer) => (counter.down += d.length));
  });
  counter.port = relay.port;
  counter.close = relay.close;
  return counter;
}
