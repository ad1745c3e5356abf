import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSelfSignedCert } from '../demo/self-signed-cert.js';
import { UsageError, type CliIo } from './cli-io.js';

/** What --tls-cert, --tls-key and --tls-self-signed asked for. */
export interface TlsArgs {
  'tls-cert'?: string;
  'tls-key'?: string;
  'tls-self-signed'?: boolean;
}

export interface ServerTls {
  tls: { cert: Buffer; key: Buffer } | undefined;
  /** Where the self-signed certificate was written, for a client's --ca (null without --tls-self-signed). */
  selfSignedPath: string | null;
}

/** Refuses contradictory TLS options before anything is read or made (a usage error, exit 2). */
export function checkTlsArgs(values: TlsArgs, usage: string): void {
  const cert = values['tls-cert'];
  const key = values['tls-key'];
  if ((cert === undefined) !== (key === undefined)) throw new UsageError('--tls-cert and --tls-key go together', usage);
  if (values['tls-self-signed'] && cert !== undefined) throw new UsageError('--tls-self-signed or --tls-cert/--tls-key, not both', usage);
}

/**
 * Reads the certificate and key, or makes a self-signed certificate for
 * `host`. The self-signed certificate (never its key) is written to a
 * private temp directory while the process runs, so that a client can trust
 * it with --ca; the directory is removed at exit
 * (test/demo/serve-cli.test.ts, test/cli/cli.test.ts "listen --tls-self-signed").
 * Null after printing the reason to stderr when it cannot.
 */
export async function serverTls(values: TlsArgs, host: string, io: CliIo): Promise<ServerTls | null> {
  const certPath = values['tls-cert'];
  const keyPath = values['tls-key'];
  if (certPath !== undefined && keyPath !== undefined) {
    try {
      return { tls: { cert: readFileSync(certPath), key: readFileSync(keyPath) }, selfSignedPath: null };
    } catch (err) {
      io.stderr.write(`sockeye: cannot read the TLS certificate or key: ${(err as Error).message}\n`);
      return null;
    }
  }
  if (!values['tls-self-signed']) return { tls: undefined, selfSignedPath: null };
  let tls: { cert: Buffer; key: Buffer };
  try {
    tls = await generateSelfSignedCert({ names: [host] });
  } catch (err) {
    io.stderr.write(`sockeye: ${(err as Error).message}\n`);
    return null;
  }
  const dir = mkdtempSync(join(tmpdir(), 'sockeye-cert-'));
  const selfSignedPath = join(dir, 'cert.pem');
  writeFileSync(selfSignedPath, tls.cert);
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return { tls, selfSignedPath };
}
