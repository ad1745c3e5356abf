/**
 * Inbox (src/transport/inbox.ts): the messages behind messages(), in order,
 * bounded by bytes with hysteresis (pause above one mark, resume at or below
 * another), and a waiter woken by a push or by the end of the session.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { ProtocolError } from '../../src/core/errors.js';
import { Inbox, type InboxEnd } from '../../src/transport/inbox.js';
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

describe('Inbox.iterate', () => {
  /** An iterator over a fresh inbox, with the session's end and the `taken` calls under the test's control. */
  function iterated() {
    const inbox = new Inbox(1 << 30, 0);
    const state: { end: InboxEnd | null; taken: number[] } = { end: null, taken: [] };
    const it = inbox.iterate(
      () => state.end,
      () => state.taken.push(inbox.length),
    );
    return { inbox, it, state };
  }

  it('yields the pushed messages in order, calling taken() after each one is taken', async () => {
    const { inbox, it, state } = iterated();
    for (let i = 0; i < 3; i++) inbox.push(msg(i, 8));
    const seen: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await it.next();
      assert.equal(r.done, false);
      seen.push((r.value as Message).data.readUInt32BE(0));
      assert.equal(state.taken.length, i + 1, 'taken() once per message');
    }
    assert.deepEqual(seen, [0, 1, 2]);
    assert.deepEqual(state.taken, [2, 1, 0], 'called after the message left the inbox');
    assert.equal(inbox.bytes, 0);
  });

  it('waits for a push when the inbox is empty and the session has not ended', async () => {
    const { inbox, it, state } = iterated();
    let result: IteratorResult<Message> | undefined;
    const pending = it.next().then((r) => (result = r));
    await nextTurn();
    await nextTurn();
    assert.equal(result, undefined, 'still waiting');
    assert.deepEqual(state.taken, []);
    inbox.push(msg(7, 4));
    await pending;
    assert.equal(result!.done, false);
    assert.equal((result!.value as Message).data.readUInt32BE(0), 7);
    assert.equal(state.taken.length, 1);
  });

  it('a wake() without a message keeps waiting until the session has ended', async () => {
    const { inbox, it, state } = iterated();
    let result: IteratorResult<Message> | undefined;
    const pending = it.next().then((r) => (result = r));
    inbox.wake();
    await nextTurn();
    await nextTurn();
    assert.equal(result, undefined, 'woken, nothing to take, not ended: waits again');
    state.end = { wasClean: true, error: undefined };
    inbox.wake();
    await pending;
    assert.deepEqual(result, { value: undefined, done: true });
  });

  it('yields what is left first, then is done once ended() says the session closed cleanly', async () => {
    const { inbox, it, state } = iterated();
    inbox.push(msg(1, 4));
    inbox.push(msg(2, 4));
    state.end = { wasClean: true, error: undefined };
    const seen: number[] = [];
    for await (const m of it) seen.push(m.data.readUInt32BE(0));
    assert.deepEqual(seen, [1, 2], 'messages received before the end are not lost');
    assert.deepEqual(await it.next(), { value: undefined, done: true }, 'and stays done');
  });

  it('throws the error once ended() says the session failed', async () => {
    const { inbox, it, state } = iterated();
    const error = new ProtocolError('ERR_TEST', 'the peer broke the protocol', 1002);
    inbox.push(msg(1, 4));
    const first = await it.next();
    assert.equal(first.done, false, 'what came before the failure is yielded first');
    const pending = it.next();
    state.end = { wasClean: false, error };
    inbox.wake();
    await assert.rejects(pending, (e: unknown) => e === error);
  });

  it('return() ends the iteration: a for-await loop that breaks takes nothing more', async () => {
    const { inbox, it, state } = iterated();
    for (let i = 0; i < 3; i++) inbox.push(msg(i, 4));
    const seen: number[] = [];
    for await (const m of it) {
      seen.push(m.data.readUInt32BE(0));
      break;
    }
    assert.deepEqual(seen, [0]);
    assert.equal(inbox.length, 2, 'the rest stays in the inbox');
    assert.equal(state.taken.length, 1);
  });

  it('return() ends the iteration: next() after it is done and takes nothing', async () => {
    const { inbox, it, state } = iterated();
    for (let i = 0; i < 3; i++) inbox.push(msg(i, 4));
    assert.equal((await it.next()).done, false);
    assert.deepEqual(await it.return!(), { value: undefined, done: true });
    assert.deepEqual(await it.next(), { value: undefined, done: true });
    assert.equal(inbox.length, 2, 'nothing taken after return()');
    assert.equal(state.taken.length, 1);
  });
});
