/**
 * dumb-increment-protocol on the demo server, with libwebsockets'
 * wire behaviour (plugins/protocol_dumb_increment.c): TEXT "0", "1", ...
 * every 50 ms, `reset\n` restarts at 0, `closeme\n` closes with 1001 "seeya",
 * and no permessage-deflate.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type ClientSession, type Message } from '../../src/index.js';
import { DUMB_INCREMENT_MAX_MESSAGE } from '../../src/demo/dumb-increment.js';
import { startDemo, type DemoFixture } from './demo-fixture.js';
import { withTimeout } from '../helpers/ws-pair.js';

/** Takes the next `n` messages of a session (bounded in time). */
async function take(it: AsyncIterator<Message>, n: number, what: string): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await withTimeout(it.next(), 10_000, `${what} (message ${i + 1} of ${n})`);
    assert.equal(r.done, false, `${what}: the connection ended after ${out.length} messages`);
    assert.equal(r.value.binary, false, 'dumb-increment sends TEXT');
    out.push(r.value.text);
  }
  return out;
}

function counting(from: number, n: number): string[] {
  return Array.from({ length: n }, (_, i) => String(from + i));
}

describe('dumb-increment-protocol', () => {
  let fx: DemoFixture;
  const open: ClientSession[] = [];
  before(async () => {
    fx = await startDemo();
  });
  after(async () => {
    for (const c of open) c.terminate();
    await fx.close();
  });
  const dial = async (opts: { perMessageDeflate?: boolean } = {}) => {
    const c = await connect(`ws://127.0.0.1:${fx.port}/`, { protocol: 'dumb-increment-protocol', ...opts });
    open.push(c);
    return c;
  };

  it('counts up from 0, one TEXT message about every 50 ms, declining compression', async () => {
    const c = await dial({ perMessageDeflate: true });
    assert.equal(c.protocol, 'dumb-increment-protocol');
    // libwebsockets' test client drops the connection at the first compressed frame on this protocol.
    assert.deepEqual(c.extensions, []);
    const it = c.messages();
    const t0 = Date.now();
    assert.deepEqual(await take(it, 8, 'the counter'), counting(0, 8));
    // Seven periods at least (timers never fire early; 20% slack for the clock).
    assert.ok(Date.now() - t0 >= 7 * 50 * 0.8, `8 numbers came in ${Date.now() - t0} ms: faster than one per 50 ms`);
    c.close();
    assert.equal((await c.closed).code, 1000);
  });

  it('restarts at 0 on reset\\n, and each connection has its own counter', async () => {
    const a = await dial();
    const ait = a.messages();
    assert.deepEqual(await take(ait, 5, 'a'), counting(0, 5));
    const b = await dial();
    const bit = b.messages();
    assert.deepEqual(await take(bit, 2, 'b'), counting(0, 2));
    a.send('reset\n');
    // Numbers already on their way may come first; then the count restarts at 0 and goes on.
    const seen: string[] = [];
    let last = 4;
    for (let i = 0; i < 40; i++) {
      const [v] = await take(ait, 1, 'a after reset');
      seen.push(v);
      if (v === '0') break;
      assert.equal(Number(v), last + 1, `before the reset takes effect the count goes on: ${seen.join(',')}`);
      last = Number(v);
    }
    assert.equal(seen.at(-1), '0', `no 0 after reset: ${seen.join(',')}`);
    assert.deepEqual(await take(ait, 3, 'a after reset'), counting(1, 3));
    // b was not reset.
    const bNext = await take(bit, 1, 'b');
    assert.ok(Number(bNext[0]) >= 2, `b went on counting, got ${bNext[0]}`);
    a.close();
    b.close();
    await Promise.all([a.closed, b.closed]);
  });

  it('reads only the start of a message, as libwebsockets does', async () => {
    const c = await dial();
    const it = c.messages();
    await take(it, 3, 'the counter');
    // "reset\n" followed by more bytes still resets; text that only contains it later does not.
    c.send('xreset\n');
    c.send('reset\nand more');
    const seen: string[] = [];
    for (let i = 0; i < 40 && seen.at(-1) !== '0'; i++) seen.push((await take(it, 1, 'after reset'))[0]);
    assert.equal(seen.at(-1), '0', `no reset: ${seen.join(',')}`);
    c.close();
    await c.closed;
  });

  it('closes with 1001 "seeya" on closeme\\n', async () => {
    const c = await dial();
    await take(c.messages(), 2, 'the counter');
    c.send('closeme\n');
    const info = await withTimeout(c.closed, 10_000, 'the close');
    assert.equal(info.code, 1001);
    assert.equal(info.reason, 'seeya');
    assert.equal(info.wasClean, true);
  });

  it('closes a message over 1 KiB with 1009 (it only ever reads reset and closeme)', async () => {
    const c = await dial();
    c.send('x'.repeat(DUMB_INCREMENT_MAX_MESSAGE + 1));
    const info = await withTimeout(c.closed, 10_000, 'the close');
    assert.equal(info.code, 1009);
  });

  it('stops its timer when the last connection is gone', async () => {
    const c = await dial();
    await take(c.messages(), 1, 'the counter');
    assert.ok(fx.demo.dumbIncrement.size >= 1);
    assert.equal(fx.demo.dumbIncrement.running, true);
    c.close();
    await c.closed;
    const deadline = Date.now() + 10_000;
    while (fx.demo.dumbIncrement.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(fx.demo.dumbIncrement.size, 0);
    assert.equal(fx.demo.dumbIncrement.running, false);
  });
});
