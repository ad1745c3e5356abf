/**
 * Http2Pool, the client's HTTP/2 connections by origin (one per Context),
 * driven directly against a cleartext node:http2 server on 127.0.0.1: one
 * dial shared by concurrent waiters; the server's
 * SETTINGS_MAX_CONCURRENT_STREAMS per connection, more connections up to
 * maxConnections, then a queue; cancel(); an origin found unavailable is
 * remembered, other dial errors are not; an idle connection closes after
 * idleTimeoutMs and is taken again before; GOAWAY tells the members and
 * retires the connection; close() ends it all.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import { HandshakeError, TransportError } from '../../src/core/errors.js';
import { Http2Pool, type Http2AcquireOptions, type PooledHttp2Connection } from '../../src/transport/http2-pool.js';
import { TimerWheel } from '../../src/transport/timer-wheel.js';
import { within } from '../helpers/h2.js';
import { waitUntil } from '../helpers/ws-pair.js';

interface Fixture {
  origin: string;
  server: http2.Http2Server;
  serverSessions: Set<http2.ServerHttp2Session>;
  dials: number;
  clients: http2.ClientHttp2Session[];
  options(extra?: Partial<Http2AcquireOptions>): Http2AcquireOptions;
  close(): Promise<void>;
}

async function fixture(maxConcurrentStreams: number): Promise<Fixture> {
  const server = http2.createServer({ settings: { maxConcurrentStreams, enableConnectProtocol: true } });
  const serverSessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    serverSessions.add(s);
    s.on('error', () => undefined);
    s.once('close', () => serverSessions.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const f: Fixture = {
    origin,
    server,
    serverSessions,
    dials: 0,
    clients: [],
    options: (extra = {}) => ({
      maxConnections: 2,
      idleTimeoutMs: 60_000,
      dial: () => {
        f.dials++;
        const s = http2.connect(origin);
        f.clients.push(s);
        s.on('error', () => undefined);
        return new Promise<http2.ClientHttp2Session>((resolve, reject) => {
          s.once('remoteSettings', () => resolve(s));
          s.once('close', () => reject(new TransportError('ERR_CONNECTION_CLOSED', 'closed')));
        });
      },
      unavailable: (e) => e instanceof HandshakeError && e.code === 'ERR_HTTP2_UNAVAILABLE',
      ...extra,
    }),
    close: async () => {
      for (const c of f.clients) c.destroy();
      for (const s of serverSessions) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
  return f;
}

const KEY = 'ws://origin|';

describe('Http2Pool', { timeout: 60_000 }, () => {
  it('concurrent waiters share one dial; a connection carries the server\'s SETTINGS_MAX_CONCURRENT_STREAMS, then another opens, then waiters queue', async () => {
    const f = await fixture(2);
    const timers = new TimerWheel(5);
    const pool = new Http2Pool(timers);
    try {
      const two = await Promise.all([pool.acquire(KEY, f.options()).promise, pool.acquire(KEY, f.options()).promise]);
      assert.equal(f.dials, 1, 'one dial for both');
      assert.equal(two[0], two[1]);
      assert.equal(two[0].maxStreams, 2);
      assert.equal(two[0].inUse, 2);
      const third = await pool.acquire(KEY, f.options()).promise;
      assert.notEqual(third, two[0], 'the first is full: a second connection');
      assert.equal(f.dials, 2);
      await pool.acquire(KEY, f.options()).promise;
      // Both full, maxConnections 2: the fifth waits, and gets the slot released first.
      let fifth: PooledHttp2Connection | null = null;
      const waiting = pool.acquire(KEY, f.options());
      void waiting.promise.then((c) => (fifth = c));
      const cancelled = pool.acquire(KEY, f.options());
      let cancelledGot = false;
      void cancelled.promise.then(() => (cancelledGot = true));
      cancelled.cancel();
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(fifth, null);
      assert.equal(f.dials, 2, 'no third connection');
      pool.release(KEY, two[0], null);
      await waitUntil(() => fifth !== null, 2000, 'the queued waiter');
      assert.equal(fifth, two[0]);
      pool.release(KEY, third, null);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(cancelledGot, false, 'a cancelled waiter gets nothing');
      assert.equal(third.inUse, 1);
      assert.equal(pool.connections(KEY).length, 2);
    } finally {
      pool.close();
      timers.stop();
      await f.close();
    }
  });

  it('an origin found unavailable is remembered; another dial error is not', async () => {
    const f = await fixture(10);
    const timers = new TimerWheel(5);
    const pool = new Http2Pool(timers);
    try {
      let dials = 0;
      const unavailable = new HandshakeError('ERR_HTTP2_UNAVAILABLE', 'no h2 here');
      const opts = f.options({
        dial: () => {
          dials++;
          return Promise.reject(unavailable);
        },
      });
      const [a, b] = [pool.acquire('u', opts), pool.acquire('u', opts)];
      await assert.rejects(a.promise, (e) => e === unavailable);
      await assert.rejects(b.promise, (e) => e === unavailable);
      await assert.rejects(pool.acquire('u', opts).promise, (e) => e === unavailable);
      assert.equal(dials, 1, 'one dial, remembered');
      const refused = new TransportError('ERR_CONNECT', 'refused');
      let otherDials = 0;
      const other = f.options({
        dial: () => {
          otherDials++;
          return Promise.reject(refused);
        },
      });
      await assert.rejects(pool.acquire('r', other).promise, (e) => e === refused);
      await assert.rejects(pool.acquire('r', other).promise, (e) => e === refused);
      assert.equal(otherDials, 2, 'a connect failure is tried again next time');
    } finally {
      pool.close();
      timers.stop();
      await f.close();
    }
  });

  it('an idle connection is unreferenced, taken again before idleTimeoutMs, closed after it', async () => {
    const f = await fixture(10);
    const timers = new TimerWheel(5);
    const pool = new Http2Pool(timers);
    try {
      const opts = f.options({ idleTimeoutMs: 150 });
      const c = await pool.acquire(KEY, opts).promise;
      pool.release(KEY, c, null);
      await new Promise((r) => setTimeout(r, 50));
      const again = await pool.acquire(KEY, opts).promise;
      assert.equal(again, c, 'taken again while idle');
      await new Promise((r) => setTimeout(r, 250));
      assert.equal(c.session.closed, false, 'in use: the idle timer was cancelled');
      pool.release(KEY, c, null);
      await within(new Promise((r) => c.session.once('close', r)), 2000, 'the idle connection to close');
      assert.equal(pool.connections(KEY).length, 0);
      const fresh = await pool.acquire(KEY, opts).promise;
      assert.notEqual(fresh, c);
      assert.equal(f.dials, 2);
    } finally {
      pool.close();
      timers.stop();
      await f.close();
    }
  });

  it('GOAWAY tells the connection\'s members and retires it; close() ends everything', async () => {
    const f = await fixture(10);
    const timers = new TimerWheel(5);
    const pool = new Http2Pool(timers);
    try {
      const c = await pool.acquire(KEY, f.options()).promise;
      const codes: number[] = [];
      c.members.add({ goaway: (code) => void codes.push(code) });
      c.members.add({ goaway: (code) => void codes.push(code) });
      [...f.serverSessions][0].goaway(http2.constants.NGHTTP2_NO_ERROR);
      await waitUntil(() => codes.length === 2, 2000, 'the members to hear of the GOAWAY');
      assert.deepEqual(codes, [0, 0]);
      assert.equal(c.retired, true);
      const next = await pool.acquire(KEY, f.options()).promise;
      assert.notEqual(next, c, 'a retired connection takes no new stream');
      // close(): the waiters are told, the connections end, nothing more is handed out.
      const full = await fixture(1);
      try {
        const one = await pool.acquire('full', full.options({ maxConnections: 1 })).promise;
        const waiter = pool.acquire('full', full.options({ maxConnections: 1 }));
        pool.close();
        await assert.rejects(waiter.promise, { code: 'ERR_ABORTED' });
        await assert.rejects(pool.acquire('full', full.options()).promise, { code: 'ERR_ABORTED' });
        assert.equal(one.retired, true);
      } finally {
        await full.close();
      }
    } finally {
      pool.close();
      timers.stop();
      await f.close();
    }
  });
});
