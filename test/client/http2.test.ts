/**
 * connect(url, { http2 }) — WebSockets over HTTP/2 (RFC 8441), client side:
 *
 * - against sockeye's server over h2 (TLS, ALPN) and h2c (prior knowledge):
 *   echo, permessage-deflate, subprotocol, close codes both ways, the
 *   server's session.http2; several WebSockets share ONE connection (the
 *   connections are counted by a relay in front of the server); the WHATWG
 *   class passes the option through;
 * - against a node:http2 server written here, doing RFC 8441 without sockeye
 *   (SETTINGS_ENABLE_CONNECT_PROTOCOL, :status 200, frames parsed by the
 *   test's own decoder): the request's fields, a refusal's status;
 * - fallback to HTTP/1.1 (a sockeye server with http2: false, a node:http2
 *   server without the setting) and http2: 'require' failing with
 *   ERR_HTTP2_UNAVAILABLE;
 * - h2c over a unix domain socket;
 * - RST_STREAM ends one WebSocket (1006), even right after its 200; GOAWAY
 *   NO_ERROR closes all with 1001, a dropped connection ends all with 1006
 *   and unsentMessages (S4); a refused stream is tried again once;
 * - limits: the server's SETTINGS_MAX_CONCURRENT_STREAMS, more connections
 *   up to maxConnectionsPerOrigin, then a queue; idle connections closed,
 *   and never holding a process that has nothing else to do;
 * - S2 under keepalive pings and S1 (large transfers both ways, a stalled
 *   stream beside a flowing one) over one HTTP/2 connection.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import { createServer as createNetServer } from 'node:net';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { connect, Context, createServer, HandshakeError, WebSocket, type ClientSession, type CloseInfo, type ServerOptions, type ServerSession, type WebSocketServer } from '../../src/index.js';
import { testCert } from '../helpers/certs.js';
import { decodeFrames, frame, Op } from '../helpers/frames.js';
import { relayTo, type Relay } from '../helpers/byte-counter.js';
import { Scope, within } from '../helpers/h2.js';
import { pseudoRandomBytes, sha256, waitUntil } from '../helpers/ws-pair.js';

const cert = testCert();
const tls = { ca: cert.ca };
const MiB = 1024 * 1024;

interface Started {
  server: WebSocketServer;
  sessions: ServerSession[];
  port: number;
}

async function start(t: Scope, options: ServerOptions = {}, secure = true): Promise<Started> {
  const sessions: ServerSession[] = [];
  const server = t.add(
    createServer({
      port: 0,
      host: '127.0.0.1',
      ...(secure ? { tls: { key: cert.key, cert: cert.cert } } : {}),
      keepalive: null,
      handler: {
        onOpen: (s) => void sessions.push(s),
        onMessage: (s, m) => void s.send(m.data, { binary: m.binary }),
      },
      onError: () => undefined,
      ...options,
    }),
    (s) => s.close(),
  );
  const { port } = (await server.listen()) as { port: number };
  return { server, sessions, port };
}

/** A TCP relay in front of `port` that counts the connections it accepted (TLS passes through it untouched). */
async function countingRelay(t: Scope, port: number): Promise<{ relay: Relay; accepted: () => number; open: () => number }> {
  let accepted = 0;
  let open = 0;
  const relay = await relayTo(createNetServer(), port, (client) => {
    accepted++;
    open++;
    client.once('close', () => open--);
  });
  t.add(relay, (r) => r.close());
  return { relay, accepted: () => accepted, open: () => open };
}

/** The next message of an inbox session, bounded in time. */
async function next(session: ClientSession, what = 'a message'): Promise<{ text: string; data: Buffer; binary: boolean }> {
  const r = await within(session.messages().next(), 10_000, what);
  assert.equal(r.done, false, `${what}: the session ended`);
  return r.value;
}

/**
 * A node:http2 server doing RFC 8441 by hand: SETTINGS_ENABLE_CONNECT_PROTOCOL
 * (unless `enableConnect` is false), :status 200 to an extended CONNECT, and
 * an echo of every frame it decodes with the test's own decoder (a close
 * frame answered and the stream ended). `onStream` sees each accepted stream.
 */
