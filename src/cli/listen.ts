import { createInterface } from 'node:readline';
import { createServer } from '../server/server.js';
import type { ServerSession } from '../server/server-session.js';
import type { Handler } from '../transport/types.js';
import { formatClose, formatControl, formatMessage, lineToMessage, parseNotation } from './connect.js';
import { parsePort, urlHost, parseCommand } from './args.js';
import { EXIT_FAILURE, EXIT_OK, UsageError, type CliIo } from './cli-io.js';
import { checkTlsArgs, serverTls } from './tls-files.js';

export const LISTEN_USAGE = `Usage: sockeye listen [options]

Listens for WebSocket clients and prints every message any of them sends on
its own line on stdout (text as it is, binary as <binary N bytes: HEX...>).
Every stdin line is sent to every connected client. Clients coming and
going, and errors, go to stderr. It prints "sockeye: listening on URL" once
it listens. SIGINT or SIGTERM closes every client with 1001 and exits 0.

Options:
  --port N           port to listen on (default: $PORT, else 7681; 0 picks a
                     free one)
  --host H           address to listen on (default 127.0.0.1)
  --unix PATH        listen on a unix domain socket at PATH instead of a
                     port (a stale socket file there is replaced); clients
                     connect with ws+unix://PATH:/ or --unix PATH
  -p, --protocol P   accept clients that offer subprotocol P (repeatable);
                     without it, any client, whatever it offers
  --tls-cert FILE    serve wss:// with this PEM certificate (needs --tls-key)
  --tls-key FILE     the PEM private key of --tls-cert
  --tls-self-signed  serve wss:// with a throw-away self-signed certificate
                     made by openssl; its path is printed, for a client's
                     --ca, and the file is removed when the listener exits
  -n, --newline      send each stdin line with its line feed
  --binary FORMAT    each stdin line is one binary message in FORMAT: hex or
                     base64
  --output FORMAT    print each binary message whole, in hex or base64
  --show-control     print pings, pongs and each client's close
  -h, --help         show this help

Examples:
  sockeye listen --port 8080
  echo 'to everyone' | sockeye listen --port 8080 -p chat
  sockeye listen --port 8443 --tls-self-signed --show-control
`;

export async function runListen(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand(
    argv,
    {
      port: { type: 'string' },
      host: { type: 'string' },
      unix: { type: 'string' },
      protocol: { type: 'string', multiple: true, short: 'p' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-self-signed': { type: 'boolean' },
      newline: { type: 'boolean', short: 'n' },
      binary: { type: 'string' },
      output: { type: 'string' },
      'show-control': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    LISTEN_USAGE,
  );
  if (values.help) {
    io.stdout.write(LISTEN_USAGE);
    return EXIT_OK;
  }
  if (positionals.length > 0) throw new UsageError(`listen takes no arguments, got ${JSON.stringify(positionals[0])}`, LISTEN_USAGE);
  if (values.unix !== undefined && (values.port !== undefined || values.host !== undefined)) throw new UsageError('--unix or --port/--host, not both', LISTEN_USAGE);
  if (values.unix === '') throw new UsageError('--unix needs a path', LISTEN_USAGE);
  const port = values.port !== undefined ? parsePort(values.port, '--port', LISTEN_USAGE) : io.env.PORT !== undefined ? parsePort(io.env.PORT, 'PORT', LISTEN_USAGE) : 7681;
  const host = values.host ?? '127.0.0.1';
  const binary = parseNotation(values.binary, '--binary', LISTEN_USAGE);
  checkTlsArgs(values, LISTEN_USAGE);
  const output = parseNotation(values.output, '--output', LISTEN_USAGE);
  const showControl = values['show-control'] ?? false;
  const made = await serverTls(values, host, io);
  if (made === null) return EXIT_FAILURE;
  const { tls, selfSignedPath } = made;

  let next = 1;
  const names = new WeakMap<ServerSession, number>();
  const handler: Handler<ServerSession> = {
    onOpen(session) {
      names.set(session, next);
      io.stderr.write(`sockeye: client ${next++} connected from ${session.remoteAddress ?? 'unknown'}${session.protocol !== undefined ? ` (subprotocol ${session.protocol})` : ''}\n`);
    },
    onMessage(_session, message) {
      io.stdout.write(formatMessage(message, output));
    },
    onPing(_session, data) {
      if (showControl) io.stdout.write(formatControl('ping', data));
    },
    onPong(_session, data) {
      if (showControl) io.stdout.write(formatControl('pong', data));
    },
    onClose(session, info) {
      if (showControl) io.stdout.write(formatClose(info.code, info.reason));
      io.stderr.write(`sockeye: client ${names.get(session) ?? '?'} closed (${info.code})\n`);
    },
  };
  const server = createServer({
    tls,
    keepalive: null,
    ...(values.protocol ? { protocols: Object.fromEntries(values.protocol.map((p) => [p, handler])) } : { handler }),
    onError: (err) => io.stderr.write(`sockeye: ${err instanceof Error ? err.message : String(err)}\n`),
  });
  const unix = values.unix;
  let where: string;
  try {
    if (unix !== undefined) {
      await server.listen({ path: unix });
      where = unix;
    } else {
      const address = await server.listen(port, host);
      where = `${urlHost(address.address)}:${address.port}/`;
    }
  } catch (err) {
    io.stderr.write(`sockeye: cannot listen on ${unix ?? `${urlHost(host)}:${port}`}: ${(err as Error).message}\n`);
    return EXIT_FAILURE;
  }
  if (selfSignedPath !== null) io.stdout.write(`sockeye: self-signed certificate at ${selfSignedPath} (sockeye connect --ca ${selfSignedPath} wss://${where})\n`);
  // A unix socket's URL is ws's form, ws+unix://PATH:/ (the request path after the colon); over TLS, a
  // client names it with --unix PATH and a wss:// URL.
  const url = unix === undefined ? `${tls ? 'wss' : 'ws'}://${where}` : tls ? `wss://localhost/ (--unix ${unix})` : `ws+unix://${unix}:/`;
  // stdin lines go to every client, as one broadcast each (a frame built once).
  const input = createInterface({ input: io.stdin, crlfDelay: Infinity, terminal: false });
  input.on('line', (line) => {
    let message: string | Buffer;
    try {
      message = lineToMessage(line, binary, values.newline ?? false);
    } catch (err) {
      io.stderr.write(`sockeye: line not sent: ${(err as Error).message}\n`);
      return;
    }
    const r = server.broadcast(message);
    if (r.dropped > 0) io.stderr.write(`sockeye: ${r.dropped} client${r.dropped === 1 ? '' : 's'} did not take a line (outbound queue full)\n`);
  });

  // Signals are handled before the listening line goes out: a script that waits for it and then stops the
  // listener must get the clean shutdown.
  const done = new Promise<number>((resolve) => {
    const off = io.onSignal((signal) => {
      off();
      io.stderr.write(`sockeye: ${signal}, closing ${server.clients.size} connection${server.clients.size === 1 ? '' : 's'} with 1001\n`);
      input.close();
      server.close(1001, 'server shutting down').then(
        () => resolve(EXIT_OK),
        () => resolve(EXIT_FAILURE),
      );
    });
  });
  io.stdout.write(`sockeye: listening on ${url}\n`);
  return done;
}
