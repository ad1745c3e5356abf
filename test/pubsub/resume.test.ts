/**
 * CatchUp, the switch from a durable topic's history to its live stream for
 * one session: whatever the overlap between the history and what came live
 * meanwhile, each offset after `since` comes out once, in order.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CatchUp, type DurableFrame } from '../../src/pubsub/resume.js';

function frames(from: number, to: number): DurableFrame[] {
  const out: DurableFrame[] = [];
  for (let n = from; n <= to; n++) out.push({ offset: `7-${n}`, payload: Buffer.from(`m${n}`), binary: false, compress: true });
  return out;
}

function offsets(list: readonly DurableFrame[]): number[] {
  return list.map((f) => Number(f.offset.split('-')[1]));
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

describe('CatchUp', () => {
  it('every overlap of history (since+1..h) and live (l..end) gives since+1..end once each', () => {
    const since = 3;
    for (let h = since; h <= 12; h++) {
      // Live starts at most one past the history's end (the node subscribed before the range was taken).
      for (let l = since - 2; l <= h + 1; l++) {
        const c = new CatchUp(`7-${since}`);
        for (const f of frames(Math.max(1, l), 14)) c.hold(f);
        assert.deepEqual(offsets(c.finish(frames(since + 1, h))), range(since + 1, 14), `history to ${h}, live from ${l}`);
      }
    }
  });

  it('from no offset: the held ones after the history, all of them when the history is empty', () => {
    const c = new CatchUp(null);
    for (const f of frames(5, 8)) c.hold(f);
    assert.deepEqual(offsets(c.finish([])), [5, 6, 7, 8]);
  });

  it('counts the bytes it holds, and forgets them once finished', () => {
    const c = new CatchUp('7-0');
    for (const f of frames(1, 3)) c.hold(f);
    assert.equal(c.bytes, 6);
    assert.deepEqual(offsets(c.finish(frames(1, 2))), [1, 2, 3]);
    assert.equal(c.bytes, 0);
    assert.deepEqual(c.finish([]), []);
  });

  it('offsets compare as numbers across digit counts (9 before 10)', () => {
    const c = new CatchUp('7-8');
    for (const f of frames(9, 11)) c.hold(f);
    assert.deepEqual(offsets(c.finish(frames(9, 10))), [9, 10, 11]);
  });

  it('bound: past maxHeldBytes it holds nothing more and says it overflowed, so the resume fails instead of skipping', () => {
    const c = new CatchUp('7-0', 5);
    for (const f of frames(1, 2)) c.hold(f); // 4 bytes
    assert.equal(c.overflowed, false);
    c.hold(frames(3, 3)[0]); // 6 > 5
    assert.equal(c.overflowed, true);
    assert.equal(c.bytes, 0, 'what it held is let go');
    c.hold(frames(4, 4)[0]);
    assert.equal(c.bytes, 0);
  });
});
