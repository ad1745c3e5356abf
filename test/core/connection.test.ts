/**
 * The connection state machine, driven sans-I/O (invariant S5) as server and
 * as client, over the ground that the Autobahn|Testsuite cases 1-10 cover
 * (each block names its cases). Every valid input is fed whole, split in two
 * at every position, and one byte at a time, and must give exactly the same
 * events and writes; every invalid one must also fail at the right byte.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  Connection,
  DEFAULT_LIMITS,
  MIN_FRAME_CHARGE,
  decodeClosePayload,
  encodeClosePayload,
  type ConnectionEvent,
  type ConnectionHost,
  type ConnectionOptions,
  type Hangup,
} from '../../src/core/connection.js';
import { isValidWireCloseCode } from '../../src/core/close-codes.js';
import {
  InvalidArgumentError,
  InvalidStateError,
  InvalidUtf8Error,
  LimitExceededError,
  ProtocolError,
  TimeoutError,
  TransportError,
  type WebSocketError,
} from '../../src/core/errors.js';
import { closePayload, concat, decodeFrames, Op, peerFrame, RSV1, RSV2, RSV3, testBytes, utf8, type FrameSpec } from '../helpers/frames.js';

type Role = 'server' | 'client';
const ROLES: Role[] = ['server', 'client'];

// ------------------------------------------------------------------ recorder

interface ErrorInfo {
  name: string;
  code: string;
  closeCode: number | undefined;
  message: string;
}

type Item =
  | { kind: 'message'; binary: boolean; data: Buffer }
  | { kind: 'fragment'; binary: boolean; data: Buffer; first: boolean; last: boolean }
  | { kind: 'ping' | 'pong'; data: Buffer }
  | { kind: 'closed'; code: number; reason: string; wasClean: boolean; error: ErrorInfo | undefined; hangup: Hangup }
  | { kind: 'write'; opcode: number; fin: boolean; payload: Buffer; urgent: boolean; endsMessage: boolean; mask: Buffer | null };

/**
 * A ConnectionHost that records events and writes on one timeline, and checks
 * the contract of every write as it happens: one whole frame per call, masked
 * (client) with the key the mask source just gave, or unmasked (server);
 * control frames urgent except close, never fragmented, at most 125 bytes; a
 * close payload that the RFC allows on the wire. Nothing after 'closed'.
 */
class Recorder implements ConnectionHost {
  readonly items: Item[] = [];
  /** The last 'closed' event's error (the original object, for instanceof checks). */
  error: WebSocketError | undefined;
  closed = false;
  private readonly pendingMasks: Buffer[] = [];
  private maskState: number;

  constructor(readonly role: Role, seed = 7) {
    this.maskState = seed;
  }

  /** Distinct, reproducible masking keys (S5: the connection gets its randomness from outside). */
  readonly maskSource = (): Uint8Array => {
    this.maskState = (Math.imul(this.maskState, 1664525) + 1013904223) >>> 0;
    const key = Buffer.alloc(4);
    key.writeUInt32BE((this.maskState ^ 0x9e3779b9) >>> 0);
    this.pendingMasks.push(Buffer.from(key));
    return key;
  };

  onEvent(e: ConnectionEvent): void {
    assert.equal(this.closed, false, `'${e.type}' event after 'closed'`);
    switch (e.type) {
      case 'message':
        // A text message is valid UTF-8 (section 8.1); a fatal decoder throws otherwise.
        if (!e.binary) new TextDecoder('utf-8', { fatal: true }).decode(e.data);
        this.items.push({ kind: 'message', binary: e.binary, data: Buffer.from(e.data) });
        break;
      case 'fragment':
        this.items.push({ kind: 'fragment', binary: e.binary, data: Buffer.from(e.data), first: e.first, last: e.last });
        break;
      case 'ping':
      case 'pong':
        this.items.push({ kind: e.type, data: Buffer.from(e.data) });
        break;
      case 'closed': {
        this.closed = true;
        this.error = e.error;
        const error = e.error ? { name: e.error.name, code: e.error.code, closeCode: e.error.closeCode, message: e.error.message } : undefined;
        this.items.push({ kind: 'closed', code: e.code, reason: e.reason, wasClean: e.wasClean, error, hangup: e.hangup });
        break;
      }
    }
  }

  write(chunks: Buffer[], urgent: boolean, endsMessage: boolean, opcode?: number): void {
    assert.equal(this.closed, false, 'write after closed');
    const frames = decodeFrames(Buffer.concat(chunks));
    assert.equal(frames.length, 1, 'exactly one whole frame per write()');
    const f = frames[0];
    // Frames leaving the core say what they are: the host never decodes bytes to learn it.
    assert.equal(opcode, f.opcode, "the opcode given with the frame is the frame's");
    assert.equal(f.rsv, 0, 'no RSV bits without an extension');
    if (this.role === 'client') {
      // RFC 6455 section 5.3: every client frame is masked with a fresh key.
      assert.equal(f.masked, true, 'a client masks every frame');
      assert.deepEqual(f.mask, this.pendingMasks.shift(), 'the masking key is the one maskSource just returned');
      assert.equal(this.pendingMasks.length, 0, 'one key per frame');
    } else {
      assert.equal(f.masked, false, 'a server never masks (section 5.1)');
    }
    const control = (f.opcode & 8) !== 0;
    if (control) {
      assert.equal(f.fin, true, 'control frames are not fragmented (section 5.5)');
      assert.ok(f.payload.length <= 125, 'control payload at most 125 bytes (section 5.5)');
      assert.equal(endsMessage, false);
      // Pings and pongs may jump the queue; a close goes after queued data (S4).
      assert.equal(urgent, f.opcode !== Op.Close, 'ping/pong urgent, close not');
      if (f.opcode === Op.Close && f.payload.length > 0) {
        assert.ok(f.payload.length >= 2, 'a close payload is empty or has a 2-byte code');
        assert.ok(isValidWireCloseCode(f.payload.readUInt16BE(0)), `close code ${f.payload.readUInt16BE(0)} may be sent`);
        new TextDecoder('utf-8', { fatal: true }).decode(f.payload.subarray(2));
      }
    } else {
      assert.equal(urgent, false, 'data frames are never urgent');
      assert.equal(endsMessage, f.fin, 'endsMessage marks the final frame of a message');
    }
    this.items.push({ kind: 'write', opcode: f.opcode, fin: f.fin, payload: f.payload, urgent, endsMessage, mask: f.mask });
  }

  /** The writes so far. */
  get writes(): Extract<Item, { kind: 'write' }>[] {
    return this.items.filter((i): i is Extract<Item, { kind: 'write' }> => i.kind === 'write');
  }
}

type ConnOpts = Partial<Omit<ConnectionOptions, 'role' | 'maskSource'>>;

function open(role: Role, opts: ConnOpts = {}): { conn: Connection; rec: Recorder } {
  const rec = new Recorder(role);
  const conn = new Connection(rec, { now: 0, ...opts, role, maskSource: role === 'client' ? rec.maskSource : undefined });
  return { conn, rec };
}

// ------------------------------------------------------------------ summaries

const hex = (b: Uint8Array | string) => (typeof b === 'string' ? utf8(b) : Buffer.from(b)).toString('hex');
const OPNAME: Record<number, string> = { 0: 'cont', 1: 'text', 2: 'binary', 8: 'close', 9: 'ping', 10: 'pong' };

/**
 * A compact, readable form of a timeline, for comparing with an expected list.
 * Streamed fragments are merged into one `stream ...` entry per message, after
 * checking their first/last flags. Failure close frames are summarised by code
 * (their reason is the error message).
 */
function summary(items: Item[]): string[] {
  const out: string[] = [];
  let stream: { at: number; binary: boolean; parts: Buffer[] } | null = null;
  for (const it of items) {
    switch (it.kind) {
      case 'message':
        out.push(it.binary ? `binary ${hex(it.data)}` : `text ${JSON.stringify(it.data.toString('utf8'))}`);
        break;
      case 'fragment':
        if (stream === null) {
          assert.equal(it.first, true, 'the first fragment of a message has first=true');
          stream = { at: out.length, binary: it.binary, parts: [] };
          out.push('(unfinished stream)');
        } else {
          assert.equal(it.first, false, 'only the first fragment has first=true');
          assert.equal(it.binary, stream.binary, 'fragments of a message share its type');
        }
        stream.parts.push(it.data);
        if (it.last) {
          const d = Buffer.concat(stream.parts);
          out[stream.at] = stream.binary ? `stream binary ${hex(d)}` : `stream text ${JSON.stringify(d.toString('utf8'))}`;
          stream = null;
        }
        break;
      case 'ping':
      case 'pong':
        out.push(`${it.kind} ${hex(it.data)}`);
        break;
      case 'write':
        if (it.opcode === Op.Close) out.push(it.payload.length === 0 ? '>close' : `>close ${it.payload.readUInt16BE(0)}`);
        else out.push(`>${OPNAME[it.opcode]}${it.fin ? '' : ' (more)'} ${hex(it.payload)}`);
        break;
      case 'closed':
        out.push(it.wasClean ? `closed ${it.code} clean ${it.hangup} ${JSON.stringify(it.reason)}` : `closed ${it.code} ${it.error?.code ?? 'no-error'} ${it.hangup}`);
        break;
    }
  }
  return out;
}

const text = (s: string) => `text ${JSON.stringify(s)}`;
const binary = (b: Uint8Array) => `binary ${hex(b)}`;
const pingEv = (b: Uint8Array | string = '') => `ping ${hex(b)}`;
const pongEv = (b: Uint8Array | string = '') => `pong ${hex(b)}`;
const wPong = (b: Uint8Array | string = '') => `>pong ${hex(b)}`;
const wPing = (b: Uint8Array | string = '') => `>ping ${hex(b)}`;
const wClose = (code?: number) => (code === undefined ? '>close' : `>close ${code}`);
const closedClean = (code: number, reason = '') => `closed ${code} clean graceful ${JSON.stringify(reason)}`;
/** Failing the connection (section 7.1.7): a close frame with the code, then 'closed' with the error. */
const failed = (code: number, errorCode: string) => [wClose(code), `closed ${code} ${errorCode} graceful`];
/** The peer's close answered (section 5.5.1): our close frame echoing the code, then a clean 'closed'. */
const echoed = (code: number, reason = '') => [wClose(code), closedClean(code, reason)];

// ------------------------------------------------------------------ feeding

interface Run {
  rec: Recorder;
  conn: Connection;
  /** Stream offsets [start, end) of the chunk during which 'closed' was emitted. */
  closedIn: [number, number] | null;
}

/** Feeds `stream` cut at `cuts`, each piece a fresh copy (receive() takes ownership and unmasks in place). */
function run(role: Role, stream: Buffer, cuts: number[], opts: ConnOpts): Run {
  const { conn, rec } = open(role, opts);
  let closedIn: [number, number] | null = null;
  let prev = 0;
  for (const c of [...cuts, stream.length]) {
    conn.receive(Buffer.from(stream.subarray(prev, c)), opts.now ?? 0);
    if (closedIn === null && rec.closed) closedIn = [prev, c];
    prev = c;
  }
  return { rec, conn, closedIn };
}

interface FeedOptions {
  conn?: ConnOpts;
  /**
   * The input must fail the connection, and the 'closed' event must come from
   * the chunk that holds stream bytes [earliest, latest] (fail fast: not
   * before the bad bytes arrived, not after the byte that makes it certain).
   */
  failAt?: [earliest: number, latest: number];
  /** Two-piece splits: 'all' positions (default up to 2 KiB of input), a 'sample', or 'none'. */
  splits?: 'all' | 'sample' | 'none';
  /** Feed one byte per receive() (default up to 300 KiB of input). */
  byteByByte?: boolean;
  /** Extra chunkings with fixed chunk sizes (like Autobahn's "chopsize"). */
  chunkSizes?: number[];
}

function samplePositions(stream: Buffer): number[] {
  const n = stream.length;
  const set = new Set<number>();
  const add = (p: number) => {
    if (p > 0 && p < n) set.add(p);
  };
  for (let i = 0; i < 40; i++) {
    add(i);
    add(n - i);
  }
  try {
    // Around every header; widely around the first few and the last two (the rest are alike).
    const frames = decodeFrames(stream);
    frames.forEach((f, i) => {
      if (i < 3 || i >= frames.length - 2) for (let d = -16; d <= 16; d++) add(f.start + f.headerLength + d);
      else for (const d of [-1, 0, 1]) add(f.start + f.headerLength + d);
    });
  } catch {
    // Not a whole-frame stream (a bad length): the other positions still apply.
  }
  for (let k = 1; k < 64; k++) add(Math.floor((n * k) / 64));
  return [...set].sort((a, b) => a - b);
}

