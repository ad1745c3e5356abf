/**
 * Hostile input: floods, and fairness to the other connections while one
 * runs. Each flood runs against a sockeye echo server in a child process of
 * its own (test/hostile/flood-server.ts, started fresh for each flood), with
 * the library's default limits unless the case says otherwise, so that the
 * server's memory is measured apart from the flooder's and the canary's.
 *
 * For every flood:
 * - a CANARY (a sockeye client on its own connection) sends a 64-byte binary
 *   message every CANARY_INTERVAL_MS from before the flood to after it; every
 *   echo must come back intact and in order, and the 99th percentile of the
 *   round trips of the messages sent while the flood runs must stay under
 *   CANARY_P99_BOUND_MS (a connection's reads yield to the others after a
 *   bounded number of frames);
 * - the server's peak RSS during the flood, over a baseline taken after a
 *   full GC, stays under what the flooding connection's limits allow it to
 *   hold (maxQueuedBytes + maxMessageBytes) plus RSS_SLACK (invariant S3);
 * - the flooder is either served within its limits or closed by the server
 *   with the documented close code, which is checked on what the flooder
 *   receives and on what the server reports;
 * - the server then accepts a new connection and echoes on it.
 *
 * The floods (each bounded in frames and in time):
 * - 200,000 pings from a client reading its pongs slowly: closed with 1008
 *   (maxControlFramesPerSecond, default 1000 a second with a burst of 1000);
 * - pings of 125 bytes, their pongs 1.5 times maxQueuedBytes in all, read
 *   slowly, with maxControlFramesPerSecond 0: served; the pongs wait for the slow reader in the session's outbound
 *   queue at about their wire size, and a pong that would take the queue past
 *   maxQueuedBytes replaces the newest one waiting (RFC 6455 section 5.5.3),
 *   so the queue never passes maxQueuedBytes (by more than one pong); the
 *   last pong the flooder gets answers its last ping;
 * - 200,000 unsolicited pongs: closed with 1008;
 * - 1-byte binary messages from a client that reads its echoes: every echo
 *   comes back, in order;
 * - 1-byte binary messages from a client that never reads, their echoes
 *   1.25 times maxQueuedBytes in all (as many as the write window allows): the echoes wait
 *   in the server's queue at about their wire size (small frames are merged),
 *   the queue stays under maxQueuedBytes, and every echo the queue could not
 *   take is reported as dropped: what the client reads afterwards plus what
 *   was dropped is what it sent (invariant S4);
 * - a first fragment, then empty continuation frames: each frame counts as
 *   at least 64 bytes against maxMessageBytes, so the message is failed with
 *   1008 long before the flood ends;
 * - 100-byte messages sent faster than they can be echoed to a client that
 *   does not read, their echoes 2.5 times maxQueuedBytes in all: as for
 *   1-byte messages, with drops once the queue is full.
 *
 * The figures (canary p50/p99/max, RSS growth, what happened to the flooder)
 * are printed with t.diagnostic(). The flooders run in this process, so they
 * yield to the event loop after every write: the canary shares that loop.
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { DEFAULT_SESSION_LIMITS, connect, type ClientSession, type Message, type SessionLimits } from '../../src/index.js';
import { DEFAULT_LIMITS } from '../../src/core/index.js';
import type { FloodServerReply, FloodServerRequest, FloodSessionStats } from './flood-server.js';
import { FrameScanner, MiB, delay, rawUpgrade, waitUntil, withTimeout } from './harness.js';

const CANARY_INTERVAL_MS = 50;
const CANARY_BYTES = 64;
const CANARY_P99_BOUND_MS = 500;
/** What the server may grow by beyond the flooding connection's own limits (V8's heap, read buffers). */
const RSS_SLACK = 16 * MiB;
/** The canary's latency window lasts at least this long, so that a flood stopped at once still has samples. */
const MIN_WINDOW_MS = 1000;
/** Every flood stops writing after this long, whatever is left. */
const FLOOD_WRITE_MS = 6000;
/** The write window of the 1-byte flood from a client that never reads, long enough for its echoes to fill maxQueuedBytes. */
const TINY_SILENT_WRITE_MS = 20_000;
/** How often the slow reader reads (one socket.read(), what the socket has buffered). */
const SLOW_READ_EVERY_MS = 100;
/** Bytes per write of a flood: many frames per write, and a turn of the event loop between writes. */
const WRITE_BYTES = 64 * 1024;

// ------------------------------------------------------------------ frames

