// permessage-deflate benchmark: sockeye against ws, in the same run, each
// server in its own child process, one load generator (also a child process,
// using the ws client for both, so the client side is the same).
//
//   node bench/deflate.mjs            (about a minute; needs `npm run build` first)
//   options: --duration S --warmup S --conns N --idle N --no-pin
//
// 1. Throughput: compressed JSON echo. `--conns` connections (default 50),
//    each with one message in flight (send, wait for the echo, check it byte
//    for byte, send the next), realistic JSON documents of about 2 KiB (a
//    pool of 64 different ones), with and without context takeover.
// 2. Memory per connection: `--idle` connections (default 1000) opened a tenth
//    at a time, each connection after one compressed message both ways (so
//    both zlib streams exist), then idle. The server reports
//    process.memoryUsage() after a forced GC after each step; the
//    least-squares slope over the readings of the second half is the cost of
//    one more connection. (From an empty server, what the first connections
//    make once, compiled code and V8's young generation growing to its
//    maximum, was charged to every connection: 21.9 KiB for sockeye and 14.7
//    for ws without deflate, against 3 to 4 and 4 to 6 for one more.) Without
//    deflate, with context takeover, and without (RFC 7692 section 7.1.1:
//    server_no_context_takeover and client_no_context_takeover).
//
// Both libraries run with their shipped deflate defaults (zlib level 6,
// memLevel 8, 15-bit windows, threshold 1024 bytes). When taskset works the
// server runs on CPU 0 and the generator on CPU 1. Progress goes to stderr,
// the Markdown report to stdout.

import { spawn, spawnSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { IDLE_NODE_FLAGS } from './lib/scenarios.mjs';
import { slope } from './lib/slope.mjs';

const SELF = fileURLToPath(import.meta.url);
const ROOT = dirname(dirname(SELF));
const STEP_TIMEOUT_MS = 60_000;

// ------------------------------------------------------------ shared: the JSON documents

/** A deterministic pool of JSON documents of about 2 KiB, like an API or telemetry feed. */
function jsonPool(count = 64) {
  let x = 0x12345678;
  const rnd = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
  const words = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet', 'kilo', 'lima'];
  const pick = (a) => a[Math.floor(rnd() * a.length)];
  const docs = [];
  for (let i = 0; i < count; i++) {
    const doc = {
      type: 'order.updated',
      id: `ord_${Math.floor(rnd() * 1e9).toString(36)}`,
      ts: new Date(1_700_000_000_000 + Math.floor(rnd() * 1e9)).toISOString(),
      customer: { id: Math.floor(rnd() * 1e6), name: `${pick(words)} ${pick(words)}`, email: `${pick(words)}.${pick(words)}@example.com`, tier: pick(['free', 'pro', 'enterprise']) },
      status: pick(['pending', 'paid', 'shipped', 'delivered']),
      items: [],
      totals: {},
      tags: [],
    };
    let total = 0;
    while (JSON.stringify(doc).length < 1900) {
      const price = Math.round(rnd() * 10000) / 100;
      total += price;
      doc.items.push({ sku: `SKU-${Math.floor(rnd() * 1e5)}`, name: `${pick(words)} ${pick(words)} ${pick(words)}`, qty: 1 + Math.floor(rnd() * 5), price, currency: 'EUR' });
      if (doc.tags.length < 5) doc.tags.push(pick(words));
    }
    doc.totals = { net: Math.round(total * 100) / 100, vat: Math.round(total * 19) / 100, items: doc.items.length };
    docs.push(JSON.stringify(doc));
  }
  return docs;
}

// ------------------------------------------------------------ mode: server

async function runServer(kind, deflate) {
  // deflate: 'off' | 'on' (context takeover) | 'no-takeover' | 'small' (10-bit windows both ways, memLevel 4)
  const pmd = {
    off: false,
    on: {},
    'no-takeover': { serverNoContextTakeover: true, clientNoContextTakeover: true },
    small: { serverMaxWindowBits: 10, clientMaxWindowBits: 10, memLevel: 4 },
  }[deflate];
  let port;
  let shutdown;
  if (kind === 'sockeye') {
    const { createServer } = await import(join(ROOT, 'dist/src/index.js'));
    const server = createServer({
      port: 0,
      host: '127.0.0.1',
      keepalive: null,
      perMessageDeflate: pmd,
      handler: {
        onMessage(session, m) {
          session.send(m.data, { binary: m.binary });
        },
      },
      onError(err) {
        process.stderr.write(`sockeye server error: ${err instanceof Error ? err.message : String(err)}\n`);
      },
    });
    port = (await server.listen(0, '127.0.0.1')).port;
    shutdown = () => server.close();
  } else {
    const { WebSocketServer } = await import('ws');
    // ws names zlib's memLevel inside zlibDeflateOptions.
    const wsPmd = pmd === false ? false : pmd.memLevel ? { serverMaxWindowBits: pmd.serverMaxWindowBits, clientMaxWindowBits: pmd.clientMaxWindowBits, zlibDeflateOptions: { memLevel: pmd.memLevel } } : { ...pmd };
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: wsPmd });
    wss.on('connection', (ws) => {
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
      ws.on('error', () => {});
    });
    await new Promise((resolve) => wss.once('listening', resolve));
    port = wss.address().port;
    shutdown = async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise((resolve) => wss.close(resolve));
    };
  }
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    if (line === 'MEM') {
      // Two full GCs, so only what is still referenced counts (needs --expose-gc).
      globalThis.gc();
      globalThis.gc();
      const u = process.memoryUsage();
      process.stdout.write(`MEM ${JSON.stringify(u)}\n`);
    } else if (line === 'CPU') {
      const c = process.cpuUsage();
      process.stdout.write(`CPU ${JSON.stringify({ us: c.user + c.system, at: performance.now() })}\n`);
    }
  });
  rl.on('close', () => {
    const t = setTimeout(() => process.exit(0), 3000);
    Promise.resolve(shutdown()).finally(() => {
      clearTimeout(t);
      process.exit(0);
    });
  });
  process.stdout.write(`LISTENING ${port}\n`);
}

