// tls-server: an echo server over TLS (wss://). It makes no certificate
// itself: give it a PEM certificate and key (the README shows the openssl
// command for a throwaway self-signed pair).
//
//   node dist/examples/tls-server/main.js --cert cert.pem --key key.pem [--port N]
//   node dist/examples/tls-server/main.js --cert cert.pem --key key.pem --self-test
//
// In your own project, import from 'sockeye' instead of '../../src/index.js'.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { connect, createServer, TransportError } from '../../src/index.js';

const { values } = parseArgs({
  options: {
    cert: { type: 'string' },
    key: { type: 'string' },
    port: { type: 'string', default: '7681' },
    'self-test': { type: 'boolean', default: false },
  },
});
const selfTest = values['self-test'] || process.env.SOCKEYE_EXAMPLE_SELFTEST === '1';
if (values.cert === undefined || values.key === undefined) {
  console.error('tls-server: needs --cert FILE and --key FILE (PEM); see examples/tls-server/README.md for an openssl command');
  process.exit(2);
}
const cert = readFileSync(values.cert);
const key = readFileSync(values.key);

// `tls` takes node:tls server options: key and cert at least (ca, ciphers, ... as you need).
const server = createServer({
  tls: { key, cert },
  handler: {
    onOpen(session) {
      console.log(`tls-server: client connected, secure: ${session.request.secure}`);
    },
    onMessage(session, message) {
      // Paced as examples/echo-server explains: read nothing more while echoes wait, give up on a client whose echo does not fit.
      const status = session.send(message.data, { binary: message.binary, transfer: true });
      if (status === 'backpressure') {
        session.pauseReading();
        session.requestWritable();
      } else if (status === 'dropped' && session.state === 'open') {
        session.close(1013, 'echo backlog full');
        session.resumeReading();
      }
    },
    onWritable(session) {
      session.resumeReading();
    },
  },
  // Failed TLS handshakes land here (no session exists yet).
  onError: (error) => console.error(`tls-server: ${error instanceof Error ? error.message : String(error)}`),
});
const address = await server.listen(selfTest ? 0 : Number(values.port), '127.0.0.1');
const url = `wss://127.0.0.1:${address.port}/`;
console.log(`tls-server: listening on ${url}`);

if (selfTest) {
  // 1. A client that trusts nothing but the system CAs refuses a self-signed certificate.
  try {
    const s = await connect(url);
    s.terminate();
    console.log('self-test: a client without --cert as CA was accepted (the certificate is not self-signed?)');
  } catch (err) {
    const cause = err instanceof TransportError ? (err.cause as { code?: string } | undefined) : undefined;
    console.log(`self-test: a client that does not trust the certificate is refused (${cause?.code ?? (err as Error).message})`);
  }

  // 2. A client that trusts this certificate (tls.ca) connects and gets its echo.
  const client = await connect(url, { tls: { ca: cert } });
  console.log(`self-test: connected to ${client.url.href} with the certificate as CA`);
  client.send('over TLS');
  const reply = await client.messages().next();
  console.log(`self-test: echo ${reply.done ? '(none)' : JSON.stringify(reply.value.text)}`);
  client.close(1000);
  const info = await client.closed;
  console.log(`self-test: closed ${info.code} (${info.wasClean ? 'clean' : 'not clean'})`);
  await server.close();
  console.log('tls-server: stopped');
} else {
  const stop = () => {
    const closed = server.close();
    // A session paused above must read its client's answer to the close.
    for (const session of server.clients) session.resumeReading();
    void closed.then(() => console.log('tls-server: stopped'));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
