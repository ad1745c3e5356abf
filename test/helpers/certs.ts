import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCert {
  key: Buffer;
  cert: Buffer;
  /** The certificate doubles as its own CA (self-signed). */
  ca: Buffer;
  keyPath: string;
  certPath: string;
  dir: string;
}

let cached: TestCert | null = null;

/**
 * A fresh self-signed RSA-2048 certificate for 127.0.0.1 and localhost, made
 * by openssl for this test process (OpenSSL 3 refuses RSA-1024). Files stay in
 * a temp dir until the process exits.
 */
export function testCert(): TestCert {
  if (cached) return cached;
  const dir = mkdtempSync(join(tmpdir(), 'sockeye-cert-'));
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2',
    '-keyout', keyPath, '-out', certPath, '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ], { stdio: 'ignore' });
  const cert = readFileSync(certPath);
  cached = { key: readFileSync(keyPath), cert, ca: cert, keyPath, certPath, dir };
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return cached;
}
