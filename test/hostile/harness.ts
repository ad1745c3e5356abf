/**
 * The hostile-input harness: every case in test/hostile/ runs
 * against a real sockeye server on 127.0.0.1 with
 *
 * - an echo handler and explicit limits (HOSTILE_LIMITS below), so that a
 *   memory bound can be stated and checked for each case;
 * - a CANARY: a well-behaved sockeye client on its own connection that sends a
 *   message every few milliseconds for the whole case and checks every echo
 *   byte for byte (text and binary, small and over the compression
 *   threshold). A missed, reordered or corrupted echo, or the canary's
 *   connection closing, fails the case. Its echo latency is reported with
 *   t.diagnostic() but, as the machine is shared and slow, never decides
 *   pass or fail;
 * - health checks after the attack: the hostile connection is closed, the
 *   server still accepts a NEW connection and echoes on it, the canary made
 *   progress after the attack;
 * - a memory watch that samples RSS and arrayBuffers (Buffers live there)
 *   while the attack runs, after a forced GC for the baseline, so that "memory
 *   bounded" is a number with a stated limit.
 *
 * Connections are told apart by path: hostile ones use /hostile..., the
 * canary /canary, health probes /probe.
 *
 * No module-level mutable state: every object owns its sockets and timers.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { connect, type ClientSession, type CloseInfo, type Message, type ServerHandler, type ServerOptions, type ServerSession, type SessionLimits, type WebSocketServer } from '../../src/index.js';
import { DEFAULT_LIMITS } from '../../src/core/index.js';
import { testCert } from '../helpers/certs.js';
import { connect as netConnect, type Socket } from 'node:net';
import { RawClient, acceptFor, newKey, startServer, upgradeRequest, waitUntil, withTimeout } from '../helpers/ws-pair.js';

export { RawClient, closePayload, encodeRawFrame, upgradeRequest, newKey, acceptFor, waitUntil, withTimeout, delay, startRawServer, switchingProtocols } from '../helpers/ws-pair.js';

/**
 * The limits every hostile case runs under unless it says otherwise. The
 * sizes are deliberately far below the defaults (16 MiB messages, 16 MiB
 * queue) so that a bound "a few times the limit" is small enough to tell
 * apart from an unbounded buffer; maxFragments, unlimited by default, is set
 * so that the explicit count limit is exercised too. The control-frame rate
 * is the default (it bounds work, not memory).
 */
export const HOSTILE_LIMITS: SessionLimits = {
  maxMessageBytes: 1024 * 1024,
  maxFrameBytes: 1024 * 1024,
  maxFragments: 1024,
  maxControlFramesPerSecond: DEFAULT_LIMITS.maxControlFramesPerSecond,
  maxQueuedBytes: 4 * 1024 * 1024,
  highWaterMark: 256 * 1024,
};

/** Handshake limits of the hostile server (the defaults are 16384 bytes, 100 fields, 10 s). */
export const HOSTILE_HEAD = { maxHeadBytes: 16384, maxHeaders: 100, handshakeTimeoutMs: 2000 };

// ------------------------------------------------------------------ memory

/** A forced full GC (the V8 flag is set at runtime; the function comes from a fresh context). */
function makeGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}
const gc = makeGc();

export interface MemoryGrowth {
  /** Peak RSS minus the baseline, in bytes. */
  rss: number;
  /** Peak process.memoryUsage().arrayBuffers minus the baseline (Buffers, zlib output). */
  arrayBuffers: number;
  samples: number;
}

/**
 * Samples memory every `intervalMs` from start() to stop(); the baseline is
 * taken after a full GC. The attacker runs in the same process as the
 * server, so its own buffers count too: cases keep theirs small (streamed,
 * reused), and the bounds below include that.
 */
