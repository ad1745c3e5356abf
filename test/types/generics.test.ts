/**
 * The public types, checked by the compiler when the suite is built (tsc
 * --strict over this file): each `@ts-expect-error` marks a misuse that must
 * not compile, and tsc fails the build if it ever does compile. The runtime
 * part runs the same code over real sockets, so the typed programs are also
 * working ones.
 *
 * - `session.data` is the handler's type, inferred by createServer() and
 *   connect() from the handler with no annotation at the call;
 * - without a type, `data` is `unknown`, never `any`;
 * - handlers with different data types share a server under `protocols`;
 * - the README's tour compiles as written.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type ClientHandler, type Message, type ServerHandler, type ServerSession } from '../../src/index.js';

interface Counter {
  n: number;
}

const counter: ServerHandler<Counter> = {
  onOpen(session) {
    session.data = { n: 0 };
  },
  onMessage(session) {
    session.data.n++;
    session.send(String(session.data.n));
  },
};

interface Named {
  name: string;
}

const greeter: ServerHandler<Named> = {
  onOpen(session) {
    session.data = { name: session.request.query.get('name') ?? 'nobody' };
  },
  onMessage(session) {
    session.send(`hello ${session.data.name}`);
  },
};

describe('public types (checked by tsc; run for real)', () => {
  it('createServer infers the data type from its handler: clients are typed', async () => {
    const server = createServer({ port: 0, handler: counter });
    const { port } = await server.listen(0, '127.0.0.1');
    try {
      const client = await connect(`ws://127.0.0.1:${port}/`);
      client.send('a');
      client.send('b');
      const seen: string[] = [];
      for await (const m of client.messages()) {
        seen.push(m.text);
        if (seen.length === 2) break;
      }
      assert.deepEqual(seen, ['1', '2']);
      const counts: number[] = [];
      for (const s of server.clients) {
        const n: number = s.data.n;
        counts.push(n);
        // @ts-expect-error the data is a Counter, which has no name
        void s.data.name;
      }
      assert.deepEqual(counts, [2]);
      client.close();
      await client.closed;
    } finally {
      await server.close();
    }
  });

  it('without a type argument, data is unknown, not any', () => {
    const untyped: ServerHandler = {
      onOpen(session) {
        // @ts-expect-error unknown cannot be used before it is narrowed
        session.data.n = 1;
        session.data = { n: 1 };
        const d = session.data;
        if (typeof d === 'object' && d !== null && 'n' in d) assert.equal(d.n, 1);
      },
    };
    assert.equal(typeof untyped.onOpen, 'function');
  });

  it('createServer<Data>() types inline handlers', async () => {
    const server = createServer<Counter>({
      port: 0,
      handler: {
        onOpen(session) {
          session.data = { n: 41 };
          // @ts-expect-error n is a number
          session.data.n = 'forty-one';
          session.data.n = 41;
        },
        onMessage(session) {
          session.send(String(++session.data.n));
        },
      },
    });
    const { port } = await server.listen(0, '127.0.0.1');
    try {
      const client = await connect(`ws://127.0.0.1:${port}/`);
      client.send('x');
      const first = await client.messages().next();
      assert.equal(first.done, false);
      assert.equal((first.value as Message).text, '42');
      client.close();
      await client.closed;
    } finally {
      await server.close();
    }
  });

  it('handlers with different data types share one server under protocols', async () => {
    const server = createServer<unknown>({ port: 0, protocols: { counter, greeter } });
    const { port } = await server.listen(0, '127.0.0.1');
    try {
      const a = await connect(`ws://127.0.0.1:${port}/?name=ada`, { protocol: 'greeter' });
      a.send('hi');
      const reply = await a.messages().next();
      assert.equal((reply.value as Message).text, 'hello ada');
      for (const s of server.clients) {
        // @ts-expect-error each session's data is unknown to the server: its handler knows the type
        void s.data.name;
      }
      a.close();
      await a.closed;
    } finally {
      await server.close();
    }
  });

  it("connect() infers the data type from the client's handler", async () => {
    const server = createServer({ port: 0, handler: { onMessage: (s, m) => s.send(m.data, { binary: m.binary }) } });
    const { port } = await server.listen(0, '127.0.0.1');
    try {
      const got: string[] = [];
      const handler: ClientHandler<{ received: number }> = {
        onOpen(session) {
          session.data = { received: 0 };
        },
        onMessage(session, message) {
          session.data.received++;
          got.push(message.text);
        },
      };
      const client = await connect(`ws://127.0.0.1:${port}/`, { handler });
      const received: number = client.data?.received ?? 0;
      assert.equal(received, 0);
      client.send('echo');
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no echo')), 5000);
        const poll = setInterval(() => {
          if (client.data.received === 1) {
            clearTimeout(t);
            clearInterval(poll);
            resolve();
          }
        }, 5);
      });
      assert.deepEqual(got, ['echo']);
      client.close();
      await client.closed;
    } finally {
      await server.close();
    }
  });

  it("the README's tour compiles and runs as written", async () => {
    const server = createServer({
      port: 0,
      handler: {
        onMessage(session, message) {
          session.send(message.data, { binary: message.binary }); // echo
        },
        onClose(_session, info) {
          assert.equal(typeof info.wasClean, 'boolean');
        },
      },
    });
    const { port } = await server.listen(0, '127.0.0.1');
    const client = await connect(`ws://127.0.0.1:${port}/`);
    client.send('hello');
    for await (const message of client.messages()) {
      assert.equal(message.text, 'hello');
      client.close();
    }
    await server.close();
  });

  it('a handler typed for one data type is refused where another is required', () => {
    const onlyCounters = (h: ServerHandler<Counter>): ServerHandler<Counter> => h;
    // @ts-expect-error a Named handler is not a Counter handler
    const wrong: ServerHandler<Counter> = onlyCounters(greeter as ServerHandler<{ name: number }>);
    assert.ok(wrong);
    const typed = (s: ServerSession<Counter>) => s.data.n;
    assert.equal(typeof typed, 'function');
  });
});
