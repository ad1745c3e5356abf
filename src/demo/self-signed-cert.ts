import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SelfSignedCert {
  /** PEM private key (RSA 2048). */
  key: Buffer;
  /** PEM certificate, its own issuer. */
  cert: Buffer;
}

/**
 * Makes a throw-away self-signed certificate with openssl (for `sockeye
 * serve --tls-self-signed`): RSA 2048 (OpenSSL 3 refuses smaller keys),
 * valid for `days`, with subjectAltName entries for localhost, 127.0.0.1,
 * ::1 and the extra names given (IP addresses or DNS names). Nothing is
 * left on disk: the files go to a private temp dir that is removed.
 */
export async function generateSelfSignedCert(options: { names?: string[]; days?: number; openssl?: string; tmpRoot?: string } = {}): Promise<SelfSignedCert> {
  for (const n of options.names ?? []) {
    // It goes into an openssl -addext argument: nothing but host-name and address characters.
    if (!/^[A-Za-z0-9.:-]+$/.test(n)) throw new TypeError(`not a host name or address: ${JSON.stringify(n)}`);
  }
  // The wildcard addresses are for listening, not names a client would check.
  const names = [...new Set(['localhost', '127.0.0.1', '::1', ...(options.names ?? [])])].filter((n) => n !== '0.0.0.0' && n !== '::');
  const san = names.map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  const dir = await mkdtemp(join(options.tmpRoot ?? tmpdir(), 'sockeye-self-signed-'));
  try {
    const keyPath = join(dir, 'key.pem');
    const certPath = join(dir, 'cert.pem');
    await new Promise<void>((resolve, reject) => {
      execFile(
        options.openssl ?? 'openssl',
        ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', String(options.days ?? 30), '-keyout', keyPath, '-out', certPath, '-subj', '/CN=localhost', '-addext', `subjectAltName=${san}`],
        { timeout: 60_000 },
        (err, _stdout, stderr) => (err ? reject(new Error(`openssl could not make a certificate: ${err.message}${stderr ? `\n${stderr}` : ''}`)) : resolve()),
      );
    });
    return { key: await readFile(keyPath), cert: await readFile(certPath) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
