/**
 * socket.io 4 on sockeye/ws: socket.io's Server takes sockeye's
 * WebSocketServer as its `wsEngine`, and socket.io-client (whose Node
 * transport is the ws package's client) talks to it over real TCP. Every
 * connection is checked to run on a sockeye WebSocket handed out by the
 * engine's handleUpgrade, both with the websocket transport alone and with
 * polling upgraded to websocket. Covered: connect, rooms, broadcast,
 * acknowledgements both ways, binary payloads (up to 1 MiB, byte for byte),
 * the disconnect reasons of each side, io.close(), permessage-deflate
 * (checked on the wire by the TCP byte counts), and a client whose websocket
 * transport runs on sockeye/ws's own client.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { Socket as NetSocket, type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { Server as IoServer, type ServerOptions, type Socket as ServerSocket } from 'socket.io';
import { io as ioClient, type ManagerOptions, type Socket as ClientSocket, type SocketOptions } from 'socket.io-client';
import { NodeXHR } from 'engine.io-client';
import { WebSocket, WebSocketServer, type WebSocketServerOptions } from '../../../src/compat/ws/index.js';
import { pseudoRandomBytes, waitUntil, withTimeout } from '../../helpers/ws-pair.js';
import { bytesOf, next, sockeyeClients, sockeyeSocketOf, SockeyeTransport, WAIT } from '../../helpers/engine-io.js';

const TEST = { timeout: 20_000 };

interface Upgrade {
  ws: WebSocket;
  tcp: Duplex;
}

type Mode = 'websocket' | 'polling upgraded to websocket';

interface Fixture {
  io: IoServer;
  http: HttpServer;
  url: string;
  /** Every sockeye WebSocket the engine's handleUpgrade handed to socket.io, with its TCP socket. */
  upgrades: Upgrade[];
  /** Engines socket.io made (the options it gave them), and how many were closed. */
  engines: WebSocketServerOptions[];
  enginesClosed: () => number;
  /** A client connected in `mode`, and its socket on the server, both on the websocket transport. */
  connect(mode: Mode, clientOptions?: Partial<ManagerOptions & SocketOptions>): Promise<{ client: ClientSocket; server: ServerSocket; ws: WebSocket }>;
  close(): Promise<void>;
}

const fixtures: Fixture[] = [];
afterEach(async () => {
  for (const f of fixtures.splice(0)) await f.close();
});

async function start(options: Partial<ServerOptions> = {}): Promise<Fixture> {
  const upgrades: Upgrade[] = [];
  const engines: WebSocketServerOptions[] = [];
  let closes = 0;
  // The engine socket.io constructs: sockeye's WebSocketServer, recording what goes through it.
  class RecordingEngine extends WebSocketServer {
    constructor(opts: WebSocketServerOptions) {
      super(opts);
      engines.push(opts);
    }
    override handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, cb: (ws: WebSocket, req: IncomingMessage) => void): void {
      super.handleUpgrade(req, socket, head, (ws, r) => {
        upgrades.push({ ws, tcp: socket });
        cb(ws, r);
      });
    }
    override close(cb?: (err?: Error) => void): void {
      closes++;
      super.close(cb);
    }
  }
  const http = createHttpServer();
  const io = new IoServer(http, { wsEngine: RecordingEngine, maxHttpBufferSize: 8 * 1024 * 1024, ...options });
  const serverSockets = new Map<string, ServerSocket>();
  io.on('connection', (s) => serverSockets.set(s.id, s));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const clients: ClientSocket[] = [];
  let shut = false;

  const f: Fixture = {
    io,
    http,
    url,
    upgrades,
    engines,
    enginesClosed: () => closes,
    async connect(mode, clientOptions = {}) {
      const client = ioClient(url, {
        forceNew: true,
        reconnection: false,
        ...(mode === 'websocket' ? { transports: ['websocket'] } : {}),
        ...clientOptions,
      });
      clients.push(client);
      // The engine exists as soon as the manager opens (autoConnect): no event can be missed.
      const engine = client.io.engine;
      const upgraded = mode === 'websocket' ? null : next<string>((r) => engine.once('upgrade', (t) => r(t.name)), 'the client upgrade');
      await next<void>((r) => client.once('connect', () => r()), 'connect');
      const id = client.id;
      assert.ok(id !== undefined);
      await waitUntil(() => serverSockets.has(id), WAIT, 'the server socket');
      const server = serverSockets.get(id)!;
      if (upgraded) {
        assert.equal(await upgraded, 'websocket');
        await waitUntil(() => server.conn.transport.name === 'websocket', WAIT, 'the server to upgrade');
      }
      assert.equal(engine.transport.name, 'websocket');
      const ws = sockeyeSocketOf(server.conn);
      assert.ok(upgrades.some((u) => u.ws === ws), 'the socket came from the engine\'s handleUpgrade');
      return { client, server, ws };
    },
    async close() {
      if (shut) return;
      shut = true;
      for (const c of clients) c.disconnect();
      await withTimeout(io.close(), WAIT, 'io.close()');
      http.closeAllConnections();
    },
  };
  fixtures.push(f);
  return f;
}

