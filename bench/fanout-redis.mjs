// Fan-out to many clients spread over two processes
// through Redis, against one process, and against socket.io 4 with its Redis
// adapter doing the same fan-out on the same machine.
//
//   node bench/fanout-redis.mjs                 3 rounds of 10 s per row, 10,000 clients
//   node bench/fanout-redis.mjs --clients 1000 --rounds 2 --duration 3
//   options: --clients N --rounds R --duration S --warmup S --in-flight D --size B
//            --rows id,id --server-cpus LIST --no-pin --out FILE --json FILE
//
// Rows (every one: the C generator bench/loadgen, one process, the same
// clients, the same payload; one client sends, every client receives):
//   sockeye           one process, every client subscribed to one topic, server.publish()
//   sockeye-redis     two processes with sockeye/redis's broker on one Redis, half the clients each
//   socketio-redis    socket.io 4, two processes with @socket.io/redis-adapter on the same Redis,
//                     half the clients each in one room, io.to(room).emit()
//   socketio          socket.io 4, one process, the in-memory adapter
// The ratios are to socketio-redis in the same round (the goal: sockeye-redis at 3× or more).
//
// A redis-server (Debian's, from PATH) is started for the run on a free port
// with --save '' --appendonly no, and killed at the end, as every server.
// Progress goes to stderr; the report to stdout and to --out
// (bench/results/fanout-redis.md). Exit status 1 if any run failed.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection, createServer as createNetServer } from 'node:net';
import { availableParallelism, cpus, loadavg, release, type as osType } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServerProcess, stopProcess } from './lib/server-process.mjs';
import { packageVersion, SOCKETIO_CHANNEL, SOCKEYE_CHANNEL } from './lib/fanout-servers.mjs';
import { median, int, sig, pct, ratio } from './lib/report-format.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH);
const LOADGEN_DIR = join(BENCH, 'loadgen');
const LOADGEN = join(LOADGEN_DIR, 'loadgen');
const START_TIMEOUT_MS = 20_000;
const CONTROL_TIMEOUT_MS = 30_000;
/** How long the processes may take to be subscribed at Redis once every client is open. */
const SUBSCRIBED_TIMEOUT_MS = 10_000;
/** The generator's bound on opening every client (and on waiting for the go line): this plus this per client. */
const CONNECT_BASE_MS = 30_000;
const CONNECT_PER_CLIENT_MS = 6;
const GEN_CPU_WARN = 0.9;
const OTHER_CPU_WARN = 0.25;

const ROWS = [
  { id: 'sockeye', library: 'sockeye', file: 'servers/pubsub-sockeye.mjs', processes: 1, redis: false, protocol: 'websocket', title: 'sockeye, 1 process' },
  { id: 'sockeye-redis', library: 'sockeye', file: 'servers/pubsub-sockeye.mjs', processes: 2, redis: true, channel: SOCKEYE_CHANNEL, protocol: 'websocket', title: 'sockeye, 2 processes, sockeye/redis' },
  { id: 'socketio-redis', library: 'socket.io', file: 'servers/socketio.mjs', processes: 2, redis: true, channel: SOCKETIO_CHANNEL, protocol: 'engine.io', title: 'socket.io, 2 processes, @socket.io/redis-adapter' },
  { id: 'socketio', library: 'socket.io', file: 'servers/socketio.mjs', processes: 1, redis: false, protocol: 'engine.io', title: 'socket.io, 1 process' },
];
const BASE = 'socketio-redis';
const GOAL = { row: 'sockeye-redis', ratio: 3 };

// ------------------------------------------------------------ options

const USAGE = `usage: node bench/fanout-redis.mjs [--clients N] [--rounds R] [--duration S] [--warmup S] [--in-flight D] [--size B] [--rows ids] [--server-cpus LIST] [--no-pin] [--out FILE] [--json FILE]
  --clients N       clients in all, spread evenly over a row's processes (default 10000)
  --rounds R        rounds; the rows are interleaved within each round, order rotated (default 3)
  --duration S      measured seconds per row and round (default 10)
  --warmup S        seconds of broadcasts before measuring (default 1)
  --in-flight D     broadcasts in flight (default 1: the next goes when every client has the last)
  --size B          payload bytes, at least 32 (default 64)
  --rows ids        ${ROWS.map((r) => r.id).join(',')}
  --server-cpus L   taskset CPU list for the servers and redis-server (default 0; the generator gets
                    the first CPU not in it)
  --no-pin          no taskset
  --out FILE        report (default bench/results/fanout-redis.md)
  --json FILE       also write the rows as JSON
`;

