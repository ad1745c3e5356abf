/**
 * sockeye/ws's WebSocket against ws 8's documented behaviour (doc/ws.md,
 * "Class: WebSocket"), on the client and on the server's socket: ready
 * states, send() and its data types, fragments and callbacks, the 'message'
 * event and binaryType, ping/pong and autoPong, close() and terminate(),
 * pause()/resume(), the EventTarget form, the client's opening handshake
 * (redirects, timeouts, bad answers from raw servers, IPC), and the
 * allowSynchronousEvents and maxPayload options.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Blob } from 'node:buffer';
import type { EventEmitter } from 'node:events';
import { createServer as createHttpServer, type ClientRequest, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import {
  WebSocket,
  WebSocketServer,
  type CloseEvent as WsCloseEvent,
  type ErrorEvent as WsErrorEvent,
  type Event as WsEvent,
  type MessageEvent as WsMessageEvent,
  type WebSocketClientOptions,
  type WebSocketServerOptions,
} from '../../../src/compat/ws/index.js';
import { newKey, serverFrame, startRawServer, switchingProtocols, withTimeout, waitUntil, delay, type RawRequest, type RawServer } from '../../helpers/ws-pair.js';
import { Op, concat } from '../../helpers/frames.js';

// ------------------------------------------------------------ resources

const clients: WebSocket[] = [];
const wsServers: WebSocketServer[] = [];
const httpServers: HttpServer[] = [];
const rawServers: RawServer[] = [];
const files: string[] = [];

after(async () => {
  for (const c of clients) {
    c.on('error', () => {});
    if (c.readyState !== WebSocket.CLOSED) c.terminate();
  }
  for (const wss of wsServers) {
    for (const s of wss.clients ?? []) s.terminate();
    await withTimeout(new Promise<void>((resolve) => wss.close(() => resolve())), 3000, 'a WebSocketServer to close').catch(() => {});
  }
  for (const h of httpServers) {
    h.closeAllConnections();
    await withTimeout(new Promise<void>((resolve) => h.close(() => resolve())), 3000, 'an HTTP server to close').catch(() => {});
  }
  for (const r of rawServers) await r.close();
  for (const f of files) rmSync(f, { force: true });
});

const WAIT = 3000;

/** The next `name` event's arguments (not rejected by an 'error' event, unlike events.once). */
function nextEvent<T extends unknown[]>(emitter: EventEmitter, name: string, what: string = name): Promise<T> {
  return withTimeout(new Promise<T>((resolve) => emitter.once(name, (...args: unknown[]) => resolve(args as T))), WAIT, what);
}

async function listening(options: Omit<WebSocketServerOptions, 'port'> = {}): Promise<{ wss: WebSocketServer; port: number }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', ...options });
  wsServers.push(wss);
  await nextEvent(wss, 'listening');
  return { wss, port: (wss.address() as AddressInfo).port };
}

async function httpServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: HttpServer; port: number }> {
  const server = createHttpServer(handler);
  httpServers.push(server);
  await withTimeout(new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve())), WAIT, 'an HTTP server to listen');
  return { server, port: (server.address() as AddressInfo).port };
}

async function rawServer(onRequest: (socket: Socket, request: RawRequest) => void): Promise<number> {
  const s = await startRawServer(onRequest);
  rawServers.push(s);
  return s.port;
}

function client(url: string | URL, protocols?: string | string[], options?: WebSocketClientOptions): WebSocket {
  const ws = new WebSocket(url, protocols, options);
  clients.push(ws);
  return ws;
}

/** Resolves once `ws` is open; rejects on its first 'error'. */
function opened(ws: WebSocket): Promise<WebSocket> {
  return withTimeout(
    new Promise<WebSocket>((resolve, reject) => {
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    }),
    WAIT,
    'open',
  );
}

interface Pair {
  wss: WebSocketServer;
  port: number;
  client: WebSocket;
  /** The server's socket for this connection. */
  server: WebSocket;
  req: IncomingMessage;
}

/** A WebSocketServer and one open client connected to it. */
async function pair(serverOptions: Omit<WebSocketServerOptions, 'port'> = {}, clientOptions?: WebSocketClientOptions, protocols?: string[]): Promise<Pair> {
  const { wss, port } = await listening(serverOptions);
  const connection = nextEvent<[WebSocket, IncomingMessage]>(wss, 'connection');
  const c = client(`ws://127.0.0.1:${port}/`, protocols, clientOptions);
  await opened(c);
  const [server, req] = await connection;
  return { wss, port, client: c, server, req };
}

interface Received {
  data: unknown;
  isBinary: boolean;
}

/** Every 'message' of `ws`, as it came. */
function collect(ws: WebSocket): Received[] {
  const out: Received[] = [];
  ws.on('message', (data: unknown, isBinary: boolean) => out.push({ data, isBinary }));
  return out;
}

function waitCount(list: readonly unknown[], n: number, what: string): Promise<void> {
  return waitUntil(() => list.length >= n, WAIT, `${n} ${what} (have ${list.length})`);
}

function asBuffer(data: unknown): Buffer {
  assert.ok(Buffer.isBuffer(data), `expected a Buffer, got ${Object.prototype.toString.call(data)}`);
  return data;
}

/** What a failing WebSocket emits, in order ('error:<message>' and 'close:<code>'), once it has closed. */
function failure(ws: WebSocket): Promise<{ events: string[]; errors: Error[] }> {
  const events: string[] = [];
  const errors: Error[] = [];
  ws.on('error', (err: Error) => {
    errors.push(err);
    events.push(`error:${err.message}`);
  });
  return withTimeout(
    new Promise((resolve) =>
      ws.once('close', (code: number) => {
        events.push(`close:${code}`);
        resolve({ events, errors });
      }),
    ),
    WAIT,
    'close after a failure',
  );
}

// ------------------------------------------------------------------ tests

