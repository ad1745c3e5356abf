// Shared lifetime of the benchmark's servers: command-line options, announce
// the port on stdout, answer the harness's control lines on stdin, and run
// until the harness closes our stdin (or signals us).
//
// Protocol (one line each way):
//   server -> harness  INFO <json>        facts for the report (before LISTENING)
//   server -> harness  LISTENING <port>
//   harness -> server  gc                 full garbage collection (needs node --expose-gc), then
//   server -> harness  MEMORY <json>      { gc, connections, rss, heapUsed, heapTotal, external, arrayBuffers, ...facts() }
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The options every server takes:
 *   --fanout     every message received is sent to every connected client (the fan-out scenario)
 *   --tls DIR    serve over TLS with DIR/key.pem and DIR/cert.pem
 *   --native     (ws only) use the optional native add-ons
 *   --sockeye    (ws only) the same ws program on sockeye/ws instead of ws (the sockeye-ws row)
 *   --transfer   (sockeye only) echo with send(data, { transfer: true }) instead of send()'s default copy
 *   --limits JSON (sockeye only) the server's `limits` option instead of the library's defaults
 */
export function serverOptions(argv = process.argv.slice(2)) {
  const opts = { fanout: false, tls: null, native: false, sockeye: false, transfer: false, limits: null };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--fanout') opts.fanout = true;
    else if (argv[i] === '--native') opts.native = true;
    else if (argv[i] === '--sockeye') opts.sockeye = true;
    else if (argv[i] === '--transfer') opts.transfer = true;
    else if (argv[i] === '--limits' && argv[i + 1]) opts.limits = JSON.parse(argv[++i]);
    else if (argv[i] === '--tls' && argv[i + 1]) {
      const dir = argv[++i];
      opts.tls = { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
    } else {
      process.stderr.write(`bench server: unknown option ${argv[i]}\n`);
      process.exit(64);
    }
  }
  return opts;
}

/** Prints one INFO line for the harness's report metadata. */
export function info(facts) {
  process.stdout.write(`INFO ${JSON.stringify(facts)}\n`);
}

/**
 * @param {number} port the bound port, announced as "LISTENING <port>"
 * @param {() => Promise<void>} shutdown closes the server and its connections
 * @param {() => number} connections how many client connections are open now
 * @param {() => object} [facts] more fields for each MEMORY line (the fan-out servers: how many clients are in the topic or room)
 */
export function serveUntilStdinCloses(port, shutdown, connections, facts = () => ({})) {
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    // Bounded: a server that does not close within 3 s is ended anyway.
    const timer = setTimeout(() => process.exit(0), 3000);
    shutdown().then(
      () => {
        clearTimeout(timer);
        process.exit(0);
      },
      (error) => {
        process.stderr.write(`shutdown failed: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exit(1);
      },
    );
  };
  let pending = '';
  process.stdin.setEncoding('latin1');
  process.stdin.on('data', (chunk) => {
    pending += chunk;
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl).trim();
      pending = pending.slice(nl + 1);
      if (line === 'gc') collect(connections, facts);
      else if (line) process.stderr.write(`bench server: unknown control line ${JSON.stringify(line)}\n`);
    }
  });
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdout.write(`LISTENING ${port}\n`);
}

/**
 * For the servers built straight on node:net or node:tls (raw, floor): listens
 * on 127.0.0.1, a free port, and serves until stdin closes; `sockets` is the
 * set of open connections, destroyed at the end.
 */
export async function serveSockets(server, sockets) {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  serveUntilStdinCloses(
    server.address().port,
    async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
    () => sockets.size,
  );
}

function collect(connections, facts) {
  const gc = typeof globalThis.gc === 'function';
  if (gc) {
    // Two full collections: the first can leave garbage that only its finalizers released.
    globalThis.gc();
    globalThis.gc();
  }
  // Answer after the current I/O phase, so sockets closed in it are gone.
  setImmediate(() => {
    const m = process.memoryUsage();
    process.stdout.write(`MEMORY ${JSON.stringify({ gc, connections: connections(), rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, ...facts() })}\n`);
  });
}

/**
 * The harness side of the line protocol of the bench's children: calls
 * onLine(word, rest) for each "WORD rest" line a child prints on stdout (a
 * server's LISTENING, INFO, MEMORY; the flooder's START, WRITTEN, RESULT).
 */
export function onWordLines(stream, onLine) {
  let out = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    out += chunk;
    let nl;
    while ((nl = out.indexOf('\n')) >= 0) {
      const line = out.slice(0, nl);
      out = out.slice(nl + 1);
      const m = /^(\w+) ?(.*)$/.exec(line);
      if (m) onLine(m[1], m[2]);
    }
  });
}