function usage(message) {
  process.stderr.write(`fanout-redis: ${message}\n${USAGE}`);
  process.exit(64);
}

function parseArgs(argv) {
  const opts = { clients: 10_000, rounds: 3, durationS: 10, warmupS: 1, depth: 1, size: 64, rows: ROWS.map((r) => r.id), serverCpus: '0', pin: true, out: join(BENCH, 'results', 'fanout-redis.md'), json: null };
  const number = (text, name, min, max, integer = false) => {
    const n = Number(text);
    if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) usage(`${name} must be a${integer ? 'n integer' : ' number'} from ${min} to ${max}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) usage(`${a} needs a value`);
      return v;
    };
    if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else if (a === '--clients') opts.clients = number(value(), a, 2, 1_000_000, true);
    else if (a === '--rounds') opts.rounds = number(value(), a, 1, 20, true);
    else if (a === '--duration') opts.durationS = number(value(), a, 0.2, 600);
    else if (a === '--warmup') opts.warmupS = number(value(), a, 0, 60);
    else if (a === '--in-flight') opts.depth = number(value(), a, 1, 1024, true);
    else if (a === '--size') opts.size = number(value(), a, 32, 1 << 20, true);
    else if (a === '--rows') opts.rows = value().split(',');
    else if (a === '--server-cpus') opts.serverCpus = value();
    else if (a === '--no-pin') opts.pin = false;
    else if (a === '--out') opts.out = value();
    else if (a === '--json') opts.json = value();
    else usage(`unknown option ${a}`);
  }
  for (const id of opts.rows) if (!ROWS.some((r) => r.id === id)) usage(`unknown row ${id} (${ROWS.map((r) => r.id).join(', ')})`);
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(opts.serverCpus)) usage('--server-cpus takes a CPU list such as 0 or 0,2-3');
  return opts;
}

// ------------------------------------------------------------ the machine

function cpuModel() {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1].trim();
  } catch {
    // not Linux
  }
  return cpus()[0]?.model ?? 'unknown CPU';
}

function cpuList(list) {
  const out = [];
  for (const part of list.split(',')) {
    const [a, b = a] = part.split('-').map(Number);
    for (let c = a; c <= b; c++) out.push(c);
  }
  return out;
}

/** { serverList, server: [cpus], generator } when taskset can pin there, else null. */
function pinning(opts) {
  if (!opts.pin) return null;
  const server = cpuList(opts.serverCpus);
  const n = availableParallelism();
  let generator = 0;
  while (server.includes(generator)) generator++;
  if (generator >= n) return null;
  const ok = (list) => spawnSync('taskset', ['-c', list, 'true'], { stdio: 'ignore' }).status === 0;
  return ok(opts.serverCpus) && ok(String(generator)) ? { serverList: opts.serverCpus, server, generator } : null;
}

function clockTicks() {
  const n = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim());
  return Number.isInteger(n) && n > 0 ? n : 100;
}

function fileLimit() {
  const n = Number(spawnSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout?.trim());
  return Number.isFinite(n) ? n : Infinity;
}

function buildLoadgen() {
  if (spawnSync('cc', ['--version'], { stdio: 'ignore' }).error) return 'no C compiler (cc/gcc) found: install gcc and make (apt-get install gcc make)';
  const r = spawnSync('make', ['-s', '-C', LOADGEN_DIR], { encoding: 'utf8' });
  if (r.error) return `make could not run (${r.error.message}): install make`;
  if (r.status !== 0) return `make -C bench/loadgen failed:\n${r.stdout}${r.stderr}`;
  return null;
}

const pinned = (list, argv) => (list === null ? argv : ['taskset', '-c', list, ...argv]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------ processes (every one we start is in `children`, killed at exit)

const children = new Set();

function track(child) {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

function killAll() {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** One RESP command to Redis on its own connection; resolves with the raw reply text. */
function redisCommand(port, args) {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`redis-server did not answer ${args[0]} within 5 s`));
    }, 5000);
    socket.setEncoding('latin1');
    socket.on('connect', () => socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`));
    socket.on('data', (chunk) => {
      reply += chunk;
      if (complete(reply)) {
        clearTimeout(timer);
        socket.end();
        resolve(reply);
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** Whether text holds one whole RESP reply (the replies used here: simple, integer, error, bulk, flat arrays). */
function complete(text) {
  let pos = 0;
  const one = () => {
    const nl = text.indexOf('\r\n', pos);
    if (nl < 0) return false;
    const type = text[pos];
    const n = Number(text.slice(pos + 1, nl));
    pos = nl + 2;
    if (type === '$' && n >= 0) {
      if (text.length < pos + n + 2) return false;
      pos += n + 2;
    } else if (type === '*') {
      for (let i = 0; i < n; i++) if (!one()) return false;
    }
    return true;
  };
  return one();
}

/** Subscribers of a channel (PUBSUB NUMSUB). */
async function numsub(port, channel) {
  const reply = await redisCommand(port, ['PUBSUB', 'NUMSUB', channel]);
  const m = /:(\d+)\r\n$/.exec(reply);
  if (!m) throw new Error(`unexpected PUBSUB NUMSUB reply ${JSON.stringify(reply)}`);
  return Number(m[1]);
}

/** Starts redis-server on a free port with no persistence; resolves with { child, port, pid, version }. */
async function startRedis(pin) {
  const which = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (which.error) throw new Error('redis-server not found on PATH: install it (Debian: apt-get install redis-server)');
  const version = /v=(\S+)/.exec(which.stdout)?.[1] ?? which.stdout.trim();
  const port = await freePort();
  const [cmd, ...args] = pinned(pin ? pin.serverList : null, ['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--loglevel', 'warning']);
  const child = track(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  let log = '';
  child.stdout.on('data', (c) => (log += c));
  child.stderr.on('data', (c) => (log += c));
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}): ${log.trim()}`);
    try {
      if ((await redisCommand(port, ['PING'])).startsWith('+PONG')) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`redis-server did not answer PING within ${START_TIMEOUT_MS} ms: ${log.trim()}`);
    await sleep(50);
  }
  // taskset execs redis-server: the child's pid is redis-server's.
  return { child, port, pid: child.pid, version };
}

/** Starts one server process; resolves with { child, port, pid, info, control(line) → MEMORY object }. */
function startServer(row, pin, args) {
  const argv = pinned(pin ? pin.serverList : null, [process.execPath, '--expose-gc', join(BENCH, row.file), ...args]);
  const { child, started } = startServerProcess(row.id, argv, { cwd: ROOT, startTimeoutMs: START_TIMEOUT_MS, controlTimeoutMs: CONTROL_TIMEOUT_MS });
  track(child);
  return started;
}

// ------------------------------------------------------------ one cell

/**
 * Starts the row's server processes, runs the generator against them (every
 * client open, then the servers' topic or room membership and, over Redis,
 * each process's subscription checked before the first broadcast), stops
 * the servers. Resolves with the generator's result or { error }.
 */
async function runCell(row, env) {
  const { opts, pin, redis } = env;
  const servers = [];
  try {
    for (let k = 0; k < row.processes; k++) {
      const args = row.redis ? ['--redis', `redis://127.0.0.1:${redis.port}`, '--node-id', `fanbench-${k + 1}`] : [];
      servers.push(await startServer(row, pin, args));
    }
    env.meta.fanout[row.id] = servers[0].info.fanout;
    // Connection i dials ports[i % processes] (the generator's rule): each process's share.
    const share = (k) => Math.floor(opts.clients / row.processes) + (k < opts.clients % row.processes ? 1 : 0);
    const config = {
      mode: 'ws',
      workload: 'fanout',
      protocol: row.protocol,
      ports: servers.map((s) => s.port),
      size: opts.size,
      binary: false,
      ascii: true,
      connections: opts.clients,
      depth: opts.depth,
      warmupMs: opts.warmupS * 1000,
      durationMs: opts.durationS * 1000,
      serverPids: servers.map((s) => s.pid),
      redisPid: row.redis ? redis.pid : null,
      clkTck: env.clkTck,
      cpus: pin ? [...pin.server, pin.generator] : null,
      goOnStdin: true,
      // socket.io's handshakes (an engine.io open packet and a namespace connect after the 101) are
      // slower than sockeye's, and a busy machine slows them more: room enough for every row.
      connectTimeoutMs: CONNECT_BASE_MS + CONNECT_PER_CLIENT_MS * opts.clients,
    };
    const [cmd, ...args] = pinned(pin ? String(pin.generator) : null, [LOADGEN, JSON.stringify(config)]);
    const gen = track(spawn(cmd, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] }));
    const timeoutMs = 2 * config.connectTimeoutMs + (opts.warmupS + opts.durationS) * 1000 + 30_000;
    let out = '';
    let checkError = null;
    const result = await new Promise((resolve) => {
      const timer = setTimeout(() => {
        gen.kill('SIGKILL');
        resolve({ error: `generator timed out after ${timeoutMs} ms` });
      }, timeoutMs);
      gen.stdout.setEncoding('utf8');
      gen.stdout.on('data', (chunk) => {
        out += chunk;
        const nl = out.indexOf('\n');
        if (nl >= 0 && out.startsWith('ESTABLISHED')) {
          out = out.slice(nl + 1);
          ready(row, servers, share, env).then(
            () => gen.stdin.write('go\n'),
            (error) => {
              checkError = error.message;
              gen.kill('SIGKILL');
            },
          );
        }
      });
      gen.on('close', (code, signal) => {
        clearTimeout(timer);
        if (checkError) return resolve({ error: checkError });
        try {
          resolve(JSON.parse(out.trim().split('\n').pop()));
        } catch {
          resolve({ error: `generator exited (${code ?? signal}) without a result` });
        }
      });
    });
    gen.stdin.end();
    for (const s of servers) if (s.child.exitCode !== null || s.child.signalCode !== null) return { error: `a ${row.id} server died during the run` };
    if (!result.error) {
      // What the servers say after the run: nothing dropped, no broker error.
      const after = await Promise.all(servers.map((s) => s.control('gc')));
      const dropped = after.reduce((a, m) => a + (m.dropped ?? 0), 0);
      const errors = after.reduce((a, m) => a + (m.errors ?? 0), 0);
      if (dropped || errors) return { error: `the servers reported ${dropped} dropped deliveries and ${errors} errors` };
    }
    return result;
  } catch (error) {
    return { error: error.message };
  } finally {
    await Promise.all(servers.map((s) => stopProcess(s.child)));
  }
}