/** Every event a client gets, in order, as "name:args". */
function record(client: ClientSocket): string[] {
  const log: string[] = [];
  client.onAny((event: string, ...args: unknown[]) => log.push(`${event}:${JSON.stringify(args)}`));
  return log;
}

function closed(ws: WebSocket): Promise<number> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve(-1);
  return next<number>((r) => ws.once('close', (code: number) => r(code)), 'the sockeye socket to close');
}

for (const mode of ['websocket', 'polling upgraded to websocket'] as const) {
  describe(`socket.io over sockeye/ws: ${mode}`, () => {
    it('connects through the engine: one handleUpgrade per client, the socket is sockeye\'s, messages flow', TEST, async () => {
      const f = await start();
      assert.equal(f.engines.length >= 1, true, 'socket.io constructed the engine');
      const last = f.engines[f.engines.length - 1];
      assert.equal(last.noServer, true);
      assert.equal(last.clientTracking, false);
      assert.equal(last.maxPayload, 8 * 1024 * 1024, 'maxHttpBufferSize reaches the engine as maxPayload');
      const a = await f.connect(mode);
      const b = await f.connect(mode);
      assert.equal(f.upgrades.length, 2, 'exactly one WebSocket upgrade per client');
      assert.notEqual(a.ws, b.ws);
      assert.equal(a.ws.readyState, WebSocket.OPEN);
      assert.equal(a.server.handshake.query.EIO, '4');
      assert.equal(a.server.handshake.address, '127.0.0.1');
      assert.equal(a.server.conn.upgraded, mode !== 'websocket');

      const got = next<unknown[]>((r) => a.server.once('hello', (...args: unknown[]) => r(args)), 'hello on the server');
      a.client.emit('hello', 'wörld', 42, { nested: [true, null] });
      assert.deepEqual(await got, ['wörld', 42, { nested: [true, null] }]);
      const back = next<unknown[]>((r) => b.client.once('hi', (...args: unknown[]) => r(args)), 'hi on the client');
      b.server.emit('hi', 'from the server', [1, 2, 3]);
      assert.deepEqual(await back, ['from the server', [1, 2, 3]]);
    });

    it('rooms: an emit to a room reaches its members only, socket.to() skips the sender, leave() takes effect', TEST, async () => {
      const f = await start();
      const a = await f.connect(mode);
      const b = await f.connect(mode);
      const c = await f.connect(mode);
      const logs = [a, b, c].map((x) => record(x.client));
      await a.server.join('blue');
      await b.server.join('blue');
      await c.server.join('green');
      const inBlue = (await f.io.in('blue').fetchSockets()).map((s) => s.id).sort();
      assert.deepEqual(inBlue, [a.server.id, b.server.id].sort());

      f.io.to('blue').emit('news', 'blue only');
      f.io.to('green').emit('news', 'green only');
      a.server.to('blue').emit('news', 'from a');
      await a.server.leave('blue');
      f.io.to('blue').emit('news', 'after a left');
      // Events to one client arrive in order: the marker closes each client's log.
      f.io.emit('marker');
      await waitUntil(() => logs.every((l) => l.includes('marker:[]')), WAIT, 'the markers');
      assert.deepEqual(logs[0], ['news:["blue only"]', 'marker:[]']);
      assert.deepEqual(logs[1], ['news:["blue only"]', 'news:["from a"]', 'news:["after a left"]', 'marker:[]']);
      assert.deepEqual(logs[2], ['news:["green only"]', 'marker:[]']);
    });

    it('broadcast: io.emit() reaches every client, socket.broadcast every one but the sender', TEST, async () => {
      const f = await start();
      const peers = [await f.connect(mode), await f.connect(mode), await f.connect(mode)];
      const logs = peers.map((p) => record(p.client));
      f.io.emit('all', { n: 1, text: 'to everyone' });
      peers[1].server.broadcast.emit('others', 'not to the sender');
      f.io.emit('marker');
      await waitUntil(() => logs.every((l) => l.includes('marker:[]')), WAIT, 'the markers');
      assert.deepEqual(logs[0], ['all:[{"n":1,"text":"to everyone"}]', 'others:["not to the sender"]', 'marker:[]']);
      assert.deepEqual(logs[1], ['all:[{"n":1,"text":"to everyone"}]', 'marker:[]']);
      assert.deepEqual(logs[2], ['all:[{"n":1,"text":"to everyone"}]', 'others:["not to the sender"]', 'marker:[]']);
      assert.equal(f.io.engine.clientsCount, 3);
    });

    it('acknowledgements both ways, many at once, each matched to its emit', TEST, async () => {
      const f = await start();
      const { client, server } = await f.connect(mode);
      server.on('sum', (x: unknown, y: unknown, ack: unknown) => {
        assert.equal(typeof ack, 'function');
        if (typeof ack === 'function') ack(Number(x) + Number(y), `${String(x)}+${String(y)}`);
      });
      // The client's emit with an ack callback.
      const one = await next<unknown[]>((r) => client.emit('sum', 2, 3, (...args: unknown[]) => r(args)), 'the ack of sum');
      assert.deepEqual(one, [5, '2+3']);
      // Fifty at once: each ack answers its own emit.
      const many = await withTimeout(
        Promise.all(Array.from({ length: 50 }, (_, i) => client.timeout(WAIT).emitWithAck('sum', i, 1000))),
        WAIT,
        'fifty acks',
      );
      assert.deepEqual(many, Array.from({ length: 50 }, (_, i) => i + 1000));

      // The server's emit with an ack: the client answers.
      client.on('question', (q: unknown, ack: unknown) => {
        if (typeof ack === 'function') ack({ answer: `${String(q)}? 42` });
      });
      const answer: unknown = await server.timeout(WAIT).emitWithAck('question', 'life');
      assert.deepEqual(answer, { answer: 'life? 42' });
      const viaCallback = await next<unknown[]>((r) => server.emit('question', 'again', (...args: unknown[]) => r(args)), 'the callback ack');
      assert.deepEqual(viaCallback, [{ answer: 'again? 42' }]);
    });

    it('binary payloads both ways, byte for byte: Buffer, Uint8Array, 1 MiB, nested in objects, in acks', TEST, async () => {
      const f = await start();
      const { client, server } = await f.connect(mode);
      const big = pseudoRandomBytes(1024 * 1024, 7);
      const every = Uint8Array.from({ length: 256 }, (_, i) => i);
      const other = pseudoRandomBytes(300_000, 99);

      // Client to server, with the server's ack carrying binary back (the upload reversed).
      const received = next<unknown[]>(
        (r) =>
          server.once('upload', (...args: unknown[]) => {
            const ack = args.pop();
            if (typeof ack === 'function') ack(Buffer.from(bytesOf(args[0])).reverse());
            r(args);
          }),
        'the upload',
      );
      const acked: Promise<unknown> = client.timeout(WAIT).emitWithAck('upload', big, every, { label: 'parts', parts: [every.subarray(10, 20), Buffer.from('tail')] });
      const [gotBig, gotEvery, gotNested] = await received;
      assert.ok(bytesOf(gotBig).equals(big), 'the 1 MiB Buffer arrived byte for byte');
      assert.ok(bytesOf(gotEvery).equals(Buffer.from(every)), 'the Uint8Array arrived byte for byte');
      assert.ok(typeof gotNested === 'object' && gotNested !== null && 'label' in gotNested && 'parts' in gotNested);
      assert.equal(gotNested.label, 'parts');
      assert.ok(Array.isArray(gotNested.parts));
      assert.equal(gotNested.parts.length, 2);
      assert.ok(bytesOf(gotNested.parts[0]).equals(Buffer.from(every.subarray(10, 20))));
      assert.equal(bytesOf(gotNested.parts[1]).toString(), 'tail');
      const reversed = bytesOf(await withTimeout(acked, WAIT, 'the binary ack'));
      assert.ok(reversed.equals(Buffer.from(big).reverse()), 'the 1 MiB ack arrived byte for byte');

      // Server to client.
      const down = next<unknown[]>((r) => client.once('download', (...args: unknown[]) => r(args)), 'the download');
      server.emit('download', other, new Uint8Array([0, 255, 1, 254]), 'text alongside');
      const [gotOther, gotSmall, text] = await down;
      assert.ok(bytesOf(gotOther).equals(other), 'the server\'s Buffer arrived byte for byte');
      assert.deepEqual([...bytesOf(gotSmall)], [0, 255, 1, 254]);
      assert.equal(text, 'text alongside');
    });

    it('client disconnect(): the server sees "client namespace disconnect", the sockeye socket closes', TEST, async () => {
      const f = await start();
      const { client, server, ws } = await f.connect(mode);
      const other = await f.connect(mode);
      const serverReason = next<string>((r) => server.once('disconnect', r), 'the server disconnect');
      const clientReason = next<string>((r) => client.once('disconnect', r), 'the client disconnect');
      const wsClosed = closed(ws);
      client.disconnect();
      assert.equal(await serverReason, 'client namespace disconnect');
      assert.equal(await clientReason, 'io client disconnect');
      await wsClosed;
      assert.equal(ws.readyState, WebSocket.CLOSED);
      // The other client is untouched.
      assert.equal(other.ws.readyState, WebSocket.OPEN);
      other.server.on('ping?', (ack: unknown) => {
        if (typeof ack === 'function') ack('pong!');
      });
      assert.equal(await other.client.timeout(WAIT).emitWithAck('ping?'), 'pong!');
      assert.equal(other.client.connected, true);
      await waitUntil(() => f.io.engine.clientsCount === 1, WAIT, 'one engine client left');
    });

    it('server disconnect(true): the client sees "io server disconnect", the sockeye socket closes', TEST, async () => {
      const f = await start();
      const { client, server, ws } = await f.connect(mode);
      const serverReason = next<string>((r) => server.once('disconnect', r), 'the server disconnect');
      const clientReason = next<string>((r) => client.once('disconnect', r), 'the client disconnect');
      const wsClosed = closed(ws);
      server.disconnect(true);
      assert.equal(await clientReason, 'io server disconnect');
      assert.equal(await serverReason, 'server namespace disconnect');
      await wsClosed;
      assert.equal(client.connected, false);
      await waitUntil(() => f.io.engine.clientsCount === 0, WAIT, 'no engine client left');
    });

    it('io.close(): every client gets a "transport close" disconnect, the sockets and the engine are closed', TEST, async () => {
      const f = await start();
      const peers = [await f.connect(mode), await f.connect(mode)];
      const clientReasons = peers.map((p) => next<string>((r) => p.client.once('disconnect', r), 'a client disconnect'));
      const serverReasons = peers.map((p) => next<string>((r) => p.server.once('disconnect', r), 'a server disconnect'));
      const wsClosed = peers.map((p) => closed(p.ws));
      const enginesClosedBefore = f.enginesClosed();
      await withTimeout(f.io.close(), WAIT, 'io.close()');
      assert.deepEqual(await Promise.all(clientReasons), ['transport close', 'transport close']);
      assert.deepEqual(await Promise.all(serverReasons), ['server shutting down', 'server shutting down']);
      await Promise.all(wsClosed);
      assert.ok(peers.every((p) => p.ws.readyState === WebSocket.CLOSED));
      assert.ok(f.enginesClosed() > enginesClosedBefore, 'engine.io closed its wsEngine');
      await waitUntil(() => !f.http.listening, WAIT, 'the HTTP server to stop listening');
    });
  });
}

