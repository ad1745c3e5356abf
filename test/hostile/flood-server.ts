/**
 * The child process of test/hostile/floods.test.ts: a sockeye echo server in
 * a process of its own, so that what the flooders and the canary cost in the
 * test process (their buffers, their CPU) is never counted as the server's.
 *
 * argv[2] (optional): JSON of the server's `limits` option; none means the
 * library's defaults. Keepalive is off: the test's pings must be the only ones.
 *
 * Protocol with the parent (IPC):
 *   child  -> { type: 'listening', port, pid }
 *   parent -> { type: 'memory' }: two full GCs, then
 *   child  -> { type: 'memory', rss }
 *   parent -> { type: 'rss' } (no GC, for systems without /proc)
 *   child  -> { type: 'rss', rss }
 *   parent -> { type: 'stats', path }
 *   child  -> { type: 'stats', path, stats }: what the server saw of every
 *             session opened on `path` (FloodSessionStats), null if none
 * The child exits when the IPC channel closes, so that it never outlives
 * the test (which also kills it in its after hooks).
 *
 * Not a test file (no .test.ts): the test runner does not pick it up.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createServer, type CloseInfo, type Message, type ServerSession, type SessionLimits, type WebSocketError } from '../../src/index.js';

/** What the server saw of one session: the flooder's outcome as the server tells it. */
export interface FloodSessionStats {
  path: string;
  messages: number;
  pings: number;
  pongs: number;
  /** Echoes send() accepted (sent, queued or backpressure). */
  echoed: number;
  /** Echoes send() refused with 'dropped' (over maxQueuedBytes): reported, never lost silently (S4). */
  dropped: number;
  /** The largest bufferedAmount seen after a send or a ping. */
  maxBuffered: number;
  /** The `code` of every error given to the handler's onError. */
  errors: string[];
  close: { code: number; reason: string; wasClean: boolean; error: string | null; unsentMessages: number } | null;
}

export type FloodServerRequest = { type: 'memory' } | { type: 'rss' } | { type: 'stats'; path: string };

export type FloodServerReply =
  | { type: 'listening'; port: number; pid: number }
  | { type: 'memory'; rss: number }
  | { type: 'rss'; rss: number }
  | { type: 'stats'; path: string; stats: FloodSessionStats | null };

const limits = process.argv[2] ? (JSON.parse(process.argv[2]) as Partial<SessionLimits>) : undefined;

/** A forced full GC (the V8 flag is set at runtime; the function comes from a fresh context). */
function makeGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}
const gc = makeGc();

const byPath = new Map<string, FloodSessionStats>();
const statsOf = new WeakMap<ServerSession, FloodSessionStats>();

function stats(s: ServerSession): FloodSessionStats {
  let st = statsOf.get(s);
  if (!st) {
    st = { path: s.request.path, messages: 0, pings: 0, pongs: 0, echoed: 0, dropped: 0, maxBuffered: 0, errors: [], close: null };
    statsOf.set(s, st);
    byPath.set(st.path, st);
  }
  return st;
}

function noteBuffered(s: ServerSession, st: FloodSessionStats): void {
  const b = s.bufferedAmount;
  if (b > st.maxBuffered) st.maxBuffered = b;
}

const server = createServer({
  keepalive: null,
  ...(limits ? { limits } : {}),
  onError: () => {},
  handler: {
    onOpen(s: ServerSession) {
      stats(s);
    },
    onMessage(s: ServerSession, m: Message) {
      const st = stats(s);
      st.messages++;
      if (s.send(m.data, { binary: m.binary }) === 'dropped') st.dropped++;
      else st.echoed++;
      noteBuffered(s, st);
    },
    onPing(s: ServerSession) {
      const st = stats(s);
      st.pings++;
      noteBuffered(s, st);
    },
    onPong(s: ServerSession) {
      stats(s).pongs++;
    },
    onError(s: ServerSession, e: WebSocketError) {
      const st = stats(s);
      // Bounded: a flood of dropped sends records its code once per kind.
      if (!st.errors.includes(e.code)) st.errors.push(e.code);
    },
    onClose(s: ServerSession, info: CloseInfo) {
      stats(s).close = { code: info.code, reason: info.reason, wasClean: info.wasClean, error: info.error?.code ?? null, unsentMessages: info.unsentMessages };
    },
  },
});

const reply = (m: FloodServerReply) => process.send!(m);

process.on('message', (m: FloodServerRequest) => {
  if (m.type === 'memory') {
    // Two collections: the first can leave garbage that only its finalizers released.
    gc();
    gc();
    // Answer after the current I/O phase, so that sockets closed in it are gone.
    setImmediate(() => reply({ type: 'memory', rss: process.memoryUsage().rss }));
  } else if (m.type === 'rss') {
    reply({ type: 'rss', rss: process.memoryUsage().rss });
  } else if (m.type === 'stats') {
    reply({ type: 'stats', path: m.path, stats: byPath.get(m.path) ?? null });
  }
});

// The parent went away (or closed the channel): nothing may keep this server running.
process.once('disconnect', () => {
  for (const s of server.clients) s.terminate();
  // Bounded: a close that does not finish at once still ends the process.
  setTimeout(() => process.exit(0), 2000).unref();
  void server.close().finally(() => process.exit(0));
});

const addr = await server.listen(0, '127.0.0.1');
reply({ type: 'listening', port: addr.port, pid: process.pid });