/** Every client is in the topic or room of its process; over Redis, every process is subscribed to the channel. */
async function ready(row, servers, share, env) {
  const counts = await Promise.all(servers.map((s) => s.control('gc')));
  counts.forEach((m, k) => {
    if (m.members !== share(k)) throw new Error(`${row.id} process ${k + 1} has ${m.members} clients in its ${row.library === 'sockeye' ? 'topic' : 'room'}, expected ${share(k)}`);
  });
  if (!row.redis) return;
  const deadline = Date.now() + SUBSCRIBED_TIMEOUT_MS;
  let n;
  while ((n = await numsub(env.redis.port, row.channel)) < servers.length) {
    if (Date.now() > deadline) throw new Error(`${n} of ${servers.length} ${row.id} processes subscribed to ${row.channel} at Redis after ${SUBSCRIBED_TIMEOUT_MS} ms`);
    await sleep(20);
  }
}

// ------------------------------------------------------------ statistics and report

/** Bytes of one delivery on the wire, server to client: the WebSocket frame header and its payload. */
function wire(row, size) {
  const payload = row.protocol === 'engine.io' ? size + '42["fan",""]'.length : size;
  const header = payload < 126 ? 2 : payload < 65536 ? 4 : 10;
  return { payload, frame: payload + header };
}

