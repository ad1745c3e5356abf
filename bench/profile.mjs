// Profiles one echo server under one benchmark scenario: the server runs with
// node --cpu-prof (pinned to CPU 0), the C load generator drives it (CPU 1),
// and the functions with the most self time are printed. The .cpuprofile is
// kept for Chrome DevTools or `node --cpu-prof` tooling.
//
//   node bench/profile.mjs <server> <scenario> [--seconds S] [--top N] [--node-flag F]... [--perf]
//   e.g. node bench/profile.mjs sockeye bin32-d16
//        node bench/profile.mjs sockeye fanout10k --node-flag --trace-gc
//        node bench/profile.mjs ws-native bin64k-d4 --perf
//
// --perf: instead of --cpu-prof, the server runs with node --perf-basic-prof
// and `perf record -g` samples the whole process (kernel, libc, OpenSSL and
// node's C++ included, which a V8 profile shows only as "(idle)" or as the
// JavaScript function that called them) for the measured window. Each symbol
// is printed as microseconds of server CPU per message (per handshake, per
// delivery): run it for two servers and compare the lines. Needs perf
// (Debian: linux-perf) and permission to record another process
// (kernel.perf_event_paranoid at most 1, or root).
//
// --node-flag F (repeatable) passes F to the server's node, e.g. --trace-gc
// (its lines go to the server's stdout, printed before the profile).
//
// Servers: sockeye, sockeye-transfer, ws, ws-native, raw. Scenarios: the echo,
// handshake and fan-out ids of bench/lib/scenarios.mjs; in a TLS scenario (wss-...) the
// server's TLS variant runs with a certificate made here by openssl.
// Profiles go to .tmp/profiles/.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { SCENARIOS, SERVERS, serverFor } from './lib/scenarios.mjs';
import { selfSigned } from './lib/certificate.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH);
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  if (i === -1) return def;
  const v = Number(args[i + 1]);
  args.splice(i, 2);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} needs a positive number`);
  return v;
};
const perfMode = args.includes('--perf');
if (perfMode) args.splice(args.indexOf('--perf'), 1);
const nodeFlags = [];
for (let i = args.indexOf('--node-flag'); i !== -1; i = args.indexOf('--node-flag')) nodeFlags.push(...args.splice(i, 2).slice(1));
const seconds = opt('--seconds', 5);
const top = opt('--top', 30);
const [serverName, scenarioId] = args;
const scenario = SCENARIOS.find((s) => s.id === scenarioId);
const plain = SERVERS.find((s) => s.name === serverName && !s.tls);
const server = scenario && plain ? serverFor(scenario, plain.family) : null;
if (!scenario || !server || !['echo', 'handshake', 'fanout'].includes(scenario.kind)) {
  console.error(`usage: node bench/profile.mjs <${SERVERS.filter((s) => !s.tls).map((s) => s.name).join('|')}> <${SCENARIOS.filter((s) => ['echo', 'handshake', 'fanout'].includes(s.kind)).map((s) => s.id).join('|')}> [--seconds S] [--top N] [--node-flag F]... [--perf]`);
  process.exit(2);
}

const make = spawnSync('make', ['-s', '-C', join(BENCH, 'loadgen')], { stdio: 'inherit' });
if (make.status !== 0) throw new Error('building bench/loadgen failed (gcc and make are needed)');
const dir = join(ROOT, '.tmp', 'profiles', `${serverName}-${scenarioId}-${Date.now()}`);
mkdirSync(dir, { recursive: true });

let tlsArgs = [];
let tlsConfig = {};
if (scenario.tls) {
  const cert = selfSigned(dir);
  if (cert.error) throw new Error(`the ${scenario.id} scenario needs a certificate: ${cert.error}`);
  tlsArgs = ['--tls', dir];
  tlsConfig = { tls: true, tlsCa: cert.cert };
}
const pin = (cpu, argv) => (spawnSync('taskset', ['-c', String(cpu), 'true']).status === 0 ? ['taskset', '-c', String(cpu), ...argv] : argv);
if (perfMode && spawnSync('perf', ['--version']).status !== 0) throw new Error('--perf needs the perf command (Debian: apt-get install linux-perf)');
const profFlags = perfMode ? ['--perf-basic-prof'] : ['--cpu-prof', `--cpu-prof-dir=${dir}`];
const [cmd, ...cmdArgs] = pin(0, [process.execPath, ...profFlags, ...nodeFlags, join(BENCH, server.file), ...(server.args ?? []), ...(scenario.kind === 'fanout' ? ['--fanout'] : []), ...tlsArgs]);
const srv = spawn(cmd, cmdArgs, { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...(server.env ?? {}) } });
const serverLines = [];
const port = await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('server did not start within 15 s')), 15_000);
  createInterface({ input: srv.stdout }).on('line', (line) => {
    if (nodeFlags.length > 0 && !line.startsWith('LISTENING ') && !line.startsWith('INFO ')) serverLines.push(line);
    if (line.startsWith('LISTENING ')) {
      clearTimeout(timer);
      resolve(Number(line.slice(10)));
    }
  });
});
const config = {
  mode: server.mode,
  workload: scenario.kind,
  port,
  size: scenario.size,
  binary: scenario.binary,
  connections: scenario.connections,
  depth: scenario.depth ?? 1,
  warmupMs: 1000,
  durationMs: seconds * 1000,
  serverPid: srv.pid,
  cpus: [0, 1],
  ...tlsConfig,
};
const [gcmd, ...gargs] = pin(1, [join(BENCH, 'loadgen', 'loadgen'), JSON.stringify(config)]);
const perfData = join(dir, 'perf.data');
let result;
if (perfMode) {
  // The generator runs alongside; perf starts once its warm-up is over and stops before its window ends.
  const gen = spawn(gcmd, gargs, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  gen.stdout.on('data', (d) => (out += d));
  // Bounded as spawnSync bounds it in the other branch.
  const limit = setTimeout(() => gen.kill('SIGKILL'), (seconds + 60) * 1000);
  const genDone = new Promise((resolve) => gen.on('exit', resolve)).finally(() => clearTimeout(limit));
  await new Promise((resolve) => setTimeout(resolve, config.warmupMs + 200));
  const rec = spawnSync('perf', ['record', '-q', '-g', '-p', String(srv.pid), '-o', perfData, '--', 'sleep', String(Math.max(1, seconds - 0.5))], { encoding: 'utf8' });
  if (rec.status !== 0) throw new Error(`perf record failed (permission? see kernel.perf_event_paranoid): ${rec.stderr.trim()}`);
  await genDone;
  result = JSON.parse(out.trim().split('\n').pop() || '{}');
} else {
  const gen = spawnSync(gcmd, gargs, { encoding: 'utf8', timeout: (seconds + 60) * 1000 });
  result = JSON.parse(gen.stdout.trim().split('\n').pop() || '{}');
}
srv.stdin.end();
await new Promise((resolve) => srv.on('exit', resolve));
if (result.error) throw new Error(`load generator: ${result.error}`);
const rate = result.msgPerSec ?? result.handshakesPerSec ?? result.deliveriesPerSec;
const unit = { handshake: 'handshake', fanout: 'delivery' }[scenario.kind] ?? 'message';
const summary = `${serverName} / ${scenario.title}: ${Math.round(rate).toLocaleString('en-US')} ${{ handshake: 'handshakes', fanout: 'deliveries' }[scenario.kind] ?? 'msg'}/s, server CPU ${Math.round(result.serverCpu * 100)}%, generator CPU ${Math.round(result.generatorCpu * 100)}%`;

if (perfMode) {
  // Share of the samples per symbol, turned into CPU time per message: the server is pinned to one
  // core and busy, so its samples over the window are about its CPU time; divided by the rate.
  const report = spawnSync('perf', ['report', '-i', perfData, '--no-children', '-g', 'none', '--sort', 'dso,symbol', '--stdio'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (report.status !== 0) throw new Error(`perf report failed: ${report.stderr.trim()}`);
  spawnSync('rm', ['-f', `/tmp/perf-${srv.pid}.map`]);
  const perUnit = (share) => (share / 100) * (result.serverCpu ?? 1) * 1e6 / rate;
  const rows = [];
  for (const line of report.stdout.split('\n')) {
    const m = /^\s*([\d.]+)%\s+(\S+(?: \S+)*?)\s+\[([.k])\]\s+(.*?)\s*$/.exec(line);
    if (m) rows.push({ share: Number(m[1]), dso: m[2].replace(/^\[JIT\] tid \d+$/, '[JIT]'), symbol: m[4].replace(/(\s+-)+$/, '').replace(/^JS:/, '').replace(/file:\/\/\S*?([^/\s]+:\d+):\d+$/, '$1') });
  }
  const total = rows.reduce((a, r) => a + r.share, 0);
  console.log(summary);
  console.log(`perf data: ${perfData}\n`);
  console.log(`  µs/${unit}  share  dso / symbol`);
  for (const r of rows.slice(0, top)) console.log(`${perUnit(r.share).toFixed(3).padStart(10)}  ${r.share.toFixed(1).padStart(5)}%  ${r.dso}  ${r.symbol}`);
  console.log(`${perUnit(total).toFixed(3).padStart(10)}  ${total.toFixed(1).padStart(5)}%  all samples (server CPU ${Math.round((result.serverCpu ?? 1) * 100)}% of a core)`);
  process.exit(0);
}
const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
if (!file) throw new Error('the server wrote no profile');

const profile = JSON.parse(readFileSync(join(dir, file), 'utf8'));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map();
let total = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  total += dt;
  const cf = byId.get(id).callFrame;
  const where = cf.url ? `${cf.url.replace(/^file:\/\//, '').replace(ROOT + '/', '')}:${cf.lineNumber + 1}` : '';
  const key = `${cf.functionName || '(anonymous)'} ${where}`.trim();
  self.set(key, (self.get(key) ?? 0) + dt);
});
if (serverLines.length > 0) console.log(serverLines.join('\n'));
console.log(summary);
console.log(`profile: ${join(dir, file)}\n\n  self%  function`);
for (const [k, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${((100 * t) / total).toFixed(1).padStart(7)}  ${k}`);
