/**
 * message-writer (src/transport/message-writer.ts): toBytes() views every
 * payload type as a Buffer over the same memory (the frame encoder copies,
 * S2) and refuses anything else; MessageWriter writes fragments through its
 * sink and refuses to go on after end(); HeldSends keeps whole messages sent
 * while a streamed one is open, copying what the caller still owns (S2),
 * counts their bytes, hands them on in order while the session can send, and
 * says how many it dropped (S4).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError, InvalidStateError } from '../../src/core/errors.js';
import { HeldSends, MessageWriter, toBytes, type FragmentSink } from '../../src/transport/message-writer.js';
import type { SendStatus } from '../../src/transport/types.js';

describe('toBytes', () => {
  it('encodes a string as UTF-8', () => {
    const b = toBytes('héllo €');
    assert.ok(Buffer.isBuffer(b));
    assert.deepEqual(b, Buffer.from('héllo €', 'utf8'));
    assert.equal(b.length, 10);
    assert.equal(toBytes('').length, 0);
  });

  it('returns a Buffer as it is', () => {
    const buf = Buffer.from([1, 2, 3]);
    assert.equal(toBytes(buf), buf);
  });

  it('views a Uint8Array with an offset over the same memory', () => {
    const ab = new ArrayBuffer(16);
    const u = new Uint8Array(ab, 4, 8);
    u.set([1, 2, 3, 4, 5, 6, 7, 8]);
    const b = toBytes(u);
    assert.ok(Buffer.isBuffer(b));
    assert.equal(b.buffer, ab, 'no copy');
    assert.equal(b.byteOffset, 4);
    assert.equal(b.length, 8);
    assert.deepEqual([...b], [1, 2, 3, 4, 5, 6, 7, 8], 'only the view, not the whole ArrayBuffer');
    u[0] = 99;
    assert.equal(b[0], 99, 'shares memory with the view');
  });

  it('views an ArrayBuffer whole, without a copy', () => {
    const ab = new ArrayBuffer(6);
    new Uint8Array(ab).set([10, 20, 30, 40, 50, 60]);
    const b = toBytes(ab);
    assert.equal(b.buffer, ab);
    assert.equal(b.length, 6);
    assert.deepEqual([...b], [10, 20, 30, 40, 50, 60]);
    new Uint8Array(ab)[5] = 0;
    assert.equal(b[5], 0, 'shares memory');
  });

  it('views a DataView, and any other TypedArray, by its bytes', () => {
    const ab = new ArrayBuffer(12);
    const dv = new DataView(ab, 2, 6);
    dv.setUint8(0, 0xaa);
    dv.setUint8(5, 0xbb);
    const b = toBytes(dv);
    assert.equal(b.buffer, ab);
    assert.equal(b.byteOffset, 2);
    assert.equal(b.length, 6);
    assert.deepEqual([b[0], b[5]], [0xaa, 0xbb]);
    dv.setUint8(1, 0xcc);
    assert.equal(b[1], 0xcc, 'shares memory');

    const u16 = new Uint16Array(ab, 4, 3);
    const b16 = toBytes(u16);
    assert.equal(b16.length, 6, 'bytes, not elements');
    assert.equal(b16.byteOffset, 4);
    assert.equal(b16.buffer, ab);
  });

  it('refuses any other type with InvalidArgumentError ERR_BAD_PAYLOAD', () => {
    for (const bad of [42, null, undefined, {}, [1, 2, 3], true]) {
      assert.throws(
        () => toBytes(bad as unknown as string),
        (e: unknown) => e instanceof InvalidArgumentError && e.code === 'ERR_BAD_PAYLOAD',
        `${JSON.stringify(bad)}`,
      );
    }
  });
});

interface Call {
  chunk: string | Uint8Array;
  last: boolean;
  binary: boolean;
  compress: boolean;
}

class RecordingSink implements FragmentSink {
  readonly calls: Call[] = [];
  status: SendStatus = 'sent';
  _writeFragment(chunk: string | Uint8Array, last: boolean, binary: boolean, compress: boolean): SendStatus {
    this.calls.push({ chunk, last, binary, compress });
    return this.status;
  }
}

describe('MessageWriter', () => {
  it('writes fragments with last=false, ends with last=true, passing binary and compress and returning the status', () => {
    const sink = new RecordingSink();
    const w = new MessageWriter(sink, true, false);
    const first = Buffer.from('ab');
    assert.equal(w.write(first), 'sent');
    sink.status = 'backpressure';
    assert.equal(w.write('cd'), 'backpressure');
    sink.status = 'queued';
    assert.equal(w.end('ef'), 'queued');
    assert.deepEqual(sink.calls, [
      { chunk: first, last: false, binary: true, compress: false },
      { chunk: 'cd', last: false, binary: true, compress: false },
      { chunk: 'ef', last: true, binary: true, compress: false },
    ]);
    assert.equal(sink.calls[0].chunk, first, 'the chunk is handed on as given (the sink copies)');
  });

  it('ends with an empty chunk by default', () => {
    const sink = new RecordingSink();
    const w = new MessageWriter(sink, false, true);
    w.end();
    assert.equal(sink.calls.length, 1);
    const { chunk, last, binary, compress } = sink.calls[0];
    assert.equal(chunk.length, 0);
    assert.deepEqual([last, binary, compress], [true, false, true]);
  });

  it('throws InvalidStateError on write() or end() after end(), and writes nothing more', () => {
    const sink = new RecordingSink();
    const w = new MessageWriter(sink, true, false);
    w.write('a');
    w.end();
    const isEnded = (e: unknown) => e instanceof InvalidStateError && e.code === 'ERR_INVALID_STATE' && e.state === 'ended';
    assert.throws(() => w.write('b'), isEnded);
    assert.throws(() => w.end('c'), isEnded);
    assert.throws(() => w.end(), isEnded);
    assert.equal(sink.calls.length, 2);
  });
});

describe('HeldSends', () => {
  it('copies bytes the caller still owns: changing its buffer after push() changes nothing (S2)', () => {
    const held = new HeldSends();
    const mine = Buffer.from('original');
    held.push(mine, false, false, false);
    mine.fill(0x78);
    const sent: Buffer[] = [];
    held.flush(() => true, (b) => sent.push(b));
    assert.equal(sent.length, 1);
    assert.notEqual(sent[0], mine);
    assert.equal(sent[0].toString(), 'original');
  });

  it('keeps owned bytes as they are (no copy)', () => {
    const held = new HeldSends();
    const owned = Buffer.from('owned');
    held.push(owned, true, true, true);
    const sent: Array<[Buffer, boolean, boolean]> = [];
    held.flush(() => true, (b, binary, compress) => sent.push([b, binary, compress]));
    assert.equal(sent.length, 1);
    assert.equal(sent[0][0], owned, 'the same Buffer');
    assert.deepEqual(sent[0].slice(1), [true, true]);
  });

  it('counts messages and bytes, and hands them on in order while canSend() holds', () => {
    const held = new HeldSends();
    assert.deepEqual([held.length, held.bytes], [0, 0]);
    held.push(Buffer.alloc(3, 1), false, true, false);
    held.push(Buffer.alloc(5, 2), true, false, true);
    held.push(Buffer.alloc(7, 3), false, true, true);
    held.push(Buffer.alloc(0), false, false, false);
    assert.deepEqual([held.length, held.bytes], [4, 15]);

    const sent: Array<[number, number, boolean, boolean]> = [];
    const record = (b: Buffer, binary: boolean, compress: boolean) => sent.push([b[0] ?? -1, b.length, binary, compress]);
    let budget = 2;
    let asked = 0;
    const canSend = () => {
      asked++;
      return budget-- > 0;
    };
    held.flush(canSend, record);
    assert.deepEqual(sent, [
      [1, 3, true, false],
      [2, 5, false, true],
    ]);
    assert.equal(asked, 3, 'asked before each message, stopped at the first false');
    assert.deepEqual([held.length, held.bytes], [2, 7], 'what was sent no longer counts');

    held.flush(() => false, record);
    assert.equal(sent.length, 2, 'nothing while canSend() is false');

    held.flush(() => true, record);
    assert.deepEqual(sent.slice(2), [
      [3, 7, true, true],
      [-1, 0, false, false],
    ]);
    assert.deepEqual([held.length, held.bytes], [0, 0]);
  });

  it('flushes messages pushed meanwhile after those held before them', () => {
    const held = new HeldSends();
    held.push(Buffer.from('a'), true, false, false);
    const order: string[] = [];
    held.flush(
      () => true,
      (b) => {
        order.push(b.toString());
        if (b.toString() === 'a') held.push(Buffer.from('b'), true, false, false);
      },
    );
    assert.deepEqual(order, ['a', 'b']);
  });

  it('clear() drops what is held, returns how many messages that was, and zeroes the bytes', () => {
    const held = new HeldSends();
    held.push(Buffer.alloc(10), false, true, false);
    held.push(Buffer.alloc(20), true, true, false);
    held.push(Buffer.alloc(30), false, false, false);
    assert.equal(held.clear(), 3);
    assert.deepEqual([held.length, held.bytes], [0, 0]);
    let sent = 0;
    held.flush(() => true, () => sent++);
    assert.equal(sent, 0, 'nothing left to send');
    assert.equal(held.clear(), 0);
  });
});
