// The benchmark's load generator: one child process, one scenario, one
// server. It drives every server through the same code path: a WebSocket
// client written by hand over node:net (so no client library's speed enters
// the comparison) or, for the raw server, the same payloads without framing.
//
// Usage: node bench/generator.mjs '<json config>'
//   { mode: 'ws'|'raw', port, size, binary, connections, depth,
//     warmupMs, durationMs, serverPid?, clkTck?, cpus?, tls?, tlsCa?, servername?,
//     h2?, h2Connections?, workload? }
// tls: connect with node:tls (wss, or raw bytes over TLS); tlsCa is the PEM
// file of the certificate to trust (the harness's self-signed one);
// servername, the name the certificate must be for (default: 127.0.0.1, the
// address connected to). The C generator (bench/loadgen/) takes the same keys
// and is the default for TLS scenarios too; this one runs them with
// --generator node.
// h2: every WebSocket is a stream of an HTTP/2 connection (RFC 8441 extended
// CONNECT; over TLS with ALPN h2, or h2c with prior knowledge without tls),
// h2Connections of them (default 1) shared round-robin, opened once.
// workload 'open' (default 'echo'): `connections` loops, each opening a
// WebSocket (a new connection with an upgrade, or with h2 a new stream on the
// open HTTP/2 connection), echoing one message and closing it, again and
// again; the result counts those cycles (opensPerSec) and times open→echo.
// Prints exactly one JSON line on stdout: the result, or { error }.
// Exit status 0 on success, 2 when an echo failed verification or a
// connection broke (the numbers of such a run mean nothing).
//
// Every echoed byte is compared with the byte sent. Each payload starts with
// a 16-byte ASCII stamp (8 hex digits of connection id, 8 of sequence
// number) so a reordered, duplicated, lost or cross-connection echo is caught,
// not only a corrupted one; the rest is a fixed per-scenario template.

import { connect } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { connect as connectH2 } from 'node:http2';
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Histogram } from './lib/histogram.mjs';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'; // RFC 6455 section 1.3
const STAMP = 16;
const CONNECT_TIMEOUT_MS = 15_000;
const CLOSE_TIMEOUT_MS = 2_000;
const MAX_RESPONSE_HEAD = 8192;

const cfg = JSON.parse(process.argv[2] ?? '{}');
for (const key of ['mode', 'port', 'size', 'connections', 'depth', 'warmupMs', 'durationMs']) {
  if (cfg[key] === undefined) fail(`missing config field ${key}`);
}
if (cfg.size < STAMP * 2) fail(`payload size must be at least ${STAMP * 2} bytes`);

let finished = false;
function fail(message) {
  if (finished) return;
  finished = true;
  process.stdout.write(JSON.stringify({ error: message }) + '\n', () => process.exit(2));
}

// ------------------------------------------------------------ payloads

const HEX = new Uint8Array(512);
for (let i = 0; i < 256; i++) {
  const s = i.toString(16).padStart(2, '0');
  HEX[2 * i] = s.charCodeAt(0);
  HEX[2 * i + 1] = s.charCodeAt(1);
}

/** Writes the 16-byte stamp: connection id and sequence number as hex digits. */
function writeStamp(buf, off, id, seq) {
  for (let i = 0; i < 4; i++) {
    const a = (id >>> (24 - 8 * i)) & 255;
    const b = (seq >>> (24 - 8 * i)) & 255;
    buf[off + 2 * i] = HEX[2 * a];
    buf[off + 2 * i + 1] = HEX[2 * a + 1];
    buf[off + 8 + 2 * i] = HEX[2 * b];
    buf[off + 9 + 2 * i] = HEX[2 * b + 1];
  }
}

/**
 * The template every message of the run is made from (its first 16 bytes are
 * replaced by the stamp). Binary: random bytes. Text: valid UTF-8 with
 * 2-, 3- and 4-byte sequences, so the servers' UTF-8 validation does real work.
 * Allocated outside the pool so its 32-bit view is aligned.
 */
