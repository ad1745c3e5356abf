/**
 * The child process of test/faults/sigterm.test.ts: a sockeye server doing a
 * graceful shutdown on SIGTERM, as an application would.
 *
 * Protocol with the parent (IPC):
 *   child  -> { type: 'listening', port }
 *   parent -> { type: 'queue', small, large, largeFrom }: send every session
 *             one message ("bye <id> xxx..."), of `large` bytes of x for
 *             sessions with id >= largeFrom, `small` for the others; then
 *             answer
 *   child  -> { type: 'queued', count, statuses }
 *   SIGTERM: server.close() (1001 to every session, after what was queued:
 *   invariant S4), then { type: 'closed', clients } and disconnect. The
 *   process then exits by itself, with code 0, only if nothing is left
 *   running: no socket, no timer. A leak shows up as a child that never
 *   exits.
 *
 * Not a test file (no .test.ts): the test runner does not pick it up.
 */
import { createServer, type SendStatus, type ServerSession } from '../../src/index.js';

const errors: string[] = [];
const server = createServer({
  keepalive: null,
  onError: (e) => errors.push(String(e)),
  handler: {
    onMessage(s: ServerSession, m) {
      s.send(m.data, { binary: m.binary });
    },
  },
});

const send = (m: unknown) => process.send!(m);

process.on('message', (m: { type: string; small: number; large: number; largeFrom: number }) => {
  if (m.type !== 'queue') return;
  const statuses: Partial<Record<SendStatus, number>> = {};
  let count = 0;
  for (const s of server.clients) {
    const id = s.request.query.get('id') ?? '?';
    const status = s.send(`bye ${id} ` + 'x'.repeat(Number(id) >= m.largeFrom ? m.large : m.small));
    statuses[status] = (statuses[status] ?? 0) + 1;
    count++;
  }
  send({ type: 'queued', count, statuses });
});

process.once('SIGTERM', () => {
  const clients = server.clients.size;
  void server.close().then(() => {
    send({ type: 'closed', clients, remaining: server.clients.size, errors });
    // Without the IPC channel nothing should keep the process alive.
    process.disconnect();
  });
});

const addr = await server.listen(0, '127.0.0.1');
send({ type: 'listening', port: addr.port });
