import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Utf8Validator, isValidUtf8 } from '../../src/core/utf8-validator.js';

// ---------------------------------------------------------------------------
// References
// ---------------------------------------------------------------------------

const decoder = new TextDecoder('utf-8', { fatal: true });

/** Reference verdict for a complete string: valid iff a fatal TextDecoder accepts it. */
function decoderAccepts(bytes: Uint8Array): boolean {
  try {
    decoder.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

type Range = readonly [lo: number, hi: number];
const TAIL: Range = [0x80, 0xbf];

/** The grammar of RFC 3629 section 4, one alternative per row, written out independently of the validator. */
const SEQUENCES: readonly (readonly Range[])[] = [
  [[0x00, 0x7f]],
  [[0xc2, 0xdf], TAIL],
  [[0xe0, 0xe0], [0xa0, 0xbf], TAIL],
  [[0xe1, 0xec], TAIL, TAIL],
  [[0xed, 0xed], [0x80, 0x9f], TAIL],
  [[0xee, 0xef], TAIL, TAIL],
  [[0xf0, 0xf0], [0x90, 0xbf], TAIL, TAIL],
  [[0xf1, 0xf3], TAIL, TAIL, TAIL],
  [[0xf4, 0xf4], [0x80, 0x8f], TAIL, TAIL],
];

const inRange = (b: number, [lo, hi]: Range): boolean => b >= lo && b <= hi;

/**
 * Where a prefix stops being extendable to a valid UTF-8 string.
 * failAt: index of the first byte after which bytes[0..failAt] is the prefix of
 * no valid string, or -1 if every prefix is extendable; complete: the whole
 * input is valid and ends between characters. The alternatives are told apart
 * by their lead byte, so a greedy left-to-right match is exact.
 */
function referencePrefix(bytes: Uint8Array): { failAt: number; complete: boolean } {
  let i = 0;
  while (i < bytes.length) {
    const seq = SEQUENCES.find((s) => inRange(bytes[i], s[0]));
    if (seq === undefined) return { failAt: i, complete: false };
    for (let k = 1; k < seq.length; k++) {
      if (i + k >= bytes.length) return { failAt: -1, complete: false };
      if (!inRange(bytes[i + k], seq[k])) return { failAt: i + k, complete: false };
    }
    i += seq.length;
  }
  return { failAt: -1, complete: true };
}

/** Feeds bytes one at a time; returns the index of the first write that returned false, or -1. */
function validatorFailIndex(v: Utf8Validator, bytes: Uint8Array): number {
  v.reset();
  for (let i = 0; i < bytes.length; i++) {
    if (!v.write(bytes, i, i + 1)) return i;
  }
  return -1;
}

/** Whole-input verdict of the streaming validator: one write, then isComplete. */
function validatorAccepts(v: Utf8Validator, bytes: Uint8Array): boolean {
  v.reset();
  return v.write(bytes) && v.isComplete();
}

const hex = (bytes: Uint8Array | readonly number[]): string =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, '0').toUpperCase()).join(' ');

const KOSME_BYTES = 'CE BA E1 BD B9 CE BC CE B5';

const bytesOf = (s: string): Uint8Array => new Uint8Array(s.split(' ').map((h) => parseInt(h, 16)));

/**
 * Both ends of every byte class of the RFC 3629 table: ASCII, the three
 * slices of UTF8-tail that second bytes are cut at (80..8F, 90..9F, A0..BF),
 * C0..C1, each lead-byte group, F5..FF. A string built from these hits every
 * edge of every range in the grammar, from both sides.
 */
const GRID = [
  0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0,
  0xf1, 0xf3, 0xf4, 0xf5, 0xff,
];

// ---------------------------------------------------------------------------
// Exhaustive and grid agreement with TextDecoder
// ---------------------------------------------------------------------------

/** A set of fixed-length byte strings, enumerated into one flat buffer. */
interface StringSet {
  name: string;
  width: number;
  build(): Uint8Array;
}

function product(width: number, axes: readonly (readonly number[])[]): Uint8Array {
  const count = axes.reduce((n, axis) => n * axis.length, 1);
  const out = new Uint8Array(count * width);
  const index = new Array<number>(width).fill(0);
  for (let s = 0; s < count; s++) {
    for (let k = 0; k < width; k++) out[s * width + k] = axes[k][index[k]];
    for (let k = width - 1; k >= 0; k--) {
      if (++index[k] < axes[k].length) break;
      index[k] = 0;
    }
  }
  return out;
}

