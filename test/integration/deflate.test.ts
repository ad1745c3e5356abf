/**
 * permessage-deflate (RFC 7692) over real sockets: our client against our
 * server over ws:// and wss://, with a TCP tap in the middle that counts the
 * bytes on the wire and (for ws://, where it can read them) decodes the frame
 * headers in both directions. So "compression was used" is checked on the
 * wire (RSV1 bits, compressed sizes, and for the first message of a
 * connection an independent node:zlib inflate of the captured payload with the
 * negotiated window), not taken from the library's own word.
 *
 * Also here: raw clients and servers that speak deflate by hand against our
 * server and client (RSV1 rules of RFC 7692 section 6.1, 1007 on bad data),
 * the per-protocol decline, the zlib limiter under many connections, message
 * order across compressed and uncompressed messages, and graceful close
 * behind messages still with the codec (S4). The decompression bomb is in
 * deflate-bomb.test.ts; ws interop in deflate-ws-interop.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { constants, createInflateRaw, deflateRawSync, inflateRawSync, type InflateRaw } from 'node:zlib';
import { connect, Context, type ClientSession, type ConnectOptions, type Message, type ServerHandler, type ServerOptions, type ServerSession } from '../../src/index.js';
// Not exported from src/index.ts (yet): the options type is named from its own module.
import type { PerMessageDeflateOptions } from '../../src/transport/permessage-deflate.js';
import { testCert, type TestCert } from '../helpers/certs.js';
import {
  acceptFor,
  encodeRawFrame,
  pseudoRandomBytes,
  RawClient,
  sha256,
  startRawServer,
  startServer,
  utf8Text,
  waitUntil,
  withTimeout,
  type TestServer,
} from '../helpers/ws-pair.js';

const KiB = 1024;
const MiB = 1024 * 1024;
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
const RSV1 = 0x4;

// ----------------------------------------------------------------- the tap

interface TapFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  length: number;
  /** The unmasked payload, kept only up to the tap's keepPayloadUpTo. */
  payload: Buffer | null;
}

/**
 * One direction of a tapped connection: counts every byte; when decoding,
 * skips the HTTP head, then parses frame headers incrementally (section 5.2)
 * without holding large payloads.
 */
class TapDirection {
  bytes = 0;
  head = '';
  readonly frames: TapFrame[] = [];
  private headDone = false;
  private headBuf = Buffer.alloc(0);
  private hdr = Buffer.alloc(0);
  private cur: { frame: TapFrame; remaining: number; mask: Buffer | null; parts: Buffer[] | null; offset: number } | null = null;

  constructor(
    private readonly decode: boolean,
    private readonly keepPayloadUpTo: number,
  ) {}

  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    if (!this.decode) return;
    let data = chunk;
    if (!this.headDone) {
      this.headBuf = Buffer.concat([this.headBuf, data]);
      const end = this.headBuf.indexOf('\r\n\r\n');
      if (end === -1) return;
      this.head = this.headBuf.subarray(0, end).toString('latin1');
      data = this.headBuf.subarray(end + 4);
      this.headBuf = Buffer.alloc(0);
      this.headDone = true;
    }
    while (data.length > 0) {
      if (this.cur) {
        const n = Math.min(this.cur.remaining, data.length);
        if (this.cur.parts) {
          const piece = Buffer.from(data.subarray(0, n));
          if (this.cur.mask) for (let i = 0; i < piece.length; i++) piece[i] ^= this.cur.mask[(this.cur.offset + i) & 3];
          this.cur.parts.push(piece);
        }
        this.cur.offset += n;
        this.cur.remaining -= n;
        data = data.subarray(n);
        if (this.cur.remaining === 0) this.endFrame();
        continue;
      }
      this.hdr = Buffer.concat([this.hdr, data.subarray(0, 14)]);
      const used = Math.min(14, data.length);
      const h = this.hdr;
      if (h.length < 2) {
        data = data.subarray(used);
        continue;
      }
      const len7 = h[1] & 0x7f;
      const ext = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
      const masked = (h[1] & 0x80) !== 0;
      const need = 2 + ext + (masked ? 4 : 0);
      if (h.length < need) {
        data = data.subarray(used);
        continue;
      }
      const length = ext === 0 ? len7 : ext === 2 ? h.readUInt16BE(2) : Number(h.readBigUInt64BE(2));
      // Bytes of this chunk that belonged to the header (the rest of hdr came from earlier chunks).
      const fromThisChunk = need - (h.length - used);
      data = data.subarray(fromThisChunk);
      this.cur = {
        frame: { fin: (h[0] & 0x80) !== 0, rsv: (h[0] >> 4) & 7, opcode: h[0] & 0x0f, length, payload: null },
        remaining: length,
        mask: masked ? Buffer.from(h.subarray(2 + ext, 6 + ext)) : null,
        parts: length <= this.keepPayloadUpTo ? [] : null,
        offset: 0,
      };
      this.hdr = Buffer.alloc(0);
      if (length === 0) this.endFrame();
    }
  }

  private endFrame(): void {
    const c = this.cur!;
    if (c.parts) c.frame.payload = Buffer.concat(c.parts);
    this.frames.push(c.frame);
    this.cur = null;
  }

  /** Data frames (opcodes 0, 1, 2) from index `from` on. */
  dataFrames(from = 0): TapFrame[] {
    return this.frames.slice(from).filter((f) => f.opcode <= 2);
  }
}

interface TapConnection {
  /** Client to server. */
  up: TapDirection;
  /** Server to client. */
  down: TapDirection;
}

interface Tap {
  port: number;
  connections: TapConnection[];
  close(): Promise<void>;
}

