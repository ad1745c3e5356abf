/**
 * engine.io 6 on sockeye/ws: engine.io's Server, attached to a node:http
 * server, takes sockeye's WebSocketServer as its `wsEngine`; engine.io-client
 * (whose Node transport is the ws package's client) talks to it over real
 * TCP, with the websocket transport alone and with polling upgraded to
 * websocket. Covered: the engine's construction and the socket it hands out,
 * text and binary messages both ways, 1,000 numbered messages in order each
 * way, closing from each side with engine.io's reasons, server.close(),
 * messages sent just before a close all delivered, engine.io's heartbeat
 * (and its ping timeout when sockeye's socket stops reading),
 * maxHttpBufferSize enforced by sockeye as maxPayload, engine.io's 'headers'
 * hook on the 101 answer, and sockeye/ws's own client under engine.io-client.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { Server as EioServer, type ServerOptions, type Socket as EioSocket } from 'engine.io';
import { NodeXHR, Socket as EioClient } from 'engine.io-client';
import { WebSocket, WebSocketServer, type WebSocketServerOptions } from '../../../src/compat/ws/index.js';
import { pseudoRandomBytes, waitUntil, withTimeout } from '../../helpers/ws-pair.js';
import { bytesOf, next, sockeyeClients, sockeyeSocketOf, SockeyeTransport, WAIT } from '../../helpers/engine-io.js';

const TEST = { timeout: 20_000 };

/** A server socket's session id (engine.io's typings keep `id` private). */
function idOf(socket: EioSocket): string {
  const id: unknown = Object.getOwnPropertyDescriptor(socket, 'id')?.value;
  assert.ok(typeof id === 'string' && id.length > 0, 'the socket has a session id');
  return id;
}

/** The close code in engine.io-client's close description ({ description, context: the WebSocket CloseEvent }). */
function closeCodeOf(description: unknown): number {
  assert.ok(typeof description === 'object' && description !== null && 'context' in description, 'a close description with its context');
  const event = description.context;
  assert.ok(typeof event === 'object' && event !== null && 'code' in event && typeof event.code === 'number', 'a CloseEvent with a code');
  return event.code;
}

type Mode = 'websocket' | 'polling upgraded to websocket';

interface Connected {
  client: EioClient;
  server: EioSocket;
  ws: WebSocket;
}

interface Fixture {
  eio: EioServer;
  http: HttpServer;
  port: number;
  /** Every sockeye WebSocket the engine's handleUpgrade handed to engine.io. */
  upgrades: WebSocket[];
  /** The options engine.io constructed each engine with. */
  engines: WebSocketServerOptions[];
  enginesClosed: () => number;
  /** A client open in `mode` (its websocket transport on sockeye's client when `sockeyeClient`), and its socket on the server. */
  connect(mode: Mode, sockeyeClient?: boolean): Promise<Connected>;
  close(): Promise<void>;
}

const fixtures: Fixture[] = [];
afterEach(async () => {
  for (const f of fixtures.splice(0)) await f.close();
});

async function start(options: ServerOptions = {}): Promise<Fixture> {
  const upgrades: WebSocket[] = [];
  const engines: WebSocketServerOptions[] = [];
  let closes = 0;
  class RecordingEngine extends WebSocketServer {
    constructor(opts: WebSocketServerOptions) {
      super(opts);
      engines.push(opts);
    }
    override handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, cb: (ws: WebSocket, req: IncomingMessage) => void): void {
      super.handleUpgrade(req, socket, head, (ws, r) => {
        upgrades.push(ws);
        cb(ws, r);
      });
    }
    override close(cb?: (err?: Error) => void): void {
      closes++;
      super.close(cb);
    }
  }
  const http = createHttpServer();
  const eio = new EioServer({ wsEngine: RecordingEngine, ...options });
  eio.attach(http);
  const sockets = new Map<string, EioSocket>();
  eio.on('connection', (s: EioSocket) => sockets.set(idOf(s), s));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const port = (http.address() as AddressInfo).port;
  const clients: EioClient[] = [];
  let closed = false;
  const f: Fixture = {
    eio,
    http,
    port,
    upgrades,
    engines,
    enginesClosed: () => closes,
    async connect(mode, sockeyeClient = false) {
      const transports = sockeyeClient ? (mode === 'websocket' ? [SockeyeTransport] : [NodeXHR, SockeyeTransport]) : mode === 'websocket' ? ['websocket'] : undefined;
      const client = new EioClient(`ws://127.0.0.1:${port}`, transports ? { transports } : {});
      clients.push(client);
      const upgraded = mode === 'websocket' ? null : next<string>((r) => client.once('upgrade', (t) => r(t.name)), 'the client upgrade');
      const handshake = next<string>((r) => client.once('handshake', (data) => r(data.sid)), 'the handshake');
      await next<void>((r) => client.once('open', () => r()), 'open');
      const id = await handshake;
      assert.ok(id.length > 0);
      await waitUntil(() => sockets.has(id), WAIT, 'the server socket');
      const server = sockets.get(id)!;
      if (upgraded) {
        assert.equal(await upgraded, 'websocket');
        await waitUntil(() => server.upgraded && server.transport.name === 'websocket', WAIT, 'the server to upgrade');
      }
      assert.equal(client.transport.name, 'websocket');
      const ws = sockeyeSocketOf(server);
      assert.ok(upgrades.includes(ws), 'the socket came from the engine\'s handleUpgrade');
      return { client, server, ws };
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const c of clients) c.close();
      eio.close();
      http.closeAllConnections();
      await withTimeout(new Promise<void>((resolve) => http.close(() => resolve())), WAIT, 'the HTTP server to close');
    },
  };
  fixtures.push(f);
  return f;
}