function makeTemplate(size, binary) {
  const t = Buffer.allocUnsafeSlow(size);
  if (binary) {
    randomFillSync(t);
  } else {
    const sample = Buffer.from('{"from":"Zoë","text":"naïve café — 東京で会いましょう 🐟🦀","n":12345}, ', 'utf8');
    let off = STAMP;
    while (off + sample.length <= size) off += sample.copy(t, off);
    t.fill(0x20, off); // pad with spaces: whole code points only
  }
  t.fill(0x30, 0, STAMP); // ASCII placeholder where the stamp goes
  if (!binary && !isUtf8(t)) throw new Error('text template is not valid UTF-8');
  return t;
}

const template = makeTemplate(cfg.size, cfg.binary ?? true);
const template32 = new Uint32Array(template.buffer, template.byteOffset, template.length >>> 2);
const opcode = cfg.binary === false ? 0x1 : 0x2;
const tlsOptions = cfg.tls ? { ca: cfg.tlsCa ? readFileSync(cfg.tlsCa) : undefined, ...(cfg.servername ? { servername: cfg.servername } : {}) } : null;
const tlsSeen = { protocol: null, cipher: null };

// ------------------------------------------------------------ HTTP/2 connections

const h2Sessions = [];

/** The HTTP/2 connection WebSocket `id` runs on: one of cfg.h2Connections, opened on first use. */
function h2SessionFor(id) {
  const k = id % Math.max(1, cfg.h2Connections ?? 1);
  h2Sessions[k] ??= new Promise((resolve, reject) => {
    const session = connectH2(`${tlsOptions ? 'https' : 'http'}://127.0.0.1:${cfg.port}`, {
      ...(tlsOptions ?? {}),
      ...(tlsOptions ? { ALPNProtocols: ['h2'] } : {}),
    });
    session.on('error', (err) => {
      fail(`HTTP/2 connection ${k}: ${err.message}`);
      reject(err);
    });
    session.once('close', () => {
      if (stats.running) fail(`HTTP/2 connection ${k} closed during the run`);
    });
    // RFC 8441 section 3: extended CONNECT only once the server's SETTINGS enable it.
    session.once('remoteSettings', (settings) => {
      if (settings.enableConnectProtocol !== true) {
        fail('the server did not send SETTINGS_ENABLE_CONNECT_PROTOCOL = 1');
        return;
      }
      if (tlsOptions) {
        tlsSeen.protocol = session.socket.getProtocol();
        tlsSeen.cipher = session.socket.getCipher()?.name ?? null;
      }
      resolve(session);
    });
  });
  return h2Sessions[k];
}

// Masking keys come from a CSPRNG (RFC 6455 section 5.3: unpredictable),
// drawn 64 KiB at a time so each frame costs no system call.
const maskPool = Buffer.allocUnsafeSlow(65536);
const maskPool32 = new Uint32Array(maskPool.buffer, 0, maskPool.length >>> 2);
let maskIndex = maskPool32.length;

const stampScratch = Buffer.alloc(STAMP);

/** A complete masked client frame (RFC 6455 section 5.2) for message `seq` of connection `id`. */
function buildFrame(id, seq) {
  const len = template.length;
  const hlen = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const h = hlen + 4;
  // Buffer.allocUnsafe returns 8-byte aligned memory; the pad puts the payload
  // on a 4-byte boundary so large payloads are masked a word at a time.
  const pad = (4 - (h & 3)) & 3;
  const whole = Buffer.allocUnsafe(pad + h + len);
  const f = pad === 0 ? whole : whole.subarray(pad);
  f[0] = 0x80 | opcode; // FIN, no RSV bits, one frame per message
  if (hlen === 2) {
    f[1] = 0x80 | len;
  } else if (hlen === 4) {
    f[1] = 0x80 | 126;
    f.writeUInt16BE(len, 2);
  } else {
    f[1] = 0x80 | 127;
    f.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    f.writeUInt32BE(len >>> 0, 6);
  }
  if (maskIndex === maskPool32.length) {
    randomFillSync(maskPool);
    maskIndex = 0;
  }
  const key32 = maskPool32[maskIndex];
  const kb = maskIndex * 4;
  maskIndex++;
  const k0 = maskPool[kb];
  const k1 = maskPool[kb + 1];
  const k2 = maskPool[kb + 2];
  const k3 = maskPool[kb + 3];
  f[hlen] = k0;
  f[hlen + 1] = k1;
  f[hlen + 2] = k2;
  f[hlen + 3] = k3;
  let i = 0;
  const at = f.byteOffset + h;
  if (len >= 256 && (at & 3) === 0) {
    const words = len >>> 2;
    const out32 = new Uint32Array(f.buffer, at, words);
    for (let w = 0; w < words; w++) out32[w] = template32[w] ^ key32;
    i = words * 4;
  }
  for (; i < len; i++) f[h + i] = template[i] ^ maskPool[kb + (i & 3)];
  writeStamp(stampScratch, 0, id, seq);
  for (let s = 0; s < STAMP; s++) f[h + s] = stampScratch[s] ^ maskPool[kb + (s & 3)];
  return f;
}

