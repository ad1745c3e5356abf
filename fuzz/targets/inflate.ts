/**
 * Fuzz target: the permessage-deflate inflate path (RFC 7692 section 7.2.2),
 * both DeflateCodec.decompress called directly with a limit and a server
 * Connection carrying a DeflateCodec that receives the bytes as the payload
 * of a compressed message.
 *
 * Input layout:
 *   byte 0   bits 0-2 the peer's window bits (9 + n, at most 15); bit 3 mode
 *            (0 codec, 1 connection); bit 4 text (1) or binary (0); bit 5
 *            the peer resets its context after each message
 *   byte 1   bits 0-1 output limit profile; bits 2-3 how many fragments
 *            (connection mode) or parts (codec mode) the bytes are cut into
 *   rest     compressed bytes as a peer would send them (no 00 00 ff ff tail)
 *
 * Invariants checked:
 *   1. done is called exactly once, within HANG_MS (no hang), with either a
 *      result or a WebSocketError: ERR_LIMIT_MAX_MESSAGE_BYTES (1009) or
 *      ERR_INFLATE (1007). Nothing else escapes, not even asynchronously.
 *   2. Bounded output: a result is never longer than the limit, whatever the
 *      ratio (a decompression bomb stops at the limit).
 *   3. Round trip: the same bytes taken as plain data, compressed by a
 *      DeflateCodec of the peer's role and inflated here, come back
 *      unchanged when they fit the limit, and fail with 1009 when they do not.
 *   4. Connection mode: the message is delivered whole (within the limit,
 *      valid UTF-8 if text) and the connection then closes cleanly with 1000,
 *      or it fails with 1009, 1007 or 1006; exactly one 'closed' event. A
 *      message of several frames that count for more than the limit (each
 *      at least MIN_FRAME_CHARGE bytes) is never delivered: it fails with
 *      1008 ERR_LIMIT_MAX_MESSAGE_BYTES, or 1009 if its real size crossed
 *      the limit first.
 */
import * as zlib from 'node:zlib';
import { CloseCode } from '../../src/core/close-codes.js';
import { Connection, MIN_FRAME_CHARGE, type ConnectionEvent } from '../../src/core/connection.js';
import { WebSocketError } from '../../src/core/errors.js';
import { encodeFrame } from '../../src/core/frame-serializer.js';
import type { DeflateParams } from '../../src/core/deflate-negotiation.js';
import { Limiter } from '../../src/transport/limiter.js';
import { DeflateCodec } from '../../src/transport/permessage-deflate.js';
import type { Rng } from '../rng.js';
import { check, errorKey, FuzzFinding, isUtf8RoundTrip, type FuzzTarget } from './common.js';

export const LIMITS = [1, 100, 4096, 65536] as const;
/** Far above what one input takes (a few ms); a run that needs longer is a hang. */
export const HANG_MS = 10_000;

interface Setup {
  windowBits: number;
  connection: boolean;
  text: boolean;
  noContextTakeover: boolean;
  limit: number;
  parts: number;
  body: Buffer;
}

export function decodeSetup(data: Buffer): Setup {
  const b0 = data.length > 0 ? data[0] : 0;
  const b1 = data.length > 1 ? data[1] : 0;
  return {
    windowBits: Math.min(15, 9 + (b0 & 7)),
    connection: (b0 & 8) !== 0,
    text: (b0 & 16) !== 0,
    noContextTakeover: (b0 & 32) !== 0,
    limit: LIMITS[b1 & 3],
    parts: 1 + ((b1 >> 2) & 3),
    body: data.subarray(2),
  };
}

/** The peer is a client, so only its side of the agreement matters for inflating. */
function params(s: Setup): DeflateParams {
  return { serverNoContextTakeover: false, clientNoContextTakeover: s.noContextTakeover, serverMaxWindowBits: 15, clientMaxWindowBits: s.windowBits };
}

function cut(b: Buffer, n: number): Buffer[] {
  const out: Buffer[] = [];
  const size = Math.max(1, Math.ceil(b.length / n));
  for (let p = 0; p < b.length; p += size) out.push(Buffer.from(b.subarray(p, p + size)));
  return out.length > 0 ? out : [Buffer.alloc(0)];
}

