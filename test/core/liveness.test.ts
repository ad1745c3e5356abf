/**
 * Liveness (src/core/liveness.ts): a connection's clock work on the host's
 * time only (invariant S5). Keepalive pings after pingAfterMs of quiet (or
 * every pingAfterMs with alwaysPing), the hang-up after hangupAfterMs of
 * silence, the close handshake's timeout and its restart while queued bytes
 * still go out, nextDeadline() for each state, and the token bucket that
 * bounds received pings and pongs (maxControlFramesPerSecond, 1008).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Liveness } from '../../src/core/liveness.js';
import { LimitExceededError } from '../../src/core/errors.js';
import type { ConnectionState, KeepaliveOptions } from '../../src/core/connection-types.js';

function live(keepalive: KeepaliveOptions | null, opts: { closeTimeoutMs?: number; rate?: number; now?: number } = {}): Liveness {
  return new Liveness(keepalive, opts.closeTimeoutMs ?? 1000, opts.rate ?? 0, opts.now ?? 0);
}

/** What due() says at each of `times`, in order, in `state`. */
function dues(l: Liveness, times: number[], state: ConnectionState = 'open'): string[] {
  return times.map((t) => `${t} ${l.due(t, state)}`);
}

function assertControlLimit(fn: () => void, rate: number): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof LimitExceededError, `a LimitExceededError, got ${String(err)}`);
    assert.equal(err.limit, 'maxControlFramesPerSecond');
    assert.equal(err.code, 'ERR_LIMIT_MAX_CONTROL_FRAMES_PER_SECOND');
    assert.equal(err.closeCode, 1008);
    assert.match(err.message, new RegExp(`more than ${rate} control frames`));
    return true;
  });
}

/** Takes tokens until the bucket refuses one; returns how many were granted (bounded, to fail rather than spin). */
function drain(l: Liveness, max = 100_000): number {
  let n = 0;
  for (; n < max; n++) {
    try {
      l.takeControlToken();
    } catch (err) {
      if (err instanceof LimitExceededError) return n;
      throw err;
    }
  }
  return n;
}

describe('Liveness: keepalive pings', () => {
  it("'ping' after pingAfterMs of quiet, counted as sent: the next one pingAfterMs later", () => {
    const l = live({ pingAfterMs: 100, hangupAfterMs: 0 }, { now: 1000 });
    assert.deepEqual(dues(l, [1000, 1099, 1100, 1100, 1150, 1199, 1200, 1300]), [
      '1000 none',
      '1099 none',
      '1100 ping',
      '1100 none',
      '1150 none',
      '1199 none',
      '1200 ping',
      '1300 ping',
    ]);
  });

  it('no ping while data arrives; pingAfterMs counts from the last byte received', () => {
    const l = live({ pingAfterMs: 100, hangupAfterMs: 0 });
    // Data every 50 ms; a tick just before each next read, long after the first pingAfterMs.
    for (let t = 50; t <= 1000; t += 50) {
      l.received(t);
      assert.equal(l.due(t + 49, 'open'), 'none', `at ${t + 49}, 49 ms after data at ${t}`);
    }
    assert.equal(l.due(1099, 'open'), 'none');
    assert.equal(l.due(1100, 'open'), 'ping');
  });

  it('a ping sent does not restart the wait for data: the next ping is pingAfterMs after the later of both', () => {
    const l = live({ pingAfterMs: 100, hangupAfterMs: 0 });
    assert.equal(l.due(100, 'open'), 'ping');
    l.received(130);
    assert.equal(l.due(200, 'open'), 'none', 'data at 130 came after the ping at 100');
    assert.equal(l.due(229, 'open'), 'none');
    assert.equal(l.due(230, 'open'), 'ping');
  });

  it('alwaysPing: a ping every pingAfterMs even while data arrives', () => {
    const l = live({ pingAfterMs: 100, hangupAfterMs: 0, alwaysPing: true });
    const got: string[] = [];
    for (let t = 10; t <= 400; t += 10) {
      l.received(t);
      const d = l.due(t, 'open');
      if (d !== 'none') got.push(`${t} ${d}`);
    }
    assert.deepEqual(got, ['100 ping', '200 ping', '300 ping', '400 ping']);
  });

  it('pingAfterMs 0: never a ping', () => {
    const l = live({ pingAfterMs: 0, hangupAfterMs: 10_000 });
    assert.deepEqual(dues(l, [1, 100, 5000, 9999]), ['1 none', '100 none', '5000 none', '9999 none']);
  });

  it('no keepalive (none given, or both times 0): nothing is ever due while open', () => {
    for (const ka of [null, { pingAfterMs: 0, hangupAfterMs: 0 }]) {
      const l = live(ka);
      assert.deepEqual(dues(l, [0, 1e6, 1e9]), ['0 none', '1000000 none', '1000000000 none']);
      assert.equal(l.nextDeadline('open'), Infinity);
    }
    const u = new Liveness(undefined, 1000, 0, 0);
    assert.equal(u.due(1e9, 'open'), 'none');
  });
});

