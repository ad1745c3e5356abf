/**
 * S3 for the inflate path: a peer that floods tiny compressed messages cannot
 * queue unbounded zlib work. The session stops reading its socket while 4096
 * received messages wait for the inflater and starts again at 1024, and every
 * message is still delivered, in order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { Session } from '../../src/transport/session.js';
import { Context } from '../../src/transport/context.js';
import { DeflateCodec } from '../../src/transport/permessage-deflate.js';
import { frame, Op, RSV1 } from '../helpers/frames.js';

/** A socket stand-in: the test pushes bytes in; writes are swallowed; pauses are observable. */
class FakeSocket extends Duplex {
  override _read(): void {}
  override _write(_chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    cb();
  }
}

test('a flood of tiny compressed messages pauses reading instead of queueing unbounded inflate work', async () => {
  const context = new Context();
  const socket = new FakeSocket();
  const params = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 };
  const codec = new DeflateCodec('server', params, {}, context.zlib);
  const N = 20_000;
  let received = 0;
  let outOfOrder = 0;
  let maxWaiting = 0;
  let sawPause = false;
  const session = new Session({
    role: 'server',
    socket,
    context,
    handler: {
      onMessage(_s, m) {
        if (m.text !== `m${received}`) outOfOrder++;
        received++;
      },
    },
    protocol: undefined,
    extensions: ['permessage-deflate'],
    limits: {},
    keepalive: null,
    closeTimeoutMs: 5000,
    head: Buffer.alloc(0),
    onHandlerError: (e) => {
      throw e;
    },
    codec,
  });
  session.start(Buffer.alloc(0));
  // Compressed "m<i>" messages as a client sends them (masked, RSV1), one big chunk: one read's worth of frames.
  const { deflateRawSync, constants } = await import('node:zlib');
  const frames: Buffer[] = [];
  for (let i = 0; i < N; i++) {
    const z = deflateRawSync(Buffer.from(`m${i}`), { finishFlush: constants.Z_SYNC_FLUSH });
    frames.push(frame({ opcode: Op.Text, rsv: RSV1, payload: z.subarray(0, z.length - 4), mask: [1, 2, 3, 4] }));
  }
  // Delivered in 64 KiB reads, as a TCP socket does; a paused stream keeps the rest unread (as the kernel would).
  const all = Buffer.concat(frames);
  const CHUNK = 64 * 1024;
  for (let p = 0; p < all.length; p += CHUNK) socket.push(all.subarray(p, p + CHUNK));
  const framesPerChunk = Math.ceil(CHUNK / frames[0].length);
  const deadline = Date.now() + 60_000;
  while (received < N && Date.now() < deadline) {
    const waiting = (session as unknown as { conn: { pendingInputMessages: number } }).conn.pendingInputMessages;
    maxWaiting = Math.max(maxWaiting, waiting);
    if (socket.isPaused()) sawPause = true;
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(received, N, 'every message delivered');
  assert.equal(outOfOrder, 0, 'in order');
  assert.ok(sawPause, 'reading paused while the inflate backlog was over its bound');
  assert.equal(socket.isPaused(), false, 'reading resumed once the backlog drained');
  // The bound: the pause threshold plus what one read can carry (the read in progress is always parsed).
  assert.ok(maxWaiting <= 4096 + framesPerChunk, `at most ${4096 + framesPerChunk} waiting, saw ${maxWaiting}`);
  console.log(`max messages waiting for the inflater: ${maxWaiting} (bound ${4096 + framesPerChunk})`);
  session.terminate();
  context.close();
});
