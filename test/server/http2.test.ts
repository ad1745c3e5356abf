/**
 * WebSockets over HTTP/2 (RFC 8441), server side, against node:http2's own
 * client (no sockeye client code on the wire side of the handshake):
 *
 * - one TLS port answers HTTP/2 (ALPN h2) and HTTP/1.1; an extended CONNECT
 *   opens a session that knows it runs on HTTP/2, with subprotocol and
 *   permessage-deflate negotiated as over HTTP/1.1; HTTP/1.1 upgrades and
 *   onHttpRequest go on as before; `http2: false` offers no h2; cleartext
 *   h2 with prior knowledge when asked for;
 * - the statuses of HTTP/1.1 for the refusals; static mounts over HTTP/2;
 * - RST_STREAM ends one WebSocket (1006), the connection going ends all of
 *   them, each counting its unsent messages (S4);
 * - SETTINGS_MAX_CONCURRENT_STREAMS is advertised and enforced; a
 *   connection that opens no stream within handshakeTimeoutMs is closed;
 *   a header list over maxHeadBytes, or with more fields than maxHeaders,
 *   is refused on its stream;
 * - over HTTP/2 too: a large transfer both ways at once (S1), a graceful
 *   close with queued messages loses nothing (S4), 1009, 1007, a deflate
 *   bomb, and a stream that never reads beside one that keeps flowing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as http2 from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { connect, createMountHandler, createServer, type CloseInfo, type ServerOptions, type ServerSession, type WebSocketServer } from '../../src/index.js';
import { Context } from '../../src/transport/context.js';
import type { Session } from '../../src/transport/session.js';
import { testCert } from '../helpers/certs.js';
import { frame, Op, RSV1 } from '../helpers/frames.js';
import { clientOver, deflatedZeros, h2Connect, openStream, Scope, within } from '../helpers/h2.js';
import { pseudoRandomBytes, sha256, waitUntil } from '../helpers/ws-pair.js';

const cert = testCert();
const MiB = 1024 * 1024;

interface Started {
  server: WebSocketServer;
  sessions: ServerSession[];
  closes: Array<{ session: ServerSession; info: CloseInfo }>;
  origin: string;
}

async function start(scope: Scope, options: ServerOptions = {}, secure = true): Promise<Started> {
  const sessions: ServerSession[] = [];
  const closes: Started['closes'] = [];
  const server = scope.add(
    createServer({
      port: 0,
      ...(secure ? { tls: { key: cert.key, cert: cert.cert } } : {}),
      keepalive: null,
      handler: {
        onOpen: (s) => void sessions.push(s),
        onMessage: (s, m) => void s.send(m.data, { binary: m.binary }),
        onClose: (s, info) => void closes.push({ session: s, info }),
      },
      onError: () => undefined,
      ...options,
    }),
    (s) => s.close(),
  );
  const { port } = await server.listen();
  return { server, sessions, closes, origin: `${secure ? 'https' : 'http'}://127.0.0.1:${port}` };
}

describe('WebSockets over HTTP/2 (RFC 8441), server', { timeout: 120_000 }, () => {
  let scope: Scope;
  before(() => {
    scope = new Scope();
  });
  after(async () => {
    await scope.close();
  });

  it('answers an extended CONNECT on the TLS port: echo, subprotocol, permessage-deflate, clean close', async () => {
    const t = new Scope();
    try {
      const s = await start(t, { perMessageDeflate: true, protocols: { chat: { onMessage: (x, m) => void x.send(m.data, { binary: m.binary }) } } });
      const { session, settings } = await h2Connect(s.origin);
      t.add(session, (x) => x.destroy());
      assert.equal(session.alpnProtocol, 'h2');
      assert.equal(settings.enableConnectProtocol, true, 'SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 section 3)');
      assert.equal(settings.maxConcurrentStreams, 100);
      const key = 'dGhlIHNhbXBsZSBub25jZQ==';
      const { stream, headers } = await openStream(session, '/chat?room=1', { 'sec-websocket-protocol': 'other, chat', 'sec-websocket-extensions': 'permessage-deflate; client_max_window_bits', origin: 'https://example.test', 'sec-websocket-key': key });
      assert.equal(headers[':status'], 200);
      assert.equal(headers['sec-websocket-protocol'], 'chat');
      assert.match(String(headers['sec-websocket-extensions']), /^permessage-deflate/);
      assert.equal(headers['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=', 'a key sent anyway is answered (RFC 6455 section 1.3 example)');
      await waitUntil(() => s.server.clients.size === 1, 5000, 'the server session');
      const ss = [...s.server.clients][0];
      assert.equal(ss.http2, true);
      assert.equal(ss.request.httpVersion, '2');
      assert.equal(ss.request.path, '/chat');
      assert.equal(ss.request.query.get('room'), '1');
      assert.equal(ss.request.host, `127.0.0.1:${new URL(s.origin).port}`);
      assert.equal(ss.request.origin, 'https://example.test');
      assert.equal(ss.request.secure, true);
      assert.equal(ss.request.remoteAddress, '127.0.0.1');
      assert.equal(ss.request.headers.get(':protocol')?.[0], 'websocket');
      assert.deepEqual(ss.extensions, ['permessage-deflate']);
      assert.equal(ss.protocol, 'chat');
      // The bare client session below has no deflate codec: this stream is reset, the echo runs on one without the offer.
      stream.close(http2.constants.NGHTTP2_CANCEL);
      const info0 = await within(ss.closed, 5000, 'the reset session');
      assert.equal(info0.code, 1006);
      const ctx = t.add(new Context(), (c) => c.close());
      const plain = await openStream(session, '/chat', { 'sec-websocket-protocol': 'chat' });
      await waitUntil(() => s.server.clients.size === 1, 5000, 'the second session');
      const ss2 = [...s.server.clients][0];
      const client = clientOver(plain.stream, ctx);
      client.send('héllo');
      const bin = pseudoRandomBytes(200_000, 3);
      client.send(bin);
      const it = client.messages();
      const m1 = await within(it.next(), 5000, 'text echo');
      assert.equal(m1.value?.text, 'héllo');
      const m2 = await within(it.next(), 5000, 'binary echo');
      assert.equal(sha256(m2.value!.data), sha256(bin));
      client.close(1000, 'bye');
      const info = await within(client.closed, 5000, 'client close');
      assert.deepEqual([info.code, info.wasClean, info.unsentMessages], [1000, true, 0]);
      const sinfo = await within(ss2.closed, 5000, 'server close');
      assert.deepEqual([sinfo.code, sinfo.reason, sinfo.wasClean], [1000, 'bye', true]);
      // The HTTP/2 connection outlives its WebSocket: another stream opens on it.
      const again = await openStream(session, '/');
      assert.equal(again.headers[':status'], 200);
      again.stream.close(http2.constants.NGHTTP2_CANCEL);
    } finally {
      await t.close();
    }
  });

  it('keeps HTTP/1.1 on the same port: upgrades, onHttpRequest; http2: false offers no h2', async () => {
    const t = new Scope();
    try {
      const s = await start(t, { onHttpRequest: (_req, res) => res.end('plain') });
      const client = t.add(await connect(s.origin.replace('https', 'wss') + '/x', { insecure: true }), (c) => c.terminate());
      await waitUntil(() => s.sessions.length === 1, 5000, 'the HTTP/1.1 session');
      assert.equal(s.sessions[0].http2, false);
      assert.equal(s.sessions[0].request.httpVersion, '1.1');
      client.send('one');
      assert.equal((await within(client.messages().next(), 5000, 'echo')).value?.text, 'one');
      // A plain HTTP/2 request goes to onHttpRequest through node:http2's compatibility API.
      const { session } = await h2Connect(s.origin);
      t.add(session, (x) => x.destroy());
      const req = session.request({ ':path': '/page' });
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      await within(new Promise((r) => req.on('end', r)), 5000, 'HTTP/2 response');
      assert.equal(body, 'plain');

      const off = await start(t, { http2: false });
      const alpn = await within(
        new Promise<string | false>((resolve, reject) => {
          const sock = tlsConnect({ host: '127.0.0.1', port: Number(new URL(off.origin).port), rejectUnauthorized: false, ALPNProtocols: ['h2', 'http/1.1'] }, () => {
            resolve(sock.alpnProtocol ?? false);
            sock.destroy();
          });
          sock.on('error', reject);
        }),
        5000,
        'ALPN',
      );
      assert.equal(alpn, 'http/1.1', 'no h2 offered with http2: false');
    } finally {
      await t.close();
    }
  });

  it('cleartext HTTP/2 with prior knowledge (http2: true), HTTP/1.1 beside it', async () => {
    const t = new Scope();
    try {
      const s = await start(t, { http2: true }, false);
      const { session } = await h2Connect(s.origin);
      t.add(session, (x) => x.destroy());
      const { stream, headers } = await openStream(session, '/', {}, 'http');
      assert.equal(headers[':status'], 200);
      const ctx = t.add(new Context(), (c) => c.close());
      const client = clientOver(stream, ctx);
      client.send('h2c');
      assert.equal((await within(client.messages().next(), 5000, 'echo')).value?.text, 'h2c');
      await waitUntil(() => s.sessions.length === 1, 5000, 'session');
      assert.equal(s.sessions[0].request.secure, false);
      const h1 = t.add(await connect(s.origin.replace('http', 'ws')), (c) => c.terminate());
      h1.send('h1');
      assert.equal((await within(h1.messages().next(), 5000, 'echo')).value?.text, 'h1');
      client.close();
      await within(client.closed, 5000, 'close');
    } finally {
      await t.close();
    }
  });

  it('refuses with the statuses of HTTP/1.1; serves static mounts over HTTP/2', async () => {
    const t = new Scope();
    const dir = mkdtempSync(join(tmpdir(), 'sockeye-h2-'));
    t.add(dir, (d) => rmSync(d, { recursive: true, force: true }));
    writeFileSync(join(dir, 'index.html'), '<p>hi</p>');
    try {
      const s = await start(t, { path: '/ws', protocols: { chat: {} }, handler: undefined, verifyClient: (r) => r.query.get('ok') !== 'no' || { status: 401, message: 'who?', headers: { 'WWW-Authenticate': 'Basic' } }, onHttpRequest: createMountHandler([{ mountpoint: '/', origin: dir, defaultFile: 'index.html' }]) });
      const { session } = await h2Connect(s.origin);
      t.add(session, (x) => x.destroy());
      const status = async (path: string, extra: http2.OutgoingHttpHeaders = {}) => (await openStream(session, path, extra)).headers;
      assert.equal((await status('/nope', { 'sec-websocket-protocol': 'chat' }))[':status'], 404);
      assert.equal((await status('/ws'))[':status'], 400, 'a subprotocol is required');
      assert.equal((await status('/ws', { 'sec-websocket-protocol': 'x' }))[':status'], 400);
      const v = await status('/ws', { 'sec-websocket-protocol': 'chat', 'sec-websocket-version': '8' });
      assert.equal(v[':status'], 426);
      assert.equal(v['sec-websocket-version'], '13');
      const denied = await status('/ws?ok=no', { 'sec-websocket-protocol': 'chat' });
      assert.equal(denied[':status'], 401);
      assert.equal(denied['www-authenticate'], 'Basic');
      assert.equal((await status('/ws', { 'sec-websocket-protocol': 'chat', 'sec-websocket-key': 'short' }))[':status'], 400);
      assert.equal((await status('/ws', { 'sec-websocket-protocol': 'chat' }))[':status'], 200);
      const page = session.request({ ':path': '/' });
      let body = '';
      let st: unknown;
      page.on('response', (h) => (st = h[':status']));
      page.setEncoding('utf8');
      page.on('data', (d: string) => (body += d));
      await within(new Promise((r) => page.on('end', r)), 5000, 'static page');
      assert.deepEqual([st, body], [200, '<p>hi</p>']);
      // A plain CONNECT (a tunnel) is not what this server does.
      const tunnel = session.request({ ':method': 'CONNECT', ':authority': 'example.test:443' });
      tunnel.on('error', () => undefined);
      const [h] = await within(new Promise<[http2.IncomingHttpHeaders]>((r) => tunnel.once('response', (x) => r([x]))), 5000, 'CONNECT answer');
      assert.equal(h[':status'], 405);
    } finally {
      await t.close();
    }
  });

  it('RST_STREAM ends one WebSocket (1006); the connection going ends all, counting unsent messages', async () => {
    const t = new Scope();
    try {
      const s = await start(t, { handler: { onOpen: (x) => void s.sessions.push(x), onClose: (x, info) => void s.closes.push({ session: x, info }) } });
      const { session } = await h2Connect(s.origin);
      t.add(session, (x) => x.destroy());
      const streams = await Promise.all([0, 1, 2].map(() => openStream(session, '/')));
      await waitUntil(() => s.sessions.length === 3, 5000, 'three sessions');
      streams[0].stream.close(http2.constants.NGHTTP2_CANCEL);
      await waitUntil(() => s.closes.length === 1, 5000, 'the reset session to end');
      assert.equal(s.closes[0].info.code, 1006);
      assert.equal(s.closes[0].info.wasClean, false);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(s.closes.length, 1, 'the other two stay open');
      assert.equal(s.server.clients.size, 2);
      // Fill one session's queue: its peer reads nothing, so the messages wait (window exhausted).
      const victim = s.sessions[1];
      for (let i = 0; i < 64; i++) victim.send(Buffer.alloc(64 * 1024, i));
      session.destroy();
      await waitUntil(() => s.closes.length === 3, 5000, 'all sessions to end');
      for (const c of s.closes.slice(1)) assert.equal(c.info.code, 1006);
      const v = s.closes.find((c) => c.session === victim)!;
      assert.ok(v.info.unsentMessages > 0, `unsent messages reported (S4): ${v.info.unsentMessages}`);
    } finally {
      await t.close();
    }
  });

  it('enforces maxConcurrentStreams per connection', async () => {
    const t = new Scope();
    try {
      const s = await start(t, { http2: { maxConcurrentStreams: 2 } });
      const { session, settings } = await h2Connect(s.origin);
      t.add(session, (x) => x.destroy());
      assert.equal(settings.maxConcurrentStreams, 2);
      await Promise.all([openStream(session, '/'), openStream(session, '/')]);
      // node queues a third stream until one closes (the server would refuse it with REFUSED_STREAM).
      const third = openStream(session, '/');
      const late = await Promise.race([third.then(() => 'opened'), new Promise((r) => setTimeout(() => r('waiting'), 300))]);
      assert.equal(late, 'waiting');
      assert.equal(s.server.clients.size, 2);
      assert.throws(() => createServer({ http2: { maxConcurrentStreams: 0 }, tls: { key: cert.key, cert: cert.cert } }), /maxConcurrentStreams/);
    } finally {
      await t.close();
    }
  });

  it('a large transfer both ways at once (S1), and a graceful close with queued messages loses nothing (S4)', async () => {
    const t = new Scope();
    try {
      const s = await start(t, { limits: { maxMessageBytes: 64 * MiB, maxQueuedBytes: 256 * MiB } });
      const { session } = await h2Connect(s.origin);
      t.add(session, (x) => x.destroy());
      const { stream } = await openStream(session, '/');
      const ctx = t.add(new Context(), (c) => c.close());
      const client = clientOver(stream, ctx);
      // 8 x 4 MiB each way, sent at once: the server echoes while the client still writes.
      const sent: string[] = [];
      for (let i = 0; i < 8; i++) {
        const b = pseudoRandomBytes(4 * MiB, i + 1);
        sent.push(sha256(b));
        client.send(b);
      }
      const got: string[] = [];
      const it = client.messages();
      for (let i = 0; i < 8; i++) got.push(sha256((await within(it.next(), 30_000, `echo ${i}`)).value!.data));
      assert.deepEqual(got, sent);
      // S4: the server queues 100 messages and closes at once; all arrive before the close frame.
      await waitUntil(() => s.sessions.length === 1, 5000, 'session');
      const ss = s.sessions[0];
      for (let i = 0; i < 100; i++) ss.send(JSON.stringify({ i, pad: 'x'.repeat(10_000) }));
      ss.close(1000, 'done');
      const seen: number[] = [];
      for (;;) {
        const r = await within(it.next(), 10_000, 'queued messages');
        if (r.done) break;
        seen.push((JSON.parse(r.value.text) as { i: number }).i);
      }
      assert.deepEqual(seen, [...Array(100).keys()]);
      const info = await within(client.closed, 5000, 'close');
      assert.deepEqual([info.code, info.reason, info.wasClean], [1000, 'done', true]);
      assert.equal((await within(ss.closed, 5000, 'server close')).unsentMessages, 0);
    } finally {
      await t.close();
    }
  });

  it('hostile streams: 1009, 1007, a deflate bomb, and a stream that never reads beside one that flows', async () => {
    const t = new Scope();
    try {
      const s = await start(t, { limits: { maxMessageBytes: MiB, maxQueuedBytes: 4 * MiB }, perMessageDeflate: true, closeTimeoutMs: 300 });
      const { session } = await h2Connect(s.origin);
      t.add(session, (x) => x.destroy());
      const ctx = t.add(new Context(), (c) => c.close());
      const closeOf = async (bytes: Buffer, offer = false): Promise<number> => {
        const { stream } = await openStream(session, '/', offer ? { 'sec-websocket-extensions': 'permessage-deflate' } : {});
        const before = s.closes.length;
        stream.write(bytes);
        await waitUntil(() => s.closes.length > before, 10_000, 'the server to close the session');
        return s.closes[s.closes.length - 1].info.code;
      };
      const mask = [1, 2, 3, 4];
      assert.equal(await closeOf(frame({ opcode: Op.Binary, payload: Buffer.alloc(MiB + 1), mask })), 1009);
      assert.equal(await closeOf(frame({ opcode: Op.Text, payload: Buffer.from([0xc3, 0x28]), mask })), 1007);
      const bomb = await deflatedZeros(64 * MiB);
      assert.equal(await closeOf(frame({ opcode: Op.Binary, rsv: RSV1, payload: bomb, mask }), true), 1009);
      // One stream never reads what the server sends it; another stream of the same connection keeps flowing.
      const stuck = await openStream(session, '/');
      stuck.stream.pause();
      await waitUntil(() => s.server.clients.size >= 1, 5000, 'stuck session');
      const stuckSession = [...s.server.clients].at(-1)!;
      let dropped = 0;
      for (let i = 0; i < 200; i++) if (stuckSession.send(Buffer.alloc(64 * 1024)) === 'dropped') dropped++;
      assert.ok(dropped > 0, 'the stuck stream is bounded by maxQueuedBytes (S3)');
      const live = await openStream(session, '/');
      const client: Session = clientOver(live.stream, ctx);
      const it = client.messages();
      for (let i = 0; i < 20; i++) {
        const b = pseudoRandomBytes(256 * 1024, i + 7);
        client.send(b);
        assert.equal(sha256((await within(it.next(), 5000, `flowing echo ${i}`)).value!.data), sha256(b));
      }
      assert.equal(stuckSession.state, 'open', 'the stuck session is still there, not failed');
      client.close();
      await within(client.closed, 5000, 'close');
    } finally {
      await t.close();
    }
  });
  it('closes an HTTP/2 connection that opens no stream within handshakeTimeoutMs; one that opened a WebSocket stays', async () => {
    const t = new Scope();
    try {
      const s = await start(t, { handshakeTimeoutMs: 300 });
      const t0 = Date.now();
      const idle = await h2Connect(s.origin);
      t.add(idle.session, (x) => x.destroy());
      const busy = await h2Connect(s.origin);
      t.add(busy.session, (x) => x.destroy());
      const { stream } = await openStream(busy.session, '/');
      await within(new Promise((r) => idle.session.once('close', r)), 5000, 'the idle connection to be closed');
      const elapsed = Date.now() - t0;
      assert.ok(elapsed >= 250, `closed after ${elapsed} ms, not before the timeout`);
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(busy.session.closed, false, 'the connection with a stream is not timed out');
      const ctx = t.add(new Context(), (c) => c.close());
      const client = clientOver(stream, ctx);
      client.send('still here');
      assert.equal((await within(client.messages().next(), 5000, 'echo')).value?.text, 'still here');
      client.close();
      await within(client.closed, 5000, 'close');
    } finally {
      await t.close();
    }
  });

  it('refuses a header list over maxHeadBytes and more fields than maxHeaders (RST_STREAM ENHANCE_YOUR_CALM); the server carries on', async () => {
    const t = new Scope();
    try {
      const s = await start(t, { maxHeadBytes: 4096, maxHeaders: 10 });
      const refused = async (extra: http2.OutgoingHttpHeaders): Promise<number | undefined> => {
        const { session, settings } = await h2Connect(s.origin);
        t.add(session, (x) => x.destroy());
        assert.equal(settings.maxHeaderListSize, 4096, 'SETTINGS_MAX_HEADER_LIST_SIZE is maxHeadBytes');
        const stream = session.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'https', ':path': '/', 'sec-websocket-version': '13', ...extra }, { endStream: false });
        stream.on('error', () => undefined);
        let status: unknown;
        stream.once('response', (h) => (status = h[':status']));
        await within(new Promise((r) => stream.once('close', r)), 5000, 'the stream to end');
        assert.equal(status, undefined, 'no answer to a refused head');
        return stream.rstCode;
      };
      assert.equal(await refused({ 'x-big': 'a'.repeat(8000) }), http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
      const many: http2.OutgoingHttpHeaders = {};
      for (let i = 0; i < 20; i++) many[`x-field-${i}`] = 'v';
      assert.equal(await refused(many), http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
      assert.equal(s.sessions.length, 0, 'no session opened for a refused head');
      // Within the limits (a 3,000-byte field, 8 extra fields), on a fresh connection: accepted.
      const { session } = await h2Connect(s.origin);
      t.add(session, (x) => x.destroy());
      const few: http2.OutgoingHttpHeaders = { 'x-mid': 'a'.repeat(3000) };
      for (let i = 0; i < 7; i++) few[`x-field-${i}`] = 'v';
      const ok = await openStream(session, '/', few);
      assert.equal(ok.headers[':status'], 200);
      await waitUntil(() => s.sessions.length === 1, 5000, 'the session');
      ok.stream.close(http2.constants.NGHTTP2_CANCEL);
    } finally {
      await t.close();
    }
  });
});
