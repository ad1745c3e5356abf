/**
 * The demo server's echo service: clients that ask for no subprotocol, or for
 * sockeye-echo-nodeflate, get every message back, same type, same bytes. The
 * latter never negotiates permessage-deflate, so that a browser (which always
 * offers it) can measure the engine rather than zlib.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../../src/index.js';
import { ECHO_NO_DEFLATE_PROTOCOL } from '../../src/demo/echo.js';
import { startDemo, type DemoFixture } from './demo-fixture.js';
import { pseudoRandomBytes, sha256, withTimeout } from '../helpers/ws-pair.js';

/** An empty text, a short text and `bigBytes` of random binary come back as they went, in order. */
async function echoesThree(c: Awaited<ReturnType<typeof connect>>, bigBytes: number): Promise<void> {
  const it = c.messages();
  c.send('');
  c.send('héllo');
  const big = pseudoRandomBytes(bigBytes);
  c.send(big);
  const m0 = (await withTimeout(it.next(), 10_000, 'empty echo')).value!;
  assert.equal(m0.binary, false);
  assert.equal(m0.data.length, 0);
  const m1 = (await withTimeout(it.next(), 10_000, 'text echo')).value!;
  assert.equal(m1.binary, false);
  assert.equal(m1.text, 'héllo');
  const m2 = (await withTimeout(it.next(), 30_000, `${bigBytes}-byte echo`)).value!;
  assert.equal(m2.binary, true);
  assert.equal(sha256(m2.data), sha256(big));
}

describe('echo (no subprotocol, or sockeye-echo-nodeflate)', () => {
  let fx: DemoFixture;
  before(async () => {
    fx = await startDemo();
  });
  after(async () => {
    await fx.close();
  });

  it('echoes text and binary, from 0 bytes to 8 MiB, with and without compression', async () => {
    for (const perMessageDeflate of [false, true]) {
      const c = await connect(`ws://127.0.0.1:${fx.port}/`, { perMessageDeflate });
      try {
        assert.equal(c.protocol, undefined);
        assert.deepEqual(c.extensions, perMessageDeflate ? ['permessage-deflate'] : []);
        await echoesThree(c, 8 * 1024 * 1024);
        c.close();
        assert.equal((await c.closed).wasClean, true);
      } finally {
        c.terminate();
      }
    }
  });

  it('sockeye-echo-nodeflate declines permessage-deflate though the client offers it, and echoes the same bytes', async () => {
    // The server's perMessageDeflate (default true) does not reach it.
    const c = await connect(`ws://127.0.0.1:${fx.port}/`, { protocol: ECHO_NO_DEFLATE_PROTOCOL, perMessageDeflate: true });
    try {
      assert.equal(c.protocol, 'sockeye-echo-nodeflate');
      assert.deepEqual(c.extensions, []);
      const server = [...fx.demo.server.clients].find((s) => s.protocol === ECHO_NO_DEFLATE_PROTOCOL);
      assert.ok(server, 'the server holds the session');
      assert.deepEqual(server.extensions, []);
      await echoesThree(c, 1024 * 1024);
      // The echo without a subprotocol, on the same server, still accepts the offer.
      const d = await connect(`ws://127.0.0.1:${fx.port}/`, { perMessageDeflate: true });
      assert.equal(d.protocol, undefined);
      assert.deepEqual(d.extensions, ['permessage-deflate']);
      d.close();
      await d.closed;
      c.close();
      assert.equal((await c.closed).wasClean, true);
    } finally {
      c.terminate();
    }
  });

  it('declines compression when the demo server is told to', async () => {
    const plain = await startDemo({ perMessageDeflate: false });
    try {
      const c = await connect(`ws://127.0.0.1:${plain.port}/`, { perMessageDeflate: true });
      assert.deepEqual(c.extensions, []);
      c.close();
      await c.closed;
    } finally {
      await plain.close();
    }
  });
});
