/**
 * The demo server's echo service: clients that ask for no subprotocol, or for
 * sockeye-echo-nodeflate, get every message back, same type, same bytes. The
 * latter never negotiates permessage-deflate, so that a browser (which always
 * offers it) can measure the engine rather than zlib.
 *
 * Pacing: an echo answered 'backpressure' pauses reading from its client
 * until the queue has drained (requestWritable(), onWritable), so a client is
 * served as fast as it reads; pings sent meanwhile are answered once reading
 * resumes; a shutdown or a 1013 resumes reading so that the client's close
 * frame is read. An echo that does not fit at all ('dropped') closes the
 * client with 1013. Large messages under the default limits:
 * test/demo/large-echo.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { LimitExceededError, connect, type ClientSession, type Message, type SendStatus, type ServerSession } from '../../src/index.js';
import { ECHO_BACKLOG_CLOSE, ECHO_NO_DEFLATE_PROTOCOL, EchoProtocol } from '../../src/demo/echo.js';
import { startDemo, type DemoFixture } from './demo-fixture.js';
import { delay, pseudoRandomBytes, sha256, waitUntil, withTimeout } from '../helpers/ws-pair.js';

const MiB = 1024 * 1024;

/** An empty text, a short text and `bigBytes` of random binary come back as they went, in order. */
async function echoesThree(c: Awaited<ReturnType<typeof connect>>, bigBytes: number): Promise<void> {
  const it = c.messages();
  c.send('');
  c.send('héllo');
  const big = pseudoRandomBytes(bigBytes);
  c.send(big);
  const m0 = (await withTimeout(it.next(), 10_000, 'empty echo')).value!;
  assert.equal(m0.binary, false);
  assert.equal(m0.data.length, 0);
  const m1 = (await withTimeout(it.next(), 10_000, 'text echo')).value!;
  assert.equal(m1.binary, false);
  assert.equal(m1.text, 'héllo');
  const m2 = (await withTimeout(it.next(), 30_000, `${bigBytes}-byte echo`)).value!;
  assert.equal(m2.binary, true);
  assert.equal(sha256(m2.data), sha256(big));
}

describe('echo (no subprotocol, or sockeye-echo-nodeflate)', () => {
  let fx: DemoFixture;
  before(async () => {
    fx = await startDemo();
  });
  after(async () => {
    await fx.close();
  });

  it('echoes text and binary, from 0 bytes to 8 MiB, with and without compression', async () => {
    for (const perMessageDeflate of [false, true]) {
      const c = await connect(`ws://127.0.0.1:${fx.port}/`, { perMessageDeflate });
      try {
        assert.equal(c.protocol, undefined);
        assert.deepEqual(c.extensions, perMessageDeflate ? ['permessage-deflate'] : []);
        await echoesThree(c, 8 * 1024 * 1024);
        c.close();
        assert.equal((await c.closed).wasClean, true);
      } finally {
        c.terminate();
      }
    }
  });

  it('sockeye-echo-nodeflate declines permessage-deflate though the client offers it, and echoes the same bytes', async () => {
    // The server's perMessageDeflate (default true) does not reach it.
    const c = await connect(`ws://127.0.0.1:${fx.port}/`, { protocol: ECHO_NO_DEFLATE_PROTOCOL, perMessageDeflate: true });
    try {
      assert.equal(c.protocol, 'sockeye-echo-nodeflate');
      assert.deepEqual(c.extensions, []);
      const server = [...fx.demo.server.clients].find((s) => s.protocol === ECHO_NO_DEFLATE_PROTOCOL);
      assert.ok(server, 'the server holds the session');
      assert.deepEqual(server.extensions, []);
      await echoesThree(c, 1024 * 1024);
      // The echo without a subprotocol, on the same server, still accepts the offer.
      const d = await connect(`ws://127.0.0.1:${fx.port}/`, { perMessageDeflate: true });
      assert.equal(d.protocol, undefined);
      assert.deepEqual(d.extensions, ['permessage-deflate']);
      d.close();
      await d.closed;
      c.close();
      assert.equal((await c.closed).wasClean, true);
    } finally {
      c.terminate();
    }
  });

  it('declines compression when the demo server is told to', async () => {
    const plain = await startDemo({ perMessageDeflate: false });
    try {
      const c = await connect(`ws://127.0.0.1:${plain.port}/`, { perMessageDeflate: true });
      assert.deepEqual(c.extensions, []);
      c.close();
      await c.closed;
    } finally {
      await plain.close();
    }
  });
});