export class MemoryWatch {
  private readonly baseline: NodeJS.MemoryUsage;
  private peakRss: number;
  private peakAb: number;
  private samples = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(intervalMs = 10) {
    gc();
    this.baseline = process.memoryUsage();
    this.peakRss = this.baseline.rss;
    this.peakAb = this.baseline.arrayBuffers;
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  sample(): void {
    const m = process.memoryUsage();
    this.samples++;
    if (m.rss > this.peakRss) this.peakRss = m.rss;
    if (m.arrayBuffers > this.peakAb) this.peakAb = m.arrayBuffers;
  }

  stop(): MemoryGrowth {
    clearInterval(this.timer);
    this.sample();
    return { rss: this.peakRss - this.baseline.rss, arrayBuffers: this.peakAb - this.baseline.arrayBuffers, samples: this.samples };
  }
}

export const MiB = 1024 * 1024;

/** Asserts both peaks stayed under their bounds and reports them. */
export function assertMemoryBounded(t: TestContext, g: MemoryGrowth, bounds: { rss: number; arrayBuffers: number }, what: string): void {
  t.diagnostic(`${what}: peak growth rss ${(g.rss / MiB).toFixed(1)} MiB (bound ${bounds.rss / MiB}), arrayBuffers ${(g.arrayBuffers / MiB).toFixed(1)} MiB (bound ${bounds.arrayBuffers / MiB}), ${g.samples} samples`);
  assert.ok(g.arrayBuffers < bounds.arrayBuffers, `${what}: arrayBuffers grew by ${g.arrayBuffers} bytes (bound ${bounds.arrayBuffers})`);
  assert.ok(g.rss < bounds.rss, `${what}: RSS grew by ${g.rss} bytes (bound ${bounds.rss})`);
}

// ------------------------------------------------------------------ canary

interface Outstanding {
  seq: number;
  binary: boolean;
  data: Buffer;
  sentAt: number;
}

export interface CanaryMark {
  echoed: number;
  latencyIndex: number;
}

/**
 * The payload of canary message `seq`: cycles through a short text with
 * multi-byte characters, a compressible text over the permessage-deflate
 * threshold (1024 bytes), and binary data of varying size.
 */
function canaryPayload(seq: number): { binary: boolean; data: Buffer } {
  switch (seq % 4) {
    case 0:
      return { binary: false, data: Buffer.from(`canary ${seq} é€😀`, 'utf8') };
    case 1:
      return { binary: false, data: Buffer.from(`canary ${seq} `.repeat(200), 'utf8') };
    case 2: {
      const b = Buffer.alloc(16 + (seq % 200));
      for (let i = 0; i < b.length; i++) b[i] = (seq * 31 + i * 7) & 0xff;
      return { binary: true, data: b };
    }
    default: {
      const b = Buffer.alloc(3000 + (seq % 100));
      for (let i = 0; i < b.length; i++) b[i] = (i % 17 === 0 ? seq : i) & 0xff;
      return { binary: true, data: b };
    }
  }
}

/**
 * A well-behaved client echoing on its own connection all through a case:
 * at most `maxInflight` messages out at a time, a new one every
 * `intervalMs`. Every echo must equal, in order, what was sent.
 */
export class Canary {
  readonly problems: string[] = [];
  readonly latencies: number[] = [];
  sent = 0;
  echoed = 0;
  private readonly inflight: Outstanding[] = [];
  private client: ClientSession | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopping = false;
  private readonly maxInflight: number;

  private constructor(maxInflight: number) {
    this.maxInflight = maxInflight;
  }

  static async start(url: string, opts: { perMessageDeflate?: boolean; tls?: boolean; protocol?: string; intervalMs?: number; maxInflight?: number } = {}): Promise<Canary> {
    const c = new Canary(opts.maxInflight ?? 4);
    c.client = await connect(url, {
      keepalive: null,
      ...(opts.protocol !== undefined ? { protocol: opts.protocol } : {}),
      perMessageDeflate: opts.perMessageDeflate ?? false,
      ...(opts.tls ? { tls: { ca: testCert().ca } } : {}),
      handler: {
        onMessage: (_s, m) => c.onEcho(m),
        onClose: (_s, info) => {
          if (!c.stopping) c.problems.push(`canary connection closed during the case: ${info.code} ${info.reason} ${info.error?.message ?? ''}`);
        },
      },
    });
    if (opts.perMessageDeflate) assert.deepEqual(c.client.extensions, ['permessage-deflate'], 'the canary negotiated permessage-deflate');
    c.timer = setInterval(() => c.tick(), opts.intervalMs ?? 5);
    return c;
  }

