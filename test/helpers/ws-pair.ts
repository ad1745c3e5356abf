/**
 * Shared pieces for the integration tests (test/integration/): start a
 * sockeye server on 127.0.0.1 port 0, connect our client to it, and talk to
 * either side with raw sockets that write hand-made bytes and decode what
 * comes back with a frame decoder of their own (independent of src/core, so
 * a bug there cannot hide itself in the tests).
 *
 * No module-level mutable state: every object owns its sockets.
 */
import { createHash, randomBytes } from 'node:crypto';
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import {
  connect,
  createServer,
  type ClientSession,
  type ConnectOptions,
  type ServerHandler,
  type ServerOptions,
  type ServerSession,
  type WebSocketServer,
} from '../../src/index.js';

// ------------------------------------------------------------------ misc

export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Rejects with a named error if `p` has not settled within `ms` (keeps a hung test from hanging the run). */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `cond` every few ms until it holds; fails after `ms`. */
export async function waitUntil(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting until ${what}`);
    await delay(5);
  }
}

/** A binary message of `size` bytes whose first 4 bytes are its sequence number (order checks after loss). */
export function numbered(seq: number, size: number): Buffer {
  const b = Buffer.alloc(size, seq & 0xff);
  b.writeUInt32BE(seq, 0);
  return b;
}

/** A deterministic pseudo-random byte source (xorshift32): reproducible payloads without holding two copies. */
export function pseudoRandomBytes(n: number, seed = 0x9e3779b9): Buffer {
  const out = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out.writeUInt32LE(x, i);
  }
  for (; i < n; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

/**
 * A string of exactly `bytes` UTF-8 bytes mixing 1-, 2-, 3- and 4-byte
 * characters (so that fragment and read boundaries fall inside characters).
 */
export function utf8Text(bytes: number, seed = 1): string {
  const alphabet = ['a', 'Z', '7', ' ', 'é', 'ß', '€', '語', '😀', '🦀'];
  const parts: string[] = [];
  let size = 0;
  let x = seed >>> 0 || 1;
  // Build in blocks to keep this linear for tens of MiB.
  let block = '';
  for (let i = 0; i < 64; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    block += alphabet[(x >>> 16) % alphabet.length];
  }
  const blockBytes = Buffer.byteLength(block);
  while (size + blockBytes <= bytes) {
    parts.push(block);
    size += blockBytes;
  }
  // Fill up the rest with single-byte characters.
  parts.push('x'.repeat(bytes - size));
  const s = parts.join('');
  if (Buffer.byteLength(s) !== bytes) throw new Error('utf8Text: size mismatch');
  return s;
}

// --------------------------------------------------- sockeye server+client

export interface TestServer {
  server: WebSocketServer;
  port: number;
  /** ws:// (or wss:// when the server has tls) URL for `path`. */
  url(path?: string): string;
}

/** createServer() on 127.0.0.1 port 0 with keepalive off unless given (tests must not race pings). */
export async function startServer(options: ServerOptions = {}): Promise<TestServer> {
  const server = createServer({ keepalive: null, onError: () => {}, ...options, host: '127.0.0.1' });
  const addr = await server.listen(0, '127.0.0.1');
  const scheme = options.tls ? 'wss' : 'ws';
  return { server, port: addr.port, url: (path = '/') => `${scheme}://127.0.0.1:${addr.port}${path}` };
}

/** A server handler that sends every message back as it came (same type). */
export function echoHandler(extra: Partial<ServerHandler> = {}): ServerHandler {
  return {
    onMessage(session, message) {
      session.send(message.data, { binary: message.binary });
    },
    ...extra,
  };
}

export interface Pair {
  server: WebSocketServer;
  client: ClientSession;
  /** The server's side of this connection. */
  serverSession: ServerSession;
  /** Closes the client (if open), then the server. */
  cleanup(): Promise<void>;
}

/**
 * Starts a server with `serverOptions` (its `handler` wrapped to capture the
 * session), connects our client with `clientOptions`, and returns both ends.
 */
