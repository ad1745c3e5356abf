/**
 * Offsets of durable topics: the `<era>-<n>` shape, parsed strictly, and
 * ordered by era then n as numbers (not as strings: '9' is older than '10').
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compareOffsets, formatOffset, parseOffset, ResumeError } from '../../src/pubsub/offset.js';
import { InvalidArgumentError, WebSocketError } from '../../src/core/errors.js';

describe('offsets', () => {
  it('format and parse are inverse; anything else is no offset', () => {
    assert.equal(formatOffset(1700000000000, 7), '1700000000000-7');
    assert.deepEqual(parseOffset('1700000000000-7'), { era: 1700000000000, n: 7 });
    assert.deepEqual(parseOffset('0-0'), { era: 0, n: 0 });
    for (const bad of ['', '1', '1-', '-1', '1-2-3', ' 1-2', '1-2 ', '1.5-2', 'a-1', '1-0x2', '99999999999999999-1', 12, null, undefined]) {
      assert.equal(parseOffset(bad), null, `${String(bad)} is no offset`);
    }
  });

  it('compares numerically, era first', () => {
    assert.ok(compareOffsets('5-9', '5-10') < 0, 'not as strings');
    assert.ok(compareOffsets('5-10', '5-9') > 0);
    assert.equal(compareOffsets('5-10', '5-10'), 0);
    assert.ok(compareOffsets('4-1000', '5-1') < 0, 'an older era is older whatever its n');
    assert.ok(compareOffsets('1700000000001-1', '1700000000000-99') > 0);
  });

  it('comparing something that is no offset throws ERR_BAD_OFFSET, naming it', () => {
    assert.throws(
      () => compareOffsets('5-1', 'five'),
      (e: unknown) => e instanceof InvalidArgumentError && e.code === 'ERR_BAD_OFFSET' && /"five"/.test(e.message),
    );
    assert.throws(() => compareOffsets('x', '5-1'), /"x"/);
  });

  it('ResumeError carries the topic, the offset asked for and the oldest kept', () => {
    const e = new ResumeError('ERR_OFFSET_TRIMMED', 'gone', 'orders', '5-1', '5-100');
    assert.ok(e instanceof WebSocketError);
    assert.equal(e.name, 'ResumeError');
    assert.deepEqual([e.code, e.topic, e.since, e.oldest], ['ERR_OFFSET_TRIMMED', 'orders', '5-1', '5-100']);
    assert.equal(new ResumeError('ERR_NOT_DURABLE', 'no', 't', null).oldest, null);
  });
});
