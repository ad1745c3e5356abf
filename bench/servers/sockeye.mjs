// sockeye echo server for the benchmark: every message goes back as it came
// (same bytes, same TEXT/BINARY type), with the library's shipped defaults.
// Prints "LISTENING <port>" once bound to 127.0.0.1 on a free port; exits when
// its stdin closes (so it never outlives the harness that started it).
import { createServer } from '../../dist/src/index.js';
import { serveUntilStdinCloses } from '../lib/server-life.mjs';

let dropped = 0;
const server = createServer({
  port: 0,
  host: '127.0.0.1',
  handler: {
    onMessage(session, message) {
      // The generator bounds the messages in flight per connection, so the
      // outbound queue stays bounded without pacing here (like the ws server).
      // A 'dropped' would leave the generator waiting for an echo: count it.
      if (session.send(message.data, { binary: message.binary }) === 'dropped') dropped++;
    },
  },
  onError(error) {
    process.stderr.write(`sockeye server error: ${error instanceof Error ? error.message : String(error)}\n`);
  },
});

const { port } = await server.listen(0, '127.0.0.1');
serveUntilStdinCloses(port, async () => {
  if (dropped > 0) process.stderr.write(`sockeye server: ${dropped} echo sends were dropped\n`);
  await server.close();
});
