import { existsSync } from 'node:fs';
import { createDemoServer, DEMO_PAGE_DIR } from '../demo/demo-server.js';
import type { SessionLimits } from '../transport/types.js';
import { parseByteSize, parseCommand, parsePort, urlHost } from './args.js';
import { EXIT_FAILURE, EXIT_OK, UsageError, type CliIo } from './cli-io.js';
import { checkTlsArgs, serverTls } from './tls-files.js';

export const SERVE_USAGE = `Usage: sockeye serve [options]

Runs the demo server, sockeye's counterpart of libwebsockets' test server,
on one port: the demo page over HTTP(S), and over WebSocket the
subprotocols dumb-increment-protocol, lws-mirror-protocol and lws-status,
plus an echo service for clients that ask for no subprotocol (every message
comes back with the same type), and the same echo without compression for
clients that ask for sockeye-echo-nodeflate. Prints the page's URL, then one line
"sockeye: echo server listening on URL" once it listens.
SIGINT or SIGTERM closes every connection with 1001 (going away) and exits 0;
a second signal exits at once with status 1.

Options:
  --port N           port to listen on; 0 picks a free one and the listening
                     line shows which (default: $PORT, else 7681)
  --host H           address to listen on (default 127.0.0.1; 0.0.0.0 or ::
                     for every interface)
  --tls-cert FILE    serve https:// and wss:// with this PEM certificate
                     (needs --tls-key)
  --tls-key FILE     the PEM private key of --tls-cert
  --tls-self-signed  serve https:// and wss:// with a throw-away self-signed
                     certificate made by openssl (browsers will warn); its
                     path is printed, for a client's --ca, and the file is
                     removed when the server exits
  --max-message BYTES
                     the largest message a client may send to the echo and
                     to lws-status (default 16M); a bigger one closes it
                     with 1009. dumb-increment-protocol and
                     lws-mirror-protocol keep their own limits (1K, 64K)
  --max-queued BYTES
                     the most bytes that may wait to be sent to one client
                     (default 40M, or twice --max-message plus 8M when that
                     is more). The echo stops reading from a client while
                     more than 1M (at most a quarter of this) waits for it,
                     so it serves a client as fast as that client reads; an
                     echo that would still pass this closes the client with
                     1013
  --deflate          negotiate permessage-deflate on the echo (no
                     subprotocol) and lws-status (the default)
  --no-deflate       negotiate permessage-deflate on no protocol
  -h, --help         show this help

BYTES is a whole number of bytes, or one with the suffix K, M or G (also
KiB, MiB, GiB; powers of 1024): 512K, 16M, 64MiB.
`;

const DEFAULT_PORT = 7681;

export async function runServe(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand(
    argv,
    {
      port: { type: 'string' },
      host: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-self-signed': { type: 'boolean' },
      'max-message': { type: 'string' },
      'max-queued': { type: 'string' },
      deflate: { type: 'boolean' },
      'no-deflate': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    SERVE_USAGE,
  );
  if (values.help) {
    io.stdout.write(SERVE_USAGE);
    return EXIT_OK;
  }
  if (positionals.length > 0) throw new UsageError(`serve takes no arguments, got ${JSON.stringify(positionals[0])}`, SERVE_USAGE);
  // --port wins over $PORT, which is then not even looked at.
  let port = DEFAULT_PORT;
  if (values.port !== undefined) port = parsePort(values.port, '--port', SERVE_USAGE);
  else if (io.env.PORT !== undefined && io.env.PORT !== '') port = parsePort(io.env.PORT, 'the PORT environment variable', SERVE_USAGE);
  const host = values.host ?? '127.0.0.1';
  if (host === '') throw new UsageError('--host needs an address', SERVE_USAGE);
  checkTlsArgs(values, SERVE_USAGE);
  const limits: Partial<SessionLimits> = {};
  if (values['max-message'] !== undefined) limits.maxMessageBytes = parseByteSize(values['max-message'], '--max-message', SERVE_USAGE);
  if (values['max-queued'] !== undefined) limits.maxQueuedBytes = parseByteSize(values['max-queued'], '--max-queued', SERVE_USAGE);
  if (values.deflate && values['no-deflate']) throw new UsageError('--deflate or --no-deflate, not both', SERVE_USAGE);
  const perMessageDeflate = values['no-deflate'] !== true;

  const made = await serverTls(values, host, io);
  if (made === null) return EXIT_FAILURE;
  const { tls, selfSignedPath } = made;

  const report = (error: unknown) => io.stderr.write(`sockeye: ${error instanceof Error ? error.message : String(error)}\n`);
  // Limits not given stay unset: the demo server's defaults apply (maxQueuedBytes following --max-message).
  const demo = createDemoServer({ tls, onError: report, limits, perMessageDeflate });
  const server = demo.server;
  if (!existsSync(DEMO_PAGE_DIR)) io.stderr.write(`sockeye: no demo page at ${DEMO_PAGE_DIR}: HTTP requests get 404\n`);
  let address;
  try {
    address = await demo.listen(port, host);
  } catch (err) {
    io.stderr.write(`sockeye: cannot listen on ${urlHost(host)}:${port}: ${(err as Error).message}\n`);
    await demo.close().catch(() => undefined);
    return EXIT_FAILURE;
  }
  const where = `${urlHost(address.address)}:${address.port}/`;
  io.stdout.write(`sockeye: demo page at ${tls ? 'https' : 'http'}://${where} (dumb-increment-protocol, lws-mirror-protocol, lws-status)\n`);
  if (selfSignedPath !== null) io.stdout.write(`sockeye: self-signed certificate at ${selfSignedPath} (sockeye connect --ca ${selfSignedPath} wss://${where})\n`);
  const done = new Promise<number>((resolve) => {
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
      demo.close(1001, 'server shutting down').then(
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
  // This line last (after the signal handlers are in place), and unchanged from the echo-only server:
  // scripts wait for it, and may stop the server as soon as they see it.
  io.stdout.write(`sockeye: echo server listening on ${tls ? 'wss' : 'ws'}://${where}\n`);
  return done;
}
