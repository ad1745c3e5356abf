/** The demo server's echo service: clients that ask for no subprotocol get every message back, same type, same bytes. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../../src/index.js';
import { startDemo, type DemoFixture } from './demo-fixture.js';
import { pseudoRandomBytes, sha256, withTimeout } from '../helpers/ws-pair.js';

describe('echo (no subprotocol)', () => {
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
        const it = c.messages();
        c.send('');
        c.send('héllo');
        const big = pseudoRandomBytes(8 * 1024 * 1024);
        c.send(big);
        const m0 = (await withTimeout(it.next(), 10_000, 'empty echo')).value!;
        assert.equal(m0.binary, false);
        assert.equal(m0.data.length, 0);
        const m1 = (await withTimeout(it.next(), 10_000, 'text echo')).value!;
        assert.equal(m1.binary, false);
        assert.equal(m1.text, 'héllo');
        const m2 = (await withTimeout(it.next(), 30_000, '8 MiB echo')).value!;
        assert.equal(m2.binary, true);
        assert.equal(sha256(m2.data), sha256(big));
        c.close();
        assert.equal((await c.closed).wasClean, true);
      } finally {
        c.terminate();
      }
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
