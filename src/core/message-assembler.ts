import { CloseCode } from './close-codes.js';
import { InvalidUtf8Error, LimitExceededError, ProtocolError } from './errors.js';
import type { FrameSink } from './frame-parser.js';
import { MIN_FRAME_CHARGE, type ConnectionLimits } from './connection-types.js';
import { compressedBound, type MessageCodec } from './message-codec.js';
import { copyMasked } from './mask.js';
import { Opcode } from './opcodes.js';
import { Utf8Validator } from './utf8-validator.js';

/** Where the assembler puts what it has assembled (the Connection). */
export interface AssemblerOutput {
  /** A whole, validated message. */
  onAssembled(binary: boolean, data: Buffer): void;
  /** A validated piece of a message, as it arrives (streamMessages). */
  onAssembledPiece(binary: boolean, data: Buffer, first: boolean, last: boolean): void;
  /** A whole compressed message, its payloads as received, for the codec (the list is handed over). */
  onCompressed(binary: boolean, parts: Buffer[]): void;
  /** A whole control frame. */
  onControl(opcode: number, payload: Buffer): void;
}

const EMPTY = Buffer.alloc(0);

/**
 * A frame whose payload spans several reads gets a buffer of its own once
 * this fraction of it has arrived (see keepPayload): 1/FRAME_BUFFER_RATIO.
 */
const FRAME_BUFFER_RATIO = 8;

/** Pieces of a message shorter than this are merged in runs of MERGE_RUN (see pushPart). */
const SMALL_PART = 1024;
const MERGE_RUN = 64;

const BINARY = 1;
const FIRST_PENDING = 2;
const FRAME_FIN = 4;
const COMPRESSED = 8;

/**
 * Turns the parser's data frames into messages: the limits on a message's
 * size and frames (invariant S3), UTF-8 validation of text as it arrives
 * (RFC 6455 section 8.1), and reassembly. It is the parser's sink; control
 * frames pass straight through. Guarded by test/core/message-assembler.test.ts
 * and, through the Connection, test/core/connection.test.ts.
 */
export class MessageAssembler implements FrameSink {
  /** Deliver pieces as they arrive instead of whole messages. */
  streamMessages: boolean;
  private readonly limits: ConnectionLimits;
  private readonly codec: MessageCodec | null;
  private readonly out: AssemblerOutput;
  /** BINARY, FIRST_PENDING, FRAME_FIN and COMPRESSED as bits of one field (every connection has an assembler). */
  private bits = 0;
  /**
   * The message's first piece while it is its only one: most messages arrive
   * in one read, and they then need no list at all. `parts` takes over from
   * the second piece; it is kept (emptied) for the next message, and made on
   * first use, so an idle connection holds none.
   */
  private first: Buffer | null = null;
  private parts: Buffer[] | null = null;
  /** How many parts at the end of `parts` are smaller than SMALL_PART (see pushPart). */
  private smallParts = 0;
  private bytes = 0;
  private frames = 0;
  /** The message's frames as counted against maxMessageBytes: each at least MIN_FRAME_CHARGE. */
  private charge = 0;
  /** Made for the first text message (a binary-only connection never needs one). */
  private utf8: Utf8Validator | null = null;
  private frameLength = 0;
  /** Payload bytes of the current frame received so far. */
  private frameGot = 0;
  /**
   * The current frame's payload, filled as its pieces arrive (see
   * keepPayload), or null while its pieces are kept as they came.
   */
  private frameBuf: Buffer | null = null;

  constructor(out: AssemblerOutput, limits: ConnectionLimits, codec: MessageCodec | null, streamMessages: boolean) {
    this.out = out;
    this.limits = limits;
    this.codec = codec;
    this.streamMessages = streamMessages;
  }

  private get binary(): boolean {
    return (this.bits & BINARY) !== 0;
  }
  private set binary(on: boolean) {
    this.bits = on ? this.bits | BINARY : this.bits & ~BINARY;
  }
  private get firstPending(): boolean {
    return (this.bits & FIRST_PENDING) !== 0;
  }
  private set firstPending(on: boolean) {
    this.bits = on ? this.bits | FIRST_PENDING : this.bits & ~FIRST_PENDING;
  }
  private get frameFin(): boolean {
    return (this.bits & FRAME_FIN) !== 0;
  }
  private set frameFin(on: boolean) {
    this.bits = on ? this.bits | FRAME_FIN : this.bits & ~FRAME_FIN;
  }
  private get compressed(): boolean {
    return (this.bits & COMPRESSED) !== 0;
  }
  private set compressed(on: boolean) {
    this.bits = on ? this.bits | COMPRESSED : this.bits & ~COMPRESSED;
  }

  onControlFrame(opcode: number, payload: Buffer): void {
    this.out.onControl(opcode, payload);
  }

