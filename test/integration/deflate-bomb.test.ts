/**
 * The decompression bomb (invariant S3, bounded memory: the inflated size is
 * one of the bounded buffers): a compressed message of about 1 MiB that inflates to 1 GiB of zeros
 * must be refused with 1009 once the inflated size passes the message limit
 * (16 MiB here), while memory grows by no more than the limit plus a small
 * margin. Checked on the codec alone, and through a real server over a
 * socket (a raw client that negotiated permessage-deflate sends the bomb with
 * RSV1), in one frame and in 16 fragments.
 *
 * Memory is measured, not assumed: process.memoryUsage() (rss, arrayBuffers,
 * heapUsed) after a forced GC as the baseline, then sampled every 2 ms during
 * the attack and once more at the moment of refusal. Each scenario runs in a
 * fresh child process (this same file, started with SOCKEYE_BOMB_CHILD set)
 * that reads the bomb from a temporary file: malloc keeps freed memory for
 * reuse, so in a process that had already inflated a lot the rss growth would
 * read near zero whatever the code did. The parent builds the bomb once,
 * checks its inflated size by streaming it through node:zlib without keeping
 * the output, and asserts on what the children report.
 *
 * The margin: 32 MiB above the limit. What may legitimately come on top of
 * the 16 MiB of inflated output held before the refusal: the compressed
 * message itself (about 1 MiB, read from the file, held by the server, and in
 * the socket case also as the client's masked frame and the socket's read
 * chunks), one zlib output chunk (16 KiB), zlib's inflate state (about 44 KiB
 * with a 32 KiB window), the server, client and sockets of the socket case,
 * and V8/malloc overhead (heap growth, allocator fragmentation). A codec that
 * did not stop at the limit would grow by up to 1 GiB, so the bound
 * discriminates by a factor of 20.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { constants, createDeflateRaw, createInflateRaw } from 'node:zlib';
import { connect, type Message, type ServerSession } from '../../src/index.js';
import { LimitExceededError, type WebSocketError } from '../../src/core/errors.js';
import { DeflateCodec } from '../../src/transport/permessage-deflate.js';
import { Limiter } from '../../src/transport/limiter.js';
import { encodeRawFrame, RawClient, startServer, withTimeout } from '../helpers/ws-pair.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const LIMIT = 16 * MiB;
const MARGIN = 32 * MiB;
const RSV1 = 0x4;
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

type Scenario = 'codec' | 'socket-1' | 'socket-16';

/** What a child reports. */
interface Report {
  scenario: Scenario;
  /** Close code (socket) or error close code (codec) of the refusal. */
  code: number | null;
  /** The server's own close code for the session (socket scenarios). */
  serverCode?: number | null;
  errorClass?: string;
  /** From sending (or calling decompress) to the refusal. */
  ms: number;
  base: { rss: number; arrayBuffers: number; heapUsed: number };
  growth: { rss: number; arrayBuffers: number; heapUsed: number };
  samples: number;
  zlibActiveAfter: number;
  /** Socket scenarios: another connection of the same server still echoes afterwards. */
  bystanderOk?: boolean;
}

/**
 * Deflates `inflated` zeros as one permessage-deflate message (sync flush,
 * tail removed, RFC 7692 section 7.2.1), 1 MiB at a time: nothing ever holds
 * the inflated form. About 1 MiB comes out (DEFLATE's best ratio is ~1032:1).
 */
async function buildBomb(inflated: number): Promise<Buffer> {
  const z = createDeflateRaw({ level: 9, memLevel: 9, windowBits: 15 });
  const out: Buffer[] = [];
  z.on('data', (c: Buffer) => out.push(c));
  const zeros = Buffer.alloc(MiB);
  for (let written = 0; written < inflated; written += zeros.length) {
    if (!z.write(zeros)) await new Promise((r) => z.once('drain', r));
  }
  await new Promise<void>((r) => z.flush(constants.Z_SYNC_FLUSH, () => r()));
  z.close();
  const all = Buffer.concat(out);
  assert.deepEqual(all.subarray(all.length - 4), TAIL);
  return all.subarray(0, all.length - 4);
}

/** Inflates `payload` + tail with node:zlib, counting bytes without keeping them: the bomb's real size. */
async function inflatedSize(payload: Buffer): Promise<{ bytes: number; ms: number }> {
  const t0 = performance.now();
  const z = createInflateRaw();
  let bytes = 0;
  z.on('data', (c: Buffer) => (bytes += c.length));
  z.write(payload);
  z.write(TAIL);
  await new Promise<void>((r) => z.flush(constants.Z_SYNC_FLUSH, () => r()));
  z.close();
  return { bytes, ms: performance.now() - t0 };
}

