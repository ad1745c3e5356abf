// client: connects to an echo server, sends a text and a binary message,
// prints the echoes, and closes. It ends by itself.
//
//   node dist/examples/client/main.js [URL]       default ws://127.0.0.1:7681/
//   node dist/examples/client/main.js --self-test  starts its own echo server first
//
// Against `sockeye serve` (npm start) or examples/echo-server.
// In your own project, import from 'sockeye' instead of '../../src/index.js'.
import { parseArgs } from 'node:util';
import { connect, createServer } from '../../src/index.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { 'self-test': { type: 'boolean', default: false } },
});
const selfTest = values['self-test'] || process.env.SOCKEYE_EXAMPLE_SELFTEST === '1';

let url = positionals[0] ?? 'ws://127.0.0.1:7681/';
let stopServer = async (): Promise<void> => undefined;
if (selfTest) {
  // A quiet echo server on a free port, in this process.
  const server = createServer({ handler: { onMessage: (s, m) => void s.send(m.data, { binary: m.binary }) } });
  const { port } = await server.listen(0, '127.0.0.1');
  url = `ws://127.0.0.1:${port}/`;
  stopServer = () => server.close();
}

try {
  const client = await connect(url);
  console.log(`client: connected to ${client.url.href}`);
  // Without an onMessage handler, messages wait for this iterator (in order).
  const incoming = client.messages();

  const outgoing: Array<string | Buffer> = ['Hello from sockeye', Buffer.from([0xca, 0xfe, 0xba, 0xbe])];
  for (const payload of outgoing) {
    client.send(payload);
    console.log(`client: sent ${describe(typeof payload !== 'string', Buffer.from(payload))}`);
    const reply = await incoming.next();
    if (reply.done) throw new Error('the connection ended before the echo came');
    console.log(`client: received ${describe(reply.value.binary, reply.value.data)}`);
  }

  // close() sends the close frame after everything queued; `closed` resolves when the server has answered.
  client.close(1000, 'bye');
  const info = await client.closed;
  console.log(`client: closed ${info.code} (${info.wasClean ? 'clean' : 'not clean'})`);
} catch (err) {
  console.error(`client: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  await stopServer();
}

function describe(binary: boolean, data: Buffer): string {
  return binary ? `binary ${data.length} bytes ${data.toString('hex')}` : `text ${JSON.stringify(data.toString('utf8'))}`;
}
