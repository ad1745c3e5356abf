// stream-file: a large file travels as ONE WebSocket message, and neither
// side ever holds it whole. The sender hands a file stream to
// session.sendStream(), which sends each chunk as a fragment (RFC 6455
// section 5.4) and paces itself on bufferedAmount; the receiver has an
// onFragment handler, so it gets the message piece by piece as it arrives
// and appends each piece to a file. Both sides print the SHA-256.
//
//   node dist/examples/stream-file/main.js receive [--port N] [--out DIR]
//   node dist/examples/stream-file/main.js send ws://127.0.0.1:7681/ FILE
//   node dist/examples/stream-file/main.js --self-test   (a 24 MiB file, both sides in-process)
//
// In your own project, import from 'sockeye' instead of '../../src/index.js'.
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, rmSync, statSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { connect, createServer, type ServerHandler, type WebSocketServer } from '../../src/index.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    port: { type: 'string', default: '7681' },
    out: { type: 'string' },
    'self-test': { type: 'boolean', default: false },
  },
});
const selfTest = values['self-test'] || process.env.SOCKEYE_EXAMPLE_SELFTEST === '1';

/** What the receiver keeps per session: the file being written, never the message. */
interface Upload {
  files: number;
  file: WriteStream | null;
  path: string;
  hash: Hash | null;
  bytes: number;
  fragments: number;
  largest: number;
  /** Most bytes that waited in memory for the disk (the write stream's buffer). */
  waitingForDisk: number;
}

/**
 * The receiver. It accepts one binary message per file, as large as 1 GiB:
 * the 16 MiB default of maxMessageBytes exists for receivers that assemble
 * messages in memory, and this one does not.
 */
function startReceiver(outDir: string): WebSocketServer {
  mkdirSync(outDir, { recursive: true });
  const handler: ServerHandler<Upload> = {
    limits: { maxMessageBytes: 1024 ** 3, maxFrameBytes: 1024 * 1024 },
    onOpen(session) {
      session.data = { files: 0, file: null, path: '', hash: null, bytes: 0, fragments: 0, largest: 0, waitingForDisk: 0 };
    },
    onFragment(session, fragment) {
      const u = session.data;
      if (!fragment.binary) {
        // RFC 6455 section 7.4.1, 1003: "a type of data it cannot accept".
        session.close(1003, 'send files as binary messages');
        return;
      }
      if (fragment.first) {
        u.files++;
        u.path = join(outDir, `upload-${process.pid}-${u.files}.bin`);
        u.file = createWriteStream(u.path);
        u.hash = createHash('sha256');
        u.bytes = u.fragments = u.largest = u.waitingForDisk = 0;
      }
      const file = u.file!;
      // fragment.data is ours to keep; it is a view of the bytes read, not a copy.
      u.hash!.update(fragment.data);
      file.write(fragment.data);
      u.bytes += fragment.data.length;
      u.fragments++;
      u.largest = Math.max(u.largest, fragment.data.length);
      u.waitingForDisk = Math.max(u.waitingForDisk, file.writableLength);
      if (fragment.last) {
        const { bytes, fragments, largest, path } = u;
        const sha = u.hash!.digest('hex');
        console.log(`receiver: message ${u.files} complete: ${bytes} bytes in ${fragments} fragments, largest ${largest} bytes`);
        file.end(() => {
          console.log(`receiver: wrote ${path}, sha256 ${sha}`);
          console.log(`receiver: at most ${u.waitingForDisk} bytes waited in memory for the disk`);
          session.send(`sha256 ${sha} ${bytes}`);
        });
      }
    },
    onClose(session) {
      // A message cut short leaves a partial file: say so rather than leave it unexplained.
      const u = session.data;
      if (u.file && !u.file.writableEnded) {
        u.file.end();
        console.log(`receiver: ${u.path} is incomplete (connection closed mid-message)`);
      }
    },
  };
  return createServer({ handler });
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/** Sends `path` as one binary message; resolves true if the receiver's hash matches. */
async function sendFile(url: string, path: string): Promise<boolean> {
  const size = statSync(path).size;
  const session = await connect(url);
  console.log(`sender: streaming ${basename(path)} (${size} bytes) as one binary message`);
  // Each chunk the file stream yields becomes one frame; sendStream waits while
  // bufferedAmount is above the high-water mark, so memory stays bounded.
  await session.sendStream(createReadStream(path, { highWaterMark: 256 * 1024 }), { binary: true });
  const reply = await session.messages().next();
  session.close(1000);
  await session.closed;
  if (reply.done) {
    console.log('sender: the receiver closed without a reply');
    return false;
  }
  const [, remoteSha, remoteBytes] = reply.value.text.split(' ');
  const localSha = await sha256File(path);
  console.log(`sender: receiver reports sha256 ${remoteSha} (${remoteBytes} bytes)`);
  console.log(`sender: local sha256 ${localSha}`);
  const same = remoteSha === localSha && Number(remoteBytes) === size;
  console.log(same ? 'sender: hashes match' : 'sender: HASHES DIFFER');
  return same;
}

const command = selfTest ? 'self-test' : positionals[0];
if (command === 'self-test') {
  const dir = mkdtempSync(join(tmpdir(), 'sockeye-stream-file-'));
  try {
    // 24 MiB of random bytes, written 1 MiB at a time: more than the default 16 MiB maxMessageBytes.
    const source = join(dir, 'random.bin');
    const out = createWriteStream(source);
    for (let i = 0; i < 24; i++) if (!out.write(randomBytes(1024 * 1024))) await new Promise<void>((r) => out.once('drain', () => r()));
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));

    const receiver = startReceiver(join(dir, 'received'));
    const { port } = await receiver.listen(0, '127.0.0.1');
    console.log(`receiver: listening on ws://127.0.0.1:${port}/`);
    const ok = await sendFile(`ws://127.0.0.1:${port}/`, source);
    await receiver.close();
    if (!ok) process.exitCode = 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
} else if (command === 'receive') {
  const outDir = values.out ?? join(tmpdir(), 'sockeye-stream-file');
  const receiver = startReceiver(outDir);
  const { port } = await receiver.listen(Number(values.port), '127.0.0.1');
  console.log(`receiver: listening on ws://127.0.0.1:${port}/, writing to ${outDir}`);
  const stop = () => void receiver.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
} else if (command === 'send' && positionals.length === 3) {
  if (!(await sendFile(positionals[1], positionals[2]))) process.exitCode = 1;
} else {
  console.error('usage: main.js receive [--port N] [--out DIR] | main.js send URL FILE | main.js --self-test');
  process.exitCode = 2;
}
