/**
 * Frames that arrive in the same read as the opening handshake are processed,
 * not lost. RFC 6455 section 4.1: "the server may send data immediately after
 * the handshake"; likewise a client may send its first frames right after its
 * request without waiting for the 101 (nothing in section 4 forbids it, and
 * pipelining clients do). Each test writes the head and the frames with one
 * write() call, so on loopback they travel in one segment and the receiver
 * sees them in one read.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect, createServer, type CloseInfo, type Message } from '../../src/index.js';
import { testCert } from '../helpers/certs.js';
import {
  RawClient,
  RawFrameDecoder,
  clientFrame,
  closePayload,
  decodeClose,
  newKey,
  pseudoRandomBytes,
  serverFrame,
  startRawServer,
  startServer,
  switchingProtocols,
  upgradeRequest,
  waitUntil,
  withTimeout,
} from '../helpers/ws-pair.js';

describe('server: frames in the same packet as the upgrade request', () => {
  for (const scheme of ['ws', 'wss'] as const) {
    it(`over ${scheme}://: a text, a binary and a ping written with the request are all handled, in order`, async () => {
      const cert = scheme === 'wss' ? testCert() : null;
      const received: Message[] = [];
      const pings: string[] = [];
      const order: string[] = [];
      const t = await startServer({
        ...(cert ? { tls: { key: cert.key, cert: cert.cert } } : {}),
        handler: {
          onOpen() {
            order.push('open');
          },
          onMessage(session, m) {
            order.push('message');
            received.push(m);
            session.send(m.data, { binary: m.binary });
          },
          onPing(_s, data) {
            order.push('ping');
            pings.push(data.toString());
          },
        },
      });
      const raw = await RawClient.connect(t.port, cert ? { tls: { ca: cert.ca } } : {});
      try {
        const bin = pseudoRandomBytes(300, 1);
        raw.write(Buffer.concat([Buffer.from(upgradeRequest({ key: newKey() })), clientFrame(0x1, 'early bird'), clientFrame(0x2, bin), clientFrame(0x9, 'p1')]));
        const head = await raw.waitHead();
        assert.equal(head.status, 101);
        await waitUntil(() => received.length === 2 && pings.length === 1, 5000, 'both messages and the ping at the server');
        assert.deepEqual(order, ['open', 'message', 'message', 'ping']);
        assert.equal(received[0].binary, false);
        assert.equal(received[0].text, 'early bird');
        assert.equal(received[1].binary, true);
        assert.deepEqual(received[1].data, bin);
        assert.deepEqual(pings, ['p1']);
        // The answers: two echoes and the pong (section 5.5.3), unmasked server frames.
        const frames = await raw.waitFrames(3);
        const byType = frames.map((f) => [f.opcode, f.masked, f.payload.toString('latin1')]);
        assert.deepEqual(
          byType.filter(([op]) => op !== 0xa),
          [
            [0x1, false, 'early bird'],
            [0x2, false, bin.toString('latin1')],
          ],
        );
        assert.deepEqual(
          byType.filter(([op]) => op === 0xa),
          [[0xa, false, 'p1']],
        );
      } finally {
        raw.destroy();
        await t.server.close();
      }
    });
  }

  it('half a frame in the request packet and the rest later is joined correctly', async () => {
    const got: string[] = [];
    const t = await startServer({
      handler: {
        onMessage(_s, m) {
          got.push(m.text);
        },
      },
    });
    const raw = await RawClient.connect(t.port);
    try {
      const frame = clientFrame(0x1, 'split across the handshake packet');
      raw.write(Buffer.concat([Buffer.from(upgradeRequest()), frame.subarray(0, 5)]));
      assert.equal((await raw.waitHead()).status, 101);
      raw.write(frame.subarray(5));
      await waitUntil(() => got.length === 1, 5000, 'the message');
      assert.deepEqual(got, ['split across the handshake packet']);
    } finally {
      raw.destroy();
      await t.server.close();
    }
  });

  it('a close frame in the request packet: the session opens, closes with that code, and answers it', async () => {
    const closes: CloseInfo[] = [];
    const t = await startServer({
      handler: {
        onClose(_s, info) {
          closes.push(info);
        },
      },
    });
    const raw = await RawClient.connect(t.port);
    try {
      raw.write(Buffer.concat([Buffer.from(upgradeRequest()), clientFrame(0x8, closePayload(4321, 'hi and bye'))]));
      assert.equal((await raw.waitHead()).status, 101);
      const { code } = await raw.waitClose();
      assert.equal(code, 4321);
      await waitUntil(() => closes.length === 1, 5000, 'the server-side close');
      assert.equal(closes[0].code, 4321);
      assert.equal(closes[0].reason, 'hi and bye');
      assert.equal(closes[0].wasClean, true);
    } finally {
      raw.destroy();
      await t.server.close();
    }
  });

  it('attached to node:http: frames in the request packet (the `head` of the upgrade event) are handled', async () => {
    const http = createHttpServer((_req, res) => res.end('plain'));
    const got: string[] = [];
    const ws = createServer({
      server: http,
      keepalive: null,
      handler: {
        onMessage(session, m) {
          got.push(m.text);
          session.send(`echo:${m.text}`);
        },
      },
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', () => resolve()));
    const raw = await RawClient.connect((http.address() as AddressInfo).port);
    try {
      raw.write(Buffer.concat([Buffer.from(upgradeRequest()), clientFrame(0x1, 'one'), clientFrame(0x1, 'two')]));
      assert.equal((await raw.waitHead()).status, 101);
      const frames = await raw.waitFrames(2);
      assert.deepEqual(
        frames.map((f) => f.payload.toString()),
        ['echo:one', 'echo:two'],
      );
      assert.deepEqual(got, ['one', 'two']);
    } finally {
      raw.destroy();
      await ws.close();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    }
  });
});

describe('client: frames in the same packet as the 101 answer', () => {
  it('a text frame written with the 101 is delivered through messages()', async () => {
    const raw = await startRawServer((socket, req) => {
      socket.write(Buffer.concat([Buffer.from(switchingProtocols(req.key)), serverFrame(0x1, 'hello right away'), serverFrame(0x2, Buffer.from([1, 2, 3]))]));
    });
    try {
      const c = await connect(`ws://127.0.0.1:${raw.port}/`, { keepalive: null });
      const inbox = c.messages();
      const a = await withTimeout(inbox.next(), 5000, 'the first message');
      assert.equal(a.value?.binary, false);
      assert.equal(a.value?.text, 'hello right away');
      const b = await withTimeout(inbox.next(), 5000, 'the second message');
      assert.equal(b.value?.binary, true);
      assert.deepEqual(b.value?.data, Buffer.from([1, 2, 3]));
      c.terminate();
    } finally {
      await raw.close();
    }
  });

  it('a text frame written with the 101 reaches onMessage, after onOpen', async () => {
    const raw = await startRawServer((socket, req) => {
      socket.write(Buffer.concat([Buffer.from(switchingProtocols(req.key)), serverFrame(0x1, 'early')]));
    });
    try {
      const order: string[] = [];
      let done!: () => void;
      const got = new Promise<void>((r) => (done = r));
      const c = await connect(`ws://127.0.0.1:${raw.port}/`, {
        keepalive: null,
        handler: {
          onOpen() {
            order.push('open');
          },
          onMessage(_s, m) {
            order.push(`message:${m.text}`);
            done();
          },
        },
      });
      await withTimeout(got, 5000, 'the message');
      assert.deepEqual(order, ['open', 'message:early']);
      c.terminate();
    } finally {
      await raw.close();
    }
  });

  it('a ping written with the 101 is answered with a masked pong; a close written with it closes the session', async () => {
    const fromClient = new RawFrameDecoder();
    const raw = await startRawServer((socket, req) => {
      socket.on('data', (chunk: Buffer) => fromClient.push(chunk));
      fromClient.push(req.rest);
      socket.write(Buffer.concat([Buffer.from(switchingProtocols(req.key)), serverFrame(0x9, 'are you there'), serverFrame(0x8, closePayload(4000, 'done'))]));
    });
    try {
      const c = await connect(`ws://127.0.0.1:${raw.port}/`, { keepalive: null });
      const info = await withTimeout(c.closed, 5000, 'the close');
      assert.equal(info.code, 4000);
      assert.equal(info.reason, 'done');
      await waitUntil(() => fromClient.frames.length >= 2, 5000, 'the pong and the close answer');
      const [pong, close] = fromClient.frames;
      assert.equal(pong.opcode, 0xa);
      assert.equal(pong.masked, true, 'client frames are masked (section 5.3)');
      assert.equal(pong.payload.toString(), 'are you there');
      assert.equal(close.masked, true);
      assert.equal(decodeClose(close).code, 4000);
    } finally {
      await raw.close();
    }
  });
});