async function rawH2Server(t: Scope, options: { enableConnect?: boolean; status?: (headers: http2.IncomingHttpHeaders) => number; onStream?: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void; allowHTTP1?: boolean } = {}) {
  const server = http2.createSecureServer({ key: cert.key, cert: cert.cert, settings: { enableConnectProtocol: options.enableConnect ?? true }, allowHTTP1: options.allowHTTP1 ?? false });
  const sessions = new Set<http2.ServerHttp2Session>();
  let connections = 0;
  server.on('session', (s) => {
    connections++;
    sessions.add(s);
    s.on('error', () => undefined);
    s.once('close', () => sessions.delete(s));
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    const status = options.status?.(headers) ?? 200;
    if (headers[':method'] !== 'CONNECT' || headers[':protocol'] !== 'websocket' || status !== 200) {
      stream.respond({ ':status': status === 200 ? 400 : status });
      stream.end();
      return;
    }
    const answer: http2.OutgoingHttpHeaders = { ':status': 200 };
    if (headers['sec-websocket-protocol'] !== undefined) answer['sec-websocket-protocol'] = String(headers['sec-websocket-protocol']).split(',')[0].trim();
    stream.respond(answer);
    let buffered = Buffer.alloc(0);
    stream.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        const size = wholeFrameSize(buffered);
        if (size === 0) break;
        const [f] = decodeFrames(buffered.subarray(0, size));
        buffered = buffered.subarray(size);
        if (f.opcode === Op.Close) {
          stream.end(frame({ opcode: Op.Close, payload: f.payload }));
          return;
        }
        if (f.opcode === Op.Ping) stream.write(frame({ opcode: Op.Pong, payload: f.payload }));
        else if (f.opcode === Op.Text || f.opcode === Op.Binary) stream.write(frame({ opcode: f.opcode, payload: f.payload }));
      }
    });
    options.onStream?.(stream, headers);
  });
  server.on('sessionError', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.add(server, (s) => {
    for (const x of sessions) x.destroy();
    return new Promise((r) => s.close(r));
  });
  return { server, port: (server.address() as { port: number }).port, sessions, connections: () => connections };
}

/** Bytes a whole frame at the start of `b` takes, or 0 while it is incomplete. */
function wholeFrameSize(b: Buffer): number {
  if (b.length < 2) return 0;
  let len = b[1] & 0x7f;
  let p = 2;
  if (len === 126) {
    if (b.length < 4) return 0;
    len = b.readUInt16BE(2);
    p = 4;
  } else if (len === 127) {
    if (b.length < 10) return 0;
    len = Number(b.readBigUInt64BE(2));
    p = 10;
  }
  if (b[1] & 0x80) p += 4;
  return b.length >= p + len ? p + len : 0;
}