const isWrite = (line: string) => line.startsWith('>');
const writesOf = (items: Item[]) => items.filter((i) => i.kind === 'write');
const eventsOf = (items: Item[]) => items.filter((i) => i.kind !== 'write');

/**
 * Compares a run's timeline with the expected one, which lists writes and
 * events in the order the peer's frames caused them. The connection writes
 * while it parses (a pong leaves at once) and delivers the events of one
 * receive() after parsing it: so the writes must be exactly the expected
 * writes in order, the events exactly the expected events in order, and no
 * write may come later than an event listed after it (an event may only be
 * later than the writes of the same input, never a write later than events).
 */
function assertTimeline(actual: string[], expected: string[], how: string): void {
  assert.deepEqual(actual.filter(isWrite), expected.filter(isWrite), `${how}: writes`);
  assert.deepEqual(actual.filter((l) => !isWrite(l)), expected.filter((l) => !isWrite(l)), `${how}: events`);
  const writesBefore = (lines: string[]) => {
    const out: number[] = [];
    let w = 0;
    for (const l of lines) {
      if (isWrite(l)) w++;
      else out.push(w);
    }
    return out;
  };
  const got = writesBefore(actual);
  const want = writesBefore(expected);
  got.forEach((n, i) => assert.ok(n >= want[i], `${how}: ${want[i] - n} write(s) came after the event '${actual.filter((l) => !isWrite(l))[i]}' that the frames put after them`));
}

/**
 * The helper of this file: feeds `stream` (the peer's bytes) to a fresh
 * Connection whole, split in two at every position, one byte at a time, and
 * in fixed-size chops; checks the whole run against `expected` (see summary())
 * and every other run against the whole run: exactly the same events and
 * the same writes, or (streaming) the same messages. Returns the whole run.
 */
function feedAllWays(role: Role, stream: Buffer, expected: string[], opts: FeedOptions = {}): Run {
  const conn = opts.conn ?? {};
  const streaming = conn.streamMessages === true;
  assert.ok(!(streaming && opts.failAt), 'streamed fragments before a failure depend on the chunking');
  const check = (r: Run, how: string) => {
    if (opts.failAt) {
      assert.ok(r.closedIn, `${how}: the connection did not fail`);
      const [s, e] = r.closedIn;
      const [earliest, latest] = opts.failAt;
      assert.ok(e > earliest, `${how}: failed by the chunk [${s}, ${e}), before the bad byte ${earliest} arrived`);
      assert.ok(s <= latest, `${how}: failed by the chunk [${s}, ${e}), after the decisive byte ${latest}`);
      assert.equal(r.conn.state, 'closed', how);
    }
  };
  const whole = run(role, stream, [], conn);
  assertTimeline(summary(whole.rec.items), expected, `${role}, whole`);
  check(whole, 'whole');
  const chunkings: [string, number[]][] = [];
  const n = stream.length;
  const splits = opts.splits ?? (n <= 2048 ? 'all' : 'sample');
  if (splits === 'all') for (let p = 1; p < n; p++) chunkings.push([`split at ${p}`, [p]]);
  else if (splits === 'sample') for (const p of samplePositions(stream)) chunkings.push([`split at ${p}`, [p]]);
  if (opts.byteByByte ?? n <= 300_000) chunkings.push(['byte by byte', Array.from({ length: Math.max(0, n - 1) }, (_, i) => i + 1)]);
  for (const size of opts.chunkSizes ?? []) {
    const cuts: number[] = [];
    for (let p = size; p < n; p += size) cuts.push(p);
    chunkings.push([`chops of ${size}`, cuts]);
  }
  for (const [how, cuts] of chunkings) {
    const r = run(role, stream, cuts, conn);
    if (streaming) assertTimeline(summary(r.rec.items), expected, `${role}, ${how}`);
    else {
      assert.deepEqual(writesOf(r.rec.items), writesOf(whole.rec.items), `${role}, ${how}: writes`);
      assert.deepEqual(eventsOf(r.rec.items), eventsOf(whole.rec.items), `${role}, ${how}: events`);
      assertTimeline(summary(r.rec.items), expected, `${role}, ${how}`);
    }
    check(r, `${role}, ${how}`);
  }
  return whole;
}

/** Text of exactly `n` UTF-8 bytes, mixing 1- to 4-byte characters so that splits fall inside them. */
function textOfBytes(n: number): string {
  const cycle = ['a', 'é', '€', '𝄞', 'Z', ' '];
  const parts: string[] = [];
  let len = 0;
  for (let i = 0; ; i++) {
    const c = cycle[i % cycle.length];
    const l = Buffer.byteLength(c);
    if (len + l > n) break;
    parts.push(c);
    len += l;
  }
  return parts.join('') + 'x'.repeat(n - len);
}

/** Stream offset of the first byte of each frame's header and payload. */
function layout(stream: Buffer): { start: number; payloadStart: number; payloadLength: number; headerEnd: number }[] {
  return decodeFrames(stream).map((f) => ({ start: f.start, payloadStart: f.start + f.headerLength, payloadLength: f.payload.length, headerEnd: f.start + f.headerLength - 1 }));
}

// =================================================================== tests

describe('Connection: section 1, text and binary messages (Autobahn 1.1.x, 1.2.x)', () => {
  for (const role of ROLES) {
    it(`${role}: lengths 0, 125, 126, 127, 128 in any chunking`, () => {
      for (const n of [0, 125, 126, 127, 128]) {
        const s = textOfBytes(n);
        feedAllWays(role, peerFrame(role, { opcode: Op.Text, payload: s }), [text(s)]);
        const b = testBytes(n, n);
        feedAllWays(role, peerFrame(role, { opcode: Op.Binary, payload: b }), [binary(b)]);
      }
    });

    it(`${role}: lengths 65535 and 65536, sampled splits, byte by byte, chops of 997 (1.1.8)`, () => {
      for (const n of [65535, 65536]) {
        // One byte at a time is slow at this size: once per length, alternating the type.
        const s = textOfBytes(n);
        feedAllWays(role, peerFrame(role, { opcode: Op.Text, payload: s }), [text(s)], { chunkSizes: [997], byteByByte: n === 65536 });
        const b = testBytes(n, n);
        feedAllWays(role, peerFrame(role, { opcode: Op.Binary, payload: b }), [binary(b)], { chunkSizes: [997], byteByByte: n === 65535 });
      }
    });

    it(`${role}: several messages in one stream`, () => {
      const stream = concat(
        peerFrame(role, { opcode: Op.Text, payload: 'Hello' }),
        peerFrame(role, { opcode: Op.Binary, payload: testBytes(3, 1) }),
        peerFrame(role, { opcode: Op.Text }),
        peerFrame(role, { opcode: Op.Binary }),
      );
      feedAllWays(role, stream, [text('Hello'), binary(testBytes(3, 1)), text(''), binary(Buffer.alloc(0))]);
    });
  }
});

describe('Connection: section 2, pings and pongs (Autobahn 2.x)', () => {
  for (const role of ROLES) {
    it(`${role}: a ping with 0..125 bytes is answered at once by a pong with the same payload (section 5.5.2)`, () => {
      for (let n = 0; n <= 125; n++) {
        const p = testBytes(n, 1000 + n);
        // Every length whole and byte by byte; every split position for a spread of lengths (2.6 sends 125 in 1-byte chops).
        const splits = n <= 6 || n % 17 === 0 || n >= 123 ? 'all' : 'none';
        feedAllWays(role, peerFrame(role, { opcode: Op.Ping, payload: p }), [wPong(p), pingEv(p)], { splits });
      }
    });

    it(`${role}: a ping of 126 bytes fails the connection with 1002 (2.5)`, () => {
      const f = peerFrame(role, { opcode: Op.Ping, payload: testBytes(126, 1) });
      feedAllWays(role, f, failed(1002, 'ERR_CONTROL_TOO_LONG'), { failAt: [1, layout(f)[0].headerEnd] });
    });

    it(`${role}: unsolicited pongs are reported and not answered (2.7, 2.8, 2.9)`, () => {
      feedAllWays(role, peerFrame(role, { opcode: Op.Pong }), [pongEv()]);
      feedAllWays(role, peerFrame(role, { opcode: Op.Pong, payload: 'unsolicited pong payload' }), [pongEv('unsolicited pong payload')]);
      const stream = concat(peerFrame(role, { opcode: Op.Pong, payload: 'unsolicited' }), peerFrame(role, { opcode: Op.Ping, payload: 'ping payload' }));
      feedAllWays(role, stream, [pongEv('unsolicited'), wPong('ping payload'), pingEv('ping payload')]);
    });

    it(`${role}: 10 pings in a row are all answered, in order (2.10, 2.11)`, () => {
      const payloads = Array.from({ length: 10 }, (_, i) => `payload-${i}`);
      const stream = concat(...payloads.map((p) => peerFrame(role, { opcode: Op.Ping, payload: p })));
      feedAllWays(role, stream, payloads.flatMap((p) => [wPong(p), pingEv(p)]));
    });
  }
});

describe('Connection: autoPong and a close without a status code', () => {
  for (const role of ROLES) {
    it(`${role}: autoPong false reports pings and answers none; a pong sent by hand goes out`, () => {
      const { conn, rec } = open(role, { autoPong: false });
      conn.receive(peerFrame(role, { opcode: Op.Ping, payload: 'are you there' }), 0);
      assert.equal(rec.writes.length, 0);
      assert.deepEqual(rec.items, [{ kind: 'ping', data: utf8('are you there') }]);
      conn.pong(utf8('are you there'));
      const [answer, ...more] = rec.writes;
      assert.equal(more.length, 0);
      assert.equal(answer.opcode, Op.Pong);
      assert.deepEqual(answer.payload, utf8('are you there'));
    });

    it(`${role}: close(null) sends a close frame with an empty body; the peer's echo ends the connection cleanly with 1005`, () => {
      const { conn, rec } = open(role);
      conn.close(null, '', 0);
      assert.equal(conn.state, 'closing');
      assert.equal(rec.writes.length, 1);
      assert.equal(rec.writes[0].opcode, Op.Close);
      assert.equal(rec.writes[0].payload.length, 0);
      conn.receive(peerFrame(role, { opcode: Op.Close }), 0);
      const closed = rec.items.find((i) => i.kind === 'closed');
      assert.deepEqual(closed && closed.kind === 'closed' ? [closed.code, closed.wasClean] : null, [1005, true]);
    });
  }
});

describe("Connection: closeFrames 'ws' (sockeye/ws writes close frames as ws does)", () => {
  for (const role of ROLES) {
    it(`${role}: the reply to the peer's close repeats its code and its reason; by default the code only`, () => {
      for (const [closeFrames, reason] of [['ws', 'see you'], [undefined, '']] as const) {
        const { conn, rec } = open(role, { closeFrames });
        conn.receive(peerFrame(role, { opcode: Op.Close, payload: closePayload(4001, 'see you') }), 0);
        const [reply] = rec.writes;
        assert.equal(reply.opcode, Op.Close);
        assert.equal(reply.payload.readUInt16BE(0), 4001);
        assert.equal(reply.payload.subarray(2).toString(), reason, `closeFrames ${closeFrames}`);
      }
    });

    it(`${role}: a failure's close frame has the code only; by default it says what the fault was`, () => {
      for (const closeFrames of ['ws', undefined] as const) {
        const { conn, rec } = open(role, { closeFrames });
        conn.receive(peerFrame(role, { opcode: 0x5 }), 0);
        const [frame] = rec.writes;
        assert.equal(frame.opcode, Op.Close);
        assert.equal(frame.payload.readUInt16BE(0), 1002);
        if (closeFrames === 'ws') assert.equal(frame.payload.length, 2);
        else assert.match(frame.payload.subarray(2).toString(), /opcode/);
      }
    });
  }
});

describe('Connection: section 3, reserved bits (Autobahn 3.x)', () => {
  for (const role of ROLES) {
    it(`${role}: any RSV bit without an extension fails with 1002, and nothing after the bad frame is processed`, () => {
      for (const rsv of [RSV1, RSV2, RSV1 | RSV2, RSV3, RSV1 | RSV3, RSV2 | RSV3, RSV1 | RSV2 | RSV3]) {
        for (const spec of [{ opcode: Op.Text, payload: 'small' }, { opcode: Op.Binary, payload: testBytes(8, 1) }, { opcode: Op.Ping, payload: 'p' }, { opcode: Op.Close, payload: closePayload(1000) }] as FrameSpec[]) {
          const before = peerFrame(role, { opcode: Op.Text, payload: 'Hello' });
          const bad = peerFrame(role, { ...spec, rsv });
          // 3.2: a valid frame, the bad one, then a valid text and a ping in the same chunk: the text is not delivered, the ping not answered.
          const after = concat(peerFrame(role, { opcode: Op.Text, payload: 'after' }), peerFrame(role, { opcode: Op.Ping, payload: 'after' }));
          const stream = concat(before, bad, after);
          feedAllWays(role, stream, [text('Hello'), ...failed(1002, 'ERR_RESERVED_BITS')], { failAt: [before.length, before.length] });
        }
      }
    });
  }
});

