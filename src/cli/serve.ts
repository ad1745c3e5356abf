import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createServer, type ServerHandler } from '../server/server.js';
import { withUsage, parsePort, urlHost } from './args.js';
import { EXIT_FAILURE, EXIT_OK, UsageError, type CliIo } from './cli-io.js';

export const SERVE_USAGE = `Usage: sockeye serve [options]

Runs an echo server: every message a client sends comes back to it with the
same type (text or binary). Prints one line to stdout once it listens.
SIGINT or SIGTERM closes every connection with 1001 (going away) and exits 0;
a second signal exits at once with status 1.

Options:
  --port N           port to listen on; 0 picks a free one and the listening
                     line shows which (default: $PORT, else 7681)
  --host H           address to listen on (default 127.0.0.1; 0.0.0.0 or ::
                     for every interface)
  --tls-cert FILE    serve wss:// with this PEM certificate (needs --tls-key)
  --tls-key FILE     the PEM private key of --tls-cert
  -h, --help         show this help
`;

const DEFAULT_PORT = 7681;

/**
 * The echo handler. A client that sends faster than it reads fills its
 * outbound queue up to maxQueuedBytes; the echo that does not fit is dropped
 * (reported by the session's onError) and the client is closed with 1013
 * "try again later" rather than left with a hole in its echo stream.
 */
function echoHandler(io: CliIo): ServerHandler {
  return {
    onMessage(session, message) {
      const status = session.send(message.data, { binary: message.binary });
      if (status === 'dropped' && session.state === 'open') session.close(1013, 'echo backlog full');
    },
    onError(session, error) {
      io.stderr.write(`sockeye: ${session.remoteAddress ?? 'client'}: ${error.message}\n`);
    },
  };
}

export async function runServe(argv: string[], io: CliIo): Promise<number> {
  const { values } = withUsage(
    () =>
      parseArgs({
        args: argv,
        strict: true,
        allowPositionals: false,
        options: {
          port: { type: 'string' },
          host: { type: 'string' },
          'tls-cert': { type: 'string' },
          'tls-key': { type: 'string' },
          help: { type: 'boolean', short: 'h' },
        },
      }),
    SERVE_USAGE,
  );
  if (values.help) {
    io.stdout.write(SERVE_USAGE);
    return EXIT_OK;
  }
  // --port wins over $PORT, which is then not even looked at.
  let port = DEFAULT_PORT;
  if (values.port !== undefined) port = parsePort(values.port, '--port', SERVE_USAGE);
  else if (io.env.PORT !== undefined && io.env.PORT !== '') port = parsePort(io.env.PORT, 'the PORT environment variable', SERVE_USAGE);
  const host = values.host ?? '127.0.0.1';
  if (host === '') throw new UsageError('--host needs an address', SERVE_USAGE);
  const certPath = values['tls-cert'];
  const keyPath = values['tls-key'];
  if ((certPath === undefined) !== (keyPath === undefined)) throw new UsageError('--tls-cert and --tls-key go together', SERVE_USAGE);

  let tls: { cert: Buffer; key: Buffer } | undefined;
  if (certPath !== undefined && keyPath !== undefined) {
    try {
      tls = { cert: readFileSync(certPath), key: readFileSync(keyPath) };
    } catch (err) {
      io.stderr.write(`sockeye: cannot read the TLS certificate or key: ${(err as Error).message}\n`);
      return EXIT_FAILURE;
    }
  }

  const server = createServer({
    tls,
    handler: echoHandler(io),
    onError: (error) => io.stderr.write(`sockeye: ${error instanceof Error ? error.message : String(error)}\n`),
  });
  let address;
  try {
    address = await server.listen(port, host);
  } catch (err) {
    io.stderr.write(`sockeye: cannot listen on ${urlHost(host)}:${port}: ${(err as Error).message}\n`);
    await server.close().catch(() => undefined);
    return EXIT_FAILURE;
  }
  io.stdout.write(`sockeye: echo server listening on ${tls ? 'wss' : 'ws'}://${urlHost(address.address)}:${address.port}/\n`);

  return new Promise<number>((resolve) => {
    let stopping = false;
    const off = io.onSignal((signal) => {
      if (stopping) {
        io.stderr.write(`sockeye: ${signal} again, exiting without waiting for clients\n`);
        off();
        resolve(EXIT_FAILURE);
        return;
      }
      stopping = true;
      const n = server.clients.size;
      io.stderr.write(`sockeye: ${signal}, closing ${n} connection${n === 1 ? '' : 's'} with 1001\n`);
      // Each session's close is bounded by its close timeout, so this ends.
      server.close(1001, 'server shutting down').then(
        () => {
          off();
          resolve(EXIT_OK);
        },
        (err: unknown) => {
          io.stderr.write(`sockeye: error while closing: ${(err as Error).message}\n`);
          off();
          resolve(EXIT_FAILURE);
        },
      );
    });
  });
}