  onDataFrameStart(opcode: number, fin: boolean, rsv: number, length: number): void {
    if (opcode !== Opcode.Continuation) {
      this.binary = opcode === Opcode.Binary;
      this.bytes = 0;
      this.frames = 0;
      this.charge = 0;
      this.clear();
      this.smallParts = 0;
      this.firstPending = true;
      if (!this.binary) (this.utf8 ??= new Utf8Validator()).reset();
      this.compressed = this.codec !== null && (rsv & this.codec.rsv) !== 0;
    } else if (this.codec && (rsv & this.codec.rsv) !== 0) {
      // RFC 7692 section 6.1: the compression bit is set on the first frame only.
      throw new ProtocolError('ERR_RSV1_ON_CONTINUATION', `${this.codec.name}: compression bit set on a continuation frame`);
    }
    this.frames++;
    // A compressed message is limited on the wire to what the limit's worth of content may deflate to,
    // and inflated to the limit itself (CodecQueues.decompress).
    const limit = this.limits.maxMessageBytes;
    const max = this.compressed ? compressedBound(limit) : limit;
    if (this.frames > this.limits.maxFragments) {
      throw new LimitExceededError('maxFragments', `message of more than ${this.limits.maxFragments} frames`, CloseCode.PolicyViolation);
    }
    // Refuse before the payload arrives: the header already tells the size.
    if (this.bytes + length > max) {
      throw new LimitExceededError('maxMessageBytes', max === limit ? `message of more than ${max} bytes` : `compressed message of more than ${max} bytes, more than a message of maxMessageBytes (${limit}) deflates to`);
    }
    // Each frame counts as at least MIN_FRAME_CHARGE bytes (see there): a flood of tiny or empty
    // continuations is a policy violation (1008, RFC 6455 section 7.4.1), not a message too big for
    // us (1009). A one-frame message is bounded by its real size alone.
    const charge = this.charge + Math.max(length, MIN_FRAME_CHARGE);
    if (this.frames > 1 && charge > max) {
      throw new LimitExceededError(
        'maxMessageBytes',
        `message of ${this.frames} frames: each frame counts as at least ${MIN_FRAME_CHARGE} bytes against maxMessageBytes (${max})`,
        CloseCode.PolicyViolation,
      );
    }
    this.charge = charge;
    this.bytes += length;
    this.frameFin = fin;
    this.frameLength = length;
    this.frameGot = 0;
    this.frameBuf = null;
  }

  /**
   * A masked piece of a frame that spans reads, once the frame's buffer is
   * due (see keepPayload), is unmasked straight into that buffer: one copy,
   * no pass over the read.
   */
  onMaskedPayload(data: Buffer, key: number, offset: number, remaining: number): boolean {
    if (this.compressed || this.streamMessages) return false;
    const buf = this.frameBuffer(data.length, remaining);
    if (buf === null) return false;
    const at = this.frameGot;
    copyMasked(data, key, offset, buf, at);
    this.frameGot = at + data.length;
    this.checkText(buf.subarray(at, at + data.length), remaining);
    if (remaining === 0) {
      this.frameBuf = null;
      this.pushPart(buf);
    }
    return true;
  }

  /** RFC 6455 section 8.1: fail as soon as text is certainly not UTF-8. */
  private checkText(data: Buffer, remaining: number): void {
    if (this.binary) return;
    if (!this.utf8!.write(data)) throw new InvalidUtf8Error('invalid UTF-8 in a text message');
    if (this.frameFin && remaining === 0 && !this.utf8!.isComplete()) throw new InvalidUtf8Error('text message ends inside a UTF-8 sequence');
  }

  onDataPayload(data: Buffer, remaining: number): void {
    if (this.compressed) {
      // Compressed bytes are kept whole (bounded by maxMessageBytes) and inflated at the end, under the same limit.
      this.pushPart(data);
      return;
    }
    this.checkText(data, remaining);
    const last = this.frameFin && remaining === 0;
    if (this.streamMessages) {
      const first = this.firstPending;
      this.firstPending = false;
      this.out.onAssembledPiece(this.binary, data, first, last);
    } else {
      this.keepPayload(data, remaining);
    }
  }

  /**
   * Keeps a piece of an uncompressed message. A frame that arrives in one
   * piece is kept as it came, a view of the read: no copy. A frame that spans
   * reads is copied, piece by piece while each is fresh in the CPU's cache,
   * into one buffer of the frame's size, so a large message is joined as it
   * arrives rather than read again from memory at its end. That buffer is
   * made only once an eighth of the frame has arrived (the pieces before are
   * kept, then copied in): a peer that announces a frame and sends little of
   * it makes the connection hold at most FRAME_BUFFER_RATIO times what it
   * sent (invariant S3). Guarded by test/core/message-assembler.test.ts
   * ("a frame that spans reads").
   */
  private keepPayload(data: Buffer, remaining: number): void {
    const buf = this.frameBuffer(data.length, remaining);
    const at = this.frameGot;
    this.frameGot = at + data.length;
    if (buf === null) {
      this.pushPart(data);
      return;
    }
    data.copy(buf, at);
    if (remaining === 0) {
      this.frameBuf = null;
      this.pushPart(buf);
    }
  }