describe('ready state, url, protocol, extensions', () => {
  it('the ready-state constants are on the class and on instances', async () => {
    assert.deepEqual([WebSocket.CONNECTING, WebSocket.OPEN, WebSocket.CLOSING, WebSocket.CLOSED], [0, 1, 2, 3]);
    const p = await pair();
    for (const ws of [p.client, p.server]) {
      assert.deepEqual([ws.CONNECTING, ws.OPEN, ws.CLOSING, ws.CLOSED], [0, 1, 2, 3]);
    }
  });

  it('readyState goes CONNECTING, OPEN, CLOSING, CLOSED through a session', async () => {
    const { wss, port } = await listening();
    const connection = nextEvent<[WebSocket]>(wss, 'connection');
    const c = client(`ws://127.0.0.1:${port}/`);
    assert.equal(c.readyState, WebSocket.CONNECTING);
    let atOpen = -1;
    c.on('open', () => (atOpen = c.readyState));
    await opened(c);
    assert.equal(atOpen, WebSocket.OPEN);
    const [s] = await connection;
    assert.equal(s.readyState, WebSocket.OPEN);
    const serverClosed = nextEvent<[number]>(s, 'close');
    const closed = nextEvent<[number]>(c, 'close');
    c.close(1000);
    assert.equal(c.readyState, WebSocket.CLOSING);
    let atClose = -1;
    c.on('close', () => (atClose = c.readyState));
    await closed;
    assert.equal(atClose, WebSocket.CLOSED);
    assert.equal(c.readyState, WebSocket.CLOSED);
    await serverClosed;
    assert.equal(s.readyState, WebSocket.CLOSED);
  });

  it('url is the address the client was given', async () => {
    const { port } = await listening();
    const url = `ws://127.0.0.1:${port}/some/path?q=1`;
    const c = client(url);
    assert.equal(c.url, url);
    await opened(c);
    assert.equal(c.url, url);
  });

  it('protocol is the subprotocol the server picked, on both sides', async () => {
    const p = await pair({}, undefined, ['chat', 'superchat']);
    assert.equal(p.client.protocol, 'chat');
    assert.equal(p.server.protocol, 'chat');
    const none = await pair();
    assert.equal(none.client.protocol, '');
    assert.equal(none.server.protocol, '');
  });

  it("extensions is '' without permessage-deflate and 'permessage-deflate' with it", async () => {
    const plain = await pair();
    assert.equal(plain.client.extensions, '');
    assert.equal(plain.server.extensions, '');
    const deflate = await pair({ perMessageDeflate: true });
    assert.equal(deflate.client.extensions, 'permessage-deflate');
    assert.equal(deflate.server.extensions, 'permessage-deflate');
  });
});

describe('send()', () => {
  it('throws while CONNECTING', async () => {
    const { port } = await listening();
    const c = client(`ws://127.0.0.1:${port}/`);
    assert.throws(() => c.send('too early'), (err: unknown) => err instanceof Error && err.message === 'WebSocket is not open: readyState 0 (CONNECTING)');
    await opened(c);
  });

  it('after close(): the callback gets a not-open error and bufferedAmount grows by the data length', async () => {
    const p = await pair();
    const closed = nextEvent(p.client, 'close');
    p.client.close();
    assert.equal(p.client.readyState, WebSocket.CLOSING);
    const closingErr = await withTimeout(new Promise<Error | undefined>((resolve) => p.client.send('abc', resolve)), WAIT, 'the send callback while CLOSING');
    assert.ok(closingErr instanceof Error);
    assert.equal(closingErr.message, 'WebSocket is not open: readyState 2 (CLOSING)');
    await closed;
    const before = p.client.bufferedAmount;
    const err = await withTimeout(new Promise<Error | undefined>((resolve) => p.client.send(Buffer.alloc(10), resolve)), WAIT, 'the send callback while CLOSED');
    assert.ok(err instanceof Error);
    assert.equal(err.message, 'WebSocket is not open: readyState 3 (CLOSED)');
    assert.equal(p.client.bufferedAmount, before + 10);
    p.client.send('héllo');
    assert.equal(p.client.bufferedAmount, before + 10 + Buffer.byteLength('héllo'));
  });

  it('a string goes as text, a Buffer as binary', async () => {
    const p = await pair();
    const got = collect(p.server);
    p.client.send('héllo');
    p.client.send(Buffer.from([0, 1, 2, 255]));
    await waitCount(got, 2, 'messages');
    assert.equal(got[0].isBinary, false);
    assert.equal(asBuffer(got[0].data).toString('utf8'), 'héllo');
    assert.equal(got[1].isBinary, true);
    assert.deepEqual(asBuffer(got[1].data), Buffer.from([0, 1, 2, 255]));
  });

  it('binary: true sends a string as a binary message', async () => {
    const p = await pair();
    const got = collect(p.server);
    p.client.send('as binary', { binary: true });
    await waitCount(got, 1, 'message');
    assert.equal(got[0].isBinary, true);
    assert.equal(asBuffer(got[0].data).toString(), 'as binary');
  });

  it('a number is sent as its decimal text', async () => {
    const p = await pair();
    const got = collect(p.server);
    p.client.send(42);
    p.client.send(-3.5);
    await waitCount(got, 2, 'messages');
    assert.equal(asBuffer(got[0].data).toString(), '42');
    assert.equal(got[0].isBinary, false);
    assert.equal(asBuffer(got[1].data).toString(), '-3.5');
  });

  it('ArrayBuffer, typed array views, DataView and Blob are sent with their bytes, in order', async () => {
    const p = await pair();
    const got = collect(p.server);
    const backing = new Uint8Array([10, 11, 12, 13, 14, 15, 16, 17]);
    const u16 = new Uint16Array([0x0102, 0x0304]);
    p.client.send(backing.buffer.slice(0, 3)); // ArrayBuffer
    p.client.send(backing.subarray(2, 5)); // a view with an offset
    p.client.send(u16);
    p.client.send(new DataView(backing.buffer, 5, 2));
    p.client.send(new Blob([Buffer.from('bl'), new Uint8Array([0x6f, 0x62])]));
    p.client.send(Buffer.from('after the blob'));
    await waitCount(got, 6, 'messages');
    const u16Bytes = Buffer.from(u16.buffer, u16.byteOffset, u16.byteLength);
    const expected = [Buffer.from([10, 11, 12]), Buffer.from([12, 13, 14]), u16Bytes, Buffer.from([15, 16]), Buffer.from('blob'), Buffer.from('after the blob')];
    assert.deepEqual(
      got.map((m) => asBuffer(m.data)),
      expected,
    );
    assert.deepEqual(
      got.map((m) => m.isBinary),
      [true, true, true, true, true, true],
    );
  });

  it('fin: false sends fragments the peer receives as one message once a send with fin true ends it', async () => {
    const p = await pair();
    const got = collect(p.server);
    p.client.send('ab', { fin: false });
    p.client.send('cd', { fin: false });
    p.client.send('ef');
    p.client.send(Buffer.from([1]), { fin: false });
    p.client.send(Buffer.from([2, 3]), { fin: true });
    p.client.send('single');
    await waitCount(got, 3, 'messages');
    await delay(30);
    assert.equal(got.length, 3);
    assert.equal(asBuffer(got[0].data).toString(), 'abcdef');
    assert.equal(got[0].isBinary, false);
    assert.deepEqual(asBuffer(got[1].data), Buffer.from([1, 2, 3]));
    assert.equal(got[1].isBinary, true);
    assert.equal(asBuffer(got[2].data).toString(), 'single');
  });

  it('the callback is called exactly once, without error, for each message', async () => {
    const p = await pair();
    const got = collect(p.server);
    const calls: Array<Array<Error | undefined | null>> = [[], [], [], []];
    p.client.send('one', (err) => calls[0].push(err));
    p.client.send(Buffer.alloc(70000, 1), (err) => calls[1].push(err));
    p.client.send('three', { binary: true }, (err) => calls[2].push(err));
    p.server.send('from the server', (err) => calls[3].push(err));
    await waitUntil(() => calls.every((c) => c.length >= 1), WAIT, 'every callback');
    await waitCount(got, 3, 'messages');
    await delay(30);
    for (const c of calls) {
      assert.equal(c.length, 1);
      assert.ok(c[0] === undefined || c[0] === null, `callback error: ${String(c[0])}`);
    }
  });

  it('compress: false with permessage-deflate agreed still delivers intact', async () => {
    const p = await pair({ perMessageDeflate: { threshold: 0 } });
    assert.equal(p.client.extensions, 'permessage-deflate');
    const atServer = collect(p.server);
    const atClient = collect(p.client);
    const text = 'compressible '.repeat(500);
    p.client.send(text, { compress: false });
    p.client.send(text);
    p.server.send(Buffer.from(text), { compress: false });
    await waitCount(atServer, 2, 'messages at the server');
    await waitCount(atClient, 1, 'message at the client');
    assert.equal(asBuffer(atServer[0].data).toString(), text);
    assert.equal(asBuffer(atServer[1].data).toString(), text);
    assert.equal(asBuffer(atClient[0].data).toString(), text);
    assert.equal(atClient[0].isBinary, true);
  });
});

