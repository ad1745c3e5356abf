/**
 * Nothing lost (invariant S4): one side sends numbered messages as
 * fast as flow control lets it and then closes; the other side receives
 * every one of them, in order and byte for byte, before its close event —
 * for ws and wss, with and without permessage-deflate, small and large
 * messages, in both directions (16 cases), and for wss over HTTP/2, each
 * WebSocket an RFC 8441 stream (8 cases more).
 *
 *   client -> server: the client sends, then close(1000); the server's
 *     onClose must come after the last message, with the count complete.
 *   server -> client: the server sends from onOpen, then close(1000); the
 *     client's messages() must yield every message in order and then end
 *     cleanly (RFC 6455 section 7.1.2: a graceful close flushes what was
 *     queued before the close frame, invariant S4).
 *
 * Sizes: 100,000 small messages (16-byte text); large messages are 64 KiB
 * binary and there are 2,000 of them (128 MiB per case) to keep the file
 * bounded in time. With compression, the threshold is 0 so that every
 * message, small ones included, really goes through deflate (RFC 7692),
 * and the test checks that the extension was negotiated. Each compressed
 * message is one zlib job (about 5,000-7,000 small messages a second per
 * direction on this 2-core machine), so the compressed small cases send
 * 20,000 messages here, or the full 100,000 with NOTHING_LOST_FULL=1
 * (about 20-30 s per case).
 *
 * The sender respects backpressure (send() answering 'backpressure' ->
 * requestWritable() -> onWritable) and no send may answer 'dropped'.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { connect, createServer, type ClientSession, type ServerHandler, type Session, type WebSocketServer } from '../../src/index.js';
import type { CloseInfo, Message } from '../../src/transport/types.js';
import { testCert } from '../helpers/certs.js';

const SMALL = { name: 'small', size: 16, count: 100_000, binary: false };
const SMALL_COMPRESSED = { ...SMALL, count: process.env.NOTHING_LOST_FULL ? 100_000 : 20_000 };
const LARGE = { name: 'large', size: 64 * 1024, count: 2_000, binary: true };
type Size = typeof SMALL;

// Payload i: the sequence number, then a slice of a fixed pattern that depends on i, so that a message
// lost, duplicated, reordered or corrupted anywhere (not only in its header) fails the comparison.
// Half random (deflate does real work), half text (deflate finds matches).
const PATTERN = Buffer.alloc(256 * 1024);
randomFillSync(PATTERN, 0, PATTERN.length / 2);
PATTERN.fill('the quick brown fox jumps over the lazy dog 0123456789 ', PATTERN.length / 2);
const TEXT_PATTERN = Buffer.from('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'.repeat(8));

function payload(size: Size, i: number): Buffer {
  if (!size.binary) {
    // 16 bytes of text: 8 hex digits of the number, ':', 7 characters that depend on it.
    const head = i.toString(16).padStart(8, '0') + ':';
    const off = (i * 31) % (TEXT_PATTERN.length - 7);
    return Buffer.concat([Buffer.from(head), TEXT_PATTERN.subarray(off, off + 7)]);
  }
  const b = Buffer.allocUnsafe(size.size);
  b.writeUInt32BE(i, 0);
  b.writeUInt32BE(~i >>> 0, 4);
  const off = (i * 7919) % (PATTERN.length - size.size);
  PATTERN.copy(b, 8, off, off + size.size - 8);
  return b;
}

/** Checks messages as they arrive: the count of those in order, and the first problem. */
class Receiver {
  next = 0;
  problem: string | null = null;
  constructor(private readonly size: Size) {}
  take(m: Message): void {
    if (this.problem) return;
    if (m.binary !== this.size.binary) this.problem = `message ${this.next}: binary=${m.binary}`;
    else if (!m.data.equals(payload(this.size, this.next))) this.problem = `message ${this.next}: got ${m.data.subarray(0, 9).toString('hex')}... (${m.data.length} bytes)`;
    else this.next++;
  }
}

