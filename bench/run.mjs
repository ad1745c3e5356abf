// The benchmark harness: starts the sockeye (send()'s default copy, and sockeye-transfer
// forwarding with { transfer: true }), ws, ws-native, raw and the framing floor servers
// (each in its own process, a fresh one for every cell), then runs every scenario against every server
// with the same load generator (its own process), servers interleaved within
// each round, and prints Markdown tables of medians, spreads and ratios.
//
//   node bench/run.mjs            full: 3 rounds of 10 s per cell after 1 s warm-up
//   node bench/run.mjs --quick    1 round of 2 s per cell (about 2 min in all)
//   options: --rounds N --duration S --warmup S --scenarios id,id --servers a,b
//            --generator c|node --no-pin --out FILE
//
// The load generator is the C one in bench/loadgen/ (built here with make;
// it does TLS with OpenSSL, so the wss scenario too), unless --generator node
// selects the Node one for the echo scenarios (wss included); the handshake,
// idle and fan-out scenarios exist only in C.
// Progress goes to stderr; the report goes to stdout and to
// bench/results/latest.md (or --out).

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, tmpdir, type as osType } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { selfSigned } from './lib/certificate.mjs';
import { FAMILIES, IDLE_NODE_FLAGS, SCENARIOS, serverFor } from './lib/scenarios.mjs';
import { startServerProcess, stopProcess } from './lib/server-process.mjs';
import { slope } from './lib/slope.mjs';
import { median, int, sig, pct, ratio, mib, kib } from './lib/report-format.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH);
const LOADGEN_DIR = join(BENCH, 'loadgen');
const LOADGEN = join(LOADGEN_DIR, 'loadgen');
const SERVER_START_TIMEOUT_MS = 15_000;
const CONTROL_TIMEOUT_MS = 30_000;
const GEN_CPU_WARN = 0.9;
// A row is "disturbed" when the pinned CPUs carried this much other work (in
// cores), or when neither process was busy: in a closed loop with messages in
// flight one side should be near a full core unless something else took it.
const OTHER_CPU_WARN = 0.25;
const STARVED_BELOW = 0.6;

// ------------------------------------------------------------ options

function parseArgs(argv) {
  const quick = argv.includes('--quick');
  const opts = {
    quick,
    rounds: quick ? 1 : 3,
    durationS: quick ? 2 : 10,
    warmupS: 1,
    scenarios: SCENARIOS.map((s) => s.id),
    servers: [...FAMILIES],
    generator: 'c',
    pin: true,
    out: join(BENCH, 'results', 'latest.md'),
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
    } else if (a === '--quick') continue;
    else if (a === '--rounds') opts.rounds = positive(value(), a, 1, 20);
    else if (a === '--duration') opts.durationS = positive(value(), a, 0.5, 120);
    else if (a === '--warmup') opts.warmupS = positive(value(), a, 0, 60);
    else if (a === '--scenarios') opts.scenarios = value().split(',');
    else if (a === '--servers') opts.servers = value().split(',');
    else if (a === '--generator') {
      opts.generator = value();
      if (opts.generator !== 'c' && opts.generator !== 'node') usage('--generator must be c or node');
    } else if (a === '--no-pin') opts.pin = false;
    else if (a === '--out') opts.out = value();
    else usage(`unknown option ${a}`);
  }
  for (const id of opts.scenarios) if (!SCENARIOS.some((s) => s.id === id)) usage(`unknown scenario ${id} (${SCENARIOS.map((s) => s.id).join(', ')})`);
  for (const n of opts.servers) if (!FAMILIES.includes(n)) usage(`unknown server ${n} (${FAMILIES.join(', ')})`);
  return opts;
}

function positive(text, name, min, max) {
  const n = Number(text);
  if (!Number.isFinite(n) || n < min || n > max) usage(`${name} must be a number from ${min} to ${max}`);
  return n;
}

const USAGE = `usage: node bench/run.mjs [--quick] [--rounds N] [--duration S] [--warmup S] [--scenarios ids] [--servers names] [--generator c|node] [--no-pin] [--out FILE]
  --quick          1 round of 2 s per cell (default: 3 rounds of 10 s)
  --rounds N       rounds; servers are interleaved within each round
  --duration S     measured seconds per cell
  --warmup S       seconds of load before measuring (default 1)
  --scenarios ids  ${SCENARIOS.map((s) => s.id).join(',')}
  --servers names  ${FAMILIES.join(',')} (TLS scenarios use each one's TLS variant)
  --generator g    c (default: bench/loadgen, built with make) or node (bench/generator.mjs) for the echo
                   scenarios, wss included; handshake/idle/fan-out always use c
  --no-pin         do not pin servers and generator to CPUs 0 and 1 with taskset
  --out FILE       report file (default bench/results/latest.md)
`;

function usage(message) {
  process.stderr.write(`bench: ${message}\n${USAGE}`);
  process.exit(64);
}

// ------------------------------------------------------------ the machine

function cpuModel() {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1].trim();
  } catch {
    // not Linux: fall through to os.cpus()
  }
  return cpus()[0]?.model ?? 'unknown CPU';
}