/** The same payload for the raw server: no frame, no mask. */
function buildRaw(id, seq) {
  const b = Buffer.allocUnsafe(template.length);
  template.copy(b);
  writeStamp(b, 0, id, seq);
  return b;
}

/** A masked close frame with status 1000 (RFC 6455 section 5.5.1). */
function closeFrame() {
  const key = randomBytes(4);
  const f = Buffer.from([0x88, 0x82, key[0], key[1], key[2], key[3], 0x03, 0xe8]);
  for (let i = 0; i < 2; i++) f[6 + i] ^= key[i & 3];
  return f;
}

/** A masked pong echoing `data` (RFC 6455 section 5.5.3). */
function pongFrame(data) {
  const key = randomBytes(4);
  const f = Buffer.allocUnsafe(6 + data.length);
  f[0] = 0x8a;
  f[1] = 0x80 | data.length;
  key.copy(f, 2);
  for (let i = 0; i < data.length; i++) f[6 + i] = data[i] ^ key[i & 3];
  return f;
}

// ------------------------------------------------------------ run state

const stats = {
  running: true, // send a new message for each verified echo
  measuring: false,
  completed: 0, // verified echoes inside the measurement window
  latency: new Histogram(),
};

const RING = 1 << Math.ceil(Math.log2(Math.max(2, cfg.depth)));

class Conn {
  constructor(id) {
    this.id = id;
    this.sendSeq = 0;
    this.recvSeq = 0;
    this.sentAt = new Float64Array(RING);
    this.windowCompleted = 0;
    this.msgOff = 0; // bytes of the current echoed message verified so far
    this.expStamp = Buffer.alloc(STAMP);
    // WebSocket receive state (RFC 6455 section 5.2), server frames are unmasked.
    this.partial = null; // unconsumed header bytes from the previous read
    this.remaining = 0; // payload bytes left in the current data frame
    this.inFrame = false;
    this.frameFin = false;
    this.inMessage = false; // a fragmented message is open
    this.closing = false;
    this.socket = null;
    this.onEcho = null; // workload 'open': called on the one echo instead of sending the next message
  }

