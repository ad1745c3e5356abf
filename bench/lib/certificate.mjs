// Self-signed certificates, made with the openssl command: the one the
// harness makes for the wss scenario, and the ones the generators' tests use
// (the servers' --tls DIR reads DIR/key.pem and DIR/cert.pem).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

/**
 * Writes a self-signed P-256 key and certificate, valid for a day, to
 * dir/<prefix>key.pem and dir/<prefix>cert.pem: for 127.0.0.1 unless
 * `subject` and `altName` say otherwise. Returns { key, cert } (their paths),
 * or { error } when openssl is missing or fails.
 */
export function selfSigned(dir, { prefix = '', subject = '/CN=127.0.0.1', altName = 'IP:127.0.0.1' } = {}) {
  const key = join(dir, `${prefix}key.pem`);
  const cert = join(dir, `${prefix}cert.pem`);
  const r = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', subject, '-addext', `subjectAltName=${altName}`],
    { encoding: 'utf8' },
  );
  if (r.error) return { error: `openssl not found (${r.error.message})` };
  if (r.status !== 0) return { error: `openssl failed: ${r.stderr.trim()}` };
  return { key, cert };
}
