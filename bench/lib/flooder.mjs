// The flooding client of bench/floods.mjs, in a process of its own so that
// its CPU and memory are neither the server's nor the canary's.
//
//   node bench/lib/flooder.mjs '<json config>'
//
// config: { port, opcode: 'ping' | 'pong' | 'binary' | 'continuation',
//           size (payload bytes, under 126), frames, read: 'all' | 'slow' | 'none',
//           writeMs (stop writing after this long), settleMs (bound on reading the outcome) }
// 'continuation' writes a first binary fragment of 1 byte, then `frames`
// empty continuation frames, never the last one.
//
// It upgrades by hand, writes the flood (masked frames, mask key 0, the
// payload's first bytes carrying the frame's sequence number), reading as
// `read` says: everything as it comes, one socket.read() every 100 ms
// ('slow'), or nothing. It prints "START" once upgraded, as the writing
// begins, and "WRITTEN <n>" when the writing ends; then it
// reads everything until the server has closed, or every echo or the last
// pong is in, or nothing has come for QUIET_MS, and prints one line
// "RESULT <json>" (FloodResult below) before exiting.
import { connect } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';

const SLOW_READ_EVERY_MS = 100;
const WRITE_BYTES = 64 * 1024;
/** Reading the outcome ends after this long with nothing received (the server holds nothing more for us). */
const QUIET_MS = 1000;
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

const OPCODE_BYTE = { ping: 0x89, pong: 0x8a, binary: 0x82, continuation: 0x00 };

/**
 * @typedef {object} FloodResult
 * @property {number} written frames written
 * @property {number | null} closeCode the close frame's code, null if none came
 * @property {boolean} socketClosed the server ended the TCP connection
 * @property {boolean} reset it ended with a reset (what was not read yet, a close frame too, is lost)
 * @property {number} pongs
 * @property {number} lastPong sequence number of the last pong (-1: none)
 * @property {number} echoes data frames received
 * @property {number} wrong echoes of the wrong size or out of order
 * @property {number} writeMs time spent writing
 * @property {string} [error]
 */

/** `count` masked frames from `first` on (see the file's comment). */
function floodFrames(opcodeByte, first, count, size) {
  const frameBytes = 6 + size;
  const b = Buffer.alloc(count * frameBytes, 0x61);
  for (let i = 0; i < count; i++) {
    const p = i * frameBytes;
    b[p] = opcodeByte;
    b[p + 1] = 0x80 | size;
    b.writeUInt32BE(0, p + 2);
    const seq = first + i;
    if (size >= 4) b.writeUInt32BE(seq >>> 0, p + 6);
    else for (let k = 0; k < size; k++) b[p + 6 + k] = (seq >>> (8 * (size - 1 - k))) & 0xff;
  }
  return b;
}

/** Calls onFrame(opcode, payload) for each (unmasked, server) frame; keeps only a partial frame. */
function frameScanner(onFrame) {
  let buf = Buffer.alloc(0);
  return (chunk) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    let p = 0;
    for (;;) {
      if (buf.length - p < 2) break;
      const len7 = buf[p + 1] & 0x7f;
      const ext = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
      const masked = (buf[p + 1] & 0x80) !== 0;
      const head = 2 + ext + (masked ? 4 : 0);
      if (buf.length - p < head) break;
      const len = ext === 0 ? len7 : ext === 2 ? buf.readUInt16BE(p + 2) : Number(buf.readBigUInt64BE(p + 2));
      if (buf.length - p < head + len) break;
      onFrame(buf[p] & 0x0f, buf.subarray(p + head, p + head + len));
      p += head + len;
    }
    buf = p === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(p));
  };
}

