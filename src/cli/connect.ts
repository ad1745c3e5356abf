import { readFileSync } from 'node:fs';
import { createInterface, type Interface } from 'node:readline';
import { connect, parseWebSocketUrl, type ClientHandler, type ClientSession } from '../client/connect.js';
import { reconnect } from '../client/reconnect.js';
import { InvalidArgumentError } from '../core/errors.js';
import type { Message } from '../transport/types.js';
import { parseCommand, parseHeader } from './args.js';
import { EXIT_FAILURE, EXIT_OK, UsageError, type CliIo } from './cli-io.js';

export const CONNECT_USAGE = `Usage: sockeye connect URL [options]

Connects to a WebSocket server (ws:// or wss://). Every line read from stdin
is sent as one text message (without its line ending; an empty line sends an
empty message). Every message received is written to stdout on its own line:
text as it is, binary as one line
  <binary N bytes: HEX>
with the first 32 bytes in hex, followed by "..." when there are more.
Status and errors go to stderr.

At the end of stdin it closes the connection with 1000 and exits once the
server has answered the close; messages that arrive before the server's
close frame are still printed. SIGINT or SIGTERM closes the same way; a
second signal drops the connection at once.

Exit status: 0 when the connection ended with a completed closing handshake
and code 1000 (normal), 1001 (going away) or none (1005); 1 on any other
ending (connection refused, handshake refused, TLS failure, abnormal close,
close with an error code); 2 for a bad command line.

Options:
  -p, --protocol P   offer subprotocol P (repeat for several, in order of
                     preference); the one the server picked is shown on stderr
  -H, --header K:V   add a request header to the opening handshake (repeatable)
  -o, --origin O     send Origin: O with the opening handshake, as a browser
                     page from O would
  --ca FILE          trust this PEM certificate (or CA bundle) for wss://
  -k, --insecure     accept any server certificate (self-signed test servers)
  -n, --newline      send each line with its line feed ("reset\n", not "reset")
  --binary FORMAT    each stdin line is one binary message, written in FORMAT:
                     hex or base64 (a line that does not decode is refused)
  --output FORMAT    print each binary message whole, in FORMAT (hex or base64),
                     alone on its line, instead of <binary N bytes: ...>
  --show-control     print pings, pongs and the close code and reason to stdout,
                     as <ping HEX>, <pong HEX>, <close CODE REASON>
  --ping SECONDS     send a ping every SECONDS (and print the pongs with
                     --show-control)
  --deflate          offer permessage-deflate (RFC 7692)
  --handshake-timeout MS
                     give up if the opening handshake takes longer (default
                     10000)
  --once             at the end of stdin, keep printing what arrives until the
                     server closes, or until --wait MS pass with nothing
                     arriving (default 2000), then close
  --wait MS          how long --once waits for more after the last message
  --echo             send every received message back with the same type;
                     stdin is not read, and the client exits once the
                     connection has closed (by either side)
  -L, --location     follow redirects (301, 302, 303, 307, 308; at most 10);
                     Authorization and Cookie headers are not sent to
                     another origin
  --http2            open the WebSocket over HTTP/2 (RFC 8441): h2 by ALPN for
                     wss://, cleartext HTTP/2 with prior knowledge for ws://;
                     HTTP/1.1 if the server does not take it
  --unix PATH        connect over the unix domain socket at PATH (the URL
                     gives the request path and Host); a ws+unix URL says
                     the same: ws+unix:///run/app.sock:/chat
  --proxy URL        go through this proxy: http://, https:// (HTTP
                     CONNECT), socks5:// or socks5h:// (SOCKS5; h: the proxy
                     resolves the host name), with user:password@ for the
                     proxy's own login. Without it the proxy comes from the
                     environment, read as curl reads it: wss_proxy or
                     https_proxy (wss://), ws_proxy or http_proxy (ws://),
                     all_proxy, and no_proxy for the hosts that go direct
  --no-proxy         go direct, whatever the environment says
  --reconnect        when the connection fails or drops for a reason that
                     may pass (refused, reset, HTTP 5xx, close 1001, 1006,
                     1011, 1012, 1013), connect again after 250 ms, then
                     twice as long each time up to 30 s; lines typed while
                     disconnected are counted as not sent
  -h, --help         show this help

Examples:
  sockeye connect ws://127.0.0.1:7681/ -p dumb-increment-protocol
  echo 'hello' | sockeye connect wss://example.test/chat -H 'Authorization: Bearer T'
  printf 'reset\n' | sockeye connect ws://127.0.0.1:7681/ -p dumb-increment-protocol -n
  echo 00ff10 | sockeye connect ws://127.0.0.1:7681/ --binary hex --show-control
`;