  open() {
    if (cfg.h2) return this.openStream();
    return new Promise((resolve, reject) => {
      const socket = tlsOptions ? connectTls({ host: '127.0.0.1', port: cfg.port, ...tlsOptions }) : connect({ host: '127.0.0.1', port: cfg.port });
      // The opening handshake goes out once the transport is up: after the TLS handshake for tls.
      const ready = tlsOptions ? 'secureConnect' : 'connect';
      if (tlsOptions) {
        socket.once('secureConnect', () => {
          tlsSeen.protocol = socket.getProtocol();
          tlsSeen.cipher = socket.getCipher()?.name ?? null;
        });
      }
      this.socket = socket;
      socket.setNoDelay(true);
      socket.on('error', (err) => {
        if (!this.closing) fail(`connection ${this.id}: ${err.message}`);
        reject(err);
      });
      socket.on('close', () => {
        if (!this.closing) fail(`connection ${this.id} closed by the server during the run`);
      });
      if (cfg.mode === 'raw') {
        socket.once(ready, () => {
          socket.on('data', (chunk) => this.onData(chunk));
          resolve();
        });
        return;
      }
      const key = randomBytes(16).toString('base64');
      socket.once(ready, () => {
        socket.write(
          'GET / HTTP/1.1\r\n' +
            `Host: 127.0.0.1:${cfg.port}\r\n` +
            'Upgrade: websocket\r\n' +
            'Connection: Upgrade\r\n' +
            `Sec-WebSocket-Key: ${key}\r\n` +
            'Sec-WebSocket-Version: 13\r\n\r\n',
        );
      });
      let head = Buffer.alloc(0);
      const onHead = (chunk) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) {
          if (head.length > MAX_RESPONSE_HEAD) fail(`connection ${this.id}: response head too large`);
          return;
        }
        socket.off('data', onHead);
        const problem = checkHandshake(head.subarray(0, end).toString('latin1'), key);
        if (problem) {
          fail(`connection ${this.id}: handshake: ${problem}`);
          return;
        }
        socket.on('data', (c) => this.onData(c));
        resolve();
        const rest = head.subarray(end + 4);
        if (rest.length > 0) this.onData(rest);
      };
      socket.on('data', onHead);
    });
  }

  /** The WebSocket as a stream of an HTTP/2 connection (RFC 8441 section 4), its frames as over TCP. */
  async openStream() {
    const session = await h2SessionFor(this.id);
    return new Promise((resolve, reject) => {
      const stream = session.request(
        {
          ':method': 'CONNECT',
          ':protocol': 'websocket',
          ':scheme': tlsOptions ? 'https' : 'http',
          ':path': '/',
          ':authority': `127.0.0.1:${cfg.port}`,
          'sec-websocket-version': '13',
        },
        { endStream: false },
      );
      this.socket = stream;
      stream.on('error', (err) => {
        if (!this.closing) fail(`connection ${this.id}: ${err.message}`);
        reject(err);
      });
      stream.on('close', () => {
        if (!this.closing) fail(`connection ${this.id}: stream closed by the server during the run`);
      });
      stream.once('response', (headers) => {
        const status = headers[':status'];
        if (status !== 200) {
          fail(`connection ${this.id}: extended CONNECT answered ${status} instead of 200`);
          return;
        }
        if (headers['sec-websocket-extensions'] !== undefined) return void fail(`connection ${this.id}: server chose an extension that was not offered`);
        if (headers['sec-websocket-protocol'] !== undefined) return void fail(`connection ${this.id}: server chose a subprotocol that was not offered`);
        stream.on('data', (c) => this.onData(c));
        resolve();
      });
    });
  }

  /** Puts the first `depth` messages in flight. */
  start() {
    const now = performance.now();
    this.socket.cork();
    for (let i = 0; i < cfg.depth; i++) this.sendOne(now);
    this.socket.uncork();
  }

  sendOne(now) {
    const seq = this.sendSeq++;
    this.sentAt[seq & (RING - 1)] = now;
    this.socket.write(cfg.mode === 'raw' ? buildRaw(this.id, seq) : buildFrame(this.id, seq));
  }

  onData(chunk) {
    if (finished) return;
    // One clock reading per read: every echo in it arrived at this moment, and
    // the messages sent in answer leave at this moment.
    const now = performance.now();
    this.socket.cork();
    if (cfg.mode === 'raw') this.onRaw(chunk, now);
    else this.onFrames(chunk, now);
    this.socket.uncork();
  }

  onRaw(chunk, now) {
    const size = template.length;
    let pos = 0;
    while (pos < chunk.length) {
      const n = Math.min(size - this.msgOff, chunk.length - pos);
      if (!this.verify(chunk, pos, n)) return;
      pos += n;
      if (this.msgOff === size) this.complete(now);
    }
  }

  onFrames(chunk, now) {
    if (this.partial !== null) {
      chunk = Buffer.concat([this.partial, chunk]);
      this.partial = null;
    }
    let pos = 0;
    while (pos < chunk.length) {
      if (this.inFrame) {
        const n = Math.min(this.remaining, chunk.length - pos);
        if (!this.verify(chunk, pos, n)) return;
        pos += n;
        this.remaining -= n;
        if (this.remaining === 0 && !this.endFrame(now)) return;
        continue;
      }
      const avail = chunk.length - pos;
      if (avail < 2) {
        this.partial = chunk.subarray(pos);
        return;
      }
      const b0 = chunk[pos];
      const b1 = chunk[pos + 1];
      const fin = (b0 & 0x80) !== 0;
      const op = b0 & 0x0f;
      if ((b0 & 0x70) !== 0) return void fail(`connection ${this.id}: RSV bits set without an extension`);
      // RFC 6455 section 5.1: a server MUST NOT mask frames it sends.
      if ((b1 & 0x80) !== 0) return void fail(`connection ${this.id}: server sent a masked frame`);
      let len = b1 & 0x7f;
      let hlen = 2;
      if (len === 126) hlen = 4;
      else if (len === 127) hlen = 10;
      if (avail < hlen) {
        this.partial = chunk.subarray(pos);
        return;
      }
      if (len === 126) len = chunk.readUInt16BE(pos + 2);
      else if (len === 127) len = chunk.readUInt32BE(pos + 2) * 2 ** 32 + chunk.readUInt32BE(pos + 6);
      if (op >= 0x8) {
        // Control frames (section 5.5): whole and short; take them in one piece.
        if (!fin || len > 125) return void fail(`connection ${this.id}: malformed control frame`);
        if (avail < hlen + len) {
          this.partial = chunk.subarray(pos);
          return;
        }
        const data = chunk.subarray(pos + hlen, pos + hlen + len);
        pos += hlen + len;
        if (op === 0x9) this.socket.write(pongFrame(data));
        else if (op === 0x8) {
          if (!this.closing) return void fail(`connection ${this.id}: server sent close (${data.length >= 2 ? data.readUInt16BE(0) : 'no code'})`);
        } else if (op !== 0xa) return void fail(`connection ${this.id}: unknown control opcode ${op}`);
        continue;
      }
      if (op === 0x0) {
        if (!this.inMessage) return void fail(`connection ${this.id}: continuation frame without a message`);
      } else if (op === 0x1 || op === 0x2) {
        if (this.inMessage) return void fail(`connection ${this.id}: new message inside a fragmented one`);
        if (op !== opcode) return void fail(`connection ${this.id}: echo came back as ${op === 1 ? 'TEXT' : 'BINARY'}`);
      } else {
        return void fail(`connection ${this.id}: unknown opcode ${op}`);
      }
      pos += hlen;
      this.inMessage = !fin;
      this.frameFin = fin;
      this.inFrame = true;
      this.remaining = len;
      if (len === 0 && !this.endFrame(now)) return;
    }
  }

  endFrame(now) {
    this.inFrame = false;
    if (!this.frameFin) return true;
    if (this.msgOff !== template.length) {
      fail(`connection ${this.id}: echo of message ${this.recvSeq} has ${this.msgOff} bytes, sent ${template.length}`);
      return false;
    }
    this.complete(now);
    return true;
  }

  /** Compares n echoed bytes at chunk[pos] with what was sent at the current message offset. */
  verify(chunk, pos, n) {
    if (this.recvSeq === this.sendSeq) {
      fail(`connection ${this.id}: received bytes with no message in flight`);
      return false;
    }
    let off = this.msgOff;
    const end = off + n;
    if (end > template.length) {
      fail(`connection ${this.id}: echo of message ${this.recvSeq} is longer than the ${template.length} bytes sent`);
      return false;
    }
    if (off === 0) writeStamp(this.expStamp, 0, this.id, this.recvSeq);
    let s = pos;
    if (off < STAMP) {
      const k = Math.min(STAMP, end);
      if (chunk.compare(this.expStamp, off, k, s, s + (k - off)) !== 0) {
        const got = chunk.subarray(s, s + (k - off)).toString('latin1');
        fail(`connection ${this.id}: echo stamp mismatch at message ${this.recvSeq} (expected ${this.expStamp.toString('latin1', off, k)}, got ${JSON.stringify(got)}): reordered, lost or corrupted`);
        return false;
      }
      s += k - off;
      off = k;
    }
    if (off < end && chunk.compare(template, off, end, s, s + (end - off)) !== 0) {
      let at = 0;
      while (chunk[s + at] === template[off + at]) at++;
      fail(`connection ${this.id}: echoed payload differs from the sent one at byte ${off + at} of message ${this.recvSeq}`);
      return false;
    }
    this.msgOff = end;
    return true;
  }

  complete(now) {
    const seq = this.recvSeq++;
    this.msgOff = 0;
    if (this.onEcho !== null) return void this.onEcho(now);
    if (stats.measuring) {
      stats.completed++;
      this.windowCompleted++;
      stats.latency.record((now - this.sentAt[seq & (RING - 1)]) * 1000);
    }
    if (stats.running) this.sendOne(now);
  }

  /** Ends the connection politely; resolves when the socket is gone (bounded). */
  close() {
    this.closing = true;
    const socket = this.socket;
    return new Promise((resolve) => {
      if (socket.destroyed) return resolve();
      const timer = setTimeout(() => {
        socket.destroy();
        resolve();
      }, CLOSE_TIMEOUT_MS);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      if (cfg.mode === 'ws') socket.write(closeFrame());
      socket.end();
    });
  }
}

