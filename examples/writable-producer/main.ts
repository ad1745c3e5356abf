// writable-producer: libwebsockets' "dumb-increment-protocol" in sockeye.
// The server sends an incrementing counter, and it writes ONLY from the
// onWritable callback that it asked for with requestWritable(): the producer
// is paced by the socket, so however slowly a client reads, what waits in
// memory for it (bufferedAmount) stays bounded by about one message plus the
// socket's own buffer, never by how far the producer got ahead.
//
//   node dist/examples/writable-producer/main.js [--port N] [--interval-ms 50]
//     a counter every 50 ms to each client (0: as fast as each client reads);
//     watch it with: sockeye connect ws://127.0.0.1:7681/ --protocol dumb-increment-protocol
//     (type "reset" to start again from 0)
//   node dist/examples/writable-producer/main.js --self-test
//     a deliberately stalled client; prints how high bufferedAmount got
//
// In your own project, import from 'sockeye' instead of '../../src/index.js'.
import { parseArgs } from 'node:util';
import { connect, createServer, type ServerHandler } from '../../src/index.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '7681' },
    'interval-ms': { type: 'string', default: '50' },
    'self-test': { type: 'boolean', default: false },
  },
});
const selfTest = values['self-test'] || process.env.SOCKEYE_EXAMPLE_SELFTEST === '1';

/** Per-session state, typed: the handler's session is ServerSession<Counter>. */
interface Counter {
  n: number;
}

interface ProducerOptions {
  /** Pad each message to this many bytes ('12.........'); 0 sends the bare number. */
  messageBytes: number;
  /** Stop after this many messages (close 1000); Infinity: never. */
  count: number;
  /** Ask for the next writable callback at once (true) or leave it to a timer. */
  continuous: boolean;
}

const PROTOCOL = 'dumb-increment-protocol';

function producer(opts: ProducerOptions, stats: { sends: number; waited: number; maxBuffered: number; done?: () => void; stalled?: () => void }): ServerHandler<Counter> {
  return {
    onOpen(session) {
      session.data.n = 0;
      session.requestWritable();
    },
    // Fires once per requestWritable(), when everything queued has gone to the kernel.
    onWritable(session) {
      const text = String(session.data.n++);
      const status = session.send(opts.messageBytes > 0 ? text.padEnd(opts.messageBytes, '.') : text);
      stats.sends++;
      stats.maxBuffered = Math.max(stats.maxBuffered, session.bufferedAmount);
      if (status !== 'sent') {
        // The socket did not take it all at once: the next onWritable waits for it to drain.
        stats.waited++;
        stats.stalled?.();
      }
      if (session.data.n >= opts.count) {
        session.close(1000, 'that is all');
        stats.done?.();
        return;
      }
      if (opts.continuous) session.requestWritable();
    },
    onMessage(session, message) {
      if (message.text.trim() === 'reset') session.data.n = 0;
    },
  };
}

if (selfTest) {
  const COUNT = 2000;
  const MESSAGE_BYTES = 8192;
  const stats = { sends: 0, waited: 0, maxBuffered: 0, done: undefined as (() => void) | undefined, stalled: undefined as (() => void) | undefined };
  // Resolves the first time the producer has to wait for the socket (or when it is done anyway).
  const stalled = new Promise<void>((resolve) => {
    stats.stalled = resolve;
    stats.done = resolve;
  });
  const server = createServer({ protocols: { [PROTOCOL]: producer({ messageBytes: MESSAGE_BYTES, count: COUNT, continuous: true }, stats) } });
  const { port } = await server.listen(0, '127.0.0.1');
  console.log(`writable-producer: listening on ws://127.0.0.1:${port}/`);

  // A small client high-water mark: its inbox stops reading the socket after 16 x 16 KiB
  // not taken by messages(), so TCP flow control reaches the producer.
  const client = await connect(`ws://127.0.0.1:${port}/`, { protocol: PROTOCOL, limits: { highWaterMark: 16 * 1024 } });
  console.log(`client: connected with protocol ${client.protocol}`);
  console.log('client: not reading until the producer has to wait for the socket');
  await stalled;

  let expected = 0;
  let inOrder = true;
  for await (const m of client.messages()) {
    if (Number.parseInt(m.text, 10) !== expected || m.data.length !== MESSAGE_BYTES) inOrder = false;
    expected++;
  }
  const info = await client.closed;
  console.log(`client: received ${expected} messages, ${inOrder ? 'all in order' : 'NOT IN ORDER'}, closed ${info.code} "${info.reason}"`);
  await server.close();
  console.log(`producer: ${stats.sends} messages of ${MESSAGE_BYTES} bytes, each sent from its own onWritable callback`);
  console.log(`producer: ${stats.waited} times the socket was full and the producer waited for it to drain`);
  console.log(`producer: highest bufferedAmount after a send: ${stats.maxBuffered} bytes (of ${stats.sends * MESSAGE_BYTES} bytes sent)`);
  if (!inOrder || expected !== COUNT) process.exitCode = 1;
} else {
  const intervalMs = Number(values['interval-ms']);
  const continuous = intervalMs === 0;
  const server = createServer({ protocols: { [PROTOCOL]: producer({ messageBytes: 0, count: Infinity, continuous }, { sends: 0, waited: 0, maxBuffered: 0 }) } });
  const { port } = await server.listen(Number(values.port), '127.0.0.1');
  console.log(`writable-producer: listening on ws://127.0.0.1:${port}/ (subprotocol ${PROTOCOL})`);
  // libwebsockets' lws_callback_on_writable_all_protocol() on a timer: each
  // tick asks every session for ONE writable callback; requests do not stack.
  const timer = continuous
    ? undefined
    : setInterval(() => {
        for (const s of server.clients) if (s.state === 'open' && s.protocol === PROTOCOL) s.requestWritable();
      }, intervalMs);
  const stop = () => {
    clearInterval(timer);
    void server.close().then(() => console.log('writable-producer: stopped'));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
