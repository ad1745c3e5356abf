// Floods and fairness: one client floods an echo server while a well-behaved
// client (the canary) echoes a 64-byte message every 50 ms on its own
// connection; how long the canary waits tells how fairly the server shares
// itself, and the server's RSS tells what the flood cost it. The same floods
// run against sockeye (its default limits), ws, and ws with its native
// add-ons (bufferutil), each server in a fresh process of its own
// (bench/servers/), the flooder in another (bench/lib/flooder.mjs), the
// canary in this one.
//
//   node bench/floods.mjs [--quick] [--rounds N] [--scale F] [--floods ids] [--libraries names] [--json] [--no-pin] [--out FILE]
//
// Each row runs `rounds` times (a fresh server each time, rows interleaved
// within a round); the table gives the median of the rounds' canary p50 and
// p99, the worst single echo, and the largest RSS growth. A window holds about
// twenty echoes, so one round's p99 is close to its slowest echo: the median
// over rounds keeps one scheduling hiccup of the machine out of the figure.
//
// The goal for sockeye: canary p99 under 20 ms during every flood, and the
// server's growth under its flooding connection's limits. The report says
// where it is not met; nothing here decides pass or fail.
// Progress goes to stderr; the table (or, with --json, the rows) to stdout.

import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '../dist/src/index.js';
import { onWordLines } from './lib/server-life.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH);
const MiB = 1024 * 1024;
const num = (n) => n.toLocaleString('en-US');
const CANARY_INTERVAL_MS = 50;
const CANARY_BYTES = 64;
const GOAL_P99_MS = 20;
/** The latency window lasts at least this long, so that a flood stopped at once still has samples. */
const MIN_WINDOW_MS = 1000;
const WRITE_MS = 6000;
const SETTLE_MS = 15_000;
const START_TIMEOUT_MS = 15_000;

// sockeye's defaults (src/core/connection.ts, src/transport/types.ts): what a
// flooding connection may make the server hold is maxQueuedBytes + maxMessageBytes.
const SOCKEYE_DEFAULT_HOLD = 16 * MiB + 16 * MiB;

const FLOODS = [
  { id: 'ping-slow', title: (n) => `${num(n)} pings, pongs read slowly`, opcode: 'ping', size: 4, frames: 200_000, read: 'slow' },
  {
    id: 'ping-slow-unlimited',
    title: (n) => `${num(n)} pings of 125 bytes, pongs read slowly, maxControlFramesPerSecond 0`,
    opcode: 'ping',
    // Pongs of 127 bytes: far more than the kernel's socket buffers hold, so the server's outbound side is blocked.
    size: 125,
    frames: 200_000,
    read: 'slow',
    sockeyeLimits: { maxControlFramesPerSecond: 0 },
    // ws has no such limit: its row would repeat ping-slow.
    libraries: ['sockeye'],
  },
  { id: 'pong', title: (n) => `${num(n)} unsolicited pongs`, opcode: 'pong', size: 4, frames: 200_000, read: 'all' },
  { id: 'tiny-read', title: (n) => `${num(n)} 1-byte messages, echoes read`, opcode: 'binary', size: 1, frames: 300_000, read: 'all' },
  { id: 'tiny-silent', title: (n) => `${num(n)} 1-byte messages, echoes never read`, opcode: 'binary', size: 1, frames: 8_000_000, read: 'none' },
  { id: 'continuation', title: (n) => `a first fragment, then ${num(n)} empty continuations`, opcode: 'continuation', size: 0, frames: 1_000_000, read: 'all' },
  { id: 'small-silent', title: (n) => `${num(n)} 100-byte messages, echoes never read`, opcode: 'binary', size: 100, frames: 400_000, read: 'none' },
];

const LIBRARIES = [
  { name: 'sockeye', file: 'servers/sockeye.mjs', args: (flood) => ['--limits', JSON.stringify(flood.sockeyeLimits ?? {})] },
  { name: 'ws', file: 'servers/ws.mjs', args: () => [] },
  { name: 'ws-native', file: 'servers/ws.mjs', args: () => ['--native'] },
];

const USAGE = `usage: node bench/floods.mjs [--quick] [--rounds N] [--scale F] [--floods ids] [--libraries names] [--json] [--no-pin] [--out FILE]
  --quick            one round, every flood at a quarter of its frames
  --rounds N         rounds of every row (default 3)
  --scale F          every flood at F times its frames (0.001 to 1)
  --floods ids       ${FLOODS.map((f) => f.id).join(',')}
  --libraries names  ${LIBRARIES.map((l) => l.name).join(',')}
  --json             print the rows as JSON instead of the table
  --no-pin           do not pin the server and the flooder to CPUs 0 and 1 with taskset
  --out FILE         also write the table to FILE
`;

