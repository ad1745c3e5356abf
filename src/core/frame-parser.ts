import { LimitExceededError, ProtocolError } from './errors.js';
import { applyMaskKey, packMask } from './mask.js';
import { compressedBound } from './message-codec.js';
import { isControlOpcode, isKnownOpcode, MAX_CONTROL_PAYLOAD, Opcode } from './opcodes.js';

/**
 * Receives what the parser finds. Data frames are streamed (header, zero or
 * more payload pieces, end) so a large frame is never held whole by the
 * parser; control frames are at most 125 bytes and arrive whole.
 * A sink may throw a WebSocketError to fail the connection; the parser then
 * stops and rethrows from push().
 */
export interface FrameSink {
  onDataFrameStart(opcode: number, fin: boolean, rsv: number, length: number): void;
  /** An unmasked piece of the current data frame's payload; `remaining` is what is still to come of this frame. */
  onDataPayload(data: Buffer, remaining: number): void;
  onDataFrameEnd(fin: boolean): void;
  /**
   * Optional: offered a still-masked piece of the current data frame's
   * payload (`offset` payload bytes of the frame came before it). A sink that
   * copies the piece anyway may unmask it straight into its own memory
   * (copyMasked) and return true, leaving `data` untouched: onDataPayload is
   * then not called for it. False: the parser unmasks in place and calls
   * onDataPayload.
   */
  onMaskedPayload?(data: Buffer, key: number, offset: number, remaining: number): boolean;
  onControlFrame(opcode: number, payload: Buffer): void;
}

export interface FrameParserOptions {
  /** 'server' expects masked frames from clients; 'client' expects unmasked frames (RFC 6455 section 5.1). */
  role: 'server' | 'client';
  /** Largest payload of one frame; bigger fails with 1009. */
  maxFrameBytes: number;
  /**
   * The limit a too-long frame is reported under. 'maxMessageBytes' where the
   * frame limit is the message limit (its default): such a frame is a message
   * over the limit the application set, and the error names that one.
   * Default 'maxFrameBytes'.
   */
  frameLimitName?: 'maxFrameBytes' | 'maxMessageBytes';
  /** RSV bits that a negotiated extension gave a meaning to (0x4 = RSV1, 0x2 = RSV2, 0x1 = RSV3). */
  allowedRsv?: number;
}

const enum State {
  Header,
  Payload,
  Failed,
}

/**
 * Incremental RFC 6455 frame parser: accepts input split at any byte, parses
 * every frame already in a chunk in one pass, and unmasks payloads in place
 * (push() takes ownership of the bytes it is given).
 */
export class FrameParser {
  private readonly expectMasked: boolean;
  private readonly maxFrameBytes: number;
  private readonly frameLimitName: 'maxFrameBytes' | 'maxMessageBytes';
  allowedRsv: number;
  private state = State.Header;
  /** Bytes of a header that arrived split across chunks (at most 14); allocated the first time one does. */
  private headerBuf: Buffer | null = null;
  private headerLen = 0;
  // Current frame.
  private opcode = 0;
  private fin = false;
  private remaining = 0;
  private consumed = 0;
  private masked = false;
  /** The current frame's masking key (packMask form). */
  private maskKey = 0;
  /** Pieces of a control frame split across reads (null until one is). */
  private controlParts: Buffer[] | null = null;
  /** Whole frames parsed so far (a host's measure of the work its reads did). */
  framesParsed = 0;
  /** Opcode of the data message being continued, 0 when between messages. */
  private messageOpcode = 0;
  /** The message being received has an allowed RSV bit on its first frame: an extension transformed it (compressed). */
  private messageTransformed = false;
  private readonly sink: FrameSink;

  constructor(sink: FrameSink, options: FrameParserOptions) {
    this.sink = sink;
    this.expectMasked = options.role === 'server';
    this.maxFrameBytes = options.maxFrameBytes;
    this.frameLimitName = options.frameLimitName ?? 'maxFrameBytes';
    this.allowedRsv = options.allowedRsv ?? 0;
  }

  /**
   * True between messages: no frame, split header, control frame or
   * fragmented message under way, and not failed. A parser in this state
   * holds nothing a new one would not (Connection lets it go then).
   */
  get betweenMessages(): boolean {
    return this.state === State.Header && this.headerLen === 0 && this.messageOpcode === 0 && this.controlParts === null;
  }

  /** True once a protocol error was raised or stop() was called; further input is ignored. */
  get failed(): boolean {
    return this.state === State.Failed;
  }

  /**
   * Ends parsing: push() returns at once, now and on every later call (the
   * connection is closed, and what follows the close frame is not read,
   * RFC 6455 section 5.5.1).
   */
  stop(): void {
    this.state = State.Failed;
  }

