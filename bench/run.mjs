// The benchmark harness: starts the sockeye, ws and raw node:net echo
// servers (each in its own process), then runs every scenario against every
// server with the same load generator (its own process), servers interleaved
// within each round, and prints a Markdown table of medians and ratios to ws.
//
//   node bench/run.mjs            full: 3 rounds of 10 s after 1 s warm-up (about 8.5 min)
//   node bench/run.mjs --quick    1 round of 3 s after 1 s warm-up (about 1 min)
//   options: --rounds N --duration S --warmup S --scenarios id,id --servers a,b
//            --no-pin --out FILE
//
// Progress goes to stderr; the report goes to stdout and to
// bench/results/latest.md (or --out).

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, type as osType } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SCENARIOS, SERVERS } from './lib/scenarios.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH);
const SERVER_START_TIMEOUT_MS = 15_000;
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
    durationS: quick ? 3 : 10,
    warmupS: 1,
    scenarios: SCENARIOS.map((s) => s.id),
    servers: SERVERS.map((s) => s.name),
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
    else if (a === '--no-pin') opts.pin = false;
    else if (a === '--out') opts.out = value();
    else usage(`unknown option ${a}`);
  }
  for (const id of opts.scenarios) if (!SCENARIOS.some((s) => s.id === id)) usage(`unknown scenario ${id} (${SCENARIOS.map((s) => s.id).join(', ')})`);
  for (const n of opts.servers) if (!SERVERS.some((s) => s.name === n)) usage(`unknown server ${n} (${SERVERS.map((s) => s.name).join(', ')})`);
  return opts;
}

function positive(text, name, min, max) {
  const n = Number(text);
  if (!Number.isFinite(n) || n < min || n > max) usage(`${name} must be a number from ${min} to ${max}`);
  return n;
}

