/**
 * Interop with Python websockets 10.4 (Debian's python3-websockets), an
 * implementation nobody here wrote, in both directions:
 *
 * - its client against our server (createServer with an echo handler);
 * - our client against its server (websockets.serve, echoing).
 *
 * The Python peers (test/interop/python/*.py) report what they see as JSON
 * lines on stdout, so every test asserts on both sides' view: the SHA-256 of
 * each message each side received, its type, pings and pongs, and the close
 * codes and reasons of the closing handshake (RFC 6455 section 7).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, createServer, type ClientSession, type CloseInfo, type Message, type ServerSession, type WebSocketServer } from '../../src/index.js';
import { pythonWebsocketsAvailable, requirePeer } from '../helpers/peers.js';
import { PythonPeer as PythonPeerProcess, sha256, withTimeout as withTimeoutMs, type PyEvent, type PyMessage } from '../helpers/python-peer.js';

/** Every wait is bounded: a hang fails the test instead of stalling CI. */
const STEP_TIMEOUT_MS = 20_000;
const BIG = 4 * 1024 * 1024;

// This file runs from dist/test/interop/; the Python scripts are not compiled, so they stay in the source tree.
// This file runs from dist/test/interop/; the Python scripts stay in the source tree (see test/helpers/python-peer.ts).
const skip = requirePeer('python3-websockets', pythonWebsocketsAvailable(), 'apt-get install python3-websockets');

const withTimeout = <T>(promise: Promise<T>, what: string, ms = STEP_TIMEOUT_MS): Promise<T> => withTimeoutMs(promise, what, ms);
class PythonPeer extends PythonPeerProcess {
  constructor(script: string, args: string[]) {
    super(script, args, STEP_TIMEOUT_MS);
  }
}