export async function openPair(serverOptions: ServerOptions, clientOptions: ConnectOptions = {}, path = '/'): Promise<Pair> {
  const handler = serverOptions.handler ?? echoHandler();
  let resolveSession!: (s: ServerSession) => void;
  const sessionP = new Promise<ServerSession>((r) => (resolveSession = r));
  const wrapped: ServerHandler = {
    ...handler,
    onOpen(session) {
      resolveSession(session);
      handler.onOpen?.(session);
    },
  };
  const t = await startServer({ ...serverOptions, handler: wrapped });
  const client = await connect(t.url(path), { keepalive: null, ...clientOptions });
  const serverSession = await withTimeout(sessionP, 5000, 'the server session');
  return {
    server: t.server,
    client,
    serverSession,
    async cleanup() {
      client.terminate();
      await t.server.close();
    },
  };
}

// ------------------------------------------------------------ raw frames

export interface RawFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

/** Encodes one frame; `mask` null sends it unmasked (as a server would, or as a broken client). */
export function encodeRawFrame(opcode: number, payload: Uint8Array | string, opts: { fin?: boolean; mask?: Buffer | null; rsv?: number } = {}): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : Buffer.from(payload);
  const mask = opts.mask === undefined ? randomBytes(4) : opts.mask;
  const len = data.length;
  const ext = len < 126 ? 0 : len < 0x10000 ? 2 : 8;
  const head = Buffer.alloc(2 + ext + (mask ? 4 : 0));
  head[0] = (opts.fin === false ? 0 : 0x80) | ((opts.rsv ?? 0) << 4) | opcode;
  head[1] = (mask ? 0x80 : 0) | (len < 126 ? len : len < 0x10000 ? 126 : 127);
  if (ext === 2) head.writeUInt16BE(len, 2);
  if (ext === 8) head.writeBigUInt64BE(BigInt(len), 2);
  if (mask) {
    mask.copy(head, 2 + ext);
    for (let i = 0; i < len; i++) data[i] ^= mask[i & 3];
  }
  return Buffer.concat([head, data]);
}

/** A client (masked) frame. */
export function clientFrame(opcode: number, payload: Uint8Array | string, fin = true): Buffer {
  return encodeRawFrame(opcode, payload, { fin });
}

/** A server (unmasked) frame. */
export function serverFrame(opcode: number, payload: Uint8Array | string, fin = true): Buffer {
  return encodeRawFrame(opcode, payload, { fin, mask: null });
}

/** A close frame payload: code and UTF-8 reason. */
export function closePayload(code: number, reason = ''): Buffer {
  const r = Buffer.from(reason, 'utf8');
  const b = Buffer.alloc(2 + r.length);
  b.writeUInt16BE(code, 0);
  r.copy(b, 2);
  return b;
}

export function decodeClose(frame: RawFrame): { code: number; reason: string } {
  if (frame.opcode !== 0x8) throw new Error(`not a close frame (opcode ${frame.opcode})`);
  if (frame.payload.length < 2) return { code: 1005, reason: '' };
  return { code: frame.payload.readUInt16BE(0), reason: frame.payload.subarray(2).toString('utf8') };
}

/**
 * Incremental decoder of frames from a byte stream: keeps the unconsumed
 * bytes as a list of chunks and concatenates only once a whole frame is there.
 */
export class RawFrameDecoder {
  readonly frames: RawFrame[] = [];
  private chunks: Buffer[] = [];
  private length = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
    for (;;) {
      const f = this.next();
      if (!f) break;
      this.frames.push(f);
    }
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length < n) {
      const all = Buffer.concat(this.chunks, this.length);
      this.chunks = [all];
    }
    return this.chunks[0];
  }

  private take(n: number): Buffer {
    const b = this.peek(n);
    const out = b.subarray(0, n);
    if (b.length === n) this.chunks.shift();
    else this.chunks[0] = b.subarray(n);
    this.length -= n;
    return out;
  }

  private next(): RawFrame | null {
    if (this.length < 2) return null;
    const h = this.peek(2);
    const masked = (h[1] & 0x80) !== 0;
    const len7 = h[1] & 0x7f;
    const ext = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
    const headLen = 2 + ext + (masked ? 4 : 0);
    if (this.length < headLen) return null;
    const hb = this.peek(headLen);
    const len = ext === 0 ? len7 : ext === 2 ? hb.readUInt16BE(2) : Number(hb.readBigUInt64BE(2));
    if (this.length < headLen + len) return null;
    const header = Buffer.from(this.take(headLen));
    const payload = Buffer.from(this.take(len));
    if (masked) {
      const m = header.subarray(2 + ext, 6 + ext);
      for (let i = 0; i < payload.length; i++) payload[i] ^= m[i & 3];
    }
    return { fin: (header[0] & 0x80) !== 0, rsv: (header[0] >> 4) & 7, opcode: header[0] & 0x0f, masked, payload };
  }
}

