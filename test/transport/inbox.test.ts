/**
 * Inbox (src/transport/inbox.ts): the messages behind messages(), in order,
 * bounded by bytes with hysteresis (pause above one mark, resume at or below
 * another), and a waiter woken by a push or by the end of the session.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Inbox } from '../../src/transport/inbox.js';
import type { Message } from '../../src/transport/types.js';

const msg = (n: number, size: number): Message => {
  const data = Buffer.alloc(size);
  data.writeUInt32BE(n, 0);
  return { binary: true, data, text: '' };
};

describe('Inbox', () => {
  it('keeps order, counts bytes, and says when to pause and when to resume', () => {
    const inbox = new Inbox(100, 40);
    const pauses: boolean[] = [];
    for (let i = 0; i < 5; i++) pauses.push(inbox.push(msg(i, 30)));
    assert.deepEqual(pauses, [false, false, false, true, true], 'above 100 bytes');
    assert.equal(inbox.bytes, 150);
    const seen: number[] = [];
    const drained: boolean[] = [];
    for (let m = inbox.take(); m; m = inbox.take()) {
      seen.push(m.data.readUInt32BE(0));
      drained.push(inbox.drained);
    }
    assert.deepEqual(seen, [0, 1, 2, 3, 4]);
    assert.deepEqual(drained, [false, false, false, true, true], 'at or below 40 bytes');
    assert.equal(inbox.length, 0);
  });

  it('wakes a waiter on push and on wake(); a long queue is taken in order', async () => {
    const inbox = new Inbox(1 << 30, 0);
    const w = inbox.wait();
    inbox.push(msg(1, 4));
    await w;
    const w2 = inbox.wait();
    inbox.wake();
    await w2;
    for (let i = 2; i < 5000; i++) inbox.push(msg(i, 4));
    for (let i = 1; i < 5000; i++) assert.equal(inbox.take()!.data.readUInt32BE(0), i);
    assert.equal(inbox.take(), undefined);
    assert.equal(inbox.bytes, 0);
  });
});