describe('Connection: section 4, reserved opcodes (Autobahn 4.x)', () => {
  for (const role of ROLES) {
    it(`${role}: opcodes 3-7 and 0xB-0xF fail with 1002, with and without payload, after a valid frame that is delivered`, () => {
      for (const opcode of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
        for (const payload of ['', 'reserved opcode payload']) {
          const before = peerFrame(role, { opcode: Op.Text, payload: 'Hello' });
          const stream = concat(before, peerFrame(role, { opcode, payload }), peerFrame(role, { opcode: Op.Ping, payload: 'after' }));
          feedAllWays(role, stream, [text('Hello'), ...failed(1002, 'ERR_RESERVED_OPCODE')], { failAt: [before.length, before.length] });
        }
      }
    });
  }
});

describe('Connection: section 5, fragmentation (Autobahn 5.x)', () => {
  for (const role of ROLES) {
    const pf = (spec: FrameSpec) => peerFrame(role, spec);

    it(`${role}: text and binary in 2 and in many fragments, empty ones included (5.3-5.5, 6.1.2, 6.1.3)`, () => {
      feedAllWays(role, concat(pf({ opcode: Op.Text, fin: false, payload: 'fragment1' }), pf({ opcode: Op.Continuation, payload: 'fragment2' })), [text('fragment1fragment2')]);
      const b1 = testBytes(7, 1);
      const b2 = testBytes(130, 2);
      feedAllWays(role, concat(pf({ opcode: Op.Binary, fin: false, payload: b1 }), pf({ opcode: Op.Continuation, payload: b2 })), [binary(concat(b1, b2))]);
      const parts = ['', 'a', 'bc', '', 'def€', '', 'g'];
      const frames = parts.map((p, i) => pf({ opcode: i === 0 ? Op.Text : Op.Continuation, fin: i === parts.length - 1, payload: p }));
      feedAllWays(role, concat(...frames), [text(parts.join(''))]);
      feedAllWays(role, concat(pf({ opcode: Op.Text, fin: false }), pf({ opcode: Op.Continuation, fin: false }), pf({ opcode: Op.Continuation })), [text('')]);
      feedAllWays(role, concat(pf({ opcode: Op.Text, fin: false }), pf({ opcode: Op.Continuation, fin: false, payload: 'middle' }), pf({ opcode: Op.Continuation })), [text('middle')]);
    });

    it(`${role}: pings between fragments are answered at once, before the message completes (5.6-5.8, 5.19, 5.20)`, () => {
      const stream = concat(
        pf({ opcode: Op.Text, fin: false, payload: 'fragment1' }),
        pf({ opcode: Op.Ping, payload: 'pongme 1!' }),
        pf({ opcode: Op.Continuation, fin: false, payload: 'fragment2' }),
        pf({ opcode: Op.Continuation, fin: false, payload: 'fragment3' }),
        pf({ opcode: Op.Ping, payload: 'pongme 2!' }),
        pf({ opcode: Op.Pong, payload: 'unsolicited' }),
        pf({ opcode: Op.Continuation, fin: false, payload: 'fragment4' }),
        pf({ opcode: Op.Continuation, fin: true, payload: 'fragment5' }),
      );
      feedAllWays(role, stream, [wPong('pongme 1!'), pingEv('pongme 1!'), wPong('pongme 2!'), pingEv('pongme 2!'), pongEv('unsolicited'), text('fragment1fragment2fragment3fragment4fragment5')]);
    });

    it(`${role}: a fragmented ping or pong fails with 1002 (5.1, 5.2)`, () => {
      for (const opcode of [Op.Ping, Op.Pong]) {
        const stream = concat(pf({ opcode, fin: false, payload: 'ping' }), pf({ opcode: Op.Continuation, payload: 'pong' }));
        feedAllWays(role, stream, failed(1002, 'ERR_FRAGMENTED_CONTROL'), { failAt: [0, 0] });
      }
    });

    it(`${role}: a continuation with no message to continue fails with 1002, fin=1 or fin=0 (5.9-5.14, 5.17)`, () => {
      for (const fin of [true, false]) {
        const stream = concat(pf({ opcode: Op.Continuation, fin, payload: 'non-continuation payload' }), pf({ opcode: Op.Text, payload: 'Hello, world!' }));
        feedAllWays(role, stream, failed(1002, 'ERR_UNEXPECTED_CONTINUATION'), { failAt: [0, 0] });
      }
      // 5.17: continuation fin=1, then a text fragment and its continuation.
      const stream = concat(pf({ opcode: Op.Continuation, payload: 'fragment1' }), pf({ opcode: Op.Text, fin: false, payload: 'fragment2' }), pf({ opcode: Op.Continuation, payload: 'fragment3' }));
      feedAllWays(role, stream, failed(1002, 'ERR_UNEXPECTED_CONTINUATION'), { failAt: [0, 0] });
      // After a complete message the next continuation has nothing to continue either.
      const first = pf({ opcode: Op.Text, payload: 'done' });
      feedAllWays(role, concat(first, pf({ opcode: Op.Continuation, payload: 'x' })), [text('done'), ...failed(1002, 'ERR_UNEXPECTED_CONTINUATION')], { failAt: [first.length, first.length] });
    });

    it(`${role}: a new data frame inside a fragmented message fails with 1002 (5.15, 5.16, 5.18)`, () => {
      // 5.18: text fin=0 then text fin=1.
      const f1 = pf({ opcode: Op.Text, fin: false, payload: 'fragment1' });
      feedAllWays(role, concat(f1, pf({ opcode: Op.Text, payload: 'fragment2' })), failed(1002, 'ERR_EXPECTED_CONTINUATION'), { failAt: [f1.length, f1.length] });
      // 5.15: text, cont, then a new text fin=0, then cont fin=1.
      const head = concat(pf({ opcode: Op.Text, fin: false, payload: 'fragment1' }), pf({ opcode: Op.Continuation, fin: false, payload: 'fragment2' }));
      const stream = concat(head, pf({ opcode: Op.Text, fin: false, payload: 'fragment3' }), pf({ opcode: Op.Continuation, payload: 'fragment4' }));
      feedAllWays(role, stream, failed(1002, 'ERR_EXPECTED_CONTINUATION'), { failAt: [head.length, head.length] });
      // A binary frame inside a text message.
      feedAllWays(role, concat(f1, pf({ opcode: Op.Binary, payload: 'b' })), failed(1002, 'ERR_EXPECTED_CONTINUATION'), { failAt: [f1.length, f1.length] });
      // 5.16: (cont fin=0, text fin=0, cont fin=1) twice: fails on the first frame.
      const group = concat(pf({ opcode: Op.Continuation, fin: false, payload: 'fragment1' }), pf({ opcode: Op.Text, fin: false, payload: 'fragment2' }), pf({ opcode: Op.Continuation, payload: 'fragment3' }));
      feedAllWays(role, concat(group, group), failed(1002, 'ERR_UNEXPECTED_CONTINUATION'), { failAt: [0, 0] });
    });
  }
});

// ---------------------------------------------------------------- section 6

const KOSME = 'ce ba e1 bd b9 cf 83 ce bc ce b5';
const fromHex = (h: string) => Buffer.from(h.replace(/\s+/g, ''), 'hex');

const VALID_UTF8 = [
  '',
  'Hello-µ@ßöäüàá-UTF-8!!',
  'κόσμε',
  // First and last code points of each sequence length, and around the surrogates (6.5-6.7, 6.11).
  '\u0000\u007f\u0080\u07ff\u0800\uffff\u{10000}\u{10ffff}',
  '\ud7ff\ue000\ufffd\ufeff\ufffe\u{10fffe}',
];

/** Invalid UTF-8, with the index of the first byte after which no valid string can follow ('end': only the end is wrong). */
const INVALID_UTF8: { name: string; bytes: Buffer; bad: number | 'end' }[] = [
  { name: '6.4.1: κόσμε + F4 90 80 80 (U+110000) + "edited"', bytes: fromHex(KOSME + 'f4 90 80 80 65 64 69 74 65 64'), bad: 12 },
  { name: 'κόσμε + ED A0 80 (surrogate U+D800) + "edited"', bytes: fromHex(KOSME + 'ed a0 80 65 64 69 74 65 64'), bad: 12 },
  { name: 'surrogate U+DFFF', bytes: fromHex('ed bf bf'), bad: 1 },
  { name: 'lone continuation byte first', bytes: fromHex('80 61'), bad: 0 },
  { name: 'continuation byte inside ASCII', bytes: fromHex('61 62 bf 63 64'), bad: 2 },
  { name: 'overlong "/" in 2 bytes', bytes: fromHex('c0 af'), bad: 0 },
  { name: 'overlong "/" in 3 bytes', bytes: fromHex('e0 80 af'), bad: 1 },
  { name: 'overlong "/" in 4 bytes', bytes: fromHex('f0 80 80 af'), bad: 1 },
  { name: '5-byte sequence', bytes: fromHex('f8 88 80 80 80'), bad: 0 },
  { name: 'FE', bytes: fromHex('61 fe'), bad: 1 },
  { name: 'FF', bytes: fromHex('ff'), bad: 0 },
  { name: 'F5 (beyond U+10FFFF)', bytes: fromHex('f5 80 80 80'), bad: 0 },
  { name: '2-byte lead then ASCII', bytes: fromHex('c2 41 42'), bad: 1 },
  { name: '3-byte sequence cut by ASCII', bytes: fromHex('e1 bd 41'), bad: 2 },
  { name: 'κόσμε cut inside its last character (6.3.x)', bytes: fromHex('ce ba e1 bd b9 cf 83 ce bc ce'), bad: 'end' },
  { name: 'truncated 4-byte sequence at the end', bytes: fromHex('48 69 f0 9f 98'), bad: 'end' },
  { name: 'truncated 3-byte sequence', bytes: fromHex('e2 82'), bad: 'end' },
  { name: 'lone 2-byte lead', bytes: fromHex('c3'), bad: 'end' },
];

/** Ways to send a message payload: one frame; two frames cut at every byte (0 and n give an empty first/last frame); one frame per byte. */
function fragmentations(payload: Buffer): Buffer[][] {
  const out: Buffer[][] = [[payload]];
  for (let k = 0; k <= payload.length; k++) out.push([payload.subarray(0, k), payload.subarray(k)]);
  if (payload.length > 1) out.push(Array.from(payload, (b) => Buffer.from([b])));
  return out;
}

function messageFrames(role: Role, opcode: number, parts: Buffer[]): Buffer {
  return concat(...parts.map((p, i) => peerFrame(role, { opcode: i === 0 ? opcode : Op.Continuation, fin: i === parts.length - 1, payload: p })));
}

/** Stream offset at which a text message laid out as `stream` becomes certainly invalid. */
function streamFailIndex(stream: Buffer, bad: number | 'end'): number {
  const frames = layout(stream);
  if (bad === 'end') {
    const last = frames[frames.length - 1];
    // The last payload byte, or, for an empty final frame, the end of its header.
    return last.payloadLength > 0 ? last.payloadStart + last.payloadLength - 1 : last.headerEnd;
  }
  let seen = 0;
  for (const f of frames) {
    if (bad < seen + f.payloadLength) return f.payloadStart + (bad - seen);
    seen += f.payloadLength;
  }
  throw new Error('bad index beyond the payload');
}