/**
 * `count` masked client frames (mask key 0, so the payload is as written) of
 * one opcode and a `payloadBytes` payload (under 126) whose first bytes are
 * the frame's sequence number (big-endian, as many bytes as fit in 4).
 */
function frames(opcodeByte: number, first: number, count: number, payloadBytes: number): Buffer {
  const size = 6 + payloadBytes;
  const b = Buffer.alloc(count * size, 0x61);
  for (let i = 0; i < count; i++) {
    const p = i * size;
    b[p] = opcodeByte;
    b[p + 1] = 0x80 | payloadBytes;
    b.writeUInt32BE(0, p + 2);
    const seq = first + i;
    if (payloadBytes >= 4) b.writeUInt32BE(seq, p + 6);
    else for (let k = 0; k < payloadBytes; k++) b[p + 6 + k] = (seq >>> (8 * (payloadBytes - 1 - k))) & 0xff;
  }
  return b;
}

const PING = 0x89;
const PONG = 0x8a;
const BINARY = 0x82;
/** A continuation frame without FIN. */
const CONTINUATION = 0x00;
/** A binary frame without FIN: the first fragment of a message. */
const BINARY_FIRST = 0x02;

// ------------------------------------------------------------------ the server process

type Reply<T extends FloodServerReply['type']> = Extract<FloodServerReply, { type: T }>;

/** The flood server's limits in force: the defaults, with `overrides`. */
function limitsInForce(overrides: Partial<SessionLimits>): SessionLimits {
  return { ...DEFAULT_LIMITS, ...DEFAULT_SESSION_LIMITS, ...overrides };
}

