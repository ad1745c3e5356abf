/**
 * compactHead (src/transport/head-list.ts): a list read from the front by an
 * index is emptied once all of it is read, cut once its read part is at least
 * 1,024 entries and half of it, and left alone otherwise; the unread entries
 * keep their order.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compactHead } from '../../src/transport/head-list.js';

describe('compactHead', () => {
  it('empties a list read to its end', () => {
    const items = [1, 2, 3];
    assert.equal(compactHead(items, 3), 0);
    assert.deepEqual(items, []);
  });

  it('keeps a short read prefix, and cuts a long one that is at least half the list', () => {
    const short = Array.from({ length: 3000 }, (_, i) => i);
    assert.equal(compactHead(short, 1023), 1023, 'under 1,024 read: kept');
    assert.equal(short.length, 3000);
    assert.equal(compactHead(short, 1024), 1024, 'less than half read: kept');
    const long = Array.from({ length: 3000 }, (_, i) => i);
    assert.equal(compactHead(long, 1500), 0);
    assert.equal(long.length, 1500);
    assert.deepEqual([long[0], long[1499]], [1500, 2999], 'the unread entries, in order');
  });
});
