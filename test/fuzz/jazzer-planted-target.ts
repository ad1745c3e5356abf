/**
 * A Jazzer.js fuzz target with a planted bug, for test/fuzz/fuzz-short.test.ts:
 * it proves that the coverage-guided pass can fail (exit code, saved input,
 * replay). The bug sits behind a structured input: a complete close frame,
 * parsed by the real FrameParser in the client role, whose reason starts
 * with "BOOM". The test's seed is a close frame with another reason; blind
 * mutation would need four exact bytes at once (2^-32), while Jazzer.js
 * reports the failed string comparison to libFuzzer, whose mutator then
 * writes the expected operand where the actual one was.
 *
 * Input layout as in the frame-parser target: two setup bytes, then frames.
 *
 * fuzzHang and fuzzHangAsync (entry points chosen with --fuzz_entry_point)
 * hang on purpose: a unit timeout must end the run and save the input.
 */
import { FrameParser } from '../../src/core/frame-parser.js';
import { WebSocketError } from '../../src/core/errors.js';

function onClose(payload: Buffer): void {
  // Code (2 bytes), then the reason.
  if (payload.subarray(2, 6).toString('latin1') === 'BOOM') {
    // The planted bug: a TypeError, as a real bug would throw.
    (undefined as unknown as { code: number }).code.toFixed();
  }
}

export function fuzz(data: Buffer): void {
  const parser = new FrameParser(
    {
      onDataFrameStart: () => {},
      onDataPayload: () => {},
      onDataFrameEnd: () => {},
      onControlFrame: (opcode, payload) => {
        if (opcode === 8) onClose(payload);
      },
    },
    { role: 'client', maxFrameBytes: 1 << 20 },
  );
  try {
    parser.push(Buffer.from(data.subarray(2)));
  } catch (err) {
    if (!(err instanceof WebSocketError)) throw err;
  }
}

/** Entry point with a planted hang (a synchronous endless loop) on any input containing "HANG". */
export function fuzzHang(data: Buffer): void {
  if (data.includes('HANG')) {
    for (;;) {
      /* spin */
    }
  }
}

/** The same hang, after an await: the target runs without --sync, as the inflate target does. */
export async function fuzzHangAsync(data: Buffer): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  fuzzHang(data);
}