function summarize(opts, results) {
  return ROWS.filter((row) => opts.rows.includes(row.id)).map((row) => {
    const runs = results.filter((r) => r.row === row.id);
    const ok = runs.filter((r) => !r.result.error);
    const values = ok.map((r) => r.result.deliveriesPerSec);
    const ratios = [];
    for (const r of ok) {
      const base = results.find((x) => x.row === BASE && x.round === r.round && !x.result.error);
      if (base) ratios.push(r.result.deliveriesPerSec / base.result.deliveriesPerSec);
    }
    const med = (key) => median(ok.map((r) => r.result[key]));
    return {
      id: row.id,
      title: row.title,
      processes: row.processes,
      wire: wire(row, opts.size),
      runs: runs.length,
      ok: ok.length,
      errors: runs.filter((r) => r.result.error).map((r) => r.result.error),
      deliveriesPerSec: median(values),
      min: Math.min(...values),
      max: Math.max(...values),
      ratioToBase: median(ratios),
      broadcastsPerSec: med('broadcastsPerSec'),
      // Every delivery counted here was verified byte for byte by the generator (a broadcast completes
      // when every client has checked its copy); a single wrong byte fails the run instead.
      deliveriesVerified: ok.reduce((a, r) => a + r.result.deliveries, 0),
      broadcasts: ok.reduce((a, r) => a + r.result.broadcasts, 0),
      clients: opts.clients,
      p50Ms: med('p50Ms'),
      p99Ms: med('p99Ms'),
      generatorCpu: ok.length ? Math.max(...ok.map((r) => r.result.generatorCpu)) : NaN,
      serverCpu: med('serverCpu'),
      redisCpu: row.redis ? med('redisCpu') : null,
      otherCpu: med('otherCpu'),
    };
  });
}