function checkHandshake(head, key) {
  const lines = head.split('\r\n');
  const status = /^HTTP\/1\.1 (\d{3})/.exec(lines[0]);
  if (!status) return `bad status line ${JSON.stringify(lines[0])}`;
  if (status[1] !== '101') return `status ${status[1]} instead of 101`;
  const headers = new Map();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) return `bad header line ${JSON.stringify(line)}`;
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  // RFC 6455 section 4.1, the client's checks of the server's response.
  if ((headers.get('upgrade') ?? '').toLowerCase() !== 'websocket') return 'Upgrade is not websocket';
  if (!(headers.get('connection') ?? '').toLowerCase().split(/\s*,\s*/).includes('upgrade')) return 'Connection lacks upgrade';
  const accept = createHash('sha1').update(key + GUID).digest('base64');
  if (headers.get('sec-websocket-accept') !== accept) return 'wrong Sec-WebSocket-Accept';
  if (headers.has('sec-websocket-extensions')) return 'server chose an extension that was not offered';
  if (headers.has('sec-websocket-protocol')) return 'server chose a subprotocol that was not offered';
  return null;
}

// ------------------------------------------------------------ CPU readings

/** User+system CPU seconds of another process, from /proc (Linux); null elsewhere. */
function serverCpuSeconds() {
  if (!cfg.serverPid) return null;
  try {
    const stat = readFileSync(`/proc/${cfg.serverPid}/stat`, 'latin1');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / (cfg.clkTck || 100);
  } catch {
    return null;
  }
}