/** What the echo calls on a session, recorded; send() answers what the test says. */
class FakeSession {
  state: 'open' | 'closing' | 'closed' = 'open';
  readonly remoteAddress = '192.0.2.1';
  readonly calls: string[] = [];
  status: SendStatus = 'sent';
  send(data: Buffer, options: { binary?: boolean; transfer?: boolean }): SendStatus {
    this.calls.push(`send ${data.length}${options.binary ? ' binary' : ''}`);
    return this.state === 'open' ? this.status : 'dropped';
  }
  pauseReading(): void {
    this.calls.push('pause');
  }
  resumeReading(): void {
    this.calls.push('resume');
  }
  requestWritable(): boolean {
    this.calls.push('request');
    return true;
  }
  close(code: number, reason: string): void {
    this.calls.push(`close ${code} ${reason}`);
    this.state = 'closing';
  }
  /** The echo's handler takes a ServerSession; it uses only the members above. */
  get asSession(): ServerSession {
    return this as unknown as ServerSession;
  }
  take(): string[] {
    return this.calls.splice(0);
  }
}

function message(bytes: number): Message {
  const data = Buffer.alloc(bytes, 0x2a);
  return { binary: true, data, text: data.toString('utf8') };
}

describe('echo pacing (EchoProtocol, sessions faked)', () => {
  it("'sent' and 'queued' go on reading; 'backpressure' pauses reading once and asks for onWritable, which resumes it", () => {
    const echo = new EchoProtocol();
    const f = new FakeSession();
    const h = echo.handler;
    for (const status of ['sent', 'queued'] as const) {
      f.status = status;
      h.onMessage!(f.asSession, message(3));
      assert.deepEqual(f.take(), ['send 3 binary']);
      assert.equal(echo.isPaused(f.asSession), false);
    }
    f.status = 'backpressure';
    h.onMessage!(f.asSession, message(5));
    assert.deepEqual(f.take(), ['send 5 binary', 'pause', 'request']);
    assert.equal(echo.isPaused(f.asSession), true);
    // A message read before the pause took hold (same read, or from the inflater): echoed, not paused twice.
    h.onMessage!(f.asSession, message(7));
    assert.deepEqual(f.take(), ['send 7 binary', 'request']);
    h.onWritable!(f.asSession, { request: 1 });
    assert.deepEqual(f.take(), ['resume']);
    assert.equal(echo.isPaused(f.asSession), false);
    // An onWritable the echo did not pause for resumes nothing.
    h.onWritable!(f.asSession, { request: 2 });
    assert.deepEqual(f.take(), []);
  });

  it("'dropped' closes with 1013 and resumes a paused session, so that the client's close frame is read; a closing session's drops are left alone", () => {
    const echo = new EchoProtocol();
    const f = new FakeSession();
    f.status = 'backpressure';
    echo.handler.onMessage!(f.asSession, message(1));
    f.take();
    f.status = 'dropped';
    echo.handler.onMessage!(f.asSession, message(2));
    assert.deepEqual(f.take(), ['send 2 binary', `close ${ECHO_BACKLOG_CLOSE.code} ${ECHO_BACKLOG_CLOSE.reason}`, 'resume']);
    assert.equal(echo.isPaused(f.asSession), false);
    echo.handler.onMessage!(f.asSession, message(3));
    assert.deepEqual(f.take(), ['send 3 binary'], 'no second close');
    // Not paused: closed with 1013, nothing to resume.
    const g = new FakeSession();
    g.status = 'dropped';
    echo.handler.onMessage!(g.asSession, message(4));
    assert.deepEqual(g.take(), ['send 4 binary', `close ${ECHO_BACKLOG_CLOSE.code} ${ECHO_BACKLOG_CLOSE.reason}`]);
  });

  it('resumeAll() resumes every paused session once; onClose forgets a session without touching it', () => {
    const echo = new EchoProtocol();
    const [a, b, c] = [new FakeSession(), new FakeSession(), new FakeSession()];
    for (const f of [a, b, c]) {
      f.status = 'backpressure';
      echo.handler.onMessage!(f.asSession, message(1));
      f.take();
    }
    echo.handler.onClose!(c.asSession, { code: 1006, reason: '', wasClean: false, error: undefined, unsentMessages: 0 });
    echo.resumeAll();
    assert.deepEqual([a.take(), b.take(), c.take()], [['resume'], ['resume'], []]);
    echo.resumeAll();
    assert.deepEqual([a.take(), b.take()], [[], []]);
  });

  it('the echo reports a dropped send to onError with the address', () => {
    const reports: string[] = [];
    const echo = new EchoProtocol({ onError: (m) => reports.push(m) });
    const f = new FakeSession();
    echo.handler.onError!(f.asSession, new LimitExceededError('maxQueuedBytes', 'send of 9 bytes dropped'));
    assert.deepEqual(reports, ['192.0.2.1: send of 9 bytes dropped']);
  });
});