describe('socket.io over sockeye/ws: permessage-deflate', () => {
  it('with perMessageDeflate { threshold: 0 }, large compressible payloads arrive intact and compressed on the wire', TEST, async () => {
    const f = await start({ perMessageDeflate: { threshold: 0 } });
    assert.deepEqual(f.engines[f.engines.length - 1].perMessageDeflate, { threshold: 0 });
    const { client, server, ws } = await f.connect('websocket');
    assert.equal(ws.extensions, 'permessage-deflate');
    const upgrade = f.upgrades.find((u) => u.ws === ws);
    assert.ok(upgrade && upgrade.tcp instanceof NetSocket);
    const tcp = upgrade.tcp;

    const rows = Array.from({ length: 20_000 }, (_, i) => ({ id: i, name: `row number ${i}`, tags: ['alpha', 'beta', 'gamma'], ok: i % 3 === 0 }));
    const text = JSON.stringify(rows);
    assert.ok(text.length > 1_000_000);
    const blob = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < blob.length; i++) blob[i] = (i % 251) & 0xff;

    // Client to server.
    const readBefore = tcp.bytesRead;
    const up = next<unknown[]>((r) => server.once('bulk', (...args: unknown[]) => r(args)), 'the bulk upload');
    client.emit('bulk', rows, blob);
    const [gotRows, gotBlob] = await up;
    assert.deepEqual(gotRows, rows);
    assert.ok(bytesOf(gotBlob).equals(blob), 'the compressible Buffer arrived byte for byte');
    const read = tcp.bytesRead - readBefore;
    assert.ok(read < (text.length + blob.length) / 10, `compressed upload: ${read} bytes on the wire for ${text.length + blob.length}`);

    // Server to client.
    const writtenBefore = tcp.bytesWritten;
    const down = next<unknown[]>((r) => client.once('bulk', (...args: unknown[]) => r(args)), 'the bulk download');
    server.emit('bulk', text, blob);
    const [gotText, gotBlob2] = await down;
    assert.equal(gotText, text);
    assert.ok(bytesOf(gotBlob2).equals(blob));
    const written = tcp.bytesWritten - writtenBefore;
    assert.ok(written < (text.length + blob.length) / 10, `compressed download: ${written} bytes on the wire for ${text.length + blob.length}`);
  });
});