/** A TCP relay to 127.0.0.1:target that sees every byte both ways. */
async function startTap(target: number, opts: { decode: boolean; keepPayloadUpTo?: number }): Promise<Tap> {
  const connections: TapConnection[] = [];
  const sockets = new Set<Socket>();
  const server: NetServer = createNetServer((client) => {
    const conn: TapConnection = { up: new TapDirection(opts.decode, opts.keepPayloadUpTo ?? 256 * KiB), down: new TapDirection(opts.decode, opts.keepPayloadUpTo ?? 256 * KiB) };
    connections.push(conn);
    const upstream = netConnect({ host: '127.0.0.1', port: target });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (d: Buffer) => conn.up.push(d));
    upstream.on('data', (d: Buffer) => conn.down.push(d));
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    connections,
    close() {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------- pair through a tap

interface DeflatePair {
  server: TestServer;
  tap: Tap;
  conn: TapConnection;
  client: ClientSession;
  serverSession: ServerSession;
  next(ms?: number): Promise<Message>;
  cleanup(): Promise<void>;
}

interface PairOptions {
  cert?: TestCert | null;
  server?: Partial<ServerOptions>;
  client?: Partial<ConnectOptions>;
  handler?: ServerHandler;
  keepPayloadUpTo?: number;
  protocol?: string;
}

/** An echo handler that sends back uncompressed what starts with 'N' (a per-message opt-out both ways). */
function deflateEcho(): ServerHandler {
  return {
    onMessage(session, m) {
      session.send(m.data, { binary: m.binary, compress: m.data[0] !== 0x4e });
    },
  };
}

async function openDeflatePair(o: PairOptions = {}): Promise<DeflatePair> {
  const handler = o.handler ?? deflateEcho();
  let resolveSession!: (s: ServerSession) => void;
  const sessionP = new Promise<ServerSession>((r) => (resolveSession = r));
  const wrapped: ServerHandler = {
    ...handler,
    onOpen(s) {
      resolveSession(s);
      handler.onOpen?.(s);
    },
  };
  const serverOptions: ServerOptions = { perMessageDeflate: true, limits: { maxMessageBytes: 32 * MiB, maxQueuedBytes: 256 * MiB }, ...o.server };
  if (o.protocol) serverOptions.protocols = { [o.protocol]: wrapped, ...serverOptions.protocols };
  else serverOptions.handler = wrapped;
  if (o.cert) serverOptions.tls = { key: o.cert.key, cert: o.cert.cert };
  const server = await startServer(serverOptions);
  const tap = await startTap(server.port, { decode: !o.cert, keepPayloadUpTo: o.keepPayloadUpTo });
  const url = `${o.cert ? 'wss' : 'ws'}://127.0.0.1:${tap.port}/`;
  let client: ClientSession;
  try {
    client = await connect(url, {
      keepalive: null,
      perMessageDeflate: true,
      limits: { maxMessageBytes: 32 * MiB, maxQueuedBytes: 256 * MiB },
      ...(o.protocol ? { protocol: o.protocol } : {}),
      ...(o.cert ? { tls: { ca: o.cert.ca } } : {}),
      ...o.client,
    });
  } catch (err) {
    await tap.close();
    await server.server.close();
    throw err;
  }
  const serverSession = await withTimeout(sessionP, 5000, 'the server session');
  return {
    server,
    tap,
    conn: tap.connections[tap.connections.length - 1],
    client,
    serverSession,
    async next(ms = 30_000) {
      const r = await withTimeout(client.messages().next(), ms, 'a message');
      assert.equal(r.done, false, 'the connection ended before the message arrived');
      return r.value as Message;
    },
    async cleanup() {
      client.terminate();
      await server.server.close();
      await tap.close();
    },
  };
}

/** The parameters of the Sec-WebSocket-Extensions answer the client got, as a map. */
function answeredParams(client: ClientSession): Map<string, string | true> {
  const values = client.responseHeaders.get('sec-websocket-extensions') ?? [];
  assert.equal(values.length, 1, `one extensions header: ${JSON.stringify(values)}`);
  const [name, ...params] = values[0].split(';').map((s) => s.trim());
  assert.equal(name, 'permessage-deflate');
  return new Map(
    params.map((p): [string, string | true] => {
      const eq = p.indexOf('=');
      return eq === -1 ? [p, true] : [p.slice(0, eq), p.slice(eq + 1)];
    }),
  );
}

/** Inflates a captured permessage-deflate payload with node:zlib and exactly 2^bits of window. */
function refInflate(payload: Buffer, bits = 15): Buffer {
  return inflateRawSync(Buffer.concat([payload, TAIL]), { windowBits: bits, finishFlush: constants.Z_SYNC_FLUSH });
}

/** JSON-like text, compressible as real traffic is. */
function jsonText(bytes: number, seed = 1): string {
  let s = '';
  let x = seed >>> 0;
  while (s.length < bytes) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    s += `{"seq":${x % 100000},"user":"user${x % 97}","body":"hello number ${(x >>> 8) % 1000}"},`;
  }
  return s.slice(0, bytes);
}

/** Where repeatsAtDistances() repeats its random block: each copy this far (in KiB) after the one before. */
const REPEAT_DISTANCES_KIB = [1, 3, 7, 15, 30];

/**
 * A random 1 KiB block, then five more copies of it, each 1, 3, 7, 15 and 30
 * KiB after the previous one (zeros in between). How many copies a compressor
 * must send as literals shows how far back it may look.
 */
function repeatsAtDistances(seed: number): Buffer {
  const r = pseudoRandomBytes(KiB, seed);
  const parts: Buffer[] = [r];
  for (const d of REPEAT_DISTANCES_KIB) parts.push(Buffer.alloc(d * KiB - KiB), r);
  return Buffer.concat(parts);
}

/** Copies of the block a zlib compressor with 2^bits of window sends as literals (zlib matches at most 2^bits - 262 back). */
function literalCopies(bits: number): number {
  return 1 + REPEAT_DISTANCES_KIB.filter((d) => d * KiB > 2 ** bits - 262).length;
}

// ======================================================================= tests

for (const scheme of ['ws', 'wss'] as const) {
  describe(`permessage-deflate echo over ${scheme}://, every size from 1 byte to 16 MiB, compressed`, () => {
    const cert = scheme === 'wss' ? testCert() : null;
    let pair: DeflatePair;
    before(async () => {
      // threshold 0: even the 1-byte message is compressed, so every echo below goes through zlib both ways.
      pair = await openDeflatePair({ cert, server: { perMessageDeflate: { threshold: 0 } }, client: { perMessageDeflate: { threshold: 0 } } });
    });
    after(async () => {
      await pair.cleanup();
    });

    it('negotiated on both sides (session.extensions, the 101 answer)', () => {
      assert.deepEqual([...pair.client.extensions], ['permessage-deflate']);
      assert.deepEqual([...pair.serverSession.extensions], ['permessage-deflate']);
      assert.equal(answeredParams(pair.client).size, 0, 'defaults: context takeover both ways, 15-bit windows, nothing to say');
    });

    const sizes = [1, 125, 1000, 64 * KiB, MiB, 16 * MiB];
    for (const size of sizes) {
      for (const kind of ['text', 'binary'] as const) {
        it(`${kind} of ${size} bytes: identical after the round trip, and compressed on the wire both ways`, { timeout: 60_000 }, async () => {
          // Half of a binary payload is random (incompressible), half repeats: zlib works for real.
          const payload: string | Buffer = kind === 'text' ? utf8Text(size, size) : Buffer.concat([pseudoRandomBytes(size >> 1, size), Buffer.alloc(size - (size >> 1), 0x61)]);
          const digest = sha256(payload);
          const upFrom = pair.conn.up.frames.length;
          const downFrom = pair.conn.down.frames.length;
          const upBytes = pair.conn.up.bytes;
          assert.notEqual(pair.client.send(payload), 'dropped');
          const m = await pair.next(50_000);
          assert.equal(m.binary, kind === 'binary');
          assert.equal(m.data.length, size);
          assert.equal(sha256(m.data), digest);
          if (scheme === 'ws') {
            await waitUntil(() => pair.conn.down.dataFrames(downFrom).length >= 1, 5000, 'the tap to see the echo');
            const up = pair.conn.up.dataFrames(upFrom);
            const down = pair.conn.down.dataFrames(downFrom);
            assert.equal(up.length, 1);
            assert.equal(down.length, 1);
            // RFC 7692 section 6: a compressed message has RSV1 set on its first frame.
            assert.equal(up[0].rsv, RSV1, 'client to server: RSV1');
            assert.equal(down[0].rsv, RSV1, 'server to client: RSV1');
            if (size >= 64 * KiB) {
              assert.ok(up[0].length < size * 0.9, `compressed on the way up: ${up[0].length} of ${size}`);
              assert.ok(down[0].length < size * 0.9, `compressed on the way down: ${down[0].length} of ${size}`);
            }
          } else if (size >= MiB) {
            // TLS hides the frames; the byte count still shows the compression.
            const sent = pair.conn.up.bytes - upBytes;
            assert.ok(sent < size * 0.9, `${sent} bytes on the wire for ${size}`);
          }
        });
      }
    }

    it('a highly compressible 1 MiB message takes under 20 KiB on the wire each way (the byte-counting proof)', async () => {
      const text = '{"status":"ok","items":[]} '.repeat(Math.ceil(MiB / 27)).slice(0, MiB);
      const up0 = pair.conn.up.bytes;
      const down0 = pair.conn.down.bytes;
      pair.client.send(text);
      const m = await pair.next();
      assert.equal(m.text, text);
      await waitUntil(() => pair.conn.down.bytes - down0 > 0, 5000, 'the echo bytes');
      const up = pair.conn.up.bytes - up0;
      const down = pair.conn.down.bytes - down0;
      assert.ok(up < 20 * KiB, `client to server: ${up} bytes for 1 MiB`);
      assert.ok(down < 20 * KiB, `server to client: ${down} bytes for 1 MiB`);
    });
  });
}

describe('context takeover, each direction, seen on the wire (RFC 7692 section 7.1.1)', () => {
  // 8 KiB of random bytes: alone it does not compress; sent twice, the second copy
  // shrinks to a back-reference if and only if the sender kept its window.
  const message = pseudoRandomBytes(8 * KiB, 99);
  const cases: Array<{ name: string; client: PerMessageDeflateOptions; server: PerMessageDeflateOptions; clientKeeps: boolean; serverKeeps: boolean; answer: string[] }> = [
    { name: 'takeover both ways (default)', client: {}, server: {}, clientKeeps: true, serverKeeps: true, answer: [] },
    { name: 'client asks server_no_context_takeover', client: { serverNoContextTakeover: true }, server: {}, clientKeeps: true, serverKeeps: false, answer: ['server_no_context_takeover'] },
    { name: 'client announces client_no_context_takeover', client: { clientNoContextTakeover: true }, server: {}, clientKeeps: false, serverKeeps: true, answer: ['client_no_context_takeover'] },
    { name: 'server configured with both', client: {}, server: { serverNoContextTakeover: true, clientNoContextTakeover: true }, clientKeeps: false, serverKeeps: false, answer: ['server_no_context_takeover', 'client_no_context_takeover'] },
  ];
  for (const scheme of ['ws', 'wss'] as const) {
    for (const c of cases) {
      it(`${scheme}://: ${c.name}`, async () => {
        const cert = scheme === 'wss' ? testCert() : null;
        const pair = await openDeflatePair({ cert, client: { perMessageDeflate: c.client }, server: { perMessageDeflate: c.server } });
        try {
          const answer = answeredParams(pair.client);
          assert.deepEqual([...answer.keys()].sort(), [...c.answer].sort());
          const sizesUp: number[] = [];
          const sizesDown: number[] = [];
          for (let i = 0; i < 3; i++) {
            const up0 = pair.conn.up.bytes;
            const down0 = pair.conn.down.bytes;
            pair.client.send(message);
            const m = await pair.next();
            assert.deepEqual(m.data, message);
            await waitUntil(() => pair.conn.down.bytes > down0, 5000, 'the echo on the wire');
            sizesUp.push(pair.conn.up.bytes - up0);
            sizesDown.push(pair.conn.down.bytes - down0);
          }
          const check = (keeps: boolean, sizes: number[], who: string) => {
            if (keeps) {
              assert.ok(sizes[1] < sizes[0] / 10 && sizes[2] < sizes[0] / 10, `${who} keeps its window: ${sizes.join(', ')} bytes`);
            } else if (scheme === 'ws') {
              // Same payload, fresh window each time: identical frame sizes (the client's mask does not change sizes).
              assert.equal(new Set(sizes).size, 1, `${who} resets its window: ${sizes.join(', ')} bytes`);
            } else {
              // Under TLS the byte count also holds record headers and tags, which depend on how writes were
              // split into records: same size within 1 %.
              assert.ok(Math.min(...sizes) > Math.max(...sizes) * 0.99, `${who} resets its window: ${sizes.join(', ')} bytes`);
            }
          };
          check(c.clientKeeps, sizesUp, 'the client');
          check(c.serverKeeps, sizesDown, 'the server');
        } finally {
          await pair.cleanup();
        }
      });
    }
  }
});

describe('window bits (RFC 7692 section 7.1.2): negotiated values are answered and honoured on the wire', () => {
  const cases: Array<{ name: string; client: PerMessageDeflateOptions; server: PerMessageDeflateOptions; serverBits: number; clientBits: number; answer: Record<string, string> }> = [
    { name: 'client asks server_max_window_bits=10', client: { serverMaxWindowBits: 10 }, server: {}, serverBits: 10, clientBits: 15, answer: { server_max_window_bits: '10' } },
    { name: 'client limits itself to client_max_window_bits=11', client: { clientMaxWindowBits: 11 }, server: {}, serverBits: 15, clientBits: 11, answer: { client_max_window_bits: '11' } },
    { name: 'server limits both (server 12, client 9)', client: {}, server: { serverMaxWindowBits: 12, clientMaxWindowBits: 9 }, serverBits: 12, clientBits: 9, answer: { server_max_window_bits: '12', client_max_window_bits: '9' } },
    { name: 'both ask; the smaller wins (server 9 of 13 asked, client 14 of 10 allowed)', client: { serverMaxWindowBits: 13, clientMaxWindowBits: 14 }, server: { serverMaxWindowBits: 9, clientMaxWindowBits: 10 }, serverBits: 9, clientBits: 10, answer: { server_max_window_bits: '9', client_max_window_bits: '10' } },
    { name: 'all at 15', client: { serverMaxWindowBits: 15, clientMaxWindowBits: 15 }, server: { serverMaxWindowBits: 15, clientMaxWindowBits: 15 }, serverBits: 15, clientBits: 15, answer: {} },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const pair = await openDeflatePair({ client: { perMessageDeflate: c.client }, server: { perMessageDeflate: c.server } });
      try {
        assert.deepEqual(Object.fromEntries(answeredParams(pair.client)), c.answer);
        for (let i = 0; i < 3; i++) {
          const data = repeatsAtDistances(i + 1);
          const upFrom = pair.conn.up.frames.length;
          const downFrom = pair.conn.down.frames.length;
          pair.client.send(data);
          const m = await pair.next();
          assert.deepEqual(m.data, data);
          await waitUntil(() => pair.conn.down.dataFrames(downFrom).length === 1, 5000, 'the echo on the wire');
          const up = pair.conn.up.dataFrames(upFrom)[0];
          const down = pair.conn.down.dataFrames(downFrom)[0];
          assert.equal(up.rsv, RSV1);
          assert.equal(down.rsv, RSV1);
          if (i === 0) {
            // The first message of each direction stands alone: an independent inflater with exactly
            // the negotiated window must decode it (a longer reference fails "distance too far back").
            assert.deepEqual(refInflate(up.payload!, c.clientBits), data, `client output fits 2^${c.clientBits}`);
            assert.deepEqual(refInflate(down.payload!, c.serverBits), data, `server output fits 2^${c.serverBits}`);
          }
          // Each side found the repeats its window allows, and no others: about 1 KiB per literal copy.
          for (const [who, bits, length] of [
            ['client', c.clientBits, up.length],
            ['server', c.serverBits, down.length],
          ] as const) {
            const copies = literalCopies(bits);
            assert.ok(length >= copies * KiB * 0.97 && length <= copies * KiB + KiB, `${who} with 2^${bits}: ${length} bytes for ${copies} literal copies`);
          }
        }
      } finally {
        await pair.cleanup();
      }
    });
  }
});