  /**
   * The buffer the next piece (`length` bytes, `remaining` after it) of the
   * current frame goes into, made here once the frame has spanned reads and
   * an eighth of it has arrived (the pieces kept before are moved in); null
   * while the piece is to be kept as it came: a frame whole in one piece, or
   * too little of it yet (see keepPayload).
   */
  private frameBuffer(length: number, remaining: number): Buffer | null {
    if (this.frameBuf !== null) return this.frameBuf;
    const before = this.frameGot;
    // The whole frame in one piece.
    if (remaining === 0 && before === 0) return null;
    if ((before + length) * FRAME_BUFFER_RATIO < this.frameLength) return null;
    const buf = (this.frameBuf = Buffer.allocUnsafe(this.frameLength));
    // The frame's earlier pieces are the last `before` bytes kept.
    this.takeTail(buf, before);
    return buf;
  }

  /** Moves the last `n` bytes kept (first, then parts) into buf[0, n), removing them from the list. */
  private takeTail(buf: Buffer, n: number): void {
    if (n === 0) return;
    if (this.first !== null) {
      // n is at most what is kept: the whole of `first`, or its end.
      const f = this.first;
      f.copy(buf, 0, f.length - n);
      this.first = n === f.length ? null : f.subarray(0, f.length - n);
      return;
    }
    const parts = this.parts!;
    let at = n;
    while (at > 0) {
      const p = parts.pop()!;
      if (p.length <= at) {
        at -= p.length;
        p.copy(buf, at);
      } else {
        // A merged run that began in an earlier frame: its end is this frame's start.
        p.copy(buf, 0, p.length - at);
        parts.push(p.subarray(0, p.length - at));
        at = 0;
      }
    }
    this.smallParts = 0;
  }

  onDataFrameEnd(fin: boolean): void {
    if (!fin) return;
    if (this.compressed) {
      // The codec keeps the list until it is done: it is handed over, not reused.
      const parts = this.first !== null ? [this.first] : (this.parts ?? []);
      this.first = null;
      this.parts = null;
      this.out.onCompressed(this.binary, parts);
      return;
    }
    if (!this.binary && !this.utf8!.isComplete()) throw new InvalidUtf8Error('text message ends inside a UTF-8 sequence');
    if (this.streamMessages) {
      // A final frame with an empty payload still has to end the stream.
      if (this.frameLength === 0) {
        const first = this.firstPending;
        this.firstPending = false;
        this.out.onAssembledPiece(this.binary, EMPTY, first, true);
      }
      return;
    }
    const parts = this.parts;
    const data = this.first ?? (parts === null || parts.length === 0 ? EMPTY : parts.length === 1 ? parts[0] : Buffer.concat(parts, this.bytes));
    this.clear();
    this.out.onAssembled(this.binary, data);
  }

  /** Forgets the pieces of the message being received (the list is kept for the next one). */
  clear(): void {
    this.first = null;
    this.frameBuf = null;
    this.frameGot = 0;
    if (this.parts !== null) this.parts.length = 0;
  }

  /**
   * Keeps a piece of the message being received. Every piece is a Buffer of
   * its own (a view of the read it came in) with bookkeeping that costs far
   * more than a byte, so a peer that made every read one byte long (a fast
   * trickle) would make a message held until complete cost many times its
   * size, and maxMessageBytes would be no memory bound (invariant S3;
   * test/hostile/tiny-reads.test.ts). Runs of MERGE_RUN small pieces are
   * merged into one, so each byte is copied a bounded number of times and a
   * message costs about its size; large pieces are never copied.
   */
  private pushPart(data: Buffer): void {
    if (this.first === null && (this.parts === null || this.parts.length === 0)) {
      this.first = data;
      this.smallParts = data.length < SMALL_PART ? 1 : 0;
      return;
    }
    const parts = (this.parts ??= []);
    if (this.first !== null) {
      parts.push(this.first);
      this.first = null;
    }
    parts.push(data);
    if (data.length >= SMALL_PART) {
      this.smallParts = 0;
      return;
    }
    if (++this.smallParts < MERGE_RUN) return;
    const run = parts.splice(parts.length - MERGE_RUN, MERGE_RUN);
    let size = 0;
    for (const p of run) size += p.length;
    // Not Buffer.concat: small results come from the shared 8 KiB pool, whose slabs stay alive as long as any slice does.
    const merged = Buffer.allocUnsafeSlow(size);
    let at = 0;
    for (const p of run) at += p.copy(merged, at);
    parts.push(merged);
    // A merged run still small is the start of the next run (it grows by at least MERGE_RUN - 1 bytes a time).
    this.smallParts = merged.length < SMALL_PART ? 1 : 0;
  }
}