/** Resident set size of a process from /proc/<pid>/status, or null where there is no /proc. */
function procRss(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

class FloodServer {
  readonly child: ChildProcess;
  readonly port: number;
  readonly pid: number;
  readonly limits: SessionLimits;
  private readonly exited: Promise<void>;

  private constructor(child: ChildProcess, exited: Promise<void>, port: number, pid: number, limits: SessionLimits) {
    this.child = child;
    this.exited = exited;
    this.port = port;
    this.pid = pid;
    this.limits = limits;
  }

  static async start(overrides: Partial<SessionLimits> = {}): Promise<FloodServer> {
    const script = fileURLToPath(new URL('./flood-server.js', import.meta.url));
    const args = Object.keys(overrides).length > 0 ? [JSON.stringify(overrides)] : [];
    const child = fork(script, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      const { port, pid } = await FloodServer.reply(child, 'listening', 20_000);
      return new FloodServer(child, exited, port, pid, limitsInForce(overrides));
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
  }

  private static reply<T extends FloodServerReply['type']>(child: ChildProcess, type: T, ms: number, match: (m: Reply<T>) => boolean = () => true): Promise<Reply<T>> {
    let on: ((m: FloodServerReply) => void) | null = null;
    const p = new Promise<Reply<T>>((resolve) => {
      on = (m: FloodServerReply) => {
        if (m.type !== type || !match(m as Reply<T>)) return;
        resolve(m as Reply<T>);
      };
      child.on('message', on);
    });
    return withTimeout(p, ms, `the flood server's '${type}'`).finally(() => child.off('message', on!));
  }

  private ask<T extends FloodServerReply['type']>(req: FloodServerRequest, type: T, match?: (m: Reply<T>) => boolean): Promise<Reply<T>> {
    const p = FloodServer.reply(this.child, type, 20_000, match);
    this.child.send(req);
    return p;
  }

  url(path: string): string {
    return `ws://127.0.0.1:${this.port}${path}`;
  }

  /** RSS after two full GCs. */
  async memory(): Promise<number> {
    return (await this.ask({ type: 'memory' }, 'memory')).rss;
  }

  /** RSS now, without a GC: from /proc when there is one (not delayed by a busy server), else asked over IPC. */
  async rss(): Promise<number> {
    return procRss(this.pid) ?? (await this.ask({ type: 'rss' }, 'rss')).rss;
  }

  async stats(path: string): Promise<FloodSessionStats | null> {
    return (await this.ask({ type: 'stats', path }, 'stats', (m) => m.path === path)).stats;
  }

  /** Ends the child (bounded): SIGKILL, as nothing in it needs an orderly end. */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await withTimeout(this.exited, 10_000, 'the flood server to exit');
  }
}

/** The peak of a process's RSS from start() to stop(), sampled every few ms. */
class RssWatch {
  private peak = 0;
  private timer: NodeJS.Timeout | null = null;
  private inflight = false;

  constructor(private readonly server: FloodServer) {}

  start(): void {
    this.timer = setInterval(() => {
      if (this.inflight) return;
      this.inflight = true;
      void this.server.rss().then(
        (r) => {
          this.inflight = false;
          if (r > this.peak) this.peak = r;
        },
        () => (this.inflight = false),
      );
    }, 5);
  }

  /** The peak so far. */
  get peakSoFar(): number {
    return this.peak;
  }

  async stop(): Promise<number> {
    if (this.timer) clearInterval(this.timer);
    const r = await this.server.rss();
    return Math.max(this.peak, r);
  }
}

// ------------------------------------------------------------------ the canary

interface Sent {
  seq: number;
  data: Buffer;
  sentAt: number;
}

interface LatencySummary {
  samples: number;
  p50: number;
  p99: number;
  max: number;
}

function canaryPayload(seq: number): Buffer {
  const b = Buffer.alloc(CANARY_BYTES);
  b.writeUInt32BE(seq, 0);
  for (let i = 4; i < b.length; i++) b[i] = (seq * 13 + i * 7) & 0xff;
  return b;
}

/**
 * A well-behaved client that sends a 64-byte binary message every
 * CANARY_INTERVAL_MS, whether or not earlier echoes came back (a stall shows
 * as many late echoes, not one), and records every round trip.
 */
class FloodCanary {
  readonly problems: string[] = [];
  private readonly inflight: Sent[] = [];
  /** [sentAt, round trip] of every echo, in order. */
  private readonly trips: Array<[number, number]> = [];
  private seq = 0;
  private stopping = false;
  private timer: NodeJS.Timeout | null = null;

  private constructor(private readonly client: ClientSession) {}

  static async start(url: string): Promise<FloodCanary> {
    let canary: FloodCanary | null = null;
    const client = await withTimeout(
      connect(url, {
        keepalive: null,
        handler: {
          onMessage: (_s, m) => canary?.onEcho(m),
          onClose: (_s, info) => {
            if (canary && !canary.stopping) canary.problems.push(`the canary's connection closed: ${info.code} ${info.reason}`);
          },
        },
      }),
      10_000,
      'the canary to connect',
    );
    canary = new FloodCanary(client);
    canary.timer = setInterval(() => canary.tick(), CANARY_INTERVAL_MS);
    return canary;
  }

  private tick(): void {
    if (this.stopping || this.client.state !== 'open') return;
    // Bounded: a server that stopped answering does not make the canary pile up messages for ever.
    if (this.inflight.length >= 1000) return void this.problems.push('1000 canary echoes outstanding');
    const seq = this.seq++;
    const data = canaryPayload(seq);
    this.inflight.push({ seq, data, sentAt: performance.now() });
    if (this.client.send(data, { binary: true }) === 'dropped') this.problems.push(`canary send ${seq} was dropped`);
  }

  private onEcho(m: Message): void {
    const now = performance.now();
    const e = this.inflight.shift();
    if (!e) return void this.problems.push(`unexpected message (${m.data.length} bytes)`);
    if (!m.binary || !m.data.equals(e.data)) this.problems.push(`echo ${e.seq} corrupted or out of order (${m.data.length} bytes)`);
    this.trips.push([e.sentAt, now - e.sentAt]);
  }

  /** Waits (bounded) until every message sent so far has come back. */
  async settle(ms = 10_000): Promise<void> {
    const last = this.seq;
    const deadline = Date.now() + ms;
    while (this.inflight.length > 0 && this.inflight[0].seq < last && this.problems.length === 0 && Date.now() < deadline) await delay(5);
  }

  /** Round trips of the messages sent from `from` to `to` (performance.now() times). */
  latency(from: number, to: number): LatencySummary {
    const l = this.trips.filter(([at]) => at >= from && at <= to).map(([, rtt]) => rtt);
    // A message sent in the window that has not come back counts as still waiting, at its age so far.
    const now = performance.now();
    for (const e of this.inflight) if (e.sentAt >= from && e.sentAt <= to) l.push(now - e.sentAt);
    l.sort((a, b) => a - b);
    if (l.length === 0) return { samples: 0, p50: NaN, p99: NaN, max: NaN };
    const at = (q: number) => l[Math.min(l.length - 1, Math.ceil(q * l.length) - 1)];
    return { samples: l.length, p50: at(0.5), p99: at(0.99), max: l[l.length - 1] };
  }

  /** Stops sending, checks every echo came back, closes cleanly. */
  async stop(): Promise<void> {
    await this.settle();
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    assert.deepEqual(this.problems, [], 'canary problems');
    assert.equal(this.inflight.length, 0, `${this.inflight.length} canary echoes never came back`);
    this.client.close(1000, 'canary done');
    assert.equal((await withTimeout(this.client.closed, 10_000, 'the canary to close')).code, 1000);
  }

  terminate(): void {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    this.client.terminate();
  }
}

// ------------------------------------------------------------------ the flooder

type ReadMode = 'all' | 'slow' | 'none';

/**
 * A raw client that writes a flood of hand-made frames and looks at what
 * comes back with a streaming scanner (it keeps nothing but counts and the
 * frames the case asks for).
 */
class Flooder {
  readonly socket: Socket;
  closeCode: number | undefined;
  socketClosed = false;
  /** Frames received, by opcode. */
  readonly received = new Map<number, number>();
  written = 0;
  private readonly scanner: FrameScanner;
  private slowTimer: NodeJS.Timeout | null = null;
  private mode: ReadMode = 'none';
  private onData: ((opcode: number, payload: Buffer) => void) | null = null;

  private constructor(socket: Socket, rest: Buffer) {
    this.socket = socket;
    this.scanner = new FrameScanner((opcode, payload) => {
      this.received.set(opcode, (this.received.get(opcode) ?? 0) + 1);
      if (opcode === 0x8) this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
      this.onData?.(opcode, payload);
    });
    socket.once('close', () => (this.socketClosed = true));
    if (rest.length > 0) this.scanner.push(rest);
  }

  static async open(server: FloodServer, path: string, onFrame: ((opcode: number, payload: Buffer) => void) | null = null): Promise<Flooder> {
    const { socket, rest } = await rawUpgrade(server.port, { path });
    const f = new Flooder(socket, rest);
    f.onData = onFrame;
    return f;
  }

  get ended(): boolean {
    return this.closeCode !== undefined || this.socketClosed;
  }

  count(opcode: number): number {
    return this.received.get(opcode) ?? 0;
  }

  /** 'all': reads everything as it comes; 'slow': one socket.read() every SLOW_READ_EVERY_MS; 'none': never reads. */
  read(mode: ReadMode): void {
    if (mode === this.mode) return;
    if (this.slowTimer) clearInterval(this.slowTimer);
    this.slowTimer = null;
    this.mode = mode;
    if (mode === 'all') {
      this.socket.on('data', (c: Buffer) => this.scanner.push(c));
      this.socket.resume();
    } else if (mode === 'slow') {
      this.slowTimer = setInterval(() => {
        const c = this.socket.read() as Buffer | null;
        if (c) this.scanner.push(c);
      }, SLOW_READ_EVERY_MS);
    }
  }

  /**
   * Writes `total` frames, `batch(first, count)` making them, WRITE_BYTES at
   * a time; stops early when the server closes or after `writeMs`.
   */
  async flood(total: number, frameBytes: number, batch: (first: number, count: number) => Buffer, writeMs = FLOOD_WRITE_MS): Promise<void> {
    const perWrite = Math.max(1, Math.floor(WRITE_BYTES / frameBytes));
    const deadline = performance.now() + writeMs;
    while (this.written < total && !this.ended && !this.socket.destroyed && performance.now() < deadline) {
      const n = Math.min(perWrite, total - this.written);
      const ok = this.socket.write(batch(this.written, n));
      this.written += n;
      if (ok) await new Promise((r) => setImmediate(r));
      else await this.drained(deadline);
    }
  }

  /** Resolves on 'drain', or once the connection ends or the deadline passes (a server that stopped reading). */
  private drained(deadline: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearInterval(poll);
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      const poll = setInterval(() => {
        if (this.ended || performance.now() > deadline) done();
      }, 20);
      this.socket.once('drain', done);
      this.socket.once('close', done);
    });
  }

  /** Writes one more frame (not counted as flood). */
  write(b: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(b);
  }

  destroy(): void {
    if (this.slowTimer) clearInterval(this.slowTimer);
    this.socket.destroy();
  }
}