/** A Blob whose bytes come when the test says: read() resolves them, fail() rejects as an unreadable file does. */
class HeldBlob extends Blob {
  #settle: { resolve: (b: ArrayBuffer) => void; reject: (e: Error) => void } | null = null;
  override arrayBuffer(): Promise<ArrayBuffer> {
    return new Promise((resolve, reject) => {
      this.#settle = { resolve, reject };
    });
  }
  get reading(): boolean {
    return this.#settle !== null;
  }
  read(): void {
    this.#settle!.resolve(new ArrayBuffer(3));
  }
  fail(err: Error): void {
    this.#settle!.reject(err);
  }
}

function unreadable(): Error {
  const err = new Error('The blob could not be read');
  err.name = 'NotReadableError';
  return err;
}

describe('send() of a Blob that cannot go out', () => {
  it('a Blob that cannot be read: its callback and those queued behind it get the error, then one \'error\' and the close', async () => {
    const p = await pair();
    const blob = new HeldBlob(['abc']);
    const order: string[] = [];
    const results: Array<Error | undefined> = [];
    const errors: unknown[] = [];
    p.client.on('error', (err) => {
      order.push('error');
      errors.push(err);
    });
    const closed = nextEvent<[number]>(p.client, 'close');
    p.client.send(blob, (err) => {
      order.push('blob callback');
      results.push(err);
    });
    p.client.send('queued behind the blob', (err) => {
      order.push('queued callback');
      results.push(err);
    });
    await waitUntil(() => blob.reading, WAIT, 'the blob to be read');
    const failure = unreadable();
    blob.fail(failure);
    await closed;
    assert.deepEqual(results, [failure, failure]);
    assert.deepEqual(errors, [failure]);
    assert.deepEqual(order, ['blob callback', 'queued callback', 'error']);
  });

  it("a Blob that fails after 'close': the callback gets the error and no 'error' is emitted", async () => {
    const p = await pair();
    const blob = new HeldBlob(['abc']);
    const errors: unknown[] = [];
    p.client.on('error', (err) => errors.push(err));
    const result = new Promise<Error | undefined>((resolve) => p.client.send(blob, resolve));
    const closed = nextEvent(p.client, 'close');
    p.server.terminate();
    await closed;
    const failure = unreadable();
    blob.fail(failure);
    assert.equal(await withTimeout(result, WAIT, 'the send callback'), failure);
    await delay(20);
    assert.deepEqual(errors, []);
  });

  it("'error' is emitted at most once: a Blob failing after a fault of the peer reports to its callback only", async () => {
    const port = await rawServer((socket, req) => {
      socket.write(switchingProtocols(req.key));
      // A frame with the reserved opcode 0x5: the client fails the connection.
      setTimeout(() => socket.write(Buffer.from([0x85, 0x00])), 50);
    });
    const c = client(`ws://127.0.0.1:${port}/`, undefined, { perMessageDeflate: false });
    await opened(c);
    const errors: Array<Error & { code?: string }> = [];
    c.on('error', (err: Error) => errors.push(err));
    const blob = new HeldBlob(['abc']);
    const result = new Promise<Error | undefined>((resolve) => c.send(blob, resolve));
    await waitUntil(() => errors.length === 1, WAIT, "the peer's fault");
    const failure = unreadable();
    blob.fail(failure);
    assert.equal(await withTimeout(result, WAIT, 'the send callback'), failure);
    await delay(20);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].code, 'WS_ERR_INVALID_OPCODE');
  });

  it('terminate() while a Blob is read: its callback and those queued behind it get "The socket was closed while the blob was being read" while CLOSING', async () => {
    const p = await pair();
    const blob = new HeldBlob(['abc']);
    const results: Array<{ err: Error | undefined; state: number }> = [];
    const record = (err: Error | undefined) => results.push({ err, state: p.client.readyState });
    p.client.send(blob, record);
    p.client.send('queued');
    p.client.send('queued too', record);
    await waitUntil(() => blob.reading, WAIT, 'the blob to be read');
    p.client.terminate();
    blob.read();
    await waitUntil(() => results.length === 2, WAIT, 'both callbacks');
    for (const { err, state } of results) {
      assert.ok(err instanceof Error);
      assert.equal(err.message, 'The socket was closed while the blob was being read');
      assert.equal(state, WebSocket.CLOSING);
    }
  });
});

