/**
 * The demo server as a whole: the page over HTTP and every protocol over
 * WebSocket on the same port, over plain TCP and TLS, and a close that
 * ends every connection with 1001 and leaves no timer behind.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { fileURLToPath } from 'node:url';
import { connect, type ClientSession } from '../../src/index.js';
import { DEMO_PAGE_DIR, demoLimits, echoQueueBytes } from '../../src/demo/demo-server.js';
import { DEFAULT_SESSION_LIMITS } from '../../src/index.js';
import { PLACEHOLDER_HTML, startDemo } from './demo-fixture.js';
import { testCert } from '../helpers/certs.js';
import { RawClient, withTimeout } from '../helpers/ws-pair.js';

/**
 * GET without keep-alive (agent: false sends Connection: close). An idle
 * keep-alive connection, as fetch() leaves, holds server.close() until it
 * times out: see the note in the report on WebSocketServer.close().
 */
function fetchText(url: string, ca?: Buffer): Promise<{ status: number; type: string | null; body: string }> {
  const u = new URL(url);
  const get = u.protocol === 'https:' ? httpsGet : httpGet;
  return withTimeout(
    new Promise((resolve, reject) => {
      get({ host: u.hostname, port: u.port, path: u.pathname, agent: false, ca }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'] ?? null, body }));
      }).on('error', reject);
    }),
    10_000,
    `GET ${url}`,
  );
}

describe('demo server', () => {
  it('finds the demo page at the top of the repository', () => {
    // This test runs from dist/test/demo/, as the server module runs from dist/src/demo/.
    assert.equal(DEMO_PAGE_DIR, fileURLToPath(new URL('../../../demo-page/', import.meta.url)));
  });

  it('serves the page and speaks every protocol on one port', async () => {
    const fx = await startDemo();
    const clients: ClientSession[] = [];
    try {
      const page = await fetchText(`http://127.0.0.1:${fx.port}/`);
      assert.deepEqual(page, { status: 200, type: 'text/html; charset=utf-8', body: PLACEHOLDER_HTML });
      assert.equal((await fetchText(`http://127.0.0.1:${fx.port}/missing.js`)).status, 404);
      for (const protocol of ['dumb-increment-protocol', 'lws-mirror-protocol', 'lws-status', undefined]) {
        const c = await connect(`ws://127.0.0.1:${fx.port}/`, { protocol });
        clients.push(c);
        assert.equal(c.protocol, protocol);
      }
      const [dumb, mirror, status, echo] = clients;
      assert.equal((await withTimeout(dumb.messages().next(), 10_000, 'a number')).value?.text, '0');
      mirror.send('m');
      assert.equal((await withTimeout(mirror.messages().next(), 10_000, 'the mirror')).value?.text, 'm');
      assert.match((await withTimeout(status.messages().next(), 10_000, 'a status list')).value?.text ?? '', /^\{"version":"sockeye /);
      echo.send('e');
      assert.equal((await withTimeout(echo.messages().next(), 10_000, 'the echo')).value?.text, 'e');
      // close() ends every connection with 1001 and stops the counter's timer.
      await fx.demo.close();
      for (const c of clients) {
        const info = await withTimeout(c.closed, 10_000, 'the close');
        assert.equal(info.code, 1001);
      }
      assert.equal(fx.demo.dumbIncrement.running, false);
    } finally {
      for (const c of clients) c.terminate();
      await fx.close();
    }
  });

  it('serves https and wss with a certificate', async () => {
    const cert = testCert();
    const fx = await startDemo({ tls: { key: cert.key, cert: cert.cert } });
    try {
      const page = await fetchText(`https://127.0.0.1:${fx.port}/`, cert.ca);
      assert.deepEqual(page, { status: 200, type: 'text/html; charset=utf-8', body: PLACEHOLDER_HTML });
      const c = await connect(`wss://127.0.0.1:${fx.port}/`, { protocol: 'dumb-increment-protocol', tls: { ca: cert.ca } });
      const it = c.messages();
      assert.equal((await withTimeout(it.next(), 10_000, 'a number')).value?.text, '0');
      assert.equal((await withTimeout(it.next(), 10_000, 'a number')).value?.text, '1');
      c.close();
      await c.closed;
    } finally {
      await fx.close();
    }
  });

  it('with no mounts, answers plain HTTP with 426', async () => {
    const fx = await startDemo({ mounts: [] });
    try {
      const raw = await RawClient.connect(fx.port);
      raw.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      const r = await raw.waitRejection(10_000);
      assert.equal(r.status, 426);
    } finally {
      await fx.close();
    }
  });

  it('limits: none given are none set; maxQueuedBytes follows a raised maxMessageBytes; highWaterMark stays at most a quarter of maxQueuedBytes', () => {
    const MiB = 1024 * 1024;
    assert.equal(demoLimits(undefined), undefined);
    // The library's default queue is what the echo needs for the default 16 MiB messages.
    assert.equal(echoQueueBytes(16 * MiB), DEFAULT_SESSION_LIMITS.maxQueuedBytes);
    assert.equal(echoQueueBytes(1024), DEFAULT_SESSION_LIMITS.maxQueuedBytes);
    assert.deepEqual(demoLimits({ maxMessageBytes: 64 * MiB }), { maxMessageBytes: 64 * MiB, maxQueuedBytes: 136 * MiB, highWaterMark: DEFAULT_SESSION_LIMITS.highWaterMark });
    assert.deepEqual(demoLimits({ maxMessageBytes: 1024 }), { maxMessageBytes: 1024, maxQueuedBytes: DEFAULT_SESSION_LIMITS.maxQueuedBytes, highWaterMark: DEFAULT_SESSION_LIMITS.highWaterMark });
    assert.deepEqual(demoLimits({ maxMessageBytes: 64 * MiB, maxQueuedBytes: 2 * MiB }), { maxMessageBytes: 64 * MiB, maxQueuedBytes: 2 * MiB, highWaterMark: 512 * 1024 });
    assert.deepEqual(demoLimits({ maxQueuedBytes: 2 * MiB, highWaterMark: 3 * MiB }), { maxQueuedBytes: 2 * MiB, highWaterMark: 3 * MiB }, 'a highWaterMark given is kept');
    assert.deepEqual(demoLimits({ maxFragments: 10 }), { maxFragments: 10 });
  });
});