// ------------------------------------------------------------------ one flood, measured

interface Figures {
  latency: LatencySummary;
  rssGrowth: number;
  rssBound: number;
}

const ms = (n: number) => (Number.isNaN(n) ? '-' : n.toFixed(1));

/** A server process and its canary, for the floods of one describe() block. */
class FloodBench {
  private constructor(
    readonly server: FloodServer,
    readonly canary: FloodCanary,
  ) {}

  static async start(overrides: Partial<SessionLimits> = {}): Promise<FloodBench> {
    const server = await FloodServer.start(overrides);
    try {
      const canary = await FloodCanary.start(server.url('/canary'));
      return new FloodBench(server, canary);
    } catch (err) {
      await server.kill();
      throw err;
    }
  }

  /**
   * Runs `flood` (the writing) then `settle` (waiting for and reading the
   * outcome, returning a line that says what happened to the flooder), with
   * the server's RSS watched throughout and the canary's round trips taken
   * over the writing (at least MIN_WINDOW_MS). Prints the figures.
   */
  async run(t: TestContext, name: string, flood: () => Promise<void>, settle: () => Promise<string>): Promise<Figures> {
    // Warm-up: the canary has had a few round trips before the baseline.
    await delay(3 * CANARY_INTERVAL_MS);
    const baseline = await this.server.memory();
    const watch = new RssWatch(this.server);
    watch.start();
    const from = performance.now();
    let to: number;
    let outcome: string;
    let peak: number;
    let writingPeak: number;
    try {
      await flood();
      const minEnd = from + MIN_WINDOW_MS;
      if (performance.now() < minEnd) await delay(minEnd - performance.now());
      to = performance.now();
      writingPeak = watch.peakSoFar;
      outcome = await settle();
    } finally {
      peak = await watch.stop();
    }
    await this.canary.settle();
    const latency = this.canary.latency(from, to);
    const rssBound = this.server.limits.maxQueuedBytes + this.server.limits.maxMessageBytes + RSS_SLACK;
    const figures: Figures = { latency, rssGrowth: peak - baseline, rssBound };
    t.diagnostic(`${name}: ${outcome}`);
    t.diagnostic(
      `${name}: canary ${latency.samples} echoes during ${((to - from) / 1000).toFixed(1)} s, p50 ${ms(latency.p50)} ms, p99 ${ms(latency.p99)} ms, max ${ms(latency.max)} ms; ` +
        `server RSS +${(figures.rssGrowth / MiB).toFixed(1)} MiB at peak (+${(Math.max(0, writingPeak - baseline) / MiB).toFixed(1)} while the flood was written; bound ${(rssBound / MiB).toFixed(0)} MiB, baseline ${(baseline / MiB).toFixed(1)} MiB)`,
    );
    return figures;
  }

