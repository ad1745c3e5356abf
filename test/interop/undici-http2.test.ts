/**
 * undici 7's WebSocket over HTTP/2 (RFC 8441) against our server: an Agent
 * with allowH2 negotiates h2 by ALPN, sees SETTINGS_ENABLE_CONNECT_PROTOCOL
 * and opens the WebSocket as an extended CONNECT stream (it sends a
 * Sec-WebSocket-Key anyway and checks the accept it gets back). Text and
 * binary echo, a subprotocol, permessage-deflate, a clean close; the server
 * session says it runs on HTTP/2.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, WebSocket as UndiciWebSocket } from 'undici';
import { createServer, type ServerSession } from '../../src/index.js';
import { testCert } from '../helpers/certs.js';
import { within } from '../helpers/h2.js';

describe('undici WebSocket over HTTP/2', { timeout: 60_000 }, () => {
  const cert = testCert();
  const opened: ServerSession[] = [];
  const server = createServer({
    port: 0,
    tls: { key: cert.key, cert: cert.cert },
    perMessageDeflate: true,
    keepalive: null,
    protocols: {
      echo: {
        onOpen: (s) => void opened.push(s),
        onMessage: (s, m) => void s.send(m.data, { binary: m.binary }),
      },
    },
    onError: () => undefined,
  });
  const agent = new Agent({ allowH2: true, connect: { rejectUnauthorized: false } });
  after(async () => {
    await agent.close().catch(() => undefined);
    await within(server.close(), 10_000, 'server close');
  });

  it('opens an RFC 8441 stream, echoes text and binary compressed, closes cleanly', async () => {
    const { port } = await server.listen();
    const ws = new UndiciWebSocket(`wss://127.0.0.1:${port}/u`, { protocols: ['echo'], dispatcher: agent });
    ws.binaryType = 'arraybuffer';
    const messages: Array<string | ArrayBuffer> = [];
    ws.onmessage = (e) => void messages.push(e.data as string | ArrayBuffer);
    try {
      await within(new Promise<void>((resolve, reject) => {
        ws.onopen = () => resolve();
        ws.onerror = () => reject(new Error('undici reported an error'));
      }), 10_000, 'open');
      assert.equal(ws.protocol, 'echo');
      assert.match(ws.extensions, /permessage-deflate/);
      assert.equal(opened.length, 1);
      assert.equal(opened[0].http2, true, 'the server saw an extended CONNECT, not an upgrade');
      assert.equal(opened[0].request.httpVersion, '2');
      ws.send('hello over h2');
      const bin = new Uint8Array(100_000).map((_, i) => i % 251);
      ws.send(bin);
      await within((async () => { while (messages.length < 2) await new Promise((r) => setTimeout(r, 5)); })(), 10_000, 'echoes');
      assert.equal(messages[0], 'hello over h2');
      assert.deepEqual(new Uint8Array(messages[1] as ArrayBuffer), bin);
      const closed = new Promise<{ code: number; wasClean: boolean }>((resolve) => (ws.onclose = (e) => resolve({ code: e.code, wasClean: e.wasClean })));
      ws.close(1000);
      const c = await within(closed, 10_000, 'close');
      assert.deepEqual(c, { code: 1000, wasClean: true });
      const info = await within(opened[0].closed, 10_000, 'server close');
      assert.equal(info.code, 1000);
    } finally {
      if (ws.readyState !== ws.CLOSED) ws.close();
    }
  });
});