// ------------------------------------------------------------ mode: generator

async function runGenThroughput(port, conns, warmupS, durationS) {
  const { default: WebSocket } = await import('ws');
  const docs = jsonPool();
  const sockets = await openClients(WebSocket, port, conns);
  let counting = false;
  let echoes = 0;
  let bad = 0;
  let stop = false;
  const loops = sockets.map(
    (ws, c) =>
      new Promise((resolve) => {
        let i = c;
        let expected = '';
        const sendNext = () => {
          if (stop) {
            resolve();
            return;
          }
          expected = docs[i++ % docs.length];
          ws.send(expected);
        };
        ws.on('message', (data) => {
          if (data.toString() !== expected) bad++;
          if (counting) echoes++;
          sendNext();
        });
        ws.on('close', () => resolve());
        sendNext();
      }),
  );
  await sleep(warmupS * 1000);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  counting = true;
  process.stdout.write('MEASURING\n');
  await sleep(durationS * 1000);
  counting = false;
  const elapsed = (performance.now() - t0) / 1000;
  const c1 = process.cpuUsage(c0);
  stop = true;
  await Promise.race([Promise.all(loops), sleep(5000)]);
  for (const ws of sockets) ws.terminate();
  process.stdout.write(`RESULT ${JSON.stringify({ echoes, elapsed, bad, genCpu: (c1.user + c1.system) / 1e6 / elapsed })}\n`);
  process.exit(0);
}