  /** The fairness and memory checks every flood ends with, then a new connection that echoes. */
  async assertFairAndHealthy(figures: Figures): Promise<void> {
    assert.deepEqual(this.canary.problems, [], 'canary problems');
    assert.ok(figures.latency.samples > 0, 'the canary had echoes during the flood');
    assert.ok(figures.latency.p99 < CANARY_P99_BOUND_MS, `canary p99 ${figures.latency.p99.toFixed(1)} ms during the flood (bound ${CANARY_P99_BOUND_MS} ms)`);
    assert.ok(figures.rssGrowth <= figures.rssBound, `server RSS grew by ${(figures.rssGrowth / MiB).toFixed(1)} MiB (bound ${(figures.rssBound / MiB).toFixed(0)} MiB)`);
    await assertAcceptsAndEchoes(this.server);
  }

  async end(): Promise<void> {
    try {
      await this.canary.stop();
    } finally {
      this.canary.terminate();
      await this.server.kill();
    }
  }
}

/** A new client connects, gets its message back intact, and closes cleanly. */
async function assertAcceptsAndEchoes(server: FloodServer): Promise<void> {
  const c = await withTimeout(connect(server.url('/probe'), { keepalive: null }), 10_000, 'a new connection after the flood');
  try {
    const payload = canaryPayload(0xabcdef);
    assert.notEqual(c.send(payload, { binary: true }), 'dropped');
    const r = await withTimeout(c.messages().next(), 10_000, 'the probe echo');
    assert.equal(r.done, false);
    assert.ok((r.value as Message).data.equals(payload), 'the probe echo is intact');
    c.close(1000);
    assert.equal((await withTimeout(c.closed, 10_000, 'the probe to close')).code, 1000);
  } finally {
    c.terminate();
  }
}

/** Waits (bounded) for the server's account of the session on `path` to show that it closed. */
async function serverClose(server: FloodServer, path: string): Promise<FloodSessionStats> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const st = await server.stats(path);
    if (st?.close || Date.now() > deadline) {
      assert.ok(st, `the server saw no session on ${path}`);
      return st;
    }
    await delay(50);
  }
}

