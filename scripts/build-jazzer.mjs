// Builds what coverage-guided fuzzing with Jazzer.js needs (fuzz/README.md,
// "Engine"), each step skipped when its inputs have not changed:
//
//   1. fuzz/jazzer/node_modules: Jazzer.js 2.1.0 from fuzz/jazzer/package-lock.json,
//      installed with --ignore-scripts (its install script would download a
//      prebuilt addon or compiler-rt from GitHub).
//   2. The libFuzzer addon, compiled here from the C++ sources that
//      @jazzer.js/fuzzer 2.1.0 ships, plus fuzz/jazzer/native/, and linked
//      with Debian's libFuzzer (libclang-rt-14-dev), into
//      fuzz/jazzer/node_modules/@jazzer.js/fuzzer/build/Release/jazzerjs.node,
//      where the package's `bindings` call looks for it.
//   3. The fuzz targets and the sockeye code they reach, compiled to CommonJS
//      in .tmp/fuzz-cjs (Jazzer.js 2.1.0 instruments require()d code only).
//
// Usage: node scripts/build-jazzer.mjs [--quiet]
// Environment: CXX (default g++), SOCKEYE_LIBFUZZER (path of
// libclang_rt.fuzzer_no_main-x86_64.a, default: found under /usr/lib/llvm-*).
// Exits 1 with the reason on the last line of stderr when something is missing.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const jazzerDir = join(root, 'fuzz', 'jazzer');
const modules = join(jazzerDir, 'node_modules');
const fuzzerPkg = join(modules, '@jazzer.js', 'fuzzer');
const addonPath = join(fuzzerPkg, 'build', 'Release', 'jazzerjs.node');
const cjsDir = join(root, '.tmp', 'fuzz-cjs');
const quiet = process.argv.includes('--quiet');

function log(msg) {
  if (!quiet) console.error(`build-jazzer: ${msg}`);
}

function fail(msg) {
  console.error(`build-jazzer: ${msg}`);
  process.exit(1);
}

function sha256(...parts) {
  const h = createHash('sha256');
  for (const p of parts) h.update(typeof p === 'string' ? p : Buffer.from(p)).update('\0');
  return h.digest('hex');
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) return { ok: false, out: String(r.error.message) };
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

if (process.platform !== 'linux' || process.arch !== 'x64') {
  fail(`the Jazzer.js build here is for linux-x64 only (this is ${process.platform}-${process.arch})`);
}

// 1. Jazzer.js 2.1.0, exactly as locked, without install scripts.
const lock = readFileSync(join(jazzerDir, 'package-lock.json'));
const lockStamp = join(modules, '.sockeye-lock-sha256');
const lockSha = sha256(lock, readFileSync(join(jazzerDir, 'package.json')));
if (!existsSync(lockStamp) || readFileSync(lockStamp, 'utf8') !== lockSha || !existsSync(join(fuzzerPkg, 'addon.cpp'))) {
  log('installing Jazzer.js 2.1.0 into fuzz/jazzer/node_modules (npm ci --ignore-scripts)');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const r = run(npm, ['ci', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: jazzerDir });
  if (!r.ok) fail(`npm ci in fuzz/jazzer failed:\n${r.out.trim()}\nnpm ci of fuzz/jazzer failed (no access to the npm registry?)`);
  writeFileSync(lockStamp, lockSha);
}

// 2. The addon.
function findLibFuzzer() {
  if (process.env.SOCKEYE_LIBFUZZER) {
    if (!existsSync(process.env.SOCKEYE_LIBFUZZER)) fail(`SOCKEYE_LIBFUZZER=${process.env.SOCKEYE_LIBFUZZER} does not exist`);
    return process.env.SOCKEYE_LIBFUZZER;
  }
  const found = [];
  let llvms = [];
  try {
    llvms = readdirSync('/usr/lib').filter((n) => /^llvm-\d+$/.test(n));
  } catch {
    /* no /usr/lib */
  }
  for (const llvm of llvms) {
    const clang = join('/usr/lib', llvm, 'lib', 'clang');
    if (!existsSync(clang)) continue;
    for (const v of readdirSync(clang)) {
      const a = join(clang, v, 'lib', 'linux', 'libclang_rt.fuzzer_no_main-x86_64.a');
      if (existsSync(a)) found.push({ a, major: Number(llvm.slice(5)) });
    }
  }
  if (found.length === 0) {
    fail('libFuzzer not found (libclang_rt.fuzzer_no_main-x86_64.a under /usr/lib/llvm-*): apt-get install libclang-rt-14-dev');
  }
  // The oldest one is the one this was written against (LLVM 14 on Debian 12).
  found.sort((x, y) => x.major - y.major);
  return found[0].a;
}

