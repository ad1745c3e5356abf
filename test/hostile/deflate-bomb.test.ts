/**
 * Hostile input: decompression bombs over permessage-deflate (RFC 7692).
 * 128 MiB of zeros deflate to about 130 kB: well under maxMessageBytes
 * (1 MiB) as sent, 128 times over it once inflated. The server inflates
 * under the same limit (invariant S3: "inflated size" is one of the bounded
 * buffers) and fails the connection with 1009 (message too big, RFC 6455
 * section 7.4.1) as soon as the inflated size crosses maxMessageBytes, having
 * held at most that much output.
 *
 * | input                                              | outcome            |
 * |----------------------------------------------------|--------------------|
 * | 128 MiB of zeros, one binary frame                 | 1009               |
 * | the same as a text message                         | 1009               |
 * | the same split over 4 fragments (RSV1 on the first)| 1009               |
 * | 8 connections sending the bomb at once             | 1009 each, bounded |
 * | a message inflating to exactly maxMessageBytes     | accepted, echoed   |
 * | one inflating to maxMessageBytes + 1               | 1009               |
 *
 * The canary runs with permessage-deflate too, so it shares the zlib
 * limiter (concurrency 8 per context) with the bombs.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createDeflateRaw, inflateRawSync } from 'node:zlib';
import { HOSTILE_LIMITS, HostileBench, MemoryWatch, MiB, RawClient, assertMemoryBounded, encodeRawFrame, expectFailure, waitUntil, assertOnlyCanaryLeft } from './harness.js';

const DEFLATE = { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' };
const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/** Raw deflate of `total` bytes of `fill`, streamed from a 1 MiB block, ending with a sync flush whose 00 00 ff ff tail is removed (RFC 7692 section 7.2.1). */
function deflateOf(total: number, fill: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const d = createDeflateRaw({ level: 9 });
    const out: Buffer[] = [];
    d.on('data', (c: Buffer) => out.push(c));
    d.on('error', reject);
    const block = Buffer.alloc(Math.min(total, MiB), fill);
    for (let left = total; left > 0; left -= block.length) d.write(left >= block.length ? block : block.subarray(0, left));
    d.flush(constants.Z_SYNC_FLUSH, () => {
      const all = Buffer.concat(out);
      d.close();
      assert.ok(all.subarray(-4).equals(TRAILER));
      resolve(all.subarray(0, all.length - 4));
    });
  });
}

/** A masked frame with RSV1 (compressed) on the first frame of a message. */
const compressedFrame = (opcode: number, payload: Buffer, fin = true, rsv1 = true) => encodeRawFrame(opcode, payload, { fin, rsv: rsv1 ? 0b100 : 0 });

describe('hostile: decompression bombs', () => {
  let b: HostileBench;
  let bomb: Buffer;
  let n = 0;
  const path = (what: string) => `/hostile-${++n}-${what}`;

  before(async () => {
    bomb = await deflateOf(128 * MiB, 0);
    b = await HostileBench.start({ perMessageDeflate: true, canaryDeflate: true });
  });
  after(async () => {
    await b.end();
  });

  it(`the bomb is small as sent, huge inflated`, () => {
    assert.ok(bomb.length < HOSTILE_LIMITS.maxMessageBytes / 4, `${bomb.length} bytes compressed`);
  });

  const shapes: Array<[string, () => Buffer[]]> = [
    ['a binary message in one frame', () => [compressedFrame(0x2, bomb)]],
    ['a text message in one frame', () => [compressedFrame(0x1, bomb)]],
    [
      'a binary message in 4 fragments',
      () => {
        const q = Math.ceil(bomb.length / 4);
        return [0, 1, 2, 3].map((i) => compressedFrame(i === 0 ? 0x2 : 0x0, bomb.subarray(i * q, (i + 1) * q), i === 3, i === 0));
      },
    ],
  ];
  for (const [what, frames] of shapes) {
    it(`128 MiB of zeros as ${what}: close 1009; memory bounded`, { timeout: 30_000 }, async (t) => {
      const mark = b.canary.mark();
      const mem = new MemoryWatch();
      const { serverInfo } = await expectFailure(b.h, frames(), 1009, { path: path('bomb'), headers: DEFLATE });
      assert.equal(serverInfo.error?.code, 'ERR_LIMIT_MAX_MESSAGE_BYTES');
      // Inflated output is held up to maxMessageBytes (1 MiB) plus one zlib chunk; 128 MiB would blow both bounds.
      assertMemoryBounded(t, mem.stop(), { rss: 48 * MiB, arrayBuffers: 16 * MiB }, `bomb as ${what}`);
      await b.assertHealthy(t, mark);
    });
  }

  it('8 connections send the bomb at once: each gets 1009; memory bounded', { timeout: 30_000 }, async (t) => {
    const mark = b.canary.mark();
    const mem = new MemoryWatch();
    const results = await Promise.all(Array.from({ length: 8 }, () => expectFailure(b.h, [compressedFrame(0x2, bomb)], 1009, { path: path('bomb-parallel'), headers: DEFLATE })));
    assert.equal(results.length, 8);
    assertMemoryBounded(t, mem.stop(), { rss: 96 * MiB, arrayBuffers: 32 * MiB }, '8 bombs at once');
    await b.assertHealthy(t, mark);
  });

  it('a message inflating to exactly maxMessageBytes is accepted and echoed intact', { timeout: 30_000 }, async (t) => {
    const mark = b.canary.mark();
    const compressed = await deflateOf(HOSTILE_LIMITS.maxMessageBytes, 0x61);
    const raw = await RawClient.open(b.h.port, { path: path('limit'), headers: DEFLATE });
    try {
      assert.match(raw.head!.headers.get('sec-websocket-extensions')?.[0] ?? '', /^permessage-deflate/);
      raw.write(compressedFrame(0x1, compressed));
      await raw.waitFrames(1, 10_000);
      const f = raw.frames[0];
      assert.equal(f.opcode, 0x1);
      const text = f.rsv & 0b100 ? inflateRawSync(Buffer.concat([f.payload, TRAILER]), { finishFlush: constants.Z_SYNC_FLUSH }) : f.payload;
      assert.equal(text.length, HOSTILE_LIMITS.maxMessageBytes);
      assert.ok(text.equals(Buffer.alloc(HOSTILE_LIMITS.maxMessageBytes, 0x61)));
    } finally {
      raw.destroy();
    }
    await b.assertHealthy(t, mark);
  });

  it('one byte more: close 1009', { timeout: 30_000 }, async (t) => {
    const mark = b.canary.mark();
    const compressed = await deflateOf(HOSTILE_LIMITS.maxMessageBytes + 1, 0x61);
    await expectFailure(b.h, [compressedFrame(0x2, compressed)], 1009, { path: path('limit-plus-one'), headers: DEFLATE });
    await b.assertHealthy(t, mark);
  });

  it('every zlib slot the bombs took was released, and no session but the canary remains', async () => {
    // The canary's own server session may hold two slots (one inflate, one deflate) at any moment; the 13 hostile sessions none.
    await waitUntil(() => b.h.server.context.zlib.active <= 2 && b.h.server.context.zlib.pending === 0, 5000, 'zlib jobs to finish');
    await assertOnlyCanaryLeft(b.h);
  });
});