describe('Liveness: round-trip time of keepalive pings', () => {
  it('the first empty pong after a keepalive ping gives its round-trip time, once', () => {
    const l = live({ pingAfterMs: 100, hangupAfterMs: 0 }, { now: 0 });
    // No ping out yet: a pong answers nothing of ours.
    l.received(50);
    assert.equal(l.pongReceived(0), undefined);
    assert.equal(l.due(150, 'open'), 'ping');
    // A pong with data answers an application's ping, not the (empty) keepalive one.
    l.received(160);
    assert.equal(l.pongReceived(4), undefined);
    l.received(173.5);
    assert.equal(l.pongReceived(0), 23.5);
    // Answered: a second pong is not measured again.
    l.received(180);
    assert.equal(l.pongReceived(0), undefined);
  });

  it('a ping that is never answered is replaced by the next one', () => {
    const l = live({ pingAfterMs: 100, hangupAfterMs: 0, alwaysPing: true }, { now: 0 });
    assert.equal(l.due(100, 'open'), 'ping');
    assert.equal(l.due(200, 'open'), 'ping');
    l.received(230);
    assert.equal(l.pongReceived(0), 30);
  });
});

describe('Liveness: hang-up', () => {
  it("'hangup' after hangupAfterMs without receiving anything", () => {
    const l = live({ pingAfterMs: 0, hangupAfterMs: 300 });
    assert.equal(l.due(299, 'open'), 'none');
    assert.equal(l.due(300, 'open'), 'hangup');
    assert.equal(l.hangupAfterMs, 300);
    assert.equal(l.silentFor(300), 300);
  });

  it('every byte received restarts the wait', () => {
    const l = live({ pingAfterMs: 0, hangupAfterMs: 300 });
    l.received(200);
    assert.equal(l.due(499, 'open'), 'none');
    assert.equal(l.silentFor(450), 250);
    assert.equal(l.due(500, 'open'), 'hangup');
  });

  it('pings do not keep the peer alive: an unanswered peer is hung up on', () => {
    const l = live({ pingAfterMs: 100, hangupAfterMs: 250 });
    assert.deepEqual(dues(l, [100, 200, 249, 250]), ['100 ping', '200 ping', '249 none', '250 hangup']);
  });

  it('a hang-up due at the same time as a ping wins', () => {
    const l = live({ pingAfterMs: 100, hangupAfterMs: 100 });
    assert.equal(l.due(100, 'open'), 'hangup');
  });

  it('no keepalive without hangupAfterMs: hangupAfterMs reads 0', () => {
    assert.equal(live(null).hangupAfterMs, 0);
    assert.equal(live({ pingAfterMs: 10, hangupAfterMs: 0 }).hangupAfterMs, 0);
  });
});

