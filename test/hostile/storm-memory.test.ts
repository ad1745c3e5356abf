/**
 * Hostile input: 2,000 connections opened at once, each sending a message and
 * reading its echo, then all closing; what does the server keep afterwards?
 *
 * The server runs alone in a child process (test/hostile/storm-memory-server.ts)
 * so that the clients' memory, which is in this process, does not count. It
 * is warmed up (200 connections), its baseline taken, then the storm: raw TCP
 * clients complete the opening handshake, send a masked text frame and check
 * the echo, close with 1000 and wait for the end of TCP. The child's memory is
 * then sampled every 250 ms for 5 s. The same run is made against `ws`, as
 * the reference for what Node itself keeps when a library does this work.
 *
 * What sockeye must do, and what this test asserts:
 * - keep nothing: `server.clients` is empty, the context's timer wheel holds
 *   no entry, no slot number and no timer, and after a full garbage
 *   collection (the child runs with --expose-gc, for this check only) the
 *   live heap is back within LIVE_HEAP_SLACK of the baseline. A session,
 *   handshake or buffer kept per connection (about 1 KiB or more) fails it;
 * - not hold more RSS than Node holds for ws: 5 s after the storm, sockeye's
 *   RSS above its baseline is at most ws's plus RSS_SLACK_OVER_WS.
 *
 * What stays is V8's: during the storm the young generation grows (its
 * semi-spaces double while thousands of live connections survive
 * scavenges) and old space fills with the connections' objects, promoted
 * before they died. An idle process runs no garbage collection, so those
 * pages stay resident until V8's memory reducer runs (it starts on a timer
 * some seconds after the last mark-compact and only once it judges the
 * allocation rate low) or new work triggers a collection. ws, and a bare
 * node:net server, keep the same kind of memory. How far RSS is from the
 * baseline 5 s after the storm, and what share of the growth was released,
 * is printed for both servers (a diagnostic, not asserted: only a forced
 * collection, which production code must not do, would bring it back).
 *
 * Both ends need one file descriptor per connection in their own process;
 * if RLIMIT_NOFILE is too low the storm is scaled down and the output says so.
 */