describe('send() with permessage-deflate', () => {
  it('bufferedAmount counts a message waiting for compression by its size', async () => {
    const p = await pair({ perMessageDeflate: { threshold: 0 } }, { perMessageDeflate: { threshold: 0 } });
    assert.equal(p.client.extensions, 'permessage-deflate');
    p.client.send('abc');
    assert.equal(p.client.bufferedAmount, 3);
    const written = new Promise<Error | undefined>((resolve) => p.client.send('defg', resolve));
    assert.equal(p.client.bufferedAmount, 7);
    assert.equal(await withTimeout(written, WAIT, 'the send callback'), undefined);
    assert.equal(p.client.bufferedAmount, 0);
  });

  it('a send cut short while compressing: the callback gets "The socket was closed while data was being compressed"', async () => {
    const p = await pair({ perMessageDeflate: { threshold: 0 } }, { perMessageDeflate: { threshold: 0 } });
    const result = new Promise<{ err: Error | undefined; state: number }>((resolve) => p.client.send('hi', (err) => resolve({ err, state: p.client.readyState })));
    p.client.terminate();
    const { err, state } = await withTimeout(result, WAIT, 'the send callback');
    assert.ok(err instanceof Error);
    assert.equal(err.message, 'The socket was closed while data was being compressed');
    assert.equal(state, WebSocket.CLOSING);
  });

  it("messages received before the peer's socket ended without a close frame are all emitted before 'close' (1006)", async () => {
    const p = await pair({ perMessageDeflate: { threshold: 0 } }, { perMessageDeflate: { threshold: 0 } });
    const got = collect(p.client);
    const closed = nextEvent<[number]>(p.client, 'close');
    const words = ['one', 'two', 'three', 'four'];
    for (const w of words.slice(0, -1)) p.server.send(w);
    p.server.send(words.at(-1)!, () => (p.server._socket as Socket).end());
    const [code] = await closed;
    assert.equal(code, 1006);
    assert.deepEqual(got.map((m) => asBuffer(m.data).toString()), words);
  });

  it("messages received before a fault of the peer are emitted before 'error' and 'close'", async () => {
    const events: string[] = [];
    const p = await pair({ perMessageDeflate: { threshold: 0 } }, { perMessageDeflate: { threshold: 0 } });
    p.client.on('message', (data: Buffer) => events.push(`message ${data.toString()}`));
    p.client.on('error', (err: Error & { code?: string }) => events.push(`error ${err.code}`));
    const closed = nextEvent(p.client, 'close');
    p.server.send('first');
    p.server.send('second', () => (p.server._socket as Socket).write(Buffer.from([0x85, 0x00])));
    await closed;
    assert.deepEqual(events, ['message first', 'message second', 'error WS_ERR_INVALID_OPCODE']);
  });
});

describe("'message' and binaryType", () => {
  it('text arrives as a Buffer with isBinary false', async () => {
    const p = await pair();
    const got = collect(p.client);
    p.server.send('héllo wörld');
    await waitCount(got, 1, 'message');
    assert.equal(got[0].isBinary, false);
    assert.equal(asBuffer(got[0].data).toString('utf8'), 'héllo wörld');
  });

  it("binaryType defaults to 'nodebuffer': binary arrives as a Buffer", async () => {
    const p = await pair();
    assert.equal(p.client.binaryType, 'nodebuffer');
    assert.equal(p.server.binaryType, 'nodebuffer');
    const got = collect(p.server);
    p.client.send(new Uint8Array([9, 8, 7]));
    await waitCount(got, 1, 'message');
    assert.deepEqual(asBuffer(got[0].data), Buffer.from([9, 8, 7]));
    assert.equal(got[0].isBinary, true);
  });

  it("binaryType 'arraybuffer' gives an ArrayBuffer with the message's bytes", async () => {
    const p = await pair();
    p.client.binaryType = 'arraybuffer';
    assert.equal(p.client.binaryType, 'arraybuffer');
    const got = collect(p.client);
    p.server.send(Buffer.from([1, 2, 3, 250]));
    await waitCount(got, 1, 'message');
    assert.ok(got[0].data instanceof ArrayBuffer);
    assert.deepEqual(Buffer.from(got[0].data), Buffer.from([1, 2, 3, 250]));
    assert.equal(got[0].isBinary, true);
  });

  it("binaryType 'fragments' gives an array of Buffers whose concatenation is the message", async () => {
    const p = await pair();
    p.client.binaryType = 'fragments';
    const got = collect(p.client);
    p.server.send(Buffer.from('part1-'), { fin: false });
    p.server.send(Buffer.from('part2'));
    await waitCount(got, 1, 'message');
    const data = got[0].data;
    assert.ok(Array.isArray(data));
    assert.ok(data.length >= 1 && data.every((b) => Buffer.isBuffer(b)));
    assert.equal(Buffer.concat(data as Buffer[]).toString(), 'part1-part2');
    assert.equal(got[0].isBinary, true);
  });

  it("binaryType 'blob' gives a Blob", async () => {
    const p = await pair();
    p.client.binaryType = 'blob';
    const got = collect(p.client);
    p.server.send(Buffer.from([5, 6, 7, 8]));
    await waitCount(got, 1, 'message');
    const data = got[0].data;
    assert.ok(data instanceof Blob);
    assert.equal(data.size, 4);
    assert.deepEqual(Buffer.from(await data.arrayBuffer()), Buffer.from([5, 6, 7, 8]));
  });

  it('binaryType applies to binary messages only: a text message is still a Buffer', async () => {
    const p = await pair();
    p.client.binaryType = 'arraybuffer';
    const got = collect(p.client);
    p.server.send('text stays a Buffer');
    await waitCount(got, 1, 'message');
    assert.equal(got[0].isBinary, false);
    assert.equal(asBuffer(got[0].data).toString(), 'text stays a Buffer');
  });
});

describe('ping() and pong()', () => {
  it("'ping' and 'pong' events carry the data; the ping callback is called", async () => {
    const p = await pair();
    const serverPing = nextEvent<[Buffer]>(p.server, 'ping');
    const clientPong = nextEvent<[Buffer]>(p.client, 'pong');
    const cb = withTimeout(new Promise<Error | undefined>((resolve) => p.client.ping('hello', undefined, resolve)), WAIT, 'the ping callback');
    const [pingData] = await serverPing;
    assert.ok(Buffer.isBuffer(pingData));
    assert.equal(pingData.toString(), 'hello');
    const [pongData] = await clientPong;
    assert.ok(Buffer.isBuffer(pongData));
    assert.equal(pongData.toString(), 'hello');
    const err = await cb;
    assert.ok(err === undefined || err === null);
    // And from the server's socket, with a callback as the only argument.
    const clientPing = nextEvent<[Buffer]>(p.client, 'ping');
    const serverCb = withTimeout(new Promise<Error | undefined>((resolve) => p.server.ping(resolve)), WAIT, 'the server ping callback');
    const [empty] = await clientPing;
    assert.equal(empty.length, 0);
    const serverErr = await serverCb;
    assert.ok(serverErr === undefined || serverErr === null);
  });

  it('a ping payload over 125 bytes throws a RangeError', async () => {
    const p = await pair();
    assert.throws(() => p.client.ping(Buffer.alloc(126)), RangeError);
    assert.throws(() => p.server.pong('x'.repeat(126)), RangeError);
    // 125 bytes is fine.
    const serverPing = nextEvent<[Buffer]>(p.server, 'ping');
    p.client.ping(Buffer.alloc(125, 7));
    const [data] = await serverPing;
    assert.equal(data.length, 125);
  });

  it('send, ping and pong throw while CONNECTING', async () => {
    const { port } = await listening();
    const c = client(`ws://127.0.0.1:${port}/`);
    const message = 'WebSocket is not open: readyState 0 (CONNECTING)';
    assert.throws(() => c.ping(), { message });
    assert.throws(() => c.pong('x'), { message });
    assert.throws(() => c.send('x'), { message });
    await opened(c);
  });

  it('autoPong: false (client): no automatic pong, the ping event fires, a manual pong reaches the server', async () => {
    const p = await pair({}, { autoPong: false });
    const serverPongs: Buffer[] = [];
    p.server.on('pong', (d: Buffer) => serverPongs.push(d));
    const atServer = collect(p.server);
    // An automatic pong would be written when the ping is read, before this message.
    p.client.on('ping', () => p.client.send('after the ping'));
    const clientPing = nextEvent<[Buffer]>(p.client, 'ping');
    p.server.ping('p1');
    const [data] = await clientPing;
    assert.equal(data.toString(), 'p1');
    await waitCount(atServer, 1, 'message');
    await delay(30);
    assert.equal(serverPongs.length, 0);
    const pong = nextEvent<[Buffer]>(p.server, 'pong');
    p.client.pong('manual');
    const [pongData] = await pong;
    assert.equal(pongData.toString(), 'manual');
    assert.equal(serverPongs.length, 1);
  });

  it('autoPong: false (server option): no automatic pong, the ping event fires, a manual pong reaches the client', async () => {
    const p = await pair({ autoPong: false });
    const clientPongs: Buffer[] = [];
    p.client.on('pong', (d: Buffer) => clientPongs.push(d));
    const atClient = collect(p.client);
    p.server.on('ping', () => p.server.send('after the ping'));
    const serverPing = nextEvent<[Buffer]>(p.server, 'ping');
    p.client.ping('p2');
    const [data] = await serverPing;
    assert.equal(data.toString(), 'p2');
    await waitCount(atClient, 1, 'message');
    await delay(30);
    assert.equal(clientPongs.length, 0);
    const pong = nextEvent<[Buffer]>(p.client, 'pong');
    p.server.pong('by hand');
    const [pongData] = await pong;
    assert.equal(pongData.toString(), 'by hand');
  });
});

