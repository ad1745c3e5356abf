/**
 * How a node judges the others from the Redis registry (no Redis needed):
 * down after two missed heartbeats of their own, reported once and only by
 * nodes that knew them alive; left without a report; nobody judged down in a
 * round where this node was itself held up; a node marked down by another is
 * down here too; a vanished entry is judged on what was last seen of it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PresenceWatch, formatEntry, parseEntry, parseRegistry, type NodeEntry } from '../../src/redis/redis-presence.js';

const entry = (id: string, lastSeen: number, state: NodeEntry['state'] = 'up', heartbeatMs = 100): NodeEntry => ({ id, pid: 1, lastSeen, heartbeatMs, state });
const reg = (...es: NodeEntry[]) => new Map(es.map((e) => [e.id, e]));

describe('redis-presence', () => {
  it('parses and formats registry entries; anything else is ignored', () => {
    const e = entry('n', 1234, 'left', 50);
    assert.deepEqual(parseEntry('n', formatEntry(e)), e);
    assert.equal(parseEntry('n', '1 2 3 sleeping'), null);
    assert.equal(parseEntry('n', 'garbage'), null);
    assert.deepEqual([...parseRegistry(['a', '1 10 100 up', 'b', 'junk', Buffer.from('c'), Buffer.from('2 20 100 down')]).keys()], ['a', 'c']);
  });

  it('a node that misses two heartbeats is down, reported once, and marked; one that left is forgotten', () => {
    const w = new PresenceWatch('me');
    assert.deepEqual(w.judge(1000, reg(entry('me', 1000), entry('a', 990), entry('b', 995)), true), { down: [], left: [], mark: [] });
    // 200 ms (two heartbeats) is not yet down; 201 is.
    assert.deepEqual(w.judge(1190, reg(entry('a', 990), entry('b', 995)), true).down, []);
    const j = w.judge(1191, reg(entry('a', 990), entry('b', 995, 'left')), true);
    assert.deepEqual(j.down.map(([id]) => id), ['a']);
    assert.match(j.down[0][1], /missed 2 heartbeats/);
    assert.deepEqual(j.left, ['b']);
    assert.deepEqual(j.mark.map((e) => e.id), ['a']);
    // Reported once; still marked (another node may not have done it).
    assert.deepEqual(w.judge(1300, reg(entry('a', 990)), true).down, []);
  });

  it('nobody is judged down while this node was held up, nor a node it never knew alive; a node marked down elsewhere is down here', () => {
    const w = new PresenceWatch('me');
    w.judge(1000, reg(entry('a', 1000), entry('b', 1000)), true);
    assert.deepEqual(w.judge(2000, reg(entry('a', 1000), entry('b', 1000)), false).down, []);
    assert.deepEqual(w.judge(2000, reg(entry('a', 1000, 'down'), entry('z', 0)), false).down.map(([id]) => id), ['a']);
    // b vanished from the registry (a Redis that lost its data): judged on what was last seen of it.
    assert.deepEqual(w.judge(2000, reg(), true).down.map(([id]) => id), ['b']);
    // A node seen alive again is known again.
    w.judge(3000, reg(entry('a', 3000)), true);
    assert.deepEqual(w.judge(3300, reg(entry('a', 3000)), true).down.map(([id]) => id), ['a']);
  });
});
