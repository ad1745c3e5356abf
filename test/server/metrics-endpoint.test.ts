/**
 * The Prometheus endpoint (createServer({ metrics: { path } })): GET and
 * HEAD of the path, on the server's own port, answer server.metrics() in the
 * text format 0.0.4, which Prometheus's own `promtool check metrics` accepts
 * (parsed and linted: exit 0, nothing printed) after real traffic; keep-alive
 * scrapes; other methods get 405; over wss too, where a failed TLS
 * handshake is counted, and over HTTP/2, where refused extended CONNECTs
 * and plain requests count as failed handshakes. Without the option nothing changes (426 as before);
 * with onHttpRequest, it gets every other plain request. A bad path, or the
 * option with an attached `server`, fails at createServer(). Every server
 * listens on 127.0.0.1 port 0, every wait is bounded.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, createServer as createHttpServer, request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect } from 'node:net';
import { connect, createServer, InvalidArgumentError, PROMETHEUS_CONTENT_TYPE, renderPrometheus, type ClientSession } from '../../src/index.js';
import { echoHandler, startServer, waitUntil, withTimeout } from '../helpers/ws-pair.js';
import { testCert } from '../helpers/certs.js';
import { promtoolAvailable, promtoolCheckMetrics, requirePeer } from '../helpers/peers.js';
import { h2Connect, openStream, within } from '../helpers/h2.js';
import type { ClientHttp2Session } from 'node:http2';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** The client's port of the connection that carried it (the same for kept-alive requests). */
  localPort: number | undefined;
}

function get(port: number, path: string, options: { agent?: Agent; method?: string; tls?: boolean } = {}): Promise<Answer> {
  const ca = options.tls ? testCert().ca : undefined;
  return withTimeout(
    new Promise<Answer>((resolve, reject) => {
      const make = options.tls ? httpsRequest : request;
      const req = make({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', agent: options.agent, ca }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        const localPort = res.socket.localPort;
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, localPort }));
      });
      req.on('error', reject);
      req.end();
    }),
    5000,
    `${options.method ?? 'GET'} ${path}`,
  );
}

const SKIP_PROMTOOL = requirePeer('promtool', promtoolAvailable(), 'apt-get install prometheus');

