/**
 * TimerWheel with an injected clock. The wheel still arms a real (unref'd)
 * setTimeout to wake up, so each test waits for real wake-ups, but what it
 * asserts depends only on the injected clock: an entry fires when the clock
 * has reached its slot, never before, whatever the real timer does. Every
 * wait is bounded by a ref'd guard timer (which also keeps the process alive
 * while only the wheel's unref'd timer is pending).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TimerWheel, type TimerEntry } from '../../src/transport/timer-wheel.js';

class FakeClock {
  t = 0;
  readonly now = (): number => this.t;
}

const GUARD_MS = 5000;

/** Resolves when `condition()` holds, checking after each macrotask; rejects after GUARD_MS. */
function until(condition: () => boolean, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const guard = setTimeout(() => {
      clearInterval(poll);
      reject(new Error(`timed out waiting for ${what}`));
    }, GUARD_MS);
    const poll = setInterval(() => {
      if (condition()) {
        clearInterval(poll);
        clearTimeout(guard);
        resolve();
      }
    }, 1);
  });
}

/** An entry that records the `now` of each call. */
function recorder(onCall?: (now: number) => void): TimerEntry & { calls: number[] } {
  const e = {
    calls: [] as number[],
    onTimer(now: number) {
      e.calls.push(now);
      onCall?.(now);
    },
  };
  return e;
}

