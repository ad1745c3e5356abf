/**
 * A Python websockets peer run as a child process (test/interop/python/*.py):
 * it reports what it sees as JSON lines on stdout; every wait on it is
 * bounded and fails with the peer's whole transcript. Shared by the Python
 * interop tests.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { PYTHON } from './peers.js';

const PY_DIR = fileURLToPath(new URL('../../../test/interop/python/', import.meta.url));

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function withTimeout<T>(promise: Promise<T>, what: string, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** How a Python peer describes a message it sent or received (common.describe). */
export interface PyMessage {
  type: 'text' | 'binary';
  len: number;
  sha: string;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type PyEvent = { event: string } & Record<string, any>;

/** A Python peer process: its JSON-line reports, and waits on them that fail with the whole transcript. */
export class PythonPeer {
  readonly child: ChildProcess;
  readonly events: PyEvent[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private stderr = '';
  private hasExited = false;
  private readonly listeners = new Set<() => void>();

  private readonly stepTimeoutMs: number;

  constructor(script: string, args: string[], stepTimeoutMs: number) {
    this.stepTimeoutMs = stepTimeoutMs;
    // -B: no __pycache__ written into the source tree.
    this.child = spawn(PYTHON, ['-B', PY_DIR + script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (s: string) => {
      // Bounded: enough for a traceback.
      if (this.stderr.length < 64 * 1024) this.stderr += s;
    });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      let ev: PyEvent;
      try {
        ev = JSON.parse(line) as PyEvent;
      } catch {
        ev = { event: 'unparsed-output', line };
      }
      this.events.push(ev);
      this.notify();
    });
    this.exited = new Promise((resolve) => {
      // 'close', not 'exit': it comes after stdout has been read to the end, so every report is in.
      this.child.once('close', (code, signal) => {
        this.hasExited = true;
        this.notify();
        resolve({ code, signal });
      });
    });
    this.child.once('error', (err) => {
      this.stderr += `\nspawn error: ${err.message}`;
      this.hasExited = true;
      this.notify();
    });
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  transcript(): string {
    return `python events:\n${this.events.map((e) => '  ' + JSON.stringify(e)).join('\n')}\npython stderr:\n${this.stderr}`;
  }

  /** The first reported event matching `pred`, waiting for it up to the step timeout. */
  waitFor(what: string, pred: (ev: PyEvent) => boolean): Promise<PyEvent> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.events.find(pred);
        if (found) {
          done();
          resolve(found);
        } else if (this.hasExited) {
          done();
          reject(new Error(`python peer exited before reporting ${what}\n${this.transcript()}`));
        }
      };
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${this.stepTimeoutMs} ms waiting for python to report ${what}\n${this.transcript()}`));
      }, this.stepTimeoutMs);
      this.listeners.add(check);
      check();
    });
  }

  /** Waits for a clean exit (status 0), bounded. */
  async succeeded(): Promise<void> {
    const { code, signal } = await withTimeout(this.exited, 'the python peer to exit', this.stepTimeoutMs);
    assert.equal(code, 0, `python peer exited with ${code ?? signal}\n${this.transcript()}`);
  }

  /** Always safe to call: ends the process if it still runs. */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