const USAGE = `usage: node bench/run.mjs [--quick] [--rounds N] [--duration S] [--warmup S] [--scenarios ids] [--servers names] [--no-pin] [--out FILE]
  --quick          1 round of 3 s per cell (default: 3 rounds of 10 s)
  --rounds N       rounds; servers are interleaved within each round
  --duration S     measured seconds per cell
  --warmup S       seconds of load before measuring (default 1)
  --scenarios ids  ${SCENARIOS.map((s) => s.id).join(',')}
  --servers names  ${SERVERS.map((s) => s.name).join(',')}
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

// ------------------------------------------------------------ processes

function command(pinCpu, script, args = []) {
  const node = [process.execPath, script, ...args];
  return pinCpu === null ? node : ['taskset', '-c', String(pinCpu), ...node];
}

/** Starts one echo server; resolves with its process and port. */
function startServer(server, pin) {
  const [cmd, ...args] = command(pin ? pin.server : null, join(BENCH, server.file));
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${server.name} server did not announce its port within ${SERVER_START_TIMEOUT_MS} ms`));
    }, SERVER_START_TIMEOUT_MS);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${server.name} server exited (${code}) before listening`));
    });
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const m = /^LISTENING (\d+)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        child.stdout.resume();
        resolve({ ...server, child, port: Number(m[1]), pid: child.pid });
      }
    });
  });
}

/** Stops a server we started: close its stdin, then SIGKILL after 5 s. */
function stopServer(s) {
  return new Promise((resolve) => {
    if (s.child.exitCode !== null || s.child.signalCode !== null) return resolve();
    const timer = setTimeout(() => s.child.kill('SIGKILL'), 5000);
    s.child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    s.child.stdin.end();
  });
}

/** Runs the generator once; resolves with its result (or { error }). */
function runGenerator(config, pin, timeoutMs) {
  const [cmd, ...args] = command(pin ? pin.generator : null, join(BENCH, 'generator.mjs'), [JSON.stringify(config)]);
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve) => {
    let out = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (chunk) => (out += chunk));
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) return resolve({ error: `generator timed out after ${timeoutMs} ms` });
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()));
      } catch {
        resolve({ error: `generator exited (${code ?? signal}) without a result` });
      }
    });
  });
}

// ------------------------------------------------------------ statistics and report

function median(values) {
  const v = [...values].sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

const int = (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—');
function sig(n, digits = 3) {
  if (!Number.isFinite(n)) return '—';
  if (n === 0) return '0';
  const d = Math.max(0, digits - 1 - Math.floor(Math.log10(Math.abs(n))));
  return n.toFixed(Math.min(d, 3));
}
const pct = (n) => (n === null || !Number.isFinite(n) ? 'n/a' : `${Math.round(n * 100)}%`);

function summarize(opts, results) {
  const rows = [];
  for (const scenario of SCENARIOS.filter((s) => opts.scenarios.includes(s.id))) {
    for (const name of opts.servers) {
      const runs = results.filter((r) => r.scenario === scenario.id && r.server === name);
      const ok = runs.filter((r) => !r.result.error);
      const errors = runs.filter((r) => r.result.error).map((r) => r.result.error);
      // Ratio to ws: per round (the two runs were minutes apart at most), then the median.
      const ratios = [];
      for (const r of ok) {
        const ws = results.find((x) => x.scenario === scenario.id && x.server === 'ws' && x.round === r.round && !x.result.error);
        if (ws) ratios.push(r.result.msgPerSec / ws.result.msgPerSec);
      }
      const rate = ok.map((r) => r.result.msgPerSec);
      rows.push({
        scenario,
        server: name,
        n: ok.length,
        errors,
        msg: median(rate),
        msgMin: Math.min(...rate),
        msgMax: Math.max(...rate),
        mb: median(ok.map((r) => r.result.mbPerSec)),
        ratio: median(ratios),
        p50: median(ok.map((r) => r.result.p50Ms)),
        p99: median(ok.map((r) => r.result.p99Ms)),
        genCpu: ok.length ? Math.max(...ok.map((r) => r.result.generatorCpu)) : NaN,
        genCpuMedian: median(ok.map((r) => r.result.generatorCpu)),
        serverCpu: ok.length && ok.every((r) => r.result.serverCpu !== null) ? median(ok.map((r) => r.result.serverCpu)) : null,
        otherCpu: ok.length && ok.every((r) => r.result.otherCpu != null) ? median(ok.map((r) => r.result.otherCpu)) : null,
        idle: ok.reduce((a, r) => a + r.result.idleConnections, 0),
      });
    }
  }
  return rows;
}

function report(opts, meta, rows) {
  const L = [];
  L.push(`### sockeye vs ws vs raw node:net (${opts.quick ? 'quick' : 'full'} run)`);
  L.push('');
  L.push(`- Command: \`${meta.command}\``);
  L.push(`- Date: ${meta.date}`);
  L.push(`- Machine: ${meta.cpu}, ${meta.cpus} CPUs available, ${meta.os}; Node ${process.version}`);
  L.push(`- Pinning: ${meta.pin ? `servers on CPU ${meta.pin.server}, generator on CPU ${meta.pin.generator} (taskset)` : 'none (taskset not available, fewer than 2 CPUs, or --no-pin): server and generator compete for CPUs'}`);
  L.push(`- Libraries: sockeye ${meta.sockeye} (dist/), ws ${meta.ws ?? 'missing'} (bufferutil: ${meta.bufferutil ? 'installed' : 'not installed'}, utf-8-validate: ${meta.utf8validate ? 'installed' : 'not installed'})`);
  L.push(`- Each cell: ${opts.rounds} round${opts.rounds > 1 ? 's' : ''} of ${opts.durationS} s measured after ${opts.warmupS} s warm-up; servers interleaved within each round${opts.rounds > 1 ? ' (order rotated per round)' : ''}`);
  L.push(`- Load average (1 min) before / after: ${meta.loadBefore.toFixed(2)} / ${meta.loadAfter.toFixed(2)}`);
  if (meta.staleDist) L.push('- WARNING: dist/ is older than src/: this measured a stale build (run `npx tsc -p tsconfig.json`)');
  L.push('');
  const spread = opts.rounds > 1 ? ' median (min–max)' : '';
  L.push(`| Scenario | Server | msg/s${spread} | MB/s | × ws | p50 RTT | p99 RTT | gen CPU | server CPU | other load | notes |`);
  L.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  let anyGenBound = false;
  let anyDisturbed = false;
  for (const r of rows) {
    const title = r.server === opts.servers[0] ? r.scenario.title : '';
    if (r.n === 0) {
      L.push(`| ${title} | ${r.server} | FAILED: ${r.errors[0] ?? 'no run'} | | | | | | | | |`);
      continue;
    }
    const notes = [];
    if (r.genCpu >= GEN_CPU_WARN) {
      anyGenBound = true;
      notes.push('gen-bound');
    }
    const starved = Math.max(r.genCpuMedian, r.serverCpu ?? 1) < STARVED_BELOW;
    if ((r.otherCpu !== null && r.otherCpu >= OTHER_CPU_WARN) || starved) {
      anyDisturbed = true;
      notes.push('disturbed');
    }
    if (r.errors.length) notes.push(`${r.errors.length} run${r.errors.length > 1 ? 's' : ''} FAILED`);
    const msg = opts.rounds > 1 ? `${int(r.msg)} (${int(r.msgMin)}–${int(r.msgMax)})` : int(r.msg);
    L.push(`| ${title} | ${r.server} | ${msg} | ${sig(r.mb)} | ${Number.isFinite(r.ratio) ? r.ratio.toFixed(2) + '×' : '—'} | ${sig(r.p50)} ms | ${sig(r.p99)} ms | ${pct(r.genCpu)} | ${pct(r.serverCpu)} | ${pct(r.otherCpu)} | ${notes.join(', ')} |`);
  }
  L.push('');
  L.push('msg/s: verified echoes per second (a round trip each). MB/s: echoed payload bytes per second (10^6 B, counted once, not per direction). × ws: msg/s relative to ws in the same round. RTT: send to verified echo, including queueing behind the other messages in flight. CPU columns: share of one core over the measured window; gen CPU is the highest of the rounds; other load is what the pinned CPUs spent on anything but the generator and the server (other programs, interrupts including loopback networking, hypervisor steal).');
  if (anyGenBound) {
    L.push('');
    L.push(`gen-bound: the generator used ≥ ${Math.round(GEN_CPU_WARN * 100)}% of its core, so the row measured the load generator as much as the server. A server that was not itself near 100% could go faster, and the ratio understates the difference between the servers.`);
  }
  if (anyDisturbed) {
    L.push('');
    L.push(`disturbed: the pinned CPUs spent ≥ ${Math.round(OTHER_CPU_WARN * 100)}% of a core on other work, or neither the generator nor the server reached ${Math.round(STARVED_BELOW * 100)}% of a core (something else had the CPU). That row says more about the machine than about the server: rerun it before drawing conclusions.`);
  }
  const idle = rows.filter((r) => r.idle > 0);
  if (idle.length) {
    L.push('');
    for (const r of idle) L.push(`- ${r.scenario.title} / ${r.server}: ${r.idle} connection-runs completed no echo in the measured window (starved or stalled).`);
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
  if (opts.servers.includes('sockeye') && !existsSync(dist)) {
    process.stderr.write('bench: dist/src/index.js is missing: build first with `npx tsc -p tsconfig.json`\n');
    process.exit(1);
  }
  const pin = pinning(opts.pin);
  const meta = {
    command:
      (process.env.npm_lifecycle_event?.startsWith('bench') ? `npm run ${process.env.npm_lifecycle_event}  # ` : '') +
      ['node', relative(ROOT, fileURLToPath(import.meta.url)), ...process.argv.slice(2)].join(' '),
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    cpu: cpuModel(),
    cpus: availableParallelism(),
    os: `${osType()} ${release()}`,
    pin,
    sockeye: packageVersion(ROOT),
    ws: packageVersion(join(ROOT, 'node_modules', 'ws')),
    bufferutil: existsSync(join(ROOT, 'node_modules', 'bufferutil')),
    utf8validate: existsSync(join(ROOT, 'node_modules', 'utf-8-validate')),
    staleDist: existsSync(dist) && newestSource(join(ROOT, 'src')) > statSync(dist).mtimeMs,
    loadBefore: loadavg()[0],
    loadAfter: NaN,
  };
  const clkTck = clockTicks();
  const scenarios = SCENARIOS.filter((s) => opts.scenarios.includes(s.id));
  const servers = SERVERS.filter((s) => opts.servers.includes(s.name));
  const total = opts.rounds * scenarios.length * servers.length;
  process.stderr.write(
    `bench: ${total} runs of ${opts.warmupS} s + ${opts.durationS} s (about ${Math.ceil((total * (opts.warmupS + opts.durationS + 0.2)) / 60)} min); ` +
      `${pin ? `servers on CPU ${pin.server}, generator on CPU ${pin.generator}` : 'no CPU pinning'}\n`,
  );

  const running = [];
  const shutdown = () => Promise.all(running.map(stopServer));
  process.on('SIGINT', () => shutdown().then(() => process.exit(130)));
  try {
    for (const s of servers) running.push(await startServer(s, pin));
    const results = [];
    let done = 0;
    for (let round = 0; round < opts.rounds; round++) {
      for (const scenario of scenarios) {
        for (let k = 0; k < running.length; k++) {
          const server = running[(k + round) % running.length];
          const config = {
            mode: server.mode,
            port: server.port,
            serverPid: server.pid,
            clkTck,
            cpus: pin ? [pin.server, pin.generator] : null,
            size: scenario.size,
            binary: scenario.binary,
            connections: scenario.connections,
            depth: scenario.depth,
            warmupMs: opts.warmupS * 1000,
            durationMs: opts.durationS * 1000,
          };
          const timeout = (opts.warmupS + opts.durationS) * 1000 + 30_000;
          const result = await runGenerator(config, pin, timeout);
          if (server.child.exitCode !== null || server.child.signalCode !== null) {
            throw new Error(`${server.name} server died during ${scenario.id}`);
          }
          results.push({ round, scenario: scenario.id, server: server.name, result });
          done++;
          process.stderr.write(
            `  [${done}/${total}] round ${round + 1} ${scenario.id} ${server.name}: ` +
              (result.error ? `FAILED: ${result.error}` : `${int(result.msgPerSec)} msg/s, ${sig(result.mbPerSec)} MB/s, gen CPU ${pct(result.generatorCpu)}, server CPU ${pct(result.serverCpu)}`) +
              '\n',
          );
        }
      }
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
  }
}

main().catch((err) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
