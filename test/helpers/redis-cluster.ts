import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commandOnPath } from './peers.js';
import { freePort } from './free-port.js';
import { REDIS_SERVER, redisServerAvailable } from './redis-server.js';

/**
 * A real Redis Cluster for the Redis broker's cluster tests: three
 * redis-server processes (cluster mode, no persistence, 127.0.0.1, free
 * ports, one temporary directory, a cluster config file each), joined by
 * `redis-cli --cluster create` with no replicas, and waited for until every
 * node says cluster_state:ok. stop() kills them all and removes the
 * directories, even when a test failed; a process 'exit' hook kills them if
 * the test process dies first. Every wait is bounded.
 *
 * cluster-require-full-coverage is off, as a deployment that wants the
 * other shards to keep serving when one is lost must set it: with it on, a
 * cluster missing one shard refuses every command (CLUSTERDOWN).
 */
export const REDIS_CLI = '/usr/bin/redis-cli';

export function redisClusterAvailable(): boolean {
  return redisServerAvailable() && (existsSync(REDIS_CLI) || commandOnPath('redis-cli'));
}

export interface ClusterNode {
  readonly port: number;
  readonly url: string;
  /** Kills this node (SIGKILL) and waits for it to exit. */
  kill(): Promise<void>;
  /** Starts it again (same port and cluster config file: it rejoins with its slots, without data) and waits until it says cluster_state:ok. */
  restart(): Promise<void>;
}

export class RedisCluster {
  readonly nodes: ClusterNode[];
  private readonly dir: string;
  private readonly children: Array<ChildProcess | null>;
  private readonly stderr: string[];
  private readonly killOnExit = () => {
    for (const c of this.children) c?.kill('SIGKILL');
  };

  private constructor(dir: string, ports: number[]) {
    this.dir = dir;
    this.children = ports.map(() => null);
    this.stderr = ports.map(() => '');
    this.nodes = ports.map((port, i) => ({ port, url: `redis://127.0.0.1:${port}`, kill: () => this.killNode(i), restart: () => this.restartNode(i) }));
  }

  /**
   * Starts a cluster of `size` nodes. Tried up to three times on fresh ports: a node needs two ports
   * (its port, and its cluster bus port, port + 10000), and the second was not checked free.
   */
  static async start(size = 3): Promise<RedisCluster> {
    for (let attempt = 1; ; attempt++) {
      const dir = mkdtempSync(join(tmpdir(), 'sockeye-rcluster-'));
      const ports: number[] = [];
      while (ports.length < size) {
        const p = await freePort();
        if (!ports.includes(p) && !ports.includes(p - 10000) && !ports.includes(p + 10000) && p + 10000 < 65536) ports.push(p);
      }
      const cluster = new RedisCluster(dir, ports);
      process.on('exit', cluster.killOnExit);
      try {
        await cluster.run();
        return cluster;
      } catch (err) {
        await cluster.stop();
        if (attempt === 3) throw err;
      }
    }
  }

  /** The slot ranges and the port of the node that serves each, from CLUSTER SLOTS (as redis-cli prints it: one value a line). */
  async slotRanges(): Promise<Array<{ from: number; to: number; port: number }>> {
    const lines = (await cli(['-p', String(this.nodes[0].port), 'CLUSTER', 'SLOTS'])).trim().split('\n');
    const out: Array<{ from: number; to: number; port: number }> = [];
    for (let i = 0; i + 3 < lines.length; i++) {
      if (/^\d+$/.test(lines[i]) && /^\d+$/.test(lines[i + 1]) && lines[i + 2] === '127.0.0.1' && /^\d+$/.test(lines[i + 3])) {
        out.push({ from: Number(lines[i]), to: Number(lines[i + 1]), port: Number(lines[i + 3]) });
        i += 3;
      }
    }
    return out;
  }

  async keySlot(key: string): Promise<number> {
    return Number((await cli(['-p', String(this.nodes[0].port), 'CLUSTER', 'KEYSLOT', key])).trim());
  }

  async stop(): Promise<void> {
    for (let i = 0; i < this.children.length; i++) await this.killNode(i).catch(() => undefined);
    process.off('exit', this.killOnExit);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async killNode(i: number): Promise<void> {
    const child = this.children[i];
    this.children[i] = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await withTimeout(exited, 5000, 'redis-server to exit');
  }

  private spawnNode(i: number): void {
    const n = this.nodes[i];
    const args = [
      '--port', String(n.port), '--bind', '127.0.0.1', '--dir', this.dir, '--daemonize', 'no', '--loglevel', 'warning',
      '--save', '', '--appendonly', 'no',
      '--cluster-enabled', 'yes', '--cluster-config-file', join(this.dir, `nodes-${n.port}.conf`),
      '--cluster-node-timeout', '3000', '--cluster-require-full-coverage', 'no',
    ];
    const child = spawn(existsSync(REDIS_SERVER) ? REDIS_SERVER : 'redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.stderr[i] = '';
    child.stderr!.on('data', (b: Buffer) => (this.stderr[i] += b.toString()));
    this.children[i] = child;
  }

  /** Throws if a node exited or the deadline passed. */
  private check(deadline: number, what: string): void {
    this.children.forEach((c, i) => {
      if (c && c.exitCode !== null) throw new Error(`redis-server on ${this.nodes[i].port} exited with ${c.exitCode}: ${this.stderr[i]}`);
    });
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
  }

  private async clusterOk(i: number, deadline: number): Promise<void> {
    const port = this.nodes[i].port;
    while (!/cluster_state:ok/.test(await cli(['-p', String(port), 'CLUSTER', 'INFO']).catch(() => ''))) {
      this.check(deadline, `cluster_state:ok on ${port}`);
      await sleep(50);
    }
  }

  private async restartNode(i: number): Promise<void> {
    await this.killNode(i);
    this.spawnNode(i);
    await this.clusterOk(i, Date.now() + 10_000);
  }

  private async run(): Promise<void> {
    this.nodes.forEach((_, i) => this.spawnNode(i));
    const deadline = Date.now() + 15_000;
    for (const n of this.nodes) {
      while ((await cli(['-p', String(n.port), 'PING']).catch(() => '')).trim() !== 'PONG') {
        this.check(deadline, `redis-server on ${n.port} to answer PING`);
        await sleep(20);
      }
    }
    await cli(['--cluster', 'create', ...this.nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], 15_000);
    for (let i = 0; i < this.nodes.length; i++) await this.clusterOk(i, deadline);
  }
}

function cli(args: string[], timeout = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(existsSync(REDIS_CLI) ? REDIS_CLI : 'redis-cli', ['-h', '127.0.0.1', ...args], { timeout }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli ${args.join(' ')}: ${err.message} ${stderr}`));
      else resolve(stdout);
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)))]).finally(() => clearTimeout(t));
}
