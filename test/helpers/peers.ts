import { spawnSync } from 'node:child_process';

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
