// sockeye echo server for the benchmark: every message goes back as it came
// (same bytes, same TEXT/BINARY type), with the library's shipped defaults:
// send(data) with its default copy, what an application gets.
// --fanout: every message goes to every connected client instead
// (server.broadcast when the library has it, else a loop over server.clients).
// --tls DIR: wss with DIR/key.pem and DIR/cert.pem.
// --limits JSON: the server's limits option instead of the one below.
// Prints "LISTENING <port>" once bound to 127.0.0.1 on a free port; exits when
// its stdin closes (so it never outlives the harness that started it).
import { createServer } from '../../dist/src/index.js';
import { info, serverOptions, serveUntilStdinCloses } from '../lib/server-life.mjs';

const opts = serverOptions();
let dropped = 0;
let server = null;

// --transfer: a received message's data belongs to the application, so an echo
// may hand it back without a copy (send()'s documented ownership transfer, as
// for any forwarding): the sockeye-transfer row.
const transfer = opts.transfer;
const echo = {
  onMessage(session, message) {
    // The generator bounds the messages in flight per connection, so the
    // outbound queue stays bounded without pacing here (like the ws server).
    // A 'dropped' would leave the generator waiting for an echo: count it.
    if (session.send(message.data, { binary: message.binary, transfer }) === 'dropped') dropped++;
  },
};

// One broadcast in flight at a time (the generator waits for every client),
// so the queues stay bounded here too.
const fanout = {
  onMessage(_session, message) {
    if (typeof server.broadcast === 'function') dropped += server.broadcast(message.data, { binary: message.binary })?.dropped ?? 0;
    else for (const s of server.clients) if (s.send(message.data, { binary: message.binary }) === 'dropped') dropped++;
  },
};

server = createServer({
  port: 0,
  host: '127.0.0.1',
  // The library's defaults, which hold two maximum-size echoes in flight.
  ...(opts.limits ? { limits: opts.limits } : {}),
  ...(opts.tls ? { tls: opts.tls } : {}),
  handler: opts.fanout ? fanout : echo,
  onError(error) {
    process.stderr.write(`sockeye server error: ${error instanceof Error ? error.message : String(error)}\n`);
  },
});

if (opts.fanout) info({ fanout: typeof server.broadcast === 'function' ? 'server.broadcast()' : 'loop over server.clients' });
const { port } = await server.listen(0, '127.0.0.1');
serveUntilStdinCloses(
  port,
  async () => {
    if (dropped > 0) process.stderr.write(`sockeye server: ${dropped} sends were dropped\n`);
    await server.close();
  },
  () => server.clients.size,
);