function sockeyeClosed(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
  return next<void>((r) => ws.once('close', () => r()), 'the sockeye socket to close');
}

/** Message i of a numbered run: even ones text, odd ones binary (4 bytes big-endian, then filler). */
function numbered(i: number): string | Buffer {
  if (i % 2 === 0) return `#${i}`;
  const b = Buffer.alloc(4 + (i % 50), i & 0xff);
  b.writeUInt32BE(i, 0);
  return b;
}

function numberOf(message: unknown): number {
  if (typeof message === 'string') {
    assert.match(message, /^#\d+$/);
    return Number(message.slice(1));
  }
  const b = bytesOf(message);
  const i = b.readUInt32BE(0);
  assert.equal(b.length, 4 + (i % 50), `length of binary message ${i}`);
  assert.ok(b.subarray(4).every((x) => x === (i & 0xff)), `filler of binary message ${i}`);
  return i;
}

for (const mode of ['websocket', 'polling upgraded to websocket'] as const) {
  describe(`engine.io over sockeye/ws: ${mode}`, () => {
    it('opens through the engine: one handleUpgrade per client, on a sockeye socket', TEST, async () => {
      const f = await start();
      assert.ok(f.engines.length >= 1, 'engine.io constructed the engine');
      for (const o of f.engines) {
        assert.equal(o.noServer, true);
        assert.equal(o.clientTracking, false);
        assert.equal(o.maxPayload, 1e6, 'maxHttpBufferSize (default 1e6) reaches the engine as maxPayload');
      }
      const a = await f.connect(mode);
      const b = await f.connect(mode);
      assert.equal(f.upgrades.length, 2, 'exactly one WebSocket upgrade per client');
      assert.notEqual(a.ws, b.ws);
      assert.equal(a.ws.readyState, WebSocket.OPEN);
      assert.equal(a.server.upgraded, mode !== 'websocket');
      assert.equal(a.server.readyState, 'open');
      assert.equal(f.eio.clientsCount, 2);
    });

    it('text and binary messages both ways, contents checked', TEST, async () => {
      const f = await start();
      const { client, server } = await f.connect(mode);
      // (An empty string is not among them: engine.io's parser decodes the packet "4" as a message without data.)
      const texts = ['hello', 'ünïcödé ✓ 𝄞 \u0000 end', 'x'.repeat(70_000)];
      const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      const big = pseudoRandomBytes(512 * 1024, 3);
      const sent: Array<string | Buffer> = [...texts, every, big, Buffer.alloc(0)];

      const atServer: unknown[] = [];
      server.on('message', (m: unknown) => atServer.push(m));
      for (const m of sent) client.send(m);
      await waitUntil(() => atServer.length === sent.length, WAIT, 'every message at the server');
      assert.ok(atServer.slice(0, texts.length).every((m, i) => m === texts[i]), 'the texts arrived as sent');
      assert.ok(bytesOf(atServer[3]).equals(every));
      assert.ok(bytesOf(atServer[4]).equals(big), 'the 512 KiB binary arrived byte for byte');
      assert.equal(bytesOf(atServer[5]).length, 0);

      const atClient: unknown[] = [];
      client.on('message', (m: unknown) => atClient.push(m));
      for (const m of sent) server.send(m);
      await waitUntil(() => atClient.length === sent.length, WAIT, 'every message at the client');
      assert.ok(atClient.slice(0, texts.length).every((m, i) => m === texts[i]), 'the texts arrived as sent');
      assert.ok(bytesOf(atClient[3]).equals(every));
      assert.ok(bytesOf(atClient[4]).equals(big), 'the 512 KiB binary arrived byte for byte');
      assert.equal(bytesOf(atClient[5]).length, 0);
    });

    it('1,000 numbered messages each way arrive complete and in order', TEST, async () => {
      const f = await start();
      const { client, server } = await f.connect(mode);
      const N = 1000;
      const atServer: number[] = [];
      server.on('message', (m: unknown) => atServer.push(numberOf(m)));
      for (let i = 0; i < N; i++) client.send(numbered(i));
      await waitUntil(() => atServer.length >= N, WAIT, `${N} messages at the server`);
      assert.deepEqual(atServer, Array.from({ length: N }, (_, i) => i));

      const atClient: number[] = [];
      client.on('message', (m: unknown) => atClient.push(numberOf(m)));
      for (let i = 0; i < N; i++) server.send(numbered(i));
      await waitUntil(() => atClient.length >= N, WAIT, `${N} messages at the client`);
      assert.deepEqual(atClient, Array.from({ length: N }, (_, i) => i));
    });

    it('messages sent right before close() all arrive before the close event, whichever side closes', TEST, async () => {
      const f = await start();
      const N = 1000;
      // The server sends N, then closes its socket at once: engine.io waits for the writes, sockeye flushes them.
      const a = await f.connect(mode);
      const atClient: number[] = [];
      let countAtClose = -1;
      a.client.on('message', (m: unknown) => atClient.push(numberOf(m)));
      const clientClosed = next<string>((r) => a.client.once('close', (reason) => {
        countAtClose = atClient.length;
        r(reason);
      }), 'the client close');
      for (let i = 0; i < N; i++) a.server.send(numbered(i));
      a.server.close();
      assert.equal(await clientClosed, 'transport close');
      assert.equal(countAtClose, N, 'every message arrived before the close');
      assert.deepEqual(atClient, Array.from({ length: N }, (_, i) => i));

      // The client sends N, then closes.
      const b = await f.connect(mode);
      const atServer: number[] = [];
      let serverCountAtClose = -1;
      b.server.on('message', (m: unknown) => atServer.push(numberOf(m)));
      const serverClosed = next<string>((r) => b.server.once('close', (reason: string) => {
        serverCountAtClose = atServer.length;
        r(reason);
      }), 'the server close');
      for (let i = 0; i < N; i++) b.client.send(numbered(i));
      b.client.close();
      assert.equal(await serverClosed, 'transport close');
      assert.equal(serverCountAtClose, N, 'every message arrived before the close');
      assert.deepEqual(atServer, Array.from({ length: N }, (_, i) => i));
      await sockeyeClosed(b.ws);
    });

    it('with sockeye/ws as the client\'s WebSocket too: messages both ways and the close reasons', TEST, async () => {
      const f = await start({ perMessageDeflate: { threshold: 0 } });
      const before = sockeyeClients.length;
      const { client, server, ws } = await f.connect(mode, true);
      assert.equal(sockeyeClients.length, before + 1, 'the client\'s transport made one sockeye/ws client');
      const peer = sockeyeClients[sockeyeClients.length - 1];
      assert.equal(peer.readyState, WebSocket.OPEN);
      assert.equal(peer.extensions, 'permessage-deflate');
      assert.equal(ws.extensions, 'permessage-deflate');
      const blob = pseudoRandomBytes(200_000, 11);
      const atServer: unknown[] = [];
      server.on('message', (m: unknown) => atServer.push(m));
      client.send('text from a sockeye client ✓');
      client.send(blob);
      await waitUntil(() => atServer.length === 2, WAIT, 'both messages at the server');
      assert.equal(atServer[0], 'text from a sockeye client ✓');
      assert.ok(bytesOf(atServer[1]).equals(blob));
      const atClient: unknown[] = [];
      client.on('message', (m: unknown) => atClient.push(m));
      server.send('text to a sockeye client');
      server.send(blob);
      await waitUntil(() => atClient.length === 2, WAIT, 'both messages at the client');
      assert.equal(atClient[0], 'text to a sockeye client');
      assert.ok(bytesOf(atClient[1]).equals(blob));
      const clientReason = next<string>((r) => client.once('close', (reason) => r(reason)), 'the client close');
      const serverReason = next<string>((r) => server.once('close', (reason: string) => r(reason)), 'the server close');
      client.close();
      assert.equal(await clientReason, 'forced close');
      assert.equal(await serverReason, 'transport close');
      await sockeyeClosed(ws);
      await sockeyeClosed(peer);
    });

    it('client close(): the client sees "forced close", the server "transport close"', TEST, async () => {
      const f = await start();
      const { client, server, ws } = await f.connect(mode);
      const clientReason = next<string>((r) => client.once('close', (reason) => r(reason)), 'the client close');
      const serverReason = next<string>((r) => server.once('close', (reason: string) => r(reason)), 'the server close');
      const wsClosed = sockeyeClosed(ws);
      client.close();
      assert.equal(await clientReason, 'forced close');
      assert.equal(await serverReason, 'transport close');
      await wsClosed;
      assert.equal(ws.readyState, WebSocket.CLOSED);
      assert.equal(server.readyState, 'closed');
      await waitUntil(() => f.eio.clientsCount === 0, WAIT, 'no client left');
    });

    it('server socket close(): the server sees "forced close", the client "transport close"', TEST, async () => {
      const f = await start();
      const { client, server, ws } = await f.connect(mode);
      const other = await f.connect(mode);
      const clientReason = next<string>((r) => client.once('close', (reason) => r(reason)), 'the client close');
      const serverReason = next<string>((r) => server.once('close', (reason: string) => r(reason)), 'the server close');
      const wsClosed = sockeyeClosed(ws);
      server.close();
      assert.equal(await serverReason, 'forced close');
      assert.equal(await clientReason, 'transport close');
      await wsClosed;
      assert.equal(client.readyState, 'closed');
      // The other connection still works.
      const echoed = next<unknown>((r) => other.client.once('message', r), 'a message on the other connection');
      other.server.send('still here');
      assert.equal(await echoed, 'still here');
      assert.equal(other.ws.readyState, WebSocket.OPEN);
      assert.equal(f.eio.clientsCount, 1);
    });
  });
}

describe('engine.io over sockeye/ws: server and limits', () => {
  it('server.close(): every socket "forced close", every client "transport close", the engine closed', TEST, async () => {
    const f = await start();
    const peers = [await f.connect('websocket'), await f.connect('polling upgraded to websocket')];
    const clientReasons = peers.map((p) => next<string>((r) => p.client.once('close', (reason) => r(reason)), 'a client close'));
    const serverReasons = peers.map((p) => next<string>((r) => p.server.once('close', (reason: string) => r(reason)), 'a server close'));
    const wsClosed = peers.map((p) => sockeyeClosed(p.ws));
    const before = f.enginesClosed();
    f.eio.close();
    assert.deepEqual(await Promise.all(serverReasons), ['forced close', 'forced close']);
    assert.deepEqual(await Promise.all(clientReasons), ['transport close', 'transport close']);
    await Promise.all(wsClosed);
    assert.equal(f.eio.clientsCount, 0);
    assert.equal(f.enginesClosed(), before + 1, 'engine.io closed its wsEngine once');
    // The closed engine refuses new upgrades (503, as ws does): a websocket-only client cannot open.
    const late = new EioClient(`ws://127.0.0.1:${f.port}`, { transports: ['websocket'] });
    const outcome = await next<string>((r) => {
      late.once('open', () => r('open'));
      late.once('close', (reason) => r(reason));
    }, 'the late client to fail');
    late.close();
    assert.equal(outcome, 'transport error');
    assert.equal(f.upgrades.length, 2);
  });

  it('engine.io heartbeats (pingInterval 40 ms) keep the connection open; a server socket that stops reading gets "ping timeout"', TEST, async () => {
    const f = await start({ pingInterval: 40, pingTimeout: 200 });
    const { client, server, ws } = await f.connect('websocket');
    let serverBeats = 0;
    let clientPings = 0;
    server.on('heartbeat', () => serverBeats++);
    client.on('ping', () => clientPings++);
    await waitUntil(() => serverBeats >= 8 && clientPings >= 8, WAIT, 'eight heartbeats each side');
    assert.equal(server.readyState, 'open');
    assert.equal(ws.readyState, WebSocket.OPEN);
    const echoed = next<unknown>((r) => client.once('message', r), 'a message after the heartbeats');
    server.send('alive');
    assert.equal(await echoed, 'alive');

    // sockeye's pause() stops reading: the pongs go unread, engine.io gives up after pingInterval + pingTimeout.
    // (The client still gets the pings, so it is the server that times out.)
    const serverReason = next<string>((r) => server.once('close', (reason: string) => r(reason)), 'the server close');
    const clientReason = next<string>((r) => client.once('close', (reason) => r(reason)), 'the client close');
    const pingsBefore = clientPings;
    const started = Date.now();
    ws.pause();
    assert.equal(ws.isPaused, true);
    assert.equal(await serverReason, 'ping timeout');
    assert.ok(Date.now() - started >= 150, 'not before pingTimeout');
    assert.ok(clientPings > pingsBefore, 'the server kept writing pings while not reading');
    assert.equal(ws.readyState, WebSocket.CLOSING, 'the server started the closing handshake');
    // Reading again, the server finds the client's answering close frame and the connection ends.
    ws.resume();
    await sockeyeClosed(ws);
    assert.equal(await clientReason, 'transport close');
  });

  it('maxHttpBufferSize is enforced by sockeye as maxPayload: a larger message closes the connection', TEST, async () => {
    const f = await start({ maxHttpBufferSize: 64 * 1024 });
    assert.equal(f.engines[f.engines.length - 1].maxPayload, 64 * 1024);
    const { client, server, ws } = await f.connect('websocket');
    const got: unknown[] = [];
    server.on('message', (m: unknown) => got.push(m));
    const serverClose = next<unknown[]>((r) => server.once('close', (...args: unknown[]) => r(args)), 'the server close');
    const clientClose = next<[string, unknown]>((r) => client.once('close', (reason, description) => r([reason, description])), 'the client close');
    const wsClosed = sockeyeClosed(ws);
    client.send(Buffer.alloc(32 * 1024, 1));
    client.send(Buffer.alloc(100 * 1024, 2));
    const [reason, err] = await serverClose;
    assert.equal(reason, 'transport error');
    assert.ok(err instanceof Error);
    // engine.io wraps the engine's 'error' (ws's RangeError) in a TransportError.
    assert.equal(err.message, 'RangeError: Max payload size exceeded');
    assert.ok('type' in err);
    assert.equal(err.type, 'TransportError');
    await wsClosed;
    // On the wire: the client's ws got sockeye's close frame with 1009 (Message Too Big), as from ws.
    const [clientReason, description] = await clientClose;
    assert.equal(clientReason, 'transport close');
    assert.equal(closeCodeOf(description), 1009);
    assert.equal(got.length, 1, 'the message under the limit was delivered, the one over it was not');
    assert.equal(bytesOf(got[0]).length, 32 * 1024);
  });

  it('engine.io\'s headers hook adds to sockeye\'s 101 answer; a sockeye/ws client speaks engine.io\'s protocol', TEST, async () => {
    const f = await start();
    f.eio.on('headers', (headers: Record<string, string>, req: IncomingMessage) => {
      headers['X-Engine-Path'] = new URL(req.url ?? '/', 'http://x').pathname;
    });
    const connection = next<EioSocket>((r) => f.eio.once('connection', r), 'the connection');
    const ws = new WebSocket(`ws://127.0.0.1:${f.port}/engine.io/?EIO=4&transport=websocket`, { perMessageDeflate: false });
    try {
      const upgradeHeaders = next<IncomingMessage>((r) => ws.once('upgrade', r), 'the 101 answer');
      const first = next<string>((r) => ws.once('message', (d: Buffer, binary: boolean) => r(`${binary ? 'binary' : 'text'}:${d.toString()}`)), 'the open packet');
      const res = await upgradeHeaders;
      assert.equal(res.statusCode, 101);
      assert.equal(res.headers['x-engine-path'], '/engine.io/');
      const open = await first;
      assert.ok(open.startsWith('text:0{'), open);
      const handshake: unknown = JSON.parse(open.slice('text:0'.length));
      assert.ok(typeof handshake === 'object' && handshake !== null && 'sid' in handshake && 'upgrades' in handshake);
      const socket = await connection;
      assert.equal(handshake.sid, idOf(socket));
      assert.deepEqual(handshake.upgrades, []);
      // A message packet ("4" + data) each way.
      const atServer = next<unknown>((r) => socket.once('message', r), 'the message at the server');
      ws.send('4from sockeye');
      assert.equal(await atServer, 'from sockeye');
      const atClient = next<string>((r) => ws.once('message', (d: Buffer) => r(d.toString())), 'the message at the client');
      socket.send('to sockeye');
      assert.equal(await atClient, '4to sockeye');
      assert.ok(sockeyeSocketOf(socket) !== ws && f.upgrades.includes(sockeyeSocketOf(socket)));
    } finally {
      ws.terminate();
    }
  });
});
