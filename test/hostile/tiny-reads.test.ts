/**
 * Hostile input: a message delivered in the smallest possible pieces. A peer
 * that sends its frame payload one byte per TCP segment, paced so that the
 * server reads each segment on its own (a fast trickle), makes every read
 * one byte long. The message in progress is held until it is complete, and
 * it must cost about its size, whatever the read size: maxMessageBytes is a
 * memory bound only if the bookkeeping per piece does not multiply it
 * (invariant S3).
 *
 * Four connections each deliver 64 KiB of a binary frame one byte per read
 * (the attacker writes one byte per connection per turn of the event loop).
 * While the messages are incomplete, the memory they retain (heap plus
 * arrayBuffers, after a full GC) must stay under 16 times their size, a
 * bound that a per-piece Buffer (about 190 bytes each) would break many
 * times over. Then each frame is completed and its echo is exact.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { FrameScanner, HostileBench, MiB, rawUpgrade, waitUntil } from './harness.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const CONNECTIONS = 4;
const BYTES = 64 * 1024;

function retained(): number {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

describe('hostile: a message delivered one byte per read', () => {
  let b: HostileBench;
  before(async () => {
    b = await HostileBench.start();
  });
  after(async () => {
    await b.end();
  });

  it(`${CONNECTIONS} x ${BYTES / 1024} KiB one byte per read: retained memory stays within 16x the bytes received; echoes exact`, { timeout: 60_000 }, async (t) => {
    const mark = b.canary.mark();
    const conns: Array<{ socket: Socket; echo: Buffer | null }> = [];
    for (let k = 0; k < CONNECTIONS; k++) {
      const { socket } = await rawUpgrade(b.h.port, { path: `/hostile-tiny-${k}` });
      socket.setNoDelay(true);
      const conn = { socket, echo: null as Buffer | null };
      const scanner = new FrameScanner((opcode, payload) => {
        if (opcode === 0x2) conn.echo = Buffer.from(payload);
      });
      socket.on('data', (c: Buffer) => scanner.push(c));
      socket.resume();
      // A binary frame of BYTES + 1 bytes, zero mask; the last byte comes at the end.
      const header = Buffer.alloc(14);
      header[0] = 0x82;
      header[1] = 0x80 | 127;
      header.writeBigUInt64BE(BigInt(BYTES + 1), 2);
      socket.write(header);
      conns.push(conn);
    }
    const payloadByte = (i: number) => (i * 7 + 3) & 0xff;
    const before = retained();
    const started = performance.now();
    const one = Array.from({ length: 256 }, (_, v) => Buffer.from([v]));
    for (let i = 0; i < BYTES; i++) {
      for (const c of conns) c.socket.write(one[payloadByte(i)]);
      // One turn of the loop per byte: the server reads each connection's byte on its own.
      await new Promise((r) => setImmediate(r));
    }
    // Let the server read what is still in flight.
    await new Promise((r) => setTimeout(r, 200));
    const grown = retained() - before;
    const received = CONNECTIONS * BYTES;
    t.diagnostic(`${received} bytes in ${((performance.now() - started) / 1000).toFixed(1)} s; retained growth ${(grown / MiB).toFixed(2)} MiB = ${(grown / received).toFixed(1)} bytes per byte received`);
    assert.equal(b.h.hostileCloses().length, 0, 'nobody was closed');
    assert.ok(grown < 16 * received, `incomplete messages retain ${grown} bytes for ${received} bytes received`);
    // Completing the frames: every echo is exactly what was sent.
    for (const c of conns) c.socket.write(Buffer.from([0xee]));
    await waitUntil(() => conns.every((c) => c.echo !== null), 10_000, 'the echoes');
    const expected = Buffer.alloc(BYTES + 1);
    for (let i = 0; i < BYTES; i++) expected[i] = payloadByte(i);
    expected[BYTES] = 0xee;
    for (const c of conns) assert.ok(c.echo!.equals(expected), 'echo intact');
    for (const c of conns) c.socket.destroy();
    await b.assertHealthy(t, mark);
  });
});