function usage(message) {
  process.stderr.write(`bench:floods: ${message}\n${USAGE}`);
  process.exit(64);
}

function parseArgs(argv) {
  const opts = { rounds: 3, scale: 1, floods: FLOODS.map((f) => f.id), libraries: LIBRARIES.map((l) => l.name), json: false, pin: true, out: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => argv[++i] ?? usage(`${a} needs a value`);
    if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else if (a === '--quick') {
      opts.scale = 0.25;
      opts.rounds = 1;
    } else if (a === '--rounds') {
      opts.rounds = Number(value());
      if (!Number.isInteger(opts.rounds) || opts.rounds < 1 || opts.rounds > 20) usage('--rounds must be from 1 to 20');
    }
    else if (a === '--scale') {
      opts.scale = Number(value());
      if (!(opts.scale >= 0.001 && opts.scale <= 1)) usage('--scale must be from 0.001 to 1');
    } else if (a === '--floods') opts.floods = value().split(',');
    else if (a === '--libraries') opts.libraries = value().split(',');
    else if (a === '--json') opts.json = true;
    else if (a === '--no-pin') opts.pin = false;
    else if (a === '--out') opts.out = value();
    else usage(`unknown option ${a}`);
  }
  for (const id of opts.floods) if (!FLOODS.some((f) => f.id === id)) usage(`unknown flood ${id}`);
  for (const n of opts.libraries) if (!LIBRARIES.some((l) => l.name === n)) usage(`unknown library ${n}`);
  return opts;
}

// ------------------------------------------------------------ processes

/** CPUs for the server and the flooder when taskset can pin to 0 and 1, else null. */
function pinning(wanted) {
  if (!wanted || availableParallelism() < 2) return null;
  const ok = (cpu) => spawnSync('taskset', ['-c', String(cpu), 'true'], { stdio: 'ignore' }).status === 0;
  return ok(0) && ok(1) ? { server: 0, flooder: 1 } : null;
}

const pinned = (cpu, argv) => (cpu === null || cpu === undefined ? argv : ['taskset', '-c', String(cpu), ...argv]);

/** Every child still running, killed if this process is interrupted. */
const children = new Set();
function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    for (const c of children) c.kill('SIGKILL');
    process.exit(130);
  });
}

/** Starts a bench server; resolves with { child, port, pid, info, gc() }. */
function startServer(library, flood, pin) {
  const argv = pinned(pin?.server, [process.execPath, '--expose-gc', join(BENCH, library.file), ...library.args(flood)]);
  const child = track(spawn(argv[0], argv.slice(1), { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] }));
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  const info = {};
  const waiters = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${library.name} server did not start within ${START_TIMEOUT_MS} ms`));
    }, START_TIMEOUT_MS);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${library.name} server exited (${code})${stderr ? `: ${stderr.trim().split('\n').pop()}` : ''}`));
      for (const w of waiters.splice(0)) w.reject(new Error(`${library.name} server exited (${code})`));
    });
    onWordLines(child.stdout, (word, rest) => {
      if (word === 'INFO') Object.assign(info, JSON.parse(rest));
      else if (word === 'MEMORY') waiters.shift()?.resolve(JSON.parse(rest));
      else if (word === 'LISTENING') {
        clearTimeout(timer);
        const gc = () =>
          new Promise((res, rej) => {
            const t = setTimeout(() => rej(new Error('the server did not answer "gc" within 30 s')), 30_000);
            waiters.push({ resolve: (m) => (clearTimeout(t), res(m)), reject: (e) => (clearTimeout(t), rej(e)) });
            child.stdin.write('gc\n');
          });
        resolve({ child, port: Number(rest), pid: child.pid, info, gc, stderr: () => stderr });
      }
    });
  });
}

/** Stops a server: its stdin closes (it exits by itself), SIGKILL after 5 s. */
function stopServer(server) {
  return new Promise((resolve) => {
    const { child } = server;
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.stdin.end();
  });
}