async function runGenIdle(port, n, deflate) {
  const { default: WebSocket } = await import('ws');
  const docs = jsonPool();
  const sockets = await openClients(WebSocket, port, n, deflate !== 'off');
  // One compressed message each way on every connection, 50 at a time.
  for (let i = 0; i < sockets.length; i += 50) {
    await Promise.all(
      sockets.slice(i, i + 50).map(
        (ws, j) =>
          new Promise((resolve, reject) => {
            const doc = docs[(i + j) % docs.length];
            ws.once('message', (data) => (data.toString() === doc ? resolve() : reject(new Error('bad echo'))));
            ws.send(doc);
          }),
      ),
    );
  }
  process.stdout.write('READY\n');
  const rl = createInterface({ input: process.stdin });
  rl.on('close', () => {
    for (const ws of sockets) ws.terminate();
    process.exit(0);
  });
}

async function openClients(WebSocket, port, n, deflate = true) {
  const sockets = [];
  for (let i = 0; i < n; i += 50) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 50); j++) {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: deflate });
      ws.on('error', (err) => process.stderr.write(`generator: ${err.message}\n`));
      sockets.push(ws);
      batch.push(new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject)));
    }
    await Promise.all(batch);
  }
  if (deflate) for (const ws of sockets) if (!/permessage-deflate/.test(ws.extensions)) throw new Error('permessage-deflate was not negotiated');
  return sockets;
}

// ------------------------------------------------------------ harness

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function canPin() {
  const ok = (cpu) => spawnSync('taskset', ['-c', String(cpu), 'true'], { stdio: 'ignore' }).status === 0;
  return ok(0) && ok(1);
}

/** A child process speaking lines; waitLine() resolves with the first line starting with `prefix`. */
function child(args, pinCpu, extraNodeArgs = []) {
  const node = [process.execPath, ...extraNodeArgs, SELF, ...args];
  const [cmd, ...rest] = pinCpu === null ? node : ['taskset', '-c', String(pinCpu), ...node];
  const proc = spawn(cmd, rest, { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = [];
  const waiters = [];
  createInterface({ input: proc.stdout }).on('line', (line) => {
    lines.push(line);
    for (const w of [...waiters]) w();
  });
  let exited = false;
  proc.once('exit', () => {
    exited = true;
    for (const w of [...waiters]) w();
  });
  return {
    proc,
    send(line) {
      proc.stdin.write(line + '\n');
    },
    waitLine(prefix, ms = STEP_TIMEOUT_MS) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const i = lines.findIndex((l) => l.startsWith(prefix));
          if (i !== -1) {
            const [l] = lines.splice(i, 1);
            done();
            resolve(l.slice(prefix.length).trim());
          } else if (exited) {
            done();
            reject(new Error(`child ${args.join(' ')} exited before printing ${prefix}`));
          }
        };
        const done = () => {
          clearTimeout(timer);
          waiters.splice(waiters.indexOf(check), 1);
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`child ${args.join(' ')}: no ${prefix} within ${ms} ms`));
        }, ms);
        waiters.push(check);
        check();
      });
    },
    async stop() {
      proc.stdin.end();
      if (!exited) await Promise.race([new Promise((r) => proc.once('exit', r)), sleep(5000)]);
      if (!exited) proc.kill('SIGKILL');
    },
  };
}

async function startServer(kind, deflate, pin, nodeFlags = []) {
  const s = child(['--server', kind, '--deflate', deflate], pin ? 0 : null, ['--expose-gc', ...nodeFlags]);
  const port = Number(await s.waitLine('LISTENING'));
  return { ...s, port };
}

async function throughput(kind, deflate, opts, pin) {
  const server = await startServer(kind, deflate, pin);
  try {
    const gen = child(['--gen', 'throughput', '--port', String(server.port), '--conns', String(opts.conns), '--warmup', String(opts.warmupS), '--duration', String(opts.durationS)], pin ? 1 : null);
    await gen.waitLine('MEASURING');
    server.send('CPU');
    const c0 = JSON.parse(await server.waitLine('CPU'));
    const result = JSON.parse(await gen.waitLine('RESULT', (opts.durationS + 30) * 1000));
    server.send('CPU');
    const c1 = JSON.parse(await server.waitLine('CPU'));
    await gen.stop();
    if (result.bad > 0) throw new Error(`${kind}: ${result.bad} echoes differed from what was sent`);
    return { rate: result.echoes / result.elapsed, genCpu: result.genCpu, serverCpu: (c1.us - c0.us) / 1e3 / (c1.at - c0.at) };
  } finally {
    await server.stop();
  }
}