describe('close() and terminate()', () => {
  it('an invalid code throws a TypeError (and the socket stays open)', async () => {
    const p = await pair();
    for (const code of [1005, 999, 1006, 5000]) {
      assert.throws(() => p.client.close(code), TypeError, String(code));
    }
    assert.throws(() => p.client.close('x' as unknown as number), TypeError);
    assert.equal(p.client.readyState, WebSocket.OPEN);
  });

  it('a reason over 123 bytes throws a RangeError', async () => {
    const p = await pair();
    // 62 two-byte characters: 124 bytes, 62 characters.
    assert.throws(() => p.client.close(1000, 'é'.repeat(62)), RangeError);
    assert.throws(() => p.server.close(1000, Buffer.alloc(124, 0x61)), RangeError);
    assert.equal(p.client.readyState, WebSocket.OPEN);
    const closed = nextEvent<[number, Buffer]>(p.server, 'close');
    p.client.close(1000, 'a'.repeat(123));
    const [code, reason] = await closed;
    assert.equal(code, 1000);
    assert.equal(reason.length, 123);
  });

  it("close() without a code: the peer's 'close' gets 1005", async () => {
    const p = await pair();
    const closed = nextEvent<[number, Buffer]>(p.server, 'close');
    p.client.close();
    const [code, reason] = await closed;
    assert.equal(code, 1005);
    assert.equal(reason.length, 0);
  });

  it("close(4001, 'bye'): the peer's 'close' has code 4001 and reason Buffer 'bye'", async () => {
    const p = await pair();
    const closed = nextEvent<[number, Buffer]>(p.server, 'close');
    p.client.close(4001, 'bye');
    const [code, reason] = await closed;
    assert.equal(code, 4001);
    assert.ok(Buffer.isBuffer(reason));
    assert.equal(reason.toString(), 'bye');
  });

  it("the 'close' event's reason is a Buffer (the server closes, the client hears it)", async () => {
    const p = await pair();
    const closed = nextEvent<[number, Buffer]>(p.client, 'close');
    p.server.close(4002, Buffer.from('from the server'));
    const [code, reason] = await closed;
    assert.equal(code, 4002);
    assert.ok(Buffer.isBuffer(reason));
    assert.equal(reason.toString(), 'from the server');
  });

  it("close() while CONNECTING emits 'error' then 'close' with 1006", async () => {
    const { port } = await listening();
    const c = client(`ws://127.0.0.1:${port}/`);
    const result = failure(c);
    let openedEvent = false;
    c.on('open', () => (openedEvent = true));
    c.close();
    assert.equal(c.readyState, WebSocket.CLOSING);
    const { events } = await result;
    assert.deepEqual(events, ['error:WebSocket was closed before the connection was established', 'close:1006']);
    assert.equal(c.readyState, WebSocket.CLOSED);
    await delay(30);
    assert.equal(openedEvent, false);
  });

  it("close frames read as ws writes them: the reply repeats the closer's reason, and a failure's close frame has none", async () => {
    const p = await pair();
    const closed = nextEvent<[number, Buffer]>(p.client, 'close');
    p.client.close(4000, 'my reason');
    const [code, reason] = await closed;
    assert.equal(code, 4000);
    assert.equal(reason.toString(), 'my reason');

    const q = await pair();
    q.client.on('error', () => {});
    const serverClosed = nextEvent<[number, Buffer]>(q.server, 'close');
    // A frame with the reserved opcode 0x5: the client fails the connection with 1002.
    (q.server._socket as Socket).write(Buffer.from([0x85, 0x00]));
    const [failCode, failReason] = await serverClosed;
    assert.equal(failCode, 1002);
    assert.equal(failReason.length, 0);
  });

  it("terminate() while messages are being decompressed: they are emitted before 'close' (1006), as in ws", async () => {
    const p = await pair({ perMessageDeflate: true }, { perMessageDeflate: true });
    const events: string[] = [];
    p.client.on('message', (data: Buffer) => events.push(`message '${data.toString()}'`));
    const closed = nextEvent<[number]>(p.client, 'close');
    // Terminated as soon as the bytes are read, while zlib still has the messages.
    (p.client._socket as Socket).once('data', () => p.client.terminate());
    // Four compressed text frames, each an empty message (0x00 is an empty stored block's start; the
    // receiver appends 00 00 ff ff, RFC 7692 section 7.2.2).
    (p.server._socket as Socket).write(Buffer.from('c10100'.repeat(4), 'hex'));
    const [code] = await closed;
    assert.equal(code, 1006);
    assert.deepEqual(events, ["message ''", "message ''", "message ''", "message ''"]);
  });

  it("terminate() while a message is being decompressed that turns out corrupt: 'error' with zlib's code, then 'close'", async () => {
    const p = await pair({ perMessageDeflate: true }, { perMessageDeflate: true });
    const errors: Array<Error & { code?: string }> = [];
    p.client.on('error', (err: Error) => errors.push(err));
    const closed = nextEvent<[number]>(p.client, 'close');
    (p.client._socket as Socket).once('data', () => p.client.terminate());
    // A compressed text frame whose deflate data starts a block of the reserved type 3: zlib fails it.
    (p.server._socket as Socket).write(Buffer.from('c10107', 'hex'));
    const [code] = await closed;
    assert.equal(code, 1006);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].code, 'Z_DATA_ERROR');
  });

  it("terminate() from a 'message' listener: the other messages of the same read are still emitted, then 'close', as in ws", async () => {
    const p = await pair({ perMessageDeflate: false }, { perMessageDeflate: false });
    const events: string[] = [];
    p.client.on('message', (data: Buffer) => {
      events.push(data.toString());
      if (events.length === 1) p.client.terminate();
    });
    const closed = nextEvent<[number]>(p.client, 'close');
    // Three text frames in one write: 'a', 'b', 'c'.
    (p.server._socket as Socket).write(Buffer.from('810161810162810163', 'hex'));
    const [code] = await closed;
    assert.equal(code, 1006);
    assert.deepEqual(events, ['a', 'b', 'c']);
  });

  it('terminate() gives 1006 on both sides', async () => {
    const p = await pair();
    const clientClosed = nextEvent<[number]>(p.client, 'close', 'client close');
    const serverClosed = nextEvent<[number]>(p.server, 'close', 'server close');
    p.client.terminate();
    const [[clientCode], [serverCode]] = await Promise.all([clientClosed, serverClosed]);
    assert.equal(clientCode, 1006);
    assert.equal(serverCode, 1006);
  });
});