// -------------------------------------------------------------- HTTP heads

export interface RawHead {
  startLine: string;
  status: number;
  /** Lower-cased names to all values. */
  headers: Map<string, string[]>;
}

export function parseRawHead(text: string): RawHead {
  const lines = text.split('\r\n');
  const startLine = lines[0];
  const m = /^HTTP\/1\.1 (\d{3})/.exec(startLine);
  const headers = new Map<string, string[]>();
  for (const line of lines.slice(1)) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers.set(name, [...(headers.get(name) ?? []), value]);
  }
  return { startLine, status: m ? Number(m[1]) : 0, headers };
}

export function newKey(): string {
  return randomBytes(16).toString('base64');
}

/** RFC 6455 section 4.2.2: base64(SHA-1(key + GUID)), computed here independently of src/core. */
export function acceptFor(key: string): string {
  return createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
}

/** A well-formed upgrade request head; `headers` are added (or replace the defaults of the same name; a null value removes one). */
export function upgradeRequest(opts: { path?: string; key?: string; method?: string; headers?: Record<string, string | null> } = {}): string {
  const base: Record<string, string | null> = {
    Host: '127.0.0.1',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': opts.key ?? newKey(),
    'Sec-WebSocket-Version': '13',
  };
  const lowerBase = new Map(Object.keys(base).map((k) => [k.toLowerCase(), k]));
  for (const [k, v] of Object.entries(opts.headers ?? {})) {
    const existing = lowerBase.get(k.toLowerCase());
    if (existing) delete base[existing];
    base[k] = v;
  }
  let s = `${opts.method ?? 'GET'} ${opts.path ?? '/'} HTTP/1.1\r\n`;
  for (const [k, v] of Object.entries(base)) if (v !== null) s += `${k}: ${v}\r\n`;
  return s + '\r\n';
}

// ------------------------------------------------------------ raw client

/**
 * A raw TCP (or TLS) client: writes what it is told, parses the HTTP head it
 * gets back, then either decodes frames (after a 101) or keeps the body.
 */
