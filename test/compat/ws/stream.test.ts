/**
 * createWebSocketStream() (doc/ws.md): a Duplex over a sockeye/ws socket,
 * with backpressure both ways, half-close, errors and destroy().
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { Readable, Writable } from 'node:stream';
import { WebSocket, WebSocketServer, createWebSocketStream } from '../../../src/compat/ws/index.js';
import { RawClient, withTimeout, waitUntil } from '../../helpers/ws-pair.js';

const servers: WebSocketServer[] = [];
after(async () => {
  for (const s of servers) {
    for (const c of s.clients ?? []) c.terminate();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
});

async function server(onSocket: (ws: WebSocket) => void, options: { perMessageDeflate?: boolean } = {}): Promise<number> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', ...options });
  servers.push(wss);
  wss.on('connection', onSocket);
  await once(wss, 'listening');
  return (wss.address() as AddressInfo).port;
}

describe('createWebSocketStream', () => {
  it('writes before open wait for it; each chunk is a message; the echo is read back in order', async () => {
    const port = await server((ws) => ws.on('message', (d: Buffer, binary: boolean) => ws.send(d, { binary })));
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    const duplex = createWebSocketStream(ws);
    for (let i = 0; i < 100; i++) duplex.write(Buffer.from(`chunk ${i};`));
    let got = '';
    duplex.on('data', (d: Buffer) => (got += d.toString()));
    const want = Array.from({ length: 100 }, (_, i) => `chunk ${i};`).join('');
    await waitUntil(() => got === want, 5000, 'the echo');
    duplex.destroy();
    await withTimeout(once(ws, 'close'), 5000, 'close');
  });

  it('object mode: a text message is read as a string, a binary one as a Buffer', async () => {
    const port = await server((ws) => {
      ws.send('text');
      ws.send(Buffer.from([1, 2]));
    });
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    const duplex = createWebSocketStream(ws, { readableObjectMode: true });
    const chunks: unknown[] = [];
    duplex.on('data', (d: unknown) => chunks.push(d));
    await waitUntil(() => chunks.length === 2, 5000, 'two chunks');
    assert.equal(chunks[0], 'text');
    assert.deepEqual(chunks[1], Buffer.from([1, 2]));
    duplex.destroy();
  });

  it('ending the writable side closes the WebSocket; the peer close ends the readable side', async () => {
    const closed = new Promise<number>((resolve) => void server((ws) => ws.on('close', (code: number) => resolve(code))).then((p) => (port = p)));
    let port = 0;
    await waitUntil(() => port !== 0, 5000, 'port');
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    const duplex = createWebSocketStream(ws);
    duplex.resume();
    const ended = once(duplex, 'end');
    const finished = once(duplex, 'finish');
    const streamClosed = once(duplex, 'close');
    duplex.end(Buffer.from('last'));
    await withTimeout(finished, 5000, 'finish');
    await withTimeout(ended, 5000, 'end');
    assert.equal(await withTimeout(closed, 5000, 'server close'), 1005);
    assert.equal(ws.readyState, WebSocket.CLOSED);
    await withTimeout(streamClosed, 5000, 'stream close');
  });

  it('a full readable buffer pauses the socket; reading resumes it', async () => {
    const port = await server((ws) => {
      for (let i = 0; i < 64; i++) ws.send(Buffer.alloc(1024, i));
    });
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    const duplex = createWebSocketStream(ws, { readableHighWaterMark: 1024 });
    await waitUntil(() => ws.isPaused, 5000, 'the socket paused');
    let bytes = 0;
    duplex.on('data', (d: Buffer) => (bytes += d.length));
    await waitUntil(() => bytes === 64 * 1024, 5000, 'every byte');
    assert.equal(ws.isPaused, false);
    duplex.destroy();
  });

  it("the WebSocket's error destroys the stream with it", async () => {
    const port = await server(() => {});
    // A raw server would be needed to send a bad frame to the client; a bad frame to the server is simpler.
    const wss = servers[servers.length - 1];
    const serverStream = new Promise<Error>((resolve) =>
      wss.on('connection', (ws: WebSocket) => {
        const d = createWebSocketStream(ws);
        d.on('error', resolve);
        d.resume();
      }),
    );
    const raw = await RawClient.open(port);
    raw.write(Buffer.from([0x81, 0x01, 0x61])); // unmasked: a protocol error (RFC 6455 section 5.1)
    const err = await withTimeout(serverStream, 5000, 'stream error');
    assert.equal((err as Error & { code?: string }).code, 'WS_ERR_EXPECTED_MASK');
    raw.destroy();
  });

  it('destroy() terminates an open WebSocket', async () => {
    const peerClosed = new Promise<number>((resolve) => void server((ws) => ws.on('close', (code: number) => resolve(code))).then((p) => (port = p)));
    let port = 0;
    await waitUntil(() => port !== 0, 5000, 'port');
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    await once(ws, 'open');
    const duplex = createWebSocketStream(ws);
    duplex.destroy();
    await withTimeout(once(duplex, 'close'), 5000, 'stream close');
    assert.equal(ws.readyState, WebSocket.CLOSED);
    assert.equal(await withTimeout(peerClosed, 5000, 'peer close'), 1006);
  });

  it('destroy() while a received message is being decompressed: a corrupt one still errors the stream (zlib\'s code)', async () => {
    const port = await server(
      (ws) => {
        // A compressed text frame whose deflate data starts a block of the reserved type 3 (sent once the client is open).
        setTimeout(() => (ws._socket as Socket).write(Buffer.from('c10107', 'hex')), 50);
      },
      { perMessageDeflate: true },
    );
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: true });
    const duplex = createWebSocketStream(ws);
    const failed = new Promise<Error>((resolve) => duplex.on('error', resolve));
    const streamClosed = new Promise<void>((resolve) => duplex.on('close', () => resolve()));
    await once(ws, 'open');
    (ws._socket as Socket).once('data', () => duplex.destroy());
    const err = await withTimeout(failed, 5000, 'stream error');
    assert.equal((err as Error & { code?: string }).code, 'Z_DATA_ERROR');
    await withTimeout(streamClosed, 5000, 'stream close');
  });

  it('pipeline: a readable of 1,000 chunks through the socket to an echo and back into a writable', async () => {
    const port = await server((ws) => ws.on('message', (d: Buffer) => ws.send(d)));
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    const duplex = createWebSocketStream(ws);
    const received: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        received.push(chunk.toString());
        if (received.length === 1000) duplex.end();
        cb();
      },
    });
    const source = Readable.from(Array.from({ length: 1000 }, (_, i) => Buffer.from(String(i))));
    source.pipe(duplex, { end: false });
    await withTimeout(pipeline(duplex, sink), 10_000, 'pipeline');
    assert.deepEqual(received, Array.from({ length: 1000 }, (_, i) => String(i)));
  });
});