const ALL = Array.from({ length: 256 }, (_, b) => b);
const LEADS_C0_FF = ALL.filter((b) => b >= 0xc0);
const LEADS_F0_F4 = [0xf0, 0xf1, 0xf2, 0xf3, 0xf4];

const SETS: StringSet[] = [
  { name: 'every 1-byte string', width: 1, build: () => product(1, [ALL]) },
  { name: 'every 2-byte string', width: 2, build: () => product(2, [ALL, ALL]) },
  {
    // All 2^24 would take ~40 s through a throwing TextDecoder. Every lead
    // byte C0..FF with every second byte and the class-boundary grid as third
    // byte (393,216 strings) covers each range edge of the grammar in ~1.3 s.
    name: '3-byte strings: lead C0..FF x every second byte x grid third byte',
    width: 3,
    build: () => product(3, [LEADS_C0_FF, ALL, GRID]),
  },
  {
    name: '4-byte strings: lead F0..F4 x grid x grid x grid',
    width: 4,
    build: () => product(4, [LEADS_F0_F4, GRID, GRID, GRID]),
  },
];

for (const set of SETS) {
  describe(`agreement with TextDecoder: ${set.name}`, () => {
    let strings: Uint8Array = new Uint8Array(0);
    let expected: boolean[] = [];
    const each = (fn: (bytes: Uint8Array, valid: boolean) => void): void => {
      for (let s = 0; s * set.width < strings.length; s++) {
        fn(strings.subarray(s * set.width, (s + 1) * set.width), expected[s]);
      }
    };

    before(() => {
      strings = set.build();
      expected = [];
      for (let s = 0; s * set.width < strings.length; s++) {
        expected.push(decoderAccepts(strings.subarray(s * set.width, (s + 1) * set.width)));
      }
    });

    it('the set has both valid and invalid strings', () => {
      assert.ok(expected.includes(true) && expected.includes(false));
    });

    // Hundreds of thousands of strings: compare first and build the message
    // only on a mismatch, or formatting dominates the run time.
    it('Utf8Validator write + isComplete agrees', () => {
      const v = new Utf8Validator();
      each((bytes, valid) => {
        if (validatorAccepts(v, bytes) !== valid) assert.fail(`${hex(bytes)}: expected ${valid}`);
      });
    });

    it('isValidUtf8 agrees', () => {
      each((bytes, valid) => {
        if (isValidUtf8(bytes) !== valid) assert.fail(`${hex(bytes)}: expected ${valid}`);
      });
    });

    it('the RFC 3629 prefix reference agrees (checks the reference itself)', () => {
      each((bytes, valid) => {
        if (referencePrefix(bytes).complete !== valid) assert.fail(`${hex(bytes)}: expected ${valid}`);
      });
    });

    it('fed one byte at a time, fails at exactly the first unextendable byte', () => {
      const v = new Utf8Validator();
      each((bytes) => {
        const ref = referencePrefix(bytes);
        const failAt = validatorFailIndex(v, bytes);
        if (failAt !== ref.failAt) assert.fail(`${hex(bytes)}: failed at ${failAt}, expected ${ref.failAt}`);
        if (v.isComplete() !== ref.complete) assert.fail(`${hex(bytes)}: isComplete() should be ${ref.complete}`);
      });
    });
  });
}

// ---------------------------------------------------------------------------
// Fail fast
// ---------------------------------------------------------------------------

