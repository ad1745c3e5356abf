/**
 * Interop with the `ws` npm package (a devDependency, so always present), both
 * ways: a ws client against our server, our client against a ws
 * WebSocketServer. Text, binary, a large binary (4 MiB, checked by SHA-256),
 * ping/pong with payloads (RFC 6455 section 5.5.2-5.5.3: a pong echoes the
 * ping's application data), and close codes and reasons in both directions
 * (section 5.5.1: the receiver of a close answers with a close).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer as WsServer } from 'ws';
import { connect, type ClientSession, type CloseInfo, type Message, type ServerSession } from '../../src/index.js';
import { pseudoRandomBytes, sha256, startServer, withTimeout, type TestServer } from '../helpers/ws-pair.js';

const MiB = 1024 * 1024;

/** Resolves with the next event `name` of a ws socket (bounded). */
function once<T extends unknown[]>(ws: WebSocket, name: string, ms = 10_000): Promise<T> {
  return withTimeout(
    new Promise<T>((resolve) => ws.once(name, (...args: unknown[]) => resolve(args as T))),
    ms,
    `ws event '${name}'`,
  );
}

describe('ws client -> sockeye server', () => {
  let t: TestServer;
  const pings: string[] = [];
  const pongs: string[] = [];
  const closes: CloseInfo[] = [];
  const clients: WebSocket[] = [];

  before(async () => {
    t = await startServer({
      handler: {
        onMessage(session: ServerSession, m: Message) {
          if (!m.binary && m.text === 'ping-me') session.ping('hello-ping');
          else if (!m.binary && m.text === 'close-me') session.close(4002, 'bye from sockeye');
          else session.send(m.data, { binary: m.binary });
        },
        onPing(_s, data) {
          pings.push(data.toString());
        },
        onPong(_s, data) {
          pongs.push(data.toString());
        },
        onClose(_s, info) {
          closes.push(info);
        },
      },
    });
  });
  after(async () => {
    for (const c of clients) c.terminate();
    await t.server.close();
  });

  async function open(): Promise<WebSocket> {
    const ws = new WebSocket(t.url());
    clients.push(ws);
    await once(ws, 'open');
    return ws;
  }

  it('echoes text, binary and a 4 MiB binary message', async () => {
    const ws = await open();
    ws.send('héllo wörld');
    const [text, textIsBinary] = await once<[Buffer, boolean]>(ws, 'message');
    assert.equal(textIsBinary, false);
    assert.equal(text.toString('utf8'), 'héllo wörld');

    const bin = pseudoRandomBytes(1000, 3);
    ws.send(bin);
    const [b, bIsBinary] = await once<[Buffer, boolean]>(ws, 'message');
    assert.equal(bIsBinary, true);
    assert.deepEqual(Buffer.from(b), bin);

    const big = pseudoRandomBytes(4 * MiB, 4);
    ws.send(big);
    const [echoed, bigIsBinary] = await once<[Buffer, boolean]>(ws, 'message');
    assert.equal(bigIsBinary, true);
    assert.equal(echoed.length, big.length);
    assert.equal(sha256(echoed), sha256(big));
    ws.terminate();
  });

  it('answers a ws ping with a pong carrying the same data, and its own ping gets ws\'s pong', async () => {
    const ws = await open();
    const pong = once<[Buffer]>(ws, 'pong');
    ws.ping('abc');
    const [data] = await pong;
    assert.equal(data.toString(), 'abc');
    assert.ok(pings.includes('abc'), 'the server handler saw the ping');

    const ping = once<[Buffer]>(ws, 'ping');
    ws.send('ping-me');
    const [pingData] = await ping;
    assert.equal(pingData.toString(), 'hello-ping');
    // ws answers automatically; the server's onPong sees the same data.
    await withTimeout(
      (async () => {
        while (!pongs.includes('hello-ping')) await new Promise((r) => setTimeout(r, 5));
      })(),
      5000,
      'the pong at the server',
    );
    ws.terminate();
  });

  it('a close from ws (4001 with a reason) reaches the server, which answers it', async () => {
    const ws = await open();
    const before = closes.length;
    const closed = once<[number, Buffer]>(ws, 'close');
    ws.close(4001, 'bye from ws');
    const [code] = await closed;
    // Section 5.5.1: the answering endpoint typically echoes the status code it received.
    assert.equal(code, 4001);
    await withTimeout(
      (async () => {
        while (closes.length === before) await new Promise((r) => setTimeout(r, 5));
      })(),
      5000,
      'the server-side close',
    );
    const info = closes[closes.length - 1];
    assert.equal(info.code, 4001);
    assert.equal(info.reason, 'bye from ws');
    assert.equal(info.wasClean, true);
  });

  it('a close from the server (4002 with a reason) reaches ws', async () => {
    const ws = await open();
    const before = closes.length;
    const closed = once<[number, Buffer]>(ws, 'close');
    ws.send('close-me');
    const [code, reason] = await closed;
    assert.equal(code, 4002);
    assert.equal(reason.toString('utf8'), 'bye from sockeye');
    await withTimeout(
      (async () => {
        while (closes.length === before) await new Promise((r) => setTimeout(r, 5));
      })(),
      5000,
      'the server-side close',
    );
    const info = closes[closes.length - 1];
    assert.equal(info.code, 4002);
    assert.equal(info.wasClean, true);
  });
});