describe('echo pacing over a socket', () => {
  /** The demo server's session of its one client. */
  async function onlySession(fx: DemoFixture): Promise<ServerSession> {
    await waitUntil(() => fx.demo.server.clients.size === 1, 5_000, 'the server session');
    return [...fx.demo.server.clients][0] as ServerSession;
  }

  it('a client that does not read its echo pauses the echo; its ping is answered and reading resumes once it reads', { timeout: 30_000 }, async () => {
    const fx = await startDemo();
    let c: ClientSession | undefined;
    try {
      let pongs = 0;
      c = await connect(`ws://127.0.0.1:${fx.port}/`, { handler: { onPong: () => void pongs++ } });
      const session = await onlySession(fx);
      c.pauseReading();
      // More than the kernel's socket buffers hold, so the echo waits in the server's queue.
      const big = randomBytes(16 * MiB);
      c.send(big);
      await waitUntil(() => fx.demo.echo.isPaused(session), 10_000, 'the echo to pause reading');
      c.ping('while paused');
      c.send('after');
      await delay(200);
      assert.equal(fx.demo.echo.isPaused(session), true, 'still paused while the client does not read');
      assert.equal(pongs, 0);
      c.resumeReading();
      const it = c.messages();
      const first = (await withTimeout(it.next(), 10_000, 'the big echo')).value!;
      assert.ok(first.data.equals(big), 'the big echo, intact');
      const second = (await withTimeout(it.next(), 10_000, 'the echo sent while paused')).value!;
      assert.equal(second.text, 'after');
      await waitUntil(() => pongs === 1, 5_000, 'the pong for the ping sent while paused');
      assert.equal(fx.demo.echo.isPaused(session), false);
      c.close();
      assert.equal((await withTimeout(c.closed, 10_000, 'the close')).wasClean, true);
    } finally {
      c?.terminate();
      await fx.close();
    }
  });

  it("a shutdown while the echo holds a client's reading paused: the client's close frame is still read, and the close is clean", { timeout: 30_000 }, async () => {
    const fx = await startDemo();
    let c: ClientSession | undefined;
    try {
      c = await connect(`ws://127.0.0.1:${fx.port}/`);
      const session = await onlySession(fx);
      c.pauseReading();
      c.send(randomBytes(16 * MiB));
      await waitUntil(() => fx.demo.echo.isPaused(session), 10_000, 'the echo to pause reading');
      const serverClosed = session.closed;
      const closing = fx.demo.close();
      // The client reads again well within the close timeout (5 s): the echo, then the 1001.
      await delay(200);
      c.resumeReading();
      const info = await withTimeout(serverClosed, 10_000, 'the server session to end');
      assert.equal(info.code, 1001);
      assert.equal(info.wasClean, true, `the server read the client's close frame (${info.error?.message ?? 'no error'})`);
      const clientInfo = await withTimeout(c.closed, 10_000, 'the client to see the close');
      assert.equal(clientInfo.code, 1001);
      assert.equal(clientInfo.unsentMessages, 0);
      await withTimeout(closing, 10_000, 'the demo server to close');
    } finally {
      c?.terminate();
      await fx.close();
    }
  });

  it("an echo that does not fit the queue at all is reported and closes the client with 1013 'echo backlog full'", { timeout: 30_000 }, async () => {
    const errors: unknown[] = [];
    // A high-water mark above the queue limit: the echo never sees 'backpressure', only 'dropped'.
    const fx = await startDemo({ limits: { maxQueuedBytes: 2 * MiB, highWaterMark: 64 * MiB }, onError: (e) => errors.push(e) });
    let c: ClientSession | undefined;
    try {
      c = await connect(`ws://127.0.0.1:${fx.port}/`);
      c.pauseReading();
      // More than the kernel's buffers and the queue hold together.
      for (let i = 0; i < 24; i++) c.send(Buffer.alloc(MiB, i));
      await waitUntil(() => errors.length > 0, 10_000, 'a dropped echo');
      assert.match(String(errors[0]), /dropped.*limit 2097152/);
      c.resumeReading();
      const info = await withTimeout(c.closed, 10_000, 'the 1013');
      assert.equal(info.code, ECHO_BACKLOG_CLOSE.code);
      assert.equal(info.reason, ECHO_BACKLOG_CLOSE.reason);
    } finally {
      c?.terminate();
      await fx.close();
    }
  });
});