describe('connect() over HTTP/2 (RFC 8441)', { timeout: 180_000 }, () => {
  it('against sockeye over h2: echo, permessage-deflate, subprotocol, close codes both ways, one shared connection', async () => {
    const t = new Scope();
    try {
      const closes: CloseInfo[] = [];
      const s = await start(t, { perMessageDeflate: true, protocols: { chat: { onMessage: (x, m) => void x.send(m.data, { binary: m.binary }), onClose: (_x, info) => void closes.push(info) } }, handler: undefined });
      const counted = await countingRelay(t, s.port);
      const ctx = t.add(new Context(), (c) => c.close());
      const url = `wss://127.0.0.1:${counted.relay.port}/chat?x=1`;
      const clients = await Promise.all([0, 1, 2].map(() => connect(url, { http2: true, context: ctx, tls, protocol: ['other', 'chat'], perMessageDeflate: true })));
      for (const c of clients) t.add(c, (x) => x.terminate());
      assert.equal(counted.accepted(), 1, 'three WebSockets, one TLS connection');
      await waitUntil(() => s.server.clients.size === 3, 5000, 'three server sessions');
      for (const ss of s.server.clients) {
        assert.equal(ss.http2, true);
        assert.equal(ss.request.httpVersion, '2');
        assert.equal(ss.request.path, '/chat');
        assert.equal(ss.request.query.get('x'), '1');
        assert.deepEqual(ss.extensions, ['permessage-deflate']);
      }
      for (const c of clients) {
        assert.equal(c.http2, true);
        assert.equal(c.protocol, 'chat');
        assert.deepEqual(c.extensions, ['permessage-deflate']);
        assert.equal(c.responseHeaders.get(':status')?.[0], '200');
      }
      const [a, b, c] = clients;
      a.send('héllo over h2');
      assert.equal((await next(a)).text, 'héllo over h2');
      const bin = pseudoRandomBytes(300_000, 5);
      b.send(bin);
      const echoed = await next(b);
      assert.equal(echoed.binary, true);
      assert.equal(sha256(echoed.data), sha256(bin));
      // Close codes both ways: the client closes one, the server another.
      a.close(4001, 'client says bye');
      const ai = await within(a.closed, 5000, 'a closed');
      assert.deepEqual([ai.code, ai.wasClean, ai.unsentMessages], [4001, true, 0]);
      await waitUntil(() => closes.length === 1, 5000, 'the server sees the close');
      assert.deepEqual([closes[0].code, closes[0].reason], [4001, 'client says bye']);
      const serverSide = [...s.server.clients].find((x) => x.state === 'open')!;
      serverSide.close(4002, 'server says bye');
      const byServer = await within(Promise.race([b.closed, c.closed]), 5000, 'a client closed by the server');
      assert.deepEqual([byServer.code, byServer.reason, byServer.wasClean], [4002, 'server says bye', true]);
      // The connection is still the one: a new WebSocket reuses it.
      const d = t.add(await connect(url, { http2: true, context: ctx, tls, protocol: 'chat' }), (x) => x.terminate());
      d.send('again');
      assert.equal((await next(d)).text, 'again');
      assert.equal(counted.accepted(), 1, 'still one connection');
    } finally {
      await t.close();
    }
  });

  it('h2c with prior knowledge for ws: URLs, and the WHATWG WebSocket passes http2 through', async () => {
    const t = new Scope();
    try {
      const s = await start(t, { http2: true }, false);
      const counted = await countingRelay(t, s.port);
      const ctx = t.add(new Context(), (c) => c.close());
      const url = `ws://127.0.0.1:${counted.relay.port}/plain`;
      const a = t.add(await connect(url, { http2: 'require', context: ctx }), (x) => x.terminate());
      const b = t.add(await connect(url, { http2: 'require', context: ctx }), (x) => x.terminate());
      a.send('cleartext');
      b.send(Buffer.from([0, 1, 2, 255]));
      assert.equal((await next(a)).text, 'cleartext');
      assert.deepEqual([...(await next(b)).data], [0, 1, 2, 255]);
      await waitUntil(() => s.sessions.length === 2, 5000, 'server sessions');
      assert.deepEqual(s.sessions.map((x) => [x.http2, x.request.secure]), [[true, false], [true, false]]);
      assert.equal(counted.accepted(), 1);

      const ws = new WebSocket(url, [], { http2: true, context: ctx });
      t.add(ws, (w) => w.close());
      const got = await within(
        new Promise<string>((resolve, reject) => {
          ws.onopen = () => ws.send('whatwg');
          ws.onmessage = (e) => resolve(String(e.data));
          ws.onerror = () => reject(new Error('WebSocket error'));
        }),
        5000,
        'the WHATWG echo',
      );
      assert.equal(got, 'whatwg');
      assert.equal(s.sessions.length, 3);
      assert.equal(s.sessions[2].http2, true);
      assert.equal(counted.accepted(), 1, 'the WHATWG WebSocket shares the context\'s connection');
    } finally {
      await t.close();
    }
  });

  it('h2c over a unix domain socket (ws+unix: URL)', async () => {
    const t = new Scope();
    const dir = t.add(mkdtempSync(join(tmpdir(), 'sockeye-h2-unix-')), (d) => rmSync(d, { recursive: true, force: true }));
    try {
      const sessions: ServerSession[] = [];
      const server = t.add(createServer({ http2: true, keepalive: null, handler: { onOpen: (x) => void sessions.push(x), onMessage: (x, m) => void x.send(m.data) } }), (x) => x.close());
      const path = join(dir, 'h2.sock');
      await server.listen({ path });
      const ctx = t.add(new Context(), (c) => c.close());
      const client = t.add(await connect(`ws+unix://${path}:/over/unix?q=1`, { http2: 'require', context: ctx }), (x) => x.terminate());
      client.send('unix h2c');
      assert.equal((await next(client)).text, 'unix h2c');
      assert.equal(sessions[0].http2, true);
      assert.equal(sessions[0].request.path, '/over/unix');
      assert.equal(sessions[0].request.host, 'localhost');
    } finally {
      await t.close();
    }
  });

  it('against a node:http2 server doing RFC 8441 without sockeye: the request fields, echo, close, a refusal', async () => {
    const t = new Scope();
    try {
      const seen: http2.IncomingHttpHeaders[] = [];
      const raw = await rawH2Server(t, { status: (h) => (String(h[':path']).startsWith('/forbidden') ? 403 : 200), onStream: (_s, h) => void seen.push(h) });
      const ctx = t.add(new Context(), (c) => c.close());
      const client = t.add(await connect(`wss://127.0.0.1:${raw.port}/room/1?k=v`, { http2: true, context: ctx, tls, protocol: ['p1', 'p2'], origin: 'https://app.test', headers: { 'x-extra': 'yes' } }), (x) => x.terminate());
      const h = seen[0];
      assert.equal(h[':method'], 'CONNECT');
      assert.equal(h[':protocol'], 'websocket');
      assert.equal(h[':scheme'], 'https');
      assert.equal(h[':path'], '/room/1?k=v');
      assert.equal(h[':authority'], `127.0.0.1:${raw.port}`);
      assert.equal(h['sec-websocket-version'], '13');
      assert.equal(h['sec-websocket-protocol'], 'p1, p2');
      assert.equal(h.origin, 'https://app.test');
      assert.equal(h['x-extra'], 'yes');
      assert.equal(h['sec-websocket-key'], undefined, 'RFC 8441 section 5: no key');
      assert.equal(h.upgrade, undefined);
      assert.equal(client.protocol, 'p1');
      client.send('raw echo');
      assert.equal((await next(client)).text, 'raw echo');
      const big = pseudoRandomBytes(200_000, 9);
      client.send(big);
      assert.equal(sha256((await next(client)).data), sha256(big));
      client.close(4100, 'done');
      const info = await within(client.closed, 5000, 'close');
      assert.deepEqual([info.code, info.reason, info.wasClean], [4100, 'done', true]);
      const refused = await connect(`wss://127.0.0.1:${raw.port}/forbidden`, { http2: true, context: ctx, tls }).then(
        () => assert.fail('a 403 must reject'),
        (err: unknown) => err,
      );
      assert.ok(refused instanceof HandshakeError);
      assert.equal(refused.code, 'ERR_UNEXPECTED_STATUS');
      assert.equal(refused.status, 403);
      assert.equal(raw.connections(), 1, 'both on one connection');
    } finally {
      await t.close();
    }
  });

  it('falls back to HTTP/1.1 where the server does not take WebSockets over HTTP/2; require fails with ERR_HTTP2_UNAVAILABLE', async () => {
    const t = new Scope();
    try {
      // A sockeye server with HTTP/2 off: ALPN picks http/1.1.
      const off = await start(t, { http2: false });
      const ctx = t.add(new Context(), (c) => c.close());
      const c1 = t.add(await connect(`wss://127.0.0.1:${off.port}/`, { http2: true, context: ctx, tls }), (x) => x.terminate());
      assert.equal(c1.http2, false);
      c1.send('over 1.1');
      assert.equal((await next(c1)).text, 'over 1.1');
      await waitUntil(() => off.sessions.length === 1, 5000, 'session');
      assert.equal(off.sessions[0].http2, false);
      const expectUnavailable = async (p: Promise<unknown>, why: RegExp) => {
        const err = await p.then(
          () => assert.fail('must reject'),
          (e: unknown) => e,
        );
        assert.ok(err instanceof HandshakeError, String(err));
        assert.equal(err.code, 'ERR_HTTP2_UNAVAILABLE');
        assert.match(err.message, why);
      };
      await expectUnavailable(connect(`wss://127.0.0.1:${off.port}/`, { http2: 'require', tls }), /ALPN/);
      // Cleartext: a server without h2c answers the preface as HTTP/1.1.
      const plain = await start(t, {}, false);
      const c2 = t.add(await connect(`ws://127.0.0.1:${plain.port}/`, { http2: true, context: ctx }), (x) => x.terminate());
      assert.equal(c2.http2, false);
      c2.send('h1 after preface');
      assert.equal((await next(c2)).text, 'h1 after preface');
      await expectUnavailable(connect(`ws://127.0.0.1:${plain.port}/`, { http2: { fallback: false } }), /preface/);
      // node:http2 without SETTINGS_ENABLE_CONNECT_PROTOCOL (HTTP/1.1 upgrades go to a sockeye server beside it).
      const behind = t.add(createServer({ noServer: true, handler: { onMessage: (x, m) => void x.send(m.data) }, keepalive: null } as ServerOptions), (x) => x.close());
      const noConnect = await rawH2Server(t, { enableConnect: false, allowHTTP1: true });
      noConnect.server.on('upgrade', (req, socket, head) => behind.handleUpgrade(req, socket, head));
      const c3 = t.add(await connect(`wss://127.0.0.1:${noConnect.port}/`, { http2: true, tls }), (x) => x.terminate());
      assert.equal(c3.http2, false);
      c3.send('fell back');
      assert.equal((await next(c3)).text, 'fell back');
      await expectUnavailable(connect(`wss://127.0.0.1:${noConnect.port}/`, { http2: 'require', tls }), /SETTINGS_ENABLE_CONNECT_PROTOCOL/);
      await assert.rejects(connect('ws://127.0.0.1:1/', { http2: { maxConnectionsPerOrigin: 0 } }), { code: 'ERR_BAD_OPTION' });
    } finally {
      await t.close();
    }
  });

  it('RST_STREAM ends one WebSocket with 1006; GOAWAY NO_ERROR closes the others with 1001; a drop ends all with 1006 and their unsent messages', async () => {
    const t = new Scope();
    try {
      const streams = new Map<string, http2.ServerHttp2Stream>();
      const raw = await rawH2Server(t, {
        onStream: (stream, h) => {
          streams.set(String(h[':path']), stream);
          // This one never reads: what the client sends it stays queued.
          if (String(h[':path']).startsWith('/stuck')) stream.pause();
          // This one is reset right after its 200.
          if (h[':path'] === '/reset-now') stream.close(http2.constants.NGHTTP2_CANCEL);
        },
      });
      const ctx = t.add(new Context(), (c) => c.close());
      const url = (p: string) => `wss://127.0.0.1:${raw.port}${p}`;
      const [a, b, c] = await Promise.all(['/a', '/b', '/c'].map((p) => connect(url(p), { http2: true, context: ctx, tls })));
      for (const x of [a, b, c]) t.add(x, (y) => y.terminate());
      assert.equal(raw.connections(), 1);
      streams.get('/a')!.close(http2.constants.NGHTTP2_CANCEL);
      const ai = await within(a.closed, 5000, 'the reset WebSocket');
      assert.deepEqual([ai.code, ai.wasClean], [1006, false]);
      // A stream reset right after its 200, before the session started reading it: the session still ends.
      const early = t.add(await connect(url('/reset-now'), { http2: true, context: ctx, tls }), (y) => y.terminate());
      const earlyInfo = await within(early.closed, 5000, 'the WebSocket reset right after its 200');
      assert.deepEqual([earlyInfo.code, earlyInfo.wasClean], [1006, false]);
      b.send('b lives');
      c.send('c lives');
      assert.equal((await next(b)).text, 'b lives');
      assert.equal((await next(c)).text, 'c lives');
      // GOAWAY NO_ERROR (RFC 9113 section 6.8): the streams may finish; each WebSocket closes with 1001.
      const first = [...raw.sessions][0];
      first.goaway(http2.constants.NGHTTP2_NO_ERROR);
      const [bi, ci] = await within(Promise.all([b.closed, c.closed]), 5000, 'the WebSockets of the connection going away');
      for (const i of [bi, ci]) assert.deepEqual([i.code, i.wasClean, i.unsentMessages], [1001, true, 0]);
      // A WebSocket opened after it goes on a new connection.
      const d = t.add(await connect(url('/stuck-d'), { http2: true, context: ctx, tls }), (y) => y.terminate());
      const e = t.add(await connect(url('/e'), { http2: true, context: ctx, tls }), (y) => y.terminate());
      assert.equal(raw.connections(), 2);
      for (let i = 0; i < 64; i++) d.send(Buffer.alloc(64 * 1024, i));
      e.send('e lives');
      assert.equal((await next(e)).text, 'e lives');
      await waitUntil(() => d.bufferedAmount > 0, 5000, 'd to hold queued messages');
      // The server's connection drops: every WebSocket on it ends with 1006, the queued ones counted (S4).
      for (const x of raw.sessions) if (x !== first) x.destroy();
      const [di, ei] = await within(Promise.all([d.closed, e.closed]), 5000, 'the WebSockets of the dropped connection');
      assert.deepEqual([di.code, di.wasClean, ei.code], [1006, false, 1006]);
      assert.ok(di.unsentMessages > 0, `unsent messages reported: ${di.unsentMessages}`);
      // GOAWAY with an error code: the connection ends at once, its WebSockets with 1006.
      const f = t.add(await connect(url('/stuck-f'), { http2: true, context: ctx, tls }), (y) => y.terminate());
      for (let i = 0; i < 64; i++) f.send(Buffer.alloc(64 * 1024, i));
      await waitUntil(() => f.bufferedAmount > 0, 5000, 'f to hold queued messages');
      const third = [...raw.sessions].at(-1)!;
      third.goaway(http2.constants.NGHTTP2_PROTOCOL_ERROR);
      const fi = await within(f.closed, 5000, 'f after GOAWAY PROTOCOL_ERROR');
      assert.deepEqual([fi.code, fi.wasClean], [1006, false]);
      assert.ok(fi.unsentMessages > 0, `unsent messages reported after GOAWAY with an error: ${fi.unsentMessages}`);
    } finally {
      await t.close();
    }
  });

  it('a stream refused (REFUSED_STREAM, RFC 9113 section 8.7) is tried again once; refused twice, connect() rejects', async () => {
    const t = new Scope();
    try {
      const refusals = new Map<string, number>();
      const server = http2.createSecureServer({ key: cert.key, cert: cert.cert, settings: { enableConnectProtocol: true } });
      server.on('session', (x) => x.on('error', () => undefined));
      server.on('stream', (stream, h) => {
        stream.on('error', () => undefined);
        const path = String(h[':path']);
        const n = refusals.get(path) ?? 0;
        const limit = path === '/once' ? 1 : Infinity;
        if (n < limit) {
          refusals.set(path, n + 1);
          stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
          return;
        }
        stream.respond({ ':status': 200 });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      t.add(server, (x) => new Promise((r) => x.close(r)));
      const port = (server.address() as { port: number }).port;
      const ctx = t.add(new Context(), (c) => c.close());
      const once = t.add(await connect(`wss://127.0.0.1:${port}/once`, { http2: true, context: ctx, tls }), (x) => x.terminate());
      assert.equal(once.http2, true);
      assert.equal(refusals.get('/once'), 1);
      const err = await connect(`wss://127.0.0.1:${port}/always`, { http2: true, context: ctx, tls }).then(
        () => assert.fail('refused twice must reject'),
        (e: unknown) => e as { code?: string; message: string },
      );
      assert.equal(err.code, 'ERR_CONNECTION_CLOSED');
      assert.match(err.message, /RST_STREAM 7/);
      assert.equal(refusals.get('/always'), 2, 'one retry, no more');
    } finally {
      await t.close();
    }
  });

  it('limits: the server\'s SETTINGS_MAX_CONCURRENT_STREAMS, a second connection, then a queue; idle connections close', async () => {
    const t = new Scope();
    try {
      const s = await start(t, { http2: { maxConcurrentStreams: 2 } });
      const counted = await countingRelay(t, s.port);
      const ctx = t.add(new Context(), (c) => c.close());
      const url = `wss://127.0.0.1:${counted.relay.port}/`;
      const opts = { context: ctx, tls, http2: { maxConnectionsPerOrigin: 2, idleTimeoutMs: 1000 } };
      const four = await Promise.all([0, 1, 2, 3].map(() => connect(url, opts)));
      for (const x of four) t.add(x, (y) => y.terminate());
      assert.equal(counted.accepted(), 2, 'two streams per connection, four WebSockets: two connections');
      // Both connections are full and no third may open: a fifth waits for a stream, within its handshake timeout.
      await assert.rejects(connect(url, { ...opts, handshakeTimeoutMs: 300 }), { code: 'ERR_HANDSHAKE_TIMEOUT' });
      const queued = connect(url, opts);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(s.server.clients.size, 4, 'the sixth waits');
      four[0].close();
      const sixth = t.add(await within(queued, 5000, 'the queued WebSocket'), (y) => y.terminate());
      sixth.send('queued then open');
      assert.equal((await next(sixth)).text, 'queued then open');
      assert.equal(counted.accepted(), 2, 'it took the freed stream');
      // The last WebSocket of a connection closed: the connection stays idle for idleTimeoutMs, then closes.
      for (const x of [...four.slice(1), sixth]) x.close();
      await within(Promise.all([...four, sixth].map((x) => x.closed)), 5000, 'all closed');
      assert.equal(counted.open(), 2, 'idle, not closed yet');
      await waitUntil(() => counted.open() === 0, 5000, 'the idle connections to close');
      // Without a shared context, the WebSocket's connection is its own and closes with it.
      const own = await connect(url, { tls, http2: true });
      await waitUntil(() => counted.open() === 1, 5000, 'its connection');
      own.close();
      await within(own.closed, 5000, 'closed');
      await waitUntil(() => counted.open() === 0, 2000, 'its connection to close at once');
    } finally {
      await t.close();
    }
  });

  it('a process whose last WebSocket has closed exits, its idle HTTP/2 connection open and its context never closed', async () => {
    const t = new Scope();
    try {
      const s = await start(t);
      const lib = fileURLToPath(new URL('../../src/index.js', import.meta.url));
      const program = `
        const { connect, Context } = await import(${JSON.stringify(lib)});
        const context = new Context();
        const ws = await connect('wss://127.0.0.1:${s.port}/', { http2: { idleTimeoutMs: 60000 }, context, tls: { ca: process.env.CA } });
        ws.send('bye');
        for await (const m of ws.messages()) { process.stdout.write(m.text + ' ' + ws.http2 + '\\n'); ws.close(); }
        process.stdout.write('closed\\n');
      `;
      const child = spawn(process.execPath, ['--input-type=module', '-e', program], { env: { ...process.env, CA: cert.ca.toString() }, stdio: ['ignore', 'pipe', 'pipe'] });
      t.add(child, (c) => c.kill('SIGKILL'));
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d));
      child.stderr.on('data', (d: Buffer) => (err += d));
      const code = await within(new Promise<number | null>((r) => child.once('exit', r)), 10_000, 'the child to exit by itself (an idle HTTP/2 connection must not hold the process)');
      assert.equal(code, 0, err);
      assert.equal(out, 'bye true\nclosed\n');
    } finally {
      await t.close();
    }
  });

  it('S2 over HTTP/2: JSON every few ms under 5 ms keepalive pings both ways arrives byte-exact, in order', async () => {
    const t = new Scope();
    try {
      const keepalive = { pingAfterMs: 5, hangupAfterMs: 2000, alwaysPing: true } as const;
      const serverContext = t.add(new Context({ timerResolutionMs: 1 }), (c) => c.close());
      const s = await start(t, { keepalive, context: serverContext });
      const ctx = t.add(new Context({ timerResolutionMs: 1 }), (c) => c.close());
      let pongs = 0;
      const received: string[] = [];
      const client = t.add(await connect(`wss://127.0.0.1:${s.port}/`, { http2: 'require', context: ctx, tls, keepalive, handler: { onMessage: (_x, m) => void received.push(m.text), onPong: () => void pongs++ } }), (y) => y.terminate());
      const buf = Buffer.alloc(4096);
      const sent: string[] = [];
      const until = Date.now() + 3000;
      for (let seq = 0; Date.now() < until; seq++) {
        const doc = JSON.stringify({ seq, text: 'ünïcödé 🐟 '.repeat(seq % 97), sum: createHash('sha256').update(String(seq)).digest('hex') });
        const n = buf.write(doc);
        client.send(buf.subarray(0, n), { binary: false });
        buf.fill(0x7b); // the application reuses its buffer at once: send() has copied (S2)
        sent.push(doc);
        await new Promise((r) => setTimeout(r, 2));
      }
      await waitUntil(() => received.length === sent.length, 10_000, 'every echo');
      assert.deepEqual(received, sent);
      assert.ok(pongs > 10, `keepalive pings ran: ${pongs} pongs`);
      assert.equal(client.writableRequestCount, 0, 'no writable callback nobody asked for');
    } finally {
      await t.close();
    }
  });

  it('S1 over HTTP/2: large transfers both ways at once on one stream; a stalled stream never stalls another', async () => {
    const t = new Scope();
    try {
      const limits = { maxMessageBytes: 16 * MiB, maxQueuedBytes: 64 * MiB };
      const s = await start(t, { limits });
      const ctx = t.add(new Context(), (c) => c.close());
      const url = `wss://127.0.0.1:${s.port}/`;
      const opts = { http2: 'require' as const, context: ctx, tls, limits };
      const bulk = t.add(await connect(url, opts), (y) => y.terminate());
      const sums: string[] = [];
      for (let i = 0; i < 6; i++) {
        const b = pseudoRandomBytes(2 * MiB, i + 11);
        sums.push(sha256(b));
        bulk.send(b);
      }
      const got: string[] = [];
      for (let i = 0; i < 6; i++) got.push(sha256((await next(bulk, `bulk echo ${i}`)).data));
      assert.deepEqual(got, sums);

      // The client stops reading one stream while the server writes to it; another stream flows.
      const stalled = t.add(await connect(url, opts), (y) => y.terminate());
      const flowing = t.add(await connect(url, opts), (y) => y.terminate());
      await waitUntil(() => s.sessions.length === 3, 5000, 'sessions');
      stalled.pauseReading();
      const stalledServer = s.sessions[1];
      for (let i = 0; i < 64; i++) stalledServer.send(pseudoRandomBytes(64 * 1024, i));
      await waitUntil(() => stalledServer.bufferedAmount > 0, 5000, 'the stalled stream to back up');
      for (let i = 0; i < 10; i++) {
        const b = pseudoRandomBytes(256 * 1024, i + 100);
        flowing.send(b);
        assert.equal(sha256((await next(flowing, `flowing echo ${i}`)).data), sha256(b));
      }
      // The server stops reading another stream while the client writes to it; the flowing one still flows.
      const unread = t.add(await connect(url, opts), (y) => y.terminate());
      await waitUntil(() => s.sessions.length === 4, 5000, 'session');
      s.sessions[3].pauseReading();
      for (let i = 0; i < 64; i++) unread.send(Buffer.alloc(64 * 1024, i));
      await waitUntil(() => unread.bufferedAmount > 0, 5000, 'the unread stream to back up');
      for (let i = 0; i < 10; i++) {
        const b = pseudoRandomBytes(256 * 1024, i + 200);
        flowing.send(b);
        assert.equal(sha256((await next(flowing, `flowing echo, second ${i}`)).data), sha256(b));
      }
      // Reading again, the stalled stream gets everything, in order.
      stalled.resumeReading();
      for (let i = 0; i < 64; i++) assert.equal(sha256((await next(stalled, `stalled message ${i}`)).data), sha256(pseudoRandomBytes(64 * 1024, i)));
      assert.equal(stalled.state, 'open');
    } finally {
      await t.close();
    }
  });
});