/** Sends count messages, pausing on backpressure until onWritable; then closes with 1000. */
async function produce(session: Session<unknown>, size: Size, writable: { wait: () => Promise<void> }): Promise<void> {
  for (let i = 0; i < size.count; i++) {
    const status = session.send(payload(size, i), { binary: size.binary });
    if (status === 'dropped') throw new Error(`send ${i} was dropped`);
    if (status === 'backpressure') await writable.wait();
  }
  session.close(1000, 'all sent');
}

/** onWritable plumbing: wait() requests a callback and resolves when it fires. */
function writableGate(): { wait: (s: Session<unknown>) => Promise<void>; fire: () => void } {
  let resolve: (() => void) | null = null;
  return {
    wait(s) {
      return new Promise<void>((r) => {
        resolve = r;
        s.requestWritable();
      });
    },
    fire() {
      const r = resolve;
      resolve = null;
      r?.();
    },
  };
}

interface Case {
  secure: boolean;
  compressed: boolean;
  size: Size;
  /** The client connects over HTTP/2 (the server offers h2 by ALPN on its TLS port). */
  http2?: boolean;
}

const deflate = { threshold: 0 };

async function startServer(c: Case, handler: ServerHandler): Promise<{ server: WebSocketServer; url: string }> {
  const cert = c.secure ? testCert() : null;
  const server = createServer({
    host: '127.0.0.1',
    tls: cert ? { key: cert.key, cert: cert.cert } : undefined,
    perMessageDeflate: c.compressed ? deflate : false,
    keepalive: null,
    // 64 KiB messages: well within the default limits; the queue limit must hold what the producer may queue.
    handler,
  });
  const { port } = await server.listen(0, '127.0.0.1');
  return { server, url: `${c.secure ? 'wss' : 'ws'}://127.0.0.1:${port}/` };
}

function clientOptions(c: Case) {
  return {
    tls: c.secure ? { ca: testCert().ca } : undefined,
    perMessageDeflate: c.compressed ? deflate : false,
    keepalive: null,
    ...(c.http2 ? { http2: 'require' as const } : {}),
  };
}

async function clientToServer(c: Case): Promise<void> {
  const rx = new Receiver(c.size);
  let resolveClose!: (v: { info: CloseInfo; receivedAtClose: number; problem: string | null; extensions: readonly string[] }) => void;
  const serverClosed = new Promise<{ info: CloseInfo; receivedAtClose: number; problem: string | null; extensions: readonly string[] }>((r) => (resolveClose = r));
  const { server, url } = await startServer(c, {
    onMessage: (_s, m) => rx.take(m),
    // What the server has received at the moment its close event fires.
    onClose: (s, info) => resolveClose({ info, receivedAtClose: rx.next, problem: rx.problem, extensions: s.extensions }),
  });
  let client: ClientSession | undefined;
  try {
    const gate = writableGate();
    client = await connect(url, { ...clientOptions(c), handler: { onWritable: () => gate.fire(), onMessage: () => {} } });
    const session = client;
    assert.equal(session.http2, c.http2 === true);
    assert.deepEqual([...session.extensions], c.compressed ? ['permessage-deflate'] : []);
    await produce(session, c.size, { wait: () => gate.wait(session) });
    const clientInfo = await session.closed;
    const s = await serverClosed;
    assert.equal(s.problem, null);
    assert.equal(s.receivedAtClose, c.size.count, `server had ${s.receivedAtClose} of ${c.size.count} messages at its close event`);
    assert.deepEqual([s.info.code, s.info.wasClean], [1000, true]);
    assert.deepEqual([clientInfo.code, clientInfo.wasClean, clientInfo.unsentMessages], [1000, true, 0]);
    assert.deepEqual([...s.extensions], c.compressed ? ['permessage-deflate'] : []);
  } finally {
    client?.terminate();
    await server.close();
  }
}

