// The framing floor: the least a WebSocket echo server on node:net can do per
// message, as a reference row for the small-message scenarios and for
// connection setup (it is NOT a usable server). It answers the opening
// handshake, then for each read parses
// the masked frames in it, unmasks them and writes every echo of the read in
// one buffer and one write, as sockeye does. It leaves out everything a real
// server needs on top: size limits, UTF-8 validation, fragmentation, a close
// handshake with timeouts, keepalive, backpressure, handlers, send() statuses,
// per-message events. raw.mjs is the cost of the sockets alone; the distance
// from raw to this row is what framing itself costs; the distance from this
// row to sockeye is what the rest of a real library costs.
//
// --fanout: each message is sent to every upgraded connection instead, the
// frame built once and handed to each socket with one write (the least a
// broadcast on node:net can cost: one write per client), as a reference row
// for the fan-out scenario.
//
// A frame that spans reads (the large-message scenarios) is the least a
// server that hands whole messages to an application can do: the reply
// frame's buffer is made once, when the header arrives, and each read's
// piece is unmasked straight into it (sockeye's own copyMasked, so both
// unmask at the same speed); the whole frame then leaves in one write. One
// pass over each payload byte between the kernel's two copies, where
// sockeye with `transfer` makes the same pass and ws-native makes two (its
// join, then its unmasking in C).
//
// Only what the generator sends is accepted: masked binary or text frames with
// fin set, and a close frame at the end. Anything else destroys the connection
// (the generator then fails the run, so a number is never produced from a
// frame this server did not understand).
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { serverOptions, serveSockets } from '../lib/server-life.mjs';
import { copyMasked } from '../../dist/src/core/mask.js';

const opts = serverOptions();
if (opts.tls) {
  process.stderr.write('floor.mjs: plain TCP only (no --tls)\n');
  process.exit(64);
}
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const sockets = new Set();
/** Connections past their opening handshake: a broadcast goes to these only. */
const upgraded = new Set();

/** Writes an unmasked final frame's header at target[at]; returns where its payload starts. */
function putHeader(target, at, opcode, len) {
  target[at] = 0x80 | opcode;
  if (len < 126) {
    target[at + 1] = len;
    return at + 2;
  }
  if (len < 65_536) {
    target[at + 1] = 126;
    target.writeUInt16BE(len, at + 2);
    return at + 4;
  }
  target[at + 1] = 127;
  target.writeUInt32BE(Math.floor(len / 2 ** 32), at + 2);
  target.writeUInt32BE(len >>> 0, at + 6);
  return at + 10;
}

function onConnection(socket) {
  socket.setNoDelay(true);
  sockets.add(socket);
  socket.on('close', () => {
    sockets.delete(socket);
    upgraded.delete(socket);
  });
  socket.on('error', () => {});
  let head = '';
  let rest = null; // bytes of a header split across reads, or of a small frame
  // A frame that spans reads: its reply (server header, then payload) filled as the pieces come.
  let big = null;
  let bigAt = 0; // next payload byte of `big` to fill
  let bigKey = 0;
  let bigGot = 0; // payload bytes unmasked so far
  const onHead = (chunk) => {
    head += chunk.toString('latin1');
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) {
      if (head.length > 8192) socket.destroy();
      return;
    }
    const key = /^sec-websocket-key:[ \t]*(\S+)/im.exec(head.slice(0, end))?.[1];
    if (!key) {
      socket.destroy();
      return;
    }
    const accept = createHash('sha1').update(key + GUID).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.off('data', onHead);
    socket.on('data', onFrames);
    upgraded.add(socket);
    const after = Buffer.from(head.slice(end + 4), 'latin1');
    if (after.length > 0) onFrames(after);
  };
  const onFrames = (chunk) => {
    if (big !== null) {
      const take = Math.min(big.length - bigAt, chunk.length);
      copyMasked(chunk.subarray(0, take), bigKey, bigGot, big, bigAt);
      bigAt += take;
      bigGot += take;
      if (bigAt < big.length) return;
      socket.write(big);
      big = null;
      if (take === chunk.length) return;
      chunk = chunk.subarray(take);
    }
    const buf = rest === null ? chunk : Buffer.concat([rest, chunk]);
    rest = null;
    // Every echo of this read: at most the input's size (server headers are 4 bytes shorter: no mask key).
    const out = Buffer.allocUnsafe(buf.length);
    let o = 0;
    let p = 0;
    let close = false;
    while (p + 2 <= buf.length) {
      const b0 = buf[p];
      const b1 = buf[p + 1];
      let len = b1 & 0x7f;
      let h = 2;
      if ((b1 & 0x80) === 0 || (b0 & 0x70) !== 0 || (b0 & 0x80) === 0) {
        socket.destroy();
        return;
      }
      if (len === 126) {
        if (p + 4 > buf.length) break;
        len = buf.readUInt16BE(p + 2);
        h = 4;
      } else if (len === 127) {
        if (p + 10 > buf.length) break;
        len = buf.readUInt32BE(p + 2) * 2 ** 32 + buf.readUInt32BE(p + 6);
        h = 10;
      }
      const opcode = b0 & 0x0f;
      const m = p + h;
      if (p + h + 4 + len > buf.length) {
        // A frame that spans reads: its reply is made now and filled read by read. Smaller frames split
        // by a read's end wait whole in `rest` (no more than a few kilobytes).
        if (len < 4096 || m + 4 > buf.length || opcode === 0x8) break;
        big = Buffer.allocUnsafe((len < 65_536 ? 4 : 10) + len); // len >= 4096: a 16- or 64-bit length
        const sh = putHeader(big, 0, opcode, len);
        bigKey = buf.readInt32LE(m);
        const piece = buf.subarray(m + 4);
        copyMasked(piece, bigKey, 0, big, sh);
        bigAt = sh + piece.length;
        bigGot = piece.length;
        p = buf.length;
        break;
      }
      const k0 = buf[m], k1 = buf[m + 1], k2 = buf[m + 2], k3 = buf[m + 3];
      o = putHeader(out, o, opcode, len);
      const s = m + 4;
      let i = 0;
      for (; i + 4 <= len; i += 4) {
        out[o + i] = buf[s + i] ^ k0;
        out[o + i + 1] = buf[s + i + 1] ^ k1;
        out[o + i + 2] = buf[s + i + 2] ^ k2;
        out[o + i + 3] = buf[s + i + 3] ^ k3;
      }
      for (; i < len; i++) out[o + i] = buf[s + i] ^ buf[m + (i & 3)];
      o += len;
      p = s + len;
      if (opcode === 0x8) {
        close = true; // the echo above is our close frame, with the client's code
        break;
      }
      if (opcode !== 0x1 && opcode !== 0x2) {
        socket.destroy();
        return;
      }
    }
    if (!close && p < buf.length) rest = Buffer.from(buf.subarray(p));
    if (close) upgraded.delete(socket);
    if (o > 0) {
      if (opts.fanout && !close) {
        const frame = out.subarray(0, o);
        for (const s of upgraded) s.write(frame);
      } else socket.write(out.subarray(0, o));
    }
    // The closing handshake is complete: close the TCP connection at once (section 7.1.1, the server first),
    // as sockeye does, unless the kernel has not taken the close frame yet.
    if (close) {
      if (socket.writableLength === 0) socket.destroy();
      else socket.end();
    }
  };
  socket.on('data', onHead);
}

const server = createServer(onConnection);
await serveSockets(server, sockets);
