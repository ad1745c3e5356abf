// echo-server: the smallest useful sockeye server. Every message a client
// sends comes back to it with the same type (text or binary), at the speed
// the client reads its echoes.
//
//   node dist/examples/echo-server/main.js [--port N]     runs until Ctrl-C
//   node dist/examples/echo-server/main.js --self-test    runs a client against it and exits
//
// In your own project, import from 'sockeye' instead of '../../src/index.js'.
import { randomBytes } from 'node:crypto';
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
    // send() answers 'sent' | 'queued' | 'backpressure' | 'dropped'. The received bytes are
    // ours, so they are handed over (`transfer`) instead of copied.
    const status = session.send(message.data, { binary: message.binary, transfer: true });
    if (status === 'backpressure') {
      // More than the high-water mark waits for this client: read nothing more from it until
      // everything queued has gone out (onWritable below). A client with many messages in
      // flight is served as fast as it reads, and what it has not read yet waits on its side,
      // not in this server's memory. While paused, its pings wait too (docs/api.md,
      // pauseReading()) until it reads its echoes.
      session.pauseReading();
      session.requestWritable();
    } else if (status === 'dropped' && session.state === 'open') {
      // Even so the echo did not fit (the queue would pass maxQueuedBytes); it is also reported
      // to onError. An echo server can only give up on such a client; reading resumes so
      // that the client's close frame is read.
      session.close(1013, 'echo backlog full');
      session.resumeReading();
    }
  },
  onWritable(session) {
    // Fires once per requestWritable(), when everything queued has gone to the kernel.
    session.resumeReading();
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

  // Two messages of the largest default size (16 MiB) in flight at once: the server reads the
  // second only once the first echo has gone out, and the default queue limit holds both anyway.
  const big = [randomBytes(16 * 1024 * 1024), randomBytes(16 * 1024 * 1024)];
  for (const b of big) client.send(b);
  console.log('self-test: sent 2 binary messages of 16 MiB at once');
  let intact = 0;
  for (const b of big) {
    const echo = await replies.next();
    if (!echo.done && echo.value.data.equals(b)) intact++;
  }
  console.log(`self-test: received ${intact} of 2 echoes of 16 MiB, intact and in order`);

  client.close(1000, 'bye');
  const info = await client.closed;
  await serverSawClose; // so that the server's line comes first, every time
  console.log(`self-test: closed ${info.code} (${info.wasClean ? 'clean' : 'not clean'})`);
  await server.close();
  console.log('echo-server: stopped');
} else {
  const stop = () => {
    console.log('echo-server: stopping, closing clients with 1001');
    const closed = server.close();
    // A session paused above must read its client's answer to the close (or it ends after the close timeout).
    for (const session of server.clients) session.resumeReading();
    void closed.then(() => console.log('echo-server: stopped'));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
