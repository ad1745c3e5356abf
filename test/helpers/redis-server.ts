import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commandOnPath } from './peers.js';
import { freePort } from './free-port.js';

/**
 * A real redis-server for the Redis broker's tests (Debian's redis-server,
 * apt-get install redis-server): each test file starts its own on 127.0.0.1
 * on a free port, in a temporary directory, and stops it at the end even when
 * a test failed (stop() in an after() hook; a process 'exit' hook kills it if
 * the test process dies first). Every wait is bounded.
 *
 * No module-level mutable state: each RedisServer owns its process.
 */
export const REDIS_SERVER = '/usr/bin/redis-server';

export function redisServerAvailable(): boolean {
  return existsSync(REDIS_SERVER) || commandOnPath('redis-server');
}

export interface RedisServerOptions {
  /** Append-only file with fsync at every write, so that data survives a SIGKILL and restart(). Default false (no persistence at all). */
  persistent?: boolean;
}

export class RedisServer {
  readonly port: number;
  readonly dir: string;
  private readonly persistent: boolean;
  private child: ChildProcess | null = null;
  private readonly killOnExit = () => this.child?.kill('SIGKILL');

  private constructor(port: number, dir: string, persistent: boolean) {
    this.port = port;
    this.dir = dir;
    this.persistent = persistent;
  }

  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const dir = mkdtempSync(join(tmpdir(), 'sockeye-redis-'));
    const server = new RedisServer(await freePort(), dir, options.persistent ?? false);
    process.on('exit', server.killOnExit);
    try {
      await server.run();
    } catch (err) {
      await server.stop();
      throw err;
    }
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Kills the server (SIGKILL: no goodbye to its clients, no final save) and waits for it to exit. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await withTimeout(exited, 5000, 'redis-server to exit');
  }

  /** Starts it again on the same port and directory (with its data, if persistent). */
  async restart(): Promise<void> {
    await this.kill();
    await this.run();
  }

  /** Kills it and removes its directory. */
  async stop(): Promise<void> {
    await this.kill().catch(() => undefined);
    process.off('exit', this.killOnExit);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async run(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--daemonize', 'no', '--loglevel', 'warning'];
    args.push(...(this.persistent ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']));
    const child = spawn(existsSync(REDIS_SERVER) ? REDIS_SERVER : 'redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    this.child = child;
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}: ${stderr}`);
      if (await ping(this.port)) return;
      if (Date.now() > deadline) throw new Error(`redis-server did not answer PING on port ${this.port} within 10 s: ${stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** True if something on `port` answers PING with +PONG within 1 s. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect({ port, host: '127.0.0.1' });
    let got = '';
    const done = (ok: boolean) => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), 1000);
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (b: Buffer) => {
      got += b.toString('latin1');
      if (got.includes('\r\n')) done(got.startsWith('+PONG'));
    });
    s.on('error', () => done(false));
  });
}


function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)))]).finally(() => clearTimeout(t));
}

/**
 * A TCP relay to a Redis server, to cut one node off while the others stay
 * connected: cut() destroys every connection through it and refuses new ones
 * until restore(); mute() keeps relaying requests but throws the replies
 * away (Redis did the command, the client never hears), until cut().
 */
export interface CutProxy {
  readonly port: number;
  readonly url: string;
  cut(): void;
  mute(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startCutProxy(targetPort: number): Promise<CutProxy> {
  const pairs = new Set<[Socket, Socket]>();
  let cut = false;
  let muted = false;
  const server: Server = createNetServer((down) => {
    down.on('error', () => undefined);
    if (cut) {
      down.destroy();
      return;
    }
    const up = netConnect({ port: targetPort, host: '127.0.0.1' });
    up.on('error', () => undefined);
    const pair: [Socket, Socket] = [down, up];
    pairs.add(pair);
    down.on('data', (b: Buffer) => up.write(b));
    up.on('data', (b: Buffer) => {
      if (!muted) down.write(b);
    });
    const close = () => {
      pairs.delete(pair);
      down.destroy();
      up.destroy();
    };
    down.on('close', close);
    up.on('close', close);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const destroyAll = () => {
    for (const [down, up] of [...pairs]) {
      down.destroy();
      up.destroy();
    }
    pairs.clear();
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    cut() {
      cut = true;
      muted = false;
      destroyAll();
    },
    mute() {
      muted = true;
    },
    restore() {
      cut = false;
      muted = false;
    },
    async close() {
      cut = true;
      destroyAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
