import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

/**
 * Interop peers. On a developer's machine a missing peer skips its tests with
 * a loud message; in CI (CI=true) a missing peer is a failure, because
 * .ci/run installs every peer and nothing may skip there.
 */
export function requirePeer(name: string, available: boolean, hint: string): string | false {
  if (available) return false;
  const msg = `PEER MISSING: ${name} is not installed (${hint}); its interop tests are skipped`;
  if (process.env.CI) throw new Error(`${msg} — not allowed in CI`);
  console.error(`\n*** ${msg} ***\n`);
  return msg;
}

export const PYTHON = '/usr/bin/python3';

/** Python websockets from Debian (apt-get install python3-websockets). */
export function pythonWebsocketsAvailable(): boolean {
  const r = spawnSync(PYTHON, ['-c', 'import websockets, sys; sys.stdout.write(websockets.version.version)'], { encoding: 'utf8' });
  return r.status === 0;
}

export const CHROMIUM = '/usr/bin/chromium';

/**
 * Debian's chromium (apt-get install chromium) plus npm playwright-core to
 * drive it. Never `npx playwright install`: the tests use Debian's browser.
 */
export function chromiumAvailable(): boolean {
  if (!existsSync(CHROMIUM)) return false;
  try {
    createRequire(import.meta.url).resolve('playwright-core');
    return true;
  } catch {
    return false;
  }
}

/** True if `command` is an executable file in one of the PATH directories (without running it). */
export function commandOnPath(command: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

/**
 * libwebsockets' test apps from Debian (apt-get install libwebsockets-test-server):
 * libwebsockets-test-server and libwebsockets-test-client. Looked up on PATH,
 * not run: started without arguments the server would listen on port 7681.
 */
export function libwebsocketsTestAppsAvailable(): boolean {
  return commandOnPath('libwebsockets-test-server') && commandOnPath('libwebsockets-test-client');
}

/**
 * Prometheus's promtool from Debian (apt-get install prometheus): `promtool
 * check metrics` parses and lints the metrics endpoint's output
 * (test/server/metrics-endpoint.test.ts, test/server/prometheus.test.ts).
 */
export function promtoolAvailable(): boolean {
  return commandOnPath('promtool');
}

/** Pipes `text` into `promtool check metrics`: its exit status and everything it printed (empty when all is well). */
export function promtoolCheckMetrics(text: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}