describe('fail fast (Autobahn 6.x)', () => {
  const cases: readonly [input: string, failAt: number, why: string][] = [
    ['F4 90 80 80', 1, 'above U+10FFFF'],
    ['ED A0 80', 1, 'UTF-16 surrogate U+D800'],
    ['ED BF BF', 1, 'UTF-16 surrogate U+DFFF'],
    ['CE BA E1 BD B9 CE BC CE B5 ED A0 80 65 64 69 74 65 64', 10, 'κόσμε then a surrogate'],
    ['C0 AF', 0, 'C0 is never a valid lead'],
    ['C1 BF', 0, 'C1 is never a valid lead'],
    ['80', 0, 'continuation where a lead is expected'],
    ['BF', 0, 'continuation where a lead is expected'],
    ['41 42 80', 2, 'continuation after ASCII'],
    ['CE BA 80', 2, 'continuation after a complete character'],
    ['E0 80 AF', 1, 'overlong 3-byte'],
    ['E0 9F BF', 1, 'overlong 3-byte'],
    ['F0 80 80 AF', 1, 'overlong 4-byte'],
    ['F0 8F BF BF', 1, 'overlong 4-byte'],
    ['F5 80 80 80', 0, 'F5 starts only code points above U+10FFFF'],
    ['F8 88 80 80 80', 0, 'old 5-byte form'],
    ['FC 84 80 80 80 80', 0, 'old 6-byte form'],
    ['FE', 0, 'FE is never valid'],
    ['FF', 0, 'FF is never valid'],
    ['CE 41', 1, 'ASCII where a continuation is expected'],
    ['E1 BD 41', 2, 'ASCII where the last continuation is expected'],
    ['E1 CE BA', 1, 'lead byte where a continuation is expected'],
    ['F0 9F 98 F0 9F 98 80', 3, 'truncated emoji followed by a full one'],
  ];

  for (const [input, failAt, why] of cases) {
    it(`${input} fails at ${failAt} (${why})`, () => {
      const bytes = bytesOf(input);
      // The reference must agree with the expectation written here, or the table above is wrong.
      assert.equal(referencePrefix(bytes).failAt, failAt, 'reference prefix check');
      const v = new Utf8Validator();
      assert.equal(validatorFailIndex(v, bytes), failAt);
      // The prefix up to (not including) the failing byte is still acceptable in one write.
      v.reset();
      assert.equal(v.write(bytes, 0, failAt), true);
      assert.equal(v.write(bytes, failAt, failAt + 1), false);
      // In one write the verdict is also false, and it sticks.
      v.reset();
      assert.equal(v.write(bytes), false);
      assert.equal(v.isComplete(), false);
      assert.equal(v.write(new Uint8Array([0x41])), false);
      assert.equal(v.write(new Uint8Array(0)), false);
      assert.equal(v.isComplete(), false);
    });
  }

  it('a truncated sequence is not a failure, only incomplete', () => {
    const v = new Utf8Validator();
    for (const input of ['CE', 'E1 BD', 'F0 9F 98', 'F4 8F BF', 'ED 9F']) {
      v.reset();
      assert.equal(v.write(bytesOf(input)), true, input);
      assert.equal(v.isComplete(), false, input);
    }
  });
});

// ---------------------------------------------------------------------------
// Streaming
// ---------------------------------------------------------------------------