describe('python websockets 10.4 client -> sockeye server', { skip }, () => {
  interface Seen {
    received: Array<{ type: 'text' | 'binary'; len: number; sha: string }>;
    pings: string[];
    pongs: string[];
    close: Promise<CloseInfo>;
    resolveClose: (info: CloseInfo) => void;
  }
  // What our server saw, by request path (each scenario connects to its own path).
  const seen = new Map<string, Seen>();
  const seenAt = (path: string): Seen => {
    let s = seen.get(path);
    if (!s) {
      let resolveClose!: (info: CloseInfo) => void;
      const close = new Promise<CloseInfo>((r) => (resolveClose = r));
      s = { received: [], pings: [], pongs: [], close, resolveClose };
      seen.set(path, s);
    }
    return s;
  };

  let server: WebSocketServer;
  let port: number;
  const peers: PythonPeer[] = [];
  const handlerErrors: unknown[] = [];

  before(async () => {
    server = createServer({
      // No keepalive pings: every ping and pong on the wire is one the test asked for.
      keepalive: null,
      onError: (err) => handlerErrors.push(err),
      handler: {
        onMessage(session: ServerSession, message: Message) {
          const s = seenAt(session.request.path);
          s.received.push({ type: message.binary ? 'binary' : 'text', len: message.data.length, sha: sha256(message.data) });
          if (session.request.path === '/server-close' && message.text === 'ping me') {
            session.ping('sockeye-server-ping');
            return;
          }
          // Echo with the same type (a text message's bytes go back as TEXT).
          session.send(message.data, { binary: message.binary });
        },
        onPing(session: ServerSession, data: Buffer) {
          seenAt(session.request.path).pings.push(data.toString('utf8'));
        },
        onPong(session: ServerSession, data: Buffer) {
          seenAt(session.request.path).pongs.push(data.toString('utf8'));
          if (session.request.path === '/server-close') session.close(4002, 'server says bye');
        },
        onClose(session: ServerSession, info: CloseInfo) {
          seenAt(session.request.path).resolveClose(info);
        },
      },
    });
    port = (await server.listen(0, '127.0.0.1')).port;
  });

  after(async () => {
    for (const p of peers) p.kill();
    await withTimeout(server.close(), 'server.close()');
    assert.deepEqual(handlerErrors, []);
  });

  const runClient = (scenario: string): PythonPeer => {
    const peer = new PythonPeer('client.py', [`ws://127.0.0.1:${port}/${scenario}`, scenario]);
    peers.push(peer);
    return peer;
  };

  it('echoes text, binary, 4 MiB binary and 4 MiB text intact with their types, then sees python close with 1000', async () => {
    const py = runClient('messages');
    const labels = ['text', 'binary', 'big-binary', 'big-text'];
    const echoes: PyEvent[] = [];
    for (const label of labels) echoes.push(await py.waitFor(`echo of ${label}`, (e) => e.event === 'echo' && e.label === label));
    for (const e of echoes) {
      const sent = e.sent as PyMessage;
      const received = e.received as PyMessage;
      assert.deepEqual(received, sent, `${e.label} came back changed`);
    }
    assert.equal((echoes[2].sent as PyMessage).len, BIG);
    assert.equal((echoes[2].sent as PyMessage).type, 'binary');
    assert.equal((echoes[3].sent as PyMessage).len, BIG);
    assert.equal((echoes[3].sent as PyMessage).type, 'text');

    // Python closes with 1000 and no reason (RFC 6455 section 7.1.2).
    const ours = await withTimeout(seenAt('/messages').close, 'our onClose for /messages');
    assert.equal(ours.code, 1000);
    assert.equal(ours.reason, '');
    assert.equal(ours.wasClean, true);
    assert.equal(ours.error, undefined);
    assert.equal(ours.unsentMessages, 0);
    // Our server's view of what arrived matches python's view of what it sent, in order.
    assert.deepEqual(
      seenAt('/messages').received,
      echoes.map((e) => e.sent as PyMessage),
    );

    const closed = await py.waitFor('its close', (e) => e.event === 'closed');
    // Section 5.5.1: our answer echoes the status code python sent.
    assert.equal(closed.code, 1000);
    await py.succeeded();
  });

  it("answers python's ping with a pong carrying its payload, then sees python close with 4001 'bye'", async () => {
    const py = runClient('ping');
    // Python resolves the pong waiter only for a pong whose payload equals the ping's (section 5.5.3).
    const pong = await py.waitFor('the pong', (e) => e.event === 'pong');
    assert.equal(pong.payload, 'py-ping');

    const ours = await withTimeout(seenAt('/ping').close, 'our onClose for /ping');
    assert.deepEqual(seenAt('/ping').pings, ['py-ping']);
    assert.equal(ours.code, 4001);
    assert.equal(ours.reason, 'bye');
    assert.equal(ours.wasClean, true);
    assert.equal(ours.error, undefined);

    const closed = await py.waitFor('its close', (e) => e.event === 'closed');
    assert.equal(closed.code, 4001);
    await py.succeeded();
  });

  it("gets python's pong to a server ping, and python sees our close with 4002 'server says bye'", async () => {
    const py = runClient('server-close');
    const closed = await py.waitFor('the close', (e) => e.event === 'closed');
    // Sections 7.1.5 and 7.1.6: the code and reason of the close frame our server sent.
    assert.equal(closed.code, 4002);
    assert.equal(closed.reason, 'server says bye');
    const messages = await py.waitFor('the messages it got', (e) => e.event === 'messages');
    assert.deepEqual(messages.received, [], 'the server sent no data message');

    const s = seenAt('/server-close');
    const ours = await withTimeout(s.close, 'our onClose for /server-close');
    // Python answers a ping with a pong carrying the same payload (section 5.5.2).
    assert.deepEqual(s.pongs, ['sockeye-server-ping']);
    assert.equal(ours.wasClean, true);
    assert.equal(ours.code, 4002, 'python echoes the close code it received');
    assert.equal(ours.error, undefined);
    await py.succeeded();
  });
});