function report(opts, meta, rows) {
  const L = [];
  const spread = opts.rounds > 1;
  const flags = [];
  L.push(`### Fan-out through Redis: sockeye vs socket.io (${int(opts.clients)} clients)`);
  L.push('');
  L.push(`- Command: \`${meta.command}\``);
  L.push(`- Date: ${meta.date}`);
  L.push(`- Machine: ${meta.cpu}, ${meta.cpus} CPUs available, ${meta.os}; Node ${process.version}; open-file hard limit ${meta.fileLimit}`);
  L.push(`- Pinning: ${meta.pin ? `servers and redis-server on CPU ${meta.pin.serverList}, generator on CPU ${meta.pin.generator} (taskset)` : 'none (taskset not available, too few CPUs, or --no-pin): servers, redis-server and generator compete for CPUs'}`);
  L.push('- Load generator: C (bench/loadgen, epoll, one process on one core), the same for every row; socket.io rows in its engine.io mode');
  L.push(`- Libraries: sockeye ${meta.versions.sockeye} (dist/), socket.io ${meta.versions.socketio ?? 'missing'}, @socket.io/redis-adapter ${meta.versions.adapter ?? 'not installed'}, node-redis ${meta.versions.redis ?? 'missing'} (both libraries' Redis client), redis-server ${meta.versions.redisServer ?? 'not started'} (--save '' --appendonly no)`);
  for (const row of ROWS.filter((r) => meta.fanout[r.id])) L.push(`- ${row.id}: ${meta.fanout[row.id]}`);
  L.push(`- Payload: ${opts.size} B of ASCII letters and digits, the same for every row (a 16-byte stamp of sender and broadcast number, then fixed random characters). sockeye sends it as a text frame of ${wire(ROWS[0], opts.size).frame} B; socket.io as the event 42["fan","<payload>"], a text frame of ${wire(ROWS[2], opts.size).frame} B`);
  L.push(`- Each row: ${opts.rounds} round${spread ? 's' : ''} of ${opts.durationS} s measured after ${opts.warmupS} s of broadcasts, ${opts.depth} broadcast${opts.depth > 1 ? 's' : ''} in flight; fresh server processes for every row and round; rows interleaved${spread ? ', order rotated per round' : ''}`);
  L.push(`- Load average (1 min) before / after: ${meta.loadBefore.toFixed(2)} / ${meta.loadAfter.toFixed(2)}`);
  for (const s of meta.skipped) L.push(`- SKIPPED: ${s}`);
  L.push('');
  L.push(`| Row | processes | deliveries/s${spread ? ' median (min–max)' : ''} | broadcasts/s | × socket.io + Redis | p50 send→last client | p99 send→last client | deliveries verified | gen CPU | server CPU | redis CPU | other load | notes |`);
  L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const r of rows) {
    if (r.ok === 0) {
      L.push(`| ${r.title} | ${r.processes} | FAILED: ${r.errors[0] ?? 'no run'} |${' |'.repeat(10)}`);
      continue;
    }
    const notes = [];
    if (r.generatorCpu >= GEN_CPU_WARN) notes.push('gen-bound');
    if (Number.isFinite(r.otherCpu) && r.otherCpu >= OTHER_CPU_WARN) notes.push('disturbed');
    flags.push(...notes);
    if (r.errors.length) notes.push(`${r.errors.length} run${r.errors.length > 1 ? 's' : ''} FAILED`);
    const rate = spread ? `${int(r.deliveriesPerSec)} (${int(r.min)}–${int(r.max)})` : int(r.deliveriesPerSec);
    L.push(`| ${r.title} | ${r.processes} | ${rate} | ${sig(r.broadcastsPerSec)} | ${ratio(r.ratioToBase)} | ${sig(r.p50Ms)} ms | ${sig(r.p99Ms)} ms | ${int(r.deliveriesVerified)} | ${pct(r.generatorCpu)} | ${pct(r.serverCpu)} | ${r.redisCpu === null ? '' : pct(r.redisCpu)} | ${pct(r.otherCpu)} | ${notes.join(', ')} |`);
  }
  L.push('');
  L.push(`One client (on the first process) sends a message; the server publishes it to the topic (sockeye) or emits it to the room (socket.io), and every client, the sender included, receives it: ${int(opts.clients)} deliveries per broadcast, spread over the row's processes (client i on process i mod n). The generator checks every copy byte for byte (the socket.io event's framing too) and in order, and the next broadcast goes when every client has the last one. deliveries/s = broadcasts/s × clients, counted in the measured window only. Latency: from the send to the verified copy at the last client. × socket.io + Redis: deliveries/s over the socketio-redis row's in the same round, then the median over rounds. CPU columns: share of one core over the measured window (the median over rounds; gen CPU the highest); server CPU is a row's server processes together, redis CPU redis-server's, other load what the pinned CPUs spent on anything else (other programs, interrupts, hypervisor steal).`);
  const goal = rows.find((r) => r.id === GOAL.row);
  if (goal && Number.isFinite(goal.ratioToBase)) {
    L.push('');
    const base = rows.find((r) => r.id === BASE);
    const unsure = flags.includes('disturbed') || flags.includes('gen-bound') || goal.ok < opts.rounds || base.ok < opts.rounds;
    L.push(`Goal: ${GOAL.row} at ${GOAL.ratio}× socket.io's Redis adapter or more: ${ratio(goal.ratioToBase)} in this run, ${goal.ratioToBase >= GOAL.ratio ? 'met' : 'not met'}${unsure ? ' (but rows are disturbed, gen-bound or failed: this run does not decide it)' : ''}.`);
  }
  if (flags.includes('gen-bound')) L.push('', `gen-bound: the generator used ≥ ${Math.round(GEN_CPU_WARN * 100)}% of its core; the row measured it as much as the servers.`);
  if (flags.includes('disturbed')) L.push('', `disturbed: the pinned CPUs spent ≥ ${Math.round(OTHER_CPU_WARN * 100)}% of a core on other work: rerun before drawing conclusions.`);
  const failures = rows.filter((r) => r.errors.length);
  if (failures.length) {
    L.push('');
    for (const r of failures) for (const e of r.errors) L.push(`- FAILED ${r.id}: ${e}`);
  }
  return L.join('\n') + '\n';
}