describe('threshold, per-message opt-out and fragmented compressed messages', () => {
  it('below the threshold (default 1024) messages go uncompressed (RSV1 clear); at and above, compressed', async () => {
    const pair = await openDeflatePair();
    try {
      for (const [size, compressed] of [
        [1, false],
        [1023, false],
        [1024, true],
        [5000, true],
      ] as const) {
        const upFrom = pair.conn.up.frames.length;
        const downFrom = pair.conn.down.frames.length;
        const text = 'x' + jsonText(size - 1, size);
        pair.client.send(text);
        assert.equal((await pair.next()).text, text);
        await waitUntil(() => pair.conn.down.dataFrames(downFrom).length === 1, 5000, 'the echo on the wire');
        assert.equal(pair.conn.up.dataFrames(upFrom)[0].rsv, compressed ? RSV1 : 0, `${size} bytes up`);
        assert.equal(pair.conn.down.dataFrames(downFrom)[0].rsv, compressed ? RSV1 : 0, `${size} bytes down`);
        if (!compressed) assert.equal(pair.conn.up.dataFrames(upFrom)[0].payload!.toString(), text, 'sent as is');
      }
    } finally {
      await pair.cleanup();
    }
  });

  it('a custom threshold on each side applies to what that side sends', async () => {
    const pair = await openDeflatePair({ client: { perMessageDeflate: { threshold: 100 } }, server: { perMessageDeflate: { threshold: 10_000 } } });
    try {
      const upFrom = pair.conn.up.frames.length;
      const downFrom = pair.conn.down.frames.length;
      const text = jsonText(500, 5);
      pair.client.send(text);
      assert.equal((await pair.next()).text, text);
      await waitUntil(() => pair.conn.down.dataFrames(downFrom).length === 1, 5000, 'the echo on the wire');
      assert.equal(pair.conn.up.dataFrames(upFrom)[0].rsv, RSV1, 'client threshold 100: 500 bytes compressed');
      assert.equal(pair.conn.down.dataFrames(downFrom)[0].rsv, 0, 'server threshold 10000: 500 bytes not');
    } finally {
      await pair.cleanup();
    }
  });

  it('send(data, { compress: false }) goes uncompressed both ways, in full, whatever its size', async () => {
    const pair = await openDeflatePair();
    try {
      const payload = Buffer.concat([Buffer.from('N'), Buffer.alloc(256 * KiB - 1, 0x20)]);
      const upFrom = pair.conn.up.frames.length;
      const downFrom = pair.conn.down.frames.length;
      pair.client.send(payload, { compress: false });
      assert.deepEqual((await pair.next()).data, payload);
      await waitUntil(() => pair.conn.down.dataFrames(downFrom).length === 1, 5000, 'the echo on the wire');
      const up = pair.conn.up.dataFrames(upFrom)[0];
      const down = pair.conn.down.dataFrames(downFrom)[0];
      assert.equal(up.rsv, 0);
      assert.equal(down.rsv, 0, 'the server echoes N... with compress: false');
      assert.equal(up.length, payload.length);
      assert.equal(down.length, payload.length);
      // And the same size with compression allowed is a fraction of it.
      const again = Buffer.concat([Buffer.from('C'), payload.subarray(1)]);
      const upFrom2 = pair.conn.up.frames.length;
      pair.client.send(again);
      assert.deepEqual((await pair.next()).data, again);
      assert.ok(pair.conn.up.dataFrames(upFrom2)[0].length < 4 * KiB);
    } finally {
      await pair.cleanup();
    }
  });

  for (const compress of [true, false]) {
    it(`stream({ compress: ${compress} }) both ways: ${compress ? 'one deflate stream over the frames, RSV1 on the first only (RFC 7692 section 6.1)' : 'plain frames'}`, async () => {
      const pieces = [jsonText(3000, 1), '', jsonText(40 * KiB, 2), 'é€😀', jsonText(70 * KiB, 3)];
      const whole = pieces.join('');
      let resolveReceived!: (m: Message) => void;
      const received = new Promise<Message>((r) => (resolveReceived = r));
      const pair = await openDeflatePair({
        handler: {
          onMessage(session, m) {
            if (m.text !== 'stream please') {
              resolveReceived(m);
              return;
            }
            const w = session.stream({ binary: false, compress });
            for (let i = 0; i < pieces.length - 1; i++) w.write(pieces[i]);
            w.end(pieces[pieces.length - 1]);
          },
        },
      });
      try {
        // Client to server, checked by the server.
        const upFrom = pair.conn.up.frames.length;
        const w = pair.client.stream({ binary: false, compress });
        for (let i = 0; i < pieces.length - 1; i++) assert.notEqual(w.write(pieces[i]), 'dropped');
        assert.notEqual(w.end(pieces[pieces.length - 1]), 'dropped');
        const got = await withTimeout(received, 10_000, 'the streamed message at the server');
        assert.equal(got.text, whole);
        const upFrames = pair.conn.up.dataFrames(upFrom);
        assert.equal(upFrames.length, pieces.length, 'one frame per write');
        assert.deepEqual(
          upFrames.map((f) => f.rsv),
          pieces.map((_, i) => (compress && i === 0 ? RSV1 : 0)),
        );
        assert.deepEqual(
          upFrames.map((f) => f.fin),
          pieces.map((_, i) => i === pieces.length - 1),
        );
        if (compress) {
          // The frames' payloads together are one raw DEFLATE stream of the whole message (first of this connection).
          assert.equal(refInflate(Buffer.concat(upFrames.map((f) => f.payload!))).toString(), whole);
          assert.ok(upFrames.reduce((n, f) => n + f.length, 0) < Buffer.byteLength(whole) / 3);
        } else {
          assert.equal(Buffer.concat(upFrames.map((f) => f.payload!)).toString(), whole);
        }

        // Server to client.
        const downFrom = pair.conn.down.frames.length;
        pair.client.send('stream please');
        const m = await pair.next();
        assert.equal(m.text, whole);
        await waitUntil(() => pair.conn.down.dataFrames(downFrom).length === pieces.length, 5000, 'the frames on the wire');
        const downFrames = pair.conn.down.dataFrames(downFrom);
        assert.deepEqual(
          downFrames.map((f) => f.rsv),
          pieces.map((_, i) => (compress && i === 0 ? RSV1 : 0)),
        );
        if (compress) assert.equal(refInflate(Buffer.concat(downFrames.map((f) => f.payload!))).toString(), whole);
        else assert.equal(Buffer.concat(downFrames.map((f) => f.payload!)).toString(), whole);
      } finally {
        await pair.cleanup();
      }
    });
  }

  it('a handler with onFragment gets a compressed message restored, as one fragment (inflated whole under the limit)', async () => {
    const fragments: Array<{ first: boolean; last: boolean; data: Buffer }> = [];
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    const pair = await openDeflatePair({
      handler: {
        onFragment(_s, f) {
          fragments.push({ first: f.first, last: f.last, data: Buffer.from(f.data) });
          if (f.last) resolveDone();
        },
      },
    });
    try {
      const pieces = [jsonText(30 * KiB, 1), jsonText(50 * KiB, 2), jsonText(20 * KiB, 3)];
      const w = pair.client.stream({ binary: false, compress: true });
      w.write(pieces[0]);
      w.write(pieces[1]);
      w.end(pieces[2]);
      await withTimeout(done, 10_000, 'the last fragment');
      assert.equal(Buffer.concat(fragments.map((f) => f.data)).toString(), pieces.join(''));
      assert.equal(fragments[0].first, true);
      assert.equal(fragments[fragments.length - 1].last, true);
      assert.equal(fragments.length, 1, 'a compressed message is restored whole, then delivered');
    } finally {
      await pair.cleanup();
    }
  });

  it('a 16 MiB binary message streamed compressed in 256 KiB pieces arrives whole both ways', { timeout: 60_000 }, async () => {
    const total = 16 * MiB;
    const source = Buffer.concat([pseudoRandomBytes(4 * MiB, 3), Buffer.alloc(total - 4 * MiB, 0x42)]);
    const pair = await openDeflatePair({
      keepPayloadUpTo: 0,
      handler: {
        async onMessage(session, m) {
          // Streams the message back in 256 KiB pieces, compressed.
          async function* pieces(): AsyncGenerator<Uint8Array> {
            for (let off = 0; off < m.data.length; off += 256 * KiB) yield m.data.subarray(off, off + 256 * KiB);
          }
          await session.sendStream(pieces(), { binary: true, compress: true });
        },
      },
    });
    try {
      async function* pieces(): AsyncGenerator<Uint8Array> {
        for (let off = 0; off < total; off += 256 * KiB) yield source.subarray(off, off + 256 * KiB);
      }
      const upFrom = pair.conn.up.frames.length;
      const downFrom = pair.conn.down.frames.length;
      await withTimeout(pair.client.sendStream(pieces(), { binary: true, compress: true }), 30_000, 'sendStream');
      const m = await pair.next(50_000);
      assert.equal(m.data.length, total);
      assert.equal(sha256(m.data), sha256(source));
      for (const frames of [pair.conn.up.dataFrames(upFrom), pair.conn.down.dataFrames(downFrom)]) {
        // One frame per piece, plus the final frame that sendStream's end() sends (empty before compression).
        assert.equal(frames.length, total / (256 * KiB) + 1);
        assert.equal(frames[frames.length - 1].fin, true);
        assert.equal(frames[0].rsv, RSV1);
        assert.ok(frames.slice(1).every((f) => f.rsv === 0));
        assert.ok(frames.reduce((n, f) => n + f.length, 0) < 5 * MiB, 'the zero-filled 12 MiB compressed away');
      }
    } finally {
      await pair.cleanup();
    }
  });
});