const closeLine = (f: Flooder, st: FloodSessionStats | null) =>
  `flooder got close ${f.closeCode ?? 'none'}, ${f.written} frames written; server acted on ${st?.pings ?? 0} pings, ${st?.pongs ?? 0} pongs, ${st?.messages ?? 0} messages, ` +
  `then closed with ${st?.close?.code ?? 'none'} (${st?.close?.error ?? 'no error'})`;

/**
 * The flood cases where the server must close the flooder with 1008: writes
 * `total` frames (fewer once closed), reading as `mode` says, then reads
 * everything to find the close frame.
 */
interface ClosingFlood {
  name: string;
  path: string;
  mode: ReadMode;
  total: number;
  frameBytes: number;
  batch: (first: number, count: number) => Buffer;
  /** Written before the flood (a first fragment). */
  prelude?: Buffer;
}

async function closedWith1008(t: TestContext, b: FloodBench, { name, path, mode, total, frameBytes, batch, prelude }: ClosingFlood): Promise<void> {
  const f = await Flooder.open(b.server, path);
  try {
    f.read(mode);
    if (prelude) f.write(prelude);
    let st: FloodSessionStats | null = null;
    const figures = await b.run(
      t,
      name,
      () => f.flood(total, frameBytes, batch),
      async () => {
        f.read('all');
        await waitUntil(() => f.ended, 10_000, 'the server to close the flooder').catch(() => {});
        st = await serverClose(b.server, path);
        return closeLine(f, st);
      },
    );
    assert.equal(f.closeCode, 1008, 'the flooder received a close frame with 1008');
    assert.equal(st!.close?.code, 1008, 'the server closed the session with 1008');
    // The kernel may take the whole flood before the server reads it: what counts is that the server stops acting on it.
    assert.ok(st!.pings + st!.pongs + st!.messages < total, 'the server stopped processing the flood once it closed');
    await b.assertFairAndHealthy(figures);
  } finally {
    f.destroy();
  }
}

/** One flood: a fresh server (with `limits` over the defaults) for one case, stopped afterwards even on failure. */
function floodCase(title: string, limits: Partial<SessionLimits> | undefined, name: string, body: (t: TestContext, b: FloodBench) => Promise<void>): void {
  describe(title, () => {
    let b: FloodBench;
    before(async () => {
      b = await FloodBench.start(limits);
    });
    after(async () => {
      await b?.end();
    });
    it(name, { timeout: 60_000 }, (t) => body(t, b));
  });
}

// ------------------------------------------------------------------ the floods

const PINGS = 200_000;
/**
 * Ping payload of the flood the server serves: pongs of 127 bytes, far more
 * in all than the kernel's socket buffers hold, so that the server's outbound
 * side really is blocked while the flooder reads slowly.
 */
const BIG_PING = 125;
/** What may wait for a blocked flooder at once: maxQueuedBytes, and one pong more (the first over it, when none waited to be replaced). */
const BLOCKED_PONG_BOUND = DEFAULT_SESSION_LIMITS.maxQueuedBytes + 6 + BIG_PING;
/** Pings whose pongs (2 + BIG_PING bytes each) come to 1.5 times maxQueuedBytes: the queue must reach its limit. */
const ALLOWED_PINGS = Math.ceil((1.5 * DEFAULT_SESSION_LIMITS.maxQueuedBytes) / (2 + BIG_PING));
/** Messages of `size` bytes whose echoes (2 + size bytes each) come to `times` maxQueuedBytes: drops must follow. */
function pastTheQueue(size: number, times: number): number {
  return Math.ceil((times * DEFAULT_SESSION_LIMITS.maxQueuedBytes) / (2 + size));
}

floodCase('flood: 200,000 pings, pongs read slowly (default limits)', undefined, 'closed with 1008 (maxControlFramesPerSecond); canary p99 and server memory bounded; new connections echo', async (t, b) => {
  await closedWith1008(t, b, { name: 'ping flood', path: '/flood-pings', mode: 'slow', total: PINGS, frameBytes: 10, batch: (first, n) => frames(PING, first, n, 4) });
});

