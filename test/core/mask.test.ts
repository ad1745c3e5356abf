import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { applyMask } from '../../src/core/mask.js';
import { testBytes, xorMask } from '../helpers/frames.js';

const bytes = testBytes;

const KEYS = [Buffer.from([0, 0, 0, 0]), Buffer.from([0xff, 0xff, 0xff, 0xff]), Buffer.from([0x37, 0xfa, 0x21, 0x3d]), Buffer.from([1, 2, 3, 4])];

/**
 * Masks `n` bytes in a view starting `align` bytes into a larger buffer (so the
 * aligned middle starts at each possible place; `wordBytes`, 4 or 8, only names
 * the alignment in messages), checks them against the formula, and checks that
 * the bytes on either side of the view are untouched.
 */
function checkAligned(key: Buffer, n: number, align: number, offset: number, seed: number, wordBytes: number): void {
  const data = bytes(n, seed);
  const backing = Buffer.alloc(n + 16, 0xaa);
  const work = backing.subarray(align + 1, align + 1 + n);
  data.copy(work);
  applyMask(work, key, offset);
  assert.deepEqual(work, xorMask(data, key, offset), `key ${key.toString('hex')} length ${n} alignment ${work.byteOffset & (wordBytes - 1)} offset ${offset}`);
  assert.equal(backing[align], 0xaa);
  assert.equal(backing[align + 1 + n], 0xaa);
}

describe('applyMask (RFC 6455 section 5.3)', () => {
  it('matches the section 5.3 formula (octet i XOR key[i MOD 4]) for every length 0..40 and every offset 0..7', () => {
    for (const key of KEYS) {
      for (let n = 0; n <= 40; n++) {
        for (let offset = 0; offset < 8; offset++) {
          const data = bytes(n, n * 31 + offset);
          const expected = xorMask(data, key, offset);
          const work = Buffer.from(data);
          applyMask(work, key, offset);
          assert.deepEqual(work, expected, `key ${key.toString('hex')} length ${n} offset ${offset}`);
        }
      }
    }
  });

  it('the 32-bit path (64 bytes and more) matches the formula for every memory alignment, mask phase, range and tail length', () => {
    for (const key of KEYS) {
      for (const n of [63, 64, 65, 66, 67, 68, 100, 127, 1024, 1031, 4099]) {
        for (let align = 0; align < 4; align++) {
          for (let offset = 0; offset < 4; offset++) {
            checkAligned(key, n, align, offset, n * 7 + align * 3 + offset, 4);
          }
        }
      }
      // A sub-range [start, end) of a longer buffer, on the word path.
      const data = bytes(300, 5);
      const work = Buffer.from(data);
      applyMask(work, key, 2, 13, 250);
      assert.deepEqual(work, Buffer.concat([data.subarray(0, 13), xorMask(data.subarray(13, 250), key, 2), data.subarray(250)]));
    }
  });

  it('the 64-bit path (1 KiB and more) matches the formula for every 8-byte alignment, mask phase and tail length', () => {
    for (const key of KEYS) {
      for (const n of [1023, 1024, 1025, 1031, 1032, 1088, 1144, 1151, 4096, 4099, 65543]) {
        for (let align = 0; align < 8; align++) {
          for (let offset = 0; offset < 4; offset++) {
            checkAligned(key, n, align, offset, n * 5 + align * 3 + offset, 8);
          }
        }
      }
    }
  });

  it('the RFC section 5.7 example: "Hello" masked with 37 fa 21 3d', () => {
    const data = Buffer.from('Hello');
    applyMask(data, Buffer.from([0x37, 0xfa, 0x21, 0x3d]));
    assert.deepEqual(data, Buffer.from([0x7f, 0x9f, 0x4d, 0x51, 0x58]));
  });

  it('masks only [start, end), leaving the rest of the buffer untouched', () => {
    const key = KEYS[2];
    for (let start = 0; start <= 9; start++) {
      for (let end = start; end <= 20; end++) {
        const data = bytes(20, start * 100 + end);
        const work = Buffer.from(data);
        applyMask(work, key, 0, start, end);
        const expected = Buffer.concat([data.subarray(0, start), xorMask(data.subarray(start, end), key), data.subarray(end)]);
        assert.deepEqual(work, expected, `range [${start}, ${end})`);
      }
    }
  });

  it('masking in pieces with running offsets equals masking the whole payload at once, for every split', () => {
    const key = KEYS[2];
    const data = bytes(37, 7);
    const whole = xorMask(data, key);
    for (let a = 0; a <= data.length; a++) {
      for (let b = a; b <= data.length; b++) {
        const work = Buffer.from(data);
        // Three pieces as a parser sees them: [0,a), [a,b), [b,n), each with its payload offset.
        applyMask(work.subarray(0, a), key, 0);
        applyMask(work.subarray(a, b), key, a);
        applyMask(work.subarray(b), key, b);
        assert.deepEqual(work, whole, `split at ${a}, ${b}`);
      }
    }
  });

  it('is its own inverse', () => {
    const data = bytes(1000, 3);
    const work = Buffer.from(data);
    applyMask(work, KEYS[3], 5);
    assert.notDeepEqual(work, data);
    applyMask(work, KEYS[3], 5);
    assert.deepEqual(work, data);
  });

  it('works on a plain Uint8Array view into a larger buffer', () => {
    const backing = bytes(64, 9);
    const view = new Uint8Array(backing.buffer, backing.byteOffset + 10, 20);
    const before = Buffer.from(backing);
    applyMask(view, KEYS[2], 1);
    assert.deepEqual(Buffer.from(backing.subarray(0, 10)), before.subarray(0, 10));
    assert.deepEqual(Buffer.from(backing.subarray(30)), before.subarray(30));
    assert.deepEqual(Buffer.from(view), xorMask(before.subarray(10, 30), KEYS[2], 1));
  });
});
