/**
 * server.metrics() over real sockets (src/server/metrics.ts and the counters
 * the sessions share, src/transport/session-counters.ts): clients exchange
 * text and binary messages, whole, streamed and compressed; handshakes are
 * refused (403 from verifyClient, 426 for a bad version, 404 for a path);
 * sends are dropped over maxQueuedBytes and after close, and answer
 * 'backpressure'; keepalive pings are answered; broadcast() and publish()
 * fan out, also across a broker; sessions close with various codes. Each
 * time the snapshot holds exactly what happened, counted from what the
 * sends answered and what the peers saw. Two servers count apart (no
 * module-level state). Every server listens on 127.0.0.1 port 0, every
 * wait is bounded.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { connect, LocalBrokerHub, type ClientSession, type MetricsSnapshot, type SendStatus, type ServerHandler, type ServerSession } from '../../src/index.js';
import { echoHandler, startServer, upgradeRequest, waitUntil, withTimeout, type TestServer } from '../helpers/ws-pair.js';

/** Sends `request` on a raw socket and resolves with the status line of the answer. */
function rawStatusLine(port: number, request: string): Promise<string> {
  return withTimeout(
    new Promise<string>((resolve, reject) => {
      const socket = netConnect({ host: '127.0.0.1', port });
      let text = '';
      socket.setEncoding('latin1');
      socket.on('data', (d: string) => (text += d));
      socket.on('error', reject);
      socket.on('close', () => resolve(text.split('\r\n')[0]));
      socket.write(request);
    }),
    5000,
    'the answer to a raw request',
  );
}

/** Counts each status in `statuses`. */
function tally(statuses: SendStatus[]): Record<SendStatus, number> {
  const t: Record<SendStatus, number> = { sent: 0, queued: 0, backpressure: 0, dropped: 0 };
  for (const s of statuses) t[s]++;
  return t;
}

async function next(c: ClientSession, what: string): Promise<{ binary: boolean; data: Buffer; text: string }> {
  const r = await withTimeout(c.messages().next(), 5000, what);
  assert.ok(!r.done, `${what}: the session ended`);
  return r.value;
}

