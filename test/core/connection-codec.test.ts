/**
 * The connection's extension pipeline (src/core/message-codec.ts) driven
 * sans-I/O with a fake codec whose jobs finish only when the test says so:
 * message order is kept in both directions whatever order the codec finishes
 * in, the close frame waits behind messages still with the codec (S4), the
 * 'closed' event waits behind messages still being restored, RSV1 is allowed
 * only where RFC 7692 section 6.1 puts it, and the inflate limit is applied.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Connection, type ConnectionEvent, type ConnectionHost } from '../../src/core/connection.js';
import { LimitExceededError, ProtocolError, type WebSocketError } from '../../src/core/errors.js';
import type { MessageCodec } from '../../src/core/message-codec.js';
import { closePayload, concat, decodeFrames, Op, peerFrame, RSV1, utf8 } from '../helpers/frames.js';

type Done = (e: WebSocketError | null, r: Buffer | null) => void;

/** Reverses bytes as its "compression"; every job waits for the test to release it. */
class FakeCodec implements MessageCodec {
  readonly name = 'fake';
  readonly rsv = 0x4;
  readonly compressesOutput = true;
  readonly compressJobs: Array<{ data: Buffer; done: Done }> = [];
  readonly decompressJobs: Array<{ parts: Buffer[]; max: number; done: Done }> = [];
  closed = false;
  /** How many times the restored bytes repeat (a "bomb" when > 1). */
  expand = 1;
  shouldCompress(data: Uint8Array): boolean {
    return data.length >= 4;
  }
  compress(data: Buffer, done: Done): void {
    this.compressJobs.push({ data, done });
  }
  failCompress(i: number): void {
    this.compressJobs[i].done(new ProtocolError('ERR_COMPRESS', 'compression failed', 1011), null);
  }
  decompress(parts: Buffer[], max: number, done: Done): void {
    this.decompressJobs.push({ parts, max, done });
  }
  close(): void {
    this.closed = true;
  }
  finishCompress(i: number): void {
    const j = this.compressJobs[i];
    j.done(null, Buffer.from(j.data).reverse());
  }
  finishDecompress(i: number): void {
    const j = this.decompressJobs[i];
    const one = Buffer.concat(j.parts).reverse();
    const whole = Buffer.concat(Array.from({ length: this.expand }, () => one));
    if (whole.length > j.max) j.done(new LimitExceededError('maxMessageBytes', 'too big'), null);
    else j.done(null, whole);
  }
}

class Host implements ConnectionHost {
  readonly events: ConnectionEvent[] = [];
  readonly writes: Array<{ bytes: Buffer; endsMessage: boolean }> = [];
  onEvent(e: ConnectionEvent): void {
    this.events.push(e);
  }
  write(chunks: Buffer[], _urgent: boolean, endsMessage: boolean): void {
    this.writes.push({ bytes: Buffer.concat(chunks), endsMessage });
  }
  frames() {
    return decodeFrames(Buffer.concat(this.writes.map((w) => w.bytes)));
  }
  summary(): string[] {
    return this.events.map((e) => (e.type === 'message' ? `message ${e.binary ? 'bin' : 'text'} ${e.data.toString('latin1')}` : e.type === 'closed' ? `closed ${e.code} ${e.wasClean}` : e.type));
  }
}

function setup(maxMessageBytes = 1 << 20) {
  const host = new Host();
  const codec = new FakeCodec();
  const conn = new Connection(host, { role: 'server', now: 0, codec, limits: { maxMessageBytes } });
  return { host, codec, conn };
}

const rev = (s: string) => Buffer.from(s, 'latin1').reverse();