  private tick(): void {
    const client = this.client!;
    if (this.stopping || client.state !== 'open' || this.inflight.length >= this.maxInflight) return;
    const seq = this.sent++;
    const { binary, data } = canaryPayload(seq);
    this.inflight.push({ seq, binary, data, sentAt: performance.now() });
    const status = client.send(data, { binary });
    if (status === 'dropped') this.problems.push(`canary send ${seq} was dropped`);
  }

  private onEcho(m: Message): void {
    const e = this.inflight.shift();
    if (!e) {
      this.problems.push(`unexpected message from the server (${m.data.length} bytes)`);
      return;
    }
    if (m.binary !== e.binary || !m.data.equals(e.data)) {
      this.problems.push(`echo ${e.seq} corrupted or out of order (${m.binary ? 'binary' : 'text'} ${m.data.length} bytes, expected ${e.binary ? 'binary' : 'text'} ${e.data.length})`);
    }
    this.echoed++;
    this.latencies.push(performance.now() - e.sentAt);
  }

  mark(): CanaryMark {
    return { echoed: this.echoed, latencyIndex: this.latencies.length };
  }

  /** Waits (bounded) until `n` more echoes than at `mark` came back, and checks that nothing went wrong so far. */
  async assertAlive(mark: CanaryMark, n = 3, ms = 15_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.echoed < mark.echoed + n && this.problems.length === 0) {
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.deepEqual(this.problems, [], 'canary problems');
    assert.ok(this.echoed >= mark.echoed + n, `canary made no progress: ${this.echoed - mark.echoed} echoes in ${ms} ms`);
    assert.equal(this.client!.state, 'open', 'the canary is still open');
  }

  /** Latency summary since `mark` (for t.diagnostic; not pass/fail). */
  latencySince(mark: CanaryMark): string {
    const l = this.latencies.slice(mark.latencyIndex).sort((a, b) => a - b);
    if (l.length === 0) return 'no echoes';
    const p = (q: number) => l[Math.min(l.length - 1, Math.floor(q * l.length))].toFixed(1);
    return `${l.length} echoes, latency p50 ${p(0.5)} ms, p99 ${p(0.99)} ms, max ${l[l.length - 1].toFixed(1)} ms`;
  }