floodCase(`flood: ${ALLOWED_PINGS} pings of 125 bytes (pongs 1.5 x maxQueuedBytes), pongs read slowly, maxControlFramesPerSecond 0`, { maxControlFramesPerSecond: 0 }, 'served: every ping read, the last pong answers the last ping, the queue within maxQueuedBytes; canary and memory bounded', async (t, b) => {
  const path = '/flood-pings-allowed';
  let lastPong = -1;
  let outOfOrder = 0;
  const f = await Flooder.open(b.server, path, (opcode, payload) => {
    if (opcode !== 0xa) return;
    const seq = payload.readUInt32BE(0);
    if (seq <= lastPong) outOfOrder++;
    lastPong = seq;
  });
  try {
    f.read('slow');
    let st: FloodSessionStats | null = null;
    const figures = await b.run(
      t,
      'ping flood, control limit off',
      () => f.flood(ALLOWED_PINGS, 6 + BIG_PING, (first, n) => frames(PING, first, n, BIG_PING)),
      async () => {
        // Once every ping is written, the flooder reads everything: the newest pong must come.
        f.read('all');
        await waitUntil(() => lastPong === ALLOWED_PINGS - 1 || f.ended, 20_000, 'the pong for the last ping').catch(() => {});
        st = await b.server.stats(path);
        return `${f.written} pings written, ${f.count(0xa)} pongs received (the last for ping ${lastPong}), ${outOfOrder} out of order; server saw ${st?.pings ?? 0} pings, bufferedAmount peaked at ${((st?.maxBuffered ?? 0) / 1024).toFixed(1)} KiB; close ${f.closeCode ?? 'none'}`;
      },
    );
    assert.equal(f.written, ALLOWED_PINGS, 'every ping was written');
    assert.equal(f.closeCode, undefined, 'pinging with the limit off is no offence: no close');
    assert.equal(st!.pings, ALLOWED_PINGS, 'the server read every ping');
    assert.equal(st!.close, null, 'the session is still open');
    assert.equal(lastPong, ALLOWED_PINGS - 1, 'the last pong answers the last ping');
    assert.equal(outOfOrder, 0, 'pongs come in order');
    // Past maxQueuedBytes, a newer pong replaces the newest one waiting (RFC 6455 section 5.5.3).
    assert.ok(st!.maxBuffered <= BLOCKED_PONG_BOUND, `bufferedAmount reached ${st!.maxBuffered} bytes (bound ${BLOCKED_PONG_BOUND})`);
    await b.assertFairAndHealthy(figures);
  } finally {
    f.destroy();
  }
});

floodCase('flood: 200,000 unsolicited pongs (default limits)', undefined, 'closed with 1008 (maxControlFramesPerSecond); canary p99 and server memory bounded; new connections echo', async (t, b) => {
  await closedWith1008(t, b, { name: 'pong flood', path: '/flood-pongs', mode: 'all', total: PINGS, frameBytes: 10, batch: (first, n) => frames(PONG, first, n, 4) });
});

const TINY = 300_000;

floodCase('flood: 1-byte binary messages from a client that reads its echoes (default limits)', undefined, `served: ${TINY} messages, every echo back in order; canary p99 and server memory bounded`, async (t, b) => {
  const path = '/flood-tiny-reading';
  let echoes = 0;
  let wrong = 0;
  const f = await Flooder.open(b.server, path, (opcode, payload) => {
    if (opcode !== 0x2) return;
    if (payload.length !== 1 || payload[0] !== (echoes & 0xff)) wrong++;
    echoes++;
  });
  try {
    f.read('all');
    let st: FloodSessionStats | null = null;
    const figures = await b.run(
      t,
      '1-byte messages, reading',
      () => f.flood(TINY, 7, (first, n) => frames(BINARY, first, n, 1)),
      async () => {
        await waitUntil(() => echoes >= f.written || f.ended, 20_000, 'every echo').catch(() => {});
        st = await b.server.stats(path);
        return `${f.written} messages written, ${echoes} echoes received (${wrong} wrong or out of order); server: ${st?.dropped ?? 0} dropped, bufferedAmount peak ${((st?.maxBuffered ?? 0) / MiB).toFixed(2)} MiB; close ${f.closeCode ?? 'none'}`;
      },
    );
    assert.equal(f.written, TINY, 'every message was written');
    assert.equal(f.closeCode, undefined, 'a client that reads is served: no close');
    assert.equal(echoes, TINY, 'every echo came back');
    assert.equal(wrong, 0, 'echoes intact and in order');
    assert.equal(st!.dropped, 0, 'nothing was dropped for a client that reads');
    await b.assertFairAndHealthy(figures);
  } finally {
    f.destroy();
  }
});

/**
 * A client that writes `total` messages of `size` bytes and reads nothing
 * until it is done: served within maxQueuedBytes, the echoes the queue could
 * not take reported as dropped; then it reads, and what it gets plus what was
 * dropped is what it sent, in order.
 */
