import { CloseCode } from './close-codes.js';
import { InvalidUtf8Error, ProtocolError, type WebSocketError } from './errors.js';
import { encodeOwnedFrame } from './frame-serializer.js';
import type { ConnectionHost } from './connection-types.js';
import type { MessageCodec } from './message-codec.js';
import { isValidUtf8 } from './utf8-validator.js';

/** Where the queues hand their results (the Connection), always in the order the messages came. */
export interface CodecQueuesHost {
  /** A received message, restored by the codec or queued behind one that was. */
  onInflated(binary: boolean, data: Buffer): void;
  /** Every received message handed to the codec has been delivered. */
  onInputDrained(): void;
  /** The codec failed: on a received message (`input`) or on one being sent. */
  onCodecError(error: WebSocketError, input: boolean): void;
  /** A codec job completed (whatever its outcome): the host delivers what it produced. */
  afterCodec(): void;
}

/** A received message waiting for the codec, or behind one that is. */
interface InboundEntry {
  binary: boolean;
  data: Buffer | null;
}

/** A frame waiting for the codec, or behind one that is. */
interface OutboundEntry {
  chunks: Buffer[] | null;
  endsMessage: boolean;
  /** What it counts for in pendingOutputBytes: its payload, plus CODEC_JOB_OVERHEAD for a codec job. */
  bytes: number;
  overhead: number;
  opcode: number;
}

/** Bytes a pending codec job counts for in bufferedAmount beyond its payload. */
const CODEC_JOB_OVERHEAD = 1024;

/**
 * The messages a negotiated codec (permessage-deflate) holds, both ways. The
 * codec answers later (zlib works off the event loop), and nothing may
 * overtake a message it still holds: received messages are delivered, and
 * frames written, in their order. A completion is an input to the core like a
 * read: the Connection delivers what it produced afterwards. Completions that
 * arrive after the connection dropped its queues are ignored. Exists only with
 * a codec; guarded by test/core/codec-queues.test.ts and
 * test/core/connection-codec.test.ts.
 */
export class CodecQueues {
  readonly codec: MessageCodec;
  private readonly host: CodecQueuesHost;
  /** Where released frames go (the connection's host), and their masking keys (a client's; null for a server). */
  private readonly wire: ConnectionHost;
  private readonly maskSource: (() => Uint8Array) | null;
  private readonly input: InboundEntry[] = [];
  private readonly output: OutboundEntry[] = [];
  private outputBytes = 0;
  /** The part of outputBytes that is CODEC_JOB_OVERHEAD charges, not payload. */
  private outputOverhead = 0;
  /** Bumped when a queue is dropped: a completion from before belongs to nothing. */
  private inputEpoch = 0;
  private outputEpoch = 0;
  /** Outgoing messages dropped unsent with the output queue. */
  droppedOutputMessages = 0;
  private released = false;
  private codecClosed = false;

  constructor(codec: MessageCodec, host: CodecQueuesHost, wire: ConnectionHost, maskSource: (() => Uint8Array) | null) {
    this.codec = codec;
    this.host = host;
    this.wire = wire;
    this.maskSource = maskSource;
  }

  get pendingInputMessages(): number {
    return this.input.length;
  }

  get pendingOutputMessages(): number {
    let n = 0;
    for (const e of this.output) if (e.endsMessage) n++;
    return n;
  }

  get pendingOutputBytes(): number {
    return this.outputBytes;
  }

  /** The part of pendingOutputBytes that is the fixed charge of codec jobs rather than payload. */
  get pendingOutputOverhead(): number {
    return this.outputOverhead;
  }

  /** A received message that needs no codec: false when nothing is ahead of it (deliver it now), true when it was queued. */
  queueMessage(binary: boolean, data: Buffer): boolean {
    if (this.input.length === 0) return false;
    this.input.push({ binary, data });
    return true;
  }