/** Resident set size of a process from /proc/<pid>/status, or null (no /proc, or the process is gone). */
function residentBytes(pid) {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Runs the flooder; calls onWritten when its writing ends; resolves with its result. */
function runFlooder(config, pin, onStart, onWritten) {
  const argv = pinned(pin?.flooder, [process.execPath, join(BENCH, 'lib', 'flooder.mjs'), JSON.stringify(config)]);
  const child = track(spawn(argv[0], argv.slice(1), { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] }));
  return new Promise((resolve) => {
    let result = null;
    const timer = setTimeout(() => child.kill('SIGKILL'), config.writeMs + config.settleMs + 15_000);
    onWordLines(child.stdout, (word, rest) => {
      if (word === 'START') onStart();
      else if (word === 'WRITTEN') onWritten(Number(rest));
      else if (word === 'RESULT') result = JSON.parse(rest);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve(result ?? { error: `flooder exited (${code ?? signal}) without a result` });
    });
  });
}

// ------------------------------------------------------------ the canary

function canaryPayload(seq) {
  const b = Buffer.alloc(CANARY_BYTES);
  b.writeUInt32BE(seq, 0);
  for (let i = 4; i < b.length; i++) b[i] = (seq * 13 + i * 7) & 0xff;
  return b;
}