describe('pause() and resume()', () => {
  it('isPaused toggles', async () => {
    const p = await pair();
    assert.equal(p.client.isPaused, false);
    p.client.pause();
    assert.equal(p.client.isPaused, true);
    p.client.resume();
    assert.equal(p.client.isPaused, false);
    p.server.pause();
    assert.equal(p.server.isPaused, true);
  });

  it("no 'message' while paused; after resume() they arrive in order", async () => {
    const p = await pair();
    const got = collect(p.client);
    p.client.pause();
    const written = new Promise<void>((resolve) =>
      p.server.on('message', () => {
        p.server.send('m1');
        p.server.send('m2');
        p.server.send('m3', () => resolve());
      }),
    );
    p.client.send('go');
    await withTimeout(written, WAIT, 'the server to write its messages');
    await delay(100);
    assert.equal(got.length, 0);
    p.client.resume();
    await waitCount(got, 3, 'messages after resume');
    assert.deepEqual(
      got.map((m) => asBuffer(m.data).toString()),
      ['m1', 'm2', 'm3'],
    );
  });

  it('pause() while CONNECTING is a no-op', async () => {
    const { wss, port } = await listening();
    const connection = nextEvent<[WebSocket]>(wss, 'connection');
    const c = client(`ws://127.0.0.1:${port}/`);
    c.pause();
    assert.equal(c.isPaused, false);
    await opened(c);
    assert.equal(c.isPaused, false);
    const [s] = await connection;
    const got = collect(c);
    s.send('flows');
    await waitCount(got, 1, 'message');
  });
});

describe('EventTarget form', () => {
  it("addEventListener('message'): data is a string for text and a Buffer for binary; target is the socket", async () => {
    const p = await pair();
    const events: WsMessageEvent[] = [];
    p.client.addEventListener('message', (e: WsEvent) => events.push(e as WsMessageEvent));
    p.server.send('texte');
    p.server.send(Buffer.from([1, 2, 3]));
    await waitCount(events, 2, 'message events');
    assert.equal(events[0].type, 'message');
    assert.equal(events[0].data, 'texte');
    assert.equal(events[0].target, p.client);
    assert.ok(Buffer.isBuffer(events[1].data));
    assert.deepEqual(events[1].data, Buffer.from([1, 2, 3]));
    assert.equal(events[1].target, p.client);
  });

  it("a text message's data is a string whatever the binaryType", async () => {
    const p = await pair();
    p.client.binaryType = 'arraybuffer';
    const events: WsMessageEvent[] = [];
    p.client.addEventListener('message', (e: WsEvent) => events.push(e as WsMessageEvent));
    p.server.send('still a string');
    p.server.send(Buffer.from([4, 5]));
    await waitCount(events, 2, 'message events');
    assert.equal(events[0].data, 'still a string');
    assert.ok(events[1].data instanceof ArrayBuffer);
  });

  it('{ once: true } calls the listener for the first event only', async () => {
    const p = await pair();
    let calls = 0;
    p.client.addEventListener('message', () => calls++, { once: true });
    const got = collect(p.client);
    p.server.send('1');
    p.server.send('2');
    await waitCount(got, 2, 'messages');
    assert.equal(calls, 1);
  });

  it('the same listener added twice is called once', async () => {
    const p = await pair();
    let calls = 0;
    const listener = () => calls++;
    p.client.addEventListener('message', listener);
    p.client.addEventListener('message', listener);
    const got = collect(p.client);
    p.server.send('once');
    await waitCount(got, 1, 'message');
    assert.equal(calls, 1);
  });

  it('an object with handleEvent works as a listener', async () => {
    const p = await pair();
    const seen: string[] = [];
    const handler = {
      prefix: 'got ',
      handleEvent(e: WsEvent) {
        seen.push(this.prefix + String((e as WsMessageEvent).data));
      },
    };
    p.client.addEventListener('message', handler);
    p.server.send('obj');
    await waitCount(seen, 1, 'handleEvent call');
    assert.deepEqual(seen, ['got obj']);
  });

  it('removeEventListener removes a listener', async () => {
    const p = await pair();
    let removed = 0;
    let kept = 0;
    const listener = () => removed++;
    p.client.addEventListener('message', listener);
    p.client.addEventListener('message', () => kept++);
    p.client.removeEventListener('message', listener);
    p.server.send('x');
    await waitUntil(() => kept === 1, WAIT, 'the kept listener');
    assert.equal(removed, 0);
  });

  it('onopen and onmessage; setting a new one replaces the old', async () => {
    const { wss, port } = await listening();
    const connection = nextEvent<[WebSocket]>(wss, 'connection');
    const c = client(`ws://127.0.0.1:${port}/`);
    const opens: string[] = [];
    c.onopen = () => opens.push('first');
    const second = (e: WsEvent) => opens.push(`second:${e.type}`);
    c.onopen = second;
    assert.equal(c.onopen, second);
    await opened(c);
    await waitCount(opens, 1, 'onopen');
    assert.deepEqual(opens, ['second:open']);
    const messages: string[] = [];
    c.onmessage = () => messages.push('old');
    c.onmessage = (e: WsEvent) => messages.push(`new:${String((e as WsMessageEvent).data)}`);
    const [s] = await connection;
    s.send('hi');
    await waitCount(messages, 1, 'onmessage');
    await delay(20);
    assert.deepEqual(messages, ['new:hi']);
  });

  it('onclose after a clean close: code, reason string, wasClean true', async () => {
    const p = await pair();
    const ev = withTimeout(new Promise<WsCloseEvent>((resolve) => (p.client.onclose = (e: WsEvent) => resolve(e as WsCloseEvent))), WAIT, 'onclose');
    p.server.close(4100, 'done');
    const e = await ev;
    assert.equal(e.type, 'close');
    assert.equal(e.code, 4100);
    assert.equal(e.reason, 'done');
    assert.equal(typeof e.reason, 'string');
    assert.equal(e.wasClean, true);
    assert.equal(e.target, p.client);
  });

  it('onclose after terminate(): wasClean false, code 1006', async () => {
    const p = await pair();
    const ev = withTimeout(new Promise<WsCloseEvent>((resolve) => (p.server.onclose = (e: WsEvent) => resolve(e as WsCloseEvent))), WAIT, 'onclose');
    p.client.terminate();
    const e = await ev;
    assert.equal(e.code, 1006);
    assert.equal(e.wasClean, false);
  });

  it('onerror: the event has error and message', async () => {
    const { port } = await listening();
    const c = client(`ws://127.0.0.1:${port}/`);
    const ev = withTimeout(new Promise<WsErrorEvent>((resolve) => (c.onerror = (e: WsEvent) => resolve(e as WsErrorEvent))), WAIT, 'onerror');
    const closed = nextEvent(c, 'close');
    c.close();
    const e = await ev;
    assert.equal(e.type, 'error');
    assert.ok(e.error instanceof Error);
    assert.equal(e.error.message, 'WebSocket was closed before the connection was established');
    assert.equal(e.message, 'WebSocket was closed before the connection was established');
    await closed;
  });
});

