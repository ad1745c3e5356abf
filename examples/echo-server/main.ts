// echo-server: the smallest useful sockeye server. Every message a client
// sends comes back to it with the same type (text or binary).
//
//   node dist/examples/echo-server/main.js [--port N]     runs until Ctrl-C
//   node dist/examples/echo-server/main.js --self-test    runs a client against it and exits
//
// In your own project, import from 'sockeye' instead of '../../src/index.js'.
import { parseArgs } from 'node:util';
import { connect, createServer, type ServerHandler } from '../../src/index.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '7681' },
    'self-test': { type: 'boolean', default: false },
  },
});
const selfTest = values['self-test'] || process.env.SOCKEYE_EXAMPLE_SELFTEST === '1';

let disconnected: () => void = () => undefined;

// A handler is an object with one method per event; all are optional.
const echo: ServerHandler = {
  onOpen(session) {
    console.log(`echo-server: client connected from ${session.remoteAddress}`);
  },
  onMessage(session, message) {
    // send() copies the payload and answers 'sent' | 'queued' | 'backpressure' | 'dropped'.
    // A dropped echo (the client reads nothing and its queue is full) is also
    // reported to onError; an echo server can only give up on such a client.
    if (session.send(message.data, { binary: message.binary }) === 'dropped') session.close(1013, 'echo backlog full');
  },
  onClose(_session, info) {
    console.log(`echo-server: client disconnected (${info.code}, ${info.wasClean ? 'clean' : 'not clean'})`);
    disconnected();
  },
  onError(session, error) {
    console.error(`echo-server: ${session.remoteAddress}: ${error.message}`);
  },
};

const server = createServer({ handler: echo });
const address = await server.listen(selfTest ? 0 : Number(values.port), '127.0.0.1');
const url = `ws://127.0.0.1:${address.port}/`;
console.log(`echo-server: listening on ${url}`);

if (selfTest) {
  const serverSawClose = new Promise<void>((resolve) => (disconnected = resolve));
  // A client without onMessage collects messages for the messages() iterator.
  const client = await connect(url);
  const replies = client.messages();

  client.send('Hello, sockeye');
  console.log('self-test: sent text "Hello, sockeye"');
  const text = await replies.next();
  if (text.done) throw new Error('no echo');
  console.log(`self-test: received ${text.value.binary ? 'binary' : 'text'} ${JSON.stringify(text.value.text)}`);

  client.send(Buffer.from([0xde, 0xad, 0xbe, 0xef]));
  console.log('self-test: sent binary deadbeef');
  const bin = await replies.next();
  if (bin.done) throw new Error('no echo');
  console.log(`self-test: received ${bin.value.binary ? 'binary' : 'text'} ${bin.value.data.toString('hex')}`);

  client.close(1000, 'bye');
  const info = await client.closed;
  await serverSawClose; // so that the server's line comes first, every time
  console.log(`self-test: closed ${info.code} (${info.wasClean ? 'clean' : 'not clean'})`);
  await server.close();
  console.log('echo-server: stopped');
} else {
  const stop = () => {
    console.log('echo-server: stopping, closing clients with 1001');
    void server.close().then(() => console.log('echo-server: stopped'));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
