// The harness's side of a benchmark server process (bench/servers/*.mjs and
// server-life.mjs): start it, wait for its LISTENING line, keep its INFO
// lines, send it control lines answered by MEMORY lines, and stop it.
import { spawn } from 'node:child_process';
import { onWordLines } from './server-life.mjs';

/**
 * Starts `argv` (a server program, pinned or not) as `name`; resolves with
 * { child, port, pid, info, control(line) → the MEMORY answer } once it has
 * announced its port, or rejects if it exits or says nothing for
 * startTimeoutMs. Its stderr is passed on, each chunk labelled with `name`.
 */
export function startServerProcess(name, argv, { cwd, startTimeoutMs, controlTimeoutMs }) {
  const [cmd, ...args] = argv;
  const child = spawn(cmd, args, { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c) => {
    stderr += c;
    process.stderr.write(`  [${name}] ${c}`);
  });
  const waiters = [];
  const info = {};
  const started = new Promise((resolve, reject) => {
    let listening = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} server did not announce its port within ${startTimeoutMs} ms`));
    }, startTimeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (!listening) reject(new Error(`${name} server exited (${code}) before listening${stderr ? `: ${stderr.trim()}` : ''}`));
      for (const w of waiters.splice(0)) w.reject(new Error(`${name} server exited (${code})`));
    });
    onWordLines(child.stdout, (word, rest) => {
      if (word === 'INFO') Object.assign(info, JSON.parse(rest));
      else if (word === 'MEMORY') waiters.shift()?.resolve(JSON.parse(rest));
      else if (word === 'LISTENING' && !listening) {
        listening = true;
        clearTimeout(timer);
        const control = (line) =>
          new Promise((res, rej) => {
            const t = setTimeout(() => rej(new Error(`${name} server did not answer "${line}" within ${controlTimeoutMs} ms`)), controlTimeoutMs);
            waiters.push({ resolve: (v) => (clearTimeout(t), res(v)), reject: (e) => (clearTimeout(t), rej(e)) });
            child.stdin.write(`${line}\n`);
          });
        resolve({ child, port: Number(rest), pid: child.pid, info, control });
      }
    });
  });
  return { child, started };
}

/** Stops a process we started: closes its stdin (SIGTERM if it has none), then SIGKILL after 5 s. */
export function stopProcess(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    if (child.stdin) child.stdin.end();
    else child.kill('SIGTERM');
  });
}
