/**
 * reconnect(): the retry policy's delays, which failures it retries, and,
 * over real sockets, a client that publishes while its server is killed and
 * restarted (a child process, SIGKILL), gives up after its cap, stops at once
 * on a 4xx, and ends when its loop is left.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { createServer, HandshakeError, InvalidArgumentError, TimeoutError, TransportError, WebSocketError, type CloseInfo } from '../../src/index.js';
import { freePort } from '../helpers/free-port.js';
import { jitteredDelay, nominalDelay, reconnect, retryable, type ReconnectAttempt, type RetryReason } from '../../src/client/reconnect.js';

const INDEX = pathToFileURL(fileURLToPath(new URL('../../src/index.js', import.meta.url))).href;

const closed = (code: number): RetryReason => ({ kind: 'closed', close: { code, reason: '', wasClean: code !== 1006, error: undefined, unsentMessages: 0 } satisfies CloseInfo });
const failed = (error: WebSocketError): RetryReason => ({ kind: 'failed', error });

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

describe('the retry policy', () => {
  it('a table of delays: one per attempt, the last one repeating', () => {
    const policy = { delaysMs: [100, 500, 2000] };
    assert.deepEqual([1, 2, 3, 4, 9].map((n) => nominalDelay(policy, n)), [100, 500, 2000, 2000, 2000]);
  });

  it('exponential: initial times factor to the power of attempts, capped; defaults 250 ms, x2, 30 s', () => {
    assert.deepEqual([1, 2, 3, 4, 5].map((n) => nominalDelay({ initialDelayMs: 100, factor: 3, maxDelayMs: 2000 }, n)), [100, 300, 900, 2000, 2000]);
    assert.deepEqual([1, 2, 8, 20].map((n) => nominalDelay({}, n)), [250, 500, 30_000, 30_000]);
  });

  it('jitter shortens a delay by up to its fraction, never lengthens it', () => {
    const policy = { delaysMs: [1000], jitter: 0.3 };
    assert.equal(jitteredDelay(policy, 1, () => 0), 1000);
    assert.equal(jitteredDelay(policy, 1, () => 0.999999), 700);
    assert.equal(jitteredDelay({ delaysMs: [1000] }, 1, () => 0.5), 900, 'default jitter 0.2');
    assert.equal(jitteredDelay({ delaysMs: [1000], jitter: 0 }, 1, () => 0.9), 1000);
  });

  it('retryable: what may pass is retried, what will not is not', () => {
    for (const code of [1001, 1005, 1006, 1011, 1012, 1013, 1014]) assert.equal(retryable(closed(code)), true, `close ${code}`);
    for (const code of [1000, 1002, 1003, 1007, 1008, 1009, 1010, 4000, 4999]) assert.equal(retryable(closed(code)), false, `close ${code}`);
    for (const status of [500, 502, 503, 408, 429]) assert.equal(retryable(failed(new HandshakeError('ERR_UNEXPECTED_STATUS', 'x', status))), true, `HTTP ${status}`);
    for (const status of [400, 401, 403, 404, 426]) assert.equal(retryable(failed(new HandshakeError('ERR_UNEXPECTED_STATUS', 'x', status))), false, `HTTP ${status}`);
    assert.equal(retryable(failed(new HandshakeError('ERR_BAD_ACCEPT', 'wrong accept'))), false, 'a bad answer');
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    assert.equal(retryable(failed(new TransportError('ERR_CONNECT', 'refused', { cause: refused }))), true);
    assert.equal(retryable(failed(new TransportError('ERR_CONNECTION_CLOSED', 'reset'))), true);
    assert.equal(retryable(failed(new TimeoutError('ERR_HANDSHAKE_TIMEOUT', 'slow'))), true);
    assert.equal(retryable(failed(new TransportError('ERR_ABORTED', 'aborted'))), false, 'aborted by the application');
    const untrusted = Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
    assert.equal(retryable(failed(new TransportError('ERR_CONNECT', 'untrusted', { cause: untrusted }))), false);
  });

  it('a bad policy is refused before anything is dialled', () => {
    for (const retry of [{ delaysMs: [] }, { delaysMs: [-1] }, { factor: 0.5 }, { jitter: 2 }, { maxAttempts: 1.5 }, { initialDelayMs: Number.NaN }]) {
      assert.throws(() => reconnect('ws://127.0.0.1:1/', { retry }), (e: unknown) => e instanceof InvalidArgumentError && e.code === 'ERR_BAD_RETRY', JSON.stringify(retry));
    }
  });
});

/** A sockeye echo-and-count server in a child process, on `port` (0: any); resolves with its port once it listens. */
function childServer(port: number): Promise<{ child: ChildProcess; port: number; received: () => number }> {
  const code = `
    import { createServer } from ${JSON.stringify(INDEX)};
    let n = 0;
    const server = createServer({ keepalive: null, handler: { onMessage() { n++; process.stdout.write('got ' + n + '\\n'); } } });
    const a = await server.listen(${port}, '127.0.0.1');
    process.stdout.write('port ' + a.port + '\\n');
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let received = 0;
  return withTimeout(
    new Promise((resolve, reject) => {
      child.stdout!.setEncoding('utf8').on('data', (s: string) => {
        out += s;
        const counts = [...out.matchAll(/^got (\d+)$/gm)];
        if (counts.length > 0) received = Number(counts[counts.length - 1][1]);
        const m = /^port (\d+)$/m.exec(out);
        if (m) resolve({ child, port: Number(m[1]), received: () => received });
      });
      child.once('exit', (c) => reject(new Error(`server child exited (${c}) before listening: ${out}`)));
    }),
    15_000,
    'the server child',
  );
}

function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

describe('reconnect() over real sockets', { concurrency: 3 }, () => {
  it('a client publishing through three kills and restarts of its server: every reconnect, each after a delay of the policy', { timeout: 60_000 }, async () => {
    const policy = { initialDelayMs: 40, factor: 2, maxDelayMs: 400, jitter: 0.5 };
    let server = await childServer(0);
    const port = server.port;
    const attempts: Array<ReconnectAttempt & { at: number }> = [];
    const opened: number[] = [];
    const closes: number[] = [];
    const restarts = 3;
    let sent = 0;
    const rc = reconnect(`ws://127.0.0.1:${port}/`, { keepalive: null, retry: policy, onAttempt: (a) => attempts.push({ ...a, at: Date.now() }) });
    const children: ChildProcess[] = [server.child];
    const driver = (async () => {
      for await (const client of rc) {
        opened.push(Date.now());
        // Publish until the connection drops.
        const timer = setInterval(() => {
          if (client.send(`message ${++sent}`) === 'dropped') sent--;
        }, 5);
        const info = await client.closed;
        clearInterval(timer);
        closes.push(info.code);
      }
    })();
    try {
      for (let i = 0; i < restarts; i++) {
        // Let the client publish on this server, then kill it, keep it down a while, and start another on the same port.
        const before = server.received();
        await withTimeout(
          (async () => {
            while (server.received() < before + 5) await new Promise((r) => setTimeout(r, 10));
          })(),
          15_000,
          'messages reaching the server',
        );
        await kill(server.child);
        await new Promise((r) => setTimeout(r, 300));
        server = await childServer(port);
        children.push(server.child);
      }
      await withTimeout(
        (async () => {
          while (opened.length < restarts + 1) await new Promise((r) => setTimeout(r, 10));
        })(),
        15_000,
        'the last reconnect',
      );
      rc.close();
      await withTimeout(driver, 15_000, 'the loop to end');
    } finally {
      rc.close();
      for (const c of children) await kill(c);
    }
    assert.equal(opened.length, restarts + 1, 'one connection per server');
    // Each drop was a kill: no closing handshake (1006), retried; the last close is ours (1000).
    assert.deepEqual(closes, [...Array(restarts).fill(1006), 1000]);
    // While the server was down, the attempts followed the policy: 1, 2, 3 ... after each drop, delays within it.
    assert.ok(attempts.length >= restarts * 2, `${attempts.length} attempts`);
    let expected = 1;
    for (const a of attempts) {
      if (a.attempt === 1) expected = 1;
      assert.equal(a.attempt, expected++, 'attempts count up from 1 after each drop');
      const nominal = nominalDelay(policy, a.attempt);
      assert.ok(a.delayMs <= nominal && a.delayMs >= nominal * (1 - policy.jitter) - 1, `attempt ${a.attempt}: ${a.delayMs} ms, nominal ${nominal}`);
      if (a.attempt === 1) assert.equal(a.reason.kind === 'closed' && a.reason.close.code, 1006);
      else assert.equal(a.reason.kind, 'failed', 'later attempts follow failed ones');
    }
    assert.equal(attempts.filter((a) => a.attempt === 1).length, restarts, 'one run of attempts per drop');
    // Each connection opened no sooner than the delay of the attempt that opened it.
    for (const at of opened.slice(1)) {
      const last = attempts.filter((a) => a.at <= at).pop()!;
      assert.ok(at - last.at >= last.delayMs - 5, `opened ${at - last.at} ms after an attempt that waits ${last.delayMs} ms`);
    }
  });

  it('gives up after maxAttempts failures in a row, throwing the last failure', { timeout: 30_000 }, async () => {
    const server = await childServer(0);
    const attempts: ReconnectAttempt[] = [];
    const rc = reconnect(`ws://127.0.0.1:${server.port}/`, { keepalive: null, retry: { delaysMs: [20, 40], maxAttempts: 3 }, onAttempt: (a) => attempts.push(a) });
    let connections = 0;
    try {
      await assert.rejects(
        withTimeout(
          (async () => {
            for await (const client of rc) {
              connections++;
              await kill(server.child);
              await client.closed;
            }
          })(),
          15_000,
          'the loop',
        ),
        (e: unknown) => e instanceof TransportError && e.code === 'ERR_CONNECT' && /ECONNREFUSED/.test(e.message),
      );
    } finally {
      await kill(server.child);
    }
    assert.equal(connections, 1);
    assert.deepEqual(
      attempts.map((a) => [a.attempt, a.reason.kind]),
      [
        [1, 'closed'],
        [2, 'failed'],
        [3, 'failed'],
      ],
    );
    assert.deepEqual(
      attempts.map((a) => nominalDelay({ delaysMs: [20, 40] }, a.attempt)),
      [20, 40, 40],
    );
  });

  it('a 4xx answer ends it at once: no attempt, the HandshakeError thrown', { timeout: 30_000 }, async () => {
    const server = createServer({ keepalive: null, handler: {}, verifyClient: () => ({ status: 403, message: 'go away' }) });
    const { port } = await server.listen(0, '127.0.0.1');
    const attempts: ReconnectAttempt[] = [];
    try {
      const rc = reconnect(`ws://127.0.0.1:${port}/`, { retry: { delaysMs: [10] }, onAttempt: (a) => attempts.push(a) });
      await assert.rejects(
        withTimeout(
          (async () => {
            for await (const _ of rc) assert.fail('no connection opens');
          })(),
          10_000,
          'the loop',
        ),
        (e: unknown) => e instanceof HandshakeError && e.status === 403,
      );
      assert.deepEqual(attempts, []);
    } finally {
      await server.close();
    }
  });

  it('a 503 is retried until the server lets the client in', { timeout: 30_000 }, async () => {
    let refusals = 2;
    const server = createServer({ keepalive: null, handler: {}, verifyClient: () => (refusals-- > 0 ? { status: 503, message: 'busy' } : true) });
    const { port } = await server.listen(0, '127.0.0.1');
    const attempts: ReconnectAttempt[] = [];
    try {
      const rc = reconnect(`ws://127.0.0.1:${port}/`, { keepalive: null, retry: { delaysMs: [10] }, onAttempt: (a) => attempts.push(a) });
      for await (const client of rc) {
        assert.equal(client.state, 'open');
        break;
      }
      assert.deepEqual(
        attempts.map((a) => a.reason.kind === 'failed' && (a.reason.error as HandshakeError).status),
        [503, 503],
      );
    } finally {
      await server.close();
    }
  });

  it('closes: 1012 is retried, 1000 and 1008 end the loop without an error', { timeout: 30_000 }, async () => {
    for (const last of [1008, 1000]) {
      let opens = 0;
      const server = createServer({
        keepalive: null,
        handler: {
          onOpen(s) {
            opens++;
            s.close(opens === 1 ? 1012 : last);
          },
        },
      });
      const { port } = await server.listen(0, '127.0.0.1');
      const seen: number[] = [];
      try {
        const rc = reconnect(`ws://127.0.0.1:${port}/`, { keepalive: null, retry: { delaysMs: [10] } });
        await withTimeout(
          (async () => {
            for await (const client of rc) seen.push((await client.closed).code);
          })(),
          10_000,
          'the loop',
        );
      } finally {
        await server.close();
      }
      assert.deepEqual(seen, [1012, last]);
    }
  });

  it('leaving the loop closes the open connection with 1000; close() cancels a pending attempt', { timeout: 30_000 }, async () => {
    const closes: number[] = [];
    const server = createServer({ keepalive: null, handler: { onClose: (_s, info) => void closes.push(info.code) } });
    const { port } = await server.listen(0, '127.0.0.1');
    try {
      for await (const client of reconnect(`ws://127.0.0.1:${port}/`, { keepalive: null })) {
        assert.equal(client.state, 'open');
        break;
      }
      await withTimeout(
        (async () => {
          while (closes.length === 0) await new Promise((r) => setTimeout(r, 10));
        })(),
        10_000,
        'the server to see the close',
      );
      assert.deepEqual(closes, [1000]);
    } finally {
      await server.close();
    }
    // Nothing listens: the first attempt waits 10 s, and close() ends the loop well before.
    const deadPort = await freePort();
    const rc = reconnect(`ws://127.0.0.1:${deadPort}/`, { retry: { delaysMs: [10_000] }, onAttempt: () => setTimeout(() => rc.close(), 20) });
    const started = Date.now();
    await withTimeout(
      (async () => {
        for await (const _ of rc) assert.fail('nothing listens');
      })(),
      5_000,
      'close() to end the loop',
    );
    assert.ok(Date.now() - started < 5_000);
    assert.throws(() => rc[Symbol.asyncIterator](), /already iterated/);
  });
});
