import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request, Agent } from 'node:http';
import { createServer, connect } from '../../src/index.js';

function get(port: number, path: string, agent: Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('plain HTTP requests on the WebSocket port go to onHttpRequest, upgrades still work', async () => {
  const seen: string[] = [];
  const server = createServer({
    port: 0,
    onHttpRequest(req, res) {
      seen.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`hello ${req.url}`);
    },
    handler: { onMessage: (s, m) => void s.send(m.text) },
  });
  const { port } = await server.listen();
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    // Two requests over one keep-alive connection: the handoff must keep serving it.
    assert.deepEqual(await get(port, '/a', agent), { status: 200, body: 'hello /a' });
    assert.deepEqual(await get(port, '/b?x=1', agent), { status: 200, body: 'hello /b?x=1' });
    assert.deepEqual(seen, ['/a', '/b?x=1']);
    const c = await connect(`ws://127.0.0.1:${port}/`);
    c.send('ws works');
    const m = await c.messages().next();
    assert.equal(m.value?.text, 'ws works');
    c.close();
    assert.equal((await c.closed).wasClean, true);
  } finally {
    agent.destroy();
    await server.close();
  }
});

test('without onHttpRequest a plain request gets 426', async () => {
  const server = createServer({ port: 0, handler: {} });
  const { port } = await server.listen();
  const agent = new Agent({ keepAlive: false });
  try {
    const r = await get(port, '/', agent);
    assert.equal(r.status, 426);
  } finally {
    agent.destroy();
    await server.close();
  }
});

test('a later request trickled on a kept-alive HTTP connection is cut off at the head deadline (slowloris)', async () => {
  const { connect: netConnect } = await import('node:net');
  const server = createServer({ port: 0, handshakeTimeoutMs: 1000, onHttpRequest: (_req, res) => res.end('ok'), handler: {} });
  const { port } = await server.listen();
  const sock = netConnect(port, '127.0.0.1');
  let trickle: NodeJS.Timeout | undefined;
  try {
    let got = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => (got += d));
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.write('GET /a HTTP/1.1\r\nHost: x\r\n\r\n');
    const deadline = Date.now() + 5000;
    while (!got.includes('ok') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.ok(got.includes('200'), 'the first request was answered');
    // A second request, one byte every 100 ms, never finishing its head.
    const start = Date.now();
    const slow = 'GET /b HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'y'.repeat(1000);
    let i = 0;
    trickle = setInterval(() => {
      if (i < slow.length && !sock.destroyed) sock.write(slow[i++]);
    }, 100);
    const result = await Promise.race([closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('still open'), 10_000))]);
    assert.equal(result, 'closed', 'the trickling connection is dropped');
    // Deadline requirement: head timeout (1 s) + checking interval (1 s) + a generous margin for a loaded machine.
    assert.ok(Date.now() - start < 6000, `dropped after ${Date.now() - start} ms`);
  } finally {
    clearInterval(trickle);
    sock.destroy();
    await server.close();
  }
});