/**
 * Busy CPU seconds (user, nice, system, irq, softirq, steal) of the CPUs the
 * server and generator are pinned to (all CPUs when unpinned), from
 * /proc/stat; null elsewhere. Minus our two processes, this is the load that
 * other programs, interrupts and the hypervisor put on those CPUs.
 */
function busyCpuSeconds() {
  try {
    const lines = readFileSync('/proc/stat', 'latin1').split('\n');
    const names = Array.isArray(cfg.cpus) ? cfg.cpus.map((c) => `cpu${c}`) : ['cpu'];
    let ticks = 0;
    for (const name of names) {
      const line = lines.find((l) => l.startsWith(name + ' '));
      if (!line) return null;
      const f = line.trim().split(/\s+/).slice(1).map(Number);
      ticks += f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] || 0);
    }
    return ticks / (cfg.clkTck || 100);
  } catch {
    return null;
  }
}

// ------------------------------------------------------------ the run

/** Opens the measurement window: the time and the CPU readings it is measured from. */
function openWindow() {
  return { start: performance.now(), cpu: process.cpuUsage(), server: serverCpuSeconds(), busy: busyCpuSeconds() };
}

/** Closes the window: its seconds, and the CPU the generator, the server and everything else spent in it (shares of a core). */
function closeWindow(window) {
  const seconds = (performance.now() - window.start) / 1000;
  const cpu = process.cpuUsage(window.cpu);
  const serverEnd = serverCpuSeconds();
  const busyEnd = busyCpuSeconds();
  const generatorCpu = (cpu.user + cpu.system) / 1e6 / seconds;
  const serverCpu = window.server !== null && serverEnd !== null ? (serverEnd - window.server) / seconds : null;
  const busy = window.busy !== null && busyEnd !== null ? (busyEnd - window.busy) / seconds : null;
  // Clock ticks are coarse (10 ms): a small negative difference is rounding.
  const otherCpu = busy !== null && serverCpu !== null ? Math.max(0, busy - generatorCpu - serverCpu) : null;
  return { seconds, generatorCpu, serverCpu, otherCpu };
}

