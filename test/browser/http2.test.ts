/**
 * Chromium opens WebSockets over HTTP/2 (RFC 8441): the page is served by
 * our server over HTTP/2 (ALPN h2), and the wss:// socket it opens to the
 * same origin goes on that connection as an extended CONNECT stream. The
 * server proves it: the session runs on an HTTP/2 stream, its request is
 * HTTP/2 with :protocol websocket, and no HTTP/1.1 upgrade ever arrived.
 * Text and binary echo with permessage-deflate (Chromium offers it), and a
 * clean close seen by both sides. With `http2: false`, the same page comes
 * over HTTP/1.1 and its WebSocket is an HTTP/1.1 upgrade.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { createServer, type CloseInfo, type ServerSession, type WebSocketServer } from '../../src/index.js';
import { testCert } from '../helpers/certs.js';
import { within } from '../helpers/h2.js';
import { chromiumSkip, launchChromium } from './chromium.js';

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>h2</title></head><body><script>
'use strict';
window.run = () => new Promise((resolve, reject) => {
  const ws = new WebSocket('wss://' + location.host + '/echo');
  ws.binaryType = 'arraybuffer';
  const got = [];
  ws.onerror = () => reject(new Error('WebSocket error'));
  ws.onopen = () => {
    ws.send('text over h2 '.repeat(100));
    ws.send(new Uint8Array(70000).map((_, i) => i % 253));
  };
  ws.onmessage = (e) => {
    got.push(typeof e.data === 'string' ? e.data : Array.from(new Uint8Array(e.data)).every((b, i) => b === i % 253) && e.data.byteLength);
    if (got.length === 2) ws.close(1000, 'page done');
  };
  ws.onclose = (e) => resolve({ got, code: e.code, reason: e.reason, wasClean: e.wasClean, extensions: ws.extensions });
});
</script></body></html>`;

interface Seen {
  pageVersions: string[];
  sessions: ServerSession[];
  closes: CloseInfo[];
}

async function serve(http2: boolean): Promise<{ server: WebSocketServer; seen: Seen; url: string }> {
  const cert = testCert();
  const seen: Seen = { pageVersions: [], sessions: [], closes: [] };
  const server = createServer({
    port: 0,
    tls: { key: cert.key, cert: cert.cert },
    http2,
    perMessageDeflate: true,
    keepalive: null,
    onError: () => undefined,
    onHttpRequest: (req, res) => {
      seen.pageVersions.push(req.httpVersion);
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(PAGE);
    },
    handler: {
      onOpen: (s) => void seen.sessions.push(s),
      onMessage: (s, m) => void s.send(m.data, { binary: m.binary }),
      onClose: (_s, info) => void seen.closes.push(info),
    },
  });
  const { port } = await server.listen();
  return { server, seen, url: `https://127.0.0.1:${port}/` };
}

describe('Chromium: WebSockets over HTTP/2 (RFC 8441)', { skip: chromiumSkip(), timeout: 90_000 }, () => {
  let browser: Browser | null = null;
  const servers: WebSocketServer[] = [];
  before(async () => {
    browser = await launchChromium({ ignoreCertificateErrors: true });
  });
  after(async () => {
    await browser?.close().catch(() => undefined);
    for (const s of servers) await within(s.close(), 10_000, 'server close').catch(() => undefined);
  });

  for (const http2 of [true, false]) {
    it(http2 ? 'a page served over HTTP/2 opens its WebSocket as an extended CONNECT stream' : 'with http2: false, the same page falls back to HTTP/1.1', async () => {
      const { server, seen, url } = await serve(http2);
      servers.push(server);
      const context = await browser!.newContext({ ignoreHTTPSErrors: true });
      try {
        const page = await context.newPage();
        await page.goto(url, { timeout: 20_000 });
        const result = await within(page.evaluate('window.run()') as Promise<{ got: Array<string | number | false>; code: number; reason: string; wasClean: boolean; extensions: string }>, 20_000, 'the page');
        assert.deepEqual(result.got, ['text over h2 '.repeat(100), 70000]);
        // The server's answer echoes the code without a reason (RFC 6455 section 5.5.1).
        assert.deepEqual([result.code, result.reason, result.wasClean], [1000, '', true]);
        assert.match(result.extensions, /permessage-deflate/);
        assert.deepEqual(seen.pageVersions, [http2 ? '2.0' : '1.1']);
        assert.equal(seen.sessions.length, 1);
        const s = seen.sessions[0];
        assert.equal(s.http2, http2, http2 ? 'the session runs on an HTTP/2 stream (no HTTP/1.1 upgrade)' : 'an HTTP/1.1 upgrade');
        assert.equal(s.request.httpVersion, http2 ? '2' : '1.1');
        assert.deepEqual(s.extensions, ['permessage-deflate']);
        await within((async () => { while (seen.closes.length === 0) await new Promise((r) => setTimeout(r, 10)); })(), 10_000, 'server close');
        assert.deepEqual([seen.closes[0].code, seen.closes[0].reason, seen.closes[0].wasClean], [1000, 'page done', true]);
      } finally {
        await context.close().catch(() => undefined);
      }
    });
  }
});