describe('message order across compressed and uncompressed messages', () => {
  /** Message i: one of four kinds, its index inside, so any reordering or mix-up shows. */
  function mixed(i: number): { data: string | Buffer; binary: boolean; compress: boolean; rsvExpected: number } {
    switch (i % 4) {
      case 0:
        return { data: `small ${i}`, binary: false, compress: true, rsvExpected: 0 }; // below the threshold
      case 1:
        return { data: `big ${i} ` + jsonText(2000, i), binary: false, compress: true, rsvExpected: RSV1 };
      case 2: {
        const b = pseudoRandomBytes(1500, i);
        b[0] = 0x4e; // 'N': the echo opts out too
        b.writeUInt32BE(i, 1);
        return { data: b, binary: true, compress: false, rsvExpected: 0 };
      }
      default: {
        const b = pseudoRandomBytes(3000, i);
        b[0] = 0x43;
        b.writeUInt32BE(i, 1);
        return { data: b, binary: true, compress: true, rsvExpected: RSV1 };
      }
    }
  }

  it('10,000 mixed messages sent back to back are echoed in order and intact; RSV1 on the wire matches each one', { timeout: 120_000 }, async () => {
    const N = 10_000;
    const received: Message[] = [];
    let resolveAll!: () => void;
    const all = new Promise<void>((r) => (resolveAll = r));
    // A client handler instead of messages(): collects without pausing the socket.
    const pair = await openDeflatePair({
      keepPayloadUpTo: 0,
      client: {
        handler: {
          onMessage(_s, m) {
            received.push(m);
            if (received.length === N) resolveAll();
          },
        },
      },
    });
    try {
      const upFrom = pair.conn.up.frames.length;
      const downFrom = pair.conn.down.frames.length;
      for (let i = 0; i < N; i++) {
        const m = mixed(i);
        assert.notEqual(pair.client.send(m.data, { binary: m.binary, compress: m.compress }), 'dropped', `message ${i}`);
      }
      await withTimeout(all, 100_000, `${N} echoes (have ${received.length})`);
      for (let i = 0; i < N; i++) {
        const want = mixed(i);
        const got = received[i];
        assert.equal(got.binary, want.binary, `message ${i} type`);
        assert.ok(got.binary ? got.data.equals(want.data as Buffer) : got.text === want.data, `message ${i} content (order kept)`);
      }
      await waitUntil(() => pair.conn.down.dataFrames(downFrom).length === N, 10_000, 'the tap to see every echo');
      const up = pair.conn.up.dataFrames(upFrom);
      const down = pair.conn.down.dataFrames(downFrom);
      for (let i = 0; i < N; i++) {
        const want = mixed(i).rsvExpected;
        assert.equal(up[i].rsv, want, `frame ${i} up`);
        assert.equal(down[i].rsv, want, `frame ${i} down`);
      }
    } finally {
      await pair.cleanup();
    }
  });

  it('the server sends 2,000 mixed messages back to back and closes at once: all arrive, in order, before the close (S4)', async () => {
    const N = 2000;
    const pair = await openDeflatePair({
      handler: {
        onMessage(session, m) {
          if (m.text !== 'go') return;
          for (let i = 0; i < N; i++) {
            const x = mixed(i);
            session.send(x.data, { binary: x.binary, compress: x.compress });
          }
          // The close frame must wait behind every message still with the codec.
          session.close(4000, 'done');
        },
      },
    });
    try {
      pair.client.send('go');
      const got: Message[] = [];
      for await (const m of pair.client.messages()) {
        got.push(m);
        if (got.length > N) break;
      }
      assert.equal(got.length, N);
      for (let i = 0; i < N; i++) {
        const want = mixed(i).data;
        assert.ok(typeof want === 'string' ? got[i].text === want : got[i].data.equals(want), `message ${i}`);
      }
      const info = await withTimeout(pair.client.closed, 10_000, 'the close');
      assert.equal(info.code, 4000);
      assert.equal(info.wasClean, true);
    } finally {
      await pair.cleanup();
    }
  });

  it('the client sends 2,000 mixed messages and closes at once: the server receives all of them before the close (S4)', async () => {
    const N = 2000;
    const got: Message[] = [];
    let resolveClosed!: (code: number) => void;
    const closed = new Promise<number>((r) => (resolveClosed = r));
    const pair = await openDeflatePair({
      handler: {
        onMessage(_s, m) {
          got.push(m);
        },
        onClose(_s, info) {
          resolveClosed(info.code);
        },
      },
    });
    try {
      for (let i = 0; i < N; i++) {
        const x = mixed(i);
        pair.client.send(x.data, { binary: x.binary, compress: x.compress });
      }
      pair.client.close(4001, 'bye');
      assert.equal(await withTimeout(closed, 20_000, 'the server to see the close'), 4001);
      const info = await withTimeout(pair.client.closed, 10_000, 'the client close');
      assert.equal(info.unsentMessages, 0);
      assert.equal(got.length, N);
      for (let i = 0; i < N; i++) {
        const want = mixed(i).data;
        assert.ok(typeof want === 'string' ? got[i].text === want : got[i].data.equals(want), `message ${i}`);
      }
    } finally {
      await pair.cleanup();
    }
  });
});