describe('client handshake', () => {
  it("'upgrade' gives the response, with a header the server added in its 'headers' event, before 'open'", async () => {
    const { wss, port } = await listening();
    wss.on('headers', (lines: string[]) => lines.push('X-Added: by-the-server'));
    const c = client(`ws://127.0.0.1:${port}/`);
    const order: string[] = [];
    let header: string | string[] | undefined;
    let status = 0;
    c.on('upgrade', (res: IncomingMessage) => {
      order.push('upgrade');
      header = res.headers['x-added'];
      status = res.statusCode ?? 0;
    });
    c.on('open', () => order.push('open'));
    await opened(c);
    assert.deepEqual(order, ['upgrade', 'open']);
    assert.equal(status, 101);
    assert.equal(header, 'by-the-server');
  });

  it("'unexpected-response' gets the request and a 401 response", async () => {
    const { port } = await httpServer((_req, res) => {
      res.writeHead(401, { 'Content-Type': 'text/plain', 'X-Why': 'no token' });
      res.end('go away');
    });
    const c = client(`ws://127.0.0.1:${port}/`);
    const result = failure(c);
    const [req, res] = await nextEvent<[ClientRequest, IncomingMessage]>(c, 'unexpected-response');
    assert.equal(typeof req.getHeader, 'function');
    assert.equal(req.getHeader('upgrade'), 'websocket');
    assert.equal(res.statusCode, 401);
    assert.equal(res.headers['x-why'], 'no token');
    // With a listener, the response is the application's: no error of ws's own.
    assert.equal(c.readyState, WebSocket.CONNECTING);
    c.terminate();
    const { events } = await result;
    assert.ok(!events.some((e) => e.startsWith('error:Unexpected server response')), events.join(', '));
    assert.equal(events[events.length - 1], 'close:1006');
  });

  it("without an 'unexpected-response' listener a 401 is an 'error' then 'close' 1006", async () => {
    const { port } = await httpServer((_req, res) => {
      res.writeHead(401);
      res.end();
    });
    const c = client(`ws://127.0.0.1:${port}/`);
    const { events } = await failure(c);
    assert.deepEqual(events, ['error:Unexpected server response: 401', 'close:1006']);
  });

  it("the headers and origin options reach the server ('connection' req.headers)", async () => {
    const p = await pair({}, { headers: { 'X-Custom': 'custom value', Cookie: 'a=b' }, origin: 'https://origin.example' });
    assert.equal(p.req.headers['x-custom'], 'custom value');
    assert.equal(p.req.headers.cookie, 'a=b');
    assert.equal(p.req.headers.origin, 'https://origin.example');
  });

  it('credentials in the URL become an Authorization Basic header', async () => {
    const { wss, port } = await listening();
    const connection = nextEvent<[WebSocket, IncomingMessage]>(wss, 'connection');
    const c = client(`ws://alice:s3cret@127.0.0.1:${port}/`);
    await opened(c);
    const [, req] = await connection;
    assert.equal(req.headers.authorization, `Basic ${Buffer.from('alice:s3cret').toString('base64')}`);
  });

  it("followRedirects: true follows a 302 to the WebSocket server and emits 'redirect' (url, request)", async () => {
    const { wss, port } = await listening();
    const target = `ws://127.0.0.1:${port}/target?x=1`;
    const { port: redirector } = await httpServer((_req, res) => {
      res.writeHead(302, { Location: target });
      res.end();
    });
    const connection = nextEvent<[WebSocket, IncomingMessage]>(wss, 'connection');
    const c = client(`ws://127.0.0.1:${redirector}/start`, undefined, { followRedirects: true });
    const redirects: Array<{ url: string; hasGetHeader: boolean }> = [];
    c.on('redirect', (url: string, request: ClientRequest) => redirects.push({ url, hasGetHeader: typeof request.getHeader === 'function' }));
    await opened(c);
    const [, req] = await connection;
    assert.deepEqual(redirects, [{ url: target, hasGetHeader: true }]);
    assert.equal(req.url, '/target?x=1');
    assert.equal(c.url, target);
  });

  it('without followRedirects a 302 is an unexpected response', async () => {
    const { port } = await listening();
    const { port: redirector } = await httpServer((_req, res) => {
      res.writeHead(302, { Location: `ws://127.0.0.1:${port}/` });
      res.end();
    });
    const c = client(`ws://127.0.0.1:${redirector}/`);
    let redirected = false;
    c.on('redirect', () => (redirected = true));
    const { events } = await failure(c);
    assert.deepEqual(events, ['error:Unexpected server response: 302', 'close:1006']);
    assert.equal(redirected, false);
  });

  it("maxRedirects: 1 with a redirect loop: 'Maximum redirects exceeded'", async () => {
    let requests = 0;
    const { port } = await httpServer((req, res) => {
      requests++;
      res.writeHead(302, { Location: `/loop${requests}` });
      res.end();
    });
    const c = client(`ws://127.0.0.1:${port}/`, undefined, { followRedirects: true, maxRedirects: 1 });
    let redirects = 0;
    c.on('redirect', () => redirects++);
    const { events } = await failure(c);
    assert.deepEqual(events, ['error:Maximum redirects exceeded', 'close:1006']);
    assert.equal(redirects, 1);
    assert.equal(requests, 2);
  });

  it("handshakeTimeout against a server that never answers: 'Opening handshake has timed out'", async () => {
    const port = await rawServer(() => {
      // Reads the request and never answers.
    });
    const started = Date.now();
    const c = client(`ws://127.0.0.1:${port}/`, undefined, { handshakeTimeout: 150 });
    const { events } = await failure(c);
    assert.deepEqual(events, ['error:Opening handshake has timed out', 'close:1006']);
    assert.ok(Date.now() - started >= 140, `timed out after ${Date.now() - started} ms`);
  });

  it('an invalid URL: the constructor throws a SyntaxError', () => {
    assert.throws(() => new WebSocket('not a url'), SyntaxError);
  });

  it("an 'ftp://' URL: the constructor throws a SyntaxError", () => {
    assert.throws(() => new WebSocket('ftp://127.0.0.1/'), SyntaxError);
  });

  it("a URL with a fragment ('#frag'): the constructor throws a SyntaxError", () => {
    assert.throws(() => new WebSocket('ws://127.0.0.1:1/path#frag'), SyntaxError);
  });

  it('duplicate subprotocols: the constructor throws a SyntaxError', () => {
    assert.throws(() => new WebSocket('ws://127.0.0.1:1/', ['chat', 'chat']), SyntaxError);
  });

  it('protocolVersion 7: the constructor throws a RangeError', () => {
    assert.throws(() => new WebSocket('ws://127.0.0.1:1/', { protocolVersion: 7 }), RangeError);
  });

  it("a subprotocol that was not offered: 'Server sent an invalid subprotocol'", async () => {
    const port = await rawServer((socket, req) => socket.write(switchingProtocols(req.key, { 'Sec-WebSocket-Protocol': 'other' })));
    const c = client(`ws://127.0.0.1:${port}/`, ['chat', 'superchat']);
    const { events } = await failure(c);
    assert.deepEqual(events, ['error:Server sent an invalid subprotocol', 'close:1006']);
  });

  it("no subprotocol in the answer when some were offered: 'Server sent no subprotocol'", async () => {
    const port = await rawServer((socket, req) => socket.write(switchingProtocols(req.key)));
    const c = client(`ws://127.0.0.1:${port}/`, ['chat']);
    const { events } = await failure(c);
    assert.deepEqual(events, ['error:Server sent no subprotocol', 'close:1006']);
  });

  it("a wrong Sec-WebSocket-Accept: 'Invalid Sec-WebSocket-Accept header'", async () => {
    const port = await rawServer((socket) => socket.write(switchingProtocols(newKey())));
    const c = client(`ws://127.0.0.1:${port}/`);
    const { events } = await failure(c);
    assert.deepEqual(events, ['error:Invalid Sec-WebSocket-Accept header', 'close:1006']);
  });

  it('ws+unix: connects to a WebSocketServer on a unix socket, with the request path', async () => {
    const path = join(tmpdir(), `sockeye-wst-${process.pid}-${Date.now()}.sock`);
    rmSync(path, { force: true });
    files.push(path);
    const http = createHttpServer();
    httpServers.push(http);
    const wss = new WebSocketServer({ server: http });
    wsServers.push(wss);
    await withTimeout(new Promise<void>((resolve) => http.listen(path, () => resolve())), WAIT, 'the unix socket server');
    const connection = nextEvent<[WebSocket, IncomingMessage]>(wss, 'connection');
    const c = client(`ws+unix:${path}:/chat?room=7`);
    await opened(c);
    const [s, req] = await connection;
    assert.equal(req.url, '/chat?room=7');
    const got = collect(s);
    c.send('over ipc');
    await waitCount(got, 1, 'message');
    assert.equal(asBuffer(got[0].data).toString(), 'over ipc');
  });
});