  /** Stops sending, waits for the last echoes, closes cleanly (1000) and checks that every echo came back intact. */
  async stop(): Promise<void> {
    const client = this.client!;
    const deadline = Date.now() + 10_000;
    while (this.inflight.length > 0 && this.problems.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    assert.deepEqual(this.problems, [], 'canary problems');
    assert.equal(this.inflight.length, 0, `${this.inflight.length} canary echoes never came back`);
    client.close(1000, 'canary done');
    const info = await withTimeout(client.closed, 10_000, 'the canary to close');
    assert.equal(info.code, 1000);
    assert.equal(info.wasClean, true);
    assert.equal(info.unsentMessages, 0);
  }

  /** Stops without checks (cleanup after a failed case). */
  terminate(): void {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    this.client?.terminate();
  }
}

// ------------------------------------------------------------------ server

export interface ServerClose {
  path: string;
  info: CloseInfo;
}

export interface HostileServer {
  server: WebSocketServer;
  port: number;
  secure: boolean;
  url(path?: string): string;
  /** Server-side onClose of every session, with the path it was opened on. */
  readonly closes: ServerClose[];
  /** Sessions opened, by path. */
  readonly opened: string[];
  /** Everything given to the server's onError. */
  readonly errors: unknown[];
  /** Server-side onClose infos for paths starting with /hostile. */
  hostileCloses(): CloseInfo[];
}

/**
 * A sockeye echo server on 127.0.0.1:0 with HOSTILE_LIMITS and HOSTILE_HEAD,
 * keepalive off unless given; `options` override (handler excepted: the echo
 * handler records opens and closes). tls: true serves wss with testCert().
 */
export interface HostileServerOptions extends Omit<ServerOptions, 'tls' | 'handler' | 'protocols'> {
  /** Serve wss:// with testCert(). */
  tls?: boolean;
  /** Subprotocols routed to the echo handler (as `protocols: { name: echo }`). Default none. */
  protocolNames?: string[];
  /** Whether the echo handler is also the default handler (clients offering no known subprotocol). Default true. */
  defaultHandler?: boolean;
}

export async function startHostileServer(options: HostileServerOptions = {}): Promise<HostileServer> {
  const closes: ServerClose[] = [];
  const opened: string[] = [];
  const errors: unknown[] = [];
  const { tls, protocolNames, defaultHandler, ...rest } = options;
  const cert = tls ? testCert() : null;
  const echo: ServerHandler = {
    onOpen(s: ServerSession) {
      opened.push(s.request.path);
    },
    onMessage(s: ServerSession, m: Message) {
      s.send(m.data, { binary: m.binary });
    },
    onClose(s: ServerSession, info: CloseInfo) {
      closes.push({ path: s.request.path, info });
    },
  };
  // A Map would not do here: the option is a plain object, as an application writes it.
  const protocols: Record<string, ServerHandler> = {};
  for (const name of protocolNames ?? []) protocols[name] = echo;
  const t = await startServer({
    limits: HOSTILE_LIMITS,
    ...HOSTILE_HEAD,
    closeTimeoutMs: 2000,
    keepalive: null,
    onError: (e) => errors.push(e),
    ...rest,
    ...(cert ? { tls: { key: cert.key, cert: cert.cert } } : {}),
    protocols,
    ...(defaultHandler === false ? {} : { handler: echo }),
  });
  return {
    server: t.server,
    port: t.port,
    secure: !!tls,
    url: t.url,
    closes,
    opened,
    errors,
    hostileCloses: () => closes.filter((c) => c.path.startsWith('/hostile')).map((c) => c.info),
  };
}

/**
 * The server still accepts: a NEW client connects (over ws or wss as the
 * server), gets an echo back intact, and closes cleanly.
 */
export async function assertAcceptsNewConnection(h: HostileServer, opts: { perMessageDeflate?: boolean; protocol?: string } = {}): Promise<void> {
  const c = await withTimeout(
    connect(h.url('/probe'), {
      keepalive: null,
      perMessageDeflate: opts.perMessageDeflate ?? false,
      ...(opts.protocol !== undefined ? { protocol: opts.protocol } : {}),
      ...(h.secure ? { tls: { ca: testCert().ca } } : {}),
    }),
    10_000,
    'a new connection to the server',
  );
  try {
    const payload = `probe ${Date.now()} ` + 'é'.repeat(600);
    assert.notEqual(c.send(payload), 'dropped');
    const r = await withTimeout(c.messages().next(), 10_000, 'the probe echo');
    assert.equal(r.done, false);
    assert.equal((r.value as Message).text, payload);
    c.close(1000);
    assert.equal((await withTimeout(c.closed, 10_000, 'the probe to close')).code, 1000);
  } finally {
    c.terminate();
  }
}

/**
 * One case's environment: server plus canary, with the checks every case
 * ends with. Use `await using`-free style: create in before(), end() in after().
 */
export class HostileBench {
  readonly h: HostileServer;
  readonly canary: Canary;
  private readonly probe: { perMessageDeflate: boolean; protocol: string | undefined };
  private constructor(h: HostileServer, canary: Canary, probe: { perMessageDeflate: boolean; protocol: string | undefined }) {
    this.h = h;
    this.canary = canary;
    this.probe = probe;
  }

  /** `canaryDeflate`: the canary (and health probes) negotiate permessage-deflate; `canaryProtocol`: they offer this subprotocol. */
  static async start(options: HostileServerOptions & { canaryDeflate?: boolean; canaryProtocol?: string } = {}): Promise<HostileBench> {
    const { canaryDeflate, canaryProtocol, ...serverOptions } = options;
    const h = await startHostileServer(serverOptions);
    const canary = await Canary.start(h.url('/canary'), { perMessageDeflate: canaryDeflate ?? false, tls: h.secure, protocol: canaryProtocol });
    return new HostileBench(h, canary, { perMessageDeflate: canaryDeflate ?? false, protocol: canaryProtocol });
  }

  /**
   * The common end of a case: the canary kept echoing (n more echoes after
   * `mark`, no problem ever), the server accepts a new connection, and
   * the canary's latency during the case is reported.
   */
  async assertHealthy(t: TestContext, mark: CanaryMark): Promise<void> {
    await this.canary.assertAlive(mark);
    await assertAcceptsNewConnection(this.h, this.probe);
    t.diagnostic(`canary during the case: ${this.canary.latencySince(mark)}`);
  }

