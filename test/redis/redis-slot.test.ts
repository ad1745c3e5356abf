/**
 * keySlot(): CRC16/XMODEM modulo 16384 of the key or of its hash tag, the
 * slot a Redis Cluster gives a key or a sharded channel. Checked here
 * without a server (the CRC's published check value, and the hash tag
 * rules); test/redis/redis-cluster.test.ts checks it against CLUSTER KEYSLOT.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { crc16, keySlot, SLOTS } from '../../src/redis/redis-slot.js';

describe('keySlot', () => {
  it('is CRC16/XMODEM (check value 0x31c3 for "123456789")', () => {
    assert.equal(crc16(Buffer.from('123456789')), 0x31c3);
    assert.equal(crc16(Buffer.alloc(0)), 0);
    assert.equal(keySlot('123456789'), 0x31c3 % SLOTS);
  });

  it('takes the hash tag: the first non-empty {...}, else the whole key', () => {
    assert.equal(keySlot('{user1000}.following'), keySlot('user1000'));
    assert.equal(keySlot('{user1000}.following'), keySlot('{user1000}.followers'));
    assert.equal(keySlot('a:{presence}:nodes'), keySlot('b:{presence}:counts:x'));
    assert.equal(keySlot('foo{bar}{zap}'), keySlot('bar'));
    assert.equal(keySlot('foo{{bar}}zap'), keySlot('{bar'));
    // An empty tag is no tag: the whole key.
    assert.equal(keySlot('foo{}{bar}'), crc16(Buffer.from('foo{}{bar}')) % SLOTS);
    assert.equal(keySlot('{}'), crc16(Buffer.from('{}')) % SLOTS);
    assert.equal(keySlot('no}tag{'), crc16(Buffer.from('no}tag{')) % SLOTS);
  });

  it('hashes the UTF-8 bytes, and takes Buffers', () => {
    assert.equal(keySlot('né✓'), keySlot(Buffer.from('né✓', 'utf8')));
    for (const k of ['a', 'sockeye:news', 'x'.repeat(1000)]) assert.ok(keySlot(k) >= 0 && keySlot(k) < SLOTS);
  });
});
