/**
 * Hostile input: malformed opening handshakes, each answered with an HTTP
 * status and the connection closed (Connection: close), no session opened.
 *
 * | input                                                   | answer | RFC                          |
 * |---------------------------------------------------------|--------|------------------------------|
 * | Sec-WebSocket-Key of 0, 1, 16, 22, 23, 25, 28, 1000 chars | 400  | 6455 section 4.2.1 item 5    |
 * | a 24-character key not ending in '=='                   | 400    | same (base64 of 16 bytes)    |
 * | a 24-character key with non-zero pad bits               | 400    | same, RFC 4648 section 3.5   |
 * | a 24-character key in the URL-safe alphabet             | 400    | same                         |
 * | two Sec-WebSocket-Key fields                            | 400    | 6455 section 11.3.1          |
 * | an upgrade over HTTP/1.0                                | 400    | 6455 section 4.1             |
 * | no Host                                                 | 400    | 7230 section 5.4             |
 * | two Host fields                                         | 400    | 7230 section 5.4             |
 * | an empty Host                                           | 400    | 7230 section 5.4             |
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { HostileBench, expectRejection, upgradeRequest } from './harness.js';

describe('hostile: malformed handshakes', () => {
  let b: HostileBench;
  before(async () => {
    b = await HostileBench.start();
  });
  after(async () => {
    await b.end();
  });

  const good = randomBytes(16).toString('base64');
  // The last base64 character of 16 bytes carries 4 bits of padding: 'A' has them zero, 'B' does not.
  const nonCanonical = good.slice(0, 21) + 'B==';
  const keys: Array<[string, string]> = [
    ['empty', ''],
    ['1 character', 'a'],
    ['16 raw characters', 'abcdefghijklmnop'],
    ['22 characters (no padding)', good.slice(0, 22)],
    ['23 characters', good.slice(0, 23)],
    ['25 characters', good + '='],
    ['28 characters (base64 of 20 bytes)', randomBytes(20).toString('base64')],
    ['1000 characters', 'A'.repeat(998) + '=='],
    ["24 characters not ending in '=='", 'A'.repeat(24)],
    ['24 characters with non-zero pad bits', nonCanonical],
    ['24 characters in the URL-safe alphabet', '-_' + good.slice(2, 22) + '=='],
  ];
  for (const [what, key] of keys) {
    it(`Sec-WebSocket-Key ${what}: 400`, async (t) => {
      if (what.startsWith('24 characters in the URL')) assert.ok(!/^[A-Za-z0-9+/]+=*$/.test(key));
      const mark = b.canary.mark();
      const r = await expectRejection(b.h.port, upgradeRequest({ path: '/hostile-key', key }), 400);
      assert.match(r.body, /Sec-WebSocket-Key/);
      await b.assertHealthy(t, mark);
    });
  }

  const heads: Array<[string, string, RegExp]> = [
    ['two Sec-WebSocket-Key fields', upgradeRequest({ path: '/hostile-key' }).replace('\r\n\r\n', `\r\nSec-WebSocket-Key: ${good}\r\n\r\n`), /Sec-WebSocket-Key|sec-websocket-key/],
    ['an upgrade over HTTP/1.0', upgradeRequest({ path: '/hostile-http10' }).replace(' HTTP/1.1\r\n', ' HTTP/1.0\r\n'), /HTTP\/1\.1/],
    ['no Host', upgradeRequest({ path: '/hostile-nohost', headers: { Host: null } }), /Host/],
    ['two Host fields', upgradeRequest({ path: '/hostile-twohosts' }).replace('\r\n\r\n', '\r\nHost: evil.example\r\n\r\n'), /host/i],
    ['an empty Host', upgradeRequest({ path: '/hostile-emptyhost', headers: { Host: '' } }), /Host/],
  ];
  for (const [what, request, body] of heads) {
    it(`${what}: 400`, async (t) => {
      const mark = b.canary.mark();
      const r = await expectRejection(b.h.port, request, 400);
      assert.match(r.body, body);
      await b.assertHealthy(t, mark);
    });
  }

  it('none of them opened a session', () => {
    assert.deepEqual(
      b.h.opened.filter((p) => p.startsWith('/hostile')),
      [],
    );
  });
});