describe('allowSynchronousEvents', () => {
  /** Three text messages written in one TCP write to a client; the event-loop turn of each 'message'. */
  async function turnsOfMessages(options: WebSocketClientOptions): Promise<number[]> {
    let serverSocket: Socket | null = null;
    const port = await rawServer((socket, req) => {
      serverSocket = socket;
      socket.write(switchingProtocols(req.key));
    });
    const c = client(`ws://127.0.0.1:${port}/`, undefined, { perMessageDeflate: false, ...options });
    await opened(c);
    await waitUntil(() => serverSocket !== null, WAIT, 'the raw server socket');
    let turn = 0;
    let running = true;
    const tick = () => {
      turn++;
      if (running) setImmediate(tick);
    };
    setImmediate(tick);
    const turns: number[] = [];
    c.on('message', () => turns.push(turn));
    (serverSocket as unknown as Socket).write(concat(serverFrame(Op.Text, 'one'), serverFrame(Op.Text, 'two'), serverFrame(Op.Text, 'three')));
    try {
      await waitCount(turns, 3, 'messages');
    } finally {
      running = false;
    }
    return turns;
  }

  it('false: messages that arrive in one read are emitted in different turns of the event loop', async () => {
    const turns = await turnsOfMessages({ allowSynchronousEvents: false });
    assert.equal(new Set(turns).size, 3, `turns: ${turns.join(', ')}`);
  });

  it('true (the default): they are emitted in the same turn', async () => {
    const turns = await turnsOfMessages({});
    assert.equal(new Set(turns).size, 1, `turns: ${turns.join(', ')}`);
  });
});

describe('maxBufferedChunks', () => {
  it('is accepted by the server and the client, which connect and exchange messages as usual', async () => {
    const p = await pair({ maxBufferedChunks: 4 }, { maxBufferedChunks: 4 });
    const got = collect(p.server);
    p.client.send(Buffer.alloc(100_000, 7));
    await waitCount(got, 1, 'message');
    assert.equal(asBuffer(got[0].data).length, 100_000);
  });
});

describe('maxPayload', () => {
  it("a message above it: the receiver emits a RangeError 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', the sender's 'close' gets 1009", async () => {
    const p = await pair({}, { maxPayload: 10 });
    const clientError = nextEvent<[Error & { code?: string }]>(p.client, 'error');
    const serverClosed = nextEvent<[number]>(p.server, 'close');
    const got = collect(p.client);
    p.server.send(Buffer.alloc(10, 1));
    p.server.send(Buffer.alloc(11, 2));
    const [err] = await clientError;
    assert.ok(err instanceof RangeError);
    assert.equal(err.message, 'Max payload size exceeded');
    assert.equal(err.code, 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH');
    const [code] = await serverClosed;
    assert.equal(code, 1009);
    assert.equal(got.length, 1);
    assert.equal(asBuffer(got[0].data).length, 10);
  });
});