/** Closes the HTTP/2 connections, if any (bounded). */
async function closeH2Sessions() {
  for (const pending of h2Sessions) {
    const session = await pending.catch(() => null);
    if (session === null || session.closed) continue;
    await new Promise((resolve) => {
      const timer = setTimeout(() => {
        session.destroy();
        resolve();
      }, CLOSE_TIMEOUT_MS);
      session.close(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/**
 * Workload 'open': cfg.connections loops, each opening a WebSocket, echoing
 * one message, closing it and starting over. Counts the cycles that finished
 * inside the window; latency is from the start of the open to the verified echo.
 */
async function mainOpen() {
  let nextId = 1;
  let cycles = 0;
  const loop = async () => {
    while (stats.running && !finished) {
      const conn = new Conn(nextId++);
      const t0 = performance.now();
      await conn.open();
      const echoed = new Promise((resolve) => (conn.onEcho = resolve));
      conn.sendOne(performance.now());
      const at = await echoed;
      await conn.close();
      if (stats.measuring) {
        cycles++;
        stats.latency.record((at - t0) * 1000);
      }
    }
  };
  const loops = [];
  for (let i = 0; i < cfg.connections; i++) loops.push(loop());
  const done = Promise.all(loops);

  await new Promise((resolve) => setTimeout(resolve, cfg.warmupMs));
  if (finished) return;
  const window = openWindow();
  cycles = 0;
  stats.latency.reset();
  stats.measuring = true;
  await new Promise((resolve) => setTimeout(resolve, cfg.durationMs));
  if (finished) return;
  stats.measuring = false;
  const measured = closeWindow(window);
  const counted = cycles;
  stats.running = false;
  const drain = setTimeout(() => fail(`open/echo/close loops still running ${CONNECT_TIMEOUT_MS} ms after the window`), CONNECT_TIMEOUT_MS);
  await done;
  clearTimeout(drain);
  await closeH2Sessions();
  if (finished) return;
  finished = true;
  const { seconds, generatorCpu, serverCpu, otherCpu } = measured;
  const result = {
    generator: 'node',
    seconds,
    opens: counted,
    opensPerSec: counted / seconds,
    p50Ms: stats.latency.quantile(0.5) / 1000,
    p99Ms: stats.latency.quantile(0.99) / 1000,
    generatorCpu,
    serverCpu,
    otherCpu,
    ...(tlsOptions ? { tlsProtocol: tlsSeen.protocol, tlsCipher: tlsSeen.cipher } : {}),
  };
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0));
}

async function main() {
  if (cfg.workload === 'open') return mainOpen();
  const conns = [];
  for (let i = 0; i < cfg.connections; i++) conns.push(new Conn(i + 1));
  const connectTimer = setTimeout(() => fail(`connections not ready after ${CONNECT_TIMEOUT_MS} ms`), CONNECT_TIMEOUT_MS);
  await Promise.all(conns.map((c) => c.open()));
  clearTimeout(connectTimer);
  if (finished) return;

  for (const c of conns) c.start();
  const t0 = performance.now();

  await new Promise((resolve) => setTimeout(resolve, cfg.warmupMs));
  if (finished) return;
  const window = openWindow();
  stats.completed = 0;
  stats.latency.reset();
  for (const c of conns) c.windowCompleted = 0;
  stats.measuring = true;

  await new Promise((resolve) => setTimeout(resolve, Math.max(0, t0 + cfg.warmupMs + cfg.durationMs - performance.now())));
  if (finished) return;
  stats.measuring = false;
  stats.running = false;
  const measured = closeWindow(window);
  const completed = stats.completed;
  const idle = conns.filter((c) => c.windowCompleted === 0).length;

  await Promise.all(conns.map((c) => c.close()));
  await closeH2Sessions();
  if (finished) return;
  finished = true;
  const { seconds, generatorCpu, serverCpu, otherCpu } = measured;
  const result = {
    generator: 'node',
    seconds,
    messages: completed,
    msgPerSec: completed / seconds,
    mbPerSec: (completed * cfg.size) / seconds / 1e6,
    p50Ms: stats.latency.quantile(0.5) / 1000,
    p99Ms: stats.latency.quantile(0.99) / 1000,
    generatorCpu,
    serverCpu,
    otherCpu,
    idleConnections: idle,
    ...(tlsOptions ? { tlsProtocol: tlsSeen.protocol, tlsCipher: tlsSeen.cipher } : {}),
  };
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0));
}

main().catch((err) => fail(err instanceof Error ? err.message : String(err)));