  /** Stops the canary (checking every echo) and closes the server (bounded). */
  async end(): Promise<void> {
    try {
      await this.canary.stop();
    } finally {
      this.canary.terminate();
      await withTimeout(this.h.server.close(), 15_000, 'server.close()');
    }
  }
}

/** Counts of process.getActiveResourcesInfo() by type (TCPSocketWrap, TCPServerWrap, Timeout, ...). */
export function activeResources(): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) m.set(r, (m.get(r) ?? 0) + 1);
  return m;
}

// ------------------------------------------------------------- raw frames

/**
 * A streaming scanner of the frames a server sends (unmasked, RFC 6455
 * section 5.1), for floods: it calls `onFrame` for each frame and keeps
 * nothing but a partial frame, so that counting 100,000 pongs costs no
 * memory in the attacker (which shares the process with the server).
 */
export class FrameScanner {
  private buf: Buffer = Buffer.alloc(0);
  private readonly onFrame: (opcode: number, payload: Buffer, fin: boolean) => void;
  constructor(onFrame: (opcode: number, payload: Buffer, fin: boolean) => void) {
    this.onFrame = onFrame;
  }
  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let p = 0;
    const b = this.buf;
    for (;;) {
      if (b.length - p < 2) break;
      const len7 = b[p + 1] & 0x7f;
      const masked = (b[p + 1] & 0x80) !== 0;
      const ext = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
      const headLen = 2 + ext + (masked ? 4 : 0);
      if (b.length - p < headLen) break;
      const len = ext === 0 ? len7 : ext === 2 ? b.readUInt16BE(p + 2) : Number(b.readBigUInt64BE(p + 2));
      if (b.length - p < headLen + len) break;
      let payload = b.subarray(p + headLen, p + headLen + len);
      if (masked) {
        const m = b.subarray(p + 2 + ext, p + headLen);
        payload = Buffer.from(payload);
        for (let i = 0; i < payload.length; i++) payload[i] ^= m[i & 3];
      }
      this.onFrame(b[p] & 0x0f, payload, (b[p] & 0x80) !== 0);
      p += headLen + len;
    }
    this.buf = p === b.length ? Buffer.alloc(0) : Buffer.from(b.subarray(p));
  }
}

/** A masked client frame header (no payload) announcing `length` (as a bigint, any 64-bit value) with a zero mask. */
export function rawHeader(opts: { opcode: number; fin?: boolean; rsv?: number; length: bigint }): Buffer {
  const h = Buffer.alloc(14);
  h[0] = (opts.fin === false ? 0 : 0x80) | ((opts.rsv ?? 0) << 4) | opts.opcode;
  h[1] = 0x80 | 127;
  h.writeBigUInt64BE(opts.length, 2);
  // A mask key of 0 leaves the payload as is (section 5.3); the key's value does not matter to these cases.
  return h;
}

/** Writes `data` and resolves when the socket has taken it (waits for 'drain' when needed; rejects if the socket closes first). */
export async function writeAndDrain(socket: Socket, data: Buffer | string): Promise<void> {
  if (socket.destroyed) throw new Error('socket destroyed');
  // The attacker shares the event loop with the server: yield on every write, or a loop of
  // writes the kernel takes at once would run as one long chain of microtasks and starve the
  // server (and the canary) in a way no remote attacker could.
  if (socket.write(data)) return new Promise((resolve) => setImmediate(resolve));
  return new Promise((resolve, reject) => {
    const onDrain = () => {
      socket.off('close', onClose);
      resolve();
    };
    const onClose = () => {
      socket.off('drain', onDrain);
      reject(new Error('socket closed while writing'));
    };
    socket.once('drain', onDrain);
    socket.once('close', onClose);
  });
}

/**
 * Opens a TCP connection to the server and completes an upgrade by hand,
 * leaving the socket with no 'data' listener (the case attaches its own) and
 * returning the bytes that followed the 101 head. Throws on any other answer.
 */
