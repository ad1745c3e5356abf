/**
 * Fuzz target: the RFC 6455 frame parser (FrameParser) and the connection
 * state machine above it (Connection.receive), in the server and the client
 * role, with input split at random points.
 *
 * Input layout (so that a finding replays from its bytes alone):
 *   byte 0   flags: bit 0 role (0 server: frames must be masked, 1 client:
 *            unmasked, RFC 6455 section 5.1); bit 1 the parser allows RSV1
 *            (as after permessage-deflate); bit 2 the connection streams
 *            fragments; bits 3-4 a limits profile
 *   byte 1   seed of the split points
 *   rest     the byte stream from the peer
 *
 * Invariants checked:
 *   1. Nothing but a WebSocketError escapes FrameParser.push; nothing at all
 *      escapes Connection.receive (it turns WebSocketErrors into a close).
 *   2. The sink contract: payload pieces add up to the announced length,
 *      data frames never exceed maxFrameBytes (compressedBound of it in a
 *      message whose first frame has an allowed RSV bit: an extension
 *      transformed it), control frames never exceed
 *      125 bytes, opcodes and RSV bits are ones the parser may pass on,
 *      continuations only continue a message (section 5.4).
 *   3. Chunking does not matter: the input parsed whole and parsed in random
 *      pieces gives the same frames and the same error (both runs end with
 *      the same padding, which completes any header left half-read: the
 *      parser checks the first two bytes of a partial header early, and only
 *      the outcome of complete input is compared).
 *   4. Round trip: the complete frames found, re-serialized with
 *      encodeFrame and parsed again, give the same frames and no error.
 *   5. The connection: at most one 'closed' event and nothing after it;
 *      whole messages within maxMessageBytes; text messages valid UTF-8
 *      (checked independently of the library's validator); everything it
 *      writes parses cleanly with the peer's parser; each ping received
 *      while open is answered by a pong with the same payload (section
 *      5.5.2); at most one close frame, written last, with a valid payload
 *      whose code matches the close event when the connection failed.
 */
import { WebSocketError } from '../../src/core/errors.js';
import { FrameParser, type FrameSink } from '../../src/core/frame-parser.js';
import { encodeFrame } from '../../src/core/frame-serializer.js';
import { compressedBound } from '../../src/core/message-codec.js';
import { Connection, decodeClosePayload, type ConnectionEvent, type ConnectionLimits, type Role } from '../../src/core/connection.js';
import { Rng, splitChunks } from '../rng.js';
import { check, copy, errorKey, expectOnlyWebSocketErrors, FuzzFinding, isUtf8RoundTrip, type FuzzTarget } from './common.js';

/**
 * Small limits that short inputs can reach (a frame count, the per-frame
 * charge against maxMessageBytes, a control-frame budget; the fuzzed
 * connection's clock stands still, so the budget never refills), and the
 * library defaults.
 */
export const LIMIT_PROFILES: readonly ConnectionLimits[] = [
  { maxFrameBytes: 64, maxMessageBytes: 256, maxFragments: 4, maxControlFramesPerSecond: 4 },
  { maxFrameBytes: 1024, maxMessageBytes: 4096, maxFragments: 16, maxControlFramesPerSecond: 16 },
  { maxFrameBytes: 300, maxMessageBytes: 300, maxFragments: 1000, maxControlFramesPerSecond: 0 },
  { maxFrameBytes: 16 * 1024 * 1024, maxMessageBytes: 16 * 1024 * 1024, maxFragments: Infinity, maxControlFramesPerSecond: 1000 },
];

/** Completes any partly read header (at most 14 bytes) in both runs of invariant 3. */
const PAD = Buffer.alloc(14);

interface Setup {
  role: Role;
  allowedRsv: number;
  stream: boolean;
  limits: ConnectionLimits;
  splitSeed: number;
  body: Buffer;
}

export function decodeSetup(data: Buffer): Setup {
  const flags = data.length > 0 ? data[0] : 0;
  return {
    role: flags & 1 ? 'client' : 'server',
    allowedRsv: flags & 2 ? 0x4 : 0,
    stream: (flags & 4) !== 0,
    limits: LIMIT_PROFILES[(flags >> 3) & 3],
    splitSeed: data.length > 1 ? data[1] : 0,
    body: data.subarray(2),
  };
}

