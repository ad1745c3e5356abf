/**
 * The Redis broker's message format (no Redis needed): a publication goes
 * through encode and decode unchanged, any bytes as payload; anything else
 * (what a raw client may PUBLISH to a channel) is refused with a reason,
 * never thrown and never half-taken.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Publication } from '../../src/pubsub/broker.js';
import { decodePublication, encodePublication, encodePublicationBytes, HEADER_BYTES } from '../../src/redis/redis-codec.js';

const p = (over: Partial<Publication> = {}): Publication => ({ topic: 't', payload: Buffer.from('héllo'), binary: false, compress: true, origin: 'node-ä', seq: 7, prev: 3, ...over });

describe('redis-codec', () => {
  it('round-trips a publication: flags, seq and prev up to 2^48-1, a UTF-8 origin, the topic from the channel', () => {
    for (const q of [p(), p({ binary: true, compress: false, payload: Buffer.from(Array.from({ length: 256 }, (_, i) => i)) }), p({ seq: 2 ** 48 - 1, prev: 2 ** 48 - 2 }), p({ payload: Buffer.alloc(0) })]) {
      const d = decodePublication('t', encodePublicationBytes(q));
      assert.ok(d.ok);
      assert.deepEqual({ ...d.publication, payload: Buffer.from(d.publication.payload) }, q);
    }
    const d = decodePublication('other', encodePublicationBytes(p(), true));
    assert.ok(d.ok);
    assert.equal(d.publication.topic, 'other');
    assert.equal(d.publication.redelivery, true);
  });

  it('encodes without copying the payload (header and payload apart)', () => {
    const q = p();
    const [head, payload] = encodePublication(q);
    assert.equal(payload, q.payload);
    assert.equal(head.length, HEADER_BYTES + Buffer.byteLength(q.origin));
  });

  it('refuses what it did not make, with a reason', () => {
    const good = encodePublicationBytes(p());
    const edit = (i: number, v: number) => {
      const b = Buffer.from(good);
      b[i] = v;
      return b;
    };
    const cases: Array<[Buffer, RegExp]> = [
      [Buffer.alloc(0), /shorter than a header/],
      [Buffer.from('not a publication at all'), /bad magic/],
      [edit(2, 2), /unknown version 2/],
      [edit(3, 0x08), /unknown flags/],
      [edit(9, 0), /prev 3 is not below seq 0|bad seq 0/],
      [edit(15, 9), /prev 9 is not below seq 7/],
      [edit(16, 0), /bad origin length 0/],
      [edit(16, 200), /bad origin length 200/],
      [Buffer.concat([good.subarray(0, HEADER_BYTES), Buffer.from([0xc3, 0x28]), Buffer.from('x')]).fill(2, 16, 17), /origin is not UTF-8/],
      [encodePublicationBytes(p({ payload: Buffer.from([0xed, 0xa0, 0x80]) })), /text payload is not UTF-8/],
    ];
    for (const [bytes, reason] of cases) {
      const d = decodePublication('t', bytes);
      assert.equal(d.ok, false, `refused: ${reason}`);
      if (!d.ok) assert.match(d.reason, reason);
    }
    // The same bytes as a binary message are fine: only text must be UTF-8.
    assert.ok(decodePublication('t', encodePublicationBytes(p({ binary: true, payload: Buffer.from([0xed, 0xa0, 0x80]) }))).ok);
  });

  it('a node id of more than 255 bytes cannot be encoded', () => {
    assert.throws(() => encodePublication(p({ origin: 'x'.repeat(256) })), RangeError);
  });
});