describe('TimerWheel', () => {
  it('keeps its resolution (at least 1 ms) and reads time from the injected clock', () => {
    const clock = new FakeClock();
    clock.t = 123.5;
    assert.equal(new TimerWheel(0, clock.now).resolutionMs, 1);
    const wheel = new TimerWheel(25, clock.now);
    assert.equal(wheel.resolutionMs, 25);
    assert.equal(wheel.now(), 123.5);
    wheel.stop();
  });

  it('counts entries: schedule adds, rescheduling moves, Infinity and cancel remove', () => {
    const clock = new FakeClock();
    const wheel = new TimerWheel(10, clock.now);
    const a = recorder();
    const b = recorder();
    // Far in the future so nothing fires during the test.
    wheel.schedule(a, 1e9);
    wheel.schedule(b, 1e9 + 50);
    assert.equal(wheel.size, 2);
    wheel.schedule(a, 2e9);
    assert.equal(wheel.size, 2, 'rescheduling moves, it does not add');
    wheel.schedule(a, Infinity);
    assert.equal(wheel.size, 1);
    wheel.cancel(b);
    assert.equal(wheel.size, 0);
    wheel.cancel(b);
    assert.equal(wheel.size, 0, 'cancelling twice is harmless');
    wheel.stop();
  });

  it('entries sharing a slot: cancelling the first, a middle and the last one leaves exactly the others to fire', async () => {
    const clock = new FakeClock();
    clock.t = 0;
    const wheel = new TimerWheel(10, clock.now);
    const es = Array.from({ length: 7 }, () => recorder());
    for (const e of es) wheel.schedule(e, 5);
    assert.equal(wheel.size, 7);
    // The list is newest first: es[6] is the head, es[0] the tail.
    wheel.cancel(es[6]);
    wheel.cancel(es[3]);
    wheel.cancel(es[0]);
    // Moved out of the shared slot and back in.
    wheel.schedule(es[2], 500);
    wheel.schedule(es[2], 5);
    assert.equal(wheel.size, 4);
    clock.t = 10;
    await until(() => es.some((e) => e.calls.length > 0), 'the slot to fire');
    assert.deepEqual(es.map((e) => e.calls.length), [0, 1, 1, 0, 1, 1, 0]);
    assert.equal(wheel.size, 0);
    wheel.stop();
  });

  it('fires an entry once the clock reaches its deadline, never before, even if the real timer wakes early', async () => {
    const clock = new FakeClock();
    clock.t = 1000;
    const wheel = new TimerWheel(10, clock.now);
    const e = recorder();
    wheel.schedule(e, 1015);
    // The real timer is armed for ~20 ms. Let it wake several times while the injected clock stands still.
    const sentinelStart = Date.now();
    await until(() => Date.now() - sentinelStart >= 80, 'some real time to pass');
    assert.deepEqual(e.calls, [], 'the clock has not reached the deadline: no call');
    assert.equal(wheel.size, 1);
    clock.t = 1019;
    // Slots are rounded up: 1015 belongs to the slot ending at 1020.
    await until(() => Date.now() - sentinelStart >= 120, 'more real time to pass');
    assert.deepEqual(e.calls, [], 'deadlines are rounded up to the slot, never down');
    clock.t = 1020;
    await until(() => e.calls.length > 0, 'the entry to fire');
    assert.deepEqual(e.calls, [1020]);
    assert.equal(wheel.size, 0, 'a fired entry is no longer scheduled');
    wheel.stop();
  });

  it('fires the entries of one slot together, and later slots later', async () => {
    const clock = new FakeClock();
    const wheel = new TimerWheel(10, clock.now);
    const a = recorder();
    const b = recorder();
    const c = recorder();
    wheel.schedule(a, 5);
    wheel.schedule(b, 10);
    wheel.schedule(c, 11);
    clock.t = 10;
    await until(() => a.calls.length > 0 && b.calls.length > 0, 'a and b');
    assert.deepEqual([a.calls, b.calls], [[10], [10]]);
    assert.deepEqual(c.calls, [], 'c is due at 11, in the next slot');
    assert.equal(wheel.size, 1);
    clock.t = 20;
    await until(() => c.calls.length > 0, 'c');
    assert.deepEqual(c.calls, [20]);
    assert.deepEqual([a.calls.length, b.calls.length], [1, 1], 'each entry fires once per scheduling');
    wheel.stop();
  });

  it('an entry scheduled in the past fires at the next wake-up', async () => {
    const clock = new FakeClock();
    clock.t = 500;
    const wheel = new TimerWheel(10, clock.now);
    const e = recorder();
    wheel.schedule(e, 100);
    await until(() => e.calls.length > 0, 'the overdue entry');
    assert.deepEqual(e.calls, [500]);
    wheel.stop();
  });

  it('an earlier deadline re-arms the wheel; a later one does not delay an earlier one', async () => {
    const clock = new FakeClock();
    const wheel = new TimerWheel(10, clock.now);
    const late = recorder();
    const early = recorder();
    wheel.schedule(late, 1e7);
    wheel.schedule(early, 30);
    clock.t = 30;
    await until(() => early.calls.length > 0, 'the early entry');
    assert.deepEqual(early.calls, [30]);
    assert.deepEqual(late.calls, []);
    wheel.stop();
  });

  it('an entry may schedule itself again from onTimer (periodic timers)', async () => {
    const clock = new FakeClock();
    const wheel = new TimerWheel(10, clock.now);
    const e = recorder((now) => {
      if (e.calls.length < 3) {
        clock.t = now + 10;
        wheel.schedule(e, now + 10);
      }
    });
    wheel.schedule(e, 10);
    clock.t = 10;
    await until(() => e.calls.length >= 3, 'three firings');
    assert.deepEqual(e.calls, [10, 20, 30]);
    assert.equal(wheel.size, 0);
    wheel.stop();
  });

  it('a cancelled or moved entry does not fire at its old deadline', async () => {
    const clock = new FakeClock();
    const wheel = new TimerWheel(10, clock.now);
    const cancelled = recorder();
    const moved = recorder();
    const sentinel = recorder();
    wheel.schedule(cancelled, 10);
    wheel.schedule(moved, 10);
    wheel.schedule(sentinel, 20);
    wheel.cancel(cancelled);
    wheel.schedule(moved, 1e7);
    clock.t = 20;
    // The sentinel's slot is after the old deadlines: once it fired, they would have too.
    await until(() => sentinel.calls.length > 0, 'the sentinel');
    assert.deepEqual(cancelled.calls, []);
    assert.deepEqual(moved.calls, []);
    assert.equal(wheel.size, 1);
    wheel.stop();
  });

  it('stop() drops every entry: none fires, even when the wheel is used again', async () => {
    const clock = new FakeClock();
    const wheel = new TimerWheel(10, clock.now);
    const stopped = recorder();
    wheel.schedule(stopped, 10);
    wheel.stop();
    assert.equal(wheel.size, 0);
    const sentinel = recorder();
    wheel.schedule(sentinel, 20);
    clock.t = 20;
    await until(() => sentinel.calls.length > 0, 'the sentinel');
    assert.deepEqual(stopped.calls, []);
    wheel.stop();
  });

  it('an entry that throws does not stop the others; its error is rethrown asynchronously', async () => {
    const clock = new FakeClock();
    const wheel = new TimerWheel(10, clock.now);
    const boom = new Error('entry failed');
    const bad: TimerEntry = {
      onTimer() {
        throw boom;
      },
    };
    const good = recorder();
    const caught: unknown[] = [];
    // Capture the rethrown error instead of letting it reach the test runner as an uncaught exception.
    process.setUncaughtExceptionCaptureCallback((err) => caught.push(err));
    try {
      wheel.schedule(bad, 10);
      wheel.schedule(good, 10);
      clock.t = 10;
      await until(() => good.calls.length > 0 && caught.length > 0, 'the good entry and the rethrown error');
      assert.deepEqual(good.calls, [10]);
      assert.deepEqual(caught, [boom]);
    } finally {
      process.setUncaughtExceptionCaptureCallback(null);
      wheel.stop();
    }
  });

  it('its timer does not keep the process alive (unref)', () => {
    const count = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const clock = new FakeClock();
    const wheel = new TimerWheel(10, clock.now);
    const before = count();
    wheel.schedule(recorder(), 60_000);
    assert.equal(count(), before, 'the armed wheel adds no ref\'d timer');
    // The method can see ref'd timers at all:
    const t = setTimeout(() => {}, 60_000);
    assert.equal(count(), before + 1);
    clearTimeout(t);
    wheel.stop();
  });
  it('thousands of entries over dozens of slots, moved and cancelled at random: each fires once, when its slot is due', { timeout: 30_000 }, async () => {
    const clock = new FakeClock();
    const wheel = new TimerWheel(10, clock.now);
    let seed = 0x9e3779b9;
    const rand = (n: number): number => {
      // xorshift32
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    // The model: each entry's deadline (null: not scheduled) and the times it fired.
    const entries = Array.from({ length: 2000 }, () => {
      const e = { deadline: null as number | null, fired: [] as { now: number; deadline: number }[], ...recorder() };
      e.onTimer = (now: number) => {
        assert.notEqual(e.deadline, null, 'only a scheduled entry fires');
        e.fired.push({ now, deadline: e.deadline! });
        e.deadline = null;
      };
      return e;
    });
    try {
      for (let step = 0; step < 60; step++) {
        for (let op = 0; op < 300; op++) {
          const e = entries[rand(entries.length)];
          if (rand(4) === 0) {
            wheel.cancel(e);
            e.deadline = null;
          } else {
            e.deadline = clock.t + 1 + rand(400);
            wheel.schedule(e, e.deadline);
          }
        }
        assert.equal(wheel.size, entries.filter((e) => e.deadline !== null).length);
        clock.t += 20;
        const dueNow = (e: (typeof entries)[number]) => e.deadline !== null && Math.ceil(e.deadline / 10) * 10 <= clock.t;
        await until(() => !entries.some(dueNow), `the entries due at ${clock.t}`);
      }
      const fired = entries.flatMap((e) => e.fired);
      assert.ok(fired.length > 1000, `${fired.length} firings`);
      for (const f of fired) assert.ok(f.now >= Math.ceil(f.deadline / 10) * 10, `fired at ${f.now} for a deadline of ${f.deadline}`);
      assert.ok(wheel.heldSlots <= 45, `${wheel.heldSlots} slots held for 42 in the horizon`);
    } finally {
      wheel.stop();
    }
  });

  it('an entry moved back and forth holds no more slots than it visits', () => {
    const clock = new FakeClock();
    const wheel = new TimerWheel(10, clock.now);
    const e = recorder();
    for (let i = 0; i < 10_000; i++) wheel.schedule(e, i % 2 === 0 ? 1e6 : 2e6);
    assert.equal(wheel.size, 1);
    assert.equal(wheel.heldSlots, 2);
    for (let i = 0; i < 5000; i++) wheel.schedule(e, 3e6 + i * 10);
    assert.equal(wheel.heldSlots, 5002, 'one per distinct slot, however often it was visited');
    wheel.stop();
    assert.equal(wheel.heldSlots, 0);
  });

  it('once its last entry is cancelled it holds no slot and no timer; it works on afterwards', async () => {
    // What a burst of connections leaves behind: thousands of handshakes and sessions spread over
    // many slots, all cancelled when they close (test/hostile/storm-memory.test.ts).
    const clock = new FakeClock();
    const wheel = new TimerWheel(10, clock.now);
    const es = Array.from({ length: 3000 }, () => recorder());
    es.forEach((e, i) => wheel.schedule(e, 1e6 + i * 10));
    assert.equal(wheel.heldSlots, 3000);
    assert.equal(wheel.armed, true);
    for (const e of es.slice(0, 2999)) wheel.cancel(e);
    assert.equal(wheel.size, 1);
    assert.equal(wheel.heldSlots, 3000, 'with an entry left, emptied slots wait for their time (cheap cancel)');
    assert.equal(wheel.armed, true);
    wheel.cancel(es[2999]);
    assert.equal(wheel.size, 0);
    assert.equal(wheel.heldSlots, 0, 'the last cancel drops every slot number');
    assert.equal(wheel.armed, false, 'and stops the timer');
    // Moving the last entry is no cancel: its slots stay held and the timer armed.
    const lone = recorder();
    wheel.schedule(lone, 1e6);
    wheel.schedule(lone, 2e6);
    assert.equal(wheel.heldSlots, 2);
    assert.equal(wheel.armed, true);
    wheel.schedule(lone, Infinity);
    assert.equal(wheel.heldSlots, 0, 'Infinity cancels: same release');
    assert.equal(wheel.armed, false);
    // Used again afterwards, it fires as before.
    clock.t = 50;
    const later = recorder();
    wheel.schedule(later, 55);
    assert.equal(wheel.armed, true);
    clock.t = 60;
    await until(() => later.calls.length > 0, 'the entry scheduled after the release to fire');
    assert.deepEqual(later.calls, [60]);
    assert.equal(wheel.heldSlots, 0);
    assert.equal(wheel.armed, false, 'the last entry fired: nothing to wake up for');
    wheel.stop();
  });

  it('an entry whose onTimer cancels the last other entry: the release happens inside fire() and the wheel re-arms for what onTimer schedules', async () => {
    const clock = new FakeClock();
    const wheel = new TimerWheel(10, clock.now);
    const other = recorder();
    const again = recorder();
    const first = recorder(() => {
      wheel.cancel(other);
      wheel.schedule(again, clock.t + 30);
    });
    wheel.schedule(first, 5);
    wheel.schedule(other, 1e6);
    clock.t = 10;
    await until(() => first.calls.length > 0, 'the first entry to fire');
    assert.equal(wheel.size, 1);
    assert.equal(wheel.armed, true, 'armed for the entry scheduled from onTimer');
    clock.t = 40;
    await until(() => again.calls.length > 0, 'the rescheduled entry to fire');
    assert.deepEqual(other.calls, []);
    assert.equal(wheel.armed, false);
    assert.equal(wheel.heldSlots, 0);
    wheel.stop();
  });
});