interface ParsedFrame {
  control: boolean;
  opcode: number;
  fin: boolean;
  rsv: number;
  length: number;
  payload: Buffer;
  complete: boolean;
}

/** A sink that records frames and checks the FrameSink contract (invariant 2). */
class RecordingSink implements FrameSink {
  readonly frames: ParsedFrame[] = [];
  private current: ParsedFrame | null = null;
  private pieces: Buffer[] = [];
  private got = 0;
  private inMessage = false;
  private transformed = false;

  constructor(
    private readonly maxFrameBytes: number,
    private readonly allowedRsv: number,
  ) {}

  onDataFrameStart(opcode: number, fin: boolean, rsv: number, length: number): void {
    check(this.current === null, 'data frame started before the previous one ended');
    check(opcode === 0 || opcode === 1 || opcode === 2, `data frame with opcode ${opcode}`);
    check((rsv & ~this.allowedRsv) === 0, `data frame with RSV ${rsv} passed on (allowed ${this.allowedRsv})`);
    const transformed = opcode === 0 ? this.transformed : (rsv & this.allowedRsv) !== 0;
    const limit = transformed ? compressedBound(this.maxFrameBytes) : this.maxFrameBytes;
    check(Number.isSafeInteger(length) && length >= 0 && length <= limit, `data frame length ${length} (limit ${limit})`);
    // Section 5.4: a continuation continues a message; a new message does not interrupt one.
    check(opcode === 0 ? this.inMessage : !this.inMessage, `opcode ${opcode} passed on while ${this.inMessage ? 'inside' : 'outside'} a message`);
    this.inMessage = !fin;
    this.transformed = !fin && transformed;
    this.current = { control: false, opcode, fin, rsv, length, payload: Buffer.alloc(0), complete: false };
    this.frames.push(this.current);
    this.pieces = [];
    this.got = 0;
  }

  onDataPayload(data: Buffer, remaining: number): void {
    const f = this.current;
    check(f !== null, 'payload outside a data frame');
    check(data.length > 0, 'empty payload piece');
    this.got += data.length;
    check(this.got + remaining === f.length, `payload pieces (${this.got} + ${remaining} remaining) do not add up to ${f.length}`);
    this.pieces.push(Buffer.from(data));
    f.payload = Buffer.concat(this.pieces);
  }

  onDataFrameEnd(fin: boolean): void {
    const f = this.current;
    check(f !== null, 'frame end outside a data frame');
    check(this.got === f.length, `frame ended after ${this.got} of ${f.length} bytes`);
    check(fin === f.fin, 'FIN at the end differs from FIN at the start');
    f.complete = true;
    this.current = null;
  }

  onControlFrame(opcode: number, payload: Buffer): void {
    check(this.current === null, 'control frame inside a data frame');
    check(opcode === 8 || opcode === 9 || opcode === 10, `control frame with opcode ${opcode}`);
    check(payload.length <= 125, `control frame of ${payload.length} bytes`);
    this.frames.push({ control: true, opcode, fin: true, rsv: 0, length: payload.length, payload: Buffer.from(payload), complete: true });
  }
}

function describeFrames(frames: readonly ParsedFrame[]): string {
  return frames.map((f) => `${f.control ? 'c' : 'd'}${f.opcode}${f.fin ? 'F' : ''}r${f.rsv}:${f.length}:${f.complete ? '' : '~'}${f.payload.toString('hex')}`).join(' ');
}

/** Parses `chunks` in order; returns the frames and the error (only WebSocketErrors may escape). */
function parseChunks(chunks: Buffer[], role: Role, maxFrameBytes: number, allowedRsv: number): { frames: ParsedFrame[]; error: WebSocketError | undefined } {
  const sink = new RecordingSink(maxFrameBytes, allowedRsv);
  const parser = new FrameParser(sink, { role, maxFrameBytes, allowedRsv });
  let error: WebSocketError | undefined;
  for (const c of chunks) {
    const r = expectOnlyWebSocketErrors(() => parser.push(c));
    if (r.error) {
      error = r.error;
      check(parser.failed, 'parser threw but does not report failed');
      break;
    }
  }
  if (error) {
    // A failed parser ignores further input (and must not throw).
    parser.push(Buffer.from([0x81, 0x80]));
  }
  return { frames: sink.frames, error };
}