/** CPUs for the server and the generator when taskset can pin to 0 and 1, else null. */
function pinning(wanted) {
  if (!wanted || availableParallelism() < 2) return null;
  const ok = (cpu) => spawnSync('taskset', ['-c', String(cpu), 'true'], { stdio: 'ignore' }).status === 0;
  return ok(0) && ok(1) ? { server: 0, generator: 1 } : null;
}

function clockTicks() {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isInteger(n) && n > 0 ? n : 100;
}

function packageVersion(dir) {
  try {
    return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

/** The newest .ts under src/, to warn when dist/ is older (a stale build would be measured). */
function newestSource(dir) {
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (name.endsWith('.ts')) newest = Math.max(newest, st.mtimeMs);
  }
  return newest;
}

function fileLimit() {
  const r = spawnSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isFinite(n) ? n : Infinity; // "unlimited"
}

/** Builds the C generator; returns null or why it could not be built. */
function buildLoadgen() {
  const cc = spawnSync('cc', ['--version'], { stdio: 'ignore' });
  if (cc.error) return 'no C compiler (cc/gcc) found: install gcc and make (apt-get install gcc make)';
  const r = spawnSync('make', ['-s', '-C', LOADGEN_DIR], { encoding: 'utf8' });
  if (r.error) return `make could not run (${r.error.message}): install make`;
  if (r.status !== 0) return `make -C bench/loadgen failed:\n${r.stdout}${r.stderr}`;
  return null;
}

/** A self-signed P-256 certificate for 127.0.0.1 in a fresh temporary directory: { dir, ca }, or { error } if openssl is missing. */
function makeCertificate() {
  const dir = mkdtempSync(join(tmpdir(), 'sockeye-bench-tls-'));
  const made = selfSigned(dir);
  if (made.error) {
    rmSync(dir, { recursive: true, force: true });
    return { error: made.error };
  }
  return { dir, ca: made.cert };
}

// ------------------------------------------------------------ processes

function pinned(pinCpu, argv) {
  return pinCpu === null ? argv : ['taskset', '-c', String(pinCpu), ...argv];
}

/**
 * Starts one server; resolves with { ...server, child, port, pid, info, control }
 * where control(line) sends a control line and resolves with the MEMORY answer.
 */
function startServer(server, pin, extraArgs = [], nodeFlags = []) {
  const args = [...server.args, ...extraArgs];
  if (server.tls) args.push('--tls', server.tlsDir);
  // --expose-gc: the idle-memory scenario asks the server for a full GC before each reading.
  const argv = pinned(pin ? pin.server : null, [process.execPath, '--expose-gc', ...nodeFlags, join(BENCH, server.file), ...args]);
  return startServerProcess(server.name, argv, { cwd: ROOT, startTimeoutMs: SERVER_START_TIMEOUT_MS, controlTimeoutMs: CONTROL_TIMEOUT_MS }).started.then((p) => ({ ...server, ...p }));
}

/** Stops a server we started: close its stdin, then SIGKILL after 5 s. */
function stopServer(s) {
  return stopProcess(s.child);
}

/**
 * Runs a generator once; resolves with its result (or { error }).
 * onLine sees every stdout line but the last; with keepStdin the generator's
 * stdin is a pipe that stays open until the returned endInput() is called.
 */
function runGenerator(generator, config, pin, timeoutMs, { onLine, keepStdin } = {}) {
  const argv = generator === 'c' ? [LOADGEN, JSON.stringify(config)] : [process.execPath, join(BENCH, 'generator.mjs'), JSON.stringify(config)];
  const [cmd, ...args] = pinned(pin ? pin.generator : null, argv);
  const child = spawn(cmd, args, { cwd: ROOT, stdio: [keepStdin ? 'pipe' : 'ignore', 'pipe', 'inherit'] });
  const done = new Promise((resolve) => {
    let out = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      if (!onLine) return;
      let nl;
      while ((nl = out.indexOf('\n')) >= 0 && !out.startsWith('{')) {
        onLine(out.slice(0, nl));
        out = out.slice(nl + 1);
      }
    });
    // 'close', not 'exit': only then has all of stdout been read.
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) return resolve({ error: `generator timed out after ${timeoutMs} ms` });
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()));
      } catch {
        resolve({ error: `generator exited (${code ?? signal}) without a result` });
      }
    });
  });
  return { done, endInput: () => child.stdin?.end() };
}