export class RawClient {
  readonly socket: Socket;
  readonly decoder = new RawFrameDecoder();
  head: RawHead | null = null;
  /** Bytes after the head of a non-101 answer. */
  body = Buffer.alloc(0);
  /** The peer sent FIN. */
  gotEnd = false;
  /** The TCP connection is closed (both ways). */
  isClosed = false;
  readonly closed: Promise<void>;
  private pending = Buffer.alloc(0);
  private waiters: Array<() => void> = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      this.gotEnd = true;
      this.wake();
    });
    // A reset after the server's answer is not the test's business; 'close' follows.
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.isClosed = true;
        resolve();
        this.wake();
      }),
    );
  }

  static async connect(port: number, opts: { tls?: { ca: Buffer } } = {}): Promise<RawClient> {
    const socket = opts.tls
      ? tlsConnect({ host: '127.0.0.1', port, ca: opts.tls.ca, ALPNProtocols: ['http/1.1'] })
      : netConnect({ host: '127.0.0.1', port });
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once(opts.tls ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  /** Connects and completes a WebSocket handshake (asserting the 101 and the accept key). */
  static async open(port: number, opts: { path?: string; headers?: Record<string, string | null>; tls?: { ca: Buffer } } = {}): Promise<RawClient> {
    const c = await RawClient.connect(port, opts);
    const key = newKey();
    c.write(upgradeRequest({ key, path: opts.path, headers: opts.headers }));
    const head = await c.waitHead(5000);
    if (head.status !== 101) throw new Error(`expected 101, got ${head.startLine}`);
    if (head.headers.get('sec-websocket-accept')?.[0] !== acceptFor(key)) throw new Error('wrong Sec-WebSocket-Accept');
    return c;
  }

  get frames(): RawFrame[] {
    return this.decoder.frames;
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  private onData(chunk: Buffer): void {
    if (this.head === null) {
      this.pending = Buffer.concat([this.pending, chunk]);
      const end = this.pending.indexOf('\r\n\r\n');
      if (end !== -1) {
        this.head = parseRawHead(this.pending.subarray(0, end).toString('latin1'));
        const rest = this.pending.subarray(end + 4);
        this.pending = Buffer.alloc(0);
        if (this.head.status === 101) this.decoder.push(rest);
        else this.body = Buffer.from(rest);
      }
    } else if (this.head.status === 101) {
      this.decoder.push(chunk);
    } else {
      this.body = Buffer.concat([this.body, chunk]);
    }
    this.wake();
  }

  private wake(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }

  /** Waits (bounded) until `cond` holds, re-checking on every arrival; rejects early if the socket closes without it. */
  async waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      if (this.isClosed) {
        throw new Error(`connection closed while waiting for ${what}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 50));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async waitHead(ms = 5000): Promise<RawHead> {
    await this.waitFor(() => this.head !== null, ms, 'the HTTP head');
    return this.head!;
  }

  async waitFrames(n: number, ms = 5000): Promise<RawFrame[]> {
    await this.waitFor(() => this.frames.length >= n, ms, `${n} frame(s) (have ${this.frames.length})`);
    return this.frames;
  }

  /** Waits for the first close frame and returns its code and reason. */
  async waitClose(ms = 5000): Promise<{ code: number; reason: string }> {
    await this.waitFor(() => this.frames.some((f) => f.opcode === 0x8), ms, 'a close frame');
    return decodeClose(this.frames.find((f) => f.opcode === 0x8)!);
  }

  /** Waits until the TCP connection is closed. */
  async waitClosed(ms = 5000): Promise<void> {
    await withTimeout(this.closed, ms, 'the TCP connection to close');
  }

  /** Waits for the whole non-101 answer (the server closes after it: Connection: close). */
  async waitRejection(ms = 5000): Promise<{ status: number; headers: Map<string, string[]>; body: string }> {
    await this.waitClosed(ms);
    if (!this.head) throw new Error('connection closed without an HTTP answer');
    return { status: this.head.status, headers: this.head.headers, body: this.body.toString('utf8') };
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

// ------------------------------------------------------------ raw server

export interface RawServer {
  port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  close(): Promise<void>;
}

export interface RawRequest {
  head: string;
  headers: Map<string, string[]>;
  key: string;
  /** Bytes after the head. */
  rest: Buffer;
}

/**
 * A raw TCP server that plays a WebSocket server badly or precisely: for each
 * connection it reads the request head and calls `onRequest` with the socket,
 * which writes whatever the test wants.
 */
export async function startRawServer(onRequest: (socket: Socket, request: RawRequest) => void): Promise<RawServer> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: NetServer = createNetServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      const head = buf.subarray(0, end).toString('latin1');
      const parsed = parseRawHead(head);
      onRequest(socket, { head, headers: parsed.headers, key: parsed.headers.get('sec-websocket-key')?.[0] ?? '', rest: buf.subarray(end + 4) });
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    get accepted() {
      return accepted;
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The head of a correct 101 answer to `key`, with optional extra header lines. */
export function switchingProtocols(key: string, extra: Record<string, string> = {}): string {
  let s = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n';
  s += `Sec-WebSocket-Accept: ${acceptFor(key)}\r\n`;
  for (const [k, v] of Object.entries(extra)) s += `${k}: ${v}\r\n`;
  return s + '\r\n';
}