/** Deterministic 4-byte masks for client connections and re-serialization (S5: no randomness in the core). */
function maskCounter(): () => Uint8Array {
  let n = 0x1234567;
  return () => {
    n = (Math.imul(n, 1103515245) + 12345) >>> 0;
    const m = Buffer.alloc(4);
    m.writeUInt32BE(n);
    return m;
  };
}

interface ConnRun {
  events: string[];
  written: ParsedFrame[];
}

/** Feeds `chunks` to a Connection and checks invariant 5; returns normalized events and written frames. */
function runConnection(setup: Setup, chunks: Buffer[]): ConnRun {
  const events: ConnectionEvent[] = [];
  const writes: Buffer[] = [];
  const conn = new Connection(
    {
      onEvent: (ev) => {
        check(!events.some((e) => e.type === 'closed'), () => `event ${ev.type} after 'closed'`);
        events.push(ev);
      },
      write: (bufs) => writes.push(Buffer.concat(bufs)),
    },
    { role: setup.role, limits: setup.limits, streamMessages: setup.stream, maskSource: setup.role === 'client' ? maskCounter() : undefined, now: 0, keepalive: null },
  );
  for (const c of chunks) {
    try {
      conn.receive(c, 0);
    } catch (err) {
      throw new FuzzFinding(`Connection.receive threw ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
    }
  }

  // What the connection wrote must parse cleanly on the other side.
  const peerRole: Role = setup.role === 'server' ? 'client' : 'server';
  const peer = parseChunks([Buffer.concat(writes)], peerRole, 1 << 30, 0);
  check(peer.error === undefined, () => `the connection wrote bytes its peer cannot parse: ${errorKey(peer.error)}`);
  const written = peer.frames;
  const closes = written.filter((f) => f.control && f.opcode === 8);
  check(closes.length <= 1, `${closes.length} close frames written`);
  if (closes.length === 1) {
    check(written[written.length - 1] === closes[0], 'a frame was written after the close frame');
    const decoded = expectOnlyWebSocketErrors(() => decodeClosePayload(closes[0].payload));
    check(decoded.error === undefined, () => `the connection wrote an invalid close payload: ${errorKey(decoded.error)}`);
  }

  // Section 5.5.2: every ping received while open is answered with a pong carrying its payload.
  const pings = events.filter((e): e is Extract<ConnectionEvent, { type: 'ping' }> => e.type === 'ping');
  const pongs = written.filter((f) => f.control && f.opcode === 10);
  const closeIndex = events.findIndex((e) => e.type === 'closed');
  const answered = pings.filter((p) => closeIndex < 0 || events.indexOf(p) < closeIndex);
  check(pongs.length >= answered.length, `${answered.length} pings received while open, ${pongs.length} pongs written`);
  for (let i = 0; i < answered.length; i++) {
    check(pongs[i].payload.equals(answered[i].data), `pong ${i} does not echo its ping's payload`);
  }

  const out: string[] = [];
  let streamed: Buffer[] = [];
  let streamedBytes = 0;
  for (const ev of events) {
    switch (ev.type) {
      case 'message':
        check(ev.data.length <= setup.limits.maxMessageBytes, `message of ${ev.data.length} bytes over the limit`);
        check(ev.binary || isUtf8RoundTrip(ev.data), 'text message is not valid UTF-8');
        out.push(`m${ev.binary ? 'b' : 't'}:${ev.data.toString('hex')}`);
        break;
      case 'fragment':
        streamed.push(Buffer.from(ev.data));
        streamedBytes += ev.data.length;
        check(streamedBytes <= setup.limits.maxMessageBytes, `streamed message of ${streamedBytes} bytes over the limit`);
        if (ev.last) {
          const whole = Buffer.concat(streamed);
          check(ev.binary || isUtf8RoundTrip(whole), 'streamed text message is not valid UTF-8');
          // Pieces depend on chunking; the whole message does not.
          out.push(`m${ev.binary ? 'b' : 't'}:${whole.toString('hex')}`);
          streamed = [];
          streamedBytes = 0;
        }
        break;
      case 'ping':
      case 'pong':
        out.push(`${ev.type}:${ev.data.toString('hex')}`);
        break;
      case 'closed': {
        check(ev.error === undefined || ev.error instanceof WebSocketError, 'close event error is not a WebSocketError');
        check(Number.isInteger(ev.code) && ev.code >= 1000 && ev.code <= 4999, `close event with code ${ev.code}`);
        if (ev.error && closes.length === 1 && closes[0].payload.length >= 2) {
          check(closes[0].payload.readUInt16BE(0) === ev.code, `failed with ${ev.code} but the close frame says ${closes[0].payload.readUInt16BE(0)}`);
        }
        out.push(`closed:${ev.code}:${ev.wasClean}:${ev.hangup}:${errorKey(ev.error)}`);
        break;
      }
    }
  }
  check(conn.state !== 'closed' || closeIndex >= 0, "connection is closed but sent no 'closed' event");
  return { events: out, written };
}

function runFrameTarget(data: Buffer): string {
  const setup = decodeSetup(data);
  const { role, allowedRsv } = setup;
  const maxFrameBytes = setup.limits.maxFrameBytes;

  // Invariant 1 on input that may end anywhere.
  const rng = new Rng(setup.splitSeed * 7919 + data.length);
  const pieces = splitChunks(setup.body, rng);
  const truncated = parseChunks(pieces.map(copy), role, maxFrameBytes, allowedRsv);

  // Invariant 3.
  const padded = Buffer.concat([setup.body, PAD]);
  const whole = parseChunks([copy(padded)], role, maxFrameBytes, allowedRsv);
  const split = parseChunks([...splitChunks(setup.body, new Rng(setup.splitSeed + 1)), Buffer.from(PAD)], role, maxFrameBytes, allowedRsv);
  check(errorKey(whole.error) === errorKey(split.error), () => `split input ends with ${errorKey(split.error)}, whole input with ${errorKey(whole.error)}`);
  const wholeDesc = describeFrames(whole.frames);
  check(wholeDesc === describeFrames(split.frames), () => `split input gives other frames:\n whole ${wholeDesc}\n split ${describeFrames(split.frames)}`);

  // Invariant 4.
  const complete = truncated.frames.filter((f) => f.complete);
  const mask = maskCounter();
  const reencoded = complete.flatMap((f) => encodeFrame(f.opcode, f.payload, { fin: f.fin, rsv: f.rsv, mask: role === 'server' ? mask() : null }));
  const again = parseChunks([Buffer.concat(reencoded)], role, maxFrameBytes, allowedRsv);
  check(again.error === undefined, () => `re-serialized frames fail to parse: ${errorKey(again.error)}`);
  check(describeFrames(again.frames) === describeFrames(complete), () => `re-serialized frames parse differently:\n first ${describeFrames(complete)}\n again ${describeFrames(again.frames)}`);

  // Invariant 5, and chunking independence of the connection's events and output.
  runConnection(setup, splitChunks(setup.body, new Rng(setup.splitSeed + 2)));
  const connWhole = runConnection(setup, [copy(padded)]);
  const connSplit = runConnection(setup, [...splitChunks(setup.body, new Rng(setup.splitSeed + 3)), Buffer.from(PAD)]);
  const a = connWhole.events.join(' ');
  const b = connSplit.events.join(' ');
  if (setup.stream) {
    // Streamed text is validated piece by piece: a message cut short by an error may have delivered
    // pieces in one run and not the other. Whole messages and the close must still agree.
    check(connWhole.events.at(-1) === connSplit.events.at(-1), () => `connection ends differently when input is split:\n whole ${a}\n split ${b}`);
  } else {
    check(a === b, () => `connection events differ when input is split:\n whole ${a}\n split ${b}`);
  }
  check(describeFrames(connWhole.written) === describeFrames(connSplit.written), 'connection writes differ when input is split');

  // Signature: frame kinds seen, the errors, and how the connection ended.
  const kinds = [...new Set(truncated.frames.map((f) => `${f.control ? 'c' : 'd'}${f.opcode}${f.fin ? 'F' : ''}`))].sort().join(',');
  return `${role}|${kinds}|${errorKey(truncated.error)}|${errorKey(whole.error)}|${connWhole.events.at(-1)?.replace(/:[^:]*$/, '') ?? ''}`;
}

// ------------------------------------------------- structure-aware mutation

interface RawFrame {
  b0: number;
  masked: boolean;
  mask: Buffer;
  /** Length encoding: 0 = 7-bit, 1 = 16-bit, 2 = 64-bit. */
  enc: 0 | 1 | 2;
  /** The length the header announces (may lie). */
  declared: bigint;
  /** Plain (unmasked) payload bytes present in the input. */
  payload: Buffer;
}

function unmask(b: Buffer, mask: Buffer): Buffer {
  const out = Buffer.from(b);
  for (let i = 0; i < out.length; i++) out[i] ^= mask[i & 3];
  return out;
}

/** Splits a stream into frames without validating anything; what cannot be split stays as a tail. */
export function looseFrames(body: Buffer): { frames: RawFrame[]; tail: Buffer } {
  const frames: RawFrame[] = [];
  let p = 0;
  for (let guard = 0; guard < 4096 && p + 2 <= body.length; guard++) {
    const b0 = body[p];
    const b1 = body[p + 1];
    const masked = (b1 & 0x80) !== 0;
    const l7 = b1 & 0x7f;
    const enc: 0 | 1 | 2 = l7 === 126 ? 1 : l7 === 127 ? 2 : 0;
    const hlen = 2 + (enc === 1 ? 2 : enc === 2 ? 8 : 0) + (masked ? 4 : 0);
    if (p + hlen > body.length) break;
    const declared = enc === 0 ? BigInt(l7) : enc === 1 ? BigInt(body.readUInt16BE(p + 2)) : body.readBigUInt64BE(p + 2);
    const mask = masked ? Buffer.from(body.subarray(p + hlen - 4, p + hlen)) : Buffer.alloc(4);
    const avail = BigInt(body.length - p - hlen);
    const take = Number(declared < avail ? declared : avail);
    const wire = body.subarray(p + hlen, p + hlen + take);
    frames.push({ b0, masked, mask, enc, declared, payload: masked ? unmask(wire, mask) : Buffer.from(wire) });
    p += hlen + take;
  }
  return { frames, tail: Buffer.from(body.subarray(p)) };
}

export function writeRawFrame(f: RawFrame): Buffer {
  const ext = f.enc === 1 ? 2 : f.enc === 2 ? 8 : 0;
  const head = Buffer.alloc(2 + ext + (f.masked ? 4 : 0));
  head[0] = f.b0;
  const l7 = f.enc === 1 ? 126 : f.enc === 2 ? 127 : Number(f.declared & 0x7fn);
  head[1] = (f.masked ? 0x80 : 0) | l7;
  if (f.enc === 1) head.writeUInt16BE(Number(f.declared & 0xffffn), 2);
  if (f.enc === 2) head.writeBigUInt64BE(f.declared & 0xffffffffffffffffn, 2);
  if (f.masked) f.mask.copy(head, 2 + ext);
  return Buffer.concat([head, f.masked ? unmask(f.payload, f.mask) : f.payload]);
}

/** A well-formed frame in the raw form, masked when the receiver is a server. */
function rawFrame(rng: Rng, role: Role, b0: number, payload: Buffer): RawFrame {
  const n = payload.length;
  return { b0, masked: role === 'server', mask: rng.bytes(4), enc: n < 126 ? 0 : n < 0x10000 ? 1 : 2, declared: BigInt(n), payload };
}

const UTF8_EDGES: readonly Buffer[] = [
  Buffer.from('héllo wörld €𝄞', 'utf8'),
  Buffer.from([0xf4, 0x8f, 0xbf, 0xbf]), // U+10FFFF, the last code point
  Buffer.from([0xf4, 0x90, 0x80, 0x80]), // above U+10FFFF
  Buffer.from([0xed, 0xa0, 0x80]), // a surrogate
  Buffer.from([0xc0, 0xaf]), // overlong '/'
  Buffer.from([0xe2, 0x82]), // cut short
  Buffer.from([0xf0, 0x9f, 0x98]),
  Buffer.from([0xff]),
  Buffer.from([0x03, 0xe8]), // close code 1000
  Buffer.from([0x03, 0xed]), // 1005, never on the wire
  Buffer.from([0x0b, 0xb8]), // 3000
];

const LENGTH_EDGES: readonly bigint[] = [0n, 1n, 124n, 125n, 126n, 127n, 0xffffn, 0x10000n, 0x7fffffffn, 0xffffffffn, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n];

function mutateFrames(data: Buffer, rng: Rng): Buffer | null {
  if (data.length < 2) return null;
  const setup = decodeSetup(data);
  const { frames, tail } = looseFrames(setup.body);
  const pickIndex = (): number => rng.below(frames.length);
  const op = rng.below(12);
  if (frames.length === 0 && op < 8) return null;
  switch (op) {
    case 0: // toggle FIN
      frames[pickIndex()].b0 ^= 0x80;
      break;
    case 1: {
      // set the opcode, mostly to a meaningful one
      const f = frames[pickIndex()];
      f.b0 = (f.b0 & 0xf0) | (rng.oneIn(4) ? rng.below(16) : rng.pick([0, 1, 2, 8, 9, 10]));
      break;
    }
    case 2: // toggle an RSV bit
      frames[pickIndex()].b0 ^= rng.pick([0x40, 0x20, 0x10]);
      break;
    case 3: {
      // longer length encoding than needed (the parser must still read it right)
      const f = frames[pickIndex()];
      f.enc = f.enc === 2 ? 0 : ((f.enc + 1) as 1 | 2);
      if (f.enc === 0 && f.declared > 125n) f.enc = 1;
      if (f.enc === 1 && f.declared > 0xffffn) f.enc = 2;
      break;
    }
    case 4: {
      // a length that lies, by a little or by a lot
      const f = frames[pickIndex()];
      if (rng.oneIn(2)) f.declared = f.declared + BigInt(rng.range(-3, 3));
      else f.declared = rng.pick(LENGTH_EDGES);
      if (f.declared < 0n) f.declared = 0n;
      f.enc = f.declared <= 125n && f.enc === 0 ? 0 : f.declared <= 0xffffn && f.enc <= 1 ? 1 : 2;
      break;
    }
    case 5: // toggle the mask bit (adds or removes the masking key)
      frames[pickIndex()].masked = !frames[pickIndex()].masked;
      break;
    case 6: {
      // duplicate, delete or swap frames
      const i = pickIndex();
      const j = pickIndex();
      const r = rng.below(3);
      if (r === 0) frames.splice(j, 0, { ...frames[i], payload: Buffer.from(frames[i].payload) });
      else if (r === 1) frames.splice(i, 1);
      else [frames[i], frames[j]] = [frames[j], frames[i]];
      break;
    }
    case 7: {
      // new payload: UTF-8 edge cases, close codes, or random bytes
      const f = frames[pickIndex()];
      const payload = rng.oneIn(3) ? rng.bytes(rng.below(140)) : Buffer.concat([rng.pick(UTF8_EDGES), rng.oneIn(2) ? rng.pick(UTF8_EDGES) : Buffer.alloc(0)]);
      f.payload = payload;
      f.declared = BigInt(payload.length);
      f.enc = payload.length < 126 ? 0 : payload.length < 0x10000 ? 1 : 2;
      break;
    }
    default: {
      // insert a well-formed frame: control (sometimes oversized), data or continuation
      const kind = rng.pick([0x89, 0x8a, 0x88, 0x81, 0x82, 0x01, 0x80, 0x00, 0x09]);
      const size = kind & 0x08 ? (rng.oneIn(8) ? 126 : rng.below(126)) : rng.below(300);
      const payload = kind === 0x88 && size >= 2 ? Buffer.concat([rng.pick(UTF8_EDGES.slice(8)), rng.bytes(size - 2)]) : rng.bytes(size);
      frames.splice(rng.below(frames.length + 1), 0, rawFrame(rng, setup.role, kind, payload));
      break;
    }
  }
  return Buffer.concat([data.subarray(0, 2), ...frames.map(writeRawFrame), tail]);
}

export const target: FuzzTarget = {
  name: 'frame-parser',
  maxLen: 4096,
  async: false,
  run: runFrameTarget,
  mutate: mutateFrames,
};

/** Jazzer.js entry point. */
export function fuzz(data: Buffer): void {
  runFrameTarget(data);
}