export async function rawUpgrade(port: number, opts: { path?: string; headers?: Record<string, string | null> } = {}): Promise<{ socket: Socket; response: string; rest: Buffer }> {
  const socket = netConnect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  socket.on('error', () => {});
  await withTimeout(new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('close', () => reject(new Error('closed before connect')));
  }), 10_000, 'TCP connect');
  const key = newKey();
  socket.write(upgradeRequest({ key, path: opts.path ?? '/hostile', headers: opts.headers }));
  let buf = Buffer.alloc(0);
  const { head, rest } = await withTimeout(new Promise<{ head: string; rest: Buffer }>((resolve, reject) => {
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      resolve({ head: buf.subarray(0, end).toString('latin1'), rest: buf.subarray(end + 4) });
    };
    const onClose = () => reject(new Error('closed before the 101'));
    socket.on('data', onData);
    socket.once('close', onClose);
  }), 10_000, 'the 101 answer');
  if (!head.startsWith('HTTP/1.1 101 ')) throw new Error(`expected 101, got ${head.split('\r\n')[0]}`);
  if (!head.includes(`Sec-WebSocket-Accept: ${acceptFor(key)}`)) throw new Error('wrong Sec-WebSocket-Accept');
  return { socket, response: head, rest };
}

// ------------------------------------------------------- common expectations

/**
 * Sends a request head (or any bytes) on a new TCP connection and expects an
 * HTTP answer with `status`, after which the server closes the connection
 * (its answers carry Connection: close). Returns the answer and how long it
 * took from the first byte written.
 */
export async function expectRejection(port: number, request: string | Buffer, status: number, ms = 10_000): Promise<{ status: number; headers: Map<string, string[]>; body: string; elapsedMs: number }> {
  const raw = await RawClient.connect(port);
  try {
    const started = performance.now();
    raw.write(request);
    const r = await raw.waitRejection(ms);
    const elapsedMs = performance.now() - started;
    assert.equal(r.status, status, `answer ${r.status} ${r.body}`);
    assert.equal(raw.isClosed, true, 'the hostile connection is closed');
    return { ...r, elapsedMs };
  } finally {
    raw.destroy();
  }
}

/**
 * Opens a WebSocket on `path` with a raw client, writes `bytes`, and expects
 * the server to fail the connection with `code` (RFC 6455 section 7.1.7):
 * a close frame with that code and no data frame before it (but for
 * `echoesBefore` echoes of valid messages sent first), the TCP
 * connection closed by the server, and the server-side onClose with the same
 * code (wasClean false, the error carrying the code). Returns the reason.
 */
export async function expectFailure(
  h: HostileServer,
  bytes: Buffer | Buffer[],
  code: number,
  opts: { path: string; headers?: Record<string, string | null>; ms?: number; echoesBefore?: number },
): Promise<{ reason: string; serverInfo: CloseInfo }> {
  assert.ok(opts.path.startsWith('/hostile'), 'hostile paths start with /hostile');
  const ms = opts.ms ?? 10_000;
  const raw = await RawClient.open(h.port, { path: opts.path, headers: opts.headers });
  try {
    for (const b of Array.isArray(bytes) ? bytes : [bytes]) raw.write(b);
    const close = await raw.waitClose(ms);
    assert.equal(close.code, code, `close ${close.code} ${close.reason}`);
    const dataFrames = raw.frames.filter((f) => f.opcode <= 0x2);
    assert.equal(dataFrames.length, opts.echoesBefore ?? 0, 'data frames (echoes of valid messages) before the close');
    await raw.waitClosed(ms);
    await waitUntil(() => h.closes.some((c) => c.path === opts.path), ms, `the server-side onClose of ${opts.path}`);
    const all = h.closes.filter((c) => c.path === opts.path);
    assert.equal(all.length, 1, 'onClose fired once');
    const info = all[0].info;
    assert.equal(info.code, code);
    assert.equal(info.wasClean, false);
    assert.equal(info.error?.closeCode, code);
    assert.ok(![...h.server.clients].some((s) => s.request.path === opts.path), 'the server released the session');
    return { reason: close.reason, serverInfo: info };
  } finally {
    raw.destroy();
  }
}

/** Waits (bounded) until the canary's is the only session the server holds: every hostile and probe session was released. */
export async function assertOnlyCanaryLeft(h: HostileServer, ms = 10_000): Promise<void> {
  const paths = () => [...h.server.clients].map((s) => s.request.path);
  await waitUntil(() => paths().length === 1, ms, `only the canary left (have ${paths().join(', ')})`).catch(() => {});
  assert.deepEqual(paths(), ['/canary']);
}
