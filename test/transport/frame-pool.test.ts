/**
 * FramePool (src/transport/frame-pool.ts): buffers for large outgoing frames,
 * lent and given back. A buffer is lent to one frame at a time: it comes back
 * only if the pool lent it and has not had it back, small frames are never
 * pooled, idle buffers are bounded in bytes and released after a quiet
 * period. Outbound's part (giving a buffer back only once the stream has
 * written it) is in test/transport/outbound.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FramePool, POOL_IDLE_MS, POOL_MIN_BYTES, poolClass } from '../../src/transport/frame-pool.js';
import { TimerWheel } from '../../src/transport/timer-wheel.js';

describe('poolClass', () => {
  it('rounds up to an eighth of the power of two below, never more than an eighth too large', () => {
    assert.equal(poolClass(64 * 1024), 64 * 1024);
    assert.equal(poolClass(64 * 1024 + 1), 72 * 1024);
    assert.equal(poolClass(16 * 1024 * 1024 + 10), 18 * 1024 * 1024);
    for (let size = POOL_MIN_BYTES; size < 64 << 20; size = Math.floor(size * 1.37) + 11) {
      const c = poolClass(size);
      assert.ok(c >= size && c <= size * 1.125 + 1, `${size} -> ${c}`);
      assert.equal(poolClass(c), c, 'a class is its own class');
    }
  });
});

describe('FramePool', () => {
  it('lends a buffer of exactly the size asked, and lends it again only after it came back', () => {
    const pool = new FramePool(null);
    const a = pool.alloc(100_000);
    assert.equal(a.length, 100_000);
    assert.ok(pool.isLent(a));
    const b = pool.alloc(100_000);
    assert.notEqual(b.buffer, a.buffer, 'a lent buffer is not lent twice');
    pool.giveBack(a);
    assert.equal(pool.isLent(a), false);
    const c = pool.alloc(99_000);
    assert.equal(c.buffer, a.buffer, 'the same class reuses the buffer that came back');
    assert.equal(c.length, 99_000);
  });

  it('a buffer given back twice is pooled once (it can never be in two frames)', () => {
    const pool = new FramePool(null);
    const a = pool.alloc(200_000);
    pool.giveBack(a);
    pool.giveBack(a);
    assert.equal(pool.idleBytes, poolClass(200_000));
    const x = pool.alloc(200_000);
    const y = pool.alloc(200_000);
    assert.notEqual(x.buffer, y.buffer);
  });

  it('ignores buffers it did not lend, views into lent ones, and small frames', () => {
    const pool = new FramePool(null);
    pool.giveBack(Buffer.allocUnsafeSlow(100_000));
    const lent = pool.alloc(100_000);
    pool.giveBack(lent.subarray(10));
    assert.equal(pool.idleBytes, 0);
    assert.ok(pool.isLent(lent), 'still lent');
    const small = pool.alloc(POOL_MIN_BYTES - 1);
    assert.equal(small.length, POOL_MIN_BYTES - 1);
    assert.equal(pool.isLent(small), false, 'small frames are plain allocations');
    pool.giveBack(small);
    assert.equal(pool.idleBytes, 0);
  });

  it('keeps at most maxIdleBytes idle; the rest is left to the garbage collector', () => {
    const pool = new FramePool(null, 300_000);
    const bufs = [pool.alloc(100_000), pool.alloc(100_000), pool.alloc(100_000), pool.alloc(100_000)];
    for (const b of bufs) pool.giveBack(b);
    const cls = poolClass(100_000);
    assert.equal(pool.idleBytes, Math.floor(300_000 / cls) * cls);
  });

  it('releases idle buffers after POOL_IDLE_MS without a loan, and not while buffers are lent', () => {
    const wheel = new TimerWheel(10);
    try {
      const pool = new FramePool(wheel);
      const a = pool.alloc(100_000);
      pool.giveBack(a);
      assert.ok(pool.idleBytes > 0);
      // A loan during the period keeps the pool for another one.
      const b = pool.alloc(100_000);
      pool.giveBack(b);
      pool.onTimer(wheel.now() + POOL_IDLE_MS);
      assert.ok(pool.idleBytes > 0, 'used during the last period: kept');
      pool.onTimer(wheel.now() + 2 * POOL_IDLE_MS);
      assert.equal(pool.idleBytes, 0, 'a quiet period: released');
      const c = pool.alloc(100_000);
      assert.notEqual(c.buffer, a.buffer, 'released buffers are not lent again');
    } finally {
      wheel.stop();
    }
  });

  it('batch lists: one spare list is lent to one read at a time, and a nested read gets its own', () => {
    const pool = new FramePool(null);
    const outer = pool.takeList();
    const nested = pool.takeList();
    assert.notEqual(nested, outer, 'a list already lent is not lent again');
    outer.push(Buffer.alloc(1));
    pool.returnList(outer);
    assert.notEqual(pool.takeList(), outer, 'a list still holding frames is not kept');
    outer.pop();
    pool.returnList(outer);
    pool.returnList(nested);
    assert.equal(pool.takeList(), outer, 'the first emptied list returned is the spare');
    assert.notEqual(pool.takeList(), nested, 'only one spare is kept');
  });
});