describe('per-protocol decline (libwebsockets test protocols: its test client drops the connection at a compressed frame)', () => {
  it('a protocol with perMessageDeflate: false declines while another on the same server accepts', async () => {
    const seen: Array<{ protocol: string | undefined; extensions: readonly string[] }> = [];
    const echo: ServerHandler = {
      onOpen(s) {
        seen.push({ protocol: s.protocol, extensions: s.extensions });
      },
      onMessage(s, m) {
        s.send(m.data, { binary: m.binary });
      },
    };
    const server = await startServer({
      perMessageDeflate: true,
      protocols: {
        'dumb-increment-protocol': { ...echo, perMessageDeflate: false },
        'lws-status': echo,
        tuned: { ...echo, perMessageDeflate: { serverNoContextTakeover: true } },
      },
    });
    const tap = await startTap(server.port, { decode: true });
    const clients: ClientSession[] = [];
    try {
      const big = jsonText(50 * KiB, 1);
      for (const [i, protocol] of ['dumb-increment-protocol', 'lws-status', 'tuned'].entries()) {
        const client = await connect(`ws://127.0.0.1:${tap.port}/`, { protocol, perMessageDeflate: true, keepalive: null });
        clients.push(client);
        const conn = tap.connections[i];
        const declined = protocol === 'dumb-increment-protocol';
        assert.equal(client.protocol, protocol);
        assert.deepEqual([...client.extensions], declined ? [] : ['permessage-deflate']);
        assert.equal(client.responseHeaders.has('sec-websocket-extensions'), !declined, 'declined by omission (RFC 6455 section 9.1)');
        if (protocol === 'tuned') assert.deepEqual([...answeredParams(client).keys()], ['server_no_context_takeover']);
        assert.ok(/permessage-deflate/.test(conn.up.head), 'the client did offer it');
        client.send(big);
        const r = await withTimeout(client.messages().next(), 10_000, 'the echo');
        assert.equal((r.value as Message).text, big);
        await waitUntil(() => conn.down.dataFrames().length === 1, 5000, 'the echo on the wire');
        assert.equal(conn.up.dataFrames()[0].rsv, declined ? 0 : RSV1);
        assert.equal(conn.down.dataFrames()[0].rsv, declined ? 0 : RSV1);
        assert.equal(conn.up.dataFrames()[0].length < big.length / 3, !declined);
      }
      await waitUntil(() => seen.length === 3, 5000, 'three sessions');
      assert.deepEqual(
        seen.map((s) => [s.protocol, [...s.extensions]]),
        [
          ['dumb-increment-protocol', []],
          ['lws-status', ['permessage-deflate']],
          ['tuned', ['permessage-deflate']],
        ],
      );
    } finally {
      for (const c of clients) c.terminate();
      await server.server.close();
      await tap.close();
    }
  });

  it('a server without perMessageDeflate ignores the offer; a client without it gets no extension', async () => {
    const server = await startServer({ handler: deflateEcho() });
    try {
      const client = await connect(server.url(), { perMessageDeflate: true, keepalive: null });
      assert.deepEqual([...client.extensions], []);
      client.send(jsonText(5000));
      assert.equal(((await withTimeout(client.messages().next(), 5000, 'echo')).value as Message).text, jsonText(5000));
      client.terminate();
    } finally {
      await server.server.close();
    }
    const server2 = await startServer({ perMessageDeflate: true, handler: deflateEcho() });
    try {
      const client = await connect(server2.url(), { keepalive: null });
      assert.deepEqual([...client.extensions], []);
      client.terminate();
    } finally {
      await server2.server.close();
    }
  });
});

