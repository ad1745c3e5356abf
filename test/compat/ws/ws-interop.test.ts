/**
 * sockeye/ws against the real `ws` package, both ways: a ws client against a
 * sockeye/ws WebSocketServer, and a sockeye/ws client against a ws
 * WebSocketServer; each over ws:// and wss:// (both servers attached to a
 * node:http or node:https server), with and without permessage-deflate. In
 * every combination: the subprotocol and the extension agreed on both ends,
 * text and binary echo, a 4 MiB random message, 2,000 small messages in
 * order, pings and pongs with data both ways, send callbacks (once each,
 * without error), and a close code and reason seen by the other side.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { WebSocket as RealWebSocket, WebSocketServer as RealServer } from 'ws';
import { WebSocket, WebSocketServer } from '../../../src/compat/ws/index.js';
import { testCert } from '../../helpers/certs.js';
import { pseudoRandomBytes, utf8Text, waitUntil, withTimeout } from '../../helpers/ws-pair.js';

const MiB = 1024 * 1024;
/** What the clients offer; the servers pick the second one, so the pick is seen to be the server's. */
const OFFERED = ['chat.v1', 'chat.v2'];
const PICKED = 'chat.v2';

/** What both WebSocket classes (ws's and sockeye/ws's) have, and all the tests use. */
interface Sock extends EventEmitter {
  readonly protocol: string;
  readonly extensions: string;
  readonly readyState: number;
  send(data: string | Buffer, options: { binary?: boolean }, cb?: (err?: Error) => void): void;
  ping(data?: string | Buffer): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
}

type Kind = 'ws' | 'sockeye/ws';

interface Received {
  data: Buffer;
  binary: boolean;
}

/** Every message a socket receives, in order. */
function inbox(sock: Sock): Received[] {
  const items: Received[] = [];
  sock.on('message', (data: unknown, binary: unknown) => {
    assert.ok(Buffer.isBuffer(data), 'a message arrives as a Buffer (binaryType nodebuffer)');
    assert.equal(typeof binary, 'boolean');
    items.push({ data, binary: binary === true });
  });
  return items;
}

/** The arguments of the next `name` event of `emitter` (bounded). */
function next(emitter: EventEmitter, name: string, ms = 10_000): Promise<unknown[]> {
  return withTimeout(new Promise<unknown[]>((resolve) => emitter.once(name, (...args: unknown[]) => resolve(args))), ms, `event '${name}'`);
}

function asBuffer(value: unknown): Buffer {
  assert.ok(Buffer.isBuffer(value), `a Buffer, not ${typeof value}`);
  return value;
}

interface Pair {
  client: Sock;
  server: Sock;
  /** Messages each end received. */
  atClient: Received[];
  atServer: Received[];
  /** The upgrade request as the server saw it. */
  request: IncomingMessage;
}

interface Endpoint {
  url: string;
  /** Resolves with the next connection the server accepts. */
  accepted(): Promise<{ socket: Sock; request: IncomingMessage }>;
  /** Every socket made (both ends), for the final clean-up. */
  sockets: Sock[];
  close(): Promise<void>;
}

function pickProtocol(protocols: Set<string>): string | false {
  return protocols.has(PICKED) ? PICKED : false;
}