  /** Hands a whole compressed message to the codec; it is delivered in its turn, under maxBytes. */
  decompress(binary: boolean, parts: Buffer[], maxBytes: number): void {
    const entry: InboundEntry = { binary, data: null };
    this.input.push(entry);
    const epoch = this.inputEpoch;
    this.codec.decompress(parts, maxBytes, (err, result) => {
      if (epoch !== this.inputEpoch) return;
      if (err || !result) {
        this.host.onCodecError(err ?? new ProtocolError('ERR_DECOMPRESS', 'decompression failed', CloseCode.InvalidPayload), true);
      } else if (!binary && !isValidUtf8(result)) {
        // RFC 6455 section 8.1 applies to the restored text.
        this.host.onCodecError(new InvalidUtf8Error('invalid UTF-8 in a compressed text message'), true);
      } else {
        entry.data = result;
        this.drainInput();
      }
      this.host.afterCodec();
    });
  }

  private drainInput(): void {
    const queue = this.input;
    while (queue.length > 0 && queue[0].data !== null) {
      const e = queue.shift()!;
      this.host.onInflated(e.binary, e.data!);
    }
    if (queue.length === 0) this.host.onInputDrained();
  }

  /** Forgets the received messages not delivered yet (the connection failed or was aborted). */
  dropInput(): void {
    this.input.length = 0;
    this.inputEpoch++;
  }

  /**
   * Queues one frame whose payload the codec transforms first. A message sent
   * in several frames is one compressed stream (RFC 7692 section 7.2.1): RSV1
   * on its first frame only. `data` is copied unless `owned` (invariant S2:
   * the codec works later, after the caller may have reused its buffer).
   */
  compress(opcode: number, data: Uint8Array, owned: boolean, first: boolean, last: boolean): void {
    const codec = this.codec;
    const copy = owned && Buffer.isBuffer(data) ? data : Buffer.from(data);
    // A codec job costs more than its payload (zlib state, callbacks): count a fixed overhead so that
    // bufferedAmount shows backpressure before thousands of tiny jobs pile up.
    const entry: OutboundEntry = { chunks: null, endsMessage: last, bytes: copy.length + CODEC_JOB_OVERHEAD, overhead: CODEC_JOB_OVERHEAD, opcode };
    this.output.push(entry);
    this.outputBytes += entry.bytes;
    this.outputOverhead += CODEC_JOB_OVERHEAD;
    const epoch = this.outputEpoch;
    codec.compress(
      copy,
      (err, result) => {
        if (epoch !== this.outputEpoch) return;
        if (err || !result) {
          this.host.onCodecError(err ?? new ProtocolError('ERR_COMPRESS', 'compression failed', CloseCode.InternalError), false);
        } else {
          entry.chunks = encodeOwnedFrame(opcode, result, { mask: this.maskSource ? this.maskSource() : null, fin: last, rsv: first ? codec.rsv : 0 });
          this.drainOutput();
        }
        this.host.afterCodec();
      },
      last,
    );
  }

  /** A frame that needs no codec: false when nothing is ahead of it (write it now), true when it was queued. */
  queueFrame(chunks: Buffer[], endsMessage: boolean, opcode: number): boolean {
    if (this.output.length === 0) return false;
    let bytes = 0;
    for (const c of chunks) bytes += c.length;
    this.output.push({ chunks, endsMessage, bytes, overhead: 0, opcode });
    this.outputBytes += bytes;
    return true;
  }

  private drainOutput(): void {
    const queue = this.output;
    while (queue.length > 0 && queue[0].chunks !== null) {
      const e = queue.shift()!;
      this.outputBytes -= e.bytes;
      this.outputOverhead -= e.overhead;
      this.wire.write(e.chunks!, false, e.endsMessage, e.opcode);
    }
    if (queue.length === 0 && this.released) this.closeCodec();
  }

  /** Drops every frame not written yet; the messages among them are counted as dropped (S4 reports them). */
  dropOutput(): void {
    this.droppedOutputMessages += this.pendingOutputMessages;
    this.output.length = 0;
    this.outputBytes = 0;
    this.outputOverhead = 0;
    this.outputEpoch++;
  }

  /** The connection is finished: the codec is released once the frames it still holds are out (S4). */
  release(): void {
    this.released = true;
    if (this.output.length === 0) this.closeCodec();
  }

  private closeCodec(): void {
    if (this.codecClosed) return;
    this.codecClosed = true;
    this.codec.close();
  }
}
