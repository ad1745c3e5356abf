/**
 * permessage-deflate interop with Python websockets 10.4 (Debian's
 * python3-websockets), both directions, with compression negotiated and used:
 *
 * - its client (compression="deflate", and a custom offer without context
 *   takeover and with limited windows) against our server;
 * - our client (default offer, and one asking for no context takeover)
 *   against its server (python's defaults: server_max_window_bits=12,
 *   client_max_window_bits=12; and a variant answering no context takeover).
 *
 * Text and binary from 1 byte to 16 MiB (max_size=None), checked with SHA-256
 * on both sides. Both sides report the agreed parameters (Python:
 * ws.extensions; ours: session.extensions and the 101 answer), and a
 * byte-counting relay between them shows the compression on the wire: every
 * message goes through zlib both ways (Python compresses everything; our
 * side is given threshold 0), so the bytes on the wire must be well under the
 * payload bytes in each direction.
 *
 * The Python peers are test/interop/python/deflate_client.py and
 * deflate_server.py; they report JSON lines on stdout.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startCounter, type Counter } from '../helpers/byte-counter.js';
import { connect, createServer, type ClientSession, type CloseInfo, type Message, type ServerSession, type WebSocketServer } from '../../src/index.js';
import type { PerMessageDeflateOptions } from '../../src/transport/permessage-deflate.js';
import { pythonWebsocketsAvailable, requirePeer } from '../helpers/peers.js';
import { PythonPeer as PythonPeerProcess, sha256, withTimeout as withTimeoutMs, type PyEvent, type PyMessage } from '../helpers/python-peer.js';
import { utf8Text } from '../helpers/ws-pair.js';

/** Every wait is bounded: a hang fails the test instead of stalling CI. */
const STEP_TIMEOUT_MS = 60_000;
const KiB = 1024;
const MiB = 1024 * 1024;
const SIZES = [1, 1000, 64 * KiB, MiB, 16 * MiB];

// This file runs from dist/test/interop/; the Python scripts are not compiled, so they stay in the source tree.
// This file runs from dist/test/interop/; the Python scripts stay in the source tree (see test/helpers/python-peer.ts).
const skip = requirePeer('python3-websockets', pythonWebsocketsAvailable(), 'apt-get install python3-websockets');

const withTimeout = <T>(promise: Promise<T>, what: string, ms = STEP_TIMEOUT_MS): Promise<T> => withTimeoutMs(promise, what, ms);
class PythonPeer extends PythonPeerProcess {
  constructor(script: string, args: string[]) {
    super(script, args, STEP_TIMEOUT_MS);
  }
}


/** Python's view of the agreed permessage-deflate parameters (deflate_common.describe_extensions). */
interface PyExtension {
  name: string;
  remote_no_context_takeover: boolean;
  local_no_context_takeover: boolean;
  remote_max_window_bits: number;
  local_max_window_bits: number;
}


/** The compression on the wire: bytes both ways well under the payload bytes (without it they would exceed them). */
function assertCompressedOnWire(counter: Counter, payloadBytes: number): string {
  assert.ok(counter.up < payloadBytes * 0.7, `client to server: ${counter.up} bytes on the wire for ${payloadBytes} bytes of messages`);
  assert.ok(counter.down < payloadBytes * 0.7, `server to client: ${counter.down} bytes on the wire for ${payloadBytes} bytes of messages`);
  return `on the wire: ${counter.up} bytes up, ${counter.down} bytes down, for ${payloadBytes} bytes of messages each way`;
}

