import { encodeOwnedFrame } from '../core/frame-serializer.js';
import { Opcode } from '../core/opcodes.js';
import { InvalidArgumentError } from '../core/errors.js';
import type { SendStatus } from '../transport/types.js';

/** Upper bounds of the server's fan-out duration histograms, in seconds (50 µs to 2.5 s). */
export const FAN_OUT_BUCKETS: readonly number[] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** What fan-out needs of a session: the shared-frame send of Session. */
export interface FanOutTarget {
  sendShared(frame: Buffer[], frameBytes: number, payload: Buffer, binary: boolean, compress: boolean): SendStatus;
}

export interface FanOutOptions {
  /** Default: strings go as TEXT, bytes as BINARY. */
  binary?: boolean;
  /** false: no permessage-deflate for this message, even where it was negotiated. Default true. */
  compress?: boolean;
}

/** How a message sent to many sessions fared, per session. */
export interface FanOutResult {
  /** Sessions that accepted the message (sent, queued or under backpressure). */
  accepted: number;
  /** Sessions that did not: those already closing (no onError, as for send()) and those over maxQueuedBytes (each got an onError). */
  dropped: number;
  /** Sessions among the accepted that are above their high-water mark. */
  backpressure: number;
}

/**
 * Sends one message to many sessions. The payload is copied once (S2: the
 * caller may reuse its buffer as soon as this returns) and the frame is built
 * once: every session without a compressing codec writes the same bytes.
 * Server frames are unmasked (RFC 6455 section 5.1), so one frame fits all.
 * Sessions that compress, or that are in the middle of a streamed message,
 * send it through their own path (their order and their codec are theirs).
 */
export function fanOut(targets: Iterable<FanOutTarget>, data: string | Uint8Array, options: FanOutOptions = {}): FanOutResult {
  return fanOutOwned(targets, ownPayload(data), options.binary ?? typeof data !== 'string', options.compress ?? true);
}

/** The library's own copy of a message to fan out (S2: the caller may reuse its buffer at once). */
export function ownPayload(data: string | Uint8Array): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (data instanceof Uint8Array) return Buffer.from(data); // a copy of ours (S2)
  throw new InvalidArgumentError('ERR_BAD_PAYLOAD', 'broadcast/publish take a string or a Uint8Array (Buffer)');
}

/**
 * fanOut() of a payload the library already owns and never modifies (one
 * copy made by ownPayload(), or a publication that came from another node):
 * shared as it is, not copied again.
 */
export function fanOutOwned(targets: Iterable<FanOutTarget>, payload: Buffer, binary: boolean, compress: boolean): FanOutResult {
  let frame: Buffer[] | null = null;
  let frameBytes = 0;
  const result: FanOutResult = { accepted: 0, dropped: 0, backpressure: 0 };
  for (const t of targets) {
    if (!frame) {
      frame = encodeOwnedFrame(binary ? Opcode.Binary : Opcode.Text, payload, { mask: null });
      for (const c of frame) frameBytes += c.length;
    }
    const status = t.sendShared(frame, frameBytes, payload, binary, compress);
    if (status === 'dropped') result.dropped++;
    else {
      result.accepted++;
      if (status === 'backpressure') result.backpressure++;
    }
  }
  return result;
}