async function startEndpoint(kind: Kind, secure: boolean, deflate: boolean): Promise<Endpoint> {
  const cert = secure ? testCert() : null;
  const http: HttpServer = cert ? createHttpsServer({ key: cert.key, cert: cert.cert }) : createHttpServer();
  const options = { server: http, perMessageDeflate: deflate, handleProtocols: pickProtocol };
  const wss: EventEmitter & { close(cb: (err?: Error) => void): void } = kind === 'ws' ? new RealServer(options) : new WebSocketServer(options);
  const sockets: Sock[] = [];
  const waiting: Array<(c: { socket: Sock; request: IncomingMessage }) => void> = [];
  const ready: Array<{ socket: Sock; request: IncomingMessage }> = [];
  wss.on('connection', (socket: Sock, request: IncomingMessage) => {
    sockets.push(socket);
    socket.on('error', () => {});
    const w = waiting.shift();
    if (w) w({ socket, request });
    else ready.push({ socket, request });
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (http.address() as AddressInfo).port;
  return {
    url: `${secure ? 'wss' : 'ws'}://127.0.0.1:${port}/chat`,
    sockets,
    accepted() {
      const r = ready.shift();
      if (r) return Promise.resolve(r);
      return withTimeout(new Promise((resolve) => waiting.push(resolve)), 10_000, 'the server to accept a connection');
    },
    async close() {
      for (const s of sockets) s.terminate();
      await withTimeout(new Promise<void>((resolve) => wss.close(() => resolve())), 5000, 'the WebSocket server to close');
      http.closeAllConnections();
      await withTimeout(new Promise<void>((resolve) => http.close(() => resolve())), 5000, 'the HTTP server to close');
    },
  };
}

function newClient(kind: Kind, url: string, secure: boolean, deflate: boolean): Sock {
  // The client trusts the test certificate (self-signed, its own CA) rather than turning verification off.
  const options = { perMessageDeflate: deflate, ...(secure ? { ca: testCert().ca } : {}) };
  return kind === 'ws' ? new RealWebSocket(url, OFFERED, options) : new WebSocket(url, OFFERED, options);
}

const combos: Array<{ serverKind: Kind; secure: boolean; deflate: boolean }> = [];
for (const serverKind of ['sockeye/ws', 'ws'] as const) {
  for (const secure of [false, true]) for (const deflate of [false, true]) combos.push({ serverKind, secure, deflate });
}

for (const { serverKind, secure, deflate } of combos) {
  const clientKind: Kind = serverKind === 'ws' ? 'sockeye/ws' : 'ws';
  const title = `${clientKind} client -> ${serverKind} server, ${secure ? 'wss' : 'ws'}, ${deflate ? 'permessage-deflate' : 'no compression'}`;

  describe(title, { timeout: 60_000 }, () => {
    let endpoint: Endpoint;
    before(async () => {
      endpoint = await startEndpoint(serverKind, secure, deflate);
    });
    after(async () => {
      await endpoint.close();
    });

    /** A connected client and the server's socket for it; with `echo`, the server sends back every message as it came. */
    async function pair(echo = true): Promise<Pair> {
      const client = newClient(clientKind, endpoint.url, secure, deflate);
      endpoint.sockets.push(client);
      const atClient = inbox(client);
      const opened = withTimeout(
        new Promise<void>((resolve, reject) => {
          client.once('open', () => resolve());
          client.once('error', reject);
        }),
        10_000,
        'the client to open',
      );
      const [{ socket: server, request }] = await Promise.all([endpoint.accepted(), opened]);
      const atServer = inbox(server);
      if (echo) server.on('message', (data: Buffer, binary: boolean) => server.send(data, { binary }));
      return { client, server, atClient, atServer, request };
    }

    it(`agrees on the subprotocol ('${PICKED}') and on ${deflate ? 'permessage-deflate' : 'no extension'}, on both ends`, async () => {
      const { client, server, request } = await pair();
      assert.equal(client.protocol, PICKED);
      assert.equal(server.protocol, PICKED);
      assert.equal(request.headers['sec-websocket-protocol'], OFFERED.join(','));
      const expected = deflate ? 'permessage-deflate' : '';
      assert.equal(client.extensions, expected);
      assert.equal(server.extensions, expected);
      assert.equal((request.socket as Partial<TLSSocket>).encrypted === true, secure, 'the connection is TLS exactly for wss');
      client.close(1000);
      await next(client, 'close');
    });

    it('echoes text and binary messages', async () => {
      const { client, atClient, atServer } = await pair();
      const text = 'héllo wörld ✓ 😀';
      const longText = utf8Text(20_000, 7);
      const binary = pseudoRandomBytes(3000, 11);
      client.send(text, {});
      client.send(binary, {});
      client.send(longText, {});
      client.send(Buffer.alloc(0), { binary: true });
      await waitUntil(() => atClient.length === 4, 10_000, 'four echoes');
      for (const received of [atServer, atClient]) {
        assert.deepEqual(received.map((m) => m.binary), [false, true, false, true]);
        assert.equal(received[0].data.toString('utf8'), text);
        assert.ok(received[1].data.equals(binary), 'the binary message is intact');
        assert.equal(received[2].data.toString('utf8'), longText);
        assert.equal(received[3].data.length, 0);
      }
      client.close(1000);
      await next(client, 'close');
    });

    it('carries a 4 MiB random binary message both ways', async () => {
      const { client, atClient, atServer } = await pair();
      const big = randomBytes(4 * MiB);
      client.send(big, {});
      await waitUntil(() => atClient.length === 1, 20_000, 'the 4 MiB echo');
      assert.equal(atServer.length, 1);
      for (const m of [atServer[0], atClient[0]]) {
        assert.equal(m.binary, true);
        assert.equal(m.data.length, big.length);
        assert.ok(m.data.equals(big), 'the 4 MiB message is intact');
      }
      client.close(1000);
      await next(client, 'close');
    });

    it('delivers 2,000 small messages in order, both ways', async () => {
      const { client, atClient, atServer } = await pair();
      const expected = Array.from({ length: 2000 }, (_, i) => `message ${i}`);
      for (const m of expected) client.send(m, {});
      await waitUntil(() => atClient.length === expected.length, 20_000, '2,000 echoes');
      assert.deepEqual(atServer.map((m) => m.data.toString()), expected);
      assert.deepEqual(atClient.map((m) => m.data.toString()), expected);
      assert.ok(atClient.every((m) => !m.binary));
      client.close(1000);
      await next(client, 'close');
    });

    it('pings and pongs carry their data, both ways', async () => {
      const { client, server } = await pair();
      const serverPing = next(server, 'ping');
      const clientPong = next(client, 'pong');
      client.ping('from the client');
      assert.equal(asBuffer((await serverPing)[0]).toString(), 'from the client');
      assert.equal(asBuffer((await clientPong)[0]).toString(), 'from the client');

      const data = Buffer.from([0, 1, 2, 0xfe, 0xff]);
      const clientPing = next(client, 'ping');
      const serverPong = next(server, 'pong');
      server.ping(data);
      assert.deepEqual(asBuffer((await clientPing)[0]), data);
      assert.deepEqual(asBuffer((await serverPong)[0]), data);
      client.close(1000);
      await next(client, 'close');
    });

    it('calls each send callback once, without an error, on both ends', async () => {
      const { client, server, atClient, atServer } = await pair(false);
      const N = 100;
      const payload = (i: number): string | Buffer => (i === N - 1 ? pseudoRandomBytes(MiB, i) : i % 2 === 0 ? `text ${i}` : pseudoRandomBytes(100 + i, i));
      const calls = { client: new Array<number>(N).fill(0), server: new Array<number>(N).fill(0) };
      const errors: unknown[] = [];
      for (const [name, sock] of [['client', client], ['server', server]] as const) {
        for (let i = 0; i < N; i++) {
          sock.send(payload(i), {}, (err) => {
            if (err) errors.push(err);
            calls[name][i]++;
          });
        }
      }
      await waitUntil(() => atServer.length === N && atClient.length === N, 20_000, 'every message at the other end');
      await waitUntil(() => calls.client.every((c) => c > 0) && calls.server.every((c) => c > 0), 10_000, 'every send callback');
      for (const received of [atServer, atClient]) {
        received.forEach((m, i) => {
          const p = payload(i);
          assert.ok(typeof p === 'string' ? m.data.toString() === p && !m.binary : m.data.equals(p) && m.binary, `message ${i}`);
        });
      }
      // A round trip more, then the close: no callback may come a second time.
      const pong = next(client, 'pong');
      client.ping('late');
      await pong;
      client.close(1000);
      await next(client, 'close');
      assert.deepEqual(errors, []);
      assert.deepEqual(calls.client, new Array<number>(N).fill(1));
      assert.deepEqual(calls.server, new Array<number>(N).fill(1));
    });

    it('a close code and reason reach the other side, from either end', async () => {
      const a = await pair();
      const atServer = next(a.server, 'close');
      const atClient = next(a.client, 'close');
      a.client.close(4001, 'client says bye ✓');
      const [serverCode, serverReason] = await atServer;
      assert.equal(serverCode, 4001);
      assert.equal(asBuffer(serverReason).toString('utf8'), 'client says bye ✓');
      // The answering end echoes the code (RFC 6455 section 5.5.1), both implementations do.
      assert.equal((await atClient)[0], 4001);

      const b = await pair();
      const bAtClient = next(b.client, 'close');
      const bAtServer = next(b.server, 'close');
      b.server.close(4002, 'server says bye');
      const [clientCode, clientReason] = await bAtClient;
      assert.equal(clientCode, 4002);
      assert.equal(asBuffer(clientReason).toString('utf8'), 'server says bye');
      assert.equal((await bAtServer)[0], 4002);
      for (const s of [a.client, a.server, b.client, b.server]) assert.equal(s.readyState, 3, 'CLOSED');
    });
  });
}