describe('streaming', () => {
  const KOSME = KOSME_BYTES;
  const samples: readonly [name: string, bytes: Uint8Array][] = [
    ['κόσμε', bytesOf(KOSME)],
    ['mixed 1..4-byte characters', new TextEncoder().encode('a€ß𝄞z\u{10FFFF}\u{D7FF}\u{E000}\uFFFD\u0080\u07FF\u0800\u{10000}')],
    ['emoji', new TextEncoder().encode('😀')],
    ['ASCII runs around multi-byte characters', new TextEncoder().encode('0123456789abcdefκόσμε0123456789abcdef😀x')],
    ['κόσμε then a surrogate', bytesOf(`${KOSME} ED A0 80 65 64 69 74 65 64`)],
    ['truncated emoji at the end', bytesOf('41 42 F0 9F 98')],
    ['over-long emoji', bytesOf('F0 9F 98 80 80')],
    ['empty', new Uint8Array(0)],
  ];

  for (const [name, bytes] of samples) {
    const whole = validatorAccepts(new Utf8Validator(), bytes);

    it(`${name}: whole-buffer verdict matches TextDecoder`, () => {
      assert.equal(whole, decoderAccepts(bytes));
      assert.equal(isValidUtf8(bytes), whole);
    });

    it(`${name}: every two-way split gives the same verdict`, () => {
      const v = new Utf8Validator();
      for (let cut = 0; cut <= bytes.length; cut++) {
        v.reset();
        // Separate buffers, as TCP chunks would be, not just offsets.
        const first = v.write(bytes.slice(0, cut));
        const second = v.write(bytes.slice(cut));
        assert.equal(first && second && v.isComplete(), whole, `cut at ${cut}`);
      }
    });

    it(`${name}: every three-way split gives the same verdict`, () => {
      const v = new Utf8Validator();
      for (let a = 0; a <= bytes.length; a++) {
        for (let b = a; b <= bytes.length; b++) {
          v.reset();
          const ok = v.write(bytes, 0, a) && v.write(bytes, a, b) && v.write(bytes, b);
          assert.equal(ok && v.isComplete(), whole, `cuts at ${a}, ${b}`);
        }
      }
    });

    it(`${name}: one byte at a time gives the same verdict`, () => {
      const v = new Utf8Validator();
      let ok = true;
      for (let i = 0; i < bytes.length && ok; i++) ok = v.write(bytes.subarray(i, i + 1));
      assert.equal(ok && v.isComplete(), whole);
    });
  }

  it('the ASCII fast path never skips a non-ASCII byte, at any position and alignment', () => {
    const v = new Utf8Validator();
    for (let length = 1; length <= 40; length++) {
      for (let at = 0; at < length; at++) {
        for (let offset = 0; offset < 8; offset++) {
          const buffer = new Uint8Array(offset + length).fill(0x61);
          buffer[offset + at] = 0x80;
          v.reset();
          assert.equal(v.write(buffer, offset), false, `stray 80 at ${at} of ${length}, offset ${offset}`);
          v.reset();
          assert.equal(v.write(buffer, offset, offset + at), true);
          assert.equal(v.write(buffer, offset + at, offset + at + 1), false);
        }
      }
    }
  });

  it('the ASCII fast path hands over a sequence that starts at any position, including the last byte', () => {
    const v = new Utf8Validator();
    const euro = [0xe2, 0x82, 0xac];
    for (let length = 0; length <= 24; length++) {
      const buffer = new Uint8Array(length + euro.length).fill(0x61);
      buffer.set(euro, length);
      v.reset();
      assert.equal(v.write(buffer) && v.isComplete(), true, `€ at ${length}`);
      v.reset();
      assert.equal(v.write(buffer, 0, length + 1), true);
      assert.equal(v.isComplete(), false, `lead byte last in a write, at ${length}`);
      assert.equal(v.write(buffer, length + 1), true);
      assert.equal(v.isComplete(), true);
    }
  });
});

// ---------------------------------------------------------------------------
// Offsets, reset, initial state
// ---------------------------------------------------------------------------

describe('native path (runs of 32 bytes and more)', () => {
  /** Index of the first write that returns false when `data` is fed in the given pieces, or -1. */
  function firstFailingWrite(v: Utf8Validator, data: Buffer, cuts: number[]): number {
    let at = 0;
    const bounds = [...cuts, data.length];
    for (let k = 0; k < bounds.length; k++) {
      if (!v.write(data, at, bounds[k])) return k;
      at = bounds[k];
    }
    return -1;
  }

  /** The byte at which a byte-by-byte feed first fails (always the loop: 1-byte writes), or -1. */
  function failByte(data: Buffer): number {
    const v = new Utf8Validator();
    for (let i = 0; i < data.length; i++) if (!v.write(data, i, i + 1)) return i;
    return -1;
  }

  const pieces = ['a', 'é', '€', '😀', '\u07ff', '\uffff', '\u{10ffff}'];
  const bad = [[0xc0, 0x80], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xff], [0x80], [0xf0, 0x90, 0x41]];

  it('agrees with the byte loop on where input fails, for every split into two pieces of long mixed text', () => {
    let seed = 12345;
    const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
    for (let round = 0; round < 120; round++) {
      let text = '';
      const len = 8 + rnd(40);
      for (let i = 0; i < len; i++) text += pieces[rnd(pieces.length)];
      let data = Buffer.from(text, 'utf8');
      if (round % 2 === 1) {
        // Plant one invalid sequence at a random character boundary (or cut the text inside a character).
        const cut = rnd(data.length + 1);
        const b = Buffer.from(bad[rnd(bad.length)]);
        data = round % 6 === 5 ? data.subarray(0, Math.max(0, data.length - 1 - rnd(2))) : Buffer.concat([data.subarray(0, cut), b, data.subarray(cut)]);
      }
      const where = failByte(data);
      for (let split = 0; split <= data.length; split++) {
        const v = new Utf8Validator();
        const k = firstFailingWrite(v, data, [split]);
        // The write that fails is the one holding the first unextendable byte.
        const expected = where === -1 ? -1 : where < split ? 0 : 1;
        assert.equal(k, expected, `round ${round}, ${data.toString('hex')} split at ${split}: failed at write ${k}, byte loop fails at byte ${where}`);
        if (k === -1) assert.equal(v.isComplete(), isValidUtf8(data), `complete? round ${round} split ${split}`);
      }
    }
  });
});

