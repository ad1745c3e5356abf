/**
 * Hostile input: a ping flood. RFC 6455 section 5.5.2 says a Ping gets a
 * Pong "as soon as is practical"; section 5.5.3 lets an endpoint that has
 * not yet sent the Pong for earlier Pings answer "only the most recently
 * processed Ping". A client that sends 100,000 pings as fast as it can must
 * not be able to grow the server's memory without bound (invariant S3), nor
 * stall the other connections.
 *
 * With the default limits.maxControlFramesPerSecond (1000, a token bucket:
 * 1000 at once, refilled at 1000 a second) such a flooder is failed with 1008
 * (policy violation, RFC 6455 section 7.4.1) once it has spent the bucket;
 * the canary is unaffected. The first two cases run on a server with that
 * limit disabled (0), to show what the pong path does on its own under a
 * flood:
 *
 * - A flooder that reads its pongs: every ping is answered, in order. (All
 *   100,000 pongs together are 600 kB, less than maxQueuedBytes, so none may
 *   be skipped.)
 * - A flooder that never reads: pongs cannot leave, so they wait in the
 *   session's outbound queue; that queue stays under maxQueuedBytes (a pong
 *   that would go past it replaces the newest pong still waiting, as section
 *   5.5.3 allows), memory stays bounded, and once the flooder reads again it
 *   gets pongs in order, the last one answering its last ping. The
 *   connection stays open: pinging is not a protocol violation.
 *
 * All: the canary keeps echoing and the server accepts new connections.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { DEFAULT_LIMITS } from '../../src/core/index.js';
import { FrameScanner, HOSTILE_LIMITS, HostileBench, MemoryWatch, MiB, assertMemoryBounded, rawUpgrade, waitUntil, writeAndDrain } from './harness.js';

const PINGS = 100_000;
const BATCH = 1000;

/** `count` masked pings (zero mask) carrying `payloadBytes` bytes, the first 4 being the big-endian sequence number. */
function pings(first: number, count: number, payloadBytes: number): Buffer {
  const size = 6 + payloadBytes;
  const b = Buffer.alloc(count * size, 0x61);
  for (let i = 0; i < count; i++) {
    const p = i * size;
    b[p] = 0x89; // FIN + ping
    b[p + 1] = 0x80 | payloadBytes; // masked, length < 126
    b.writeUInt32BE(0, p + 2); // mask key 0
    b.writeUInt32BE(first + i, p + 6);
  }
  return b;
}

async function flood(socket: Socket, payloadBytes: number): Promise<void> {
  for (let first = 0; first < PINGS; first += BATCH) await writeAndDrain(socket, pings(first, BATCH, payloadBytes));
}

function hostileSession(b: HostileBench) {
  return [...b.h.server.clients].find((s) => s.request.path === '/hostile');
}

describe('hostile: ping flood, maxControlFramesPerSecond 0 (disabled)', () => {
  let b: HostileBench;
  before(async () => {
    b = await HostileBench.start({ limits: { ...HOSTILE_LIMITS, maxControlFramesPerSecond: 0 } });
  });
  after(async () => {
    await b.end();
  });

  it(`${PINGS} pings from a client that reads: all answered in order; memory bounded; canary fine`, { timeout: 60_000 }, async (t) => {
    const mark = b.canary.mark();
    const { socket } = await rawUpgrade(b.h.port);
    try {
      let pongs = 0;
      let expected = 0;
      const problems: string[] = [];
      const scanner = new FrameScanner((opcode, payload) => {
        if (opcode !== 0xa) {
          problems.push(`unexpected opcode ${opcode}`);
          return;
        }
        const seq = payload.readUInt32BE(0);
        if (seq < expected) problems.push(`pong ${seq} after ${expected - 1}`);
        expected = seq + 1;
        pongs++;
      });
      socket.on('data', (c: Buffer) => scanner.push(c));
      socket.resume();
      const mem = new MemoryWatch();
      const started = performance.now();
      await flood(socket, 4);
      await waitUntil(() => expected === PINGS || problems.length > 0, 30_000, 'the pong for the last ping');
      const g = mem.stop();
      t.diagnostic(`${PINGS} pings (10 bytes each) written and ${pongs} pongs received in ${(performance.now() - started).toFixed(0)} ms`);
      assert.deepEqual(problems, []);
      // The pongs are 6 bytes each; 100,000 of them held at once would be 0.6 MB: the bound is well above that, and far below a leak per ping.
      assertMemoryBounded(t, g, { rss: 64 * MiB, arrayBuffers: 16 * MiB }, 'reading ping flood');
      assert.equal(pongs, PINGS, 'a client that reads gets every pong');
      assert.equal(hostileSession(b)?.state, 'open', 'pinging is not an offence: the connection stays open');
      await b.assertHealthy(t, mark);
    } finally {
      socket.destroy();
    }
  });

  it(`${PINGS} pings of 125 bytes from a client that never reads: the outbound queue stays under maxQueuedBytes; memory bounded`, { timeout: 60_000 }, async (t) => {
    const mark = b.canary.mark();
    const { socket } = await rawUpgrade(b.h.port);
    try {
      // The flooder does not read: its socket stays paused, so the server's pongs pile up in its direction.
      const session = hostileSession(b);
      assert.ok(session, 'the hostile session');
      let maxBuffered = 0;
      const probe = setInterval(() => (maxBuffered = Math.max(maxBuffered, session.bufferedAmount)), 5);
      const mem = new MemoryWatch();
      try {
        await flood(socket, 125);
        // Everything sent has been read by the server (S1: reading never waits for writing).
        await waitUntil(() => session.state !== 'open' || session.bufferedAmount > 0, 10_000, 'the server to queue pongs');
        await new Promise((r) => setTimeout(r, 200));
      } finally {
        clearInterval(probe);
      }
      maxBuffered = Math.max(maxBuffered, session.bufferedAmount);
      const g = mem.stop();
      t.diagnostic(`server-side bufferedAmount peaked at ${(maxBuffered / MiB).toFixed(2)} MiB (maxQueuedBytes ${HOSTILE_LIMITS.maxQueuedBytes / MiB} MiB); 100,000 pongs would be ${((PINGS * 127) / MiB).toFixed(1)} MiB`);
      // At most one pong (127 bytes) beyond the limit: the first one over it when no pong was waiting to be replaced.
      assert.ok(maxBuffered <= HOSTILE_LIMITS.maxQueuedBytes + 127, `outbound queue reached ${maxBuffered} bytes, over maxQueuedBytes`);
      assertMemoryBounded(t, g, { rss: 96 * MiB, arrayBuffers: 24 * MiB }, 'non-reading ping flood (13 MB of pings written)');
      // The canary never noticed.
      await b.assertHealthy(t, mark);

      // Now the flooder reads: what it gets is a run of pongs in order, ending with the pong for its last ping.
      let last = -1;
      let pongs = 0;
      const problems: string[] = [];
      const scanner = new FrameScanner((opcode, payload) => {
        if (opcode !== 0xa) return void problems.push(`unexpected opcode ${opcode}`);
        const seq = payload.readUInt32BE(0);
        if (seq <= last) problems.push(`pong ${seq} after ${last}`);
        last = seq;
        pongs++;
      });
      socket.on('data', (c: Buffer) => scanner.push(c));
      socket.resume();
      await waitUntil(() => last === PINGS - 1 || problems.length > 0, 30_000, 'the pong for the last ping');
      t.diagnostic(`after reading again: ${pongs} pongs, the last for ping ${last}`);
      assert.deepEqual(problems, []);
      assert.equal(session.state, 'open');
    } finally {
      socket.destroy();
    }
  });
});