  /**
   * Parses `chunk`, stopping at the first frame boundary after `maxFrames`
   * complete frames (a host's bound on the work one read may do). Returns the
   * number of bytes consumed: `chunk.length` unless it stopped early, in which
   * case the rest, untouched, is to be pushed again later.
   */
  push(chunk: Buffer, maxFrames = Infinity): number {
    if (this.state === State.Failed) return chunk.length;
    try {
      return this.run(chunk, maxFrames);
    } catch (err) {
      this.state = State.Failed;
      throw err;
    }
  }

  private run(chunk: Buffer, maxFrames: number): number {
    let pos = 0;
    const len = chunk.length;
    const stopAt = this.framesParsed + maxFrames;
    while (pos < len || (this.state === State.Payload && this.remaining === 0)) {
      if (this.state === State.Failed) return len;
      if (this.state === State.Header) {
        if (this.framesParsed >= stopAt) return pos;
        const used = this.readHeader(chunk, pos);
        if (used < 0) return len; // header incomplete: everything was buffered
        pos = used;
        continue;
      }
      // State.Payload
      const take = Math.min(this.remaining, len - pos);
      if (take > 0 || this.remaining === 0) {
        const piece = chunk.subarray(pos, pos + take);
        const offset = this.consumed;
        pos += take;
        this.consumed += take;
        this.remaining -= take;
        const control = isControlOpcode(this.opcode);
        // A data piece the sink unmasks into its own memory is not unmasked here, nor handed over again.
        const taken = this.masked && take > 0 && !control && this.sink.onMaskedPayload !== undefined && this.sink.onMaskedPayload(piece, this.maskKey, offset, this.remaining);
        if (this.masked && take > 0 && !taken) applyMaskKey(piece, this.maskKey, offset);
        if (control) {
          if (this.remaining === 0 && this.controlParts === null) {
            // The whole control frame in this chunk (the usual case): no parts list.
            this.state = State.Header;
            this.framesParsed++;
            this.sink.onControlFrame(this.opcode, piece);
          } else {
            if (take > 0) (this.controlParts ??= []).push(piece);
            if (this.remaining === 0) {
              const parts = this.controlParts ?? [];
              this.controlParts = null;
              const payload = parts.length === 1 ? parts[0] : Buffer.concat(parts);
              this.state = State.Header;
              this.framesParsed++;
              this.sink.onControlFrame(this.opcode, payload);
            }
          }
        } else {
          if (take > 0 && !taken) this.sink.onDataPayload(piece, this.remaining);
          if (this.remaining === 0) {
            this.state = State.Header;
            this.framesParsed++;
            this.sink.onDataFrameEnd(this.fin);
          }
        }
      }
    }
    return len;
  }

  /**
   * Reads a frame header starting at chunk[pos]. Returns the position after
   * it, or -1 when the chunk ended first (the partial header is kept).
   */
  private readHeader(chunk: Buffer, pos: number): number {
    const avail = chunk.length - pos;
    if (this.headerLen > 0) {
      // Finish a split header byte by byte into headerBuf (at most 14 bytes).
      const hb = this.headerBuf!;
      const need = this.headerNeed(hb, 0, this.headerLen);
      const copy = Math.min(need - this.headerLen, avail);
      chunk.copy(hb, this.headerLen, pos, pos + copy);
      this.headerLen += copy;
      const needNow = this.headerNeed(hb, 0, this.headerLen);
      if (this.headerLen < needNow) {
        // The second byte may have revealed a longer header; try again with what is left.
        if (copy < avail) return this.readHeader(chunk, pos + copy);
        return -1;
      }
      this.headerLen = 0;
      this.decodeHeader(hb, 0);
      return pos + copy;
    }
    if (avail < 2 || avail < this.headerNeed(chunk, pos, avail)) {
      chunk.copy((this.headerBuf ??= Buffer.alloc(14)), 0, pos);
      this.headerLen = avail;
      // Validate what we can of the first two bytes at once (fail fast).
      if (avail >= 1) this.checkFirstByte(chunk[pos]);
      if (avail >= 2) this.checkSecondByte(chunk[pos + 1]);
      return -1;
    }
    return pos + this.decodeHeader(chunk, pos);
  }

  /** Total header size implied by the bytes available (2 if the length byte is not there yet). */
  private headerNeed(b: Buffer, p: number, avail: number): number {
    if (avail < 2) return 2;
    const b1 = b[p + 1];
    const len7 = b1 & 0x7f;
    const mask = b1 & 0x80 ? 4 : 0;
    return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + mask;
  }

