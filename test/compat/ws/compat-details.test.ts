/**
 * Details of ws's behaviour that existing ws code and libraries rely on,
 * beyond the documented API: the ready-state constants on the prototype,
 * read-only and enumerable; `_socket` and `_sender.sendFrame()`; what the
 * constructors do with odd arguments; where credentials go on a redirect
 * (they must not leak to another host or down from wss: to ws:); zlib's own
 * error for a bad compressed message; a close queued behind Blob sends; the
 * server's clients set inside a 'close' listener.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type ClientRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Blob } from 'node:buffer';
import * as realWs from 'ws';
import { WebSocket, WebSocketServer } from '../../../src/compat/ws/index.js';
import { RawClient, closePayload, startRawServer, switchingProtocols, withTimeout, waitUntil } from '../../helpers/ws-pair.js';
import { frame, Op, RSV1 } from '../../helpers/frames.js';

const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

async function wsServer(options: { perMessageDeflate?: boolean } = {}): Promise<{ wss: WebSocketServer; port: number }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', ...options });
  closers.push(async () => {
    for (const c of wss.clients ?? []) c.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  });
  await once(wss, 'listening');
  return { wss, port: (wss.address() as AddressInfo).port };
}

describe('ready-state constants and attributes', () => {
  it('are on the class and the prototype, enumerable and read-only; the attributes are enumerable', () => {
    for (const [name, value] of [['CONNECTING', 0], ['OPEN', 1], ['CLOSING', 2], ['CLOSED', 3]] as const) {
      for (const target of [WebSocket, WebSocket.prototype]) {
        const d = Object.getOwnPropertyDescriptor(target, name);
        assert.deepEqual(d, { value, enumerable: true, writable: false, configurable: false }, name);
      }
    }
    for (const name of ['binaryType', 'bufferedAmount', 'extensions', 'isPaused', 'protocol', 'readyState', 'url', 'onopen', 'onmessage', 'onclose', 'onerror']) {
      assert.equal(Object.getOwnPropertyDescriptor(WebSocket.prototype, name)?.enumerable, true, name);
    }
  });
});

describe('odd arguments, as ws takes them', () => {
  it('new WebSocket(url, null) is an invalid subprotocol', () => {
    assert.throws(() => new WebSocket('ws://127.0.0.1:1/', null as unknown as string), { name: 'SyntaxError', message: 'An invalid or duplicated subprotocol was specified' });
  });

  it('new WebSocketServer() without options names the three modes', () => {
    assert.throws(() => new WebSocketServer(), { name: 'TypeError', message: 'One and only one of the "port", "server", or "noServer" options must be specified' });
  });

  it('send() without data sends an empty message', async () => {
    const { wss, port } = await wsServer();
    const got = new Promise<[Buffer, boolean]>((resolve) => wss.on('connection', (ws: WebSocket) => ws.once('message', (d: Buffer, b: boolean) => resolve([d, b]))));
    const c = new WebSocket(`ws://127.0.0.1:${port}/`);
    await once(c, 'open');
    c.send();
    const [data, binary] = await withTimeout(got, 5000, 'message');
    assert.equal(data.length, 0);
    assert.equal(binary, true);
    c.terminate();
  });
});

describe('_socket and _sender', () => {
  it('_socket is the socket under the WebSocket: its remoteAddress', async () => {
    const { wss, port } = await wsServer();
    const server = once(wss, 'connection');
    const c = new WebSocket(`ws://127.0.0.1:${port}/`);
    assert.equal(c._socket, null, 'none while connecting');
    await once(c, 'open');
    const [s] = (await server) as [WebSocket];
    assert.equal(s._socket?.constructor.name, 'Socket');
    assert.equal((s._socket as unknown as { remoteAddress: string }).remoteAddress, '127.0.0.1');
    c.terminate();
  });

  it('_sender.sendFrame() sends a frame ws built once to several sockets, each callback called once', async () => {
    const { wss, port } = await wsServer();
    const clients = await Promise.all(
      [0, 1, 2].map(async () => {
        const c = new WebSocket(`ws://127.0.0.1:${port}/`);
        await once(c, 'open');
        return c;
      }),
    );
    await waitUntil(() => wss.clients!.size === 3, 5000, 'three sockets');
    const got = clients.map((c) => once(c, 'message'));
    // What socket.io's adapter builds for a broadcast: ws's own frame of an engine.io packet.
    // ws's Sender is untyped in @types/ws; socket.io-adapter calls it the same way.
    const { Sender } = realWs as unknown as { Sender: { frame(data: Buffer, options: object): Buffer[] } };
    const built = Sender.frame(Buffer.from('4["news",1]'), { readOnly: false, mask: false, rsv1: false, opcode: 1, fin: true });
    let callbacks = 0;
    for (const s of wss.clients!) s._sender!.sendFrame(built, (err) => (assert.equal(err, undefined), callbacks++));
    for (const [data, binary] of (await withTimeout(Promise.all(got), 5000, 'broadcast')) as Array<[Buffer, boolean]>) {
      assert.equal(data.toString(), '4["news",1]');
      assert.equal(binary, false);
    }
    await waitUntil(() => callbacks === 3, 5000, 'callbacks');
    for (const c of clients) c.terminate();
  });
});

describe('redirects and credentials', () => {
  /** A WebSocket server that records the Authorization and Cookie headers of each upgrade. */
  async function recordingTarget(): Promise<{ port: number; seen: Array<{ authorization?: string; cookie?: string }> }> {
    const { wss, port } = await wsServer();
    const seen: Array<{ authorization?: string; cookie?: string }> = [];
    wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
      seen.push({ authorization: req.headers.authorization, cookie: req.headers.cookie });
      ws.close();
    });
    return { port, seen };
  }

  async function follow(url: string, options = {}): Promise<void> {
    const c = new WebSocket(url, { followRedirects: true, ...options });
    c.on('error', () => {});
    await withTimeout(once(c, 'close'), 5000, 'close');
  }

  /** An HTTP server whose upgrades at `/ws` open a WebSocket (recording Authorization) and elsewhere redirect to `location(port)`. */
  async function redirector(location: (port: number) => string): Promise<{ port: number; seen: Array<string | undefined> }> {
    const http = createHttpServer();
    const wss = new WebSocketServer({ noServer: true });
    const seen: Array<string | undefined> = [];
    http.on('upgrade', (req, socket, head) => {
      if (req.url !== '/ws') {
        socket.end(`HTTP/1.1 302 Found\r\nLocation: ${location((http.address() as AddressInfo).port)}\r\nContent-Length: 0\r\n\r\n`);
        return;
      }
      seen.push(req.headers.authorization);
      wss.handleUpgrade(req, socket, head, (ws) => ws.close());
    });
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    closers.push(async () => {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    });
    return { port: (http.address() as AddressInfo).port, seen };
  }

  it('to the same host: the first URL credentials are kept, not those of the Location', async () => {
    const r = await redirector((port) => `ws://bob:two@127.0.0.1:${port}/ws`);
    await follow(`ws://alice:one@127.0.0.1:${r.port}/start`);
    assert.deepEqual(r.seen, ['Basic ' + Buffer.from('alice:one').toString('base64')]);
  });

  it('to another host: Authorization and Cookie are dropped (from the URL and from the headers option)', async () => {
    const target = await recordingTarget();
    const http = createHttpServer();
    http.on('upgrade', (_req, socket) => {
      // localhost and 127.0.0.1 are different hosts to the client (the URL's host differs).
      socket.end(`HTTP/1.1 302 Found\r\nLocation: ws://localhost:${target.port}/\r\nContent-Length: 0\r\n\r\n`);
    });
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    closers.push(async () => {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    });
    await follow(`ws://alice:one@127.0.0.1:${(http.address() as AddressInfo).port}/`, { headers: { Cookie: 'session=secret', Authorization: 'Bearer token' } });
    assert.deepEqual(target.seen, [{ authorization: undefined, cookie: undefined }]);
  });

  it("with a 'redirect' listener the application decides: it may remove a header before the request is sent", async () => {
    const target = await recordingTarget();
    const http = createHttpServer();
    http.on('upgrade', (_req, socket) => socket.end(`HTTP/1.1 302 Found\r\nLocation: ws://localhost:${target.port}/\r\nContent-Length: 0\r\n\r\n`));
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    closers.push(async () => {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    });
    const c = new WebSocket(`ws://127.0.0.1:${(http.address() as AddressInfo).port}/`, { followRedirects: true, headers: { Cookie: 'a=1', Authorization: 'Bearer kept' } });
    c.on('redirect', (_url: string, req: ClientRequest) => req.removeHeader('cookie'));
    await withTimeout(once(c, 'close'), 5000, 'close');
    assert.deepEqual(target.seen, [{ authorization: 'Bearer kept', cookie: undefined }]);
  });
});