const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;

// ------------------------------------------------------------------ child side

/** Samples process memory every 2 ms and on demand, after a forced GC for the baseline; keeps the peaks. */
class MemorySampler {
  readonly base: Report['base'];
  readonly peak: Report['base'];
  samples = 0;
  private timer: NodeJS.Timeout;

  constructor(gc: () => void) {
    gc();
    gc();
    const u = process.memoryUsage();
    this.base = { rss: u.rss, arrayBuffers: u.arrayBuffers, heapUsed: u.heapUsed };
    this.peak = { ...this.base };
    this.timer = setInterval(() => this.sample(), 2);
  }

  sample(): void {
    const u = process.memoryUsage();
    this.samples++;
    this.peak.rss = Math.max(this.peak.rss, u.rss);
    this.peak.arrayBuffers = Math.max(this.peak.arrayBuffers, u.arrayBuffers);
    this.peak.heapUsed = Math.max(this.peak.heapUsed, u.heapUsed);
  }

  stop(): Report['growth'] {
    this.sample();
    clearInterval(this.timer);
    return { rss: this.peak.rss - this.base.rss, arrayBuffers: this.peak.arrayBuffers - this.base.arrayBuffers, heapUsed: this.peak.heapUsed - this.base.heapUsed };
  }
}

async function runChild(scenario: Scenario, bombPath: string): Promise<Report> {
  // A forced GC before the baseline, so earlier garbage is not collected during the measurement (hiding growth).
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const bomb = readFileSync(bombPath);

  if (scenario === 'codec') {
    const limiter = new Limiter(1);
    const params = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 };
    const codec = new DeflateCodec('server', params, {}, limiter);
    const sampler = new MemorySampler(gc);
    const t0 = performance.now();
    const err = await new Promise<WebSocketError | null>((resolve) =>
      codec.decompress([bomb], LIMIT, (e) => {
        sampler.sample(); // what was inflated so far is still referenced, or not yet collected, here
        resolve(e);
      }),
    );
    const ms = performance.now() - t0;
    const growth = sampler.stop();
    codec.close();
    return { scenario, code: err?.closeCode ?? null, errorClass: err ? (err instanceof LimitExceededError ? 'LimitExceededError' : err.constructor.name) : 'none', ms, base: sampler.base, growth, samples: sampler.samples, zlibActiveAfter: limiter.active };
  }

  const fragments = scenario === 'socket-1' ? 1 : 16;
  let serverCode: number | null = null;
  const server = await startServer({
    perMessageDeflate: true,
    limits: { maxMessageBytes: LIMIT },
    handler: {
      onMessage(s: ServerSession, m: Message) {
        s.send(m.data, { binary: m.binary });
      },
      onClose(_s, info) {
        if (serverCode === null) serverCode = info.code;
      },
    },
  });
  // Another connection that must carry on (S3: only the offending connection is closed).
  const bystander = await connect(server.url(), { perMessageDeflate: true, keepalive: null });
  const client = await RawClient.open(server.port, { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' } });
  try {
    if (!/^permessage-deflate/.test(client.head!.headers.get('sec-websocket-extensions')?.[0] ?? '')) throw new Error('deflate not negotiated');
    // RFC 7692 section 6.1: RSV1 on the first frame only; the others are continuations.
    const step = Math.ceil(bomb.length / fragments);
    const frames: Buffer[] = [];
    for (let i = 0; i < fragments; i++) {
      frames.push(encodeRawFrame(i === 0 ? 0x2 : 0x0, bomb.subarray(i * step, (i + 1) * step), { fin: i === fragments - 1, rsv: i === 0 ? RSV1 : 0 }));
    }
    const wire = Buffer.concat(frames);
    frames.length = 0;

    const sampler = new MemorySampler(gc);
    const t0 = performance.now();
    client.write(wire);
    const close = await client.waitClose(30_000);
    const ms = performance.now() - t0;
    await withTimeout(
      (async () => {
        while (serverCode === null) await new Promise((r) => setTimeout(r, 5));
      })(),
      10_000,
      'the server session to close',
    );
    const growth = sampler.stop();
    await client.waitClosed(10_000);

    const text = JSON.stringify({ still: 'here' }).repeat(100);
    bystander.send(text);
    const r = await withTimeout(bystander.messages().next(), 5000, 'the bystander echo');
    const bystanderOk = (r.value as Message | undefined)?.text === text;
    return { scenario, code: close.code, serverCode, ms, base: sampler.base, growth, samples: sampler.samples, zlibActiveAfter: server.server.context.zlib.active, bystanderOk };
  } finally {
    client.destroy();
    bystander.terminate();
    await server.server.close();
  }
}

// ----------------------------------------------------------------- parent side

function runScenario(scenario: Scenario, bombPath: string): Promise<Report> {
  const file = fileURLToPath(import.meta.url);
  return new Promise((resolve, reject) => {
    // NODE_TEST_CONTEXT would make the child talk to a test runner that is not there.
    const env: NodeJS.ProcessEnv = { ...process.env, SOCKEYE_BOMB_CHILD: scenario, SOCKEYE_BOMB_FILE: bombPath };
    delete env.NODE_TEST_CONTEXT;
    const child = spawn(process.execPath, [file], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s.slice(0, 20_000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('BOMB-REPORT '));
      if (code !== 0 || !line) reject(new Error(`child ${scenario} exited with ${code ?? signal}\nstdout: ${out}\nstderr: ${err}`));
      else resolve(JSON.parse(line.slice('BOMB-REPORT '.length)) as Report);
    });
  });
}