  private checkFirstByte(b0: number): void {
    const rsv = (b0 >> 4) & 0x7;
    const opcode = b0 & 0x0f;
    // RFC 6455 section 5.2: "MUST be 0 unless an extension is negotiated that defines meanings".
    if ((rsv & ~this.allowedRsv) !== 0) throw new ProtocolError('ERR_RESERVED_BITS', `reserved bits 0x${rsv.toString(16)} set without an extension`);
    if (!isKnownOpcode(opcode)) throw new ProtocolError('ERR_RESERVED_OPCODE', `reserved opcode 0x${opcode.toString(16)}`);
    const fin = (b0 & 0x80) !== 0;
    if (isControlOpcode(opcode)) {
      // Section 5.5: "All control frames ... MUST NOT be fragmented."
      if (!fin) throw new ProtocolError('ERR_FRAGMENTED_CONTROL', 'fragmented control frame');
      // No extension gives RSV bits a meaning on control frames (RFC 7692 section 6: only data messages are compressed).
      if (rsv !== 0) throw new ProtocolError('ERR_RESERVED_BITS', `reserved bits 0x${rsv.toString(16)} set on a control frame`);
    } else if (opcode === Opcode.Continuation) {
      // Section 5.4: a continuation needs a message in progress.
      if (this.messageOpcode === 0) throw new ProtocolError('ERR_UNEXPECTED_CONTINUATION', 'continuation frame without a message to continue');
    } else if (this.messageOpcode !== 0) {
      // Section 5.4: fragments of one message are not interleaved with another message.
      throw new ProtocolError('ERR_EXPECTED_CONTINUATION', 'new data frame while a fragmented message is in progress');
    }
  }

  private checkSecondByte(b1: number): void {
    const masked = (b1 & 0x80) !== 0;
    // Section 5.1: clients MUST mask, servers MUST NOT; the receiver fails the connection otherwise.
    if (masked !== this.expectMasked) {
      throw new ProtocolError(masked ? 'ERR_UNEXPECTED_MASK' : 'ERR_MISSING_MASK', masked ? 'masked frame from a server' : 'unmasked frame from a client');
    }
  }

  /** Decodes a complete header at b[p]; returns its size. */
  private decodeHeader(b: Buffer, p: number): number {
    const b0 = b[p];
    const b1 = b[p + 1];
    this.checkFirstByte(b0);
    this.checkSecondByte(b1);
    const opcode = b0 & 0x0f;
    const fin = (b0 & 0x80) !== 0;
    let size = 2;
    let length = b1 & 0x7f;
    if (length === 126) {
      length = b.readUInt16BE(p + 2);
      size = 4;
    } else if (length === 127) {
      const hi = b.readUInt32BE(p + 2);
      // Section 5.2: "the most significant bit MUST be 0".
      if (hi & 0x80000000) throw new ProtocolError('ERR_BAD_LENGTH', '64-bit payload length with the top bit set');
      // Anything at or above 2^53 cannot be a JS number exactly; it is far above any limit anyway.
      if (hi > 0x1fffff) throw new LimitExceededError(this.frameLimitName, `frame of ${hi} * 2^32 bytes exceeds the ${this.frameLimitName} limit`);
      length = hi * 0x100000000 + b.readUInt32BE(p + 6);
      size = 10;
    }
    if (isControlOpcode(opcode) && length > MAX_CONTROL_PAYLOAD) {
      throw new ProtocolError('ERR_CONTROL_TOO_LONG', `control frame payload of ${length} bytes (max 125)`);
    }
    let transformed = false;
    if (!isControlOpcode(opcode)) {
      transformed = opcode === Opcode.Continuation ? this.messageTransformed : ((b0 >> 4) & this.allowedRsv) !== 0;
    }
    // A compressed frame of content that does not compress is a little longer than the content.
    const maxFrame = transformed ? compressedBound(this.maxFrameBytes) : this.maxFrameBytes;
    if (length > maxFrame) {
      throw new LimitExceededError(this.frameLimitName, `frame of ${length} bytes exceeds the ${this.frameLimitName} limit of ${this.maxFrameBytes}`);
    }
    this.masked = (b1 & 0x80) !== 0;
    if (this.masked) {
      this.maskKey = packMask(b, p + size);
      size += 4;
    }
    this.opcode = opcode;
    this.fin = fin;
    this.remaining = length;
    this.consumed = 0;
    this.state = State.Payload;
    if (!isControlOpcode(opcode)) {
      const rsv = (b0 >> 4) & 0x7;
      const messageOpcode = opcode === Opcode.Continuation ? this.messageOpcode : opcode;
      this.messageOpcode = fin ? 0 : messageOpcode;
      this.messageTransformed = !fin && transformed;
      this.sink.onDataFrameStart(opcode, fin, rsv, length);
    }
    return size;
  }
}
