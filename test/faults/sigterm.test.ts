/**
 * Fault: the server process receives SIGTERM with 1,000 open connections.
 *
 * A child process (test/faults/sigterm-server.ts) runs a sockeye server
 * whose SIGTERM handler calls server.close(). This process opens 1,000
 * connections to it:
 *
 * - 984 sockeye clients, reading as usual;
 * - 16 raw clients that stop reading after the handshake, so that what the
 *   server sends them piles up: the kernel buffers fill, and the rest waits
 *   in the sessions' own queues when the signal comes. They read again
 *   200 ms after the signal, and answer the server's close frame.
 *
 * It asks the child to queue one message on every session (16 KiB for the
 * sockeye clients, 6 MiB for the raw ones) and sends SIGTERM as soon as the
 * child confirms.
 *
 * Expected (graceful shutdown: close code 1001 "going away", RFC 6455
 * section 7.4.1; invariant S4, a graceful close flushes everything queued
 * before the close frame):
 * - every client receives its own message, intact, then a close frame with
 *   1001, and nothing else: for the sockeye clients, open, message, close
 *   (clean), once each and in that order;
 * - server.close() resolves in the child, which then exits by itself with
 *   code 0 (it would hang if a socket or timer were left behind);
 * - this process's resources are back to the baseline afterwards.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { connect, Context, type ClientSession } from '../../src/index.js';
import { RawClient, closePayload, encodeRawFrame, withTimeout } from '../helpers/ws-pair.js';
import { activeResources, assertResourcesBack } from './events.js';

const SOCKEYE_CLIENTS = 984;
const RAW_CLIENTS = 16;
const SMALL = 16 * 1024;
// More than a loopback connection's kernel buffers hold for a reader that does not read (send buffer up to
// tcp_wmem's 4 MiB maximum, plus the receiver's): part of each large message must wait in its session's queue.
const LARGE = 6 * 1024 * 1024;

type ChildMessage =
  | { type: 'listening'; port: number }
  | { type: 'queued'; count: number; statuses: Record<string, number> }
  | { type: 'closed'; clients: number; remaining: number; errors: string[] };

function nextMessage<T extends ChildMessage['type']>(child: ChildProcess, type: T, ms: number): Promise<Extract<ChildMessage, { type: T }>> {
  return withTimeout(
    new Promise((resolve) => {
      const on = (m: ChildMessage) => {
        if (m.type !== type) return;
        child.off('message', on);
        resolve(m as Extract<ChildMessage, { type: T }>);
      };
      child.on('message', on);
    }),
    ms,
    `the child's '${type}'`,
  );
}

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

it(`SIGTERM with ${SOCKEYE_CLIENTS + RAW_CLIENTS} open connections: each client gets its queued message, then 1001; the child exits 0; all freed`, { timeout: 120_000 }, async (t) => {
  const baseline = activeResources();
  const script = fileURLToPath(new URL('./sigterm-server.js', import.meta.url));
  const child = fork(script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const clients: ClientSession[] = [];
  const raws: RawClient[] = [];
  // One context for all sockeye clients: one timer wheel instead of 984.
  const context = new Context();
  try {
    const { port } = await nextMessage(child, 'listening', 20_000);
    const logs = Array.from({ length: SOCKEYE_CLIENTS }, () => ({ events: [] as string[], digest: '', closeWasClean: false }));
    const started = performance.now();
    await withTimeout(
      Promise.all([
        ...logs.map(async (log, id) => {
          const c = await connect(`ws://127.0.0.1:${port}/?id=${id}`, {
            keepalive: null,
            context,
            handler: {
              onOpen: () => log.events.push('open'),
              onMessage: (_s, m) => {
                log.events.push('message');
                log.digest = sha(m.data);
              },
              onError: (_s, e) => log.events.push(`error ${e.code}`),
              onClose: (_s, info) => {
                log.events.push(`close ${info.code}`);
                log.closeWasClean = info.wasClean;
              },
            },
          });
          clients.push(c);
        }),
        ...Array.from({ length: RAW_CLIENTS }, async (_, k) => {
          const raw = await RawClient.open(port, { path: `/?id=${SOCKEYE_CLIENTS + k}` });
          raw.pause();
          raws[k] = raw;
        }),
      ]),
      60_000,
      'every connection',
    );
    t.diagnostic(`${SOCKEYE_CLIENTS + RAW_CLIENTS} connections open in ${(performance.now() - started).toFixed(0)} ms`);

    child.send({ type: 'queue', small: SMALL, large: LARGE, largeFrom: SOCKEYE_CLIENTS });
    const queued = await nextMessage(child, 'queued', 20_000);
    // Listened for from the signal on: the child may finish before the raw clients below have seen
    // their connections close (a message that comes with no listener is lost).
    const closedMessage = nextMessage(child, 'closed', 70_000);
    closedMessage.catch(() => {}); // awaited below; this only keeps an earlier failure from also making an unhandled rejection
    child.kill('SIGTERM');
    t.diagnostic(`queued on ${queued.count} sessions, send statuses ${JSON.stringify(queued.statuses)}`);
    assert.equal(queued.count, SOCKEYE_CLIENTS + RAW_CLIENTS);
    // Some messages did wait in the sessions' queues, behind full kernel buffers: the flush is really tested.
    assert.ok((queued.statuses.queued ?? 0) + (queued.statuses.backpressure ?? 0) > 0, 'no message was queued');

    // The raw clients read again once the shutdown is under way, and answer the close frame.
    await new Promise((r) => setTimeout(r, 200));
    const rawCloseEcho = encodeRawFrame(0x8, closePayload(1001));
    await withTimeout(
      Promise.all(
        raws.map(async (raw) => {
          raw.resume();
          await raw.waitClose(30_000);
          raw.write(rawCloseEcho);
          await raw.waitClosed(30_000);
        }),
      ),
      40_000,
      'the raw clients to get their message and close',
    );

    const closed = await closedMessage;
    assert.equal(closed.clients, SOCKEYE_CLIENTS + RAW_CLIENTS);
    assert.equal(closed.remaining, 0);
    assert.deepEqual(closed.errors, []);
    const exit = await withTimeout(exited, 20_000, 'the child to exit by itself');
    assert.deepEqual(exit, { code: 0, signal: null });

    await withTimeout(Promise.all(clients.map((c) => c.closed)), 30_000, 'every sockeye client to close');
    logs.forEach((log, id) => {
      assert.deepEqual(log.events, ['open', 'message', 'close 1001'], `client ${id}`);
      assert.equal(log.digest, sha(`bye ${id} ` + 'x'.repeat(SMALL)), `client ${id} got its own message, intact`);
      assert.equal(log.closeWasClean, true, `client ${id} closed cleanly`);
    });
    raws.forEach((raw, k) => {
      const id = SOCKEYE_CLIENTS + k;
      assert.deepEqual(
        raw.frames.map((f) => f.opcode),
        [0x1, 0x8],
        `raw client ${id}: its message, then the close`,
      );
      assert.equal(sha(raw.frames[0].payload), sha(`bye ${id} ` + 'x'.repeat(LARGE)), `raw client ${id} got its own message, intact`);
      assert.equal(raw.frames[1].payload.readUInt16BE(0), 1001);
    });
  } finally {
    for (const c of clients) c.terminate();
    for (const r of raws) r?.destroy();
    context.close();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  }
  await assertResourcesBack(baseline);
});