/** Runs one codec job and enforces invariant 1: one call of done, in time. */
function once(start: (done: (err: WebSocketError | null, result: Buffer | null) => void) => void, what: string): Promise<{ err: WebSocketError | null; result: Buffer | null }> {
  return new Promise((resolve, reject) => {
    let calls = 0;
    const timer = setTimeout(() => reject(new FuzzFinding(`${what}: done not called within ${HANG_MS} ms (hang)`)), HANG_MS);
    start((err, result) => {
      calls++;
      if (calls > 1) {
        reject(new FuzzFinding(`${what}: done called ${calls} times`));
        return;
      }
      clearTimeout(timer);
      // Let a second call, if any, show up before settling.
      setImmediate(() => (calls === 1 ? resolve({ err, result }) : reject(new FuzzFinding(`${what}: done called ${calls} times`))));
    });
  });
}

function checkOutcome(what: string, err: WebSocketError | null, result: Buffer | null, limit: number): void {
  if (err) {
    check(err instanceof WebSocketError, `${what}: error is not a WebSocketError`);
    check(
      (err.code === 'ERR_LIMIT_MAX_MESSAGE_BYTES' && err.closeCode === CloseCode.MessageTooBig) || (err.code === 'ERR_INFLATE' && err.closeCode === CloseCode.InvalidPayload),
      () => `${what}: unexpected error ${errorKey(err)} (close code ${err.closeCode})`,
    );
    check(result === null, `${what}: both an error and a result`);
  } else {
    check(result !== null, `${what}: neither an error nor a result`);
    check(result.length <= limit, () => `${what}: inflated ${result.length} bytes over the limit of ${limit}`);
  }
}

async function runCodec(s: Setup): Promise<string> {
  const codec = new DeflateCodec('server', params(s), {}, new Limiter(1));
  try {
    const { err, result } = await once((done) => codec.decompress(cut(s.body, s.parts), s.limit, done), 'decompress');
    checkOutcome('decompress', err, result, s.limit);
    return `${s.parts}|${err ? err.code : `data:${Math.ceil(Math.log2(result!.length + 1))}`}`;
  } finally {
    codec.close();
  }
}

async function roundTrip(s: Setup): Promise<void> {
  const peer = new DeflateCodec('client', params(s), { threshold: 0 }, new Limiter(1));
  const ours = new DeflateCodec('server', params(s), {}, new Limiter(1));
  try {
    const plain = Buffer.from(s.body);
    const c = await once((done) => peer.compress(Buffer.from(plain), done, true), 'compress');
    check(c.err === null && c.result !== null, () => `compress failed: ${errorKey(c.err ?? undefined)}`);
    const d = await once((done) => ours.decompress(cut(c.result!, s.parts), s.limit, done), 'decompress of compressed data');
    checkOutcome('round trip', d.err, d.result, s.limit);
    if (plain.length <= s.limit) {
      check(d.err === null, () => `round trip of ${plain.length} bytes failed: ${errorKey(d.err ?? undefined)}`);
      check(d.result!.equals(plain), 'round trip changed the data');
    } else {
      check(d.err !== null && d.err.code === 'ERR_LIMIT_MAX_MESSAGE_BYTES', `round trip of ${plain.length} bytes passed a limit of ${s.limit}`);
    }
  } finally {
    peer.close();
    ours.close();
  }
}

