/**
 * Histogram (src/transport/histogram.ts), under server.metrics()' ping
 * round-trip and fan-out durations: bounds are inclusive upper bounds,
 * the snapshot is cumulative as Prometheus exposes it, values above the
 * last bound only reach `count` (the +Inf bucket), and bad bounds fail.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Histogram } from '../../src/transport/histogram.js';
import { PING_RTT_BUCKETS } from '../../src/transport/session-counters.js';
import { FAN_OUT_BUCKETS } from '../../src/pubsub/fan-out.js';

describe('Histogram', () => {
  it('counts each value in the first bucket whose bound is at or above it; the snapshot is cumulative', () => {
    const h = new Histogram([0.1, 1, 10]);
    for (const v of [0, 0.1, 0.10001, 1, 5, 10, 11, 1e9]) h.observe(v);
    const snap = h.snapshot();
    assert.deepEqual(snap.buckets, [
      { le: 0.1, count: 2 },
      { le: 1, count: 4 },
      { le: 10, count: 6 },
    ]);
    assert.equal(snap.count, 8);
    assert.equal(snap.sum, 0 + 0.1 + 0.10001 + 1 + 5 + 10 + 11 + 1e9);
  });

  it('an empty histogram has every bucket at 0; a snapshot is a copy', () => {
    const h = new Histogram([1, 2]);
    const before = h.snapshot();
    assert.deepEqual(before, { buckets: [{ le: 1, count: 0 }, { le: 2, count: 0 }], sum: 0, count: 0 });
    h.observe(1.5);
    assert.equal(before.count, 0);
    assert.deepEqual(h.snapshot().buckets, [{ le: 1, count: 0 }, { le: 2, count: 1 }]);
  });

  it('bounds must be finite and strictly increasing', () => {
    assert.throws(() => new Histogram([1, 1]), RangeError);
    assert.throws(() => new Histogram([2, 1]), RangeError);
    assert.throws(() => new Histogram([1, Infinity]), RangeError);
    assert.throws(() => new Histogram([NaN]), RangeError);
    // The library's own bounds are valid.
    new Histogram(PING_RTT_BUCKETS);
    new Histogram(FAN_OUT_BUCKETS);
  });
});