describe('python websockets client -> sockeye server, permessage-deflate', { skip }, () => {
  const variants: Array<{ name: string; expectPy: Omit<PyExtension, 'name'>; answer: RegExp[] }> = [
    {
      // Python's own offer: "permessage-deflate; client_max_window_bits"; our defaults answer with no parameters.
      name: 'default',
      expectPy: { remote_no_context_takeover: false, local_no_context_takeover: false, remote_max_window_bits: 15, local_max_window_bits: 15 },
      answer: [/^permessage-deflate$/],
    },
    {
      name: 'no-takeover',
      // Python's view: remote = our server, local = itself.
      expectPy: { remote_no_context_takeover: true, local_no_context_takeover: true, remote_max_window_bits: 10, local_max_window_bits: 11 },
      answer: [/server_no_context_takeover/, /client_no_context_takeover/, /server_max_window_bits=10/, /client_max_window_bits=11/],
    },
  ];

  let server: WebSocketServer;
  let port: number;
  const peers: PythonPeer[] = [];
  const handlerErrors: unknown[] = [];
  const received = new Map<string, PyMessage[]>();
  const extensions = new Map<string, readonly string[]>();
  const closes = new Map<string, CloseInfo>();

  before(async () => {
    server = createServer({
      keepalive: null,
      perMessageDeflate: { threshold: 0 },
      limits: { maxMessageBytes: 32 * MiB, maxQueuedBytes: 128 * MiB },
      onError: (err) => handlerErrors.push(err),
      handler: {
        onOpen(session: ServerSession) {
          extensions.set(session.request.path, session.extensions);
          received.set(session.request.path, []);
        },
        onMessage(session: ServerSession, message: Message) {
          received.get(session.request.path)!.push({ type: message.binary ? 'binary' : 'text', len: message.data.length, sha: sha256(message.data) });
          session.send(message.data, { binary: message.binary });
        },
        onClose(session: ServerSession, info: CloseInfo) {
          closes.set(session.request.path, info);
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

  for (const v of variants) {
    it(`${v.name}: text and binary, 1 byte to 16 MiB, echoed intact, compressed both ways`, { timeout: 180_000 }, async (t) => {
      const counter = await startCounter(port);
      try {
        const path = `/${v.name}`;
        const py = new PythonPeer('deflate_client.py', [`ws://127.0.0.1:${counter.port}${path}`, v.name]);
        peers.push(py);
        const open = await py.waitFor('open', (e) => e.event === 'open');
        // Negotiated on both sides, with the same parameters.
        const pyExt = open.extensions as PyExtension[];
        assert.equal(pyExt.length, 1);
        assert.deepEqual(pyExt[0], { name: 'permessage-deflate', ...v.expectPy });
        for (const re of v.answer) assert.match(String(open.response_extensions), re);
        assert.deepEqual(extensions.get(path), ['permessage-deflate']);

        const labels = SIZES.flatMap((size) => [`text-${size}`, `binary-${size}`]);
        const echoes: PyEvent[] = [];
        for (const label of labels) echoes.push(await py.waitFor(`echo of ${label}`, (e) => e.event === 'echo' && e.label === label));
        for (const e of echoes) assert.deepEqual(e.received, e.sent, `${e.label} came back changed`);
        // Our server's view of what arrived: python's view of what it sent, in order.
        assert.deepEqual(
          received.get(path),
          echoes.map((e) => e.sent as PyMessage),
        );
        const closed = await py.waitFor('its close', (e) => e.event === 'closed');
        assert.equal(closed.code, 1000);
        await py.succeeded();
        const ours = closes.get(path);
        assert.equal(ours?.code, 1000);
        assert.equal(ours?.wasClean, true);

        const payloadBytes = echoes.reduce((n, e) => n + (e.sent as PyMessage).len, 0);
        t.diagnostic(assertCompressedOnWire(counter, payloadBytes));
      } finally {
        await counter.close();
      }
    });
  }
});

describe('sockeye client -> python websockets server, permessage-deflate', { skip }, () => {
  const variants: Array<{ name: string; server: 'default' | 'no-takeover'; ours: PerMessageDeflateOptions; expectPy: Omit<PyExtension, 'name'>; answer: RegExp[] }> = [
    {
      // Python's server defaults: windows of 12 bits both ways.
      name: 'our default offer, python default server',
      server: 'default',
      ours: { threshold: 0 },
      expectPy: { remote_no_context_takeover: false, local_no_context_takeover: false, remote_max_window_bits: 12, local_max_window_bits: 12 },
      answer: [/server_max_window_bits=12/, /client_max_window_bits=12/],
    },
    {
      name: 'we ask for no context takeover either way',
      server: 'default',
      ours: { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true },
      expectPy: { remote_no_context_takeover: true, local_no_context_takeover: true, remote_max_window_bits: 12, local_max_window_bits: 12 },
      answer: [/server_no_context_takeover/, /client_no_context_takeover/, /server_max_window_bits=12/, /client_max_window_bits=12/],
    },
    {
      name: 'python server answers no context takeover',
      server: 'no-takeover',
      ours: { threshold: 0 },
      expectPy: { remote_no_context_takeover: true, local_no_context_takeover: true, remote_max_window_bits: 12, local_max_window_bits: 12 },
      answer: [/server_no_context_takeover/, /client_no_context_takeover/],
    },
  ];

  const servers = new Map<string, { py: PythonPeer; port: number }>();
  const clients: ClientSession[] = [];

  before(async () => {
    for (const kind of ['default', 'no-takeover'] as const) {
      const py = new PythonPeer('deflate_server.py', [kind]);
      const listening = await py.waitFor('the port it listens on', (e) => e.event === 'listening');
      servers.set(kind, { py, port: listening.port as number });
    }
  });

  after(async () => {
    for (const c of clients) c.terminate();
    for (const { py } of servers.values()) {
      // EOF on stdin asks the server to stop; it is killed anyway if it does not.
      py.child.stdin!.end();
      try {
        await py.succeeded();
      } finally {
        py.kill();
      }
    }
  });

  for (const [i, v] of variants.entries()) {
    it(`${v.name}: text and binary, 1 byte to 16 MiB, echoed intact, compressed both ways`, { timeout: 180_000 }, async (t) => {
      const { py, port } = servers.get(v.server)!;
      const counter = await startCounter(port);
      try {
        const path = `/variant-${i}`;
        const client = await withTimeout(
          connect(`ws://127.0.0.1:${counter.port}${path}`, { keepalive: null, perMessageDeflate: v.ours, limits: { maxMessageBytes: 32 * MiB, maxQueuedBytes: 128 * MiB } }),
          `connect to ${path}`,
        );
        clients.push(client);
        assert.deepEqual([...client.extensions], ['permessage-deflate']);
        const answer = client.responseHeaders.get('sec-websocket-extensions')?.[0] ?? '';
        for (const re of v.answer) assert.match(answer, re);
        const open = await py.waitFor(`the open of ${path}`, (e) => e.event === 'open' && e.path === path);
        assert.deepEqual(open.extensions, [{ name: 'permessage-deflate', ...v.expectPy }]);

        const it = client.messages();
        const expected: PyMessage[] = [];
        let payloadBytes = 0;
        for (const size of SIZES) {
          for (const kind of ['text', 'binary'] as const) {
            const data: string | Buffer = kind === 'text' ? utf8Text(size, size + i) : Buffer.concat([randomBytes(size >> 1), Buffer.alloc(size - (size >> 1))]);
            const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
            const want: PyMessage = { type: kind, len: bytes.length, sha: sha256(bytes) };
            expected.push(want);
            payloadBytes += bytes.length;
            assert.notEqual(client.send(data), 'dropped');
            const r = await withTimeout(it.next(), `the echo of ${kind}-${size}`);
            assert.equal(r.done, false);
            const m = r.value as Message;
            assert.equal(m.binary, kind === 'binary', `${kind}-${size} came back with the wrong type`);
            assert.equal(m.data.length, size);
            assert.equal(sha256(m.data), want.sha, `${kind}-${size} came back changed`);
          }
        }
        client.close(1000);
        const info = await withTimeout(client.closed, 'our close to finish');
        assert.equal(info.code, 1000);
        assert.equal(info.wasClean, true);
        assert.equal(info.unsentMessages, 0);

        // Python's view: each message arrived with our hash and type, in order.
        await py.waitFor(`the close of ${path}`, (e) => e.event === 'closed' && e.path === path);
        const got = py.events.filter((e) => e.event === 'received' && e.path === path).map((e) => e.message as PyMessage);
        assert.deepEqual(got, expected);
        t.diagnostic(assertCompressedOnWire(counter, payloadBytes));
      } finally {
        await counter.close();
      }
    });
  }
});