/** How many idle connections the memory table opens per step (a reading after each). */
const idleStep = (n) => Math.max(1, Math.floor(n / 10));

async function memory(kind, deflate, n, pin) {
  const server = await startServer(kind, deflate, pin, IDLE_NODE_FLAGS);
  const gens = [];
  try {
    // Opens `count` more connections from a generator that holds them; the server's reading once they are up.
    const open = async (count) => {
      const gen = child(['--gen', 'idle', '--port', String(server.port), '--n', String(count), '--deflate', deflate], pin ? 1 : null);
      gens.push(gen);
      await gen.waitLine('READY', 120_000);
      server.send('MEM');
      return JSON.parse(await server.waitLine('MEM'));
    };
    // n/10 at a time, a reading after each step, and the least-squares slope over the readings of the
    // second half, as in bench/run.mjs's idle scenario (equal steps: RSS keeps an opening burst's peak).
    const step = idleStep(n);
    const readings = [];
    for (let opened = 0; opened < n; ) {
      const count = Math.min(step, n - opened);
      const m = await open(count);
      opened += count;
      readings.push({ connections: opened, rss: m.rss, heapUsed: m.heapUsed, external: m.external });
    }
    const fitted = readings.filter((r) => r.connections >= Math.floor(n / 2));
    return { rss: slope(fitted, 'rss'), heap: slope(fitted, 'heapUsed'), external: slope(fitted, 'external') };
  } finally {
    for (const gen of gens) await gen.stop();
    await server.stop();
  }
}

const kib = (b) => `${(b / 1024).toFixed(1)} KiB`;