describe('Liveness: states and the close timeout', () => {
  it('keepalive acts only while open: no ping nor hang-up while closing or closed', () => {
    for (const state of ['closing', 'closed'] as const) {
      const l = live({ pingAfterMs: 100, hangupAfterMs: 200 });
      assert.deepEqual(dues(l, [100, 200, 10_000], state), ['100 none', '200 none', '10000 none'], state);
    }
  });

  it("'close-timeout' only when closing, closeTimeoutMs after startCloseTimer(now)", () => {
    const l = live(null, { closeTimeoutMs: 1000 });
    l.startCloseTimer(500);
    assert.equal(l.due(1499, 'closing'), 'none');
    assert.equal(l.due(1500, 'open'), 'none', 'not while open');
    assert.equal(l.due(1500, 'closed'), 'none', 'not once closed');
    assert.equal(l.due(1500, 'closing'), 'close-timeout');
    assert.equal(l.closeWaitMs, 1000);
  });

  it('closing without a started timer never times out', () => {
    const l = live(null, { closeTimeoutMs: 1000 });
    assert.equal(l.due(1e9, 'closing'), 'none');
    assert.equal(l.nextDeadline('closing'), Infinity);
  });

  it('startCloseTimer() without a time counts from the latest time given', () => {
    const viaReceived = live(null, { closeTimeoutMs: 1000 });
    viaReceived.received(700);
    viaReceived.startCloseTimer();
    assert.equal(viaReceived.nextDeadline('closing'), 1700);
    const viaDue = live(null, { closeTimeoutMs: 1000 });
    viaDue.due(900, 'open');
    viaDue.startCloseTimer();
    assert.equal(viaDue.nextDeadline('closing'), 1900);
    const fromStart = live(null, { closeTimeoutMs: 1000, now: 42 });
    fromStart.startCloseTimer();
    assert.equal(fromStart.nextDeadline('closing'), 1042);
  });

  it('closeProgress(now) pushes the deadline to now + closeTimeoutMs', () => {
    const l = live(null, { closeTimeoutMs: 1000 });
    l.startCloseTimer(0);
    l.closeProgress(800);
    assert.equal(l.nextDeadline('closing'), 1800);
    assert.equal(l.due(1000, 'closing'), 'none', 'the first deadline no longer applies');
    assert.equal(l.due(1799, 'closing'), 'none');
    assert.equal(l.due(1800, 'closing'), 'close-timeout');
  });

  it('closeProgress() before the close timer started does not start one', () => {
    const l = live(null, { closeTimeoutMs: 1000 });
    l.closeProgress(100);
    assert.equal(l.nextDeadline('closing'), Infinity);
    assert.equal(l.due(5000, 'closing'), 'none');
  });
});

describe('Liveness: nextDeadline', () => {
  it('open: the earlier of the next ping and the hang-up, following data and pings', () => {
    const l = live({ pingAfterMs: 100, hangupAfterMs: 250 });
    assert.equal(l.nextDeadline('open'), 100);
    assert.equal(l.due(100, 'open'), 'ping');
    assert.equal(l.nextDeadline('open'), 200);
    l.received(180);
    assert.equal(l.nextDeadline('open'), 280);
    assert.equal(l.due(280, 'open'), 'ping');
    assert.equal(l.nextDeadline('open'), 380);
    assert.equal(l.due(380, 'open'), 'ping');
    assert.equal(l.nextDeadline('open'), 430, 'the hang-up, 250 ms after data at 180');
  });

  it('open with only one of the two timers', () => {
    const ping = live({ pingAfterMs: 100, hangupAfterMs: 0 }, { now: 5 });
    assert.equal(ping.nextDeadline('open'), 105);
    const hang = live({ pingAfterMs: 0, hangupAfterMs: 300 }, { now: 5 });
    assert.equal(hang.nextDeadline('open'), 305);
  });

  it('alwaysPing: the next ping counts from the last ping, not from data', () => {
    const l = live({ pingAfterMs: 100, hangupAfterMs: 0, alwaysPing: true });
    l.received(90);
    assert.equal(l.nextDeadline('open'), 100);
  });

  it('closing: the close deadline, whatever the keepalive; closed: Infinity', () => {
    const l = live({ pingAfterMs: 100, hangupAfterMs: 200 }, { closeTimeoutMs: 5000 });
    l.startCloseTimer(10);
    assert.equal(l.nextDeadline('closing'), 5010);
    assert.equal(l.nextDeadline('closed'), Infinity);
    assert.equal(l.nextDeadline('open'), 100, 'the keepalive deadline is still the open state\'s');
  });

  it('a tick at nextDeadline() finds something due', () => {
    const l = live({ pingAfterMs: 70, hangupAfterMs: 500 });
    const seen: string[] = [];
    for (let i = 0; i < 8; i++) {
      const t = l.nextDeadline('open');
      seen.push(`${t} ${l.due(t, 'open')}`);
    }
    assert.deepEqual(seen, ['70 ping', '140 ping', '210 ping', '280 ping', '350 ping', '420 ping', '490 ping', '500 hangup']);
  });
});

