/**
 * The standard WebSocket class's `reconnect` option (sockeye's own): after a
 * drop worth retrying the same object fires error and close as usual, goes
 * back to CONNECTING and fires open again; close() stops it, a close with
 * 1000 or a refusal ends it, and maxAttempts caps the attempts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, InvalidArgumentError, WebSocket, type ServerSession } from '../../src/index.js';
import { freePort } from '../helpers/free-port.js';

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Every event of `ws` as a line: type, readyState, and the close's code. */
function record(ws: WebSocket): string[] {
  const log: string[] = [];
  for (const type of ['open', 'message', 'error', 'close']) {
    ws.addEventListener(type, (e) => {
      const extra = type === 'close' ? ` ${(e as unknown as { code: number }).code}` : type === 'message' ? ` ${String((e as MessageEvent).data)}` : '';
      log.push(`${type}${extra} @${ws.readyState}`);
    });
  }
  return log;
}

/**
 * Sockets made by a test, closed at its end whatever happened: a reconnecting
 * socket left open would keep trying, and keep the test process alive.
 */
function sockets(): { open(url: string, options?: ConstructorParameters<typeof WebSocket>[2]): WebSocket; closeAll(): void } {
  const made: WebSocket[] = [];
  return {
    open(url, options) {
      const ws = new WebSocket(url, [], options);
      made.push(ws);
      return ws;
    },
    closeAll() {
      for (const ws of made) ws.close();
    },
  };
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`${what}: not within 10 s`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('WebSocket { reconnect }', { concurrency: 3 }, () => {
  it('a dropped connection: error and close 1006, CONNECTING again, open again, and messages flow on the new one', async () => {
    const sessions: ServerSession[] = [];
    let upgrades = 0;
    const server = createServer({
      keepalive: null,
      // The second handshake takes a while, so that CONNECTING lasts long enough to be seen.
      verifyClient: () => (++upgrades === 1 ? true : new Promise((r) => setTimeout(() => r(true), 300))),
      handler: { onOpen: (s) => void sessions.push(s), onMessage: (s, m) => void s.send(m.text) },
    });
    const { port } = await server.listen(0, '127.0.0.1');
    const made = sockets();
    try {
      const ws = made.open(`ws://127.0.0.1:${port}/`, { reconnect: { delaysMs: [200], jitter: 0 }, keepalive: null });
      const log = record(ws);
      await withTimeout(new Promise((r) => ws.addEventListener('open', r, { once: true })), 10_000, 'open');
      sessions[0].terminate();
      await until(() => log.includes('close 1006 @3'), 'the close event');
      // Waiting for the next attempt: CLOSED, then CONNECTING once the attempt starts.
      assert.equal(ws.readyState, WebSocket.CLOSED);
      await until(() => ws.readyState === WebSocket.CONNECTING, 'the next attempt');
      await until(() => log.filter((l) => l.startsWith('open')).length === 2, 'open again');
      assert.equal(ws.bufferedAmount, 0);
      ws.send('on the new connection');
      await until(() => log.some((l) => l.startsWith('message')), 'the echo');
      assert.deepEqual(log, ['open @1', 'error @3', 'close 1006 @3', 'open @1', 'message on the new connection @1']);
      assert.equal(sessions.length, 2);
      // close() ends it for good: a clean close, and no further attempt.
      ws.close(1000);
      await until(() => log.includes('close 1000 @3'), 'the clean close');
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(sessions.length, 2);
      assert.equal(ws.readyState, WebSocket.CLOSED);
    } finally {
      made.closeAll();
      await server.close();
    }
  });

  it('a server close with 1000 ends it; close() during the wait cancels the attempt; maxAttempts caps the attempts on a dead port', async () => {
    let opens = 0;
    const server = createServer({ keepalive: null, handler: { onOpen: (s) => void (++opens, s.close(1000, 'done')) } });
    const { port } = await server.listen(0, '127.0.0.1');
    const made = sockets();
    try {
      const ws = made.open(`ws://127.0.0.1:${port}/`, { reconnect: { delaysMs: [10] }, keepalive: null });
      const log = record(ws);
      await until(() => log.includes('close 1000 @3'), 'the close');
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(opens, 1);
      // A port nothing listens on: each attempt fails (error, close 1006), three retries, then it stays CLOSED.
      const deadPort = await freePort();
      const capped = made.open(`ws://127.0.0.1:${deadPort}/`, { reconnect: { delaysMs: [10], maxAttempts: 3 } });
      const clog = record(capped);
      await until(() => clog.filter((l) => l.startsWith('close')).length === 4, 'four closes');
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(clog.filter((l) => l.startsWith('close')).length, 4, 'the first attempt and three retries');
      assert.equal(capped.readyState, WebSocket.CLOSED);
      // close() while waiting for the next attempt: none comes.
      const waiting = made.open(`ws://127.0.0.1:${deadPort}/`, { reconnect: { delaysMs: [300], jitter: 0 } });
      const wlog = record(waiting);
      await until(() => wlog.includes('close 1006 @3'), 'the first failure');
      waiting.close();
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(wlog, ['error @3', 'close 1006 @3']);
      assert.throws(() => made.open('ws://127.0.0.1:1/', { reconnect: { jitter: 5 } }), InvalidArgumentError);
    } finally {
      made.closeAll();
      await server.close();
    }
  });

  it('without the option, a drop is final, as the standard says', async () => {
    const sessions: ServerSession[] = [];
    const server = createServer({ keepalive: null, handler: { onOpen: (s) => void sessions.push(s) } });
    const { port } = await server.listen(0, '127.0.0.1');
    const made = sockets();
    try {
      const ws = made.open(`ws://127.0.0.1:${port}/`);
      const log = record(ws);
      await until(() => log.includes('open @1'), 'open');
      sessions[0].terminate();
      await until(() => log.includes('close 1006 @3'), 'close');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(sessions.length, 1);
      assert.deepEqual(log, ['open @1', 'error @3', 'close 1006 @3']);
    } finally {
      made.closeAll();
      await server.close();
    }
  });
});
