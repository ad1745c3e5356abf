/**
 * Hostile input reaching the CLIENT from a server: a redirect that would
 * carry the application's credentials (an Authorization header, a cookie)
 * to another origin. By default sockeye's connect() does not follow
 * redirects: RFC 6455 section 4.1 lets a client follow a 3xx, and that is
 * exactly the step where credentials leak to whoever the Location names. Any
 * status but 101 rejects with HandshakeError ERR_UNEXPECTED_STATUS carrying
 * the status and the response headers, and no second connection is made
 * anywhere. (With followRedirects, the credentials stay behind on a
 * cross-origin redirect: test/client/redirects.test.ts.)
 *
 * Credentials in the URL (ws://user:pass@host/) are not sent at all: connect()
 * builds no Authorization header from them.
 *
 * Response header names are peer-chosen: the headers object handed to the
 * application has a null prototype, so a '__proto__' header stays a plain
 * key. These are client-side cases (no canary: no server is under attack).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, HandshakeError } from '../../src/index.js';
import { delay, startRawServer } from './harness.js';

type RawServer = Awaited<ReturnType<typeof startRawServer>>;

describe('hostile: a redirect that would carry credentials to another origin', () => {
  let other: RawServer;
  let redirecting: RawServer;
  const requests: string[] = [];
  let status = 302;
  let location = '';

  before(async () => {
    // The origin the Location points at: it must never see a connection.
    other = await startRawServer((socket) => socket.destroy());
    location = `ws://127.0.0.1:${other.port}/steal`;
    redirecting = await startRawServer((socket, request) => {
      requests.push(request.head);
      socket.end(
        `HTTP/1.1 ${status} Redirect\r\nLocation: ${location}\r\nSet-Cookie: session=abc\r\n__proto__: polluted\r\nconstructor: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
      );
    });
  });
  after(async () => {
    await other.close();
    await redirecting.close();
  });

  for (const s of [301, 302, 303, 307, 308]) {
    it(`${s} with a Location on another origin: rejects with HandshakeError ${s}; no second connection anywhere`, async () => {
      status = s;
      const acceptedBefore = redirecting.accepted;
      const requestsBefore = requests.length;
      await assert.rejects(
        connect(`ws://user:secret-password@127.0.0.1:${redirecting.port}/start`, {
          keepalive: null,
          headers: { Authorization: 'Bearer app-secret-token', Cookie: 'session=app' },
        }),
        (err: unknown) => {
          assert.ok(err instanceof HandshakeError, `got ${String(err)}`);
          assert.equal(err.code, 'ERR_UNEXPECTED_STATUS');
          assert.equal(err.status, s);
          assert.equal(err.headers?.location, location);
          // Peer-chosen names stay data: a null-prototype object.
          assert.equal(Object.getPrototypeOf(err.headers), null);
          assert.equal(err.headers?.['__proto__'], 'polluted');
          assert.equal(err.headers?.constructor, 'x');
          return true;
        },
      );
      // Time for a (wrong) follow-up connection to show up.
      await delay(200);
      assert.equal(other.accepted, 0, 'the redirect target was contacted');
      assert.equal(redirecting.accepted, acceptedBefore + 1, 'exactly one connection, to the URL given');
      assert.equal(requests.length, requestsBefore + 1);
      const head = requests[requests.length - 1];
      // The application's own header went where the application sent it, and only there.
      assert.match(head, /\r\nAuthorization: Bearer app-secret-token(\r\n|$)/);
      // The URL's user:password was not turned into anything.
      assert.ok(!head.includes('secret-password'));
      assert.ok(!head.includes(Buffer.from('user:secret-password').toString('base64')));
      assert.ok(!head.includes('user@'));
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
    });
  }

  it('after all of them: the other origin saw no connection', () => {
    assert.equal(other.accepted, 0);
  });
});
