import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { TlsOptions } from 'node:tls';
import { fileURLToPath } from 'node:url';
import type { KeepaliveOptions } from '../core/connection.js';
import { createMountHandler, type Mount } from '../server/mounts.js';
import type { ServerSession } from '../server/server-session.js';
import { createServer, type ServerHandler, type WebSocketServer } from '../server/server.js';
import { DEFAULT_SESSION_LIMITS, type SessionLimits } from '../transport/types.js';
import { DumbIncrementProtocol } from './dumb-increment.js';
import { ECHO_NO_DEFLATE_PROTOCOL, EchoProtocol } from './echo.js';
import { MirrorProtocol, type MirrorOptions } from './lws-mirror.js';
import { StatusProtocol } from './lws-status.js';

/**
 * The repository's demo page (demo-page/ at the top of the checkout),
 * found from this module's place: dist/src/demo/demo-server.js.
 */
export const DEMO_PAGE_DIR = fileURLToPath(new URL('../../../demo-page/', import.meta.url));

export interface DemoServerOptions {
  /** Default 7681, as libwebsockets' test server. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Serve wss:// (and https:// for the page). */
  tls?: TlsOptions;
  /** Directory served at '/' (index.html by default). Default DEMO_PAGE_DIR. Ignored when `mounts` is given. */
  staticDir?: string;
  /** Static mounts, instead of the one for staticDir. An empty list serves no HTTP at all (426 for plain requests). */
  mounts?: Mount[];
  /** dumb-increment-protocol period. Default 50 ms. */
  intervalMs?: number;
  mirror?: MirrorOptions;
  /**
   * permessage-deflate for lws-status and the echo service (libwebsockets
   * accepts it on lws-status). Never on dumb-increment-protocol,
   * lws-mirror-protocol or the echo subprotocol sockeye-echo-nodeflate
   * (ECHO_NO_DEFLATE_PROTOCOL). Default true; false declines it everywhere
   * (`sockeye serve --no-deflate`).
   */
  perMessageDeflate?: boolean;
  keepalive?: KeepaliveOptions | null;
  /**
   * Every session's limits (dumb-increment-protocol and lws-mirror-protocol
   * keep their own maxMessageBytes). With maxMessageBytes and no
   * maxQueuedBytes, maxQueuedBytes follows it; a highWaterMark not given is
   * at most a quarter of maxQueuedBytes (demoLimits()).
   */
  limits?: Partial<SessionLimits>;
  /** Reported by lws-status as "version". Default "sockeye <package version>". */
  version?: string;
  /** Errors that belong to no connection, and echo send failures. Default: stderr. */
  onError?: (error: unknown) => void;
}

/**
 * sockeye's counterpart of libwebsockets' test server: the protocols
 * dumb-increment-protocol, lws-mirror-protocol and lws-status, an echo
 * service for clients that ask for no subprotocol (permessage-deflate
 * accepted) or for sockeye-echo-nodeflate (declined, so that a browser,
 * which always offers it, can measure round trips without zlib), and the
 * demo page over HTTP on the same port.
 */
export class DemoServer {
  readonly server: WebSocketServer;
  readonly dumbIncrement: DumbIncrementProtocol;
  readonly mirror: MirrorProtocol;
  readonly status: StatusProtocol;
  /** The echo for clients that ask for no subprotocol. */
  readonly echo: EchoProtocol;
  /** The echo for sockeye-echo-nodeflate. */
  readonly echoNoDeflate: EchoProtocol;
  private readonly options: DemoServerOptions;