function findNodeHeaders() {
  const candidates = [
    join(dirname(process.execPath), '..', 'include', 'node'),
    process.env.npm_config_nodedir ? join(process.env.npm_config_nodedir, 'include', 'node') : null,
    join(homedir(), '.cache', 'node-gyp', process.versions.node, 'include', 'node'),
    '/usr/include/node',
    '/usr/local/include/node',
  ].filter(Boolean);
  const dir = candidates.find((d) => existsSync(join(d, 'node_api.h')));
  if (!dir) fail(`Node-API headers (node_api.h) not found in ${candidates.join(', ')}`);
  return dir;
}

const libFuzzer = findLibFuzzer();
const nodeHeaders = findNodeHeaders();
const cxx = process.env.CXX || 'g++';
const cxxVersion = run(cxx, ['--version']);
if (!cxxVersion.ok) fail(`C++ compiler ${cxx} not usable: ${cxxVersion.out.trim()} (apt-get install g++)`);

const vendorSources = ['addon.cpp', 'fuzzing_sync.cpp', 'fuzzing_async.cpp', 'utils.cpp', ...readdirSync(join(fuzzerPkg, 'shared')).filter((n) => n.endsWith('.cpp')).map((n) => `shared/${n}`)].map((n) => join(fuzzerPkg, n));
const nativeDir = join(jazzerDir, 'native');
const ourSources = [join(nativeDir, 'jazzer-shim.cpp')];
const hashed = [
  ...vendorSources,
  ...ourSources,
  join(nativeDir, 'fuzzer', 'FuzzerDefs.h'),
  ...readdirSync(fuzzerPkg).filter((n) => n.endsWith('.h')).map((n) => join(fuzzerPkg, n)),
  ...readdirSync(join(fuzzerPkg, 'shared')).filter((n) => n.endsWith('.h')).map((n) => join(fuzzerPkg, 'shared', n)),
];
const libStat = statSync(libFuzzer);
const addonSha = sha256(...hashed.map((f) => readFileSync(f)), libFuzzer, String(libStat.size), String(libStat.mtimeMs), nodeHeaders, cxxVersion.out, 'flags-v1');
const addonStamp = `${addonPath}.sha256`;
if (!existsSync(addonPath) || !existsSync(addonStamp) || readFileSync(addonStamp, 'utf8') !== addonSha) {
  log(`compiling the libFuzzer addon with ${cxx}, linking ${libFuzzer}`);
  mkdirSync(dirname(addonPath), { recursive: true });
  const tmp = `${addonPath}.tmp-${process.pid}`;
  const args = [
    '-std=c++17',
    '-O2',
    '-fPIC',
    '-shared',
    '-pthread',
    '-DNAPI_VERSION=4',
    `-I${nativeDir}`,
    `-I${join(modules, 'node-addon-api')}`,
    `-I${nodeHeaders}`,
    ...vendorSources,
    ...ourSources,
    // Everything of libFuzzer, as the upstream CMakeLists does: the addon only
    // calls FuzzerDriver, the rest (sanitizer coverage callbacks) is called by name.
    '-Wl,--whole-archive',
    libFuzzer,
    '-Wl,--no-whole-archive',
    '-o',
    tmp,
  ];
  const r = run(cxx, args);
  if (!r.ok) {
    rmSync(tmp, { force: true });
    fail(`compiling the addon failed:\n${r.out.trim()}\ncompiling the Jazzer.js addon failed`);
  }
  renameSync(tmp, addonPath);
  writeFileSync(addonStamp, addonSha);
}
// Load it once in a child process: a missing symbol shows up here, not in the middle of a test.
const probe = run(process.execPath, ['-e', 'require("@jazzer.js/fuzzer").fuzzer.printReturnInfo; require("@jazzer.js/core")'], { cwd: jazzerDir });
if (!probe.ok) fail(`the Jazzer.js addon does not load:\n${probe.out.trim()}\nthe Jazzer.js addon does not load`);

// 3. CommonJS build of the fuzz targets.
log('compiling the fuzz targets to CommonJS in .tmp/fuzz-cjs');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
if (!existsSync(tsc)) fail('typescript not installed (run npm ci)');
mkdirSync(cjsDir, { recursive: true });
const t = run(process.execPath, [tsc, '-p', join(root, 'fuzz', 'tsconfig.jazzer.json')], { cwd: root });
if (!t.ok) fail(`tsc -p fuzz/tsconfig.jazzer.json failed:\n${t.out.trim()}\ncompiling the fuzz targets to CommonJS failed`);
writeFileSync(join(cjsDir, 'package.json'), '{ "type": "commonjs" }\n');
log('ready');
