/**
 * A fuzz target with planted bugs, for test/fuzz/engine.test.ts: it proves
 * that the engine finds a bug behind a structured input, and reports hangs
 * and crashes of its worker with the input that caused them.
 */
import { FrameParser } from '../../src/core/frame-parser.js';
import { WebSocketError } from '../../src/core/errors.js';
import type { FuzzTarget } from '../../fuzz/targets/common.js';
import { looseFrames, writeRawFrame } from '../../fuzz/targets/frame-parser.js';
import type { Rng } from '../../fuzz/rng.js';

function run(data: Buffer): string {
  if (data.includes('HANG')) {
    // A planted infinite loop: only the engine's watchdog can end it.
    for (;;) {
      /* spin */
    }
  }
  if (data.includes('BOOM')) {
    // A planted asynchronous exception: it kills the worker after run() returned.
    setImmediate(() => {
      throw new Error('planted asynchronous crash');
    });
    return 'boom';
  }
  const seen: string[] = [];
  const parser = new FrameParser(
    {
      onDataFrameStart: (op) => seen.push(`d${op}`),
      onDataPayload: () => {},
      onDataFrameEnd: () => {},
      onControlFrame: (op, payload) => {
        seen.push(`c${op}`);
        if (op === 8 && payload.length >= 2 && payload.readUInt16BE(0) === 1005) {
          // The planted bug: a TypeError, as a real bug would throw.
          (undefined as unknown as { code: number }).code.toFixed();
        }
      },
    },
    { role: 'client', maxFrameBytes: 1 << 20 },
  );
  try {
    parser.push(Buffer.from(data.subarray(2)));
  } catch (err) {
    if (!(err instanceof WebSocketError)) throw err;
    seen.push(err.code);
  }
  return seen.join(',');
}

export const target: FuzzTarget = {
  name: 'planted',
  maxLen: 1024,
  async: false,
  run,
  // The real frame mutator's building blocks: insert a close frame with a chosen code now and then.
  mutate(data: Buffer, rng: Rng): Buffer | null {
    if (data.length < 2) return null;
    const { frames, tail } = looseFrames(data.subarray(2));
    const code = rng.pick([1000, 1001, 1005, 3000, 4000]);
    frames.splice(rng.below(frames.length + 1), 0, { b0: 0x88, masked: false, mask: Buffer.alloc(4), enc: 0, declared: 2n, payload: Buffer.from([code >> 8, code & 0xff]) });
    return Buffer.concat([data.subarray(0, 2), ...frames.map(writeRawFrame), tail]);
  },
};
