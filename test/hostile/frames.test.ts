/**
 * Hostile input at the frame level, each sent by a raw client after a valid
 * handshake, while the canary echoes on its own connection. Every case fails
 * only the hostile connection (RFC 6455 section 7.1.7): a close frame with
 * the code below, then the server ends the TCP connection; the server-side
 * onClose fires once with the same code; the canary never notices; a new
 * client can still connect.
 *
 * | input                                          | close | why                                   |
 * |------------------------------------------------|-------|---------------------------------------|
 * | 64-bit length 2^63 (top bit set)               | 1002  | section 5.2: the MSB MUST be 0        |
 * | 64-bit length 2^64-1                           | 1002  | same                                  |
 * | header announcing 2^40 bytes, no payload       | 1009  | over maxFrameBytes, refused on header |
 * | 64-bit length 2^63-1 (top bit clear)           | 1009  | same                                  |
 * | unmasked text / ping / close from a client     | 1002  | section 5.1: clients MUST mask        |
 * | ping / close / pong with 126..65535 bytes      | 1002  | section 5.5: control payload <= 125   |
 * | invalid UTF-8 in a text message                | 1007  | section 8.1                           |
 * | invalid UTF-8 in a close reason                | 1007  | sections 5.5.1 and 8.1                |
 *
 * The oversized announcements are sent without any payload: the close must
 * come from the header alone, so waiting for a payload that never comes (or
 * allocating it) would show up as a timeout or as memory growth.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HostileBench, MemoryWatch, MiB, assertMemoryBounded, closePayload, encodeRawFrame, expectFailure, rawHeader, assertOnlyCanaryLeft } from './harness.js';

const masked = (opcode: number, payload: Uint8Array | string, fin = true) => encodeRawFrame(opcode, payload, { fin });
const unmasked = (opcode: number, payload: Uint8Array | string) => encodeRawFrame(opcode, payload, { mask: null });

describe('hostile: frames', () => {
  let b: HostileBench;
  let n = 0;
  const path = (what: string) => `/hostile-${++n}-${what}`;
  before(async () => {
    b = await HostileBench.start();
  });
  after(async () => {
    await b.end();
  });

  const lengths: Array<[string, bigint, number]> = [
    ['2^63 (top bit set, section 5.2)', 2n ** 63n, 1002],
    ['2^64-1 (top bit set)', 2n ** 64n - 1n, 1002],
    ['2^40 (over maxFrameBytes, 1 MiB)', 2n ** 40n, 1009],
    ['2^63-1 (top bit clear, beyond 2^53)', 2n ** 63n - 1n, 1009],
    ['2^53 + 1', 2n ** 53n + 1n, 1009],
  ];
  for (const [what, length, code] of lengths) {
    it(`a binary frame header announcing ${what}, no payload: close ${code} at once; memory bounded`, async (t) => {
      const mark = b.canary.mark();
      const mem = new MemoryWatch();
      // Only the 14-byte header goes out; the close has to come from it alone (a generous deadline, not a benchmark).
      await expectFailure(b.h, rawHeader({ opcode: 0x2, length }), code, { path: path('length'), ms: 5000 });
      assertMemoryBounded(t, mem.stop(), { rss: 32 * MiB, arrayBuffers: 8 * MiB }, what);
      await b.assertHealthy(t, mark);
    });
  }

  it('a continuation header announcing 2^40 bytes inside a fragmented message: 1009 on the header', async (t) => {
    const mark = b.canary.mark();
    await expectFailure(b.h, [masked(0x2, 'first', false), rawHeader({ opcode: 0x0, length: 2n ** 40n })], 1009, { path: path('continuation-length') });
    await b.assertHealthy(t, mark);
  });

  /** [what, close code, bytes, echoes of valid messages before the failure] */
  const violations: Array<[string, number, Buffer | Buffer[], number?]> = [
    ['an unmasked text frame (section 5.1)', 1002, unmasked(0x1, 'not masked')],
    ['an unmasked ping (section 5.1)', 1002, unmasked(0x9, 'ping')],
    ['an unmasked close (section 5.1)', 1002, unmasked(0x8, closePayload(1000))],
    ['an unmasked frame after a good one (which is echoed)', 1002, [masked(0x1, 'fine'), unmasked(0x2, 'not fine')], 1],
    ['a ping of 126 bytes (section 5.5)', 1002, masked(0x9, Buffer.alloc(126, 0x70))],
    ['a pong of 65,535 bytes (16-bit length, section 5.5)', 1002, masked(0xa, Buffer.alloc(65535, 0x70))],
    ['a close of 126 bytes (section 5.5)', 1002, masked(0x8, Buffer.concat([closePayload(1000), Buffer.alloc(124, 0x61)]))],
    ['a ping header announcing 2^32 bytes, no payload', 1002, rawHeader({ opcode: 0x9, length: 2n ** 32n })],
    ['invalid UTF-8 in a text message (section 8.1)', 1007, masked(0x1, Buffer.from([0x68, 0x69, 0xc0, 0xaf]))],
    ['a UTF-16 surrogate encoded in UTF-8 (section 8.1)', 1007, masked(0x1, Buffer.from([0xed, 0xa0, 0x80]))],
    ['invalid UTF-8 in the second fragment of a text message', 1007, [masked(0x1, 'ok ', false), masked(0x0, Buffer.from([0xff]))]],
    ['invalid UTF-8 in a close reason (sections 5.5.1, 8.1)', 1007, masked(0x8, Buffer.concat([closePayload(1000), Buffer.from([0x62, 0x79, 0x65, 0xff])]))],
    ['a close reason cut inside a character', 1007, masked(0x8, Buffer.concat([closePayload(1001), Buffer.from([0xe2, 0x82])]))],
  ];
  for (const [what, code, bytes, echoesBefore] of violations) {
    it(`${what}: close ${code}`, async (t) => {
      const mark = b.canary.mark();
      await expectFailure(b.h, bytes, code, { path: path('violation'), echoesBefore });
      await b.assertHealthy(t, mark);
    });
  }

  it('the server side of all these reported each failure once and kept no session', async () => {
    const hostile = b.h.hostileCloses();
    assert.equal(hostile.length, lengths.length + 1 + violations.length);
    await assertOnlyCanaryLeft(b.h);
  });
});
