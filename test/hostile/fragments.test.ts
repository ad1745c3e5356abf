/**
 * Hostile input: a million empty continuation frames. An empty frame is six
 * bytes on the wire (two of header, four of mask) but a frame counter and
 * whatever per-frame bookkeeping the receiver does; maxFragments (invariant
 * S3) bounds how many one message may have.
 *
 * - Under HOSTILE_LIMITS (maxFragments 1024) and under the library default
 *   (65,536): the connection is failed with 1008 (policy violation, RFC 6455
 *   section 7.4.1) as soon as the count is crossed; the flooder's remaining
 *   frames are never processed; memory stays bounded.
 * - With maxFragments raised to 2,000,000 all million frames are accepted
 *   and cost no memory per frame (empty payloads are not stored); the final
 *   frame ends the message and its echo is exact.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { DEFAULT_LIMITS } from '../../src/index.js';
import { FrameScanner, HOSTILE_LIMITS, HostileBench, MemoryWatch, MiB, assertMemoryBounded, encodeRawFrame, rawUpgrade, waitUntil, writeAndDrain } from './harness.js';

const FRAMES = 1_000_000;
const BATCH = 10_000;

/** BATCH empty masked continuation frames (FIN clear, zero mask). Its content never changes, so one buffer serves every write. */
const emptyContinuations = (() => {
  const b = Buffer.alloc(BATCH * 6);
  for (let i = 0; i < BATCH; i++) b[i * 6 + 1] = 0x80;
  return b;
})();

interface FloodResult {
  framesWritten: number;
  closeCode: number | undefined;
  echoes: Buffer[];
  socketClosed: boolean;
}

/** Starts a text message 'a' (FIN clear) and writes up to FRAMES empty continuations, stopping once the server closes. */
async function flood(socket: Socket, result: FloodResult): Promise<void> {
  socket.on('close', () => (result.socketClosed = true));
  await writeAndDrain(socket, encodeRawFrame(0x1, 'a', { fin: false }));
  while (result.framesWritten < FRAMES && result.closeCode === undefined && !result.socketClosed) {
    try {
      await writeAndDrain(socket, emptyContinuations);
    } catch {
      break; // the server hung up while we wrote
    }
    result.framesWritten += BATCH;
  }
}

async function open(b: HostileBench, path: string): Promise<{ socket: Socket; result: FloodResult }> {
  const { socket } = await rawUpgrade(b.h.port, { path });
  const result: FloodResult = { framesWritten: 0, closeCode: undefined, echoes: [], socketClosed: false };
  const scanner = new FrameScanner((opcode, payload) => {
    if (opcode === 0x8) result.closeCode = payload.readUInt16BE(0);
    else if (opcode <= 0x2) result.echoes.push(Buffer.from(payload));
  });
  socket.on('data', (c: Buffer) => scanner.push(c));
  socket.resume();
  return { socket, result };
}

for (const [name, maxFragments] of [
  ['HOSTILE_LIMITS', HOSTILE_LIMITS.maxFragments],
  ['the default', DEFAULT_LIMITS.maxFragments],
] as const) {
  describe(`hostile: a million empty continuation frames, maxFragments ${maxFragments} (${name})`, () => {
    let b: HostileBench;
    before(async () => {
      b = await HostileBench.start({ limits: { ...HOSTILE_LIMITS, maxFragments } });
    });
    after(async () => {
      await b.end();
    });

    it('close 1008 once the count is crossed; the TCP connection ends; memory bounded; canary fine', { timeout: 60_000 }, async (t) => {
      assert.ok(maxFragments < FRAMES);
      const mark = b.canary.mark();
      const path = '/hostile-continuations';
      const { socket, result } = await open(b, path);
      try {
        const mem = new MemoryWatch();
        await flood(socket, result);
        await waitUntil(() => result.socketClosed, 10_000, 'the server to end the connection');
        const g = mem.stop();
        t.diagnostic(`${result.framesWritten} empty continuation frames written before the server hung up`);
        assert.equal(result.closeCode, 1008);
        assert.deepEqual(result.echoes, [], 'the message was never delivered');
        assert.ok(result.framesWritten < FRAMES, 'the server hung up before the flood ended');
        await waitUntil(() => b.h.closes.some((c) => c.path === path), 10_000, 'the server-side onClose');
        const info = b.h.closes.find((c) => c.path === path)!.info;
        assert.equal(info.code, 1008);
        assert.equal(info.error?.code, 'ERR_LIMIT_MAX_FRAGMENTS');
        assertMemoryBounded(t, g, { rss: 48 * MiB, arrayBuffers: 8 * MiB }, 'continuation flood');
        await b.assertHealthy(t, mark);
      } finally {
        socket.destroy();
      }
    });
  });
}

describe('hostile: a million empty continuation frames under maxFragments 2,000,000', () => {
  let b: HostileBench;
  before(async () => {
    b = await HostileBench.start({ limits: { ...HOSTILE_LIMITS, maxFragments: 2_000_000 } });
  });
  after(async () => {
    await b.end();
  });

  it('all are accepted at no memory cost per frame; the final frame ends the message and the echo is exact', { timeout: 60_000 }, async (t) => {
    const mark = b.canary.mark();
    const path = '/hostile-continuations-allowed';
    const { socket, result } = await open(b, path);
    try {
      const mem = new MemoryWatch();
      const started = performance.now();
      await flood(socket, result);
      assert.equal(result.framesWritten, FRAMES);
      await writeAndDrain(socket, encodeRawFrame(0x0, 'z', { fin: true }));
      await waitUntil(() => result.echoes.length === 1 || result.closeCode !== undefined, 30_000, 'the echo');
      const g = mem.stop();
      t.diagnostic(`${FRAMES} empty frames plus a final one parsed and echoed in ${(performance.now() - started).toFixed(0)} ms`);
      assert.equal(result.closeCode, undefined);
      assert.equal(result.echoes[0].toString(), 'az');
      // 6 MB of frames went through; a per-frame allocation of even 48 bytes would show as 48 MB.
      assertMemoryBounded(t, g, { rss: 48 * MiB, arrayBuffers: 8 * MiB }, 'a million accepted empty frames');
      await b.assertHealthy(t, mark);
    } finally {
      socket.destroy();
    }
  });
});