describe('socket.io over sockeye/ws: sockeye/ws on the client side too', () => {
  it('socket.io-client with sockeye/ws\'s client as its websocket transport: upgrade, acks, binary, disconnect', TEST, async () => {
    const f = await start({ perMessageDeflate: { threshold: 0 } });
    const before = sockeyeClients.length;
    const { client, server, ws } = await f.connect('polling upgraded to websocket', { transports: [NodeXHR, SockeyeTransport] });
    assert.equal(sockeyeClients.length, before + 1, 'the client\'s transport made one sockeye/ws client');
    const peer = sockeyeClients[sockeyeClients.length - 1];
    assert.equal(peer.readyState, WebSocket.OPEN);
    assert.equal(peer.extensions, 'permessage-deflate');
    assert.equal(ws.extensions, 'permessage-deflate');

    const payload = pseudoRandomBytes(256 * 1024, 5);
    server.on('echo', (data: unknown, text: unknown, ack: unknown) => {
      if (typeof ack === 'function') ack(bytesOf(data), `${String(text)}!`);
    });
    const [gotBytes, gotText] = await next<unknown[]>((r) => client.emit('echo', payload, 'ünïcödé', (...args: unknown[]) => r(args)), 'the echo ack');
    assert.ok(bytesOf(gotBytes).equals(payload));
    assert.equal(gotText, 'ünïcödé!');
    client.on('square', (n: unknown, ack: unknown) => {
      if (typeof ack === 'function') ack(Number(n) * Number(n));
    });
    assert.equal(await server.timeout(WAIT).emitWithAck('square', 12), 144);

    const serverReason = next<string>((r) => server.once('disconnect', r), 'the server disconnect');
    const peerClosed = closed(peer);
    client.disconnect();
    assert.equal(await serverReason, 'client namespace disconnect');
    await peerClosed;
    await closed(ws);
  });
});