describe('Connection: section 6, UTF-8 (Autobahn 6.x)', () => {
  for (const role of ROLES) {
    it(`${role}: valid text is delivered, in one frame, in two frames cut at every byte, in 1-byte frames (6.1, 6.2)`, () => {
      for (const s of VALID_UTF8) {
        for (const parts of fragmentations(utf8(s))) {
          feedAllWays(role, messageFrames(role, Op.Text, parts), [text(s)], { splits: parts.length <= 2 ? 'all' : 'none' });
        }
      }
    });

    it(`${role}: invalid text fails with 1007 as soon as the bad byte arrives, in one frame and across fragments (6.3, 6.4, 6.x)`, () => {
      for (const v of INVALID_UTF8) {
        assert.throws(() => new TextDecoder('utf-8', { fatal: true }).decode(v.bytes), TypeError, `${v.name} is really invalid`);
        for (const parts of fragmentations(v.bytes)) {
          const stream = messageFrames(role, Op.Text, parts);
          const at = streamFailIndex(stream, v.bad);
          // Fail fast (6.4.x): the close comes from the very piece that holds the bad byte, before the frame or message ends.
          feedAllWays(role, stream, failed(1007, 'ERR_INVALID_UTF8'), { failAt: [at, at], splits: parts.length === 1 ? 'all' : 'none' });
        }
      }
    });

    it(`${role}: 6.4.1-6.4.4 exactly: three pieces, the second holding the bad byte, fail on the second piece`, () => {
      const p1 = fromHex(KOSME);
      const p2 = fromHex('f4 90 80 80');
      const p3 = fromHex('65 64 69 74 65 64');
      // 6.4.1: three frames, fed frame by frame.
      const frames = [peerFrame(role, { opcode: Op.Text, fin: false, payload: p1 }), peerFrame(role, { opcode: Op.Continuation, fin: false, payload: p2 }), peerFrame(role, { opcode: Op.Continuation, payload: p3 })];
      const { conn, rec } = open(role);
      conn.receive(Buffer.from(frames[0]), 0);
      assert.deepEqual(summary(rec.items), [], 'the valid first piece is accepted');
      conn.receive(Buffer.from(frames[1]), 0);
      assert.deepEqual(summary(rec.items), failed(1007, 'ERR_INVALID_UTF8'), 'the second piece is refused at once');
      conn.receive(Buffer.from(frames[2]), 0);
      assert.equal(rec.items.length, 2, 'the third piece changes nothing');
      // 6.4.3: one frame sent in three chops.
      const one = peerFrame(role, { opcode: Op.Text, payload: concat(p1, p2, p3) });
      const h = layout(one)[0].payloadStart;
      const b = open(role);
      b.conn.receive(Buffer.from(one.subarray(0, h + p1.length)), 0);
      assert.deepEqual(summary(b.rec.items), []);
      b.conn.receive(Buffer.from(one.subarray(h + p1.length, h + p1.length + p2.length)), 0);
      assert.deepEqual(summary(b.rec.items), failed(1007, 'ERR_INVALID_UTF8'), 'refused before the frame ends');
      assert.ok(b.rec.error instanceof ProtocolError);
      // docs/api.md ("Errors"): invalid UTF-8 is an InvalidUtf8Error (a ProtocolError too), so that
      // `instanceof InvalidUtf8Error` matches.
      assert.ok(b.rec.error instanceof InvalidUtf8Error, `an InvalidUtf8Error, not ${b.rec.error?.constructor.name}`);
      assert.equal(b.rec.error.closeCode, 1007);
    });

    it(`${role}: binary data is never checked for UTF-8`, () => {
      for (const v of INVALID_UTF8) feedAllWays(role, peerFrame(role, { opcode: Op.Binary, payload: v.bytes }), [binary(v.bytes)], { splits: 'none' });
    });

    it(`${role}: the validator restarts with each message`, () => {
      // A message that ends cleanly after multi-byte text, then one that starts with a character.
      const stream = concat(messageFrames(role, Op.Text, [utf8('κό'), utf8('σμε')]), peerFrame(role, { opcode: Op.Text, payload: '€' }));
      feedAllWays(role, stream, [text('κόσμε'), text('€')]);
    });
  }
});

// ---------------------------------------------------------------- section 7

describe('Connection: section 7, closing (Autobahn 7.x)', () => {
  for (const role of ROLES) {
    const pf = (spec: FrameSpec) => peerFrame(role, spec);
    const close = (code?: number, reason: string | Buffer = '') => pf({ opcode: Op.Close, payload: code === undefined ? '' : closePayload(code, reason) });

    it(`${role}: a message then a close: the message is delivered and the close answered (7.1.1)`, () => {
      feedAllWays(role, concat(pf({ opcode: Op.Text, payload: 'Hello World!' }), close(1000)), [text('Hello World!'), ...echoed(1000)]);
    });

    it(`${role}: everything after the peer's close is ignored: close, ping, text, a second close (7.1.2-7.1.5)`, () => {
      feedAllWays(role, concat(close(1000), close(1000)), echoed(1000));
      feedAllWays(role, concat(close(1000), pf({ opcode: Op.Ping, payload: 'Hello World!' })), echoed(1000));
      feedAllWays(role, concat(close(1000), pf({ opcode: Op.Text, payload: 'Hello World!' })), echoed(1000));
      // 7.1.5: a fragmented message interrupted by the close is never delivered.
      feedAllWays(role, concat(pf({ opcode: Op.Text, fin: false, payload: 'fragment1' }), close(1000), pf({ opcode: Op.Continuation, payload: 'fragment2' })), echoed(1000));
      // Even invalid frames after the close do not change the outcome.
      feedAllWays(role, concat(close(1000), pf({ opcode: 5 }), pf({ opcode: Op.Text, rsv: RSV1 })), echoed(1000));
      // And later chunks are ignored too.
      const { conn, rec } = open(role);
      conn.receive(close(1000), 0);
      conn.receive(pf({ opcode: Op.Ping, payload: 'late' }), 1);
      conn.receive(pf({ opcode: Op.Text, payload: 'late' }), 2);
      assert.deepEqual(summary(rec.items), echoed(1000));
    });

    it(`${role}: a big message, a close, a ping: message delivered, close answered, no pong (7.1.6)`, () => {
      // Autobahn sends 256 KiB; 100 000 bytes takes the same path (64-bit length, many reads) in less time.
      const big = textOfBytes(100_000);
      const r = feedAllWays(role, concat(pf({ opcode: Op.Text, payload: big }), close(1000), pf({ opcode: Op.Ping, payload: 'Hello World!' })), [text(big), ...echoed(1000)], { splits: 'sample', byteByByte: false, chunkSizes: [997, 65536] });
      assert.equal(r.conn.state, 'closed');
    });

    it(`${role}: an empty close is answered by an empty close and reported as 1005 (7.3.1, section 7.1.5)`, () => {
      feedAllWays(role, close(), [wClose(), closedClean(1005)]);
    });

    it(`${role}: a 1-byte close payload fails with 1002 (7.3.2)`, () => {
      const f = pf({ opcode: Op.Close, payload: Buffer.from([0x03]) });
      feedAllWays(role, f, failed(1002, 'ERR_BAD_CLOSE_PAYLOAD'), { failAt: [f.length - 1, f.length - 1] });
    });

    it(`${role}: a close with code, with code and reason, with a 123-byte reason: code echoed, reason reported (7.3.3-7.3.5)`, () => {
      feedAllWays(role, close(1000), echoed(1000));
      const r = feedAllWays(role, close(1000, 'Hello World!'), echoed(1000, 'Hello World!'));
      // Section 5.5.1: the answer "typically echos the status code it received".
      assert.equal(r.rec.writes[0].payload.readUInt16BE(0), 1000);
      const reason123 = textOfBytes(123);
      feedAllWays(role, close(1000, reason123), echoed(1000, reason123));
    });

    it(`${role}: a close with a 124-byte reason (126-byte payload) fails with 1002 (7.3.6)`, () => {
      const f = close(1000, 'x'.repeat(124));
      feedAllWays(role, f, failed(1002, 'ERR_CONTROL_TOO_LONG'), { failAt: [1, layout(f)[0].headerEnd] });
    });

    it(`${role}: a close reason that is not UTF-8 fails with 1007 (7.5.1, section 8.1)`, () => {
      for (const reason of [fromHex('ce ba e1 bd b9 cf 83 ce bc ce b5 ed a0 80 65 64 69 74 65 64'), fromHex('c3'), fromHex('ff')]) {
        const f = close(1000, reason);
        feedAllWays(role, f, failed(1007, 'ERR_INVALID_UTF8'), { failAt: [f.length - 1, f.length - 1] });
      }
    });

    it(`${role}: valid close codes are accepted and echoed (7.7.x)`, () => {
      for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]) {
        feedAllWays(role, close(code), echoed(code), { splits: 'none' });
        feedAllWays(role, close(code, 'reason'), echoed(code, 'reason'), { splits: 'none' });
      }
    });

    it(`${role}: invalid close codes fail with 1002 (7.9.x, 7.13.x)`, () => {
      for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
        const f = close(code);
        feedAllWays(role, f, failed(1002, 'ERR_BAD_CLOSE_CODE'), { failAt: [f.length - 1, f.length - 1], splits: 'none' });
      }
    });

    it(`${role}: a close we start, then the peer's close: clean, nothing more written (section 7.1.2)`, () => {
      const { conn, rec } = open(role);
      conn.close(1000, 'bye', 0);
      assert.equal(conn.state, 'closing');
      assert.equal(rec.writes.length, 1);
      assert.deepEqual(decodeClosePayload(rec.writes[0].payload), { code: 1000, reason: 'bye' });
      conn.receive(close(1000, 'ok'), 10);
      assert.equal(conn.state, 'closed');
      assert.deepEqual(summary(rec.items), [wClose(1000), closedClean(1000, 'ok')]);
      // The peer may answer with another code; that is what is reported.
      const b = open(role);
      b.conn.close(4001, '', 0);
      b.conn.receive(close(1001), 5);
      assert.deepEqual(summary(b.rec.items), [wClose(4001), closedClean(1001)]);
    });

    it(`${role}: while closing, data still arrives, a ping gets no pong, a bad frame ends it without a second close`, () => {
      const { conn, rec } = open(role);
      conn.close(1000, '', 0);
      // Section 5.5.1: after sending close we send no more data; the peer may still send until its own close.
      conn.receive(concat(pf({ opcode: Op.Text, payload: 'late data' }), pf({ opcode: Op.Ping, payload: 'no pong' })), 1);
      assert.deepEqual(summary(rec.items), [wClose(1000), text('late data'), pingEv('no pong')]);
      conn.receive(pf({ opcode: 6 }), 2);
      assert.deepEqual(summary(rec.items).slice(3), ['closed 1002 ERR_RESERVED_OPCODE graceful']);
    });

    it(`${role}: no close from the peer within closeTimeoutMs: tick() ends with 1006 and hangup 'abort'`, () => {
      const { conn, rec } = open(role, { closeTimeoutMs: 2000 });
      conn.close(1000, '', 100);
      assert.equal(conn.nextDeadline(), 2100);
      assert.equal(conn.tick(2099), 2100);
      assert.deepEqual(summary(rec.items), [wClose(1000)]);
      assert.equal(conn.tick(2100), Infinity);
      assert.deepEqual(summary(rec.items), [wClose(1000), 'closed 1006 ERR_CLOSE_TIMEOUT abort']);
      assert.ok(rec.error instanceof TimeoutError);
      assert.equal(conn.state, 'closed');
      assert.equal(conn.nextDeadline(), Infinity);
    });

    it(`${role}: close() validates its code and reason, and a second close() does nothing`, () => {
      const { conn, rec } = open(role);
      for (const code of [1005, 1006, 1015, 999, 5000, 1000.5]) assert.throws(() => conn.close(code), InvalidArgumentError, String(code));
      assert.throws(() => conn.close(1000, 'x'.repeat(124)), (e: unknown) => e instanceof InvalidArgumentError && e.code === 'ERR_CLOSE_REASON_TOO_LONG');
      assert.equal(conn.state, 'open');
      assert.equal(rec.writes.length, 0);
      conn.close(1000, 'é'.repeat(61) + 'x'); // 123 bytes
      conn.close(1001, 'again');
      assert.deepEqual(summary(rec.items), [wClose(1000)]);
    });

    it(`${role}: send(), sendFragment(), ping(), pong() after close throw InvalidStateError naming the state`, () => {
      const { conn } = open(role);
      conn.close(1000);
      const named = (state: string) => (e: unknown) => e instanceof InvalidStateError && e.state === state && e.message.includes(state) && e.code === 'ERR_INVALID_STATE';
      assert.throws(() => conn.send(Buffer.from('x'), false), named('closing'));
      assert.throws(() => conn.sendFragment(Buffer.from('x'), true, false), named('closing'));
      assert.throws(() => conn.ping(), named('closing'));
      assert.throws(() => conn.pong(), named('closing'));
      conn.receive(close(1000), 0);
      assert.throws(() => conn.send(Buffer.from('x'), true), named('closed'));
      assert.throws(() => conn.ping(), named('closed'));
    });

    it(`${role}: the transport ending first reports 1006 with hangup 'abort', and input after that is ignored`, () => {
      const { conn, rec } = open(role);
      conn.transportClosed(new Error('ECONNRESET'));
      assert.deepEqual(summary(rec.items), ['closed 1006 ERR_CONNECTION_LOST abort']);
      assert.ok(rec.error instanceof TransportError);
      conn.receive(pf({ opcode: Op.Text, payload: 'late' }), 0);
      conn.transportClosed();
      assert.equal(rec.items.length, 1);
    });
  }

  it('encodeClosePayload / decodeClosePayload round-trip and refuse what may not be on the wire', () => {
    assert.deepEqual(encodeClosePayload(1000, 'bye'), closePayload(1000, 'bye'));
    assert.deepEqual(decodeClosePayload(closePayload(4999, 'κόσμε')), { code: 4999, reason: 'κόσμε' });
    assert.deepEqual(decodeClosePayload(Buffer.alloc(0)), { code: 1005, reason: '' });
    assert.throws(() => encodeClosePayload(1005, ''), InvalidArgumentError);
    assert.throws(() => decodeClosePayload(closePayload(1006)), ProtocolError);
    // A close reason that is not UTF-8 (RFC 6455 section 5.5.1): 1007, as an InvalidUtf8Error.
    assert.throws(() => decodeClosePayload(Buffer.from([0x03, 0xe8, 0x61, 0xff])), (err: unknown) => err instanceof InvalidUtf8Error && err.closeCode === 1007);
  });
});