/** The value of --binary or --output (`option`): hex, base64, or not given. */
export function parseNotation(value: string | undefined, option: string, usage: string): 'hex' | 'base64' | null {
  if (value === undefined) return null;
  if (value !== 'hex' && value !== 'base64') throw new UsageError(`${option} takes hex or base64, not ${JSON.stringify(value)}`, usage);
  return value;
}

/** What --show-control prints for a ping or a pong, and for the close. */
export function formatControl(kind: 'ping' | 'pong', data: Buffer): string {
  return `<${kind} ${data.toString('hex')}>\n`;
}
export function formatClose(code: number, reason: string): string {
  return `<close ${code}${reason !== '' ? ' ' + reason : ''}>\n`;
}

/** The stdin line as the message it stands for (--binary, --newline), or an error that names the line. */
export function lineToMessage(line: string, binary: 'hex' | 'base64' | null, newline: boolean): string | Buffer {
  if (binary === null) return newline ? line + '\n' : line;
  const text = line.trim();
  const ok = binary === 'hex' ? /^(?:[0-9a-fA-F]{2})*$/.test(text) : /^[A-Za-z0-9+/]*={0,2}$/.test(text) && text.length % 4 === 0;
  if (!ok) throw new InvalidArgumentError('ERR_BAD_INPUT', `not ${binary}: ${JSON.stringify(line.length > 40 ? line.slice(0, 40) + '...' : line)}`);
  return Buffer.from(text, binary);
}

/** Bytes of a binary message shown in hex. */
const HEX_PREVIEW_BYTES = 32;

/**
 * One line per message (see CONNECT_USAGE). With `output` (--output), a
 * binary message is printed whole, in hex or base64, alone on its line: the
 * form --binary reads back.
 */
export function formatMessage(message: Message, output: 'hex' | 'base64' | null = null): string {
  if (!message.binary) return message.text + '\n';
  if (output !== null) return message.data.toString(output) + '\n';
  const d = message.data;
  const more = d.length > HEX_PREVIEW_BYTES ? '...' : '';
  return `<binary ${d.length} byte${d.length === 1 ? '' : 's'}: ${d.subarray(0, HEX_PREVIEW_BYTES).toString('hex')}${more}>\n`;
}

/** Close codes after which the session counts as having ended normally. */
const NORMAL_CLOSE_CODES = new Set([1000, 1001, 1005]);