async function harness(argv) {
  const opts = { durationS: 5, warmupS: 1, conns: 50, idle: 1000, pin: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => Number(argv[++i]);
    if (a === '--duration') opts.durationS = v();
    else if (a === '--warmup') opts.warmupS = v();
    else if (a === '--conns') opts.conns = v();
    else if (a === '--idle') opts.idle = v();
    else if (a === '--no-pin') opts.pin = false;
    else {
      process.stderr.write(`unknown option ${a}\nusage: node bench/deflate.mjs [--duration S] [--warmup S] [--conns N] [--idle N] [--no-pin]\n`);
      process.exit(2);
    }
  }
  const pin = opts.pin && canPin();
  const started = Date.now();
  const load0 = loadavg()[0];
  const wsVersion = JSON.parse(readFileSync(join(ROOT, 'node_modules/ws/package.json'), 'utf8')).version;
  const sockeyeVersion = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
  const docSize = Math.round(jsonPool().reduce((n, d) => n + Buffer.byteLength(d), 0) / 64);

  const tput = [];
  for (const deflate of ['on', 'no-takeover']) {
    for (const kind of ['sockeye', 'ws']) {
      process.stderr.write(`throughput: ${kind}, deflate ${deflate} ...\n`);
      tput.push({ kind, deflate, ...(await throughput(kind, deflate, opts, pin)) });
    }
  }
  const mem = [];
  for (const deflate of ['off', 'on', 'no-takeover', 'small']) {
    for (const kind of ['sockeye', 'ws']) {
      process.stderr.write(`memory: ${kind}, deflate ${deflate}, ${opts.idle} connections ...\n`);
      mem.push({ kind, deflate, ...(await memory(kind, deflate, opts.idle, pin)) });
    }
  }

  const label = { off: 'off', on: 'on, context takeover', 'no-takeover': 'on, no context takeover', small: 'on, takeover, 10-bit windows, memLevel 4' };
  const out = [];
  out.push(`### permessage-deflate: sockeye vs ws`);
  out.push('');
  out.push(`- Command: \`npm run bench:deflate  # node bench/deflate.mjs\``);
  out.push(`- Date: ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}; run time ${Math.round((Date.now() - started) / 1000)} s`);
  out.push(`- Machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} CPUs; Node ${process.version}; load average (1 min) before / after: ${load0.toFixed(2)} / ${loadavg()[0].toFixed(2)}`);
  out.push(`- Pinning: ${pin ? 'server on CPU 0, generator on CPU 1 (taskset)' : 'none'}`);
  out.push(`- Libraries: sockeye ${sockeyeVersion} (dist/), ws ${wsVersion}; both with their default deflate settings (zlib level 6, memLevel 8, 15-bit windows, threshold 1024 B). Generator: the ws client for both.`);
  out.push('');
  out.push(`Compressed JSON echo: ${opts.conns} connections × 1 message in flight, JSON documents of ${docSize} B on average (64 different ones), ${opts.durationS} s measured after ${opts.warmupS} s warm-up, every echo checked.`);
  out.push('');
  out.push('| Deflate | Server | echoes/s | × ws | server CPU | server CPU per echo | generator CPU |');
  out.push('|---|---|---:|---:|---:|---:|---:|');
  for (const r of tput) {
    const ws = tput.find((x) => x.kind === 'ws' && x.deflate === r.deflate);
    out.push(
      `| ${label[r.deflate]} | ${r.kind} | ${Math.round(r.rate).toLocaleString('en-US')} | ${(r.rate / ws.rate).toFixed(2)}× | ${Math.round(r.serverCpu * 100)}% | ${((r.serverCpu / r.rate) * 1e6).toFixed(0)} µs | ${Math.round(r.genCpu * 100)}% |`,
    );
  }
  out.push('');
  out.push(
    `server CPU per echo: the server's CPU time divided by the echoes (inflate + deflate + framing of one message), the fairer comparison when the generator (one ws client process doing the same zlib work) is the bottleneck.`,
  );
  out.push('');
  out.push(
    `Memory per connection at the server: ${opts.idle} idle connections opened ${idleStep(opts.idle)} at a time (a generator process for each step), each after one message echoed (compressed both ways when deflate is on); process.memoryUsage() after two forced GCs after each step; per connection, the least-squares slope over the readings from ${Math.floor(opts.idle / 2)} to ${opts.idle} open: what one more connection costs. The servers run with V8's young generation fixed at its maximum (${IDLE_NODE_FLAGS.join(' ')}). RSS is the full cost; most of zlib's native state (a deflate stream at level 6, memLevel 8, 15-bit window: about 256 KiB; an inflate stream: about 40 KiB) shows in neither heapUsed nor external.`,
  );
  out.push('');
  out.push('| Deflate | Server | RSS / conn | × ws | heapUsed / conn | external / conn |');
  out.push('|---|---|---:|---:|---:|---:|');
  for (const r of mem) {
    const ws = mem.find((x) => x.kind === 'ws' && x.deflate === r.deflate);
    out.push(`| ${label[r.deflate]} | ${r.kind} | ${kib(r.rss)} | ${(r.rss / ws.rss).toFixed(2)}× | ${kib(r.heap)} | ${kib(r.external)} |`);
  }
  out.push('');
  process.stdout.write(out.join('\n') + '\n');
}

// ------------------------------------------------------------ entry

const argv = process.argv.slice(2);
const arg = (name) => {
  const i = argv.indexOf(name);
  return i === -1 ? undefined : argv[i + 1];
};
if (argv[0] === '--server') {
  await runServer(arg('--server'), arg('--deflate'));
} else if (argv[0] === '--gen') {
  const port = Number(arg('--port'));
  if (arg('--gen') === 'throughput') await runGenThroughput(port, Number(arg('--conns')), Number(arg('--warmup')), Number(arg('--duration')));
  else await runGenIdle(port, Number(arg('--n')), arg('--deflate'));
} else {
  await harness(argv);
}