describe('errors ws reports as they come', () => {
  it("a bad compressed message: zlib's error (code, errno), and 1007", async () => {
    const server = await startRawServer((socket, req) => {
      socket.write(switchingProtocols(req.key, { 'Sec-WebSocket-Extensions': 'permessage-deflate' }));
      socket.write(frame({ opcode: Op.Text, rsv: RSV1, payload: Buffer.from([0xff, 0xff, 0xff, 0xff]) }));
    });
    closers.push(() => server.close());
    const c = new WebSocket(`ws://127.0.0.1:${server.port}/`);
    const [err] = (await withTimeout(once(c, 'error'), 5000, 'error')) as [Error & { code?: string; errno?: number; closeCode?: number }];
    assert.equal(err.code, 'Z_DATA_ERROR');
    assert.equal(typeof err.errno, 'number');
    assert.equal(err.closeCode, 1007);
    await withTimeout(once(c, 'close'), 7000, 'close');
  });

  it('terminate() from the error listener of a failed handshake is harmless', async () => {
    const c = new WebSocket('ws://127.0.0.1:1/');
    // Not events.once(): it would reject on the 'error' event this test expects.
    const closed = new Promise<[number]>((resolve) => c.on('close', (code: number) => resolve([code])));
    c.on('error', () => c.terminate());
    const [code] = (await withTimeout(closed, 5000, 'close')) as [number];
    assert.equal(code, 1006);
  });
});