// ---------------------------------------------------------------- section 9 and limits

describe('Connection: section 9, large messages (Autobahn 9.x)', () => {
  /** Feeds a big stream in 64 KiB chunks (like socket reads) and checks the single message. */
  function bigOnce(role: Role, stream: Buffer, binaryMsg: boolean, payload: Buffer, chunkSizes: number[]): void {
    for (const chunk of chunkSizes) {
      const cuts: number[] = [];
      for (let p = chunk; p < stream.length; p += chunk) cuts.push(p);
      const r = run(role, stream, cuts, {});
      assert.equal(r.rec.items.length, 1, `one event (chunks of ${chunk}): ${summary(r.rec.items).map((s) => s.slice(0, 80)).join(' | ')}`);
      const m = r.rec.items[0];
      assert.equal(m.kind, 'message');
      assert.equal(m.binary, binaryMsg);
      assert.ok(m.data.equals(payload), `payload intact (chunks of ${chunk})`);
    }
  }

  it('16 MiB text in one frame to a server, and 16 MiB binary in one frame to a client (9.1.6, 9.2.6: the default limit)', () => {
    const t = Buffer.alloc(16 << 20, '*');
    bigOnce('server', peerFrame('server', { opcode: Op.Text, payload: t }), false, t, [t.length + 14, 65536]);
    const b = testBytes(16 << 20, 9);
    bigOnce('client', peerFrame('client', { opcode: Op.Binary, payload: b }), true, b, [1_000_003]);
  });

  /** `b` cut into pieces whose sizes cycle through `sizes` (the last piece is what is left). */
  function cut(b: Buffer, sizes: number[]): Buffer[] {
    const parts: Buffer[] = [];
    for (let p = 0, i = 0; p < b.length; i++) {
      const n = Math.min(sizes[i % sizes.length], b.length - p);
      parts.push(b.subarray(p, p + n));
      p += n;
    }
    return parts;
  }

  it('16 MiB binary (the default maxMessageBytes) in fragments of different sizes, none under MIN_FRAME_CHARGE (9.4.x)', () => {
    const b = testBytes(16 << 20, 10);
    const parts = cut(b, [MIN_FRAME_CHARGE, 997, 65536, 1 << 20, 4096, 131072]);
    assert.ok(parts.every((p) => p.length >= MIN_FRAME_CHARGE));
    bigOnce('server', messageFrames('server', Op.Binary, parts), true, b, [65536]);
  });

  it('a big binary message with 1-byte and empty fragments among large ones passes while its charge fits maxMessageBytes; at 16 MiB of real bytes it is refused with 1008', () => {
    const sizes = [1, 997, 65536, 1 << 20, 4096, 0, 131072];
    const full = testBytes(16 << 20, 10);
    const atLimit = cut(full, sizes);
    // What the frames under MIN_FRAME_CHARGE count for beyond their size.
    const extra = atLimit.reduce((n, p) => n + Math.max(0, MIN_FRAME_CHARGE - p.length), 0);
    assert.ok(extra > 0);
    const r = run('server', messageFrames('server', Op.Binary, atLimit), [], {});
    assert.deepEqual(summary(r.rec.items), failed(1008, 'ERR_LIMIT_MAX_MESSAGE_BYTES'));
    assert.ok(r.rec.error instanceof LimitExceededError && r.rec.error.closeCode === 1008);
    // The same mix, shorter by that extra (the last frame shrinks), is charged exactly maxMessageBytes.
    const b = full.subarray(0, full.length - extra);
    const parts = cut(b, sizes);
    assert.equal(parts.reduce((n, p) => n + Math.max(p.length, MIN_FRAME_CHARGE), 0), 16 << 20);
    bigOnce('server', messageFrames('server', Op.Binary, parts), true, b, [65536]);
  });

  it('4 MiB text in 65536 fragments of 64 bytes passes the default limits (9.3.1)', () => {
    const t = Buffer.from(textOfBytes(4 << 20));
    const parts: Buffer[] = [];
    for (let p = 0; p < t.length; p += 64) parts.push(t.subarray(p, p + 64));
    assert.equal(parts.length, 65536);
    bigOnce('client', messageFrames('client', Op.Text, parts), false, t, [t.length * 2, 65536]);
  });

  for (const role of ROLES) {
    it(`${role}: 4 MiB text and 4 MiB binary in 64-byte fragments plus a few empty and 1-byte frames pass the default limits (9.3.1, 9.4.1)`, () => {
      const t = Buffer.from(textOfBytes(4 << 20));
      const b = testBytes(4 << 20, 11);
      for (const [binaryMsg, payload] of [
        [false, t],
        [true, b],
      ] as const) {
        const parts: Buffer[] = [];
        for (let p = 0; p < payload.length; p += 64) parts.push(payload.subarray(p, p + 64));
        // 65,536 fragments of 64 bytes, then five more: more frames than any fixed count of 65,536 allowed.
        const last = payload.subarray(payload.length - 1);
        parts[parts.length - 1] = payload.subarray(payload.length - 64, payload.length - 1);
        parts.push(Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0), last);
        assert.equal(parts.length, 65536 + 5);
        bigOnce(role, messageFrames(role, binaryMsg ? Op.Binary : Op.Text, parts), binaryMsg, payload, [payload.length * 2, 65536]);
      }
    });
  }
});

describe('Connection: limits (invariant S3)', () => {
  for (const role of ROLES) {
    const pf = (spec: FrameSpec) => peerFrame(role, spec);

    it(`${role}: maxMessageBytes: exactly the limit passes; one more fails with 1009 on the header, before the payload`, () => {
      const limits = { maxMessageBytes: 1000 };
      feedAllWays(role, pf({ opcode: Op.Binary, payload: testBytes(1000, 1) }), [binary(testBytes(1000, 1))], { conn: { limits }, splits: 'sample' });
      const f = pf({ opcode: Op.Binary, payload: testBytes(1001, 1) });
      const h = layout(f)[0].headerEnd;
      // failAt ends at the header: the connection fails before any payload byte arrives.
      feedAllWays(role, f, failed(1009, 'ERR_LIMIT_MAX_MESSAGE_BYTES'), { conn: { limits: { maxMessageBytes: 1000, maxFrameBytes: 5000 } }, failAt: [3, h] });
      // Across fragments: 600 + 400 passes, 600 + 401 fails on the second header.
      const ok = concat(pf({ opcode: Op.Text, fin: false, payload: 'a'.repeat(600) }), pf({ opcode: Op.Continuation, payload: 'b'.repeat(400) }));
      feedAllWays(role, ok, [text('a'.repeat(600) + 'b'.repeat(400))], { conn: { limits }, splits: 'sample' });
      const first = pf({ opcode: Op.Text, fin: false, payload: 'a'.repeat(600) });
      const second = pf({ opcode: Op.Continuation, payload: 'b'.repeat(401) });
      // The second header's 16-bit length ends at its byte 3; the header (with a mask key to a server) ends a little later.
      feedAllWays(role, concat(first, second), failed(1009, 'ERR_LIMIT_MAX_MESSAGE_BYTES'), { conn: { limits }, failAt: [first.length + 3, first.length + layout(second)[0].headerEnd] });
    });

    it(`${role}: maxFrameBytes fails a bigger frame with 1009 on its header, while a message of several frames may exceed it`, () => {
      const limits = { maxFrameBytes: 100, maxMessageBytes: 1000 };
      const f = pf({ opcode: Op.Binary, payload: testBytes(101, 2) });
      feedAllWays(role, f, failed(1009, 'ERR_LIMIT_MAX_FRAME_BYTES'), { conn: { limits }, failAt: [1, layout(f)[0].headerEnd] });
      const parts = [testBytes(100, 3), testBytes(100, 4), testBytes(100, 5)];
      feedAllWays(role, messageFrames(role, Op.Binary, parts), [binary(concat(...parts))], { conn: { limits }, splits: 'sample' });
    });

    it(`${role}: maxMessageBytes alone also bounds single frames, and the error names maxMessageBytes`, () => {
      const f = pf({ opcode: Op.Binary, payload: testBytes(2000, 2) });
      // The frame limit follows maxMessageBytes; the error names the limit the application set.
      const r = feedAllWays(role, f, failed(1009, 'ERR_LIMIT_MAX_MESSAGE_BYTES'), { conn: { limits: { maxMessageBytes: 1000 } }, failAt: [1, layout(f)[0].headerEnd], splits: 'sample' });
      assert.ok(r.rec.error instanceof LimitExceededError);
      assert.equal(r.rec.error.limit, 'maxMessageBytes');
      // Both limits set, the frame one lower: a frame over it is named maxFrameBytes (previous test).
    });

    it(`${role}: maxFragments: that many frames pass; one more fails with 1008 on its header`, () => {
      const limits = { maxFragments: 3 };
      feedAllWays(role, messageFrames(role, Op.Text, [utf8('a'), utf8('b'), utf8('c')]), [text('abc')], { conn: { limits } });
      // Empty continuations are the cheap flood this limit is for.
      const three = messageFrames(role, Op.Text, [utf8('a'), Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0)]);
      const at = layout(three)[3].start;
      feedAllWays(role, three, failed(1008, 'ERR_LIMIT_MAX_FRAGMENTS'), { conn: { limits }, failAt: [at, layout(three)[3].headerEnd] });
      // The count restarts with each message.
      const two = concat(messageFrames(role, Op.Text, [utf8('a'), utf8('b'), utf8('c')]), messageFrames(role, Op.Binary, [utf8('d'), utf8('e'), utf8('f')]));
      feedAllWays(role, two, [text('abc'), binary(utf8('def'))], { conn: { limits } });
    });

    it(`${role}: each frame counts as at least MIN_FRAME_CHARGE bytes against maxMessageBytes: the charge at the limit passes, one more frame fails with 1008 on its header`, () => {
      assert.equal(MIN_FRAME_CHARGE, 64);
      const limits = { maxMessageBytes: 10 * MIN_FRAME_CHARGE };
      // Ten frames charged 64 + 64 + 64 + 64 + 64 + 64 + 64 + 64 + 64 + 64 = 640 (their payloads are 1 + 0 + 64 + 10 + 0 + ... = 75 bytes).
      const sizes = [1, 0, 64, 10, 0, 0, 0, 0, 0, 0];
      const parts = sizes.map((n, i) => testBytes(n, 20 + i));
      feedAllWays(role, messageFrames(role, Op.Binary, parts), [binary(concat(...parts))], { conn: { limits } });
      // An eleventh (empty) frame: 704 charged, 75 real: policy violation, decided on its header.
      const eleven = messageFrames(role, Op.Binary, [...parts, Buffer.alloc(0)]);
      const f = layout(eleven)[10];
      const r = feedAllWays(role, eleven, failed(1008, 'ERR_LIMIT_MAX_MESSAGE_BYTES'), { conn: { limits }, failAt: [f.start + 1, f.headerEnd] });
      assert.ok(r.rec.error instanceof LimitExceededError);
      assert.equal(r.rec.error.limit, 'maxMessageBytes');
      assert.equal(r.rec.error.closeCode, 1008);
      assert.equal(r.rec.error.message, 'message of 11 frames: each frame counts as at least 64 bytes against maxMessageBytes (640)');
      // Real bytes exactly at the limit, but one frame under 64 bytes: charged 600 + 64 > 640, so 1008 (not 1009).
      const small = messageFrames(role, Op.Binary, [testBytes(600, 30), testBytes(40, 31)]);
      feedAllWays(role, small, failed(1008, 'ERR_LIMIT_MAX_MESSAGE_BYTES'), { conn: { limits }, failAt: [layout(small)[1].start + 1, layout(small)[1].headerEnd] });
      // The same bytes as 576 + 64: charged exactly 640, passes.
      const whole = testBytes(640, 32);
      feedAllWays(role, messageFrames(role, Op.Binary, [whole.subarray(0, 576), whole.subarray(576)]), [binary(whole)], { conn: { limits } });
      // The charge restarts with each message.
      const again = concat(messageFrames(role, Op.Binary, parts), messageFrames(role, Op.Text, sizes.map(() => utf8(''))));
      feedAllWays(role, again, [binary(concat(...parts)), text('')], { conn: { limits } });
    });

    it(`${role}: real bytes over maxMessageBytes fail with 1009 even where the charge is over too`, () => {
      const limits = { maxMessageBytes: 640 };
      // 600 + 41 = 641 real bytes: too big (1009), checked before the charge (600 + 64 = 664).
      const over = messageFrames(role, Op.Binary, [testBytes(600, 33), testBytes(41, 34)]);
      const r = feedAllWays(role, over, failed(1009, 'ERR_LIMIT_MAX_MESSAGE_BYTES'), { conn: { limits }, failAt: [layout(over)[1].start + 1, layout(over)[1].headerEnd] });
      assert.equal(r.rec.error?.closeCode, 1009);
      // Many tiny frames, then one that takes the real size over: 1009 as well.
      const tiny = messageFrames(role, Op.Text, [utf8('a'), utf8('b'), utf8('c'.repeat(639))]);
      feedAllWays(role, tiny, failed(1009, 'ERR_LIMIT_MAX_MESSAGE_BYTES'), { conn: { limits }, failAt: [layout(tiny)[2].start + 3, layout(tiny)[2].headerEnd] });
    });

    it(`${role}: a message of one frame is bounded by its real size alone, even under a maxMessageBytes below MIN_FRAME_CHARGE`, () => {
      const limits = { maxMessageBytes: 10 };
      feedAllWays(role, pf({ opcode: Op.Text, payload: '0123456789' }), [text('0123456789')], { conn: { limits } });
      feedAllWays(role, pf({ opcode: Op.Binary }), [binary(Buffer.alloc(0))], { conn: { limits } });
      // Two frames are charged at least 128 bytes.
      const two = messageFrames(role, Op.Text, [utf8('01234'), utf8('56789')]);
      feedAllWays(role, two, failed(1008, 'ERR_LIMIT_MAX_MESSAGE_BYTES'), { conn: { limits }, failAt: [layout(two)[1].start + 1, layout(two)[1].headerEnd] });
    });

    it(`${role}: with the default limits there is no frame count limit; a flood of empty continuations ends at maxMessageBytes / MIN_FRAME_CHARGE frames with 1008`, () => {
      assert.equal(DEFAULT_LIMITS.maxFragments, Infinity);
      const frames = DEFAULT_LIMITS.maxMessageBytes / MIN_FRAME_CHARGE;
      assert.equal(frames, 262_144);
      const start = pf({ opcode: Op.Text, fin: false, payload: 'a' });
      const empty = pf({ opcode: Op.Continuation, fin: false });
      const end = pf({ opcode: Op.Continuation, fin: true });
      // 'a', 262,142 empty continuations, an empty final frame: 262,144 frames charged 16 MiB.
      const ok = Buffer.concat([start, ...Array.from({ length: frames - 2 }, () => empty), end]);
      const r = run(role, ok, [65536], {});
      assert.deepEqual(summary(r.rec.items), [text('a')]);
      // One more empty continuation before the final frame: 1008 on the header of frame 262,145.
      const over = Buffer.concat([start, ...Array.from({ length: frames - 1 }, () => empty), end]);
      const at = start.length + (frames - 1) * empty.length;
      for (const cuts of [[], [65536], [at, at + empty.length]]) {
        const f = run(role, over, cuts, {});
        assert.deepEqual(summary(f.rec.items), failed(1008, 'ERR_LIMIT_MAX_MESSAGE_BYTES'));
        assert.equal(f.rec.error?.message, 'message of 262145 frames: each frame counts as at least 64 bytes against maxMessageBytes (16777216)');
        // Cut around the header of frame 262,145: the connection fails in the chunk that holds exactly that header.
        if (cuts.length === 2) assert.deepEqual(f.closedIn, [at, at + empty.length], 'decided on the header of frame 262,145');
      }
    });

    it(`${role}: a 64-bit length with the top bit set fails with 1002 (section 5.2)`, () => {
      const f = pf({ opcode: Op.Binary, payload: 'x', declaredLength: 2n ** 63n });
      // The top bit is in header byte 2; the header is 2 + 8 bytes, plus a 4-byte mask key to a server.
      const headerEnd = 2 + 8 + (role === 'server' ? 4 : 0) - 1;
      feedAllWays(role, f, failed(1002, 'ERR_BAD_LENGTH'), { failAt: [2, headerEnd] });
    });
  }
});

