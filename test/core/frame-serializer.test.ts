import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFrame, encodeOwnedFrame, headerSize } from '../../src/core/frame-serializer.js';
import { decodeFrames, frame, Op, RSV1, RSV2, RSV3, testBytes, xorMask } from '../helpers/frames.js';

const bytes = testBytes;

const MASK = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
/** Lengths at and around each boundary of the section 5.2 length encodings. */
const LENGTHS = [0, 1, 124, 125, 126, 127, 128, 1000, 65534, 65535, 65536, 65537, 70000];

describe('headerSize (RFC 6455 section 5.2)', () => {
  it('is 2 bytes up to 125, 4 up to 65535, 10 above, plus 4 for a masking key', () => {
    const expected = (n: number) => (n <= 125 ? 2 : n <= 65535 ? 4 : 10);
    for (const n of [...LENGTHS, 2 ** 32, 2 ** 53 - 1]) {
      assert.equal(headerSize(n, false), expected(n), `length ${n}`);
      assert.equal(headerSize(n, true), expected(n) + 4, `masked length ${n}`);
    }
  });
});

describe('encodeFrame', () => {
  it('writes exactly the bytes of a hand-built frame at every length boundary, masked and unmasked', () => {
    for (const n of LENGTHS) {
      const payload = bytes(n, n);
      for (const mask of [null, MASK]) {
        const got = Buffer.concat(encodeFrame(Op.Binary, payload, { mask }));
        assert.ok(got.equals(frame({ opcode: Op.Binary, payload, mask })), `length ${n}, ${mask ? 'masked' : 'unmasked'}`);
        // And the minimal length encoding was used (section 5.2: "the minimal number of bytes MUST be used").
        const [f] = decodeFrames(got);
        assert.equal(f.lengthEncoding, n <= 125 ? 7 : n <= 65535 ? 16 : 64);
        assert.equal(f.headerLength, headerSize(n, mask !== null));
      }
    }
  });

  it('sets FIN and the RSV bits as asked, for every opcode it is given', () => {
    for (const opcode of [Op.Continuation, Op.Text, Op.Binary, Op.Close, Op.Ping, Op.Pong]) {
      for (const fin of [true, false]) {
        for (const rsv of [0, RSV1, RSV2, RSV3, RSV1 | RSV2 | RSV3]) {
          const got = Buffer.concat(encodeFrame(opcode, Buffer.from('abc'), { fin, rsv, mask: null }));
          assert.ok(got.equals(frame({ opcode, fin, rsv, payload: 'abc' })), `opcode ${opcode} fin ${fin} rsv ${rsv}`);
        }
      }
    }
    // fin defaults to true, rsv to 0.
    assert.deepEqual(Buffer.concat(encodeFrame(Op.Text, Buffer.from('x'), { mask: null })), frame({ opcode: Op.Text, payload: 'x' }));
  });

  it('masks the payload so that unmasking gives it back, and leaves the caller\'s payload unmasked', () => {
    for (const n of LENGTHS) {
      const payload = bytes(n, n + 1);
      const copy = Buffer.from(payload);
      const [f] = decodeFrames(Buffer.concat(encodeFrame(Op.Text, payload, { mask: MASK })));
      assert.equal(f.masked, true);
      assert.deepEqual(f.mask, MASK);
      assert.ok(f.payload.equals(copy), `round trip, length ${n}`);
      assert.ok(payload.equals(copy), `the source must not be masked in place, length ${n}`);
      if (n > 0) {
        // The bytes on the wire really are masked (not the clear payload).
        const wire = Buffer.concat(encodeFrame(Op.Text, payload, { mask: MASK })).subarray(headerSize(n, true));
        assert.ok(wire.equals(xorMask(payload, MASK)));
      }
    }
  });

  it('copies the payload: mutating the source after encodeFrame changes nothing (invariant S2)', () => {
    for (const n of [5, 125, 65536, 65537, 200_000]) {
      for (const mask of [null, MASK]) {
        const source = bytes(n, 42);
        const original = Buffer.from(source);
        const chunks = encodeFrame(Op.Binary, source, { mask });
        source.fill(0xee);
        const [f] = decodeFrames(Buffer.concat(chunks));
        assert.ok(f.payload.equals(original), `length ${n}, ${mask ? 'masked' : 'unmasked'}`);
        for (const c of chunks) assert.notEqual(c.buffer, source.buffer, 'no chunk may share the caller\'s memory');
      }
    }
  });

  it('accepts a plain Uint8Array (not a Buffer) as payload', () => {
    const u8 = new Uint8Array([1, 2, 3, 250]);
    assert.deepEqual(Buffer.concat(encodeFrame(Op.Binary, u8, { mask: null })), frame({ opcode: Op.Binary, payload: u8 }));
  });

  it('takes the masking key by value: changing the key array afterwards changes nothing', () => {
    const key = Buffer.from(MASK);
    const chunks = encodeFrame(Op.Text, Buffer.from('hello'), { mask: key });
    key.fill(0);
    const [f] = decodeFrames(Buffer.concat(chunks));
    assert.deepEqual(f.mask, MASK);
    assert.equal(f.payload.toString(), 'hello');
  });
});

describe('encodeOwnedFrame', () => {
  it('writes the same bytes as encodeFrame at every length boundary', () => {
    for (const n of [...LENGTHS, 1024, 1025]) {
      for (const mask of [null, MASK]) {
        const expected = frame({ opcode: Op.Text, payload: bytes(n, 5), mask });
        const got = Buffer.concat(encodeOwnedFrame(Op.Text, bytes(n, 5), { mask }));
        assert.ok(got.equals(expected), `length ${n}, ${mask ? 'masked' : 'unmasked'}`);
      }
    }
  });

  it('uses the owned payload without a copy for a large server frame (the documented ownership transfer)', () => {
    const payload = bytes(5000, 1);
    const chunks = encodeOwnedFrame(Op.Binary, payload, { mask: null });
    assert.equal(chunks[chunks.length - 1], payload);
  });
});