async function serverToClient(c: Case): Promise<void> {
  let serverDone!: (v: { info: CloseInfo; error: unknown }) => void;
  const serverClosed = new Promise<{ info: CloseInfo; error: unknown }>((r) => (serverDone = r));
  let producing: Promise<void> = Promise.resolve();
  const gate = writableGate();
  const { server, url } = await startServer(c, {
    onOpen: (s) => {
      producing = produce(s as Session<unknown>, c.size, { wait: () => gate.wait(s as Session<unknown>) });
    },
    onWritable: () => gate.fire(),
    onClose: (_s, info) => void producing.then(() => serverDone({ info, error: null }), (error: unknown) => serverDone({ info, error })),
  });
  let client: ClientSession | undefined;
  try {
    client = await connect(url, clientOptions(c));
    assert.equal(client.http2, c.http2 === true);
    assert.deepEqual([...client.extensions], c.compressed ? ['permessage-deflate'] : []);
    const rx = new Receiver(c.size);
    // messages() yields every message in order, then ends (does not throw) after the clean close.
    for await (const m of client.messages()) rx.take(m);
    assert.equal(rx.problem, null);
    assert.equal(rx.next, c.size.count, `client got ${rx.next} of ${c.size.count} messages before messages() ended`);
    const info = await client.closed;
    assert.deepEqual([info.code, info.wasClean], [1000, true]);
    const s = await serverClosed;
    assert.equal(s.error, null);
    assert.deepEqual([s.info.code, s.info.wasClean, s.info.unsentMessages], [1000, true, 0]);
  } finally {
    client?.terminate();
    await server.close();
  }
}

for (const [secure, http2] of [[false, false], [true, false], [true, true]]) {
  for (const compressed of [false, true]) {
    for (const size of [SMALL, LARGE]) {
      const c: Case = { secure, http2, compressed, size: compressed && size === SMALL ? SMALL_COMPRESSED : size };
      const label = `${secure ? 'wss' : 'ws'}${http2 ? ' over HTTP/2' : ''}, ${compressed ? 'compressed' : 'uncompressed'}, ${c.size.count} ${size.name} (${size.size} B)`;
      test(`nothing lost client -> server: ${label}`, { timeout: 120_000 }, () => clientToServer(c));
      test(`nothing lost server -> client: ${label}`, { timeout: 120_000 }, () => serverToClient(c));
    }
  }
}

/**
 * The close timeout counts from write progress, and frames the codec releases
 * while closing are progress: a compressed backlog that takes longer than
 * closeTimeoutMs to go out must still go out whole before the close frame,
 * not be aborted with the rest lost (with 100,000 small compressed messages
 * the codec can hold tens of thousands of them at close()). Here the
 * sender's close timeout is 300 ms and its backlog takes seconds.
 */
test('a compressed backlog that outlasts closeTimeoutMs still goes out whole before the close frame', { timeout: 120_000 }, async () => {
  // 40,000 small messages take the sender's codec several seconds (the whole test about 15 s here), past the close
  // timeout below.
  // The timeout is 4 s, not tighter: once the sender's last frame is in the kernel, the receiver still has
  // the loopback socket buffers' worth of tiny compressed frames to inflate before it reads the close frame
  // (it bounds its inflate backlog by pausing reads), and at 2 s that tail sometimes took longer.
  const closeTimeoutMs = 4000;
  const size = { ...SMALL, count: 40_000 };
  const rx = new Receiver(size);
  let resolveClose!: (v: { info: CloseInfo; receivedAtClose: number }) => void;
  const serverClosed = new Promise<{ info: CloseInfo; receivedAtClose: number }>((r) => (resolveClose = r));
  const { server, url } = await startServer({ secure: false, compressed: true, size }, {
    onMessage: (_s, m) => rx.take(m),
    onClose: (_s, info) => resolveClose({ info, receivedAtClose: rx.next }),
  });
  let client: ClientSession | undefined;
  try {
    // Each pending codec job counts ~1 KiB in bufferedAmount, so the queue limit is raised to let all 40,000 in at once.
    client = await connect(url, { perMessageDeflate: deflate, keepalive: null, closeTimeoutMs, limits: { maxQueuedBytes: 128 << 20 } });
    // No pacing: all 40,000 go to the codec at once.
    for (let i = 0; i < size.count; i++) assert.notEqual(client.send(payload(size, i), { binary: false }), 'dropped');
    client.close(1000);
    const info = await client.closed;
    const s = await serverClosed;
    assert.deepEqual([info.code, info.wasClean, info.unsentMessages, info.error?.code], [1000, true, 0, undefined]);
    assert.equal(rx.problem, null);
    assert.equal(s.receivedAtClose, size.count);
  } finally {
    client?.terminate();
    await server.close();
  }
});