async function runConnection(s: Setup): Promise<string> {
  const codec = new DeflateCodec('server', params(s), {}, new Limiter(1));
  const events: ConnectionEvent[] = [];
  let closedResolve: () => void = () => {};
  const closed = new Promise<void>((resolve) => (closedResolve = resolve));
  const conn = new Connection(
    {
      onEvent: (ev) => {
        if (events.some((e) => e.type === 'closed')) throw new FuzzFinding(`event ${ev.type} after 'closed'`);
        events.push(ev);
        if (ev.type === 'closed') closedResolve();
      },
      write: () => {},
    },
    { role: 'server', limits: { maxMessageBytes: s.limit, maxFrameBytes: 1 << 20 }, now: 0, keepalive: null, codec },
  );
  // The payload as one compressed message (RSV1 on the first frame only, RFC 7692 section 6.1), then a close.
  const pieces = cut(s.body, s.parts);
  const mask = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
  const frames = pieces.flatMap((p, i) =>
    encodeFrame(i === 0 ? (s.text ? 1 : 2) : 0, p, { fin: i === pieces.length - 1, rsv: i === 0 ? 0x4 : 0, mask }),
  );
  frames.push(...encodeFrame(8, Buffer.from([0x03, 0xe8]), { mask }));
  // The charge of a message of several frames against maxMessageBytes (see MIN_FRAME_CHARGE).
  const overCharge = pieces.length > 1 && pieces.reduce((n, p) => n + Math.max(p.length, MIN_FRAME_CHARGE), 0) > s.limit;
  try {
    conn.receive(Buffer.concat(frames), 0);
  } catch (err) {
    throw new FuzzFinding(`Connection.receive threw ${err instanceof Error ? err.name + ': ' + err.message : String(err)}`);
  }
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new FuzzFinding(`connection never closed within ${HANG_MS} ms (hang)`)), HANG_MS);
  });
  try {
    await Promise.race([closed, hang]);
  } finally {
    clearTimeout(timer);
  }
  await new Promise((r) => setImmediate(r));
  const closes = events.filter((e): e is Extract<ConnectionEvent, { type: 'closed' }> => e.type === 'closed');
  check(closes.length === 1, `${closes.length} 'closed' events`);
  const close = closes[0];
  const messages = events.filter((e): e is Extract<ConnectionEvent, { type: 'message' }> => e.type === 'message');
  for (const m of messages) {
    check(m.data.length <= s.limit, `message of ${m.data.length} bytes over the limit of ${s.limit}`);
    check(m.binary || isUtf8RoundTrip(m.data), 'compressed text message delivered with invalid UTF-8');
  }
  if (messages.length === 1) {
    check(!overCharge, () => `a message of ${pieces.length} frames charged over the limit of ${s.limit} was delivered`);
    check(close.code === 1000 && close.wasClean, () => `message delivered but the close was ${close.code} (clean ${close.wasClean})`);
  } else {
    check(messages.length === 0, `${messages.length} messages from one`);
    check(close.error instanceof WebSocketError, 'failed without an error');
    if (overCharge) {
      // Decided on a frame header, before the message is inflated: 1008 for the charge, 1009 if the real size crossed first.
      check(
        (close.code === 1008 || close.code === 1009) && close.error.code === 'ERR_LIMIT_MAX_MESSAGE_BYTES',
        () => `a message charged over the limit failed with close code ${close.code} (${errorKey(close.error)})`,
      );
    } else {
      // 1009 over the limit, 1007 bad data or bad UTF-8 (RFC 6455 section 8.1), 1006 when the close frame came first.
      check([1009, 1007, 1006].includes(close.code), () => `failed with close code ${close.code} (${errorKey(close.error)})`);
    }
  }
  return `conn:${s.text}:${s.parts}:${messages.length}:${close.code}:${errorKey(close.error)}`;
}

async function runInflateTarget(data: Buffer): Promise<string> {
  const s = decodeSetup(data);
  await roundTrip(s);
  return s.connection ? runConnection(s) : runCodec(s);
}

/** Mutation that keeps the input a real deflate stream most of the time: compress something nasty. */
function mutateInflate(data: Buffer, rng: Rng): Buffer | null {
  if (data.length < 2 || !rng.oneIn(4)) return null;
  // Highly compressible runs (bomb-like ratios) or invalid UTF-8, already in raw deflate form.
  const kind = rng.below(3);
  const n = rng.pick([10, 200, 5000, 70000, 300000]);
  const plain = kind === 0 ? Buffer.alloc(n, rng.below(256)) : kind === 1 ? Buffer.concat([Buffer.from('ok '), Buffer.from([0xed, 0xa0, 0x80])]) : rng.bytes(Math.min(n, 3000));
  const { deflateRawSync, constants } = zlib;
  let body = deflateRawSync(plain, { windowBits: Math.min(15, 9 + (data[0] & 7)), finishFlush: constants.Z_SYNC_FLUSH });
  if (body.length >= 4 && body.subarray(body.length - 4).equals(Buffer.from([0, 0, 0xff, 0xff]))) body = body.subarray(0, body.length - 4);
  return Buffer.concat([data.subarray(0, 2), body]);
}


export const target: FuzzTarget = {
  name: 'inflate',
  maxLen: 4096,
  async: true,
  run: runInflateTarget,
  mutate: mutateInflate,
};

/** Jazzer.js entry point (asynchronous: run without --sync). */
export function fuzz(data: Buffer): Promise<void> {
  return runInflateTarget(data).then(() => undefined);
}