  constructor(options: DemoServerOptions = {}) {
    this.options = options;
    const onError = options.onError ?? ((err: unknown) => console.error('sockeye demo:', err));
    this.dumbIncrement = new DumbIncrementProtocol({ intervalMs: options.intervalMs });
    this.mirror = new MirrorProtocol(options.mirror);
    this.status = new StatusProtocol({
      version: options.version ?? `sockeye ${packageVersion()}`,
      connections: () => this.server.clients,
      perMessageDeflate: options.perMessageDeflate ?? true,
    });
    const onEchoError = (m: string) => onError(new Error(m));
    this.echo = new EchoProtocol({ perMessageDeflate: options.perMessageDeflate ?? true, onError: onEchoError });
    this.echoNoDeflate = new EchoProtocol({ perMessageDeflate: false, onError: onEchoError });
    const mounts = options.mounts ?? [{ mountpoint: '/', origin: options.staticDir ?? DEMO_PAGE_DIR, defaultFile: 'index.html' }];
    this.server = createServer({
      port: options.port ?? 7681,
      host: options.host ?? '127.0.0.1',
      tls: options.tls,
      keepalive: options.keepalive,
      limits: demoLimits(options.limits),
      protocols: {
        'dumb-increment-protocol': this.tracked(this.dumbIncrement.handler),
        'lws-mirror-protocol': this.tracked(this.mirror.handler),
        'lws-status': this.tracked(this.status.handler),
        [ECHO_NO_DEFLATE_PROTOCOL]: this.tracked(this.echoNoDeflate.handler),
      },
      handler: this.tracked(this.echo.handler),
      onHttpRequest: mounts.length > 0 ? createMountHandler(mounts, { onError }) : undefined,
      onError,
    });
  }

  /** Starts listening (port and host default to the options'). */
  listen(port = this.options.port ?? 7681, host = this.options.host ?? '127.0.0.1'): Promise<AddressInfo> {
    return this.server.listen(port, host);
  }

  get port(): number {
    return this.server.port;
  }

  /** Closes every connection with 1001 and stops the timers. */
  async close(code = 1001, reason = 'server shutting down'): Promise<void> {
    try {
      // server.close() closes every session before it returns its promise; an echo session paused
      // for its backlog then reads again, so that the client's close frame is read
      // (test/demo/echo.test.ts, "a shutdown").
      const closed = this.server.close(code, reason);
      this.echo.resumeAll();
      this.echoNoDeflate.resumeAll();
      await closed;
    } finally {
      this.dumbIncrement.stop();
    }
  }

  /** Wraps a protocol's handler so that lws-status hears of its connects and disconnects. */
  private tracked<T>(handler: ServerHandler<T>): ServerHandler<T> {
    const status = this.status;
    return {
      ...handler,
      onOpen(session: ServerSession<T>) {
        status.connectionOpened(session);
        handler.onOpen?.(session);
        status.changed();
      },
      onClose(session, info) {
        handler.onClose?.(session, info);
        status.changed();
      },
    };
  }
}

/**
 * The outbound queue the echo needs for messages of `maxMessageBytes`: room
 * for two of them (an echo waiting and one more read before reading paused,
 * or still being inflated), their frame headers, the high-water mark and
 * headroom. For the default 16 MiB that is the default maxQueuedBytes
 * (40 MiB), never less than it.
 */
export function echoQueueBytes(maxMessageBytes: number): number {
  return Math.max(DEFAULT_SESSION_LIMITS.maxQueuedBytes, 2 * maxMessageBytes + 8 * 1024 * 1024);
}

/**
 * The limits the demo server runs with: `limits`, where maxQueuedBytes not
 * given follows maxMessageBytes (echoQueueBytes()), and highWaterMark not
 * given is at most a quarter of maxQueuedBytes, so that the echo pauses
 * reading (at the high-water mark) well before its queue is full
 * (test/demo/demo-server.test.ts, "limits").
 */
export function demoLimits(limits: Partial<SessionLimits> | undefined): Partial<SessionLimits> | undefined {
  if (limits === undefined) return undefined;
  const out = { ...limits };
  if (out.maxQueuedBytes === undefined && out.maxMessageBytes !== undefined) out.maxQueuedBytes = echoQueueBytes(out.maxMessageBytes);
  if (out.highWaterMark === undefined && out.maxQueuedBytes !== undefined) {
    out.highWaterMark = Math.min(DEFAULT_SESSION_LIMITS.highWaterMark, Math.floor(out.maxQueuedBytes / 4));
  }
  return out;
}

export function createDemoServer(options: DemoServerOptions = {}): DemoServer {
  return new DemoServer(options);
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}