describe('the zlib limiter under load', () => {
  it('60 connections with zlibConcurrency 2 on both sides all complete their compressed echoes (jobs queue, none fail)', { timeout: 120_000 }, async () => {
    const serverContext = new Context({ zlibConcurrency: 2 });
    const clientContext = new Context({ zlibConcurrency: 2 });
    const server = await startServer({ context: serverContext, perMessageDeflate: true, handler: deflateEcho() });
    let maxPending = 0;
    const sampler = setInterval(() => (maxPending = Math.max(maxPending, serverContext.zlib.pending, clientContext.zlib.pending)), 1);
    const clients: ClientSession[] = [];
    try {
      for (let i = 0; i < 60; i++) clients.push(await connect(server.url(), { context: clientContext, perMessageDeflate: true, keepalive: null }));
      const PER = 10;
      await withTimeout(
        Promise.all(
          clients.map(async (client, c) => {
            assert.deepEqual([...client.extensions], ['permessage-deflate']);
            const msgs = Array.from({ length: PER }, (_, i) => `${c}/${i} ` + jsonText(64 * KiB, c * 100 + i));
            for (const m of msgs) assert.notEqual(client.send(m), 'dropped');
            for (const m of msgs) {
              const r = await client.messages().next();
              assert.equal(r.done, false);
              assert.equal((r.value as Message).text, m);
            }
          }),
        ),
        100_000,
        'every echo on 60 connections',
      );
      assert.ok(maxPending > 0, `jobs had to wait for a zlib slot (max pending ${maxPending})`);
      assert.ok(serverContext.zlib.active === 0 && clientContext.zlib.active === 0);
      assert.equal(server.server.clients.size, 60);
      console.log(`[deflate] limiter: max ${maxPending} zlib jobs waiting at once with zlibConcurrency 2`);
    } finally {
      clearInterval(sampler);
      for (const c of clients) c.terminate();
      await server.server.close();
      serverContext.close();
      clientContext.close();
    }
  });
});