describe('hostile: ping flood, the default maxControlFramesPerSecond', () => {
  let b: HostileBench;
  before(async () => {
    assert.equal(HOSTILE_LIMITS.maxControlFramesPerSecond, DEFAULT_LIMITS.maxControlFramesPerSecond);
    b = await HostileBench.start();
  });
  after(async () => {
    await b.end();
  });

  it(`${PINGS} pings as fast as possible: the flooder is answered until the bucket is spent, then failed with 1008; canary fine`, { timeout: 60_000 }, async (t) => {
    const limit = DEFAULT_LIMITS.maxControlFramesPerSecond;
    assert.equal(limit, 1000);
    const mark = b.canary.mark();
    const { socket } = await rawUpgrade(b.h.port, { path: '/hostile-pings' });
    try {
      let pongs = 0;
      let expected = 0;
      let closeCode: number | undefined;
      let socketClosed = false;
      const problems: string[] = [];
      const scanner = new FrameScanner((opcode, payload) => {
        if (opcode === 0x8) {
          closeCode = payload.readUInt16BE(0);
          return;
        }
        if (opcode !== 0xa) return void problems.push(`unexpected opcode ${opcode}`);
        if (closeCode !== undefined) problems.push('a pong after the close frame');
        const seq = payload.readUInt32BE(0);
        if (seq !== expected) problems.push(`pong ${seq}, expected ${expected}`);
        expected = seq + 1;
        pongs++;
      });
      socket.on('data', (c: Buffer) => scanner.push(c));
      socket.on('close', () => (socketClosed = true));
      socket.resume();
      const started = performance.now();
      try {
        for (let first = 0; first < PINGS && closeCode === undefined && !socketClosed; first += BATCH) await writeAndDrain(socket, pings(first, BATCH, 4));
      } catch {
        // The server hung up while we wrote.
      }
      await waitUntil(() => socketClosed, 10_000, 'the server to end the connection');
      const elapsed = performance.now() - started;
      t.diagnostic(`${pongs} pongs before the close, in ${elapsed.toFixed(0)} ms`);
      assert.deepEqual(problems, []);
      assert.equal(closeCode, 1008);
      // The bucket holds `limit` at the start and gains `limit` a second: every ping up to then is answered, none after.
      assert.ok(pongs >= limit, `${pongs} pongs: the first ${limit} pings are within the limit`);
      assert.ok(pongs <= limit + Math.ceil((elapsed * limit) / 1000), `${pongs} pongs in ${elapsed.toFixed(0)} ms is more than the bucket allows`);
      assert.ok(pongs < PINGS, 'the flood was cut short');
      await waitUntil(() => b.h.closes.some((c) => c.path === '/hostile-pings'), 10_000, 'the server-side onClose');
      const info = b.h.closes.find((c) => c.path === '/hostile-pings')!.info;
      assert.equal(info.code, 1008);
      assert.equal(info.wasClean, false);
      assert.equal(info.error?.code, 'ERR_LIMIT_MAX_CONTROL_FRAMES_PER_SECOND');
      assert.equal(info.error?.closeCode, 1008);
      await b.assertHealthy(t, mark);
    } finally {
      socket.destroy();
    }
  });
});