describe('server.metrics()', () => {
  it('a new server: everything at 0, histograms empty, the broker block at 0', async () => {
    const t = await startServer({ handler: {} });
    try {
      const m = t.server.metrics();
      assert.deepEqual(
        { ...m, pingRtt: m.pingRtt.count, fanOutDuration: [m.fanOutDuration.broadcast.count, m.fanOutDuration.publish.count, m.fanOutDuration.remote.count] },
        {
          connectionsOpen: 0,
          connectionsOpened: 0,
          connectionsClosed: {},
          handshakeFailures: {},
          tlsHandshakeFailures: 0,
          messagesReceived: { text: 0, binary: 0 },
          bytesReceived: { text: 0, binary: 0 },
          messagesSent: { text: 0, binary: 0 },
          bytesSent: { text: 0, binary: 0 },
          droppedSends: { closed: 0, limit: 0 },
          backpressure: 0,
          queuedBytes: 0,
          pingRtt: 0,
          fanOutDuration: [0, 0, 0],
          broker: { publicationsSent: 0, publicationsReceived: 0, deliveries: 0, gaps: 0, errors: {} },
        },
      );
      assert.ok(m.pingRtt.buckets.length > 5 && m.pingRtt.buckets.every((b) => b.count === 0));
      // A snapshot is plain data.
      assert.deepEqual(JSON.parse(JSON.stringify(m)), m);
    } finally {
      await t.server.close();
    }
  });

  it('messages and bytes each way by type, refused handshakes by status, closes by code', async () => {
    const t = await startServer({
      handler: echoHandler(),
      // Messages taken piece by piece: each is counted once, on its last piece, with all its bytes.
      protocols: { stream: { onFragment: (s, f) => void (f.last && s.send('done')) } },
      verifyClient: (request) => request.path !== '/forbidden',
    });
    const clients: ClientSession[] = [];
    try {
      const a = await connect(t.url('/'), { keepalive: null });
      clients.push(a);
      a.send('hello'); // text, 5 bytes
      a.send(Buffer.from([1, 2, 3])); // binary, 3 bytes
      a.send('héllo'); // text, 6 bytes
      assert.equal((await next(a, 'echo 1')).text, 'hello');
      assert.deepEqual((await next(a, 'echo 2')).data, Buffer.from([1, 2, 3]));
      assert.equal((await next(a, 'echo 3')).text, 'héllo');

      // A message streamed in three frames is one message of 4 + 4 + 2 bytes; its answer one of 2.
      const b = await connect(t.url('/'), { keepalive: null, protocol: 'stream' });
      clients.push(b);
      const w = b.stream({ binary: false });
      w.write('abcd');
      w.write('efgh');
      w.end('ij');
      assert.equal((await next(b, 'the answer to a stream')).text, 'done');

      // Refused: verifyClient (403), a bad version (426), a plain request (426).
      await assert.rejects(connect(t.url('/forbidden'), { keepalive: null }), /403/);
      assert.match(await rawStatusLine(t.port, upgradeRequest({ headers: { 'Sec-WebSocket-Version': '8' } })), /^HTTP\/1\.1 426 /);
      assert.match(await rawStatusLine(t.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'), /^HTTP\/1\.1 426 /);

      let m = t.server.metrics();
      assert.equal(m.connectionsOpen, 2);
      assert.equal(m.connectionsOpened, 2);
      assert.deepEqual(m.handshakeFailures, { '403': 1, '426': 2 });
      assert.deepEqual(m.messagesReceived, { text: 3, binary: 1 });
      assert.deepEqual(m.bytesReceived, { text: 5 + 6 + 10, binary: 3 });
      assert.deepEqual(m.messagesSent, { text: 3, binary: 1 });
      assert.deepEqual(m.bytesSent, { text: 5 + 6 + 4, binary: 3 });

      // Closes: 1000 and 4001 from clients, 1006 for one that vanished, 4002 from the server.
      const c = await connect(t.url('/'), { keepalive: null });
      const d = await connect(t.url('/'), { keepalive: null });
      clients.push(c, d);
      await waitUntil(() => t.server.clients.size === 4, 5000, 'four sessions');
      a.close(1000);
      b.close(4001, 'bye');
      c.terminate();
      await Promise.all([a.closed, b.closed]);
      await waitUntil(() => t.server.clients.size === 1, 5000, 'three sessions to end');
      const last = [...t.server.clients][0];
      last.close(4002, 'go away');
      assert.equal((await withTimeout(d.closed, 5000, 'the last close')).code, 4002);
      await waitUntil(() => t.server.clients.size === 0, 5000, 'the last session to end');

      m = t.server.metrics();
      assert.equal(m.connectionsOpen, 0);
      assert.equal(m.connectionsOpened, 4);
      assert.deepEqual(m.connectionsClosed, { '1000': 1, '1006': 1, '4001': 1, '4002': 1 });
      assert.deepEqual(Object.keys(m.connectionsClosed), ['1000', '1006', '4001', '4002'], 'in code order');
      // Closing sent no message, dropped nothing.
      assert.deepEqual(m.messagesSent, { text: 3, binary: 1 });
      assert.deepEqual(m.droppedSends, { closed: 0, limit: 0 });
    } finally {
      for (const c of clients) c.terminate();
      await t.server.close();
    }
  });

  it('a streamed answer counts once with all its bytes; compressed messages count their payload', async () => {
    let session: ServerSession | null = null;
    const t = await startServer({
      perMessageDeflate: true,
      handler: {
        onOpen: (s) => void (session = s),
        onMessage(s, msg) {
          if (msg.text === 'stream') {
            const w = s.stream({ binary: true });
            w.write(Buffer.alloc(10));
            w.write(Buffer.alloc(20));
            w.end(Buffer.alloc(6));
          } else s.send(msg.text);
        },
      },
    });
    try {
      const c = await connect(t.url('/'), { keepalive: null, perMessageDeflate: true });
      assert.deepEqual(c.extensions, ['permessage-deflate']);
      const big = 'a'.repeat(10_000);
      c.send(big);
      assert.equal((await next(c, 'the compressed echo')).text, big);
      c.send('stream');
      assert.equal((await next(c, 'the streamed answer')).data.length, 36);
      assert.ok(session);
      const m = t.server.metrics();
      assert.deepEqual(m.messagesReceived, { text: 2, binary: 0 });
      assert.deepEqual(m.bytesReceived, { text: 10_000 + 6, binary: 0 });
      assert.deepEqual(m.messagesSent, { text: 1, binary: 1 });
      assert.deepEqual(m.bytesSent, { text: 10_000, binary: 36 });
      c.terminate();
    } finally {
      await t.server.close();
    }
  });

  it("dropped sends (over maxQueuedBytes and after close), 'backpressure' answers and the bytes queued now", async () => {
    const statuses: SendStatus[] = [];
    let bytesAccepted = 0;
    let messagesAccepted = 0;
    let queuedAtEnd = -1;
    let metricsAtEnd: MetricsSnapshot | null = null;
    const errors: string[] = [];
    const handler: ServerHandler = {
      onError: (_s, e) => void errors.push(e.code),
      onMessage(session) {
        // The client reads nothing: big sends until the socket holds some back (bounded),
        // then small ones until one is dropped over maxQueuedBytes.
        const send = (size: number) => {
          const st = session.send(Buffer.alloc(size));
          statuses.push(st);
          if (st !== 'dropped') {
            bytesAccepted += size;
            messagesAccepted++;
          }
          return st;
        };
        for (let i = 0; i < 400 && send(1 << 20) === 'sent'; i++);
        for (let i = 0; i < 10_000 && statuses[statuses.length - 1] !== 'dropped'; i++) send(1024);
        queuedAtEnd = session.bufferedAmount;
        metricsAtEnd = t.server.metrics(); // runs on the client's message, once t is set
        session.close(1000);
        statuses.push(session.send('after close'));
      },
    };
    const t: TestServer = await startServer({ handler, limits: { maxQueuedBytes: 256 * 1024, highWaterMark: 1024 } });
    try {
      const c = await connect(t.url('/'), { keepalive: null });
      c.pauseReading();
      c.send('go');
      await waitUntil(() => metricsAtEnd !== null, 10_000, 'the sends');
      const during = metricsAtEnd!;
      const counts = tally(statuses);
      assert.ok(counts.backpressure >= 1, `some sends answered backpressure: ${JSON.stringify(counts)}`);
      assert.equal(counts.dropped, 2, 'one over the limit, one after close');
      assert.equal(statuses[statuses.length - 1], 'dropped');
      assert.deepEqual(errors, ['ERR_LIMIT_MAX_QUEUED_BYTES']);
      assert.equal(during.queuedBytes, queuedAtEnd);
      assert.ok(during.queuedBytes > 0);
      assert.equal(during.backpressure, counts.backpressure);
      assert.deepEqual(during.droppedSends, { closed: 0, limit: 1 });
      assert.deepEqual(during.messagesSent, { text: 0, binary: messagesAccepted });
      assert.deepEqual(during.bytesSent, { text: 0, binary: bytesAccepted });
      const after = t.server.metrics();
      assert.deepEqual(after.droppedSends, { closed: 1, limit: 1 });
      assert.equal(after.backpressure, counts.backpressure);
      assert.deepEqual(after.messagesReceived, { text: 1, binary: 0 });
      c.terminate();
      await waitUntil(() => t.server.clients.size === 0, 5000, 'the session to end');
      const end = t.server.metrics();
      assert.equal(end.queuedBytes, 0);
      assert.deepEqual(end.connectionsClosed, { '1006': 1 });
    } finally {
      await t.server.close();
    }
  });

  it('keepalive pings: one round-trip time per pong that answers one', async () => {
    let pongs = 0;
    let pings = 0;
    const t = await startServer({ keepalive: { pingAfterMs: 40, hangupAfterMs: 0 }, handler: { onPong: () => void pongs++ } });
    try {
      const c = await connect(t.url('/'), { keepalive: null, handler: { onPing: () => void pings++ } });
      await waitUntil(() => t.server.metrics().pingRtt.count >= 3, 5000, 'three answered pings');
      // Stop the pings, then compare in a quiet moment: no pong may be in flight.
      c.close();
      await withTimeout(c.closed, 5000, 'the close');
      await waitUntil(() => t.server.clients.size === 0, 5000, 'the session to end');
      const rtt = t.server.metrics().pingRtt;
      assert.equal(rtt.count, pongs);
      assert.ok(pings >= pongs && pings <= pongs + 1, `${pings} pings, ${pongs} pongs`);
      assert.ok(rtt.sum >= 0 && rtt.sum < rtt.count * 1, `a loopback round trip is under a second: ${rtt.sum} s over ${rtt.count}`);
      // Cumulative, ending at most at count (the rest is above the last bound, in +Inf).
      for (let i = 1; i < rtt.buckets.length; i++) assert.ok(rtt.buckets[i].count >= rtt.buckets[i - 1].count);
      assert.equal(rtt.buckets[rtt.buckets.findIndex((b) => b.le >= 1)].count, rtt.count);
    } finally {
      await t.server.close();
    }
  });

  it('broadcast() and publish(): one message per session, one timing per call', async () => {
    const t = await startServer({
      handler: {
        onOpen(s) {
          if (s.request.query.get('room')) s.subscribe('room');
        },
      },
    });
    const clients: ClientSession[] = [];
    try {
      for (const path of ['/?room=1', '/?room=1', '/']) clients.push(await connect(t.url(path), { keepalive: null }));
      await waitUntil(() => t.server.subscriberCount('room') === 2 && t.server.clients.size === 3, 5000, 'subscriptions');
      assert.equal(t.server.broadcast('hi').accepted, 3);
      assert.equal(t.server.publish('room', Buffer.from([1, 2, 3, 4])).accepted, 2);
      assert.equal(t.server.publish('empty', 'nobody').accepted, 0);
      for (const c of clients) assert.equal((await next(c, 'the broadcast')).text, 'hi');
      for (const c of clients.slice(0, 2)) assert.equal((await next(c, 'the publication')).data.length, 4);
      const m = t.server.metrics();
      assert.deepEqual(m.messagesSent, { text: 3, binary: 2 });
      assert.deepEqual(m.bytesSent, { text: 6, binary: 8 });
      assert.equal(m.fanOutDuration.broadcast.count, 1);
      assert.equal(m.fanOutDuration.publish.count, 2);
      assert.equal(m.fanOutDuration.remote.count, 0);
      assert.ok(m.fanOutDuration.broadcast.sum >= 0 && m.fanOutDuration.broadcast.sum < 1);
      // A fan-out to a session that is closing is a dropped send.
      const closing = [...t.server.clients][2];
      closing.close();
      assert.equal(t.server.broadcast('late').dropped, 1);
      assert.equal(t.server.metrics().droppedSends.closed, 1);
      assert.deepEqual(t.server.metrics().broker, { publicationsSent: 0, publicationsReceived: 0, deliveries: 0, gaps: 0, errors: {} });
    } finally {
      for (const c of clients) c.terminate();
      await t.server.close();
    }
  });

  it('with a broker: publications sent and received, deliveries; two servers count apart', async () => {
    const hub = new LocalBrokerHub();
    const subscribe: ServerHandler = { onOpen: (s) => void s.subscribe('news') };
    const one = await startServer({ handler: subscribe, broker: hub.broker('one') });
    const two = await startServer({ handler: subscribe, broker: hub.broker('two') });
    const clients: ClientSession[] = [];
    try {
      clients.push(await connect(one.url('/'), { keepalive: null }));
      for (let i = 0; i < 3; i++) clients.push(await connect(two.url('/'), { keepalive: null }));
      await waitUntil(() => one.server.subscriberCount('news') === 1 && two.server.subscriberCount('news') === 3, 5000, 'subscriptions');
      one.server.publish('news', 'a');
      one.server.publish('news', 'b');
      for (const c of clients) assert.deepEqual([(await next(c, 'a')).text, (await next(c, 'b')).text], ['a', 'b']);
      const m1 = one.server.metrics();
      const m2 = two.server.metrics();
      assert.deepEqual(m1.broker, { publicationsSent: 2, publicationsReceived: 0, deliveries: 0, gaps: 0, errors: {} });
      assert.deepEqual(m2.broker, { publicationsSent: 0, publicationsReceived: 2, deliveries: 6, gaps: 0, errors: {} });
      assert.deepEqual([m1.fanOutDuration.publish.count, m1.fanOutDuration.remote.count], [2, 0]);
      assert.deepEqual([m2.fanOutDuration.publish.count, m2.fanOutDuration.remote.count], [0, 2]);
      assert.deepEqual([m1.messagesSent.text, m2.messagesSent.text], [2, 6]);
      assert.deepEqual([m1.connectionsOpened, m2.connectionsOpened], [1, 3]);
    } finally {
      for (const c of clients) c.terminate();
      await one.server.close();
      await two.server.close();
    }
  });
});