export async function runConnect(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand(
    argv,
    {
      protocol: { type: 'string', multiple: true, short: 'p' },
      header: { type: 'string', multiple: true, short: 'H' },
      origin: { type: 'string', short: 'o' },
      ca: { type: 'string' },
      insecure: { type: 'boolean', short: 'k' },
      newline: { type: 'boolean', short: 'n' },
      binary: { type: 'string' },
      output: { type: 'string' },
      'show-control': { type: 'boolean' },
      ping: { type: 'string' },
      deflate: { type: 'boolean' },
      'handshake-timeout': { type: 'string' },
      once: { type: 'boolean' },
      wait: { type: 'string' },
      echo: { type: 'boolean' },
      reconnect: { type: 'boolean' },
      unix: { type: 'string' },
      http2: { type: 'boolean' },
      proxy: { type: 'string' },
      'no-proxy': { type: 'boolean' },
      location: { type: 'boolean', short: 'L' },
      help: { type: 'boolean', short: 'h' },
    },
    CONNECT_USAGE,
  );
  if (values.help) {
    io.stdout.write(CONNECT_USAGE);
    return EXIT_OK;
  }
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'connect needs a URL' : `connect takes one URL, got ${positionals.length} arguments`, CONNECT_USAGE);
  const url = positionals[0];
  try {
    parseWebSocketUrl(url);
  } catch (err) {
    throw new UsageError((err as Error).message, CONNECT_USAGE);
  }
  const headers = (values.header ?? []).map((h) => parseHeader(h, CONNECT_USAGE));
  if (values.insecure && values.ca !== undefined) throw new UsageError('--insecure and --ca exclude each other', CONNECT_USAGE);
  if (values.proxy !== undefined && values['no-proxy']) throw new UsageError('--proxy and --no-proxy exclude each other', CONNECT_USAGE);
  if (values.proxy !== undefined && (values.unix !== undefined || url.startsWith('ws+unix:'))) throw new UsageError('--proxy does not apply to a unix socket, which is never reached through a proxy', CONNECT_USAGE);
  let ca: Buffer | undefined;
  if (values.ca !== undefined) {
    try {
      ca = readFileSync(values.ca);
    } catch (err) {
      io.stderr.write(`sockeye: cannot read --ca: ${(err as Error).message}\n`);
      return EXIT_FAILURE;
    }
  }
  const echo = values.echo ?? false;
  const once = values.once ?? false;
  const waitMs = values.wait === undefined ? 2000 : Number(values.wait);
  if (values.wait !== undefined && !once) throw new UsageError('--wait goes with --once', CONNECT_USAGE);
  if (!(Number.isInteger(waitMs) && waitMs > 0)) throw new UsageError(`--wait takes a whole number of milliseconds above 0, not ${JSON.stringify(values.wait)}`, CONNECT_USAGE);
  if (once && echo) throw new UsageError('--once reads stdin, --echo does not: not both', CONNECT_USAGE);
  let idle: NodeJS.Timeout | null = null;
  const binary = parseNotation(values.binary, '--binary', CONNECT_USAGE);
  if (binary !== null && values.newline) throw new UsageError('--newline applies to text lines, not to --binary input', CONNECT_USAGE);
  const output = parseNotation(values.output, '--output', CONNECT_USAGE);
  const showControl = values['show-control'] ?? false;
  const pingSeconds = values.ping === undefined ? null : Number(values.ping);
  if (pingSeconds !== null && !(Number.isFinite(pingSeconds) && pingSeconds > 0)) throw new UsageError(`--ping takes a number of seconds above 0, not ${JSON.stringify(values.ping)}`, CONNECT_USAGE);
  const handshakeTimeoutMs = values['handshake-timeout'] === undefined ? undefined : Number(values['handshake-timeout']);
  if (handshakeTimeoutMs !== undefined && !(Number.isInteger(handshakeTimeoutMs) && handshakeTimeoutMs > 0)) {
    throw new UsageError(`--handshake-timeout takes a whole number of milliseconds above 0, not ${JSON.stringify(values['handshake-timeout'])}`, CONNECT_USAGE);
  }

  let writableWaiter: (() => void) | null = null;
  /** --echo paused reading because its echoes wait: resumed once they have drained (onWritable). */
  let echoPaused = false;
  const wakeWriter = (session: ClientSession) => {
    if (echoPaused) {
      echoPaused = false;
      session.resumeReading();
    }
    const w = writableWaiter;
    writableWaiter = null;
    w?.();
  };
  const handler: ClientHandler = {
    onMessage(session, message) {
      io.stdout.write(formatMessage(message, output));
      // --once after the end of stdin: each message restarts the wait for the next.
      idle?.refresh();
      if (echo) {
        const status = session.send(message.data, { binary: message.binary });
        if (status === 'backpressure' && !echoPaused) {
          // Pace the server to the speed it reads its echoes, as the demo's echo does, rather than
          // queue without end: reading resumes when the queue has drained (test/cli/cli.test.ts, "--echo paces").
          echoPaused = true;
          session.pauseReading();
          session.requestWritable();
        } else if (status === 'dropped' && session.state === 'open') {
          io.stderr.write('sockeye: an echo was dropped (outbound queue full); closing\n');
          session.close(1013, 'echo backlog full');
        }
      }
    },
    onWritable: wakeWriter,
    ...(showControl
      ? {
          onPing(_session: ClientSession, data: Buffer) {
            io.stdout.write(formatControl('ping', data));
          },
          onPong(_session: ClientSession, data: Buffer) {
            io.stdout.write(formatControl('pong', data));
          },
        }
      : {}),
  };

  // Signals are handled from before the first byte is sent: the session may print what it receives
  // before connect()'s caller runs again, and a script that interrupts the client as soon as it sees
  // output must get the clean close (test/cli/readme-table.test.ts), not Node's default exit.
  const abort = new AbortController();
  let current: ClientSession | null = null;
  let signalled = false;
  const connectOptions = {
    protocol: values.protocol,
    headers,
    origin: values.origin,
    tls: ca ? { ca } : undefined,
    insecure: values.insecure ?? false,
    perMessageDeflate: values.deflate ?? false,
    handshakeTimeoutMs,
    socketPath: values.unix,
    http2: values.http2 ?? false,
    proxy: values['no-proxy'] ? (false as const) : values.proxy,
    followRedirects: values.location ?? false,
    signal: abort.signal,
    handler: {
      ...handler,
      onOpen(s: ClientSession) {
        current = s;
      },
    },
  };
  // With --reconnect, the connections come one after another from reconnect(); `session` is the current one.
  const rc = values.reconnect
    ? reconnect(url, {
        ...connectOptions,
        onAttempt(a) {
          const why = a.reason.kind === 'closed' ? `connection closed (${a.reason.close.code})` : a.reason.error.message;
          io.stderr.write(`sockeye: ${why}; reconnecting in ${a.delayMs} ms (attempt ${a.attempt})\n`);
        },
      })
    : null;
  const offSignal = io.onSignal((signal) => {
    if (!signalled) {
      signalled = true;
      io.stderr.write(`sockeye: ${signal}, closing\n`);
      // Ends --reconnect too: a wait for the next attempt is cut short.
      rc?.close();
      if (current !== null) current.close(1000);
      else abort.abort();
    } else {
      current?.terminate();
    }
  });
  const connections = rc?.[Symbol.asyncIterator]() ?? null;
  let session: ClientSession;
  try {
    if (connections) {
      const first = await connections.next();
      if (first.done) {
        offSignal();
        io.stderr.write('sockeye: stopped before connecting\n');
        return EXIT_FAILURE;
      }
      session = first.value;
    } else {
      session = await connect(url, connectOptions);
    }
  } catch (err) {
    offSignal();
    // connect() checks its arguments before any I/O: a bad --protocol or --header is a bad command line.
    if (err instanceof InvalidArgumentError) throw new UsageError(err.message, CONNECT_USAGE);
    io.stderr.write(`sockeye: ${(err as Error).message}\n`);
    return EXIT_FAILURE;
  }
  const announce = (s: ClientSession, verb: string) => {
    io.stderr.write(`sockeye: ${verb} ${s.url.href}${s.protocol !== undefined ? ` (subprotocol ${s.protocol})` : ''}${s.extensions.length > 0 ? ` (extensions ${s.extensions.join(', ')})` : ''}${s.http2 ? ' (HTTP/2)' : ''}\n`);
    // A wait for onWritable also ends when the session does (no callback comes then).
    void s.closed.then(() => wakeWriter(s));
  };
  announce(session, 'connected to');
  const pinger = pingSeconds === null ? null : setInterval(() => session.state === 'open' && session.ping(), pingSeconds * 1000);


  let input: Interface | null = null;
  let unsentLines = 0;
  /** stdin has ended (a later connection of --reconnect is closed at once). */
  let ended = false;
  if (!echo) {
    input = createInterface({ input: io.stdin, crlfDelay: Infinity, terminal: false });
    const rl = input;
    const waitWritable = () =>
      new Promise<void>((resolve) => {
        if (session.state !== 'open') return resolve();
        writableWaiter = resolve;
        session.requestWritable();
      });
    void (async () => {
      for await (const line of rl) {
        if (session.state !== 'open') {
          unsentLines++;
          continue;
        }
        let message: string | Buffer;
        try {
          message = lineToMessage(line, binary, values.newline ?? false);
        } catch (err) {
          io.stderr.write(`sockeye: line not sent: ${(err as Error).message}\n`);
          unsentLines++;
          continue;
        }
        const status = session.send(message);
        if (status === 'dropped') unsentLines++;
        // Pace stdin on the socket: read on only once what was sent has gone out.
        else if (status === 'backpressure') await waitWritable();
      }
      // End of input: the closing handshake goes after every line sent (S4); with --once, after the replies.
      // A close with 1000 also ends --reconnect.
      if (once && session.state === 'open') idle = setTimeout(() => session.close(1000), waitMs);
      else {
        ended = true;
        session.close(1000);
      }
    })().catch((err: unknown) => {
      io.stderr.write(`sockeye: reading stdin: ${(err as Error).message}\n`);
      session.close(1000);
    });
  }

  let info = await session.closed;
  let gaveUp = false;
  // --reconnect: the next connection after each drop worth retrying; the loop ends on a close that is not
  // (1000 at the end of stdin or on a signal, a 1008 from the server...) or when it gives up (an error).
  while (connections && !signalled) {
    let next: IteratorResult<ClientSession>;
    try {
      next = await connections.next();
    } catch (err) {
      io.stderr.write(`sockeye: giving up: ${(err as Error).message}\n`);
      gaveUp = true;
      break;
    }
    if (next.done) break;
    session = next.value;
    announce(session, 'reconnected to');
    if (ended) session.close(1000);
    info = await session.closed;
  }
  if (idle !== null) clearTimeout(idle);
  if (pinger !== null) clearInterval(pinger);
  offSignal();
  if (showControl) io.stdout.write(formatClose(info.code, info.reason));
  // The server may close first while stdin is still open: stop reading it.
  input?.close();
  if (input) io.stdin.destroy();

  const unsent = info.unsentMessages + unsentLines;
  if (unsent > 0) io.stderr.write(`sockeye: ${unsent} message${unsent === 1 ? ' was' : 's were'} not sent\n`);
  const reason = info.reason !== '' ? ` ${JSON.stringify(info.reason)}` : '';
  if (gaveUp) return EXIT_FAILURE;
  if (!info.wasClean) {
    io.stderr.write(`sockeye: connection closed abnormally (${info.code})${info.error ? `: ${info.error.message}` : ''}\n`);
    return EXIT_FAILURE;
  }
  io.stderr.write(`sockeye: closed ${info.code}${reason}\n`);
  return NORMAL_CLOSE_CODES.has(info.code) ? EXIT_OK : EXIT_FAILURE;
}
