/**
 * TopicHistory, the bounded history the cluster relay keeps of a durable
 * topic: offsets numbered in order within its era, the range after an
 * offset exact at every edge, the oldest forgotten past maxLength, and a
 * resume from before what is kept (or from another era, or from the future)
 * refused with a ResumeError instead of a silent skip.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TopicHistory } from '../../src/pubsub/history.js';
import { ResumeError } from '../../src/pubsub/offset.js';
import type { Publication } from '../../src/pubsub/broker.js';

const ERA = 1000;

function pub(i: number): Publication {
  return { topic: 't', payload: Buffer.from(`m${i}`), binary: false, compress: true, origin: 'w1', seq: i, prev: i - 1 };
}

function texts(entries: readonly Publication[]): string[] {
  return entries.map((p) => `${p.offset}:${p.payload.toString()}`);
}

function fill(h: TopicHistory, count: number): void {
  for (let i = 1; i <= count; i++) h.append(pub(i));
}

function refused(code: string, since: string) {
  return (e: unknown) => e instanceof ResumeError && e.code === code && e.topic === 't' && e.since === since;
}

describe('TopicHistory', () => {
  it('numbers publications 1, 2, 3... in its era, leaving the original unchanged', () => {
    const h = new TopicHistory(ERA, 10);
    assert.equal(h.lastOffset, '1000-0', 'before the first: a position to resume from');
    assert.equal(h.oldestOffset, null);
    const p = pub(1);
    const stored = h.append(p);
    assert.equal(stored.offset, '1000-1');
    assert.equal(p.offset, undefined);
    assert.equal(stored.payload, p.payload, 'the bytes are shared, not copied');
    assert.equal(h.append(pub(2)).offset, '1000-2');
    assert.equal(h.lastOffset, '1000-2');
    assert.equal(h.oldestOffset, '1000-1');
  });

  it('range(since) is every publication after since, in order; since null gives none and the newest offset', () => {
    const h = new TopicHistory(ERA, 10);
    fill(h, 5);
    assert.deepEqual(texts(h.range('t', '1000-2').entries), ['1000-3:m3', '1000-4:m4', '1000-5:m5']);
    assert.deepEqual(texts(h.range('t', '1000-0').entries), ['1000-1:m1', '1000-2:m2', '1000-3:m3', '1000-4:m4', '1000-5:m5']);
    assert.deepEqual(h.range('t', '1000-5'), { entries: [], last: '1000-5' });
    assert.deepEqual(h.range('t', null), { entries: [], last: '1000-5' });
    assert.deepEqual(new TopicHistory(ERA, 10).range('t', null), { entries: [], last: '1000-0' });
    const fresh = new TopicHistory(ERA, 10);
    fresh.append(pub(1));
    assert.deepEqual(texts(fresh.range('t', '1000-0').entries), ['1000-1:m1'], 'from before the first, all of it');
  });

  it('past maxLength the oldest are forgotten; a range reaching them is ERR_OFFSET_TRIMMED, the edge itself is not', () => {
    const h = new TopicHistory(ERA, 4);
    fill(h, 10); // keeps 7..10
    assert.equal(h.oldestOffset, '1000-7');
    assert.deepEqual(texts(h.range('t', '1000-6').entries), ['1000-7:m7', '1000-8:m8', '1000-9:m9', '1000-10:m10'], 'after 6 is all kept');
    assert.throws(() => h.range('t', '1000-5'), refused('ERR_OFFSET_TRIMMED', '1000-5'));
    assert.throws(() => h.range('t', '1000-0'), (e: unknown) => e instanceof ResumeError && e.oldest === '1000-7' && /1000-7/.test(e.message));
  });

  it('grows its ring as it fills, up to maxLength, keeping every entry in place', () => {
    const h = new TopicHistory(ERA, 3000);
    fill(h, 2500);
    const r = h.range('t', '1000-0').entries;
    assert.equal(r.length, 2500);
    r.forEach((p, i) => assert.equal(p.payload.toString(), `m${i + 1}`));
    fill(h, 1000); // 3500 appended in all: the oldest 500 gone
    assert.equal(h.oldestOffset, '1000-501');
    assert.equal(h.range('t', '1000-500').entries.length, 3000);
    assert.throws(() => h.range('t', '1000-499'), refused('ERR_OFFSET_TRIMMED', '1000-499'));
  });

  it('an offset of an earlier era is ERR_OFFSET_TRIMMED (the store restarted), even with nothing published since', () => {
    const h = new TopicHistory(ERA, 10);
    assert.throws(() => h.range('t', '999-3'), refused('ERR_OFFSET_TRIMMED', '999-3'));
    fill(h, 2);
    assert.throws(() => h.range('t', '999-3'), refused('ERR_OFFSET_TRIMMED', '999-3'));
  });

  it('an offset newer than the newest, of a later era, or malformed is ERR_BAD_OFFSET', () => {
    const h = new TopicHistory(ERA, 10);
    fill(h, 2);
    assert.throws(() => h.range('t', '1000-3'), refused('ERR_BAD_OFFSET', '1000-3'));
    assert.throws(() => h.range('t', '1001-0'), refused('ERR_BAD_OFFSET', '1001-0'));
    assert.throws(() => h.range('t', 'latest'), refused('ERR_BAD_OFFSET', 'latest'));
  });
});