// ------------------------------------------------- raw peers that speak deflate by hand

/** A raw client that negotiated permessage-deflate with `offer`; returns it with the answer's header. */
async function rawDeflateClient(port: number, offer = 'permessage-deflate; client_max_window_bits'): Promise<RawClient> {
  const c = await RawClient.open(port, { headers: { 'Sec-WebSocket-Extensions': offer } });
  const answer = c.head!.headers.get('sec-websocket-extensions')?.[0] ?? '';
  assert.match(answer, /^permessage-deflate/);
  return c;
}

/** One message compressed from scratch as a peer sends it (sync flush, tail removed, RFC 7692 section 7.2.1). */
function peerCompress(data: Buffer | string): Buffer {
  const out = deflateRawSync(typeof data === 'string' ? Buffer.from(data) : data, { finishFlush: constants.Z_SYNC_FLUSH });
  return out.subarray(0, out.length - 4);
}

describe('our server against a hand-made deflate client (RFC 7692 sections 6 and 7.2)', () => {
  let server: TestServer;
  const errors: unknown[] = [];
  before(async () => {
    server = await startServer({ perMessageDeflate: { threshold: 0 }, handler: deflateEcho(), onError: (e) => errors.push(e) });
  });
  after(async () => {
    await server.server.close();
  });

  it('a compressed message in three frames (RSV1 on the first) is echoed compressed; zlib restores both', async () => {
    const c = await rawDeflateClient(server.port, 'permessage-deflate; client_no_context_takeover; server_no_context_takeover');
    try {
      const text = jsonText(30 * KiB, 4);
      const z = peerCompress(text);
      const a = Math.floor(z.length / 3);
      c.write(Buffer.concat([encodeRawFrame(0x1, z.subarray(0, a), { fin: false, rsv: RSV1 }), encodeRawFrame(0x0, z.subarray(a, 2 * a), { fin: false }), encodeRawFrame(0x0, z.subarray(2 * a))]));
      const [echo] = await c.waitFrames(1);
      assert.equal(echo.opcode, 0x1);
      assert.equal(echo.rsv, RSV1);
      assert.equal(echo.masked, false);
      assert.equal(refInflate(echo.payload).toString(), text);
      // server_no_context_takeover agreed: the second echo of the same text is as long as the first.
      c.write(encodeRawFrame(0x1, z, { rsv: RSV1 }));
      const frames = await c.waitFrames(2);
      assert.deepEqual(frames[1].payload, echo.payload);
    } finally {
      c.destroy();
    }
  });

  const failures: Array<{ name: string; frames: () => Buffer; code: number }> = [
    { name: 'RSV1 on a continuation frame (section 6.1) → 1002', frames: () => Buffer.concat([encodeRawFrame(0x1, peerCompress('ab'), { fin: false, rsv: RSV1 }), encodeRawFrame(0x0, peerCompress('cd'), { rsv: RSV1 })]), code: 1002 },
    { name: 'RSV1 on a ping (control frames are never compressed, section 6.1) → 1002', frames: () => encodeRawFrame(0x9, 'x', { rsv: RSV1 }), code: 1002 },
    { name: 'RSV2 (not negotiated) → 1002', frames: () => encodeRawFrame(0x1, 'x', { rsv: 0x2 }), code: 1002 },
    { name: 'invalid DEFLATE data → 1007', frames: () => encodeRawFrame(0x2, Buffer.from([0xff, 0xff, 0xff, 0xff]), { rsv: RSV1 }), code: 1007 },
    { name: 'compressed text that inflates to invalid UTF-8 (RFC 6455 section 8.1) → 1007', frames: () => encodeRawFrame(0x1, peerCompress(Buffer.from([0x61, 0xc3, 0x28, 0x62])), { rsv: RSV1 }), code: 1007 },
  ];
  for (const f of failures) {
    it(f.name, async () => {
      const c = await rawDeflateClient(server.port);
      try {
        c.write(f.frames());
        const close = await c.waitClose(5000);
        assert.equal(close.code, f.code);
        await c.waitClosed(5000);
      } finally {
        c.destroy();
      }
    });
  }

  it('accepts server_max_window_bits=8 and keeps to it: its messages inflate with a 256-byte window', async () => {
    const c = await rawDeflateClient(server.port, 'permessage-deflate; server_max_window_bits=8');
    try {
      assert.match(c.head!.headers.get('sec-websocket-extensions')![0], /server_max_window_bits=8/);
      const messages = [repeatsAtDistances(7), Buffer.from(jsonText(50 * KiB, 8)), repeatsAtDistances(9)];
      for (const m of messages) c.write(encodeRawFrame(0x2, peerCompress(m), { rsv: RSV1 }));
      const frames = await c.waitFrames(messages.length, 10_000);
      const inflater = createInflateRaw({ windowBits: 8 });
      try {
        for (let i = 0; i < messages.length; i++) {
          const f = frames[i];
          const got = f.rsv === RSV1 ? await inflateWith(inflater, Buffer.concat([f.payload, TAIL])) : f.payload;
          assert.deepEqual(got, messages[i], `echo ${i} (${f.rsv === RSV1 ? 'compressed' : 'plain'})`);
        }
      } finally {
        inflater.close();
      }
    } finally {
      c.destroy();
    }
  });

  it('RSV1 without having negotiated the extension → 1002', async () => {
    const c = await RawClient.open(server.port);
    try {
      assert.equal(c.head!.headers.has('sec-websocket-extensions'), false);
      c.write(encodeRawFrame(0x1, peerCompress('Hello'), { rsv: RSV1 }));
      assert.equal((await c.waitClose()).code, 1002);
    } finally {
      c.destroy();
    }
  });

  it('a peer that resets the connection while the server inflates a large message does not hurt the server', async () => {
    // Regression: closing the codec mid-inflate with client_no_context_takeover threw
    // "zlib binding closed" from the flush callback, an uncaught exception in the server process.
    const bigServer = await startServer({ perMessageDeflate: true, limits: { maxMessageBytes: 256 * MiB }, handler: deflateEcho() });
    try {
      const z = peerCompress(Buffer.alloc(200 * MiB, 0x61)); // about 200 KiB compressed, ~0.3 s to inflate
      for (let round = 0; round < 3; round++) {
        const c = await rawDeflateClient(bigServer.port, 'permessage-deflate; client_no_context_takeover');
        c.write(encodeRawFrame(0x2, z, { rsv: RSV1 }));
        await new Promise((r) => setTimeout(r, 20 + round * 20));
        c.socket.resetAndDestroy();
      }
      await waitUntil(() => bigServer.server.clients.size === 0, 10_000, 'the sessions to end');
      // Still serving, and its zlib slots all came back.
      await waitUntil(() => bigServer.server.context.zlib.active === 0, 10_000, 'the zlib slots');
      const client = await connect(bigServer.url(), { perMessageDeflate: true, keepalive: null });
      client.send(jsonText(5000, 1));
      assert.equal(((await withTimeout(client.messages().next(), 5000, 'echo')).value as Message).text, jsonText(5000, 1));
      client.terminate();
    } finally {
      await bigServer.server.close();
    }
  });
});

