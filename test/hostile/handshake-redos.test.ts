/**
 * Hostile input: header values crafted for regular-expression backtracking.
 * ws's ReDoS (CVE-2021-32640) was a Sec-WebSocket-Protocol value with many
 * spaces between two tokens: a regex split over it took time quadratic in
 * the number of spaces, and one request held the event loop for seconds.
 * sockeye splits every list with a character loop (src/core/handshake.ts,
 * src/core/extension-header.ts), so the cost is linear.
 *
 * The head limit is raised to 256 KiB for this file so that values of
 * 200,000 characters fit in a head (with the default 16 KiB they would be
 * refused with 431 before being parsed at all, which proves nothing about
 * the parser). Each request must be answered within 2 s, a deadline that
 * the linear parser meets by three orders of magnitude and a quadratic one
 * (2 * 10^10 steps at 200,000 spaces) misses by minutes. The canary's echo
 * latency while they are parsed is reported.
 *
 * | header value                                     | answer |
 * |--------------------------------------------------|--------|
 * | protocol 'a' + 60,000 spaces + ',b'              | 101    |
 * | protocol 'a' + 60,000 tabs + ',b'                | 101    |
 * | protocol 'a' + 200,000 spaces + ',b'             | 101    |
 * | protocol 'b' + 200,000 spaces + 'x' (ws's PoC)   | 400    |
 * | protocol 'a' + 100,000 ' \t' + 'b'               | 400    |
 * | protocol 'a,' + 100,000 ' ,' + 'b'               | 101    |
 * | protocol 200,000 commas                          | 400    |
 * | extensions 'permessage-deflate' + 200,000 ' ' + '; client_max_window_bits' | 101 |
 * | extensions 'x' + 100,000 '; ' + 'y'              | 400    |
 * | extensions 'x; a="' + 200,000 backslashes + '"'  | 400    |
 * | Connection 'Upgrade' + 200,000 spaces + ',keep-alive' | 101 |
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HostileBench, RawClient, expectRejection, upgradeRequest } from './harness.js';

const DEADLINE_MS = 2000;
const HEAD = 256 * 1024;

describe('hostile: header values crafted for regex backtracking', () => {
  let b: HostileBench;
  before(async () => {
    b = await HostileBench.start({ maxHeadBytes: HEAD, perMessageDeflate: true });
  });
  after(async () => {
    await b.end();
  });

  const accepted: Array<[string, Record<string, string>]> = [
    ["Sec-WebSocket-Protocol 'a' + 60,000 spaces + ',b'", { 'Sec-WebSocket-Protocol': 'a' + ' '.repeat(60_000) + ',b' }],
    ["Sec-WebSocket-Protocol 'a' + 60,000 tabs + ',b'", { 'Sec-WebSocket-Protocol': 'a' + '\t'.repeat(60_000) + ',b' }],
    ["Sec-WebSocket-Protocol 'a' + 200,000 spaces + ',b'", { 'Sec-WebSocket-Protocol': 'a' + ' '.repeat(200_000) + ',b' }],
    ["Sec-WebSocket-Protocol 'a,' + 100,000 ' ,' + 'b'", { 'Sec-WebSocket-Protocol': 'a,' + ' ,'.repeat(100_000) + 'b' }],
    ["Sec-WebSocket-Extensions 'permessage-deflate' + 200,000 spaces + '; client_max_window_bits'", { 'Sec-WebSocket-Extensions': 'permessage-deflate' + ' '.repeat(200_000) + '; client_max_window_bits' }],
    ["Connection 'Upgrade' + 200,000 spaces + ',keep-alive'", { Connection: 'Upgrade' + ' '.repeat(200_000) + ',keep-alive' }],
  ];
  for (const [what, headers] of accepted) {
    it(`${what}: 101 within ${DEADLINE_MS} ms`, async (t) => {
      const mark = b.canary.mark();
      const request = upgradeRequest({ path: '/hostile-redos', headers });
      assert.ok(request.length < HEAD, 'the head fits the limit, so it is parsed');
      const raw = await RawClient.connect(b.h.port);
      try {
        const started = performance.now();
        raw.write(request);
        const head = await raw.waitHead(10_000);
        const elapsed = performance.now() - started;
        t.diagnostic(`${request.length}-byte head answered ${head.status} in ${elapsed.toFixed(1)} ms`);
        assert.equal(head.status, 101);
        // The server picked none of a, b (it has no such subprotocol; its default handler took the client).
        assert.equal(head.headers.get('sec-websocket-protocol'), undefined);
        if (headers['Sec-WebSocket-Extensions']) assert.equal(head.headers.get('sec-websocket-extensions')?.[0], 'permessage-deflate');
        assert.ok(elapsed < DEADLINE_MS, `answered after ${elapsed} ms`);
      } finally {
        raw.destroy();
      }
      await b.assertHealthy(t, mark);
    });
  }

  const refused: Array<[string, Record<string, string>]> = [
    ["Sec-WebSocket-Protocol 'b' + 200,000 spaces + 'x' (ws's proof of concept)", { 'Sec-WebSocket-Protocol': 'b' + ' '.repeat(200_000) + 'x' }],
    ["Sec-WebSocket-Protocol 'a' + 100,000 ' \\t' + 'b'", { 'Sec-WebSocket-Protocol': 'a' + ' \t'.repeat(100_000) + 'b' }],
    ['Sec-WebSocket-Protocol of 200,000 commas', { 'Sec-WebSocket-Protocol': ','.repeat(200_000) }],
    ["Sec-WebSocket-Extensions 'x' + 100,000 '; ' + 'y'", { 'Sec-WebSocket-Extensions': 'x' + '; '.repeat(100_000) + 'y' }],
    ['Sec-WebSocket-Extensions with a quoted value of 200,000 backslashes', { 'Sec-WebSocket-Extensions': 'x; a="' + '\\'.repeat(200_000) + '"' }],
  ];
  for (const [what, headers] of refused) {
    it(`${what}: 400 within ${DEADLINE_MS} ms`, async (t) => {
      const mark = b.canary.mark();
      const request = upgradeRequest({ path: '/hostile-redos', headers });
      assert.ok(request.length < HEAD);
      const r = await expectRejection(b.h.port, request, 400);
      t.diagnostic(`${request.length}-byte head answered 400 in ${r.elapsedMs.toFixed(1)} ms: ${r.body.replace(/\s+/g, " ").slice(0, 100)}`);
      assert.ok(r.elapsedMs < DEADLINE_MS, `answered after ${r.elapsedMs} ms`);
      await b.assertHealthy(t, mark);
    });
  }
});