/** A sockeye client sending a 64-byte binary message every 50 ms and timing each echo; echoes must come back intact and in order. */
async function startCanary(port) {
  const inflight = [];
  const trips = [];
  const problems = [];
  let seq = 0;
  let stopping = false;
  const client = await connect(`ws://127.0.0.1:${port}/canary`, {
    keepalive: null,
    handler: {
      onMessage(_s, m) {
        const now = performance.now();
        const e = inflight.shift();
        if (!e) return void problems.push('unexpected message');
        if (!m.binary || !m.data.equals(e.data)) problems.push(`echo ${e.seq} corrupted or out of order`);
        trips.push([e.sentAt, now - e.sentAt]);
      },
      onClose(_s, info) {
        if (!stopping) problems.push(`closed ${info.code}`);
      },
    },
  });
  const timer = setInterval(() => {
    if (stopping || client.state !== 'open') return;
    // Bounded: a server that stopped answering does not make the canary pile up messages for ever.
    if (inflight.length >= 1000) return;
    const data = canaryPayload(seq);
    inflight.push({ seq: seq++, data, sentAt: performance.now() });
    if (client.send(data, { binary: true }) === 'dropped') problems.push('a canary send was dropped');
  }, CANARY_INTERVAL_MS);
  return {
    problems,
    async settle(ms = 10_000) {
      const last = seq;
      const deadline = Date.now() + ms;
      while (inflight.length > 0 && inflight[0].seq < last && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    },
    latency(from, to) {
      const now = performance.now();
      const l = trips.filter(([at]) => at >= from && at <= to).map(([, rtt]) => rtt);
      // A message sent in the window that never came back counts at its age.
      for (const e of inflight) if (e.sentAt >= from && e.sentAt <= to) l.push(now - e.sentAt);
      l.sort((a, b) => a - b);
      if (l.length === 0) return { samples: 0, p50: null, p99: null, max: null };
      const at = (q) => l[Math.min(l.length - 1, Math.ceil(q * l.length) - 1)];
      return { samples: l.length, p50: at(0.5), p99: at(0.99), max: l[l.length - 1] };
    },
    stop() {
      stopping = true;
      clearInterval(timer);
      client.terminate();
    },
  };
}

/** A new client connects and gets an echo back within 5 s. */
async function acceptsAndEchoes(port) {
  let client = null;
  const attempt = (async () => {
    client = await connect(`ws://127.0.0.1:${port}/probe`, { keepalive: null });
    const payload = canaryPayload(0xabcdef);
    client.send(payload, { binary: true });
    const r = await client.messages().next();
    return !r.done && r.value.data.equals(payload);
  })();
  let timer;
  const timeout = new Promise((resolve) => (timer = setTimeout(() => resolve(false), 5000)));
  try {
    return await Promise.race([attempt.catch(() => false), timeout]);
  } finally {
    clearTimeout(timer);
    client?.terminate();
  }
}

// ------------------------------------------------------------ one row

/** "n", or "lo-hi" when the rounds differ. */
function range(values) {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  return lo === hi ? num(lo) : `${num(lo)}-${num(hi)}`;
}

function outcomeKind(flood, r) {
  if (r.error) return `error: ${r.error}`;
  if (r.closeCode !== null) return `closed ${r.closeCode}`;
  if (r.reset) return 'reset';
  if (r.socketClosed) return 'ended';
  if (flood.opcode === 'ping') return r.lastPong === r.written - 1 ? 'ping served' : 'ping open';
  if (flood.opcode === 'binary') return 'echoed';
  return 'open';
}

/** What happened to the flooder in every round, in a few words (rounds with the same outcome share them, their counts as a range). */
function outcome(flood, results) {
  const groups = new Map();
  for (const r of results) {
    const k = outcomeKind(flood, r);
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const parts = [];
  for (const [k, rs] of groups) {
    const written = range(rs.map((r) => r.written ?? 0));
    if (k.startsWith('error')) parts.push(k);
    else if (k.startsWith('closed')) parts.push(`${k} (${written} frames written)`);
    else if (k === 'reset') parts.push(`connection reset by the server before its close frame was read (${written} frames written)`);
    else if (k === 'ended') parts.push(`connection ended without a close frame (${written} frames written)`);
    else if (k === 'ping served') parts.push(`served: every ping read, the last pong for the last ping (${range(rs.map((r) => r.pongs))} pongs)`);
    else if (k === 'ping open') parts.push(`open; the last pong for ping ${range(rs.map((r) => r.lastPong))} of ${written}`);
    else if (k === 'echoed') {
      const missing = rs.map((r) => r.written - r.echoes);
      const wrong = rs.reduce((n, r) => n + r.wrong, 0);
      parts.push(
        `served: ${range(rs.map((r) => r.echoes))} of ${written} echoes` +
          (Math.max(...missing) > 0 ? `, ${range(missing)} not delivered` : '') +
          (wrong > 0 ? `, ${num(wrong)} wrong` : ''),
      );
    } else parts.push(`open after ${written} frames`);
  }
  return parts.join(' / ');
}

/** One round of one row: a fresh server, the canary, the flood, the figures. */
async function runRound(flood, library, opts, pin) {
  const row = { flood: flood.id, library: library.name, frames: Math.max(1000, Math.round(flood.frames * opts.scale)) };
  let server = null;
  let canary = null;
  try {
    server = await startServer(library, flood, pin);
    row.addons = Object.keys(server.info).length > 0 ? server.info : undefined;
    canary = await startCanary(server.port);
    await new Promise((r) => setTimeout(r, 3 * CANARY_INTERVAL_MS));
    const baseline = (await server.gc()).rss;
    let peak = residentBytes(server.pid);
    const sampler = setInterval(() => {
      const r = residentBytes(server.pid);
      if (r !== null && (peak === null || r > peak)) peak = r;
    }, 5);
    let from = null;
    let written = null;
    const config = { port: server.port, opcode: flood.opcode, size: flood.size, frames: row.frames, read: flood.read, writeMs: WRITE_MS, settleMs: SETTLE_MS };
    const result = await runFlooder(
      config,
      pin,
      () => (from = performance.now()),
      () => (written = performance.now()),
    );
    clearInterval(sampler);
    const end = residentBytes(server.pid);
    if (end !== null && (peak === null || end > peak)) peak = end;
    from ??= performance.now();
    const to = Math.max(written ?? performance.now(), from + MIN_WINDOW_MS);
    if (performance.now() < to) await new Promise((r) => setTimeout(r, to - performance.now()));
    await canary.settle();
    Object.assign(row, canary.latency(from, to));
    row.windowMs = to - from;
    row.canaryProblems = [...canary.problems];
    row.rssGrowth = peak === null ? null : peak - baseline;
    row.flooder = outcome(flood, [result]);
    row.result = result;
    row.acceptsNew = server.child.exitCode === null ? await acceptsAndEchoes(server.port) : false;
    if (server.child.exitCode !== null) {
      row.serverExit = `server exited (${server.child.exitCode})`;
      row.flooder += `; ${row.serverExit}`;
    }
  } catch (error) {
    row.error = error instanceof Error ? error.message : String(error);
  } finally {
    canary?.stop();
    if (server) await stopServer(server);
  }
  return row;
}

// ------------------------------------------------------------ the report

const fmt = (v) => (v === null || v === undefined ? '-' : v.toFixed(1));

function median(values) {
  const v = values.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 === 1 ? v[m] : (v[m - 1] + v[m]) / 2;
}

function largest(values) {
  const v = values.filter((x) => x !== null && x !== undefined);
  return v.length === 0 ? null : Math.max(...v);
}

/** A row of the table from its rounds: medians of p50 and p99, the worst echo, the largest growth, every distinct outcome. */
function aggregate(rounds) {
  const ok = rounds.filter((r) => !r.error);
  const first = rounds[0];
  if (ok.length === 0) return { flood: first.flood, library: first.library, frames: first.frames, rounds: rounds.length, error: first.error };
  return {
    flood: first.flood,
    library: first.library,
    frames: first.frames,
    rounds: rounds.length,
    failedRounds: rounds.length - ok.length,
    samples: ok.reduce((n, r) => n + r.samples, 0),
    p50: median(ok.map((r) => r.p50)),
    p99: median(ok.map((r) => r.p99)),
    p99s: ok.map((r) => r.p99),
    max: largest(ok.map((r) => r.max)),
    rssGrowth: largest(ok.map((r) => r.rssGrowth)),
    flooder: outcome(FLOODS.find((f) => f.id === first.flood), ok.map((r) => r.result)) + [...new Set(ok.map((r) => r.serverExit).filter(Boolean))].map((e) => `; ${e}`).join(''),
    canaryProblems: ok.flatMap((r) => r.canaryProblems),
    acceptsNew: ok.every((r) => r.acceptsNew),
    result: ok[ok.length - 1].result,
  };
}

function table(rows, opts, pin) {
  const L = [];
  L.push('## Floods and fairness');
  L.push('');
  L.push(
    `${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} CPUs, Linux ${release()}, Node ${process.version}; ${pin ? 'server on CPU 0, flooder on CPU 1 (taskset), canary not pinned' : 'not pinned'}; ` +
      `frames × ${opts.scale}; ${opts.rounds} round${opts.rounds === 1 ? '' : 's'} per row.`,
  );
  L.push('');
  L.push(`Canary: a 64-byte binary echo every ${CANARY_INTERVAL_MS} ms on its own connection, round trips of the messages sent while the flood was written (at least ${MIN_WINDOW_MS / 1000} s); p50 and p99 are medians over the rounds, max the slowest echo of all. Goal for sockeye: p99 under ${GOAL_P99_MS} ms. RSS: the server's peak VmRSS during the flood (writing and reading the outcome) over its RSS after a full GC just before it, the largest over the rounds; sockeye's flooding connection may make it hold ${SOCKEYE_DEFAULT_HOLD / MiB} MiB (maxQueuedBytes + maxMessageBytes, defaults).`);
  L.push('');
  L.push('| flood | library | canary p50 ms | p99 ms | max ms | server RSS growth | flooder | new connection |');
  L.push('|---|---|---:|---:|---:|---:|---|---|');
  for (const r of rows) {
    const flood = FLOODS.find((f) => f.id === r.flood);
    if (r.error) {
      L.push(`| ${flood.title(r.frames)} | ${r.library} | - | - | - | - | error: ${r.error} | - |`);
      continue;
    }
    const p99 = r.p99 === null ? '-' : `${fmt(r.p99)}${r.library === 'sockeye' && r.p99 >= GOAL_P99_MS ? ' (over goal)' : ''}`;
    const rss = r.rssGrowth === null ? '-' : `${(r.rssGrowth / MiB).toFixed(1)} MiB`;
    const problems = (r.canaryProblems.length > 0 ? `; canary: ${r.canaryProblems[0]}` : '') + (r.failedRounds > 0 ? `; ${r.failedRounds} round(s) failed` : '');
    L.push(`| ${flood.title(r.frames)} | ${r.library} | ${fmt(r.p50)} | ${p99} | ${fmt(r.max)} | ${rss} | ${r.flooder}${problems} | ${r.acceptsNew ? 'echoes' : 'FAILED'} |`);
  }
  return L.join('\n') + '\n';
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const pin = pinning(opts.pin);
  const cells = [];
  for (const flood of FLOODS.filter((f) => opts.floods.includes(f.id))) {
    for (const library of LIBRARIES.filter((l) => opts.libraries.includes(l.name) && (!flood.libraries || flood.libraries.includes(l.name)))) cells.push({ flood, library, rounds: [] });
  }
  for (let round = 1; round <= opts.rounds; round++) {
    for (const cell of cells) {
      process.stderr.write(`round ${round}/${opts.rounds}: ${cell.flood.id} against ${cell.library.name} ...`);
      const r = await runRound(cell.flood, cell.library, opts, pin);
      process.stderr.write(r.error ? ` error: ${r.error}\n` : ` p99 ${fmt(r.p99)} ms, RSS +${r.rssGrowth === null ? '-' : (r.rssGrowth / MiB).toFixed(1)} MiB, ${r.flooder}\n`);
      cell.rounds.push(r);
    }
  }
  const rows = cells.map((c) => aggregate(c.rounds));
  const report = table(rows, opts, pin);
  if (opts.out) writeFileSync(opts.out, report);
  process.stdout.write(opts.json ? JSON.stringify(rows, null, 1) + '\n' : report);
}

await main();