describe('write(data, start, end)', () => {
  it('looks only at [start, end)', () => {
    const v = new Utf8Validator();
    const data = bytesOf('FF CE BA FF');
    assert.equal(v.write(data, 1, 3), true);
    assert.equal(v.isComplete(), true);

    v.reset();
    assert.equal(v.write(data, 1, 2), true);
    assert.equal(v.isComplete(), false);
    assert.equal(v.write(data, 2, 3), true);
    assert.equal(v.isComplete(), true);
  });

  it('end defaults to data.length', () => {
    const v = new Utf8Validator();
    assert.equal(v.write(bytesOf('FF CE BA'), 1), true);
    assert.equal(v.isComplete(), true);
    v.reset();
    assert.equal(v.write(bytesOf('41 CE BA FF'), 1), false);
  });

  it('an empty range changes nothing', () => {
    const v = new Utf8Validator();
    const data = bytesOf('FF 80');
    assert.equal(v.write(data, 1, 1), true);
    assert.equal(v.write(data, 2), true);
    assert.equal(v.isComplete(), true);
    assert.equal(v.write(bytesOf('E2 82')), true);
    assert.equal(v.write(data, 0, 0), true);
    assert.equal(v.isComplete(), false);
  });

  it('a range outside the buffer is a caller bug and throws RangeError', () => {
    const v = new Utf8Validator();
    const data = new Uint8Array(4);
    for (const [start, end] of [
      [-1, 2],
      [0, 5],
      [3, 2],
      [0.5, 2],
      [0, Number.NaN],
    ] as const) {
      assert.throws(() => v.write(data, start, end), RangeError, `[${start}, ${end})`);
    }
    // The bad call did not change the state.
    assert.equal(v.isComplete(), true);
    assert.equal(v.write(data), true);
  });
});

describe('reset and initial state', () => {
  it('a fresh validator is complete (the empty string is valid)', () => {
    assert.equal(new Utf8Validator().isComplete(), true);
  });

  it('reset() clears a failed state', () => {
    const v = new Utf8Validator();
    assert.equal(v.write(bytesOf('ED A0 80')), false);
    assert.equal(v.write(bytesOf('41')), false);
    v.reset();
    assert.equal(v.isComplete(), true);
    assert.equal(v.write(bytesOf(KOSME_BYTES)), true);
    assert.equal(v.isComplete(), true);
  });

  it('reset() clears a partial sequence', () => {
    const v = new Utf8Validator();
    assert.equal(v.write(bytesOf('E2 82')), true);
    assert.equal(v.isComplete(), false);
    v.reset();
    assert.equal(v.isComplete(), true);
    // The tail of the abandoned sequence is now a stray continuation byte.
    assert.equal(v.write(bytesOf('AC')), false);
  });

  it('reset() forgets a narrowed second-byte range', () => {
    const v = new Utf8Validator();
    // After F4 only 80..8F may follow; after reset and a new F0, only 90..BF.
    assert.equal(v.write(bytesOf('F4')), true);
    v.reset();
    assert.equal(v.write(bytesOf('F0 9F 98 80')), true);
    assert.equal(v.isComplete(), true);
  });

  it('isComplete() does not reset', () => {
    const v = new Utf8Validator();
    assert.equal(v.write(bytesOf('CE')), true);
    assert.equal(v.isComplete(), false);
    assert.equal(v.isComplete(), false);
    assert.equal(v.write(bytesOf('BA')), true);
    assert.equal(v.isComplete(), true);
  });

  it('instances are independent', () => {
    const a = new Utf8Validator();
    const b = new Utf8Validator();
    assert.equal(a.write(bytesOf('FF')), false);
    assert.equal(b.write(bytesOf('CE')), true);
    assert.equal(b.write(bytesOf('BA')), true);
    assert.equal(b.isComplete(), true);
    assert.equal(a.isComplete(), false);
  });
});
