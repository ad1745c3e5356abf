/**
 * Pacer (src/transport/pacer.ts): requestWritable() and waitForDrain() over a
 * fake host whose idleness, open state and bufferedAmount the test sets. A
 * request is answered by exactly one onWritable, on a later turn of the event
 * loop and never synchronously, only once nothing waits on our side, and not
 * at all once the session closed (S2: never unasked). waitForDrain() resolves
 * when bufferedAmount is at or below the high-water mark, or when the stream
 * is gone.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Pacer, type PacerHost } from '../../src/transport/pacer.js';
import type { WritableInfo } from '../../src/transport/types.js';

class FakeHost implements PacerHost {
  idle = true;
  bufferedAmount = 0;
  highWaterMark = 100;
  open = true;
  readonly fired: WritableInfo[] = [];
  fireWritable(info: WritableInfo): void {
    this.fired.push(info);
  }
}

function pacer(): { p: Pacer; host: FakeHost } {
  const host = new FakeHost();
  return { p: new Pacer(host), host };
}

/** Whether `promise` settled, watched from now on. */
function watch(promise: Promise<void>): { readonly settled: boolean } {
  const state = { settled: false };
  void promise.then(() => {
    state.settled = true;
  });
  return state;
}

/** Several turns of the event loop: enough for anything scheduled with setImmediate to have run. */
async function turns(n = 3): Promise<void> {
  for (let i = 0; i < n; i++) await nextTurn();
}

describe('Pacer: requestWritable()', () => {
  it('registers one request at a time: true, then false while it is pending; requestCount counts the registered ones', async () => {
    const { p, host } = pacer();
    assert.equal(p.requestCount, 0);
    assert.equal(p.pending, false);
    assert.equal(p.request(), true);
    assert.equal(p.pending, true);
    assert.equal(p.request(), false, 'requests do not stack');
    assert.equal(p.request(), false);
    assert.equal(p.requestCount, 1, 'refused requests are not counted');
    await turns();
    assert.deepEqual(host.fired, [{ request: 1 }], 'one onWritable for the three calls');
    assert.equal(p.pending, false);
    assert.equal(p.request(), true, 'answered: a new request registers');
    assert.equal(p.requestCount, 2);
  });

  it('fires on a later turn of the loop, never synchronously, exactly once per request, with the request number', async () => {
    const { p, host } = pacer();
    p.request();
    assert.deepEqual(host.fired, [], 'not from inside request()');
    await Promise.resolve();
    await new Promise<void>((resolve) => process.nextTick(resolve));
    assert.deepEqual(host.fired, [], 'not from a microtask or nextTick either');
    await nextTurn();
    assert.deepEqual(host.fired, [{ request: 1 }]);
    p.progressed();
    await turns();
    assert.deepEqual(host.fired, [{ request: 1 }], 'exactly once: progress without a request fires nothing');
    p.request();
    p.request();
    assert.equal(host.fired.length, 1);
    await turns();
    assert.deepEqual(host.fired, [{ request: 1 }, { request: 2 }], 'info.request is the number of the request answered');
  });

  it('fires once even when progress is reported several times before the turn', async () => {
    const { p, host } = pacer();
    p.request();
    p.progressed();
    p.progressed();
    p.progressed();
    await turns();
    assert.deepEqual(host.fired, [{ request: 1 }]);
  });

  it('a request made from inside onWritable is answered on a later turn, even after repeated progress', async () => {
    const order: string[] = [];
    const host = new FakeHost();
    const p = new Pacer(host);
    host.fireWritable = (info) => {
      order.push(`writable ${info.request}`);
      if (info.request === 1) {
        setImmediate(() => order.push('next turn'));
        p.request();
      }
    };
    p.request();
    p.progressed();
    p.progressed();
    await turns(4);
    assert.deepEqual(order, ['writable 1', 'next turn', 'writable 2']);
  });

  it('waits while the host is not idle, and fires after progressed() once it is', async () => {
    const { p, host } = pacer();
    host.idle = false;
    assert.equal(p.request(), true);
    await turns();
    assert.deepEqual(host.fired, [], 'something still waits on our side');
    p.progressed();
    await turns();
    assert.deepEqual(host.fired, [], 'progress while still busy fires nothing');
    host.idle = true;
    await turns();
    assert.deepEqual(host.fired, [], 'becoming idle alone fires nothing: the session reports progress');
    p.progressed();
    assert.deepEqual(host.fired, [], 'not synchronously from progressed()');
    await nextTurn();
    assert.deepEqual(host.fired, [{ request: 1 }]);
    assert.equal(p.pending, false);
  });

  it('does not fire if the host stopped being idle before the turn, and fires after the next progress', async () => {
    const { p, host } = pacer();
    p.request();
    host.idle = false; // the application queued more in the same turn
    await turns();
    assert.deepEqual(host.fired, []);
    assert.equal(p.pending, true, 'the request stays registered');
    host.idle = true;
    p.progressed();
    await turns();
    assert.deepEqual(host.fired, [{ request: 1 }]);
  });

  it('does not fire if the host closed before the turn', async () => {
    const { p, host } = pacer();
    p.request();
    host.open = false;
    await turns();
    p.progressed();
    await turns();
    assert.deepEqual(host.fired, []);
  });

  it('does not fire after cancel() made before the turn', async () => {
    const { p, host } = pacer();
    p.request();
    p.cancel();
    assert.equal(p.pending, false);
    await turns();
    p.progressed();
    await turns();
    assert.deepEqual(host.fired, []);
  });
});

describe('Pacer: waitForDrain()', () => {
  it('resolves at once at or below the high-water mark', async () => {
    const { p, host } = pacer();
    host.bufferedAmount = 0;
    const a = watch(p.waitForDrain());
    host.bufferedAmount = host.highWaterMark;
    const b = watch(p.waitForDrain());
    await Promise.resolve();
    await Promise.resolve();
    assert.equal(a.settled, true, 'nothing buffered');
    assert.equal(b.settled, true, 'exactly at the mark');
  });

  it('above the mark, waits until progressed() finds bufferedAmount back at or below it', async () => {
    const { p, host } = pacer();
    host.bufferedAmount = host.highWaterMark + 1;
    const a = watch(p.waitForDrain());
    const b = watch(p.waitForDrain());
    await turns();
    assert.equal(a.settled, false);
    p.progressed();
    await turns();
    assert.deepEqual([a.settled, b.settled], [false, false], 'still above the mark');
    host.bufferedAmount = host.highWaterMark;
    await turns();
    assert.deepEqual([a.settled, b.settled], [false, false], 'only progressed() releases waiters');
    p.progressed();
    await turns();
    assert.deepEqual([a.settled, b.settled], [true, true], 'every waiter');
    assert.deepEqual(host.fired, [], 'waiting for drain is not a request for onWritable');
  });

  it('releaseAll() resolves every waiter even above the mark', async () => {
    const { p, host } = pacer();
    host.bufferedAmount = 10 * host.highWaterMark;
    const waiters = [watch(p.waitForDrain()), watch(p.waitForDrain()), watch(p.waitForDrain())];
    await turns();
    assert.deepEqual(waiters.map((w) => w.settled), [false, false, false]);
    p.releaseAll();
    await turns();
    assert.deepEqual(waiters.map((w) => w.settled), [true, true, true]);
    assert.doesNotThrow(() => p.releaseAll(), 'nothing left to release');
  });
});
