// Runs the compiled `sockeye` bin (node dist/src/cli/main.js) as a child
// process for the CLI's end-to-end tests, with every wait bounded.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
/** Upper bound for any one wait on a child: generous, the machine is shared and slow. */
export const WAIT_MS = 15_000;

export interface Cli {
  child: ChildProcessWithoutNullStreams;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match of `re` in stdout (or stderr), failing after WAIT_MS. */
  waitFor(re: RegExp, stream?: 'stdout' | 'stderr'): Promise<RegExpMatchArray>;
  /** Resolves with the exit status; fails (and kills the child) after WAIT_MS. */
  exited(): Promise<number | null>;
}

export function cli(args: string[], opts: { env?: Record<string, string>; stdin?: string | null } = {}): Cli {
  const env = { ...process.env };
  delete env.PORT;
  const child = spawn(process.execPath, [MAIN, ...args], { env: { ...env, ...opts.env }, stdio: 'pipe' });
  let out = '';
  let err = '';
  const watchers: Array<() => void> = [];
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    out += s;
    for (const w of [...watchers]) w();
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    err += s;
    for (const w of [...watchers]) w();
  });
  // stdin: a string is written and ended; null leaves the pipe open (an interactive user who types nothing).
  if (opts.stdin !== null) child.stdin.end(opts.stdin ?? '');
  const exit = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const done = { value: false };
  void exit.then(() => {
    done.value = true;
    for (const w of [...watchers]) w();
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitFor(re, stream = 'stdout') {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = (stream === 'stdout' ? out : err).match(re);
          if (m) {
            finish();
            resolve(m);
          } else if (done.value) {
            finish();
            reject(new Error(`exited before ${re} appeared on ${stream}\nstdout: ${out}\nstderr: ${err}`));
          }
        };
        const timer = setTimeout(() => {
          finish();
          child.kill('SIGKILL');
          reject(new Error(`${re} did not appear on ${stream} within ${WAIT_MS} ms\nstdout: ${out}\nstderr: ${err}`));
        }, WAIT_MS);
        const finish = () => {
          clearTimeout(timer);
          const i = watchers.indexOf(check);
          if (i !== -1) watchers.splice(i, 1);
        };
        watchers.push(check);
        check();
      });
    },
    exited() {
      const timer = setTimeout(() => child.kill('SIGKILL'), WAIT_MS);
      return exit.finally(() => clearTimeout(timer));
    },
  };
}

/** Kills the child if a test failed before it exited. */
export function reap(c: Cli): void {
  if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
}

/** `p`, or a failure after WAIT_MS: no await in these tests can hang the run. */
export function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${WAIT_MS} ms`)), WAIT_MS);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

