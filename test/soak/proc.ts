/**
 * Plumbing for the soak tests: resource snapshots, a tiny request/response
 * protocol over the IPC channel between the orchestrator and the server and
 * client processes, and spawning those with their file descriptor limit
 * raised to the hard limit (each process needs one descriptor per
 * connection; server and clients in separate processes have separate limits).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** The process's memory figures, as process.memoryUsage() gives them. */
export interface MemoryFigures {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

/** The figures of MemoryFigures, read now (no garbage collection first). */
export function memoryFigures(): MemoryFigures {
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers };
}

export interface Snapshot extends MemoryFigures {
  /** Entries of /proc/self/fd (open file descriptors). */
  fds: number;
  /** process.getActiveResourcesInfo(), counted by kind (TCPSocketWrap, Timeout, ...). */
  resources: Record<string, number>;
  /** The soft limit on open files, from /proc/self/limits. */
  fdLimit: number;
}

function fdLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  return line ? Number(line.split(/\s+/)[3]) : NaN;
}

/** A snapshot after garbage collection has settled (the process must run with --expose-gc). */
export async function snapshot(): Promise<Snapshot> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('soak processes must run with --expose-gc');
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 50));
  }
  const resources: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) resources[r] = (resources[r] ?? 0) + 1;
  return {
    ...memoryFigures(),
    fds: readdirSync('/proc/self/fd').length,
    resources,
    fdLimit: fdLimit(),
  };
}

type Command = (args: never) => unknown;

/** Child side: answers the orchestrator's calls; exits when asked or when the parent goes away. */
export function serveCommands(commands: Record<string, Command>): void {
  process.on('message', (m: { id: number; cmd: string; args: unknown }) => {
    const fn = commands[m.cmd];
    Promise.resolve()
      .then(() => {
        if (!fn) throw new Error(`unknown command ${m.cmd}`);
        return fn(m.args as never);
      })
      .then(
        (result) => process.send!({ id: m.id, ok: true, result }),
        (err: unknown) => process.send!({ id: m.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
      );
  });
  // The orchestrator died: do not linger with thousands of sockets.
  process.on('disconnect', () => process.exit(0));
}

/** Orchestrator side: one soak child process. */
export class Child {
  private readonly proc: ChildProcess;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly exited: Promise<number | null>;

  constructor(script: string, name: string) {
    // Soft limit up to the hard limit: one descriptor per connection.
    this.proc = spawn('bash', ['-c', 'ulimit -Sn "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', process.execPath, '--expose-gc', script], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.proc.on('message', (m: { id: number; ok: boolean; result?: unknown; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(`${name}: ${m.error}`));
    });
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code) => {
        for (const p of this.pending.values()) p.reject(new Error(`${name} exited with code ${code}`));
        this.pending.clear();
        resolve(code);
      });
    });
  }

  call<T>(cmd: string, args: unknown = {}, timeoutMs = 300_000): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${cmd} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.proc.send({ id, cmd, args });
    });
  }

  /** Asks the child to exit; kills it if it does not within 10 s. */
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.call('exit', {}, 10_000).catch(() => {});
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}
