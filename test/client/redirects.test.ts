/**
 * connect({ followRedirects }): each redirect status followed, relative
 * locations, the cap, credentials kept on the same origin and left behind
 * on another, and the redirects that are refused (wss:// to ws://). Real
 * sockeye servers whose verifyClient answers the redirects.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, HandshakeError, InvalidArgumentError, type UpgradeRequest, type VerifyResult } from '../../src/index.js';
import { testCert } from '../helpers/certs.js';
import { serverFrame, startRawServer, switchingProtocols } from '../helpers/ws-pair.js';

/** A server that answers each upgrade with `route(request)` (true accepts), and records the requests. */
async function server(route: (r: UpgradeRequest) => VerifyResult, tls?: { cert: Buffer; key: Buffer }) {
  const requests: UpgradeRequest[] = [];
  const s = createServer({
    keepalive: null,
    tls,
    handler: {},
    verifyClient: (r) => {
      requests.push(r);
      return route(r);
    },
  });
  const { port } = await s.listen(0, '127.0.0.1');
  return { s, port, requests, origin: `${tls ? 'wss' : 'ws'}://127.0.0.1:${port}` };
}

const to = (status: number, location: string): VerifyResult => ({ status, headers: { Location: location } });

describe('connect() with followRedirects', { concurrency: 3 }, () => {
  it('follows 301, 302, 303, 307 and 308, a relative Location resolved against the URL that answered; session.url is where it ended', async () => {
    for (const status of [301, 302, 303, 307, 308]) {
      const a = await server((r) => (r.path === '/old' ? to(status, 'new?x=1') : r.path === '/new' ? true : false));
      try {
        const client = await connect(`${a.origin}/old`, { followRedirects: true, keepalive: null });
        assert.equal(client.url.href, `${a.origin}/new?x=1`, `status ${status}`);
        assert.deepEqual(
          a.requests.map((r) => r.url),
          ['/old', '/new?x=1'],
        );
        client.close();
        await client.closed;
      } finally {
        await a.s.close();
      }
    }
  });

  it('on the same origin the credentials go on; to another origin Authorization and Cookie stay behind, other headers go on', async () => {
    const b = await server(() => true);
    const a = await server((r) => (r.path === '/same' ? to(302, '/landed') : r.path === '/away' ? to(307, `http://127.0.0.1:${b.port}/there`) : true));
    const headers = { Authorization: 'Bearer secret', Cookie: 'session=abc', 'X-Trace': 't1' };
    try {
      const same = await connect(`${a.origin}/same`, { followRedirects: true, keepalive: null, headers });
      const landed = a.requests.find((r) => r.path === '/landed')!;
      assert.deepEqual(landed.headers.get('authorization'), ['Bearer secret']);
      assert.deepEqual(landed.headers.get('cookie'), ['session=abc']);
      same.close();
      await same.closed;
      // http: in a Location is read as ws:, as for any URL given to connect().
      const away = await connect(`${a.origin}/away`, { followRedirects: true, keepalive: null, headers: Object.entries(headers) });
      assert.equal(away.url.href, `${b.origin}/there`);
      const there = b.requests[0];
      assert.equal(there.headers.get('authorization'), undefined);
      assert.equal(there.headers.get('cookie'), undefined);
      assert.deepEqual(there.headers.get('x-trace'), ['t1']);
      away.close();
      await away.closed;
    } finally {
      await a.s.close();
      await b.s.close();
    }
  });

  it('paused right after connect() resolves through a redirect, a client receives nothing until it resumes, even frames sent with the 101', async () => {
    // A raw server: the redirect, then a 101 with 200 frames in the same write, so they arrive in the 101's read.
    const raw = await startRawServer((socket, request) => {
      if (request.head.startsWith('GET /old ')) {
        socket.end('HTTP/1.1 302 Found\r\nLocation: /new\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      const frames = Array.from({ length: 200 }, (_, i) => serverFrame(0x1, `m${i}`));
      socket.write(Buffer.concat([Buffer.from(switchingProtocols(request.key), 'latin1'), ...frames]));
    });
    const got: string[] = [];
    try {
      const client = await connect(`ws://127.0.0.1:${raw.port}/old`, { followRedirects: true, keepalive: null, handler: { onMessage: (_c, m) => void got.push(m.text) } });
      client.pauseReading();
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(got, [], 'nothing delivered while paused');
      client.resumeReading();
      const deadline = Date.now() + 5000;
      while (got.length < 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      assert.deepEqual(got, Array.from({ length: 200 }, (_, i) => `m${i}`));
      client.terminate();
    } finally {
      await raw.close();
    }
  });

  it('reset right after the 101, through the redirect path: a client that sends at once gets its close (1006), never an unhandled error', async () => {
    // The server answers 101 and resets the connection at once. The session reaches the caller a turn before
    // it listens to its socket; what the caller sends meanwhile fails to write, and that error and the socket's
    // close must wait for the session, not crash the process.
    const raw = await startRawServer((socket, request) => {
      socket.write(switchingProtocols(request.key), 'latin1');
      socket.resetAndDestroy();
    });
    try {
      for (let i = 0; i < 10; i++) {
        const client = await connect(`ws://127.0.0.1:${raw.port}/`, { followRedirects: true, keepalive: null });
        for (let k = 0; k < 10; k++) client.send('x'.repeat(1000));
        const info = await Promise.race([client.closed, new Promise<null>((r) => setTimeout(() => r(null), 5000))]);
        assert.ok(info !== null, `connection ${i}: the session was never told its socket closed`);
        assert.equal(info.code, 1006);
        assert.equal(info.wasClean, false);
      }
    } finally {
      await raw.close();
    }
  });

  it('stops after maxRedirects with ERR_TOO_MANY_REDIRECTS; without followRedirects a redirect rejects with its Location', async () => {
    let n = 0;
    const a = await server(() => to(302, `/loop${++n}`));
    try {
      await assert.rejects(
        connect(`${a.origin}/start`, { followRedirects: true, maxRedirects: 3 }),
        (e: unknown) => e instanceof HandshakeError && e.code === 'ERR_TOO_MANY_REDIRECTS' && e.status === 302 && /more than 3 redirects/.test(e.message),
      );
      assert.equal(a.requests.length, 4, 'the first request and three redirects');
      await assert.rejects(connect(`${a.origin}/start`), (e: unknown) => e instanceof HandshakeError && e.code === 'ERR_UNEXPECTED_STATUS' && /redirecting to \/loop5/.test(e.message));
      assert.equal(a.requests.length, 5);
      await assert.rejects(connect(`${a.origin}/`, { followRedirects: true, maxRedirects: -1 }), (e: unknown) => e instanceof InvalidArgumentError && e.code === 'ERR_BAD_REDIRECTS');
    } finally {
      await a.s.close();
    }
  });

  it('refuses a redirect from wss:// to ws:// (the plain server sees nothing), and a Location that is not a URL', async () => {
    const cert = testCert();
    const plain = await server(() => true);
    const secure = await server((r) => (r.path === '/down' ? to(301, `${plain.origin}/clear`) : to(302, 'http://[bad')), { cert: cert.cert, key: cert.key });
    try {
      await assert.rejects(
        connect(`${secure.origin}/down`, { followRedirects: true, tls: { ca: cert.cert } }),
        (e: unknown) => e instanceof HandshakeError && e.code === 'ERR_BAD_REDIRECT' && /from wss:\/\/ to ws:/.test(e.message),
      );
      assert.equal(plain.requests.length, 0);
      await assert.rejects(
        connect(`${secure.origin}/bad`, { followRedirects: true, tls: { ca: cert.cert } }),
        (e: unknown) => e instanceof HandshakeError && e.code === 'ERR_BAD_REDIRECT' && /not a URL/.test(e.message),
      );
    } finally {
      await secure.s.close();
      await plain.s.close();
    }
  });
});