const childScenario = process.env.SOCKEYE_BOMB_CHILD as Scenario | undefined;

if (childScenario) {
  const report = await runChild(childScenario, process.env.SOCKEYE_BOMB_FILE!);
  process.stdout.write(`BOMB-REPORT ${JSON.stringify(report)}\n`);
} else {
  describe('decompression bomb: 1 GiB inflated from ~1 MiB, limit 16 MiB', () => {
    let dir: string;
    let bombPath: string;
    let bomb: Buffer;
    let full: { bytes: number; ms: number };

    before(async () => {
      bomb = await buildBomb(GiB);
      full = await inflatedSize(bomb);
      dir = mkdtempSync(join(tmpdir(), 'sockeye-bomb-'));
      bombPath = join(dir, 'bomb.bin');
      writeFileSync(bombPath, bomb);
    });
    after(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('the bomb is what it claims: about 1 MiB that inflates to at least 1 GiB', (t) => {
      assert.ok(bomb.length < 1.1 * MiB, `${bomb.length} bytes compressed`);
      assert.ok(full.bytes >= GiB, `${full.bytes} bytes inflated`);
      t.diagnostic(`bomb: ${bomb.length} bytes compressed -> ${full.bytes} bytes inflated (${Math.round(full.bytes / bomb.length)}:1); node:zlib inflates all of it (counting, not keeping) in ${full.ms.toFixed(0)} ms`);
    });

    const titles: Record<Scenario, string> = {
      codec: 'codec level: DeflateCodec.decompress refuses it with 1009',
      'socket-1': 'a real server over a socket, the bomb in one frame with RSV1: closed with 1009',
      'socket-16': 'a real server over a socket, the bomb in 16 frames (RSV1 on the first): closed with 1009',
    };
    for (const scenario of ['codec', 'socket-1', 'socket-16'] as const) {
      it(`${titles[scenario]}, memory growth under limit + 32 MiB, zlib stopped`, { timeout: 90_000 }, async (t) => {
        const r = await runScenario(scenario, bombPath);
        t.diagnostic(
          `${scenario}: refused ${r.ms.toFixed(1)} ms after sending (inflating all of it takes ${full.ms.toFixed(0)} ms); ` +
            `growth over a ${mib(r.base.rss)} rss baseline: rss ${mib(r.growth.rss)}, arrayBuffers ${mib(r.growth.arrayBuffers)}, heapUsed ${mib(r.growth.heapUsed)} ` +
            `(${r.samples} samples); bound ${mib(LIMIT + MARGIN)}`,
        );
        // RFC 6455 section 7.4.1: 1009, a message too big to process.
        assert.equal(r.code, 1009);
        if (scenario === 'codec') assert.equal(r.errorClass, 'LimitExceededError');
        else {
          assert.equal(r.serverCode, 1009, 'the server closed that session with 1009');
          assert.equal(r.bystanderOk, true, 'the server and its other connection carry on');
        }
        assert.ok(r.growth.rss < LIMIT + MARGIN, `rss grew ${mib(r.growth.rss)}`);
        assert.ok(r.growth.arrayBuffers < LIMIT + MARGIN, `arrayBuffers grew ${mib(r.growth.arrayBuffers)}`);
        // The inflated output really was held up to the limit (the measurement sees what it should).
        assert.ok(r.growth.arrayBuffers >= LIMIT * 0.9, `arrayBuffers grew ${mib(r.growth.arrayBuffers)}: the sampler saw the output`);
        assert.equal(r.zlibActiveAfter, 0, 'no zlib work left running for it');
        assert.ok(r.samples >= 2);
      });
    }
  });
}