describe('our client against a hand-made deflate server', () => {
  it('takes compressed, fragmented and BFINAL-ended messages; its own frames carry RSV1 and inflate with the agreed window', async () => {
    let captured: Buffer[] = [];
    const text = jsonText(20 * KiB, 9);
    const raw = await startRawServer((socket, req) => {
      assert.match(req.headers.get('sec-websocket-extensions')?.[0] ?? '', /permessage-deflate/);
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(req.key)}\r\n` +
          'Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_max_window_bits=10\r\n\r\n',
      );
      const z = peerCompress(text);
      socket.write(encodeRawFrame(0x1, z, { mask: null, rsv: RSV1 }));
      socket.write(Buffer.concat([encodeRawFrame(0x1, z.subarray(0, 7), { mask: null, rsv: RSV1, fin: false }), encodeRawFrame(0x0, z.subarray(7), { mask: null })]));
      // RFC 7692 section 7.2.3.4: a message ended by a BFINAL block, then another one.
      socket.write(encodeRawFrame(0x1, Buffer.from('f348cdc9c90700', 'hex'), { mask: null, rsv: RSV1 }));
      socket.write(encodeRawFrame(0x1, z, { mask: null, rsv: RSV1 }));
      socket.on('data', (d: Buffer) => captured.push(d));
    });
    try {
      const client = await connect(`ws://127.0.0.1:${raw.port}/`, { perMessageDeflate: true, keepalive: null });
      assert.deepEqual([...client.extensions], ['permessage-deflate']);
      const texts: string[] = [];
      for (let i = 0; i < 4; i++) texts.push(((await withTimeout(client.messages().next(), 5000, `message ${i}`)).value as Message).text);
      assert.deepEqual(texts, [text, text, 'Hello', text]);
      captured = [];
      const data = repeatsAtDistances(5);
      client.send(data);
      const frames = await waitFramesFromClient(() => Buffer.concat(captured), 1);
      assert.equal(frames[0].rsv, RSV1);
      assert.equal(frames[0].opcode, 0x2);
      assert.deepEqual(refInflate(frames[0].payload, 10), data, 'the client keeps to client_max_window_bits=10');
      client.terminate();
    } finally {
      await raw.close();
    }
  });

  const badAnswers: Array<{ name: string; header: string }> = [
    { name: 'an unknown parameter', header: 'permessage-deflate; foo=1' },
    { name: 'server_max_window_bits=16', header: 'permessage-deflate; server_max_window_bits=16' },
    { name: 'a repeated parameter', header: 'permessage-deflate; server_no_context_takeover; server_no_context_takeover' },
  ];
  for (const b of badAnswers) {
    it(`fails the connection when the server answers with ${b.name} (RFC 7692 section 7)`, async () => {
      const raw = await startRawServer((socket, req) => {
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(req.key)}\r\nSec-WebSocket-Extensions: ${b.header}\r\n\r\n`);
      });
      try {
        await assert.rejects(connect(`ws://127.0.0.1:${raw.port}/`, { perMessageDeflate: true, keepalive: null, handshakeTimeoutMs: 5000 }), (err: Error & { code?: string }) => {
          assert.match(String(err.code), /EXTENSION/);
          return true;
        });
      } finally {
        await raw.close();
      }
    });
  }

  it('accepts client_max_window_bits=8 and keeps to it: what it sends inflates with a 256-byte window', async () => {
    // RFC 7692 section 7.1.2.2 allows 8. Whatever the client does with it (compress with zlib's
    // 9-bit window, which never refers more than 250 bytes back, or not compress), a strict
    // inflater with 2^8 bytes must decode every message it sends.
    let captured: Buffer[] = [];
    const raw = await startRawServer((socket, req) => {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(req.key)}\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=8\r\n\r\n`);
      socket.on('data', (d: Buffer) => captured.push(d));
    });
    try {
      const client = await connect(`ws://127.0.0.1:${raw.port}/`, { perMessageDeflate: true, keepalive: null });
      assert.deepEqual([...client.extensions], ['permessage-deflate']);
      captured = [];
      const messages = [repeatsAtDistances(1), Buffer.from(jsonText(50 * KiB, 2)), repeatsAtDistances(3)];
      for (const m of messages) client.send(m);
      const frames = await waitFramesFromClient(() => Buffer.concat(captured), messages.length);
      // With context takeover the messages form one stream: inflate them in order with one 2^8 inflater.
      const inflater = createInflateRaw({ windowBits: 8 });
      for (let i = 0; i < messages.length; i++) {
        const f = frames[i];
        const got = f.rsv === RSV1 ? await inflateWith(inflater, Buffer.concat([f.payload, TAIL])) : f.payload;
        assert.deepEqual(got, messages[i], `message ${i} (${f.rsv === RSV1 ? 'compressed' : 'plain'})`);
      }
      inflater.close();
      client.terminate();
    } finally {
      await raw.close();
    }
  });

  it('fails the connection when the server answers permessage-deflate that was never offered', async () => {
    const raw = await startRawServer((socket, req) => {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(req.key)}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n`);
    });
    try {
      await assert.rejects(connect(`ws://127.0.0.1:${raw.port}/`, { keepalive: null, handshakeTimeoutMs: 5000 }));
    } finally {
      await raw.close();
    }
  });
});

/** Writes `data` into a streaming inflater and resolves with what a sync flush gives back (its window persists). */
function inflateWith(z: InflateRaw, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const onData = (d: Buffer) => out.push(d);
    z.on('data', onData);
    z.once('error', reject);
    z.write(data);
    z.flush(constants.Z_SYNC_FLUSH, () => {
      z.off('data', onData);
      z.off('error', reject);
      resolve(Buffer.concat(out));
    });
  });
}

/** Decodes masked client frames from the bytes a raw server captured (after the request head), waiting for `n`. */
async function waitFramesFromClient(bytes: () => Buffer, n: number): Promise<Array<{ opcode: number; rsv: number; payload: Buffer }>> {
  let frames: Array<{ opcode: number; rsv: number; payload: Buffer }> = [];
  await waitUntil(
    () => {
      frames = [];
      const b = bytes();
      let p = 0;
      while (b.length - p >= 6) {
        const len7 = b[p + 1] & 0x7f;
        const ext = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
        const headLen = 2 + ext + 4;
        if (b.length - p < headLen) break;
        const len = ext === 0 ? len7 : ext === 2 ? b.readUInt16BE(p + 2) : Number(b.readBigUInt64BE(p + 2));
        if (b.length - p < headLen + len) break;
        const mask = b.subarray(p + 2 + ext, p + headLen);
        const payload = Buffer.from(b.subarray(p + headLen, p + headLen + len));
        for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
        frames.push({ opcode: b[p] & 0x0f, rsv: (b[p] >> 4) & 7, payload });
        p += headLen + len;
      }
      return frames.length >= n;
    },
    5000,
    `${n} frame(s) from the client`,
  );
  return frames;
}
