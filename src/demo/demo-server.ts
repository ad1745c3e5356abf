import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { TlsOptions } from 'node:tls';
import { fileURLToPath } from 'node:url';
import type { KeepaliveOptions } from '../core/connection.js';
import { createMountHandler, type Mount } from '../server/mounts.js';
import type { ServerSession } from '../server/server-session.js';
import { createServer, type ServerHandler, type WebSocketServer } from '../server/server.js';
import type { SessionLimits } from '../transport/types.js';
import { DumbIncrementProtocol } from './dumb-increment.js';
import { ECHO_NO_DEFLATE_PROTOCOL, echoHandler } from './echo.js';
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
   * (ECHO_NO_DEFLATE_PROTOCOL). Default true.
   */
  perMessageDeflate?: boolean;
  keepalive?: KeepaliveOptions | null;
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
    const echo = echoHandler({ perMessageDeflate: options.perMessageDeflate ?? true, onError: onEchoError });
    const echoNoDeflate = echoHandler({ perMessageDeflate: false, onError: onEchoError });
    const mounts = options.mounts ?? [{ mountpoint: '/', origin: options.staticDir ?? DEMO_PAGE_DIR, defaultFile: 'index.html' }];
    this.server = createServer({
      port: options.port ?? 7681,
      host: options.host ?? '127.0.0.1',
      tls: options.tls,
      keepalive: options.keepalive,
      limits: options.limits,
      protocols: {
        'dumb-increment-protocol': this.tracked(this.dumbIncrement.handler),
        'lws-mirror-protocol': this.tracked(this.mirror.handler),
        'lws-status': this.tracked(this.status.handler),
        [ECHO_NO_DEFLATE_PROTOCOL]: this.tracked(echoNoDeflate),
      },
      handler: this.tracked(echo),
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
      await this.server.close(code, reason);
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
