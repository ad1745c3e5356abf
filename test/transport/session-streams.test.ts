/**
 * A Session runs over any Duplex: here an in-memory pair (no sockets) and a
 * stream of an HTTP/2 connection (node:http2, cleartext), with a server
 * session on one end and a client session on the other. Messages of every
 * size go both ways intact, pings are answered, and the closing handshake
 * completes cleanly on both sides, as over TCP.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { Context } from '../../src/transport/context.js';
import { Session } from '../../src/transport/session.js';
import type { CloseInfo, Handler, Message } from '../../src/transport/types.js';
import { duplexPair } from '../helpers/duplex-pair.js';
import { bareSession } from '../helpers/bare-session.js';
import { testBytes } from '../helpers/frames.js';

interface Side {
  session: Session;
  messages: Message[];
  pongs: Buffer[];
  closed: Promise<CloseInfo>;
  errors: unknown[];
}

function side(role: 'server' | 'client', stream: Duplex, context: Context, echo: boolean, start = true): Side {
  const messages: Message[] = [];
  const pongs: Buffer[] = [];
  const errors: unknown[] = [];
  const handler: Handler<Session> = {
    onMessage(s, m) {
      messages.push(m);
      if (echo) s.send(m.data, { binary: m.binary });
    },
    onPong(_s, data) {
      pongs.push(Buffer.from(data));
    },
  };
  const session = bareSession(role, stream, context, handler, { inbox: false, onHandlerError: (e) => errors.push(e), start });
  return { session, messages, pongs, closed: session.closed, errors };
}

async function exchange(server: Side, client: Side): Promise<void> {
  const big = testBytes(1 << 20, 7);
  client.session.send('hello');
  client.session.send(big);
  client.session.send(Buffer.alloc(0));
  assert.notEqual(client.session.ping('p1'), 'dropped');
  const deadline = Date.now() + 10_000;
  while ((client.messages.length < 3 || client.pongs.length < 1) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(
    server.messages.map((m) => [m.binary, m.data.length]),
    [
      [false, 5],
      [true, 1 << 20],
      [true, 0],
    ],
  );
  assert.equal(client.messages[0].text, 'hello');
  assert.ok(client.messages[1].data.equals(big), 'the 1 MiB message came back intact');
  assert.equal(client.pongs[0].toString(), 'p1');
  client.session.close(1000, 'done');
  const [s, c] = await Promise.all([server.closed, client.closed]);
  assert.deepEqual([s.code, s.reason, s.wasClean, s.error?.message], [1000, 'done', true, undefined], 'server');
  // The server's answer echoes the code, without a reason (RFC 6455 section 5.5.1).
  assert.deepEqual([c.code, c.reason, c.wasClean, c.error?.message], [1000, '', true, undefined], 'client');
  assert.equal(s.unsentMessages + c.unsentMessages, 0);
  assert.deepEqual([...server.errors, ...client.errors], []);
}

describe('Session over any Duplex', () => {
  it('an in-memory duplex pair', async () => {
    const context = new Context();
    try {
      const [a, b] = duplexPair();
      const server = side('server', a, context, true);
      const client = side('client', b, context, false);
      await exchange(server, client);
    } finally {
      context.close();
    }
  });

  it('drained before start: sends made before start() that filled the stream go on once it starts, though its drain came first', async () => {
    // connect() hands a session over before starting it; what the caller sends meanwhile is queued behind
    // the stream's first refusal, and that stream may drain before the session listens.
    const context = new Context();
    try {
      const [a, b] = duplexPair(1024);
      const server = side('server', a, context, false);
      const client = side('client', b, context, false, false);
      for (let i = 0; i < 20; i++) assert.notEqual(client.session.send(testBytes(1024, i)), 'dropped');
      assert.equal(b.writableNeedDrain, true, 'the stream refused more before start()');
      const deadline = Date.now() + 5000;
      while (b.writableNeedDrain && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      assert.equal(b.writableNeedDrain, false, 'the stream drained (its drain event went by unheard)');
      client.session.start(Buffer.alloc(0));
      while (server.messages.length < 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      assert.equal(server.messages.length, 20);
      server.messages.forEach((m, i) => assert.ok(m.data.equals(testBytes(1024, i)), `message ${i}`));
      client.session.close(1000);
      const [s, c] = await Promise.all([server.closed, client.closed]);
      assert.deepEqual([s.code, c.code, c.unsentMessages], [1000, 1000, 0]);
    } finally {
      context.close();
    }
  });

  it('a stream of an HTTP/2 connection (node:http2)', async () => {
    const context = new Context();
    const h2 = http2.createServer();
    const serverSide = new Promise<Side>((resolve) => {
      h2.on('stream', (stream) => {
        stream.respond({ ':status': 200 });
        resolve(side('server', stream, context, true));
      });
    });
    h2.listen(0, '127.0.0.1');
    await once(h2, 'listening');
    const { port } = h2.address() as AddressInfo;
    const conn = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const req = conn.request({ ':method': 'POST', ':path': '/ws' }, { endStream: false });
      const [headers] = (await once(req, 'response')) as [http2.IncomingHttpHeaders];
      assert.equal(headers[':status'], 200);
      const client = side('client', req, context, false);
      await exchange(await serverSide, client);
    } finally {
      conn.close();
      await new Promise<void>((r) => h2.close(() => r()));
      context.close();
    }
  });
});