async function upgrade(port) {
  const socket = connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  socket.on('error', () => {});
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('close', () => reject(new Error('closed before connecting')));
  });
  const key = randomBytes(16).toString('base64');
  socket.write(`GET /flood HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  const accept = createHash('sha1').update(key + GUID).digest('base64');
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => reject(new Error('no 101 within 5 s')), 5000);
    const onData = (c) => {
      got = Buffer.concat([got, c]);
      const end = got.indexOf('\r\n\r\n');
      if (end < 0) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      const head = got.subarray(0, end).toString('latin1');
      if (!head.startsWith('HTTP/1.1 101') || !head.includes(accept)) return reject(new Error(`bad answer: ${head.split('\r\n')[0]}`));
      resolve({ socket, rest: got.subarray(end + 4) });
    };
    socket.on('data', onData);
  });
}

async function flood(config) {
  const { port, opcode, size, frames, read, writeMs, settleMs } = config;
  const result = { written: 0, closeCode: null, socketClosed: false, reset: false, pongs: 0, lastPong: -1, echoes: 0, wrong: 0, writeMs: 0 };
  const { socket, rest } = await upgrade(port);
  let lastFrameAt = performance.now();
  let lastEcho = -1;
  const scan = frameScanner((op, payload) => {
    lastFrameAt = performance.now();
    if (op === 0x8) result.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
    else if (op === 0xa) {
      result.pongs++;
      if (payload.length >= 4) result.lastPong = payload.readUInt32BE(0);
    } else if (op === 0x2) {
      result.echoes++;
      if (payload.length !== size) result.wrong++;
      else if (size >= 4) {
        const seq = payload.readUInt32BE(0);
        if (seq <= lastEcho) result.wrong++;
        lastEcho = seq;
      }
    }
  });
  socket.once('close', () => (result.socketClosed = true));
  socket.on('error', (e) => {
    if (e.code === 'ECONNRESET') result.reset = true;
  });
  if (rest.length > 0) scan(rest);
  let slow = null;
  let reading = false;
  const readAll = () => {
    if (slow) clearInterval(slow);
    if (reading) return;
    reading = true;
    socket.on('data', scan);
    socket.resume();
  };
  if (read === 'all') readAll();
  else if (read === 'slow') {
    slow = setInterval(() => {
      const c = socket.read();
      if (c) scan(c);
    }, SLOW_READ_EVERY_MS);
  }
  const ended = () => result.closeCode !== null || result.socketClosed || socket.destroyed;

  process.stdout.write('START\n');
  const started = performance.now();
  const deadline = started + writeMs;
  const byte = OPCODE_BYTE[opcode];
  if (opcode === 'continuation') socket.write(floodFrames(0x02, 0, 1, 1));
  const frameBytes = 6 + size;
  const perWrite = Math.max(1, Math.floor(WRITE_BYTES / frameBytes));
  // Every batch of a continuation flood is the same bytes: made once.
  const same = opcode === 'continuation' ? floodFrames(byte, 0, perWrite, size) : null;
  while (result.written < frames && !ended() && performance.now() < deadline) {
    const n = Math.min(perWrite, frames - result.written);
    const ok = socket.write(same && n === perWrite ? same : floodFrames(byte, result.written, n, size));
    result.written += n;
    if (!ok) {
      // A server that stopped reading: wait for room, for the end, or for the deadline.
      await new Promise((resolve) => {
        const done = () => {
          clearInterval(poll);
          socket.off('drain', done);
          resolve();
        };
        const poll = setInterval(() => (ended() || performance.now() > deadline) && done(), 20);
        socket.once('drain', done);
      });
    }
  }
  result.writeMs = performance.now() - started;
  process.stdout.write(`WRITTEN ${result.written}\n`);

  // The outcome: read everything there is.
  readAll();
  const settleDeadline = performance.now() + settleMs;
  const expectedEchoes = opcode === 'binary' ? result.written : 0;
  const done = () =>
    result.socketClosed ||
    (result.closeCode !== null && performance.now() - lastFrameAt > 200) ||
    (opcode === 'ping' && result.lastPong === result.written - 1) ||
    (expectedEchoes > 0 && result.echoes >= expectedEchoes) ||
    performance.now() - lastFrameAt > QUIET_MS;
  lastFrameAt = performance.now();
  while (!done() && performance.now() < settleDeadline) await new Promise((r) => setTimeout(r, 20));
  socket.destroy();
  return result;
}

const config = JSON.parse(process.argv[2]);
flood(config).then(
  (result) => {
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
    process.exit(0);
  },
  (error) => {
    process.stdout.write(`RESULT ${JSON.stringify({ error: error instanceof Error ? error.message : String(error) })}\n`);
    process.exit(2);
  },
);