describe('Liveness: control-frame token bucket', () => {
  it('exactly `rate` tokens at one instant, then a LimitExceededError with 1008', () => {
    for (const rate of [1, 5, 1000]) {
      const l = live(null, { rate, now: 10_000 });
      assert.equal(drain(l), rate, `rate ${rate}`);
      assertControlLimit(() => l.takeControlToken(), rate);
    }
  });

  it('refills at `rate` per second of the time given to received(now)', () => {
    const l = live(null, { rate: 5 }); // one token per 200 ms
    assert.equal(drain(l), 5);
    l.received(199);
    assertControlLimit(() => l.takeControlToken(), 5);
    l.received(200);
    l.takeControlToken();
    assertControlLimit(() => l.takeControlToken(), 5);
    l.received(600);
    assert.equal(drain(l), 2, '400 ms later: two tokens');
  });

  it('refills by the time given to due(now) too', () => {
    const l = live(null, { rate: 10 });
    assert.equal(drain(l), 10);
    l.due(300, 'open');
    assert.equal(drain(l), 3);
  });

  it('a refused frame does not spend the refill: the tokens still come at the rate', () => {
    const l = live(null, { rate: 4 }); // one token per 250 ms
    assert.equal(drain(l), 4);
    for (const t of [50, 100, 200, 249]) {
      l.received(t);
      assertControlLimit(() => l.takeControlToken(), 4);
    }
    l.received(250);
    l.takeControlToken();
  });

  it('the bucket holds at most `rate` tokens however long the line was quiet', () => {
    const l = live(null, { rate: 3 });
    assert.equal(drain(l), 3);
    l.received(3_600_000);
    assert.equal(drain(l), 3);
  });

  it('a steady `rate` per second is always allowed', () => {
    const l = live(null, { rate: 100 });
    for (let t = 0; t < 5000; t += 10) {
      l.received(t);
      l.takeControlToken();
    }
    // Then a burst on top of the steady rate is bounded by the bucket.
    l.received(5000);
    assert.equal(drain(l), 100);
  });

  it('a clock that steps back neither refills nor empties the bucket', () => {
    const l = live(null, { rate: 2, now: 1000 });
    l.takeControlToken();
    l.received(500);
    l.takeControlToken();
    assertControlLimit(() => l.takeControlToken(), 2);
    const empty = live(null, { rate: 2, now: 1000 });
    assert.equal(drain(empty), 2);
    empty.received(500);
    assertControlLimit(() => empty.takeControlToken(), 2);
  });

  it('a whole token is needed: one thousandth short is refused', () => {
    const l = live(null, { rate: 1 });
    l.takeControlToken();
    l.received(999);
    assertControlLimit(() => l.takeControlToken(), 1);
    l.received(1000);
    l.takeControlToken();
  });

  it('rate 0 disables the limit', () => {
    const l = live(null, { rate: 0 });
    assert.equal(drain(l, 50_000), 50_000);
  });
});
