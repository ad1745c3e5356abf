import { connect as netConnect, createServer as createNetServer, type AddressInfo, type NetConnectOpts, type Server, type Socket } from 'node:net';

/**
 * A raw TCP relay on 127.0.0.1 (port 0) between a WebSocket client and a
 * server, for two kinds of tests:
 *
 * - Slow, small-buffered paths (S1): every read is relayed in pieces of at
 *   most `chunkSize` bytes, and the side that reads is paused until the side
 *   that writes has drained, so the endpoints' writes (and TLS records) are
 *   blocked over and over while data keeps flowing both ways.
 * - A peer that goes silent without closing (keepalive): freeze() stops
 *   relaying in both directions but keeps both TCP connections open. Nothing
 *   reaches either end any more, and no FIN or RST is sent either, even when
 *   one end later closes its own connection.
 *
 * No module-level state: each proxy owns its sockets and counters.
 */
export interface FreezeProxyOptions {
  /** Port of the real server on 127.0.0.1. */
  targetPort: number;
  /**
   * Largest piece per write(), both ways; also the size of every read from the
   * server's side (Node offers a fixed read buffer only on sockets it dials,
   * so reads from the client's side are cut into pieces instead). One piece is
   * in flight per direction at a time. Default 16 KiB.
   */
  chunkSize?: number;
  /** writableHighWaterMark (and readable) of the proxy's sockets. Default 16 KiB. */
  highWaterMark?: number;
}

export interface RelayStats {
  /** Bytes handed to the socket toward that side. */
  bytes: number;
  /** performance.now() of the latest write toward that side (or of its completion, whichever is later); -Infinity before any. */
  lastAt: number;
  /** Pieces the kernel did not take at once (its send buffer toward that side was full). */
  fullWrites: number;
}

export interface FreezeProxy {
  readonly port: number;
  /** Number of client connections accepted so far. */
  readonly accepted: number;
  /** What went toward the server (upstream) and toward the client (downstream), over every connection. */
  readonly toServer: RelayStats;
  readonly toClient: RelayStats;
  readonly frozen: boolean;
  /** Stops relaying both ways; both TCP connections stay open and nothing closing on one side is passed on. */
  freeze(): void;
  /** Relays again, starting with whatever was held back while frozen. */
  thaw(): void;
  /** Destroys every connection and stops listening. */
  close(): Promise<void>;
}

const DEFAULT_CHUNK = 16 * 1024;

interface Direction {
  held: Buffer[];
  src: Socket;
  dst: Socket;
  stats: RelayStats;
  /** src has ended (or closed): end dst once held is written. */
  srcEnded: boolean;
  /** A write to dst has not completed yet. */
  inFlight: boolean;
}

export async function startFreezeProxy(options: FreezeProxyOptions): Promise<FreezeProxy> {
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK;
  const hwm = options.highWaterMark ?? DEFAULT_CHUNK;
  const sockets = new Set<Socket>();
  const toServer: RelayStats = { bytes: 0, lastAt: -Infinity, fullWrites: 0 };
  const toClient: RelayStats = { bytes: 0, lastAt: -Infinity, fullWrites: 0 };
  let frozen = false;
  let accepted = 0;
  /** Per connection: what to do on thaw. */
  const thawers = new Set<() => void>();

  const track = (s: Socket): void => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    // Errors (ECONNRESET once an end is destroyed) are expected; 'close' follows.
    s.on('error', () => {});
  };

  const server: Server = createNetServer({ highWaterMark: hwm, noDelay: true }, (down) => {
    accepted++;
    track(down);
    // Held while frozen or while the destination is full, in arrival order.
    const heldDown: Buffer[] = [];

    // Upstream reads land in one fixed chunkSize buffer: reads are at most chunkSize bytes.
    const readBuf = Buffer.alloc(chunkSize);
    const upOpts = {
      port: options.targetPort,
      host: '127.0.0.1',
      noDelay: true,
      highWaterMark: hwm,
      onread: {
        buffer: readBuf,
        callback: (n: number): boolean => {
          // The buffer is reused for the next read: relay a copy (otherwise the very mistake behind invariant S2).
          heldDown.push(Buffer.from(readBuf.subarray(0, n)));
          return pump(downward);
        },
      },
    } as NetConnectOpts;
    const up = netConnect(upOpts);
    track(up);

    /**
     * Writes what `held` has to `dst`, one piece of at most chunkSize at a
     * time: the next piece goes only once the previous one has been taken by
     * the kernel (its write callback), and `src` stays paused while anything is
     * held or in flight, so it is read again only after `dst` has drained.
     * Returns true when `src` may be read again. Once `src` has ended and
     * everything held is written, `dst` is ended too.
     */
    function pump(dir: Direction): boolean {
      const { held, dst, src, stats } = dir;
      if (!frozen && !dir.inFlight && held.length > 0 && !dst.destroyed) {
        const b = held[0];
        const piece = b.length > chunkSize ? b.subarray(0, chunkSize) : b;
        if (piece === b) held.shift();
        else held[0] = b.subarray(chunkSize);
        stats.bytes += piece.length;
        stats.lastAt = performance.now();
        dir.inFlight = true;
        dst.write(piece, () => {
          // Completion is when the kernel has the bytes: later than the call if dst was backed up.
          stats.lastAt = Math.max(stats.lastAt, performance.now());
          dir.inFlight = false;
          resume(dir);
        });
        if (dst.writableLength > 0 && !dst.connecting) stats.fullWrites++;
      }
      if (!frozen && !dir.inFlight && held.length === 0 && dir.srcEnded && !dst.writableEnded) dst.end();
      const readable = !frozen && !dir.inFlight && held.length === 0;
      if (!readable && !src.destroyed) src.pause();
      return readable;
    }

    const upward: Direction = { held: [], src: down, dst: up, stats: toServer, srcEnded: false, inFlight: false };
    const downward: Direction = { held: heldDown, src: up, dst: down, stats: toClient, srcEnded: false, inFlight: false };
    function resume(dir: Direction): void {
      if (frozen) return;
      if (pump(dir) && !dir.src.destroyed) dir.src.resume();
    }
    const thawer = () => {
      resume(upward);
      resume(downward);
    };
    thawers.add(thawer);

    down.on('data', (chunk: Buffer) => {
      upward.held.push(chunk);
      pump(upward);
    });

    // Half-closes and closes are passed on only while relaying: a frozen peer says nothing at all.
    for (const dir of [upward, downward]) {
      dir.src.on('end', () => {
        dir.srcEnded = true;
        if (!frozen) pump(dir);
      });
      dir.src.on('close', () => {
        dir.srcEnded = true;
        if (frozen) return;
        pump(dir);
        // A reset (not a clean end): pass the abort on.
        if (!dir.src.readableEnded) dir.dst.destroy();
      });
    }
    down.on('close', () => thawers.delete(thawer));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    port,
    get accepted() {
      return accepted;
    },
    toServer,
    toClient,
    get frozen() {
      return frozen;
    },
    freeze() {
      frozen = true;
      for (const s of sockets) s.pause();
    },
    thaw() {
      frozen = false;
      for (const t of thawers) t();
    },
    close() {
      frozen = true;
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