describe('Connection: maxControlFramesPerSecond, a token bucket on the time given to receive() (invariant S3)', () => {
  for (const role of ROLES) {
    const pf = (spec: FrameSpec) => peerFrame(role, spec);
    const ping = (p: string) => pf({ opcode: Op.Ping, payload: p });

    it(`${role}: exactly the limit of control frames at one instant pass; one more fails with 1008, unanswered`, () => {
      const limits = { maxControlFramesPerSecond: 5 };
      const five = ['p0', 'p1', 'p2', 'p3', 'p4'];
      feedAllWays(role, concat(...five.map(ping)), five.flatMap((p) => [wPong(p), pingEv(p)]), { conn: { limits } });
      const six = concat(...five.map(ping), ping('p5'));
      const f = layout(six)[5];
      // A control frame is acted on once it is whole: the sixth fails at its last byte, and gets no pong.
      const r = feedAllWays(role, six, [...five.flatMap((p) => [wPong(p), pingEv(p)]), ...failed(1008, 'ERR_LIMIT_MAX_CONTROL_FRAMES_PER_SECOND')], {
        conn: { limits },
        failAt: [f.payloadStart + f.payloadLength - 1, f.payloadStart + f.payloadLength - 1],
      });
      assert.ok(r.rec.error instanceof LimitExceededError);
      assert.equal(r.rec.error.limit, 'maxControlFramesPerSecond');
      assert.equal(r.rec.error.closeCode, 1008);
      assert.equal(r.rec.error.message, 'more than 5 control frames (pings and pongs) per second (maxControlFramesPerSecond)');
      // Pongs count too: four pongs and a ping pass, a sixth pong fails; a close frame is never refused, even with the bucket empty.
      const mixed = concat(pf({ opcode: Op.Pong, payload: 'a' }), ping('b'), pf({ opcode: Op.Pong }), pf({ opcode: Op.Pong }), pf({ opcode: Op.Pong }));
      const mixedEvents = [pongEv('a'), wPong('b'), pingEv('b'), pongEv(), pongEv(), pongEv()];
      feedAllWays(role, concat(mixed, pf({ opcode: Op.Pong })), [...mixedEvents, ...failed(1008, 'ERR_LIMIT_MAX_CONTROL_FRAMES_PER_SECOND')], { conn: { limits } });
      feedAllWays(role, concat(mixed, pf({ opcode: Op.Close, payload: closePayload(1000) })), [...mixedEvents, ...echoed(1000)], { conn: { limits } });
      feedAllWays(role, concat(ping('a'), ping('b'), ping('c'), ping('d'), pf({ opcode: Op.Close, payload: closePayload(1000) })), [
        ...['a', 'b', 'c', 'd'].flatMap((p) => [wPong(p), pingEv(p)]),
        ...echoed(1000),
      ], { conn: { limits } });
    });

    it(`${role}: the default (${DEFAULT_LIMITS.maxControlFramesPerSecond}): that many pings at one instant are answered; one more fails with 1008; data frames do not count`, () => {
      assert.equal(DEFAULT_LIMITS.maxControlFramesPerSecond, 1000);
      const { conn, rec } = open(role);
      const data = concat(...Array.from({ length: 5000 }, (_, i) => pf({ opcode: Op.Text, payload: `m${i}` })));
      conn.receive(data, 0);
      conn.receive(concat(...Array.from({ length: 1000 }, (_, i) => ping(`${i}`))), 0);
      assert.equal(conn.state, 'open');
      assert.equal(rec.writes.length, 1000, 'a pong for every ping');
      conn.receive(ping('1000'), 0);
      assert.deepEqual(summary(rec.items.slice(-2)), failed(1008, 'ERR_LIMIT_MAX_CONTROL_FRAMES_PER_SECOND'));
    });

    it(`${role}: the bucket refills at the limit per second: a steady limit/s runs forever, a burst after a pause is capped at the limit`, () => {
      const limits = { maxControlFramesPerSecond: 10 };
      const { conn, rec } = open(role, { limits });
      // Ten at t = 0 empty the bucket; then one every 100 ms, for 10,000 simulated seconds.
      for (let i = 0; i < 10; i++) conn.receive(ping(`${i}`), 0);
      for (let i = 1; i <= 100_000; i++) conn.receive(ping(`${i}`), i * 100);
      assert.equal(conn.state, 'open');
      assert.equal(rec.writes.length, 100_010);
      // The bucket is empty again at t = 10,000,000 ms: half a refill period later there is half a token, not one.
      conn.receive(ping('half'), 100_000 * 100 + 50);
      assert.deepEqual(summary(rec.items.slice(-2)), failed(1008, 'ERR_LIMIT_MAX_CONTROL_FRAMES_PER_SECOND'));

      // After an hour of silence the bucket holds the limit, not an hour's worth.
      const b = open(role, { limits });
      for (let i = 0; i < 10; i++) b.conn.receive(ping(`${i}`), 3_600_000);
      assert.equal(b.conn.state, 'open');
      b.conn.receive(ping('11'), 3_600_000);
      assert.deepEqual(summary(b.rec.items.slice(-2)), failed(1008, 'ERR_LIMIT_MAX_CONTROL_FRAMES_PER_SECOND'));

      // Twice the rate, steadily, is stopped once the first second's burst is spent: at the 20th ping (t = 950 ms).
      const c = open(role, { limits });
      let answered = 0;
      for (let i = 0; i < 100 && !c.rec.closed; i++) {
        c.conn.receive(ping(`${i}`), i * 50);
        if (!c.rec.closed) answered++;
      }
      assert.equal(answered, 19);
      assert.equal(c.rec.error?.closeCode, 1008);

      // A clock that steps back does not refill the bucket.
      const d = open(role, { limits, now: 1000 });
      for (let i = 0; i < 10; i++) d.conn.receive(ping(`${i}`), 1000);
      d.conn.receive(ping('back'), 0);
      assert.equal(d.conn.state, 'closed');
    });

    it(`${role}: 0 disables the limit`, () => {
      const { conn, rec } = open(role, { limits: { maxControlFramesPerSecond: 0 } });
      conn.receive(concat(...Array.from({ length: 100_000 }, () => ping('x'))), 0);
      conn.receive(concat(...Array.from({ length: 10_000 }, () => pf({ opcode: Op.Pong }))), 0);
      assert.equal(conn.state, 'open');
      assert.equal(rec.writes.length, 100_000);
      conn.receive(pf({ opcode: Op.Close, payload: closePayload(1000) }), 0);
      assert.deepEqual(summary(rec.items.slice(-2)), echoed(1000));
    });
  }
});

// ---------------------------------------------------------------- section 10, masking

