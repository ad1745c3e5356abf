import type { CodecQueues } from './codec-queues.js';
import type { ConnectionHost } from './connection-types.js';
import { InvalidArgumentError, InvalidStateError } from './errors.js';
import { encodeFrame, encodeOwnedFrame } from './frame-serializer.js';
import { MAX_CONTROL_PAYLOAD, Opcode } from './opcodes.js';

const EMPTY = Buffer.alloc(0);
const STREAMING = 1;
const STREAM_BINARY = 2;
const STREAM_COMPRESSED = 4;
const CLOSE_SENT = 8;

/**
 * The sending half of a connection: encodes what the application sends into
 * frames and hands them to the host, in order, through the codec when one
 * compresses (CodecQueues keeps the order). It checks what may be sent in
 * which order (a streamed message and whole messages, RFC 6455 section 5.4);
 * the Connection checks the state. Guarded by test/core/frame-sender.test.ts
 * and test/core/connection.test.ts.
 */
export class FrameSender {
  private readonly host: ConnectionHost;
  private readonly codecs: CodecQueues | null;
  private readonly maskSource: (() => Uint8Array) | null;
  /** Bits of STREAMING, STREAM_BINARY, STREAM_COMPRESSED and CLOSE_SENT (one field: thousands of connections each have one). */
  private flags = 0;

  /** Where copied frames are built (ConnectionOptions.allocFrame); null: Buffer.allocUnsafe. */
  private readonly alloc: ((size: number) => Buffer) | null;

  constructor(host: ConnectionHost, codecs: CodecQueues | null, maskSource: (() => Uint8Array) | null, alloc: ((size: number) => Buffer) | null = null) {
    this.host = host;
    this.alloc = alloc;
    this.codecs = codecs;
    this.maskSource = maskSource;
  }

  /** True while a streamed outgoing message is open. */
  get sendingStream(): boolean {
    return (this.flags & STREAMING) !== 0;
  }

  /** A close frame was sent (RFC 6455 section 5.5.1: nothing after it). */
  get closeSent(): boolean {
    return (this.flags & CLOSE_SENT) !== 0;
  }

  get compressesOutput(): boolean {
    return this.codecs !== null && this.codecs.codec.compressesOutput;
  }

  /** A masking key for the next frame: fresh for a client (section 5.3), none for a server. */
  mask(): Uint8Array | null {
    return this.maskSource ? this.maskSource() : null;
  }

  private assertNoStream(): void {
    if (this.sendingStream) throw new InvalidStateError('send a message', 'streaming a message (end the stream first)');
  }

  /** One whole message; copied unless `owned` (invariant S2). */
  send(data: Uint8Array, binary: boolean, owned: boolean, compress: boolean): void {
    this.assertNoStream();
    const opcode = binary ? Opcode.Binary : Opcode.Text;
    if (compress && this.compressesOutput && this.codecs!.codec.shouldCompress(data, binary)) {
      this.codecs!.compress(opcode, data, owned, true, true);
      return;
    }
    const opts = { mask: this.mask(), alloc: this.alloc };
    this.emit(owned && Buffer.isBuffer(data) ? encodeOwnedFrame(opcode, data, opts) : encodeFrame(opcode, data, opts), true, opcode);
  }

  /** A whole message already encoded as one unmasked frame (server fan-out); the chunks are not modified. */
  sendEncoded(frame: Buffer[], binary: boolean): void {
    this.assertNoStream();
    this.emit(frame, true, binary ? Opcode.Binary : Opcode.Text);
  }

  /** One frame of a streamed message; `last` ends it. `compress` (first frame only) runs the message through the codec. */
  sendFragment(data: Uint8Array, binary: boolean, last: boolean, compress: boolean): void {
    let opcode: number;
    const first = !this.sendingStream;
    if (first) {
      opcode = binary ? Opcode.Binary : Opcode.Text;
      const compressed = compress && this.compressesOutput;
      this.flags = (this.flags & CLOSE_SENT) | (last ? 0 : STREAMING) | (binary ? STREAM_BINARY : 0) | (compressed ? STREAM_COMPRESSED : 0);
    } else {
      if (binary !== ((this.flags & STREAM_BINARY) !== 0)) throw new InvalidArgumentError('ERR_STREAM_TYPE', 'a fragment must have the type of the message it continues');
      opcode = Opcode.Continuation;
      if (last) this.flags &= ~STREAMING;
    }
    if ((this.flags & STREAM_COMPRESSED) !== 0) {
      this.codecs!.compress(opcode, data, false, first, last);
      return;
    }
    this.emit(encodeFrame(opcode, data, { fin: last, mask: this.mask(), alloc: this.alloc }), last, opcode);
  }

  /** A ping or pong: urgent, it may pass queued data frames but never enters one (S2). */
  control(opcode: number, data: Uint8Array = EMPTY): void {
    if (data.length > MAX_CONTROL_PAYLOAD) {
      throw new InvalidArgumentError('ERR_CONTROL_TOO_LONG', `${opcode === Opcode.Ping ? 'ping' : 'pong'} payload of ${data.length} bytes (max 125)`);
    }
    this.host.write(encodeFrame(opcode, data, { mask: this.mask() }), true, false, opcode);
  }

  /** The close frame, once: behind every queued message, including those still with the codec (S4). */
  close(payload: Buffer): void {
    if (this.closeSent) return;
    this.flags |= CLOSE_SENT;
    this.emit(encodeFrame(Opcode.Close, payload, { mask: this.mask() }), false, Opcode.Close);
  }

  /** Writes a data or close frame, behind anything the codec still holds. */
  private emit(chunks: Buffer[], endsMessage: boolean, opcode: number): void {
    if (this.codecs !== null && this.codecs.queueFrame(chunks, endsMessage, opcode)) return;
    this.host.write(chunks, false, endsMessage, opcode);
  }
}
