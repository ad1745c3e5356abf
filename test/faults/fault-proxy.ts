/**
 * A TCP relay on 127.0.0.1 between one client and one server, for injecting
 * faults at chosen moments: reset both connections (RST) once a given number
 * of bytes went one way, half-close one side, or insert bytes between TLS
 * records.
 *
 * With `tlsRecords: true` the relay forwards whole TLS records only (it
 * parses the 5-byte record headers, RFC 8446 section 5.1 / RFC 5246 section
 * 6.2.1), so injected bytes land on a record boundary, and it records the
 * content type of every record that went each way (0x15 = alert, 0x17 =
 * application data; in TLS 1.3 alerts after the handshake travel as 0x17).
 *
 * No module-level state: each proxy owns its sockets.
 */
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';

export interface Direction {
  /** Bytes relayed so far. */
  bytes: number;
  /** Content types of the TLS records relayed (tlsRecords mode). */
  records: number[];
}

export interface FaultProxy {
  readonly port: number;
  readonly toServer: Direction;
  readonly toClient: Direction;
  /** Resolves with both relay sockets once a client has connected and the upstream connection is up. */
  readonly connected: Promise<{ client: Socket; server: Socket }>;
  /** Calls `fn` (once) as soon as more than `bytes` bytes were relayed toward the server; nothing more is relayed after the call if `fn` destroys the sockets. */
  whenToServerPasses(bytes: number, fn: () => void): void;
  /** Writes `bytes` toward the server (between records in tlsRecords mode). */
  injectToServer(bytes: Buffer): void;
  /** Writes `bytes` toward the client (between records in tlsRecords mode). */
  injectToClient(bytes: Buffer): void;
  /** Resets both TCP connections (RST, not FIN). */
  resetBoth(): void;
  close(): Promise<void>;
}

export async function startFaultProxy(targetPort: number, opts: { tlsRecords?: boolean } = {}): Promise<FaultProxy> {
  const toServer: Direction = { bytes: 0, records: [] };
  const toClient: Direction = { bytes: 0, records: [] };
  const sockets = new Set<Socket>();
  let pair: { client: Socket; server: Socket } | null = null;
  let resolveConnected!: (p: { client: Socket; server: Socket }) => void;
  const connected = new Promise<{ client: Socket; server: Socket }>((r) => (resolveConnected = r));
  const watchers: Array<{ bytes: number; fn: () => void }> = [];

  /** Relays from `from` to `to`, whole TLS records at a time in tlsRecords mode. */
  const relay = (from: Socket, to: Socket, dir: Direction, checkWatchers: boolean) => {
    let pending: Buffer = Buffer.alloc(0);
    from.on('data', (chunk: Buffer) => {
      let out = chunk;
      if (opts.tlsRecords) {
        pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
        let p = 0;
        while (pending.length - p >= 5) {
          const len = pending.readUInt16BE(p + 3);
          if (pending.length - p < 5 + len) break;
          dir.records.push(pending[p]);
          p += 5 + len;
        }
        out = pending.subarray(0, p);
        pending = Buffer.from(pending.subarray(p));
        if (out.length === 0) return;
      }
      dir.bytes += out.length;
      if (!to.destroyed) to.write(out);
      if (checkWatchers) {
        for (const w of [...watchers]) {
          if (dir.bytes > w.bytes) {
            watchers.splice(watchers.indexOf(w), 1);
            w.fn();
          }
        }
      }
    });
    from.on('end', () => {
      if (!to.destroyed) to.end();
    });
  };

  const server: Server = createNetServer((client) => {
    sockets.add(client);
    client.on('error', () => {});
    client.on('close', () => sockets.delete(client));
    client.pause();
    const upstream = netConnect({ host: '127.0.0.1', port: targetPort });
    sockets.add(upstream);
    upstream.on('error', () => {});
    upstream.on('close', () => sockets.delete(upstream));
    // A reset on one side is passed on as a reset (the point of this relay is to keep faults as they are).
    client.on('close', () => {
      if (!upstream.destroyed && client.errored) upstream.resetAndDestroy();
    });
    upstream.on('close', () => {
      if (!client.destroyed && upstream.errored) client.resetAndDestroy();
    });
    upstream.once('connect', () => {
      relay(client, upstream, toServer, true);
      relay(upstream, client, toClient, false);
      client.resume();
      pair = { client, server: upstream };
      resolveConnected(pair);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });

  return {
    port: (server.address() as AddressInfo).port,
    toServer,
    toClient,
    connected,
    whenToServerPasses(bytes, fn) {
      watchers.push({ bytes, fn });
    },
    injectToServer(bytes) {
      pair?.server.write(bytes);
    },
    injectToClient(bytes) {
      pair?.client.write(bytes);
    },
    resetBoth() {
      if (!pair) return;
      if (!pair.client.destroyed) pair.client.resetAndDestroy();
      if (!pair.server.destroyed) pair.server.resetAndDestroy();
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