describe('Connection: masking (section 5.3; Autobahn 10.x)', () => {
  it('client: every frame written is masked with a key from maskSource; different keys give different masks', () => {
    const { conn, rec } = open('client');
    conn.send(Buffer.from('one'), false);
    conn.send(Buffer.from('two'), false);
    conn.sendFragment(Buffer.from('f1'), true, false);
    conn.sendFragment(Buffer.from('f2'), true, true);
    conn.ping(Buffer.from('p'));
    conn.pong(Buffer.from('q'));
    conn.receive(peerFrame('client', { opcode: Op.Ping, payload: 'auto' }), 0);
    conn.close(1000, 'bye');
    // The Recorder checked each frame's key against maskSource as it was written.
    const masks = rec.writes.map((w) => w.mask);
    assert.equal(masks.length, 8);
    for (const m of masks) assert.ok(m && m.length === 4);
    assert.equal(new Set(masks.map((m) => m!.toString('hex'))).size, 8, 'a fresh key per frame');
    assert.deepEqual(summary(rec.items), [
      `>text ${hex('one')}`,
      `>text ${hex('two')}`,
      `>binary (more) ${hex('f1')}`,
      `>cont ${hex('f2')}`,
      wPing('p'),
      wPong('q'),
      wPong('auto'),
      pingEv('auto'),
      wClose(1000),
    ]);
  });

  it('server: nothing written is masked', () => {
    const { conn, rec } = open('server');
    conn.send(Buffer.from('one'), false);
    conn.sendFragment(Buffer.from('f1'), false, false);
    conn.sendFragment(Buffer.from('f2'), false, true);
    conn.ping();
    conn.receive(peerFrame('server', { opcode: Op.Ping, payload: 'auto' }), 0);
    conn.close(1000);
    assert.equal(rec.writes.length, 6);
    for (const w of rec.writes) assert.equal(w.mask, null);
  });

  it('a server receiving an unmasked frame and a client receiving a masked one fail with 1002 (section 5.1)', () => {
    const unmasked = concat(peerFrame('client', { opcode: Op.Text, payload: 'Hello' }));
    feedAllWays('server', unmasked, failed(1002, 'ERR_MISSING_MASK'), { failAt: [1, 1] });
    const masked = peerFrame('server', { opcode: Op.Text, payload: 'Hello' });
    feedAllWays('client', masked, failed(1002, 'ERR_UNEXPECTED_MASK'), { failAt: [1, 5] });
    // Also after valid frames, and for control frames.
    const ok = peerFrame('server', { opcode: Op.Text, payload: 'fine' });
    feedAllWays('server', concat(ok, peerFrame('client', { opcode: Op.Ping })), [text('fine'), ...failed(1002, 'ERR_MISSING_MASK')], { failAt: [ok.length + 1, ok.length + 1] });
  });

  it('a client Connection needs a mask source', () => {
    assert.throws(() => new Connection(new Recorder('client'), { role: 'client', now: 0 }), (e: unknown) => e instanceof InvalidArgumentError && e.code === 'ERR_NO_MASK_SOURCE');
  });

  for (const role of ROLES) {
    it(`${role}: a 65536-byte message from a peer that auto-fragments at 1300 bytes (10.1.1)`, () => {
      const t = Buffer.from(textOfBytes(65536));
      const parts: Buffer[] = [];
      for (let p = 0; p < t.length; p += 1300) parts.push(t.subarray(p, p + 1300));
      feedAllWays(role, messageFrames(role, Op.Text, parts), [text(t.toString())], { byteByByte: false, chunkSizes: [1300, 4096] });
    });
  }
});

// ---------------------------------------------------------------- sending

describe('Connection: sending', () => {
  for (const role of ROLES) {
    it(`${role}: send() copies the payload: changing the caller's buffer afterwards changes nothing (invariant S2)`, () => {
      for (const n of [10, 70_000]) {
        const { conn, rec } = open(role);
        const src = testBytes(n, 5);
        const original = Buffer.from(src);
        conn.send(src, true);
        const srcText = Buffer.from(textOfBytes(n));
        const originalText = Buffer.from(srcText);
        conn.send(srcText, false);
        const frag = Buffer.from('fragment');
        conn.sendFragment(frag, true, true);
        // Before the host has flushed anything, the application reuses its buffers.
        src.fill(0);
        srcText.fill(0x41);
        frag.fill(0);
        assert.ok(rec.writes[0].payload.equals(original));
        assert.ok(rec.writes[1].payload.equals(originalText));
        assert.ok(rec.writes[2].payload.equals(Buffer.from('fragment')));
      }
    });

    it(`${role}: sendFragment() streams one message: first opcode, continuations, FIN on the last; send() waits until it ends`, () => {
      const { conn, rec } = open(role);
      conn.sendFragment(Buffer.from('a'), false, false);
      assert.equal(conn.sendingStream, true);
      assert.throws(() => conn.send(Buffer.from('x'), false), InvalidStateError);
      assert.throws(() => conn.sendFragment(Buffer.from('x'), true, false), InvalidArgumentError, 'a fragment keeps its message type');
      conn.ping(Buffer.from('between'));
      conn.sendFragment(Buffer.from('b'), false, false);
      conn.sendFragment(Buffer.alloc(0), false, true);
      assert.equal(conn.sendingStream, false);
      conn.sendFragment(Buffer.from('whole'), true, true);
      conn.send(Buffer.from('next'), false);
      assert.deepEqual(summary(rec.items), [
        `>text (more) ${hex('a')}`,
        wPing('between'),
        `>cont (more) ${hex('b')}`,
        '>cont ',
        `>binary ${hex('whole')}`,
        `>text ${hex('next')}`,
      ]);
    });

    it(`${role}: ping() and pong() refuse more than 125 bytes (section 5.5)`, () => {
      const { conn, rec } = open(role);
      assert.throws(() => conn.ping(Buffer.alloc(126)), InvalidArgumentError);
      assert.throws(() => conn.pong(Buffer.alloc(126)), InvalidArgumentError);
      conn.ping(Buffer.alloc(125, 1));
      conn.pong(Buffer.alloc(125, 2));
      assert.deepEqual(summary(rec.items), [wPing(Buffer.alloc(125, 1)), wPong(Buffer.alloc(125, 2))]);
    });

    it(`${role}: fail() sends a close with the error's code, a reason cut to 123 bytes of whole characters, and reports it`, () => {
      const { conn, rec } = open(role);
      conn.fail(new ProtocolError('ERR_APP', 'é'.repeat(100)));
      assert.deepEqual(summary(rec.items), failed(1002, 'ERR_APP'));
      const reason = decodeClosePayload(rec.writes[0].payload).reason;
      assert.equal(reason, 'é'.repeat(61));
      conn.fail(new ProtocolError('ERR_AGAIN', 'twice'));
      assert.equal(rec.items.length, 2);
    });
  }
});

// ---------------------------------------------------------------- keepalive

describe('Connection: keepalive via tick(now)', () => {
  const keepalive = { pingAfterMs: 1000, hangupAfterMs: 3000 };

  it('pings after pingAfterMs of silence, not before', () => {
    const { conn, rec } = open('server', { keepalive, now: 0 });
    assert.equal(conn.nextDeadline(), 1000);
    assert.equal(conn.tick(999), 1000);
    assert.equal(rec.items.length, 0);
    assert.equal(conn.tick(1000), 2000);
    assert.deepEqual(summary(rec.items), [wPing()]);
    // The next one a full interval after the last ping.
    conn.tick(1999);
    assert.equal(rec.writes.length, 1);
    conn.tick(2000);
    assert.equal(rec.writes.length, 2);
  });

  it('received bytes postpone the ping and the hang-up', () => {
    const { conn, rec } = open('client', { keepalive, now: 0 });
    conn.receive(peerFrame('client', { opcode: Op.Text, payload: 'x' }), 500);
    assert.equal(conn.nextDeadline(), 1500);
    conn.tick(1000);
    assert.deepEqual(summary(rec.items), [text('x')], 'no ping while the peer talked recently');
    // Even a partial frame counts as life.
    conn.receive(Buffer.from([0x81]), 1400);
    assert.equal(conn.nextDeadline(), 2400);
    conn.tick(2399);
    assert.equal(rec.writes.length, 0);
    conn.tick(2400);
    assert.deepEqual(summary(rec.items), [text('x'), wPing()]);
    assert.equal(conn.nextDeadline(), 3400);
    conn.tick(4399);
    assert.equal(conn.state, 'open', 'hang-up counts from the last received byte');
    conn.tick(4400);
    assert.equal(conn.state, 'closed');
  });

  it('alwaysPing pings on schedule even while data arrives', () => {
    const { conn, rec } = open('server', { keepalive: { ...keepalive, alwaysPing: true }, now: 0 });
    let pings = 0;
    for (let t = 100; t <= 5000; t += 100) {
      conn.receive(peerFrame('server', { opcode: Op.Pong }), t);
      conn.tick(t);
      const now = rec.writes.filter((w) => w.opcode === Op.Ping).length;
      if (t % 1000 === 0) assert.equal(now, pings + 1, `a ping at ${t}`);
      else assert.equal(now, pings, `no ping at ${t}`);
      pings = now;
    }
    assert.equal(pings, 5);
    assert.equal(conn.state, 'open');
  });

  it('hangs up after hangupAfterMs of silence: TimeoutError ERR_KEEPALIVE_TIMEOUT, hangup abort, no close frame', () => {
    const { conn, rec } = open('server', { keepalive, now: 0 });
    for (const t of [1000, 2000]) conn.tick(t);
    assert.equal(conn.nextDeadline(), 3000);
    conn.tick(2999);
    assert.equal(conn.state, 'open');
    assert.equal(conn.tick(3000), Infinity);
    assert.deepEqual(summary(rec.items), [wPing(), wPing(), 'closed 1006 ERR_KEEPALIVE_TIMEOUT abort']);
    assert.ok(rec.error instanceof TimeoutError);
    assert.equal(conn.nextDeadline(), Infinity);
  });

  it('a pong answer keeps the connection alive', () => {
    const { conn, rec } = open('client', { keepalive, now: 0 });
    for (let t = 1000; t <= 20_000; t += 1000) {
      conn.tick(t);
      // The peer answers each ping.
      if (rec.writes.length > 0 && rec.writes[rec.writes.length - 1].opcode === Op.Ping) conn.receive(peerFrame('client', { opcode: Op.Pong }), t + 10);
    }
    assert.equal(conn.state, 'open');
  });

  it('nextDeadline() is consistent: tick(t) acts exactly when t >= nextDeadline(), and returns the new deadline', () => {
    for (const ka of [keepalive, { ...keepalive, alwaysPing: true }, { pingAfterMs: 0, hangupAfterMs: 700 }, { pingAfterMs: 300, hangupAfterMs: 0 }]) {
      const { conn, rec } = open('server', { keepalive: ka, now: 0 });
      let t = 0;
      let x = 12345;
      for (let step = 0; step < 400 && conn.state === 'open'; step++) {
        x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
        t += x % 450;
        if ((x >>> 16) % 3 === 0) conn.receive(peerFrame('server', { opcode: Op.Pong }), t);
        const d = conn.nextDeadline();
        const before = rec.items.length;
        const ret = conn.tick(t);
        const acted = rec.items.length > before;
        assert.equal(acted, t >= d, `${JSON.stringify(ka)}: tick(${t}) with deadline ${d}`);
        assert.equal(ret, conn.nextDeadline());
        assert.ok(ret > t, 'the next deadline is in the future');
      }
    }
  });

  it('no keepalive: nextDeadline() is Infinity; no pings while closing', () => {
    const { conn } = open('server');
    assert.equal(conn.nextDeadline(), Infinity);
    assert.equal(conn.tick(1e12), Infinity);
    const b = open('server', { keepalive, closeTimeoutMs: 10_000, now: 0 });
    b.conn.close(1000, '', 0);
    b.conn.tick(5000);
    assert.deepEqual(summary(b.rec.items), [wClose(1000)], 'no ping and no keepalive hang-up while closing');
  });
});

// ---------------------------------------------------------------- streaming receive