describe('sockeye client -> ws server', () => {
  let wss: WsServer;
  let url: string;
  const serverCloses: Array<{ code: number; reason: string }> = [];
  const serverPongs: string[] = [];
  const clients: ClientSession[] = [];

  before(async () => {
    wss = new WsServer({ host: '127.0.0.1', port: 0, handleProtocols: (protocols) => (protocols.has('chat') ? 'chat' : false) });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`;
    wss.on('connection', (ws) => {
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (!isBinary && data.toString() === 'ping-me') ws.ping('from-ws');
        else if (!isBinary && data.toString() === 'close-me') ws.close(4004, 'bye from ws server');
        else ws.send(data, { binary: isBinary });
      });
      ws.on('pong', (data: Buffer) => serverPongs.push(data.toString()));
      ws.on('close', (code: number, reason: Buffer) => serverCloses.push({ code, reason: reason.toString('utf8') }));
    });
  });
  after(async () => {
    for (const c of clients) c.terminate();
    for (const ws of wss.clients) ws.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  });

  async function open(handler: Parameters<typeof connect>[1] = {}): Promise<ClientSession> {
    const c = await connect(url, { keepalive: null, ...handler });
    clients.push(c);
    return c;
  }

  async function next(c: ClientSession): Promise<Message> {
    const r = await withTimeout(c.messages().next(), 10_000, 'a message');
    assert.equal(r.done, false);
    return r.value as Message;
  }

  it('echoes text, binary and a 4 MiB binary message', async () => {
    const c = await open();
    c.send('grüße, 世界');
    const t = await next(c);
    assert.equal(t.binary, false);
    assert.equal(t.text, 'grüße, 世界');

    const bin = pseudoRandomBytes(65536, 8);
    c.send(bin);
    const b = await next(c);
    assert.equal(b.binary, true);
    assert.deepEqual(b.data, bin);

    const big = pseudoRandomBytes(4 * MiB, 9);
    c.send(big);
    const m = await next(c);
    assert.equal(m.binary, true);
    assert.equal(sha256(m.data), sha256(big));
    c.terminate();
  });

  it('negotiates a subprotocol with ws', async () => {
    const c = await open({ protocol: ['nope', 'chat'] });
    assert.equal(c.protocol, 'chat');
    assert.equal(c.responseHeaders.get('sec-websocket-protocol')?.[0], 'chat');
    c.terminate();
  });

  it('pings ws and gets its pong; answers ws\'s ping with a pong', async () => {
    const pongs: string[] = [];
    const pings: string[] = [];
    let gotPong!: () => void;
    let gotPing!: () => void;
    const pongP = new Promise<void>((r) => (gotPong = r));
    const pingP = new Promise<void>((r) => (gotPing = r));
    const c = await open({
      handler: {
        onPong(_s, data) {
          pongs.push(data.toString());
          gotPong();
        },
        onPing(_s, data) {
          pings.push(data.toString());
          gotPing();
        },
      },
    });
    assert.notEqual(c.ping('abc'), 'dropped');
    await withTimeout(pongP, 5000, 'the pong from ws');
    assert.deepEqual(pongs, ['abc']);

    c.send('ping-me');
    await withTimeout(pingP, 5000, 'the ping from ws');
    assert.deepEqual(pings, ['from-ws']);
    // Our automatic pong reaches ws with the ping's data.
    await withTimeout(
      (async () => {
        while (!serverPongs.includes('from-ws')) await new Promise((r) => setTimeout(r, 5));
      })(),
      5000,
      'the pong at ws',
    );
    c.terminate();
  });

  it('a close from our client (4003 with a reason) reaches ws, which answers it', async () => {
    const c = await open();
    const before = serverCloses.length;
    c.close(4003, 'bye from sockeye client');
    const info = await withTimeout(c.closed, 5000, 'the close');
    assert.equal(info.code, 4003);
    assert.equal(info.wasClean, true);
    await withTimeout(
      (async () => {
        while (serverCloses.length === before) await new Promise((r) => setTimeout(r, 5));
      })(),
      5000,
      'the close at ws',
    );
    assert.deepEqual(serverCloses[serverCloses.length - 1], { code: 4003, reason: 'bye from sockeye client' });
  });

  it('a close from ws (4004 with a reason) reaches our client', async () => {
    const c = await open();
    c.send('close-me');
    const info = await withTimeout(c.closed, 5000, 'the close');
    assert.equal(info.code, 4004);
    assert.equal(info.reason, 'bye from ws server');
    assert.equal(info.wasClean, true);
    assert.equal(info.error, undefined);
    // The message iterator ends without error after a clean close.
    assert.equal((await c.messages().next()).done, true);
  });
});
