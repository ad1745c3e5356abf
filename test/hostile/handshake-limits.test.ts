/**
 * Hostile input: handshakes that try to make the server buffer without end.
 * The head parser (src/core/http-head.ts) stores at most maxHeadBytes and
 * counts header lines as they arrive (invariant S3), answering 431 (Request
 * Header Fields Too Large, RFC 6585 section 5) the moment either limit is
 * crossed, without waiting for the rest.
 *
 * Limits here: maxHeaders 100, maxHeadBytes 16384 (the defaults, given
 * explicitly so the boundaries below are stated).
 *
 * | input                                             | answer |
 * |---------------------------------------------------|--------|
 * | 5,000 header fields                               | 431    |
 * | 5,000 header fields, streamed and never finished  | 431 (before the stream ends) |
 * | exactly 100 header fields                         | 101    |
 * | 101 header fields                                 | 431    |
 * | one 20,000-byte header value                      | 431    |
 * | a head of exactly 16,384 bytes                    | 101    |
 * | a head of 16,385 bytes                            | 431    |
 * | 1 MiB of header bytes with no line end, streamed  | 431 (after 16,384 bytes) |
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HOSTILE_HEAD, HostileBench, MemoryWatch, MiB, RawClient, assertMemoryBounded, expectRejection, upgradeRequest } from './harness.js';

/** The default request (5 fields) plus `n` more. */
function withExtraHeaders(n: number, valueBytes = 1): string {
  return upgradeRequest({ path: '/hostile-head', headers: Object.fromEntries(Array.from({ length: n }, (_, i) => [`X-Extra-${i}`, 'v'.repeat(valueBytes)])) });
}

/** A request head of exactly `size` bytes, padded with one X-Pad header. */
function headOfSize(size: number): string {
  const base = upgradeRequest({ path: '/hostile-head', headers: { 'X-Pad': '' } });
  const pad = size - base.length;
  assert.ok(pad >= 0);
  const r = upgradeRequest({ path: '/hostile-head', headers: { 'X-Pad': 'p'.repeat(pad) } });
  assert.equal(r.length, size);
  return r;
}

describe('hostile: oversized handshakes', () => {
  let b: HostileBench;
  before(async () => {
    b = await HostileBench.start();
  });
  after(async () => {
    await b.end();
  });

  it('5,000 header fields: 431', async (t) => {
    const mark = b.canary.mark();
    const r = await expectRejection(b.h.port, withExtraHeaders(5000), 431);
    assert.match(r.body, /header fields/);
    await b.assertHealthy(t, mark);
  });

  it('5,000 header fields streamed, the head never finished: 431 as soon as field 101 ends', async (t) => {
    const mark = b.canary.mark();
    const raw = await RawClient.connect(b.h.port);
    try {
      raw.write('GET /hostile-head HTTP/1.1\r\nHost: 127.0.0.1\r\n');
      let written = 0;
      // One field per write, stopping at the first byte of an answer (bounded: 5,000 fields).
      for (; written < 5000 && raw.head === null && !raw.isClosed; written++) {
        raw.write(`X-Stream-${written}: v\r\n`);
        if (written % 10 === 0) await new Promise((r) => setImmediate(r));
      }
      const head = await raw.waitHead(10_000);
      assert.equal(head.status, 431);
      t.diagnostic(`answered 431 after ${written} streamed fields`);
      assert.ok(written < 5000, 'the answer came before the stream ended');
      await raw.waitClosed(5000);
    } finally {
      raw.destroy();
    }
    await b.assertHealthy(t, mark);
  });

  it(`exactly maxHeaders (${HOSTILE_HEAD.maxHeaders}) fields: 101; one more: 431`, async (t) => {
    const mark = b.canary.mark();
    const ok = await RawClient.open(b.h.port, { path: '/hostile-head', headers: Object.fromEntries(Array.from({ length: HOSTILE_HEAD.maxHeaders - 5 }, (_, i) => [`X-Extra-${i}`, 'v'])) });
    ok.destroy();
    await expectRejection(b.h.port, withExtraHeaders(HOSTILE_HEAD.maxHeaders - 5 + 1), 431);
    await b.assertHealthy(t, mark);
  });

  it('one 20,000-byte header value: 431', async (t) => {
    const mark = b.canary.mark();
    const r = await expectRejection(b.h.port, withExtraHeaders(1, 20_000), 431);
    assert.match(r.body, /larger than 16384/);
    await b.assertHealthy(t, mark);
  });

  it(`a head of exactly maxHeadBytes (${HOSTILE_HEAD.maxHeadBytes}) bytes: 101; one byte more: 431`, async (t) => {
    const mark = b.canary.mark();
    const raw = await RawClient.connect(b.h.port);
    try {
      raw.write(headOfSize(HOSTILE_HEAD.maxHeadBytes));
      assert.equal((await raw.waitHead(10_000)).status, 101);
    } finally {
      raw.destroy();
    }
    await expectRejection(b.h.port, headOfSize(HOSTILE_HEAD.maxHeadBytes + 1), 431);
    await b.assertHealthy(t, mark);
  });

  it('1 MiB of header bytes without a line end, streamed: 431 once maxHeadBytes arrived; memory bounded', async (t) => {
    const mark = b.canary.mark();
    const mem = new MemoryWatch();
    const raw = await RawClient.connect(b.h.port);
    let written = 0;
    try {
      raw.write('GET /hostile-head HTTP/1.1\r\nX-Long: ');
      const chunk = Buffer.alloc(4096, 0x61);
      for (; written < MiB && raw.head === null && !raw.isClosed; written += chunk.length) {
        raw.write(chunk);
        await new Promise((r) => setImmediate(r));
      }
      const head = await raw.waitHead(10_000);
      assert.equal(head.status, 431);
      t.diagnostic(`answered 431 after ${written} bytes of the value were written`);
      assert.ok(written < MiB, 'the answer came before the stream ended');
      await raw.waitClosed(5000);
    } finally {
      raw.destroy();
    }
    assertMemoryBounded(t, mem.stop(), { rss: 32 * MiB, arrayBuffers: 8 * MiB }, 'an endless header line');
    await b.assertHealthy(t, mark);
  });

  it('no session was ever opened for these heads but the two that fit', () => {
    assert.equal(b.h.opened.filter((p) => p === '/hostile-head').length, 2);
  });
});