async function nonReader(t: TestContext, b: FloodBench, name: string, path: string, total: number, size: number, writeMs = FLOOD_WRITE_MS): Promise<void> {
  let echoes = 0;
  let last = -1;
  let wrong = 0;
  const f = await Flooder.open(b.server, path, (opcode, payload) => {
    if (opcode !== 0x2) return;
    echoes++;
    if (payload.length !== size) return void wrong++;
    // 1-byte payloads carry the sequence number's low byte only: order is checked where it fits.
    if (size >= 4) {
      const seq = payload.readUInt32BE(0);
      if (seq <= last) wrong++;
      last = seq;
    }
  });
  try {
    f.read('none');
    let st: FloodSessionStats | null = null;
    const figures = await b.run(
      t,
      name,
      () => f.flood(total, 6 + size, (first, n) => frames(BINARY, first, n, size), writeMs),
      async () => {
        // Everything written reaches the server (reading never waits for writing, S1).
        const deadline = Date.now() + 20_000;
        for (;;) {
          st = await b.server.stats(path);
          if ((st?.messages ?? 0) >= f.written || st?.close || Date.now() > deadline) break;
          await delay(50);
        }
        const queued = st?.maxBuffered ?? 0;
        f.read('all');
        const expected = st?.echoed ?? 0;
        await waitUntil(() => echoes >= expected || f.ended, 30_000, 'the queued echoes').catch(() => {});
        return (
          `${f.written} messages written; server: ${st?.messages ?? 0} read, ${st?.echoed ?? 0} echoed, ${st?.dropped ?? 0} dropped (reported: ${st?.errors.join(', ') || 'none'}), ` +
          `bufferedAmount peak ${(queued / MiB).toFixed(2)} MiB; flooder then read ${echoes} echoes (${wrong} wrong or out of order); close ${f.closeCode ?? 'none'}`
        );
      },
    );
    assert.equal(f.closeCode, undefined, 'not reading is no offence: the server drops what its queue cannot take, it does not close');
    assert.equal(st!.close, null, 'the session is still open');
    assert.equal(st!.messages, f.written, 'the server read every message');
    assert.equal(st!.echoed + st!.dropped, f.written, 'every message was echoed or its echo reported dropped');
    if (st!.dropped > 0) assert.ok(st!.errors.includes('ERR_LIMIT_MAX_QUEUED_BYTES'), 'the drops were reported to the handler');
    // At most one message past the limit: a send is refused only when something is already waiting.
    assert.ok(st!.maxBuffered <= b.server.limits.maxQueuedBytes + 2 + size, `bufferedAmount reached ${st!.maxBuffered}`);
    assert.equal(echoes, st!.echoed, 'the flooder got every echo that was not reported dropped (S4)');
    assert.equal(wrong, 0, 'echoes intact and in order');
    await b.assertFairAndHealthy(figures);
  } finally {
    f.destroy();
  }
}

floodCase('flood: 1-byte binary messages from a client that never reads (default limits)', undefined, 'served within maxQueuedBytes, drops reported, queued echoes cost about their size; canary p99 bounded', async (t, b) => {
  // Some 17 million messages: more than FLOOD_WRITE_MS lets the flooder write, hence a window of its own.
  await nonReader(t, b, '1-byte messages, never reading', '/flood-tiny-silent', pastTheQueue(1, 1.25), 1, TINY_SILENT_WRITE_MS);
});

floodCase('flood: empty continuation frames within one message (default limits)', undefined, 'closed with 1008 (each frame counts 64 bytes against maxMessageBytes); canary p99 and server memory bounded', async (t, b) => {
  // Far more frames than maxMessageBytes / 64.
  const total = 1_000_000;
  assert.ok(total * 64 > DEFAULT_LIMITS.maxMessageBytes);
  await closedWith1008(t, b, {
    name: 'empty continuations',
    path: '/flood-continuations',
    mode: 'all',
    total,
    frameBytes: 6,
    batch: (_first, n) => frames(CONTINUATION, 0, n, 0),
    prelude: frames(BINARY_FIRST, 0, 1, 1),
  });
});

floodCase('flood: 100-byte messages to a client that does not read (default limits)', undefined, 'served within maxQueuedBytes, the echoes past it reported dropped; canary p99 and server memory bounded', async (t, b) => {
  await nonReader(t, b, '100-byte messages, never reading', '/flood-small-silent', pastTheQueue(100, 2.5), 100);
});