describe('codec pipeline: incoming', () => {
  it('restores compressed messages and keeps order with uncompressed ones, whatever order the codec finishes in', () => {
    const { host, codec, conn } = setup();
    conn.receive(concat(
      peerFrame('server', { opcode: Op.Text, rsv: RSV1, payload: rev('first') }),
      peerFrame('server', { opcode: Op.Binary, payload: 'plain' }),
      peerFrame('server', { opcode: Op.Text, rsv: RSV1, payload: rev('third') }),
    ), 1);
    assert.deepEqual(host.summary(), [], 'nothing overtakes a message still with the codec');
    assert.equal(codec.decompressJobs.length, 2);
    codec.finishDecompress(1);
    assert.deepEqual(host.summary(), []);
    codec.finishDecompress(0);
    assert.deepEqual(host.summary(), ['message text first', 'message bin plain', 'message text third']);
  });

  it('a compressed message in several frames: RSV1 on the first only, all payloads reach the codec', () => {
    const { host, codec, conn } = setup();
    conn.receive(concat(
      peerFrame('server', { opcode: Op.Text, rsv: RSV1, fin: false, payload: rev('world') }),
      peerFrame('server', { opcode: Op.Ping, payload: 'p' }),
      peerFrame('server', { opcode: Op.Continuation, payload: rev('hello ') }),
    ), 1);
    assert.deepEqual(host.summary(), ['ping'], 'control frames between fragments are handled at once');
    codec.finishDecompress(0);
    assert.deepEqual(host.summary(), ['ping', 'message text hello world']);
  });

  it('RSV1 on a continuation frame fails with 1002 (RFC 7692 section 6.1)', () => {
    const { host, conn } = setup();
    conn.receive(concat(
      peerFrame('server', { opcode: Op.Text, rsv: RSV1, fin: false, payload: 'ab' }),
      peerFrame('server', { opcode: Op.Continuation, rsv: RSV1, payload: 'cd' }),
    ), 1);
    const closed = host.events.find((e) => e.type === 'closed');
    assert.ok(closed && closed.type === 'closed');
    assert.equal(closed.code, 1002);
    assert.equal(closed.error?.code, 'ERR_RSV1_ON_CONTINUATION');
  });

  it('RSV1 on a control frame fails with 1002 even with the codec', () => {
    const { host, conn } = setup();
    conn.receive(peerFrame('server', { opcode: Op.Ping, rsv: RSV1, payload: 'x' }), 1);
    const closed = host.events.find((e) => e.type === 'closed');
    assert.ok(closed && closed.type === 'closed');
    assert.equal(closed.code, 1002);
  });

  it('RSV2 stays forbidden with a codec that only uses RSV1', () => {
    const { host, conn } = setup();
    conn.receive(peerFrame('server', { opcode: Op.Text, rsv: 0b010, payload: 'x' }), 1);
    const closed = host.events.find((e) => e.type === 'closed');
    assert.ok(closed && closed.type === 'closed');
    assert.equal(closed.code, 1002);
  });

  it('the inflate limit is maxMessageBytes and failing it closes with 1009', () => {
    const { host, codec, conn } = setup(8);
    codec.expand = 3; // 4 bytes on the wire, 12 restored
    conn.receive(peerFrame('server', { opcode: Op.Binary, rsv: RSV1, payload: rev('1234') }), 1);
    assert.equal(codec.decompressJobs[0].max, 8);
    codec.finishDecompress(0);
    const closed = host.events.find((e) => e.type === 'closed');
    assert.ok(closed && closed.type === 'closed');
    assert.equal(closed.code, 1009);
    const frames = host.frames();
    assert.equal(frames.at(-1)?.opcode, Op.Close);
    assert.equal(frames.at(-1)?.payload.readUInt16BE(0), 1009);
  });

  it('invalid UTF-8 in a restored text message fails with 1007', () => {
    const { host, codec, conn } = setup();
    conn.receive(peerFrame('server', { opcode: Op.Text, rsv: RSV1, payload: Buffer.from([0xff, 0xfe, 0x41, 0x42]).reverse() }), 1);
    codec.finishDecompress(0);
    const closed = host.events.find((e) => e.type === 'closed');
    assert.ok(closed && closed.type === 'closed');
    assert.equal(closed.code, 1007);
  });

  it("the peer's close waits until messages before it are restored and delivered", () => {
    const { host, codec, conn } = setup();
    conn.receive(concat(
      peerFrame('server', { opcode: Op.Text, rsv: RSV1, payload: rev('before close') }),
      peerFrame('server', { opcode: Op.Close, payload: closePayload(1000, 'bye') }),
    ), 1);
    assert.deepEqual(host.summary(), []);
    // Acted on only once the message before it is delivered: no close reply yet, still open.
    assert.equal(host.frames().length, 0);
    assert.equal(conn.state, 'open');
    codec.finishDecompress(0);
    assert.deepEqual(host.summary(), ['message text before close', 'closed 1000 true']);
    assert.deepEqual(host.frames().map((f) => f.opcode), [Op.Close]);
  });

  it('a close behind compressed messages: replies to them go out ahead of our close frame, as without compression', () => {
    const host = new Host();
    const codec = new FakeCodec();
    const conn = new Connection(
      {
        onEvent(e) {
          host.onEvent(e);
          // A handler answering each message (an echo), uncompressed: it goes out at once.
          if (e.type === 'message') conn.send(Buffer.from('re: ' + e.data.toString('latin1')), true, false, false);
        },
        write: (chunks, urgent, endsMessage) => host.write(chunks, urgent, endsMessage),
      },
      { role: 'server', now: 0, codec },
    );
    conn.receive(concat(
      peerFrame('server', { opcode: Op.Text, rsv: RSV1, payload: rev('one') }),
      peerFrame('server', { opcode: Op.Text, rsv: RSV1, payload: rev('two') }),
      peerFrame('server', { opcode: Op.Close, payload: closePayload(1000) }),
    ), 1);
    codec.finishDecompress(1);
    assert.equal(conn.state, 'open', 'the close waits for the first message too');
    codec.finishDecompress(0);
    assert.deepEqual(host.summary(), ['message text one', 'message text two', 'closed 1000 true']);
    assert.deepEqual(host.frames().map((f) => [f.opcode, f.payload.toString('latin1')]), [
      [Op.Binary, 're: one'],
      [Op.Binary, 're: two'],
      [Op.Close, Buffer.from([0x03, 0xe8]).toString('latin1')],
    ]);
  });

  it('a close held behind the codec, then EOF: the messages are delivered and the close is clean', () => {
    const { host, codec, conn } = setup();
    conn.receive(concat(
      peerFrame('server', { opcode: Op.Text, rsv: RSV1, payload: rev('last words') }),
      peerFrame('server', { opcode: Op.Close, payload: closePayload(1000) }),
    ), 1);
    conn.transportClosed();
    codec.finishDecompress(0);
    assert.deepEqual(host.summary(), ['message text last words', 'closed 1000 true']);
  });

  describe('messages still inflating when the connection fails or the stream ends are delivered before closed', () => {
    it('the stream ends without a close frame: they are delivered, then closed 1006', () => {
      const { host, codec, conn } = setup();
      conn.receive(concat(
        peerFrame('server', { opcode: Op.Text, rsv: RSV1, payload: rev('one') }),
        peerFrame('server', { opcode: Op.Text, rsv: RSV1, payload: rev('two') }),
      ), 1);
      conn.transportClosed();
      assert.deepEqual(host.summary(), [], 'closed waits for the codec');
      codec.finishDecompress(0);
      codec.finishDecompress(1);
      assert.deepEqual(host.summary(), ['message text one', 'message text two', 'closed 1006 false']);
      assert.equal(codec.closed, true);
    });

    it('a bad frame behind them: our close frame goes at once, they are delivered, then closed 1002', () => {
      const { host, codec, conn } = setup();
      conn.receive(concat(
        peerFrame('server', { opcode: Op.Text, rsv: RSV1, payload: rev('before the fault') }),
        peerFrame('server', { opcode: 0x5, payload: Buffer.alloc(0) }),
      ), 1);
      assert.equal(conn.state, 'closed');
      assert.equal(host.frames().at(-1)?.opcode, Op.Close);
      assert.equal(host.frames().at(-1)?.payload.readUInt16BE(0), 1002);
      assert.deepEqual(host.summary(), []);
      codec.finishDecompress(0);
      assert.deepEqual(host.summary(), ['message text before the fault', 'closed 1002 false']);
    });

    it('a message that cannot be restored: the ones after it are dropped and closed carries its error', () => {
      const { host, codec, conn } = setup(8);
      codec.expand = 3;
      conn.receive(concat(
        peerFrame('server', { opcode: Op.Text, rsv: RSV1, payload: rev('ok') }),
        peerFrame('server', { opcode: Op.Text, rsv: RSV1, payload: rev('bomb') }),
        peerFrame('server', { opcode: Op.Text, rsv: RSV1, payload: rev('after') }),
      ), 1);
      conn.transportClosed();
      codec.finishDecompress(0);
      codec.finishDecompress(1);
      codec.finishDecompress(2);
      assert.deepEqual(host.summary(), ['message text okokok', 'closed 1006 false']);
    });

    it("'drop' (the application terminates): nothing more is delivered", () => {
      const { host, codec, conn } = setup();
      conn.receive(peerFrame('server', { opcode: Op.Text, rsv: RSV1, payload: rev('dropped') }), 1);
      conn.transportClosed(new Error('terminated'), 'drop');
      assert.deepEqual(host.summary(), ['closed 1006 false']);
      codec.finishDecompress(0);
      assert.deepEqual(host.summary(), ['closed 1006 false']);
    });
  });
});