describe('sockeye client -> python websockets 10.4 server', { skip }, () => {
  let py: PythonPeer;
  let port: number;
  const clients: ClientSession[] = [];

  before(async () => {
    py = new PythonPeer('server.py', []);
    const listening = await py.waitFor('the port it listens on', (e) => e.event === 'listening');
    port = listening.port as number;
    assert.ok(Number.isInteger(port) && port > 0, `bad port ${port}`);
  });

  after(async () => {
    for (const c of clients) c.terminate();
    // EOF on stdin asks the server to stop; it is killed anyway if it does not.
    py.child.stdin!.end();
    try {
      await py.succeeded();
    } finally {
      py.kill();
    }
  });

  const open = async (path: string, pongs: Buffer[] = []): Promise<ClientSession> => {
    const client = await withTimeout(
      connect(`ws://127.0.0.1:${port}${path}`, {
        // No keepalive pings: every ping on the wire is the test's.
        keepalive: null,
        // No onMessage: messages are read through messages().
        handler: { onPong: (_s, data) => pongs.push(Buffer.from(data)) },
      }),
      `connect to ${path}`,
    );
    clients.push(client);
    return client;
  };

  const next = async (it: AsyncIterator<Message>, what: string): Promise<Message> => {
    const r = await withTimeout(it.next(), what);
    assert.equal(r.done, false, `the connection ended before ${what}`);
    return r.value as Message;
  };

  it('gets text, binary, 4 MiB binary and 4 MiB text echoed intact with their types, then closes with 1000', async () => {
    const client = await open('/messages');
    const bigText = 'abcdefg\u00e9\u20ac\u{1d11e}'.repeat(BIG / 16); // 16 UTF-8 bytes per unit: exactly 4 MiB
    const payloads: Array<{ label: string; data: string | Buffer }> = [
      { label: 'text', data: 'hello from sockeye \u2713' },
      { label: 'binary', data: randomBytes(1000) },
      { label: 'big-binary', data: randomBytes(BIG) },
      { label: 'big-text', data: bigText },
    ];
    assert.equal(Buffer.byteLength(bigText), BIG);
    const it = client.messages();
    const expected: PyMessage[] = [];
    for (const { label, data } of payloads) {
      const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      const want: PyMessage = { type: typeof data === 'string' ? 'text' : 'binary', len: bytes.length, sha: sha256(bytes) };
      expected.push(want);
      assert.notEqual(client.send(data), 'dropped');
      const m = await next(it, `the echo of ${label}`);
      assert.equal(m.binary, want.type === 'binary', `${label} came back with the wrong type`);
      assert.equal(m.data.length, want.len, `${label} came back with the wrong length`);
      assert.equal(sha256(m.data), want.sha, `${label} came back changed`);
      if (typeof data === 'string') assert.equal(m.text, data);
    }

    client.close(1000);
    const info = await withTimeout(client.closed, 'our close to finish');
    assert.deepEqual({ code: info.code, reason: info.reason, wasClean: info.wasClean, error: info.error }, { code: 1000, reason: '', wasClean: true, error: undefined });
    assert.equal(info.unsentMessages, 0);
    const end = await withTimeout(it.next(), 'messages() to end');
    assert.equal(end.done, true);

    // Python's view: each message arrived with our hash and type, in order, and our close code.
    const closed = await py.waitFor('the close of /messages', (e) => e.event === 'closed' && e.path === '/messages');
    assert.equal(closed.code, 1000);
    assert.equal(closed.reason, '');
    const received = py.events.filter((e) => e.event === 'received' && e.path === '/messages').map((e) => e.message as PyMessage);
    assert.deepEqual(received, expected);
  });

  it("gets a pong for session.ping(), then closes with 4001 'bye' and python sees both", async () => {
    const pongs: Buffer[] = [];
    const client = await open('/ping', pongs);
    assert.notEqual(client.ping('sockeye-ping'), 'dropped');
    // The pong arrives before the echo of a message sent after the ping (python answers in order).
    client.send('after the ping');
    const m = await next(client.messages(), 'the echo after the ping');
    assert.equal(m.text, 'after the ping');
    // RFC 6455 section 5.5.3: the pong carries the ping's application data.
    assert.deepEqual(pongs.map((b) => b.toString('utf8')), ['sockeye-ping']);

    client.close(4001, 'bye');
    const info = await withTimeout(client.closed, 'our close to finish');
    assert.equal(info.wasClean, true);
    assert.equal(info.code, 4001, 'python echoes the close code it received');
    assert.equal(info.error, undefined);

    const closed = await py.waitFor('the close of /ping', (e) => e.event === 'closed' && e.path === '/ping');
    assert.equal(closed.code, 4001);
    assert.equal(closed.reason, 'bye');
  });

  it("sees python's close with 4003 'py bye' in CloseInfo", async () => {
    const client = await open('/py-close');
    client.send('py-close-please');
    const info = await withTimeout(client.closed, "python's close to finish");
    assert.equal(info.code, 4003);
    assert.equal(info.reason, 'py bye');
    assert.equal(info.wasClean, true);
    assert.equal(info.error, undefined);
    assert.equal(client.state, 'closed');

    // Section 5.5.1: our answering close frame echoes python's code.
    const closed = await py.waitFor('the close of /py-close', (e) => e.event === 'closed' && e.path === '/py-close');
    assert.equal(closed.code, 4003);
    const received = py.events.filter((e) => e.event === 'received' && e.path === '/py-close').map((e) => e.message as PyMessage);
    assert.deepEqual(received, [{ type: 'text', len: 15, sha: sha256('py-close-please') }]);
  });
});