import { it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { openFileLimit } from '../helpers/open-file-limit.js';
import { connect as netConnect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { acceptFor, closePayload, delay, encodeRawFrame, newKey, upgradeRequest, withTimeout } from '../helpers/ws-pair.js';
import type { ChildMessage, Sample } from './storm-memory-server.js';

const WANTED = 2000;
const WARM_UP = 200;
const SAMPLE_EVERY_MS = 250;
const WINDOW_MS = 5000;
const MiB = 1024 * 1024;
/** Live heap after a full GC, above the baseline: code compiled during the storm, nothing per connection. */
const LIVE_HEAP_SLACK = 2 * MiB;
/** Run-to-run noise between two child processes doing the same work. */
const RSS_SLACK_OVER_WS = 3 * MiB;

type Kind = 'sockeye' | 'ws';

class Child {
  private readonly proc: ChildProcess;
  private readonly exited: Promise<void>;

  private constructor(proc: ChildProcess) {
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.once('exit', () => resolve()));
  }

  static async start(kind: Kind): Promise<{ child: Child; port: number }> {
    const script = fileURLToPath(new URL('./storm-memory-server.js', import.meta.url));
    const proc = fork(script, [kind], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const child = new Child(proc);
    const m = await child.next('listening', 15_000);
    return { child, port: m.port };
  }

  private next<T extends ChildMessage['type']>(type: T, ms: number): Promise<Extract<ChildMessage, { type: T }>> {
    return withTimeout(
      new Promise((resolve, reject) => {
        const on = (m: ChildMessage) => {
          if (m.type !== type) return;
          this.proc.off('message', on);
          this.proc.off('exit', onExit);
          resolve(m as Extract<ChildMessage, { type: T }>);
        };
        const onExit = (code: number | null) => {
          this.proc.off('message', on);
          reject(new Error(`the server process exited (${code}) before its '${type}'`));
        };
        this.proc.on('message', on);
        this.proc.once('exit', onExit);
      }),
      ms,
      `the server process's '${type}'`,
    );
  }

  /** process.memoryUsage() and the server's state, now (`gc`: after a full garbage collection). */
  async sample(gc = false): Promise<Sample> {
    this.proc.send({ type: gc ? 'gc' : 'sample' });
    return this.next('sample', 10_000);
  }

  async stop(): Promise<void> {
    if (this.proc.connected) this.proc.disconnect();
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(t);
  }
}

interface StormClient {
  socket: Socket;
  /** Resolves once the 101 came with the right accept key and the message came back intact. */
  echoed: Promise<void>;
  /** Resolves when the TCP connection is closed. */
  closed: Promise<void>;
}

/** A raw client: handshake, one text message, waits for its echo (the server's frames are unmasked, section 5.1). */
function stormClient(port: number, i: number): StormClient {
  const socket = netConnect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  const key = newKey();
  const text = `storm ${i}`;
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const echoed = new Promise<void>((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    let opened = false;
    let done = false;
    socket.once('connect', () => socket.write(upgradeRequest({ key, path: `/storm-${i}` })));
    socket.on('data', (d: Buffer) => {
      if (done) return;
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      if (!opened) {
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = buf.subarray(0, end).toString('latin1');
        if (!head.startsWith('HTTP/1.1 101 ') || !head.includes(`Sec-WebSocket-Accept: ${acceptFor(key)}`)) {
          done = true;
          reject(new Error(`connection ${i}: ${head.split('\r\n')[0]}`));
          return;
        }
        opened = true;
        buf = buf.subarray(end + 4);
        socket.write(encodeRawFrame(0x1, text));
      }
      if (buf.length < 2) return;
      const len = buf[1] & 0x7f;
      if (buf.length < 2 + len) return;
      done = true;
      const payload = buf.subarray(2, 2 + len).toString('utf8');
      if (buf[0] !== 0x81 || payload !== text) reject(new Error(`connection ${i}: echo ${buf[0].toString(16)} ${JSON.stringify(payload)}, expected ${JSON.stringify(text)}`));
      else resolve();
    });
    socket.once('close', () => {
      if (!done) reject(new Error(`connection ${i} closed before its echo`));
    });
  });
  return { socket, echoed, closed };
}

/** Opens `n` connections at once, each echoing one message; then all close (1000) and their TCP connections end. */
async function storm(port: number, n: number, onAllOpen: () => Promise<void> = async () => {}): Promise<void> {
  const clients = Array.from({ length: n }, (_, i) => stormClient(port, i));
  try {
    await withTimeout(Promise.all(clients.map((c) => c.echoed)), 20_000, `${n} handshakes and echoes`);
    await onAllOpen();
    for (const c of clients) c.socket.write(encodeRawFrame(0x8, closePayload(1000, 'storm over')));
    await withTimeout(Promise.all(clients.map((c) => c.closed)), 10_000, `${n} connections to close`);
  } finally {
    for (const c of clients) c.socket.destroy();
  }
}

interface Run {
  kind: Kind;
  baseline: Sample;
  open: Sample;
  /** From the moment the last connection closed, every SAMPLE_EVERY_MS for WINDOW_MS (the last one at WINDOW_MS). */
  after: Sample[];
  /** After a full GC, at the end. */
  live: Sample;
  stormMs: number;
}

async function run(kind: Kind, n: number): Promise<Run> {
  const { child, port } = await Child.start(kind);
  try {
    await storm(port, WARM_UP);
    await delay(500);
    const baseline = await child.sample(true);
    const started = performance.now();
    let open: Sample | null = null;
    await storm(port, n, async () => {
      open = await child.sample();
    });
    const stormMs = performance.now() - started;
    const after: Sample[] = [];
    const t0 = performance.now();
    for (let k = 0; k * SAMPLE_EVERY_MS <= WINDOW_MS; k++) {
      const wait = t0 + k * SAMPLE_EVERY_MS - performance.now();
      if (wait > 0) await delay(wait);
      after.push(await child.sample());
    }
    const live = await child.sample(true);
    return { kind, baseline, open: open!, after, live, stormMs };
  } finally {
    await child.stop();
  }
}

const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

interface Summary {
  /** Highest RSS seen (all open, or while closing) above the baseline. */
  growth: number;
  /** RSS above the baseline at the end of the window. */
  remainder: number;
  /** Share of the growth given back by the end of the window. */
  released: number;
}

function summarize(t: TestContext, r: Run): Summary {
  const base = r.baseline.rss;
  const peak = Math.max(r.open.rss, ...r.after.map((s) => s.rss));
  const last = r.after[r.after.length - 1];
  const growth = peak - base;
  const remainder = last.rss - base;
  const released = growth > 0 ? (peak - last.rss) / growth : 1;
  const perSecond = r.after.filter((_, k) => (k * SAMPLE_EVERY_MS) % 1000 === 0).map((s) => mib(s.rss - base)).join(', ');
  t.diagnostic(
    `${r.kind}: storm ${r.stormMs.toFixed(0)} ms; RSS baseline ${mib(base)}, growth ${mib(growth)}, above baseline at 0..5 s: ${perSecond}; ` +
      `released ${(released * 100).toFixed(0)}% of the growth; heap total +${mib(last.heapTotal - r.baseline.heapTotal)}, ` +
      `heap used +${mib(last.heapUsed - r.baseline.heapUsed)} (after a full GC: ${mib(r.live.heapUsed - r.baseline.heapUsed)}); external +${mib(last.external - r.baseline.external)}`,
  );
  return { growth, remainder, released };
}

it(`${WANTED} connections opened at once, echoed and closed: the server keeps nothing, and its RSS afterwards is no more than Node keeps for ws`, { timeout: 45_000 }, async (t) => {
  const limit = openFileLimit();
  const n = Math.min(WANTED, Math.floor(limit - 300));
  if (n < WANTED) t.diagnostic(`RLIMIT_NOFILE is ${limit}: scaled down to ${n} connections (raise it with ulimit -n to run all ${WANTED})`);
  assert.ok(n >= 500, `the file descriptor limit (${limit}) leaves room for only ${n} connections`);

  const sockeye = await run('sockeye', n);
  const ws = await run('ws', n);
  const s = summarize(t, sockeye);
  const w = summarize(t, ws);

  // Nothing kept: no session, no handshake, no timer slot, no live object per connection.
  const end = sockeye.after[sockeye.after.length - 1];
  assert.equal(sockeye.open.clients, n, 'every storm connection was a session of the server');
  assert.equal(sockeye.after[0].clients, 0, 'server.clients is empty once the last connection has closed');
  // At once, not at the wheel's next wake-up: the emptied slots of 2,000 handshakes and sessions are not kept.
  assert.deepEqual(sockeye.after[0].wheel, { size: 0, heldSlots: 0, armed: false }, 'the timer wheel holds no entry, no slot and no timer');
  assert.deepEqual(end.wheel, { size: 0, heldSlots: 0, armed: false });
  const liveGrowth = sockeye.live.heapUsed - sockeye.baseline.heapUsed;
  assert.ok(liveGrowth < LIVE_HEAP_SLACK, `the live heap after a full GC is ${mib(liveGrowth)} above the baseline (bound ${mib(LIVE_HEAP_SLACK)})`);

  // What stays resident is Node's: no more than it keeps for ws doing the same work.
  assert.ok(
    s.remainder <= w.remainder + RSS_SLACK_OVER_WS,
    `5 s after the storm sockeye's RSS is ${mib(s.remainder)} above its baseline, ws's ${mib(w.remainder)} (bound: ws + ${mib(RSS_SLACK_OVER_WS)})`,
  );
  t.diagnostic(`5 s after the storm: sockeye ${mib(s.remainder)} above its baseline (${(s.released * 100).toFixed(0)}% of ${mib(s.growth)} released), ws ${mib(w.remainder)}`);
});