describe('the metrics endpoint', () => {
  it('after real traffic, GET /metrics answers the snapshot, and promtool check metrics accepts it', { skip: SKIP_PROMTOOL }, async () => {
    const t = await startServer({
      metrics: { path: '/metrics' },
      keepalive: { pingAfterMs: 30, hangupAfterMs: 0 },
      handler: echoHandler(),
      verifyClient: (r) => r.path !== '/no',
    });
    const clients: ClientSession[] = [];
    try {
      const a = await connect(t.url('/'), { keepalive: null });
      clients.push(a);
      a.send('text');
      a.send(Buffer.from([1, 2]));
      const inbox = a.messages();
      await withTimeout(inbox.next(), 5000, 'echo 1');
      await withTimeout(inbox.next(), 5000, 'echo 2');
      await assert.rejects(connect(t.url('/no'), { keepalive: null }), /403/);
      t.server.broadcast('all');
      await waitUntil(() => t.server.metrics().pingRtt.count >= 1, 5000, 'an answered keepalive ping');
      const b = await connect(t.url('/'), { keepalive: null });
      b.close(4000, 'done');
      await withTimeout(b.closed, 5000, 'a close');
      await waitUntil(() => t.server.clients.size === 1, 5000, 'the session to end');

      const r = await get(t.port, '/metrics');
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], PROMETHEUS_CONTENT_TYPE);
      assert.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body));
      const check = promtoolCheckMetrics(r.body);
      assert.equal(check.output, '', 'promtool prints nothing');
      assert.equal(check.status, 0);
      // What the snapshot says is what was scraped (nothing moved in between but the ping timings).
      for (const line of [
        'sockeye_connections_open 1',
        'sockeye_connections_opened_total 2',
        'sockeye_connections_closed_total{code="4000"} 1',
        'sockeye_handshake_failures_total{status="403"} 1',
        'sockeye_messages_received_total{type="text"} 1',
        'sockeye_messages_received_total{type="binary"} 1',
        'sockeye_received_bytes_total{type="binary"} 2',
        'sockeye_messages_sent_total{type="text"} 2',
        'sockeye_sent_bytes_total{type="text"} 7',
        'sockeye_fanout_duration_seconds_count{op="broadcast"} 1',
      ]) {
        assert.ok(r.body.includes(`\n${line}\n`), `${line} in:\n${r.body}`);
      }
      assert.match(r.body, /\nsockeye_ping_rtt_seconds_count [1-9]\d*\n/);
      // Scrapes are not handshakes: nothing new is counted for them.
      assert.deepEqual(t.server.metrics().handshakeFailures, { '403': 1 });
    } finally {
      for (const c of clients) c.terminate();
      await t.server.close();
    }
  });

  it('the body is renderPrometheus() of server.metrics(); a query is ignored; HEAD has no body; other methods get 405', async () => {
    const t = await startServer({ metrics: { path: '/m' }, handler: {} });
    try {
      const r = await get(t.port, '/m?x=1');
      assert.equal(r.status, 200);
      assert.equal(r.body, renderPrometheus(t.server.metrics()));
      const head = await get(t.port, '/m', { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.body, '');
      assert.equal(head.headers['content-type'], PROMETHEUS_CONTENT_TYPE);
      const post = await get(t.port, '/m', { method: 'POST' });
      assert.equal(post.status, 405);
      assert.equal(post.headers.allow, 'GET, HEAD');
      // Another path is what it was without the option: 426, counted as a refused handshake.
      assert.equal((await get(t.port, '/other')).status, 426);
      assert.equal((await get(t.port, '/m/')).status, 426);
      assert.deepEqual(t.server.metrics().handshakeFailures, { '426': 2 });
    } finally {
      await t.server.close();
    }
  });

  it('keep-alive: scrapes share one connection; another path on it gets 426; WebSockets still upgrade on the port', async () => {
    const t = await startServer({ metrics: { path: '/metrics' }, handler: echoHandler() });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await get(t.port, '/metrics', { agent });
      const second = await get(t.port, '/metrics', { agent });
      assert.equal(first.status, 200);
      assert.equal(second.status, 200);
      const other = await get(t.port, '/nope', { agent });
      assert.ok(first.localPort !== undefined);
      assert.deepEqual([second.localPort, other.localPort], [first.localPort, first.localPort], 'one kept-alive connection');
      assert.equal(other.status, 426);
      assert.equal(other.headers.upgrade, 'websocket');
      const c = await connect(t.url('/metrics'), { keepalive: null });
      c.send('ws');
      assert.equal((await withTimeout(c.messages().next(), 5000, 'the echo')).value?.text, 'ws');
      c.terminate();
    } finally {
      agent.destroy();
      await t.server.close();
    }
  });

  it('with onHttpRequest: the metrics path is served by sockeye, every other plain request by onHttpRequest', async () => {
    const seen: string[] = [];
    const t = await startServer({
      metrics: { path: '/metrics' },
      handler: {},
      onHttpRequest(req, res) {
        seen.push(req.url ?? '');
        res.end('app');
      },
    });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      assert.equal((await get(t.port, '/', { agent })).body, 'app');
      assert.equal((await get(t.port, '/metrics', { agent })).status, 200);
      assert.equal((await get(t.port, '/metricsx')).body, 'app');
      assert.deepEqual(seen, ['/', '/metricsx']);
    } finally {
      agent.destroy();
      await t.server.close();
    }
  });

  it('without the option nothing changes: /metrics is a plain request like any other (426)', async () => {
    const t = await startServer({ handler: {} });
    try {
      const r = await get(t.port, '/metrics');
      assert.equal(r.status, 426);
      assert.deepEqual(t.server.metrics().handshakeFailures, { '426': 1 });
    } finally {
      await t.server.close();
    }
  });

  it('over wss: the endpoint answers over TLS, and a failed TLS handshake is counted', { skip: SKIP_PROMTOOL }, async () => {
    const { key, cert } = testCert();
    const t = await startServer({ tls: { key, cert }, metrics: { path: '/metrics' }, handler: {} });
    try {
      // Plain text where a ClientHello should be.
      await withTimeout(
        new Promise<void>((resolve) => {
          const s = netConnect({ host: '127.0.0.1', port: t.port }, () => s.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'));
          s.on('error', () => {});
          s.on('data', () => {});
          s.on('close', () => resolve());
        }),
        5000,
        'the server to drop a plain-text connection',
      );
      await waitUntil(() => t.server.metrics().tlsHandshakeFailures === 1, 5000, 'the TLS failure to be counted');
      const r = await get(t.port, '/metrics', { tls: true });
      assert.equal(r.status, 200);
      assert.ok(r.body.includes('\nsockeye_tls_handshake_failures_total 1\n'));
      const check = promtoolCheckMetrics(r.body);
      assert.equal(check.output, '');
      assert.equal(check.status, 0);
    } finally {
      await t.server.close();
    }
  });

  it('over HTTP/2 (wss, ALPN h2): GET and HEAD answer the snapshot; refused extended CONNECTs and other requests count as failed handshakes', { skip: SKIP_PROMTOOL }, async () => {
    const { key, cert } = testCert();
    const t = await startServer({ tls: { key, cert }, metrics: { path: '/metrics' }, handler: echoHandler(), path: '/ws', verifyClient: (r) => r.query.get('ok') === '1' });
    let session: ClientHttp2Session | undefined;
    const plain = (path: string, method = 'GET') =>
      within(
        new Promise<{ status: number; type: string | undefined; body: string }>((resolve, reject) => {
          const req = session!.request({ ':method': method, ':path': path });
          let body = '';
          req.setEncoding('utf8');
          req.on('data', (d: string) => (body += d));
          req.on('response', (h) => req.on('end', () => resolve({ status: Number(h[':status']), type: h['content-type'] as string | undefined, body })));
          req.on('error', reject);
          req.end();
        }),
        5000,
        `${method} ${path} over HTTP/2`,
      );
    try {
      ({ session } = await h2Connect(`https://127.0.0.1:${t.port}`));
      const refusedByPath = await openStream(session, '/elsewhere');
      assert.equal(refusedByPath.headers[':status'], 404);
      const refusedByVerify = await openStream(session, '/ws?ok=0');
      assert.equal(refusedByVerify.headers[':status'], 403);
      const other = await plain('/index.html');
      assert.equal(other.status, 426);
      const accepted = await openStream(session, '/ws?ok=1');
      assert.equal(accepted.headers[':status'], 200);
      await waitUntil(() => t.server.clients.size === 1, 5000, 'the HTTP/2 session to open');

      const m = await plain('/metrics');
      assert.equal(m.status, 200);
      assert.equal(m.type, PROMETHEUS_CONTENT_TYPE);
      assert.ok(m.body.includes('\nsockeye_connections_open 1\n'), m.body);
      assert.deepEqual(t.server.metrics().handshakeFailures, { 403: 1, 404: 1, 426: 1 });
      assert.ok(m.body.includes('sockeye_handshake_failures_total{status="404"} 1\n'), m.body);
      assert.ok(m.body.includes('sockeye_handshake_failures_total{status="426"} 1\n'));
      const check = promtoolCheckMetrics(m.body);
      assert.equal(check.output, '');
      assert.equal(check.status, 0);
      const head = await plain('/metrics', 'HEAD');
      assert.equal(head.status, 200);
      assert.equal(head.body, '');
      const post = await plain('/metrics', 'POST');
      assert.equal(post.status, 405);
      accepted.stream.destroy();
    } finally {
      session?.destroy();
      await t.server.close();
    }
  });

  it('a bad path, or the option with an attached server, fails at createServer()', () => {
    for (const path of ['metrics', '', '/a b', '/m?x', 42]) {
      assert.throws(
        () => createServer({ metrics: { path } as { path: string }, handler: {} }),
        (e: unknown) => e instanceof InvalidArgumentError && e.code === 'ERR_BAD_METRICS_PATH',
        String(path),
      );
    }
    const http = createHttpServer();
    assert.throws(
      () => createServer({ server: http, metrics: { path: '/metrics' }, handler: {} }),
      (e: unknown) => e instanceof InvalidArgumentError && e.code === 'ERR_BAD_METRICS_PATH' && /renderPrometheus/.test(e.message),
    );
    assert.equal(http.listenerCount('upgrade'), 0, 'nothing attached by a server that failed');
  });
});