describe('ordering', () => {
  it('close() after Blob sends waits for them: every Blob goes out before the close frame', async () => {
    const { wss, port } = await wsServer();
    const got: string[] = [];
    const closed = new Promise<number>((resolve) =>
      wss.on('connection', (ws: WebSocket) => {
        ws.on('message', (d: Buffer) => got.push(d.toString()));
        ws.on('close', (code: number) => resolve(code));
      }),
    );
    const c = new WebSocket(`ws://127.0.0.1:${port}/`);
    await once(c, 'open');
    c.send(new Blob(['one']));
    c.send('two');
    c.send(new Blob(['three']));
    c.close(4000);
    assert.equal(await withTimeout(closed, 5000, 'close'), 4000);
    assert.deepEqual(got, ['one', 'two', 'three']);
  });

  it("inside a socket's 'close' listener, the server's clients no longer hold it", async () => {
    const { wss, port } = await wsServer();
    const sizes = new Promise<number>((resolve) => wss.on('connection', (ws: WebSocket) => ws.on('close', () => resolve(wss.clients!.size))));
    const c = new WebSocket(`ws://127.0.0.1:${port}/`);
    await once(c, 'open');
    c.close();
    assert.equal(await withTimeout(sizes, 5000, 'close'), 0);
  });

  it("with permessage-deflate, a reply to the peer's last message goes out before the close answer", async () => {
    const { wss, port } = await wsServer({ perMessageDeflate: true });
    wss.on('connection', (ws: WebSocket) => ws.on('message', (d: Buffer) => ws.send(d, { binary: false })));
    const raw = await RawClient.open(port, { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate' } });
    const { deflateRawSync, constants } = await import('node:zlib');
    const z = deflateRawSync(Buffer.from('echo me'), { finishFlush: constants.Z_SYNC_FLUSH });
    raw.write(Buffer.concat([frame({ opcode: Op.Text, rsv: RSV1, payload: z.subarray(0, z.length - 4), mask: [1, 2, 3, 4] }), frame({ opcode: Op.Close, payload: closePayload(1000), mask: [1, 2, 3, 4] })]));
    await raw.waitFrames(2);
    assert.deepEqual(raw.frames.map((f) => f.opcode), [Op.Text, Op.Close]);
    raw.destroy();
  });
});