// ------------------------------------------------------------ main

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.rows.some((id) => id.startsWith('sockeye')) && !existsSync(join(ROOT, 'dist', 'src', 'index.js'))) {
    process.stderr.write('fanout-redis: dist/src/index.js is missing: build first with `npm run build`\n');
    process.exit(1);
  }
  const problem = buildLoadgen();
  if (problem) {
    process.stderr.write(`fanout-redis: cannot build the C load generator: ${problem}\n`);
    process.exit(1);
  }
  const limit = fileLimit();
  if (opts.clients + 64 > limit) {
    process.stderr.write(`fanout-redis: ${opts.clients} clients need ${opts.clients + 64} open files; the hard limit (ulimit -Hn) is ${limit}\n`);
    process.exit(1);
  }
  const skipped = [];
  const versions = {
    sockeye: JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version,
    socketio: packageVersion('socket.io'),
    adapter: packageVersion('@socket.io/redis-adapter'),
    redis: packageVersion('redis'),
    redisServer: null,
  };
  let rows = ROWS.filter((r) => opts.rows.includes(r.id));
  if (!versions.adapter && rows.some((r) => r.id === 'socketio-redis')) {
    skipped.push('socketio-redis: @socket.io/redis-adapter is not installed (the benchmark\'s own packages: npm --prefix bench ci)');
    rows = rows.filter((r) => r.id !== 'socketio-redis');
  }
  if (!versions.socketio) {
    skipped.push('socket.io rows: socket.io is not installed (a devDependency: npm ci)');
    rows = rows.filter((r) => r.library !== 'socket.io');
  }
  const pin = pinning(opts);
  const meta = {
    command: (process.env.npm_lifecycle_event?.startsWith('bench') ? `npm run ${process.env.npm_lifecycle_event}  # ` : '') + ['node', relative(ROOT, fileURLToPath(import.meta.url)), ...process.argv.slice(2)].join(' '),
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    cpu: cpuModel(),
    cpus: availableParallelism(),
    os: `${osType()} ${release()}`,
    fileLimit: limit,
    pin,
    versions,
    fanout: {},
    skipped,
    loadBefore: loadavg()[0],
    loadAfter: NaN,
    redisPort: null,
  };
  let redis = null;
  if (rows.some((r) => r.redis)) {
    redis = await startRedis(pin);
    versions.redisServer = redis.version;
    meta.redisPort = redis.port;
  }
  const env = { opts, pin, redis, clkTck: clockTicks(), meta };
  const cells = [];
  for (let round = 0; round < opts.rounds; round++) for (let k = 0; k < rows.length; k++) cells.push({ round, row: rows[(k + round) % rows.length] });
  process.stderr.write(`fanout-redis: ${cells.length} runs of ${int(opts.clients)} clients; ${pin ? `servers and redis on CPU ${pin.serverList}, generator on CPU ${pin.generator}` : 'no CPU pinning'}${redis ? `; redis-server ${redis.version} on port ${redis.port}` : ''}\n`);
  const results = [];
  try {
    for (const [i, { round, row }] of cells.entries()) {
      const result = await runCell(row, env);
      results.push({ round, row: row.id, result });
      const r = result;
      process.stderr.write(`  [${i + 1}/${cells.length}] round ${round + 1} ${row.id}: ${r.error ? `FAILED: ${r.error}` : `${int(r.deliveriesPerSec)} deliveries/s, ${sig(r.broadcastsPerSec)} broadcasts/s, p99 ${sig(r.p99Ms)} ms, gen CPU ${pct(r.generatorCpu)}, server CPU ${pct(r.serverCpu)}${r.redisCpu != null ? `, redis CPU ${pct(r.redisCpu)}` : ''}`}\n`);
    }
  } finally {
    if (redis) await stopProcess(redis.child);
  }
  meta.loadAfter = loadavg()[0];
  const summary = summarize({ ...opts, rows: rows.map((r) => r.id) }, results);
  const text = report(opts, meta, summary);
  process.stdout.write(text);
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, text);
  if (opts.json) writeFileSync(opts.json, JSON.stringify({ meta, rows: summary, runs: results }, null, 2) + '\n');
  process.stderr.write(`fanout-redis: written to ${relative(process.cwd(), opts.out) || opts.out}\n`);
  if (results.some((r) => r.result.error)) process.exitCode = 1;
}

main().catch((error) => {
  process.stderr.write(`fanout-redis: ${error instanceof Error ? error.message : String(error)}\n`);
  killAll();
  process.exit(1);
});