/** Resident set size of a process, in bytes, from /proc/<pid>/status. */
function residentBytes(pid) {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
  if (!m) throw new Error(`no VmRSS for process ${pid}`);
  return Number(m[1]) * 1024;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------ one cell of each kind

function baseConfig(scenario, server, env) {
  return {
    workload: scenario.kind,
    mode: server.mode,
    port: server.port,
    serverPid: server.pid,
    clkTck: env.clkTck,
    cpus: env.pin ? [env.pin.server, env.pin.generator] : null,
    size: scenario.size,
    binary: scenario.binary,
    connections: scenario.connections,
    depth: scenario.depth ?? 1,
    ...(server.transport === 'h2' ? { h2: true } : {}),
    warmupMs: env.opts.warmupS * 1000,
    durationMs: env.opts.durationS * 1000,
  };
}

async function runEcho(scenario, server, env) {
  const config = baseConfig(scenario, server, env);
  if (scenario.tls) Object.assign(config, { tls: true, tlsCa: env.tls.ca });
  const generator = generatorFor(scenario, env.opts);
  const timeout = (env.opts.warmupS + env.opts.durationS) * 1000 + 30_000;
  return runGenerator(generator, config, env.pin, timeout).done;
}

/** Idle connections are opened this many at a time, with a reading after each step. */
const IDLE_STEP = 1000;

/**
 * Idle memory: a fresh server; a warm-up cycle of connections; GC and RSS
 * with none open; then the connections opened IDLE_STEP at a time and held,
 * with a GC and RSS after each step. The per-connection figure is the
 * least-squares slope of RSS over the readings of the second half: what one
 * more idle connection holds.
 *
 * Why not (RSS at N - RSS empty) / N: while thousands of connections are being
 * opened V8 grows its young generation (two semi-spaces) to its maximum, 32 MiB
 * in every server here, and a full GC does not shrink it again. That is
 * resident memory that would be the same for 100,000 connections, and it
 * charged every server 1.1-1.5 KiB per connection. The semi-spaces are fixed at
 * that maximum (IDLE_NODE_FLAGS), so their growth cannot land between two
 * readings either, which it did in trial runs without the flags. The figure
 * from empty is still reported beside the slope.
 */
async function runIdle(scenario, family, env) {
  const server = await startServer(serverFor(scenario, family), env.pin, [], IDLE_NODE_FLAGS);
  const holding = [];
  try {
    const config = { ...baseConfig(scenario, server, env), holdMs: 0, connections: scenario.warmConnections };
    const warm = await runGenerator('c', config, env.pin, 60_000).done;
    if (warm.error) return { error: `warm-up cycle: ${warm.error}` };
    await sleep(200); // let the server finish closing the warm-up connections
    const before = await server.control('gc');
    const rssBefore = residentBytes(server.pid);
    if (before.connections !== 0) return { error: `server still holds ${before.connections} connections after the warm-up cycle` };
    const n = scenario.connections;
    const half = Math.floor(n / 2);
    const heap = (m) => m.heapUsed + m.external;
    // Opens `count` more connections with a generator that holds them until its input ends; resolves
    // with the server's reading once they are all established and the server counts `total`.
    const hold = (count, total) =>
      new Promise((resolve) => {
        let reading = null;
        const run = runGenerator('c', { ...baseConfig(scenario, server, env), connections: count, holdMs: 120_000 }, env.pin, 180_000, {
          keepStdin: true,
          onLine: (line) => {
            if (!line.startsWith('ESTABLISHED')) return;
            reading = server.control('gc').then((memory) => {
              const rss = residentBytes(server.pid);
              if (memory.connections !== total) throw new Error(`server reports ${memory.connections} connections, the generators opened ${total}`);
              return { memory, rss };
            });
            reading.then(
              (r) => resolve({ run, reading: r }),
              (e) => resolve({ run, error: e.message }),
            );
          },
        });
        holding.push(run);
        run.done.then((result) => {
          if (reading === null) resolve({ run, error: result.error ?? 'the generator never reported its connections established' });
        });
      });
    // Opened IDLE_STEP connections at a time, each step from its own generator process, with a reading
    // after each step. The figure is the least-squares slope over the readings from n/2 to n, so one
    // reading caught by a step of V8's or malloc's growth (the old generation grows by whole pages)
    // moves it less than it moved a two-point slope. Equal steps matter too: RSS keeps the peak of an
    // opening burst (memory freed after the handshakes stays with the allocator), and when the second
    // half followed one burst of 5,000, that reading sat high and the slope after it low.
    const readings = [];
    let opened = 0;
    while (opened < n) {
      const count = Math.min(IDLE_STEP, n - opened);
      const step = await hold(count, opened + count);
      if (step.error) return { error: step.error };
      opened += count;
      readings.push({ connections: opened, rss: step.reading.rss, heap: heap(step.reading.memory), gc: step.reading.memory.gc });
    }
    const fitted = readings.filter((r) => r.connections >= half);
    const mid = fitted[0];
    const after = readings[readings.length - 1];
    for (const run of holding) run.endInput();
    const results = await Promise.all(holding.map((run) => run.done));
    const failed = results.find((r) => r.error);
    if (failed) return failed;
    const last = results[results.length - 1];
    return {
      ...last,
      generatorCpu: Math.max(...results.map((r) => r.generatorCpu)),
      rssBefore,
      rssMid: mid.rss,
      rssAfter: after.rss,
      bytesPerConn: slope(fitted, 'rss'),
      bytesPerConnFromEmpty: (after.rss - rssBefore) / n,
      heapPerConn: slope(fitted, 'heap'),
      gc: after.gc,
    };
  } finally {
    for (const run of holding) run.endInput();
    await stopServer(server);
  }
}

async function runFanout(scenario, family, env) {
  const server = await startServer(serverFor(scenario, family), env.pin, ['--fanout']);
  try {
    if (server.info.fanout) env.meta.fanout[family] = server.info.fanout;
    const timeout = (env.opts.warmupS + env.opts.durationS) * 1000 + 60_000;
    return await runGenerator('c', baseConfig(scenario, server, env), env.pin, timeout).done;
  } finally {
    await stopServer(server);
  }
}

function generatorFor(scenario, opts) {
  return scenario.generator ?? (scenario.kind === 'echo' ? opts.generator : 'c');
}

// ------------------------------------------------------------ statistics and report

/** The measure a scenario's rows are ranked by (higher is better except for memory). */
const METRIC = { echo: 'msgPerSec', handshake: 'handshakesPerSec', open: 'opensPerSec', fanout: 'deliveriesPerSec', idle: 'bytesPerConn' };

function summarize(opts, results) {
  const rows = [];
  for (const scenario of SCENARIOS.filter((s) => opts.scenarios.includes(s.id))) {
    const metric = METRIC[scenario.kind];
    for (const family of scenario.servers.filter((f) => opts.servers.includes(f))) {
      const runs = results.filter((r) => r.scenario === scenario.id && r.family === family);
      if (runs.length === 0) continue;
      const ok = runs.filter((r) => !r.result.error);
      const errors = runs.filter((r) => r.result.error).map((r) => r.result.error);
      // Ratios per round (the runs were minutes apart at most), then the median.
      const ratioTo = (base) => {
        const v = [];
        for (const r of ok) {
          const b = results.find((x) => x.scenario === scenario.id && x.family === base && x.round === r.round && !x.result.error);
          if (b) v.push(r.result[metric] / b.result[metric]);
        }
        return median(v);
      };
      const med = (key) => median(ok.map((r) => r.result[key]));
      const values = ok.map((r) => r.result[metric]);
      const cpuKnown = (key) => ok.length > 0 && ok.every((r) => r.result[key] != null);
      rows.push({
        scenario,
        family,
        server: runs[0].server,
        generator: [...new Set(runs.map((r) => r.generator))].join('+'),
        n: ok.length,
        errors,
        value: median(values),
        min: Math.min(...values),
        max: Math.max(...values),
        med,
        ratioWs: ratioTo('ws'),
        ratioRaw: ratioTo('raw'),
        genCpu: ok.length ? Math.max(...ok.map((r) => r.result.generatorCpu)) : NaN,
        genCpuMedian: med('generatorCpu'),
        serverCpu: cpuKnown('serverCpu') ? med('serverCpu') : null,
        otherCpu: cpuKnown('otherCpu') ? med('otherCpu') : null,
        idle: ok.reduce((a, r) => a + (r.result.idleConnections ?? 0), 0),
      });
    }
  }
  return rows;
}

function flags(r, state) {
  const notes = [];
  if (r.scenario.kind !== 'idle') {
    if (r.genCpu >= GEN_CPU_WARN) {
      state.genBound = true;
      notes.push('gen-bound');
    }
    const starved = Math.max(r.genCpuMedian, r.serverCpu ?? 1) < STARVED_BELOW;
    if ((r.otherCpu !== null && r.otherCpu >= OTHER_CPU_WARN) || starved) {
      state.disturbed = true;
      notes.push('disturbed');
    }
  }
  if (r.errors.length) notes.push(`${r.errors.length} run${r.errors.length > 1 ? 's' : ''} FAILED`);
  return notes.join(', ');
}

function report(opts, meta, rows) {
  const L = [];
  const state = { genBound: false, disturbed: false };
  const spread = opts.rounds > 1;
  const withSpread = (r, fmt) => (spread ? `${fmt(r.value)} (${fmt(r.min)}–${fmt(r.max)})` : fmt(r.value));
  L.push(`### sockeye vs ws vs raw node:net (${opts.quick ? 'quick' : 'full'} run)`);
  L.push('');
  L.push(`- Command: \`${meta.command}\``);
  L.push(`- Date: ${meta.date}`);
  L.push(`- Machine: ${meta.cpu}, ${meta.cpus} CPUs available, ${meta.os}; Node ${process.version}; open-file hard limit ${meta.fileLimit}`);
  L.push(`- Pinning: ${meta.pin ? `servers on CPU ${meta.pin.server}, generator on CPU ${meta.pin.generator} (taskset)` : 'none (taskset not available, fewer than 2 CPUs, or --no-pin): server and generator compete for CPUs'}`);
  L.push(`- Load generator: ${meta.generators}`);
  L.push(`- Libraries: sockeye ${meta.sockeye} (dist/), ws ${meta.ws ?? 'missing'}. ws rows: plain JavaScript (WS_NO_BUFFER_UTIL, WS_NO_UTF_8_VALIDATE). ws-native rows: ${meta.native}`);
  if (Object.keys(meta.fanout).length) L.push(`- Fan-out servers: ${Object.entries(meta.fanout).map(([k, v]) => `${k} uses ${v}`).join('; ')}; ws uses \`for (const c of wss.clients) c.send(data)\``);
  if (meta.tls) L.push(`- TLS: ${meta.tls}`);
  L.push(`- Each cell: ${opts.rounds} round${opts.rounds > 1 ? 's' : ''} of ${opts.durationS} s measured after ${opts.warmupS} s warm-up; servers interleaved within each round${opts.rounds > 1 ? ' (order rotated per round)' : ''}`);
  L.push(`- Load average (1 min) before / after: ${meta.loadBefore.toFixed(2)} / ${meta.loadAfter.toFixed(2)}`);
  if (meta.staleDist) L.push('- WARNING: dist/ is older than src/: this measured a stale build (run `npm run build`)');
  for (const s of meta.skipped) L.push(`- SKIPPED: ${s}`);

  const echo = rows.filter((r) => r.scenario.kind === 'echo');
  if (echo.length) {
    L.push('');
    L.push('#### Echo throughput');
    L.push('');
    L.push(`| Scenario | Server | gen | msg/s${spread ? ' median (min–max)' : ''} | MB/s | × ws | × raw | p50 RTT | p99 RTT | gen CPU | server CPU | other load | notes |`);
    L.push('|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
    let last = null;
    for (const r of echo) {
      const title = r.scenario.id === last ? '' : r.scenario.title;
      last = r.scenario.id;
      if (r.n === 0) {
        L.push(`| ${title} | ${r.server} | ${r.generator} | FAILED: ${r.errors[0] ?? 'no run'} |${' |'.repeat(9)}`);
        continue;
      }
      const vsRaw = r.scenario.vsRaw && r.family !== 'raw' ? ratio(r.ratioRaw) : '';
      L.push(`| ${title} | ${r.server} | ${r.generator} | ${withSpread(r, int)} | ${sig(r.med('mbPerSec'))} | ${ratio(r.ratioWs)} | ${vsRaw} | ${sig(r.med('p50Ms'))} ms | ${sig(r.med('p99Ms'))} ms | ${pct(r.genCpu)} | ${pct(r.serverCpu)} | ${pct(r.otherCpu)} | ${flags(r, state)} |`);
    }
    L.push('');
    L.push('msg/s: verified echoes per second (a round trip each). MB/s: echoed payload bytes per second (10^6 B, counted once, not per direction). × ws, × raw: msg/s relative to the ws (plain JavaScript) or raw row of the same scenario in the same round; in the wss scenario those are the TLS variants. RTT: send to verified echo, including queueing behind the other messages in flight.');
  }

  const hs = rows.filter((r) => r.scenario.kind === 'handshake');
  if (hs.length) {
    L.push('');
    L.push(`#### Connection setup (${hs[0].scenario.title.replace(/^connection setup: /, '')})`);
    L.push('');
    L.push(`| Server | handshakes/s${spread ? ' median (min–max)' : ''} | × ws | p50 connect→echo | p99 connect→echo | gen CPU | server CPU | other load | notes |`);
    L.push('|---|---:|---:|---:|---:|---:|---:|---:|---|');
    for (const r of hs) {
      if (r.n === 0) {
        L.push(`| ${r.server} | FAILED: ${r.errors[0] ?? 'no run'} | | | | | | | |`);
        continue;
      }
      L.push(`| ${r.server} | ${withSpread(r, int)} | ${ratio(r.ratioWs)} | ${sig(r.med('p50Ms'))} ms | ${sig(r.med('p99Ms'))} ms | ${pct(r.genCpu)} | ${pct(r.serverCpu)} | ${pct(r.otherCpu)} | ${flags(r, state)} |`);
    }
    L.push('');
    L.push('A handshake here is a whole cycle: TCP connect, upgrade request and 101 response (Sec-WebSocket-Accept checked), one 32 B echo verified, close frames both ways and the server closing the TCP connection. raw: TCP connect, 32 B echo, FIN both ways (the cost of the sockets alone). Latency: from connect() to the verified echo.');
  }

  const open = rows.filter((r) => r.scenario.kind === 'open');
  if (open.length) {
    L.push('');
    L.push('#### Opening a WebSocket on an open HTTP/2 connection');
    L.push('');
    L.push(`| Server | opens/s${spread ? ' median (min–max)' : ''} | × ws | p50 open→echo | p99 open→echo | gen CPU | server CPU | other load | notes |`);
    L.push('|---|---:|---:|---:|---:|---:|---:|---:|---|');
    for (const r of open) {
      if (r.n === 0) {
        L.push(`| ${r.server} | FAILED: ${r.errors[0] ?? 'no run'} | | | | | | | |`);
        continue;
      }
      L.push(`| ${r.server} | ${withSpread(r, int)} | ${ratio(r.ratioWs)} | ${sig(r.med('p50Ms'))} ms | ${sig(r.med('p99Ms'))} ms | ${pct(r.genCpu)} | ${pct(r.serverCpu)} | ${pct(r.otherCpu)} | ${flags(r, state)} |`);
    }
    L.push('');
    L.push(`${open[0].scenario.title.replace(/^wss: /, '')}. An open is a whole cycle: sockeye-h2 sends an extended CONNECT on an HTTP/2 connection opened once (RFC 8441) and waits for its 200; the others open a TCP connection, do a full TLS handshake (no session resumption) and an HTTP/1.1 upgrade. Then one 32 B echo verified and close frames both ways. Latency: from the start of the open to the verified echo.`);
  }

  const idle = rows.filter((r) => r.scenario.kind === 'idle');
  if (idle.length) {
    L.push('');
    L.push(`#### Memory per idle connection (${int(idle[0].scenario.connections)} connections)`);
    L.push('');
    const n = idle[0].scenario.connections;
    const half = Math.floor(n / 2);
    L.push(`| Server | RSS empty | RSS at ${int(half)} | RSS at ${int(n)} | RSS per connection${spread ? ' median (min–max)' : ''} | × ws | JS heap + external per connection | RSS per connection from empty | connections opened/s | notes |`);
    L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
    for (const r of idle) {
      if (r.n === 0) {
        L.push(`| ${r.server} | FAILED: ${r.errors[0] ?? 'no run'} | | | | | | | | |`);
        continue;
      }
      L.push(`| ${r.server} | ${mib(r.med('rssBefore'))} | ${mib(r.med('rssMid'))} | ${mib(r.med('rssAfter'))} | ${withSpread(r, kib)} | ${ratio(r.ratioWs)} | ${kib(r.med('heapPerConn'))} | ${kib(r.med('bytesPerConnFromEmpty'))} | ${int(r.med('establishedPerSec'))} | ${flags(r, state)} |`);
    }
    L.push('');
    L.push(`Each cell: a fresh server process (started with --expose-gc and V8's young generation fixed at its maximum, ${IDLE_NODE_FLAGS.join(' ')}); ${int(idle[0].scenario.warmConnections)} connections opened, echoed once and closed to warm it up; a full GC; VmRSS from /proc/<pid>/status (empty); then ${int(n)} connections opened ${int(IDLE_STEP)} at a time, each step from its own generator process (in batches of 128), each connection handshaken and echoed once and held idle, with a full GC and VmRSS after each step and the server's own count of open connections checked at each reading. RSS per connection: the least-squares slope of RSS against open connections over the readings from ${int(half)} to ${int(n)}, what one more idle connection costs; lower is better, × ws < 1 means less memory than ws. The heap column is the same slope of V8's heapUsed + external from process.memoryUsage(). From empty: (RSS at ${int(n)} − RSS empty) / ${int(n)}.`);
  }

  const fan = rows.filter((r) => r.scenario.kind === 'fanout');
  if (fan.length) {
    L.push('');
    L.push(`#### Fan-out (${fan[0].scenario.title.replace(/^fan-out: /, '')})`);
    L.push('');
    L.push(`| Server | deliveries/s${spread ? ' median (min–max)' : ''} | broadcasts/s | × ws | p50 send→last client | p99 send→last client | gen CPU | server CPU | other load | notes |`);
    L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
    for (const r of fan) {
      if (r.n === 0) {
        L.push(`| ${r.server} | FAILED: ${r.errors[0] ?? 'no run'} | | | | | | | | |`);
        continue;
      }
      L.push(`| ${r.server} | ${withSpread(r, int)} | ${sig(r.med('broadcastsPerSec'))} | ${ratio(r.ratioWs)} | ${sig(r.med('p50Ms'))} ms | ${sig(r.med('p99Ms'))} ms | ${pct(r.genCpu)} | ${pct(r.serverCpu)} | ${pct(r.otherCpu)} | ${flags(r, state)} |`);
    }
    L.push('');
    L.push(`One client sends a message; the server sends it to every connected client (the sender included, ${int(fan[0].scenario.connections)} in all); the generator verifies every copy byte for byte and in order, then the sender sends the next. deliveries/s = broadcasts/s × clients. Latency: from the send to the verified copy at the last client.`);
  }

  L.push('');
  L.push('CPU columns: share of one core over the measured window; gen CPU is the highest of the rounds; other load is what the pinned CPUs spent on anything but the generator and the server (other programs, interrupts including loopback networking, hypervisor steal).');
  const cRows = rows.filter((r) => r.n > 0 && r.generator === 'c' && r.scenario.kind !== 'idle');
  const nodeRows = rows.filter((r) => r.n > 0 && r.generator === 'node');
  const peak = (rs) => Math.max(...rs.map((r) => r.genCpu));
  L.push('');
  L.push(
    'Generator headroom: ' +
      [cRows.length ? `the C generator's busiest row used ${pct(peak(cRows))} of its core` : null, nodeRows.length ? `the Node generator's busiest row used ${pct(peak(nodeRows))}` : null].filter(Boolean).join('; ') +
      `. Rows where it reached ${Math.round(GEN_CPU_WARN * 100)}% are marked gen-bound.`,
  );
  if (state.genBound) {
    L.push('');
    L.push(`gen-bound: the generator used ≥ ${Math.round(GEN_CPU_WARN * 100)}% of its core, so the row measured the load generator as much as the server. A server that was not itself near 100% could go faster, and the ratio understates the difference between the servers.`);
  }
  if (state.disturbed) {
    L.push('');
    L.push(`disturbed: the pinned CPUs spent ≥ ${Math.round(OTHER_CPU_WARN * 100)}% of a core on other work, or neither the generator nor the server reached ${Math.round(STARVED_BELOW * 100)}% of a core (something else had the CPU). That row says more about the machine than about the server: rerun it before drawing conclusions.`);
  }
  const stalled = rows.filter((r) => r.idle > 0);
  if (stalled.length) {
    L.push('');
    for (const r of stalled) L.push(`- ${r.scenario.title} / ${r.server}: ${r.idle} connection-runs completed no echo in the measured window (starved or stalled).`);
  }
  const failures = rows.filter((r) => r.errors.length);
  if (failures.length) {
    L.push('');
    for (const r of failures) for (const e of r.errors) L.push(`- FAILED ${r.scenario.title} / ${r.server}: ${e}`);
  }
  return L.join('\n') + '\n';
}

// ------------------------------------------------------------ main

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const dist = join(ROOT, 'dist', 'src', 'index.js');
  if (opts.servers.some((s) => s.startsWith('sockeye')) && !existsSync(dist)) {
    process.stderr.write('bench: dist/src/index.js is missing: build first with `npm run build`\n');
    process.exit(1);
  }
  const skipped = [];
  let scenarios = SCENARIOS.filter((s) => opts.scenarios.includes(s.id));
  if (scenarios.some((s) => generatorFor(s, opts) === 'c')) {
    const problem = buildLoadgen();
    if (problem) {
      process.stderr.write(`bench: cannot build the C load generator: ${problem}\n`);
      process.exit(1);
    }
  }
  const limit = fileLimit();
  for (const s of scenarios) {
    if ((s.kind === 'idle' || s.kind === 'fanout') && s.connections + 64 > limit) {
      skipped.push(`${s.id}: needs ${s.connections + 64} open files, the hard limit (ulimit -Hn) is ${limit}`);
    }
  }
  let tls = null;
  if (scenarios.some((s) => s.tls)) {
    tls = makeCertificate();
    if (tls.error) {
      skipped.push(`TLS scenarios: ${tls.error}`);
      tls = null;
    }
  }
  scenarios = scenarios.filter((s) => !skipped.some((k) => k.startsWith(`${s.id}:`)) && (!s.tls || tls));

  const pin = pinning(opts.pin);
  const meta = {
    command:
      (process.env.npm_lifecycle_event?.startsWith('bench') ? `npm run ${process.env.npm_lifecycle_event}  # ` : '') +
      ['node', relative(ROOT, fileURLToPath(import.meta.url)), ...process.argv.slice(2)].join(' '),
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    cpu: cpuModel(),
    cpus: availableParallelism(),
    os: `${osType()} ${release()}`,
    fileLimit: limit,
    pin,
    sockeye: packageVersion(ROOT),
    // The servers load bench/'s own ws (with its native add-ons) when `npm --prefix bench ci` installed it.
    ws: packageVersion(join(ROOT, 'bench', 'node_modules', 'ws')) ?? packageVersion(join(ROOT, 'node_modules', 'ws')),
    native: 'not run',
    fanout: {},
    tls: null,
    generators: '',
    staleDist: existsSync(dist) && newestSource(join(ROOT, 'src')) > statSync(dist).mtimeMs,
    loadBefore: loadavg()[0],
    loadAfter: NaN,
    skipped,
  };
  const env = { opts, pin, clkTck: clockTicks(), tls, meta };
  const used = new Set(scenarios.map((s) => generatorFor(s, opts)));
  meta.generators = [
    used.has('c') ? 'C (bench/loadgen, epoll, one process on one core)' : null,
    used.has('node') ? `Node (bench/generator.mjs)${opts.generator === 'node' ? ', chosen with --generator node' : ''}` : null,
  ]
    .filter(Boolean)
    .join('; ');

  // Cells: every (round, scenario, server family); families rotate per round.
  const cells = [];
  for (let round = 0; round < opts.rounds; round++) {
    for (const scenario of scenarios) {
      const families = scenario.servers.filter((f) => opts.servers.includes(f));
      for (let k = 0; k < families.length; k++) cells.push({ round, scenario, family: families[(k + round) % families.length] });
    }
  }
  const cellSeconds = (s) => (s.kind === 'idle' ? 8 : opts.warmupS + opts.durationS + (s.kind === 'fanout' ? 3 : 0.5));
  const estimate = cells.reduce((a, c) => a + cellSeconds(c.scenario), 0);
  process.stderr.write(`bench: ${cells.length} runs, about ${Math.ceil(estimate / 60)} min; ${pin ? `servers on CPU ${pin.server}, generator on CPU ${pin.generator}` : 'no CPU pinning'}\n`);

  // Each server is started once here to check that it starts (ws-native needs its add-on); the cells then start their own.
  const running = new Map();
  const shutdown = () => Promise.all([...running.values()].map(stopServer));
  process.on('SIGINT', () =>
    shutdown().then(() => {
      if (tls) rmSync(tls.dir, { recursive: true, force: true });
      process.exit(130);
    }),
  );
  try {
    for (const scenario of scenarios.filter((s) => s.kind === 'echo' || s.kind === 'handshake' || s.kind === 'open')) {
      for (const family of scenario.servers.filter((f) => opts.servers.includes(f))) {
        const spec = serverFor(scenario, family);
        if (running.has(spec.name) || skipped.some((k) => k.startsWith(`${spec.name}:`))) continue;
        try {
          running.set(spec.name, await startServer({ ...spec, tlsDir: tls?.dir }, pin));
        } catch (err) {
          if (spec.name !== 'ws-native') throw err;
          // The add-ons are optional: without them the report says why that row is missing.
          skipped.push(`${spec.name}: ${err.message}`);
        }
      }
    }
    const nativeServer = running.get('ws-native');
    if (nativeServer) meta.native = `ws with bufferutil ${nativeServer.info.bufferutil}, utf-8-validate ${nativeServer.info['utf-8-validate']} (ws 8 uses Node's buffer.isUtf8 when it exists, so utf-8-validate is never loaded on Node 20)`;
    // Those were started to check that each one starts (and what ws-native loaded). Every cell runs
    // on a fresh process: a process that has just echoed 16 MiB messages runs the 32 B echo about
    // 10% slower than a fresh one (its V8 heap has grown), by a different amount for each library,
    // so with shared processes a cell's ratio depended on which scenarios ran before it.
    await shutdown();
    running.clear();
    if (tls) meta.tls = `self-signed P-256 certificate made with openssl at start; servers: node:tls with Node's default settings (OpenSSL ${process.versions.openssl})`;

    const results = [];
    let done = 0;
    for (const { round, scenario, family } of cells) {
      const spec = serverFor(scenario, family);
      if (skipped.some((k) => k.startsWith(`${spec.name}:`))) continue;
      let result;
      try {
        if (scenario.kind === 'idle') result = await runIdle(scenario, family, env);
        else if (scenario.kind === 'fanout') result = await runFanout(scenario, family, env);
        else {
          const server = await startServer({ ...spec, tlsDir: tls?.dir }, pin);
          running.set(spec.name, server);
          try {
            result = await runEcho(scenario, server, env);
            if (server.child.exitCode !== null || server.child.signalCode !== null) throw new Error(`${server.name} server died during ${scenario.id}`);
          } finally {
            await stopServer(server);
            running.delete(spec.name);
          }
        }
      } catch (err) {
        if (/died during/.test(err.message)) throw err;
        result = { error: err.message };
      }
      if (tls && result.tlsProtocol) {
        // Which TLS stack the generator used: the C one links the system's libssl, the Node one is node:tls.
        const client = result.generator === 'c' ? `C generator: ${result.tlsLibrary ?? 'OpenSSL'} with its default settings, TLS 1.2 at least as in Node` : "Node generator: node:tls with Node's default settings";
        if (!meta.tls.includes(client)) meta.tls += `; ${client}`;
        if (!meta.tls.includes('negotiated')) meta.tls += `; negotiated ${result.tlsProtocol} ${result.tlsCipher}`;
      }
      results.push({ round, scenario: scenario.id, family, server: spec.name, generator: generatorFor(scenario, opts), result });
      done++;
      process.stderr.write(`  [${done}/${cells.length}] round ${round + 1} ${scenario.id} ${spec.name}: ${progress(scenario, result)}\n`);
    }
    meta.loadAfter = loadavg()[0];
    const text = report(opts, meta, summarize(opts, results));
    process.stdout.write(text);
    mkdirSync(dirname(opts.out), { recursive: true });
    writeFileSync(opts.out, text);
    process.stderr.write(`bench: written to ${relative(process.cwd(), opts.out) || opts.out}\n`);
    if (results.some((r) => r.result.error)) process.exitCode = 1;
  } finally {
    await shutdown();
    if (tls) rmSync(tls.dir, { recursive: true, force: true });
  }
}

function progress(scenario, r) {
  if (r.error) return `FAILED: ${r.error}`;
  const cpu = `gen CPU ${pct(r.generatorCpu)}, server CPU ${pct(r.serverCpu)}`;
  if (scenario.kind === 'idle') return `${kib(r.bytesPerConn)} RSS per connection (${mib(r.rssBefore)} → ${mib(r.rssAfter)}), heap ${kib(r.heapPerConn)}`;
  if (scenario.kind === 'handshake') return `${int(r.handshakesPerSec)} handshakes/s, ${cpu}`;
  if (scenario.kind === 'open') return `${int(r.opensPerSec)} opens/s, ${cpu}`;
  if (scenario.kind === 'fanout') return `${int(r.deliveriesPerSec)} deliveries/s, ${sig(r.broadcastsPerSec)} broadcasts/s, ${cpu}`;
  return `${int(r.msgPerSec)} msg/s, ${sig(r.mbPerSec)} MB/s, ${cpu}`;
}

main().catch((err) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
