/**
 * broadcast() and publish() over real sockets: one message reaches every
 * session (or every subscriber) intact, the payload is copied once so the
 * caller's buffer is free at once (S2), sessions with permessage-deflate
 * compress their own copy, each session's limits apply (a session over
 * maxQueuedBytes drops it and hears why: S4), and closed sessions leave
 * their topics.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, LimitExceededError, type ClientSession, type ServerSession, type WebSocketError } from '../../src/index.js';
import { fanOut, type FanOutTarget } from '../../src/pubsub/fan-out.js';
import { RawClient, clientFrame, closePayload, pseudoRandomBytes, startServer, waitUntil, withTimeout } from '../helpers/ws-pair.js';

async function clients(url: string, n: number, options = {}): Promise<ClientSession[]> {
  return Promise.all(Array.from({ length: n }, () => connect(url, options)));
}

describe('server.broadcast()', () => {
  it('delivers the same message to every session, text and binary, from a buffer reused at once', async () => {
    const t = await startServer({ handler: {} });
    const cs = await clients(t.url(), 20);
    try {
      await waitUntil(() => t.server.clients.size === 20, 5000, '20 sessions');
      const inboxes = cs.map((c) => c.messages());
      const big = pseudoRandomBytes(200_000, 7);
      const expected = Buffer.from(big);
      const r1 = t.server.broadcast(big);
      big.fill(0); // S2: the broadcast already has its own copy
      const r2 = t.server.broadcast('héllo everyone');
      const small = Buffer.from('tiny');
      const r3 = t.server.broadcast(small, { binary: false });
      small.fill(0x21);
      for (const r of [r1, r2, r3]) assert.deepEqual(r, { accepted: 20, dropped: 0, backpressure: r.backpressure });
      for (const inbox of inboxes) {
        const m1 = (await withTimeout(inbox.next(), 5000, 'first')).value!;
        assert.equal(m1.binary, true);
        assert.ok(m1.data.equals(expected), 'binary payload intact');
        const m2 = (await withTimeout(inbox.next(), 5000, 'second')).value!;
        assert.equal(m2.binary, false);
        assert.equal(m2.text, 'héllo everyone');
        const m3 = (await withTimeout(inbox.next(), 5000, 'third')).value!;
        assert.equal(m3.binary, false);
        assert.equal(m3.text, 'tiny');
      }
    } finally {
      for (const c of cs) c.close();
      await t.server.close();
    }
  });

  it('filter picks the sessions; a session compressing gets its own compressed copy in the same broadcast', async () => {
    const t = await startServer({ handler: {}, perMessageDeflate: true });
    const plain = await clients(t.url('/?kind=plain'), 3);
    const deflated = await clients(t.url('/?kind=deflate'), 3, { perMessageDeflate: true });
    try {
      await waitUntil(() => t.server.clients.size === 6, 5000, '6 sessions');
      for (const c of deflated) assert.deepEqual(c.extensions, ['permessage-deflate']);
      for (const c of plain) assert.deepEqual(c.extensions, []);
      const text = 'compressible '.repeat(2000);
      const all = t.server.broadcast(text);
      assert.equal(all.accepted, 6);
      const onlyPlain = t.server.broadcast('plain only', { filter: (s) => s.request.query.get('kind') === 'plain' });
      assert.equal(onlyPlain.accepted, 3);
      for (const c of [...plain, ...deflated]) {
        const inbox = c.messages();
        assert.equal((await withTimeout(inbox.next(), 5000, 'broadcast')).value!.text, text);
      }
      for (const c of plain) assert.equal((await withTimeout(c.messages().next(), 5000, 'filtered')).value!.text, 'plain only');
      // The deflate sessions were not sent the filtered message: they close cleanly with nothing more received.
      for (const c of deflated) {
        c.close();
        const rest = [];
        for await (const m of c.messages()) rest.push(m);
        assert.equal(rest.length, 0);
      }
    } finally {
      for (const c of plain) c.close();
      await t.server.close();
    }
  });

  it('a session over maxQueuedBytes drops it with an onError and the others still get it', async () => {
    const errors: Array<{ s: ServerSession; e: WebSocketError }> = [];
    const t = await startServer({ limits: { maxQueuedBytes: 256 * 1024, highWaterMark: 64 * 1024 }, handler: { onError: (s, e) => errors.push({ s, e }) } });
    const reader = await connect(t.url());
    const stalled = await RawClient.open(t.port);
    stalled.pause();
    try {
      await waitUntil(() => t.server.clients.size === 2, 5000, '2 sessions');
      const inbox = reader.messages();
      let dropped = 0;
      let delivered = 0;
      // Until the stalled peer's kernel buffers and queue are full; the reader keeps up.
      for (let i = 0; i < 400 && dropped === 0; i++) {
        const r = t.server.broadcast(pseudoRandomBytes(64 * 1024, i));
        assert.equal(r.accepted + r.dropped, 2);
        dropped += r.dropped;
        delivered++;
        const m = (await withTimeout(inbox.next(), 5000, `message ${i}`)).value!;
        assert.ok(m.data.equals(pseudoRandomBytes(64 * 1024, i)), `message ${i} intact`);
      }
      assert.equal(dropped, 1, 'the stalled session dropped one broadcast');
      assert.equal(errors.length, 1);
      assert.ok(errors[0].e instanceof LimitExceededError);
      assert.equal((errors[0].e as LimitExceededError).limit, 'maxQueuedBytes');
      assert.ok(delivered > 1);
      // The stalled session is still open: a dropped send costs nothing else.
      assert.equal(errors[0].s.state, 'open');
    } finally {
      stalled.destroy();
      reader.close();
      await t.server.close();
    }
  });

  it('a broadcast whose writes all complete at once leaves no per-session work queued behind it', async () => {
    // A write with a completion callback that completes synchronously makes Node queue a tick
    // (and a record for it) per socket, alive until the broadcast returns: at 10,000 sessions
    // they would outlive the scavenges of the loop, be promoted, and make full GCs follow (the
    // fan-out latency tail). Sessions write without callbacks and settle what reached the kernel
    // from writableLength, so a broadcast of a small message schedules nothing per session.
    const n = 200;
    const t = await startServer({ handler: {} });
    const cs = await clients(t.url(), n);
    try {
      await waitUntil(() => t.server.clients.size === n, 5000, `${n} sessions`);
      const inboxes = cs.map((c) => c.messages());
      const nextTick = process.nextTick;
      let ticks = 0;
      process.nextTick = ((...args: Parameters<typeof nextTick>) => {
        ticks++;
        return nextTick(...args);
      }) as typeof nextTick;
      let r;
      try {
        r = t.server.broadcast(Buffer.from('tick-free'));
      } finally {
        process.nextTick = nextTick;
      }
      assert.deepEqual(r, { accepted: n, dropped: 0, backpressure: 0 });
      assert.ok(ticks < n / 10, `${ticks} ticks scheduled by one broadcast to ${n} sessions`);
      for (const inbox of inboxes) assert.equal((await withTimeout(inbox.next(), 5000, 'the broadcast')).value!.text, 'tick-free');
    } finally {
      for (const c of cs) c.close();
      await t.server.close();
    }
  });
});

describe('topics: subscribe() and publish()', () => {
  it('a closing session: broadcast and publish count it as dropped with no onError; it is counted in clients and subscriberCount until its onClose; subscribe() returns false', { timeout: 20_000 }, async () => {
    const errors: WebSocketError[] = [];
    const closed: ServerSession[] = [];
    const t = await startServer({
      closeTimeoutMs: 15_000,
      handler: {
        onOpen: (s) => void (s as ServerSession).subscribe('room'),
        onError: (_s, e) => errors.push(e),
        onClose: (s) => void closed.push(s as ServerSession),
      },
    });
    const reader = await connect(t.url('/?who=reader'));
    // A peer that reads but answers the close frame only when told to: meanwhile its session is 'closing'.
    const quiet = await RawClient.open(t.port, { path: '/?who=quiet' });
    try {
      await waitUntil(() => t.server.clients.size === 2 && t.server.subscriberCount('room') === 2, 5000, '2 subscribed sessions');
      const quietSession = [...t.server.clients].find((s) => s.request.query.get('who') === 'quiet')!;
      quietSession.close(4000, 'bye');
      await quiet.waitClose(5000);
      assert.equal(quietSession.state, 'closing');
      assert.deepEqual(t.server.broadcast('to all'), { accepted: 1, dropped: 1, backpressure: 0 });
      assert.deepEqual(t.server.publish('room', 'to room'), { accepted: 1, dropped: 1, backpressure: 0 });
      assert.deepEqual(errors, [], 'a closing session drops without an onError');
      assert.equal(quietSession.subscribe('other'), false);
      assert.equal(t.server.subscriberCount('other'), 0);
      // Still counted until its onClose.
      assert.equal(t.server.subscriberCount('room'), 2);
      assert.equal(t.server.clients.size, 2);
      assert.deepEqual(closed, []);
      // The reader got both; the quiet peer got neither (nothing after the close frame).
      const inbox = reader.messages();
      assert.equal((await withTimeout(inbox.next(), 5000, 'broadcast')).value!.text, 'to all');
      assert.equal((await withTimeout(inbox.next(), 5000, 'publish')).value!.text, 'to room');
      assert.deepEqual(quiet.frames.map((f) => f.opcode), [0x8]);
      // The close completes: the session leaves the clients and its topic.
      quiet.write(clientFrame(0x8, closePayload(4000)));
      await withTimeout(quietSession.closed, 5000, 'the close');
      assert.deepEqual(closed, [quietSession]);
      assert.equal(t.server.subscriberCount('room'), 1);
      assert.equal(t.server.clients.size, 1);
    } finally {
      quiet.destroy();
      reader.close();
      await t.server.close();
    }
  });

  it('publish reaches the subscribers only; unsubscribe and close leave the topic', async () => {
    const t = await startServer({
      handler: {
        onMessage(session, message) {
          // "join:<room>" / "leave:<room>" / "say:<room>:<text>"
          const [verb, room, text] = message.text.split(':');
          if (verb === 'join') session.send(String((session as ServerSession).subscribe(room)));
          else if (verb === 'leave') session.send(String((session as ServerSession).unsubscribe(room)));
          else if (verb === 'say') t.server.publish(room, text);
        },
      },
    });
    const [a, b, c] = await clients(t.url(), 3);
    const ia = a.messages();
    const ib = b.messages();
    const ic = c.messages();
    const next = async (it: AsyncIterableIterator<{ text: string }>) => (await withTimeout(it.next(), 5000, 'message')).value!.text;
    try {
      a.send('join:red');
      b.send('join:red');
      c.send('join:blue');
      assert.equal(await next(ia), 'true');
      assert.equal(await next(ib), 'true');
      assert.equal(await next(ic), 'true');
      a.send('join:red');
      assert.equal(await next(ia), 'false');
      assert.equal(t.server.subscriberCount('red'), 2);
      const sa = [...t.server.clients].find((s) => s.topics.includes('red'))!;
      assert.deepEqual(sa.topics, ['red']);
      c.send('say:red:to red');
      assert.equal(await next(ia), 'to red');
      assert.equal(await next(ib), 'to red');
      b.send('leave:red');
      assert.equal(await next(ib), 'true');
      c.send('say:red:second');
      assert.equal(await next(ia), 'second');
      a.send('say:blue:to blue');
      assert.equal(await next(ic), 'to blue');
      assert.deepEqual(t.server.publish('nobody', 'x'), { accepted: 0, dropped: 0, backpressure: 0 });
      a.close();
      await a.closed;
      await waitUntil(() => t.server.subscriberCount('red') === 0, 5000, 'the closed session left red');
      // b and c got nothing they should not have: the next message each sees is this one.
      b.send('join:green');
      assert.equal(await next(ib), 'true');
      c.send('say:green:last');
      assert.equal(await next(ib), 'last');
    } finally {
      b.close();
      c.close();
      await t.server.close();
    }
  });
});

describe('fanOut()', () => {
  it('builds the frame once and hands every target the same chunks', () => {
    const seen: Buffer[][] = [];
    const sizes: number[] = [];
    const target: FanOutTarget = {
      sendShared(frame, frameBytes) {
        seen.push(frame);
        sizes.push(frameBytes);
        return 'sent';
      },
    };
    const r = fanOut([target, target, target], Buffer.from('abc'));
    assert.deepEqual(r, { accepted: 3, dropped: 0, backpressure: 0 });
    assert.equal(seen.length, 3);
    assert.equal(seen[0], seen[1]);
    assert.equal(seen[1], seen[2]);
    // A BINARY frame with FIN, unmasked, 3 bytes: 82 03 'abc' (RFC 6455 section 5.2).
    assert.deepEqual(Buffer.concat(seen[0]), Buffer.from([0x82, 0x03, 0x61, 0x62, 0x63]));
    assert.deepEqual(sizes, [5, 5, 5], 'the frame size is counted once and passed to every target');
  });

  it('no targets: no frame and nothing accepted', () => {
    assert.deepEqual(fanOut([], 'x'), { accepted: 0, dropped: 0, backpressure: 0 });
  });
});
