import { InvalidArgumentError, InvalidStateError } from '../core/errors.js';
import type { SendStatus } from './types.js';

/** The bytes of a payload, as a Buffer view (no copy: the frame encoder copies, S2). */
export function toBytes(data: string | Uint8Array | ArrayBuffer | ArrayBufferView): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof Uint8Array) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  throw new InvalidArgumentError('ERR_BAD_PAYLOAD', 'send() takes a string, Buffer, TypedArray, DataView or ArrayBuffer');
}

/** What a MessageWriter writes through (the session). */
export interface FragmentSink {
  /** @internal */
  _writeFragment(chunk: string | Uint8Array, last: boolean, binary: boolean, compress: boolean): SendStatus;
}

/** A message being sent fragment by fragment (Session.stream()). */
export class MessageWriter {
  private ended = false;
  private readonly session: FragmentSink;
  private readonly binary: boolean;
  private readonly compress: boolean;
  constructor(session: FragmentSink, binary: boolean, compress: boolean) {
    this.session = session;
    this.binary = binary;
    this.compress = compress;
  }
  /** Sends one fragment (copied before returning). */
  write(chunk: string | Uint8Array): SendStatus {
    if (this.ended) throw new InvalidStateError('write to a message stream', 'ended');
    return this.session._writeFragment(chunk, false, this.binary, this.compress);
  }
  /** Sends the final fragment (possibly empty) and ends the message. */
  end(chunk: string | Uint8Array = Buffer.alloc(0)): SendStatus {
    if (this.ended) throw new InvalidStateError('end a message stream', 'ended');
    this.ended = true;
    return this.session._writeFragment(chunk, true, this.binary, this.compress);
  }
}

/**
 * Whole messages sent while a streamed message is open: they go out after it
 * ends, in order, copied when sent (S2). Counted in bufferedAmount, and as
 * unsent if the session ends first (S4). Guarded by
 * test/transport/message-writer.test.ts and test/integration/echo.test.ts.
 */
export class HeldSends {
  private readonly items: Array<{ bytes: Buffer; binary: boolean; compress: boolean }> = [];
  bytes = 0;

  get length(): number {
    return this.items.length;
  }

  /** Keeps a message; `owned` bytes are kept as they are, others copied. */
  push(bytes: Buffer, owned: boolean, binary: boolean, compress: boolean): void {
    this.items.push({ bytes: owned ? bytes : Buffer.from(bytes), binary, compress });
    this.bytes += bytes.length;
  }

  /** Hands the held messages to `send` in order while `canSend()` holds. */
  flush(canSend: () => boolean, send: (bytes: Buffer, binary: boolean, compress: boolean) => void): void {
    while (this.items.length > 0 && canSend()) {
      const d = this.items.shift()!;
      this.bytes -= d.bytes.length;
      send(d.bytes, d.binary, d.compress);
    }
  }

  /** Drops what is held; returns how many messages that was. */
  clear(): number {
    const n = this.items.length;
    this.items.length = 0;
    this.bytes = 0;
    return n;
  }
}
