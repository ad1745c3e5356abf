/**
 * Hostile input: a million empty continuation frames (eight million under
 * the library defaults: DEFAULT_CASE_FRAMES says why). An empty frame is six
 * bytes on the wire (two of header, four of mask) but a frame counter and
 * whatever per-frame bookkeeping the receiver does. Two limits bound how many
 * one message may have (invariant S3): each frame counts as at least
 * MIN_FRAME_CHARGE (64) bytes against maxMessageBytes, so a message has at
 * most maxMessageBytes / 64 frames of 64 bytes or less; maxFragments is an
 * explicit count on top (none by default).
 *
 * - Under HOSTILE_LIMITS (maxFragments 1024): the connection is failed with
 *   1008 (policy violation, RFC 6455 section 7.4.1) as soon as the count is
 *   crossed, ERR_LIMIT_MAX_FRAGMENTS.
 * - Without a count limit, under HOSTILE_LIMITS' maxMessageBytes (1 MiB) and
 *   under the library defaults (16 MiB): failed with 1008 at frame
 *   maxMessageBytes / 64 + 1 (16,385; 262,145), ERR_LIMIT_MAX_MESSAGE_BYTES
 *   naming the rule.
 * - In all three the flooder's remaining frames are never processed and
 *   memory stays bounded.
 * - With maxMessageBytes 64 MiB (room for 1,048,576 charged frames) and
 *   maxFragments 2,000,000 all million frames are accepted and cost no
 *   memory per frame (empty payloads are not stored); the final frame ends
 *   the message and its echo is exact.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import type { SessionLimits } from '../../src/index.js';
import { DEFAULT_LIMITS, MIN_FRAME_CHARGE } from '../../src/core/index.js';
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

/** Starts a text message 'a' (FIN clear) and writes up to `frames` empty continuations, stopping once the server closes. */
async function flood(socket: Socket, result: FloodResult, frames = FRAMES): Promise<void> {
  socket.on('close', () => (result.socketClosed = true));
  await writeAndDrain(socket, encodeRawFrame(0x1, 'a', { fin: false }));
  while (result.framesWritten < frames && result.closeCode === undefined && !result.socketClosed) {
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

interface FloodCase {
  name: string;
  limits: SessionLimits;
  /** Empty continuations the flooder has ready. */
  frames: number;
  /** The frame (counting the first, 'a') at which the server must fail the connection. */
  failsAtFrame: number;
  errorCode: string;
  errorMessage: string;
}

/**
 * The flood under the library defaults. The server decides at frame 262,145
 * (1.5 MB in); meanwhile the flooder, which shares its event loop and writes
 * faster than the server parses, fills the loopback socket buffers, up to the
 * kernel's maximum send plus receive buffer (net.ipv4.tcp_wmem, tcp_rmem:
 * tens of MB where receive autotuning may grow that large). The flood (48 MB)
 * must outlast that, so that "the server hung up before the flood ended" is
 * decided by the server and not by buffer sizes.
 */
const DEFAULT_CASE_FRAMES = 8_000_000;

const CHARGE_RULE = (frames: number, max: number) => `message of ${frames} frames: each frame counts as at least 64 bytes against maxMessageBytes (${max})`;
const NO_COUNT = { maxFragments: DEFAULT_LIMITS.maxFragments };
const DEFAULT_SIZES = { maxMessageBytes: DEFAULT_LIMITS.maxMessageBytes, maxFrameBytes: DEFAULT_LIMITS.maxFrameBytes };

const CASES: FloodCase[] = [
  {
    name: 'maxFragments 1024 (HOSTILE_LIMITS)',
    limits: HOSTILE_LIMITS,
    frames: FRAMES,
    failsAtFrame: HOSTILE_LIMITS.maxFragments + 1,
    errorCode: 'ERR_LIMIT_MAX_FRAGMENTS',
    errorMessage: `message of more than ${HOSTILE_LIMITS.maxFragments} frames`,
  },
  {
    name: 'no count limit, maxMessageBytes 1 MiB (HOSTILE_LIMITS): the charge',
    limits: { ...HOSTILE_LIMITS, ...NO_COUNT },
    frames: FRAMES,
    failsAtFrame: HOSTILE_LIMITS.maxMessageBytes / MIN_FRAME_CHARGE + 1,
    errorCode: 'ERR_LIMIT_MAX_MESSAGE_BYTES',
    errorMessage: CHARGE_RULE(HOSTILE_LIMITS.maxMessageBytes / MIN_FRAME_CHARGE + 1, HOSTILE_LIMITS.maxMessageBytes),
  },
  {
    name: 'the library defaults (maxMessageBytes 16 MiB, no count limit): the charge',
    limits: { ...HOSTILE_LIMITS, ...DEFAULT_SIZES, ...NO_COUNT },
    frames: DEFAULT_CASE_FRAMES,
    failsAtFrame: DEFAULT_LIMITS.maxMessageBytes / MIN_FRAME_CHARGE + 1,
    errorCode: 'ERR_LIMIT_MAX_MESSAGE_BYTES',
    errorMessage: CHARGE_RULE(DEFAULT_LIMITS.maxMessageBytes / MIN_FRAME_CHARGE + 1, DEFAULT_LIMITS.maxMessageBytes),
  },
];

for (const c of CASES) {
  describe(`hostile: ${c.frames === FRAMES ? 'a million' : c.frames.toLocaleString('en-US')} empty continuation frames, ${c.name}`, () => {
    let b: HostileBench;
    before(async () => {
      b = await HostileBench.start({ limits: c.limits });
    });
    after(async () => {
      await b.end();
    });

    it(`close 1008 at frame ${c.failsAtFrame}; the TCP connection ends; memory bounded; canary fine`, { timeout: 60_000 }, async (t) => {
      assert.ok(c.failsAtFrame < c.frames);
      const mark = b.canary.mark();
      const path = '/hostile-continuations';
      const { socket, result } = await open(b, path);
      try {
        const mem = new MemoryWatch();
        await flood(socket, result, c.frames);
        await waitUntil(() => result.socketClosed, 10_000, 'the server to end the connection');
        const g = mem.stop();
        t.diagnostic(`${result.framesWritten} empty continuation frames written before the server hung up`);
        assert.equal(result.closeCode, 1008);
        assert.deepEqual(result.echoes, [], 'the message was never delivered');
        assert.ok(result.framesWritten < c.frames, 'the server hung up before the flood ended');
        // The first frame is 'a'; the server cannot have failed before receiving frame failsAtFrame.
        assert.ok(result.framesWritten + 1 >= c.failsAtFrame, `${result.framesWritten} frames written, the server failed at ${c.failsAtFrame}`);
        await waitUntil(() => b.h.closes.some((x) => x.path === path), 10_000, 'the server-side onClose');
        const info = b.h.closes.find((x) => x.path === path)!.info;
        assert.equal(info.code, 1008);
        assert.equal(info.error?.code, c.errorCode);
        assert.equal(info.error?.closeCode, 1008);
        assert.equal(info.error?.message, c.errorMessage);
        assertMemoryBounded(t, g, { rss: 48 * MiB, arrayBuffers: 8 * MiB }, 'continuation flood');
        await b.assertHealthy(t, mark);
      } finally {
        socket.destroy();
      }
    });
  });
}

describe('hostile: a million empty continuation frames under maxMessageBytes 64 MiB and maxFragments 2,000,000', () => {
  let b: HostileBench;
  // 1,000,002 frames are charged 64,000,128 bytes: within 64 MiB.
  const limits = { ...HOSTILE_LIMITS, maxMessageBytes: 64 * MiB, maxFragments: 2_000_000 };
  before(async () => {
    assert.ok((FRAMES + 2) * MIN_FRAME_CHARGE <= limits.maxMessageBytes);
    b = await HostileBench.start({ limits });
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