describe('Connection: streaming receive (streamMessages: true)', () => {
  const conn = { streamMessages: true };
  for (const role of ROLES) {
    const pf = (spec: FrameSpec) => peerFrame(role, spec);
    it(`${role}: 'fragment' events carry the message in order, first on the first, last on the last, in any chunking`, () => {
      const stream = concat(
        pf({ opcode: Op.Text, payload: 'single' }),
        pf({ opcode: Op.Text }),
        pf({ opcode: Op.Text, fin: false, payload: 'frag€1' }),
        pf({ opcode: Op.Ping, payload: 'mid' }),
        pf({ opcode: Op.Continuation, fin: false, payload: 'frag2' }),
        pf({ opcode: Op.Continuation }),
        pf({ opcode: Op.Binary, fin: false }),
        pf({ opcode: Op.Continuation, fin: false, payload: testBytes(300, 1) }),
        pf({ opcode: Op.Continuation, payload: testBytes(5, 2) }),
      );
      // A streamed message is summarised where its first fragment came: before the ping that interrupted it.
      feedAllWays(role, stream, [
        'stream text "single"',
        'stream text ""',
        'stream text "frag€1frag2"',
        wPong('mid'),
        pingEv('mid'),
        `stream binary ${hex(concat(testBytes(300, 1), testBytes(5, 2)))}`,
      ], { conn });
    });

    it(`${role}: an empty final frame still ends the stream with last=true`, () => {
      const { conn: c, rec } = open(role, conn);
      c.receive(concat(pf({ opcode: Op.Binary, fin: false, payload: 'abc' }), pf({ opcode: Op.Continuation })), 0);
      assert.deepEqual(rec.items, [
        { kind: 'fragment', binary: true, data: Buffer.from('abc'), first: true, last: false },
        { kind: 'fragment', binary: true, data: Buffer.alloc(0), first: false, last: true },
      ]);
    });

    it(`${role}: a fragment is delivered as each piece arrives, before the frame ends`, () => {
      const { conn: c, rec } = open(role, conn);
      const f = pf({ opcode: Op.Text, payload: 'hello world' });
      const h = layout(f)[0].payloadStart;
      c.receive(Buffer.from(f.subarray(0, h + 5)), 0);
      assert.deepEqual(rec.items, [{ kind: 'fragment', binary: false, data: Buffer.from('hello'), first: true, last: false }]);
      c.receive(Buffer.from(f.subarray(h + 5)), 0);
      assert.deepEqual(rec.items[1], { kind: 'fragment', binary: false, data: Buffer.from(' world'), first: false, last: true });
    });

    it(`${role}: streamed text is still validated fail-fast, and limits still apply`, () => {
      const { conn: c, rec } = open(role, conn);
      c.receive(pf({ opcode: Op.Text, fin: false, payload: 'ok' }), 0);
      c.receive(pf({ opcode: Op.Continuation, payload: fromHex('ed a0 80') }), 0);
      assert.deepEqual(summary(rec.items.slice(1)), failed(1007, 'ERR_INVALID_UTF8'));
      const b = open(role, { ...conn, limits: { maxMessageBytes: 10 } });
      b.conn.receive(pf({ opcode: Op.Binary, fin: false, payload: '123456' }), 0);
      b.conn.receive(pf({ opcode: Op.Continuation, payload: '12345' }), 0);
      assert.deepEqual(summary(b.rec.items.slice(1)), failed(1009, 'ERR_LIMIT_MAX_MESSAGE_BYTES'));
    });
  }
});

describe('Connection: the receiving side (made when bytes arrive, let go between messages)', () => {
  // An idle connection holds no parser and no assembler: between messages they hold nothing but
  // settings. Every other block here feeds its input split at every position, across reads that
  // end between messages and inside them, so each of them also checks that nothing a message needs
  // is lost when the receiving side is let go and made again.
  const receiving = (c: Connection): boolean => Reflect.get(c, 'parser') !== null && Reflect.get(c, 'assembler') !== null;
  for (const role of ROLES) {
    const pf = (spec: FrameSpec) => peerFrame(role, spec);
    it(`${role}: none before the first byte or after a read that ends between messages; kept while a frame, header or fragmented message is part-read`, () => {
      const { conn: c, rec } = open(role);
      assert.equal(receiving(c), false, 'a new connection');
      c.receive(pf({ opcode: Op.Binary, payload: 'one' }), 0);
      assert.equal(receiving(c), false, 'after a whole message');
      const two = pf({ opcode: Op.Text, payload: 'two€' });
      c.receive(two.subarray(0, 1), 0);
      assert.equal(receiving(c), true, 'a header cut short');
      c.receive(two.subarray(1, two.length - 1), 0);
      assert.equal(receiving(c), true, 'a payload cut short (inside a UTF-8 sequence)');
      c.receive(two.subarray(two.length - 1), 0);
      assert.equal(receiving(c), false);
      c.receive(pf({ opcode: Op.Binary, payload: 'th', fin: false }), 0);
      assert.equal(receiving(c), true, 'a fragmented message under way');
      c.receive(pf({ opcode: Op.Ping, payload: 'p' }), 0);
      c.receive(pf({ opcode: Op.Continuation, payload: 'ree' }), 0);
      assert.equal(receiving(c), false);
      assert.equal(c.framesReceived, 5, 'frames counted across receiving sides');
      assert.deepEqual(
        rec.items.filter((i) => i.kind === 'message').map((i) => (i as { data: Buffer }).data.toString()),
        ['one', 'two€', 'three'],
      );
    });

    it(`${role}: streamMessages set between messages applies to the next one; a close frame stops reading for good`, () => {
      const { conn: c, rec } = open(role);
      c.receive(pf({ opcode: Op.Text, payload: 'whole' }), 0);
      c.streamMessages = true;
      c.receive(pf({ opcode: Op.Text, payload: 'streamed' }), 0);
      c.streamMessages = false;
      c.receive(pf({ opcode: Op.Text, payload: 'whole again' }), 0);
      assert.deepEqual(
        rec.items.filter((i) => i.kind === 'message' || i.kind === 'fragment').map((i) => `${i.kind} ${(i as { data: Buffer }).data.toString()}`),
        ['message whole', 'fragment streamed', 'message whole again'],
      );
      c.receive(concat(pf({ opcode: Op.Close, payload: closePayload(1000) }), pf({ opcode: Op.Text, payload: 'after' })), 0);
      c.receive(pf({ opcode: Op.Text, payload: 'later' }), 0);
      assert.equal(rec.items.some((i) => i.kind === 'message' && ['after', 'later'].includes(i.data.toString())), false, 'nothing after the close frame');
      assert.equal(c.state, 'closed');
    });
  }
});

describe('sendEncoded (a frame built once for many connections)', () => {
  it('a server writes the given chunks unchanged, as one message, in order with other sends', () => {
    const { conn, rec } = open('server');
    conn.send(Buffer.from('before'), false);
    const frame = [Buffer.from([0x82, 0x03]), Buffer.from('abc')];
    const copy = frame.map((c) => Buffer.from(c));
    conn.sendEncoded(frame);
    conn.send(Buffer.from('after'), false);
    const w = rec.writes;
    assert.deepEqual(w.map((x) => x.payload.toString()), ['before', 'abc', 'after']);
    assert.equal(w[1].opcode, Op.Binary);
    assert.equal(w[1].endsMessage, true);
    assert.deepEqual(frame, copy, 'the shared chunks are not modified');
  });

  it('refuses a client (frames need a fresh mask each), a closing connection and an open stream, naming why', () => {
    const client = open('client').conn;
    assert.throws(() => client.sendEncoded([Buffer.from([0x82, 0x00])]), (e: unknown) => e instanceof InvalidStateError && /client/.test(e.message));
    const streaming = open('server').conn;
    streaming.sendFragment(Buffer.from('a'), true, false);
    assert.throws(() => streaming.sendEncoded([Buffer.from([0x82, 0x00])]), (e: unknown) => e instanceof InvalidStateError && /stream/.test(e.message));
    const closing = open('server').conn;
    closing.close(1000, '', 0);
    assert.throws(() => closing.sendEncoded([Buffer.from([0x82, 0x00])]), (e: unknown) => e instanceof InvalidStateError && /closing/.test(e.message));
  });
});

describe('Connection: a close answered from inside the host\'s write (a transport that delivers synchronously)', () => {
  for (const role of ROLES) {
    it(`${role}: the peer's close frame fed during our close frame's write completes the closing handshake cleanly`, () => {
      const rec = new Recorder(role);
      let answered = false;
      const host: ConnectionHost = {
        onEvent: (e) => rec.onEvent(e),
        write: (chunks, urgent, endsMessage, opcode) => {
          rec.write(chunks, urgent, endsMessage, opcode);
          // The peer answers our close at once, before write() returns.
          if (!answered && opcode === Op.Close) {
            answered = true;
            assert.equal(conn.state, 'closing', 'closing before the close frame is handed over');
            conn.receive(peerFrame(role, { opcode: Op.Close, payload: closePayload(1000) }), 0);
          }
        },
      };
      // `conn` is only used by host.write(), which runs after it is made.
      const conn = new Connection(host, { now: 0, role, maskSource: role === 'client' ? rec.maskSource : undefined });
      conn.close(1000, 'done');
      assert.equal(conn.state, 'closed', 'not overwritten with closing after the answer');
      assert.deepEqual(summary(rec.items), summary([...rec.items.slice(0, 1), { kind: 'closed', code: 1000, reason: '', wasClean: true, error: undefined, hangup: 'graceful' }]));
      assert.equal(conn.nextDeadline(), Infinity, 'no close timeout left running');
    });
  }
});

/** A connection whose host records everything and then lets `react` act on each event (as a handler would). */
function reacting(role: Role, react: (conn: Connection, e: ConnectionEvent) => void): { conn: Connection; rec: Recorder } {
  const rec = new Recorder(role);
  const host: ConnectionHost = {
    onEvent: (e) => {
      rec.onEvent(e);
      react(conn, e);
    },
    write: (chunks, urgent, endsMessage, opcode) => rec.write(chunks, urgent, endsMessage, opcode),
  };
  const conn = new Connection(host, { now: 0, role, maskSource: role === 'client' ? rec.maskSource : undefined });
  return { conn, rec };
}

describe('Connection: events are delivered after parsing (a handler never runs inside the parser\'s loop)', () => {
  const text = (role: Role, s: string) => peerFrame(role, { opcode: Op.Text, payload: utf8(s) });
  const ping = (role: Role, s: string) => peerFrame(role, { opcode: Op.Ping, payload: utf8(s) });

  for (const role of ROLES) {
    it(`${role}: events are delivered after parsing: a read's pongs are written first, then its events in order, each handler free to send`, () => {
      let parsedAll = false;
      const { conn, rec } = reacting(role, (conn, e) => {
        // By the time the first event arrives the whole read has been parsed (both pongs are out).
        if (!parsedAll) assert.equal(rec.writes.filter((w) => w.opcode === Op.Pong).length, 2, 'every frame of the read parsed before the first event');
        parsedAll = true;
        if (e.type === 'message') conn.send(Buffer.from(`re:${e.text}`), false);
      });
      conn.receive(concat(text(role, 'a'), ping(role, '1'), text(role, 'b'), ping(role, '2')), 0);
      assert.deepEqual(summary(rec.items), [wPong('1'), wPong('2'), 'text "a"', '>text 72653a61', pingEv('1'), 'text "b"', '>text 72653a62', pingEv('2')]);
    });

    it(`${role}: a reply to a message that came in the same read as the peer's close goes out before our close frame`, () => {
      const { conn, rec } = reacting(role, (conn, e) => {
        if (e.type === 'message') conn.send(Buffer.from('reply'), false);
      });
      conn.receive(concat(text(role, 'last'), peerFrame(role, { opcode: Op.Close, payload: closePayload(1000) }), text(role, 'after close')), 0);
      assert.deepEqual(summary(rec.items), ['text "last"', '>text 7265706c79', wClose(1000), closedClean(1000)], 'nothing after the close frame is read');
    });

    it(`${role}: a reply to a message followed by a bad frame in the same read goes out before the failure's close frame`, () => {
      const { conn, rec } = reacting(role, (conn, e) => {
        if (e.type === 'message') conn.send(Buffer.from('reply'), false);
      });
      conn.receive(concat(text(role, 'fine'), peerFrame(role, { opcode: 0x3, payload: utf8('x') })), 0);
      assert.deepEqual(summary(rec.items), ['text "fine"', '>text 7265706c79', ...failed(1002, 'ERR_RESERVED_OPCODE')]);
    });

    it(`${role}: terminate() from a handler drops the rest of the read: no event after 'closed'`, () => {
      const { conn, rec } = reacting(role, (conn, e) => {
        if (e.type === 'message') conn.transportClosed(new Error('terminated'));
      });
      conn.receive(concat(text(role, 'one'), text(role, 'two'), ping(role, 'p')), 0);
      assert.deepEqual(summary(rec.items), [wPong('p'), 'text "one"', 'closed 1006 ERR_CONNECTION_LOST abort']);
    });

    it(`${role}: transportClosed with 'all' (sockeye/ws's terminate()) from a handler still delivers the rest of the read, then 'closed'`, () => {
      const { conn, rec } = reacting(role, (conn, e) => {
        if (e.type === 'message' && e.text === 'one') conn.transportClosed(new Error('terminated'), 'all');
      });
      conn.receive(concat(text(role, 'one'), text(role, 'two'), ping(role, 'p')), 0);
      assert.deepEqual(summary(rec.items), [wPong('p'), 'text "one"', 'text "two"', 'ping 70', 'closed 1006 ERR_CONNECTION_LOST abort']);
    });

    it(`${role}: close() from a handler keeps delivering the rest of the read (a closing connection still receives)`, () => {
      const { conn, rec } = reacting(role, (conn, e) => {
        if (e.type === 'message' && e.text === 'one') conn.close(1000, '');
      });
      conn.receive(concat(text(role, 'one'), text(role, 'two')), 0);
      assert.deepEqual(summary(rec.items), ['text "one"', wClose(1000), 'text "two"']);
      assert.equal(conn.state, 'closing');
    });
  }
});