describe('codec pipeline: outgoing', () => {
  it('compressed and uncompressed messages leave in send order with RSV1 only on compressed ones', () => {
    const { host, codec, conn } = setup();
    conn.send(utf8('compress me'), false);
    conn.send(utf8('ab'), false); // below the fake threshold: uncompressed
    conn.send(utf8('again, compressed'), true);
    assert.equal(host.writes.length, 0, 'nothing overtakes a message still with the codec');
    assert.equal(conn.pendingOutputMessages, 3);
    assert.ok(conn.pendingOutputBytes > 0);
    codec.finishCompress(1);
    assert.equal(host.writes.length, 0);
    codec.finishCompress(0);
    const f = host.frames();
    assert.deepEqual(f.map((x) => [x.opcode, x.rsv, x.payload.toString('latin1')]), [
      [Op.Text, RSV1, rev('compress me').toString('latin1')],
      [Op.Text, 0, 'ab'],
      [Op.Binary, RSV1, rev('again, compressed').toString('latin1')],
    ]);
    assert.equal(conn.pendingOutputBytes, 0);
  });

  it('send() copies before the codec runs (S2)', () => {
    const { host, codec, conn } = setup();
    const buf = utf8('original payload');
    conn.send(buf, true);
    buf.fill(0x21);
    codec.finishCompress(0);
    assert.equal(Buffer.from(host.frames()[0].payload).reverse().toString(), 'original payload');
  });

  it('pings are not held behind the codec; the close frame is (S4)', () => {
    const { host, codec, conn } = setup();
    conn.send(utf8('slow to compress'), false);
    conn.ping(utf8('p'));
    conn.close(1000, 'done', 5);
    assert.deepEqual(host.frames().map((x) => x.opcode), [Op.Ping]);
    codec.finishCompress(0);
    assert.deepEqual(host.frames().map((x) => x.opcode), [Op.Ping, Op.Text, Op.Close]);
  });

  it('an abort drops what the codec holds, counts it, and releases the codec', () => {
    const { host, codec, conn } = setup();
    conn.send(utf8('never sent 1'), false);
    conn.send(utf8('never sent 2'), false);
    conn.transportClosed();
    assert.equal(conn.droppedOutputMessages, 2);
    assert.equal(codec.closed, true);
    codec.finishCompress(0);
    assert.equal(host.writes.length, 0, 'a late codec result is ignored after an abort');
  });

  it('pendingOutputOverhead is the fixed charge of the messages the codec holds, part of pendingOutputBytes', () => {
    const { codec, conn } = setup();
    conn.send(utf8('compress me'), false);
    assert.equal(conn.pendingOutputBytes, 11 + conn.pendingOutputOverhead);
    assert.ok(conn.pendingOutputOverhead > 0);
    codec.finishCompress(0);
    assert.equal(conn.pendingOutputBytes, 0);
    assert.equal(conn.pendingOutputOverhead, 0);
  });

  it('a graceful end flushes what the codec holds before releasing it', () => {
    const { host, codec, conn } = setup();
    conn.send(utf8('flush me please'), false);
    conn.receive(peerFrame('server', { opcode: Op.Close, payload: closePayload(1000) }), 1);
    assert.equal(codec.closed, false);
    codec.finishCompress(0);
    assert.deepEqual(host.frames().map((x) => x.opcode), [Op.Text, Op.Close]);
    assert.equal(codec.closed, true);
  });

  it('a compression failure while open: what waited behind it is dropped and counted, the close frame with 1011 goes out at once, the codec is released', () => {
    const { host, codec, conn } = setup();
    conn.send(utf8('fails to compress'), false);
    conn.send(utf8('waits behind it'), false);
    codec.failCompress(0);
    assert.equal(conn.state, 'closed');
    assert.deepEqual(host.frames().map((x) => [x.opcode, x.payload.length >= 2 ? x.payload.readUInt16BE(0) : -1]), [[Op.Close, 1011]]);
    assert.equal(conn.droppedOutputMessages, 2);
    assert.equal(conn.pendingOutputBytes, 0);
    assert.equal(codec.closed, true);
    assert.deepEqual(host.summary(), ['closed 1011 false']);
    codec.finishCompress(1);
    assert.equal(host.frames().length, 1, 'a late result after the failure is ignored');
  });

  it('a compression failure after a graceful close: nothing stays held, the messages are counted, the codec is released', () => {
    const { host, codec, conn } = setup();
    conn.send(utf8('hello world'), false);
    conn.receive(peerFrame('server', { opcode: Op.Close, payload: closePayload(1000) }), 1);
    assert.equal(conn.state, 'closed');
    codec.failCompress(0);
    assert.equal(conn.pendingOutputBytes, 0);
    assert.equal(conn.pendingOutputMessages, 0);
    assert.equal(conn.droppedOutputMessages, 1);
    assert.equal(codec.closed, true);
    assert.deepEqual(host.summary(), ['closed 1000 true'], 'the close was reported once, as it happened');
  });
});
