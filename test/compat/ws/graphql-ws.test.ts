/**
 * graphql-ws 6 on sockeye/ws: its server (useServer from 'graphql-ws/use/ws')
 * driving a sockeye/ws WebSocketServer, and its client (createClient) with
 * sockeye/ws's WebSocket as webSocketImpl, over real TCP. A schema built with
 * graphql's own classes: a query, a resolver that throws, a subscription that
 * streams N events from an async generator and one whose generator throws.
 * Checked: results, 1,000 events in order then completion, the three kinds of
 * error, both keepalives (graphql-ws's ping/pong messages and the server's
 * WebSocket pings), the 'graphql-transport-ws' subprotocol (which useServer
 * picks by setting wsServer.options.handleProtocols after the server is
 * made), and a foreign client (the real `ws` package) against the server.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GraphQLInt, GraphQLNonNull, GraphQLObjectType, GraphQLSchema, GraphQLString } from 'graphql';
import { createClient, type Client, type ClientOptions, type FormattedExecutionResult } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocket as RealWebSocket, type WebSocketServer as RealServer } from 'ws';
import { WebSocket, WebSocketServer } from '../../../src/compat/ws/index.js';
import { waitUntil, withTimeout } from '../../helpers/ws-pair.js';

const SUBPROTOCOL = 'graphql-transport-ws';

// ------------------------------------------------------------------ schema

const Query = new GraphQLObjectType({
  name: 'Query',
  fields: {
    hello: {
      type: new GraphQLNonNull(GraphQLString),
      args: { name: { type: new GraphQLNonNull(GraphQLString) } },
      resolve: (_src: unknown, args: { name: string }) => `hello ${args.name}`,
    },
    boom: {
      type: GraphQLString,
      resolve: () => {
        throw new Error('resolver exploded');
      },
    },
  },
});

const Subscription = new GraphQLObjectType({
  name: 'Subscription',
  fields: {
    count: {
      type: new GraphQLNonNull(GraphQLInt),
      args: { to: { type: new GraphQLNonNull(GraphQLInt) } },
      subscribe: async function* (_src: unknown, args: { to: number }) {
        for (let i = 1; i <= args.to; i++) yield i;
      },
      resolve: (n: unknown) => n,
    },
    failing: {
      type: GraphQLInt,
      subscribe: async function* () {
        yield 1;
        yield 2;
        throw new Error('generator exploded');
      },
      resolve: (n: unknown) => n,
    },
  },
});

const schema = new GraphQLSchema({ query: Query, subscription: Subscription });

// ------------------------------------------------------------------ server and client

interface GqlServer {
  url: string;
  wss: WebSocketServer;
  /** The server's sockets, in connection order. */
  sockets: WebSocket[];
  close(): Promise<void>;
}

/**
 * A sockeye/ws WebSocketServer on 127.0.0.1, port 0 (made with the `port`
 * option, or attached to a node:http server), running graphql-ws's useServer.
 * `keepAlive` is useServer's interval of WebSocket pings (0: none).
 */
async function startGql(options: { attach?: boolean; keepAlive?: number } = {}): Promise<GqlServer> {
  let http: HttpServer | null = null;
  let wss: WebSocketServer;
  if (options.attach) {
    const h = createHttpServer((_req, res) => res.end('plain http'));
    http = h;
    wss = new WebSocketServer({ server: h });
    await new Promise<void>((resolve, reject) => {
      h.once('error', reject);
      h.listen(0, '127.0.0.1', () => resolve());
    });
  } else {
    wss = await withTimeout(
      new Promise<WebSocketServer>((resolve, reject) => {
        const s: WebSocketServer = new WebSocketServer({ port: 0, host: '127.0.0.1' }, () => resolve(s));
        s.once('error', reject);
      }),
      5000,
      'the server to listen',
    );
  }
  const sockets: WebSocket[] = [];
  wss.on('connection', (socket: WebSocket) => sockets.push(socket));
  // graphql-ws is typed against ws's server; sockeye/ws's stands in for it (what this file tests).
  const disposable = useServer({ schema }, wss as unknown as RealServer, options.keepAlive ?? 0);
  const address = (http ?? wss).address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${address.port}/graphql`,
    wss,
    sockets,
    async close() {
      // dispose() closes every socket with 1001 and the server; anything left is terminated.
      await withTimeout(Promise.resolve(disposable.dispose()), 5000, 'the graphql-ws server to dispose').finally(() => {
        for (const s of sockets) s.terminate();
      });
      if (http) {
        const h = http;
        h.closeAllConnections();
        await withTimeout(new Promise<void>((resolve) => h.close(() => resolve())), 5000, 'the HTTP server to close');
      }
    },
  };
}

function gqlClient(url: string, extra: Partial<ClientOptions> = {}): Client {
  return createClient({ url, webSocketImpl: WebSocket, retryAttempts: 0, onNonLazyError: () => {}, ...extra });
}

type Result = FormattedExecutionResult<Record<string, unknown>, unknown>;

interface Outcome {
  results: Result[];
  /** What reached the sink's error callback (undefined if nothing did). */
  error: unknown;
  completed: boolean;
}

/** Runs one operation through `client.subscribe` and resolves once it completes or errors (bounded). */
function run(client: Client, query: string, variables?: Record<string, unknown>, ms = 10_000): Promise<Outcome> {
  return withTimeout(
    new Promise<Outcome>((resolve) => {
      const results: Result[] = [];
      client.subscribe(
        { query, variables },
        {
          next: (r) => results.push(r),
          error: (error) => resolve({ results, error, completed: false }),
          complete: () => resolve({ results, error: undefined, completed: true }),
        },
      );
    }),
    ms,
    `the operation ${query}`,
  );
}

/** The messages of an array of GraphQL errors (as they arrive at the client: plain objects). */
function messagesOf(errors: unknown): string[] {
  assert.ok(Array.isArray(errors), `an array of GraphQL errors, not ${String(errors)}`);
  return errors.map((e: unknown) => {
    assert.ok(typeof e === 'object' && e !== null && 'message' in e && typeof e.message === 'string', 'a GraphQL error has a message');
    return e.message;
  });
}

function protocolOf(socket: unknown): unknown {
  return typeof socket === 'object' && socket !== null && 'protocol' in socket ? socket.protocol : undefined;
}

// ------------------------------------------------------------------ tests

describe('graphql-ws on sockeye/ws', { timeout: 30_000 }, () => {
  it('answers a query (with variables)', async () => {
    const server = await startGql();
    const client = gqlClient(server.url);
    try {
      const out = await run(client, 'query Hi($n: String!) { hello(name: $n) }', { n: 'sockeye' });
      assert.equal(out.error, undefined);
      assert.equal(out.completed, true);
      assert.deepEqual(out.results, [{ data: { hello: 'hello sockeye' } }]);
      assert.equal(server.sockets.length, 1, 'one connection made');
    } finally {
      await client.dispose();
      await server.close();
    }
  });

  it('streams 1,000 subscription events in order, then completes', async () => {
    const server = await startGql();
    const client = gqlClient(server.url);
    try {
      const out = await run(client, 'subscription { count(to: 1000) }');
      assert.equal(out.error, undefined);
      assert.equal(out.completed, true);
      assert.equal(out.results.length, 1000);
      out.results.forEach((r, i) => assert.deepEqual(r, { data: { count: i + 1 } }, `event ${i}`));
    } finally {
      await client.dispose();
      await server.close();
    }
  });

  it('errors: a resolver error as GraphQL errors, a throwing generator, a bad query', async () => {
    const server = await startGql();
    const client = gqlClient(server.url);
    try {
      // A resolver that throws: the result carries data (null where it threw) and the error, then completes.
      const resolverError = await run(client, '{ hello(name: "x") boom }');
      assert.equal(resolverError.error, undefined);
      assert.equal(resolverError.completed, true);
      assert.equal(resolverError.results.length, 1);
      const [result] = resolverError.results;
      assert.deepEqual(result.data, { hello: 'hello x', boom: null });
      assert.deepEqual(messagesOf(result.errors), ['resolver exploded']);
      assert.deepEqual(result.errors?.[0]?.path, ['boom']);

      // A subscription whose generator throws: the events before it, then the error callback (no completion).
      const generatorError = await run(client, 'subscription { failing }');
      assert.deepEqual(generatorError.results, [{ data: { failing: 1 } }, { data: { failing: 2 } }]);
      assert.equal(generatorError.completed, false);
      assert.deepEqual(messagesOf(generatorError.error), ['generator exploded']);

      // A query that does not validate: the error callback with the validation errors, no result.
      const badQuery = await run(client, '{ nope }');
      assert.deepEqual(badQuery.results, []);
      assert.equal(badQuery.completed, false);
      const messages = messagesOf(badQuery.error);
      assert.equal(messages.length, 1);
      assert.match(messages[0], /Cannot query field "nope" on type "Query"/);

      // The connection survived all three: one more query on it.
      const after = await run(client, '{ hello(name: "still here") }');
      assert.deepEqual(after.results, [{ data: { hello: 'hello still here' } }]);
    } finally {
      await client.dispose();
      await server.close();
    }
  });

  it("keepalive: the client's graphql-ws pings (every 50 ms) are answered with pongs", async () => {
    const server = await startGql();
    const sentPings: unknown[] = [];
    const receivedPongs: unknown[] = [];
    let connected = 0;
    const client = gqlClient(server.url, {
      lazy: false,
      keepAlive: 50,
      on: {
        connected: () => connected++,
        ping: (received) => {
          if (!received) sentPings.push(received);
        },
        pong: (received) => {
          if (received) receivedPongs.push(received);
        },
      },
    });
    try {
      // The client sends its next ping only after the pong to the last one: pongs must keep coming.
      await waitUntil(() => receivedPongs.length >= 4, 5000, 'four pongs from the server');
      assert.ok(sentPings.length >= 4, `the client sent ${sentPings.length} pings`);
      assert.ok(receivedPongs.length <= sentPings.length, 'no pong without a ping');
      assert.equal(connected, 1, 'one connection throughout');
      assert.equal(server.sockets.length, 1);
      const out = await run(client, '{ hello(name: "alive") }');
      assert.deepEqual(out.results, [{ data: { hello: 'hello alive' } }]);
    } finally {
      await client.dispose();
      await server.close();
    }
  });

  it("keepalive: the server's WebSocket pings (useServer's keepAlive, 100 ms) are answered with pongs", async () => {
    // useServer terminates a socket whose pong has not come within keepAlive ms: 100 ms leaves room for a busy machine.
    const server = await startGql({ keepAlive: 100 });
    const client = gqlClient(server.url, { lazy: false });
    let pongs = 0;
    let closes = 0;
    try {
      await waitUntil(() => server.sockets.length === 1, 5000, 'the connection');
      const [socket] = server.sockets;
      socket.on('pong', () => pongs++);
      socket.on('close', () => closes++);
      await waitUntil(() => pongs >= 3, 5000, 'three pongs at the server');
      assert.equal(closes, 0, 'the connection stayed open');
      assert.equal(socket.readyState, WebSocket.OPEN);
    } finally {
      await client.dispose();
      await server.close();
    }
  });

  it("negotiates the 'graphql-transport-ws' subprotocol through the handleProtocols that useServer set", async () => {
    const server = await startGql();
    const clientProtocols: unknown[] = [];
    const client = gqlClient(server.url, { on: { connected: (socket) => clientProtocols.push(protocolOf(socket)) } });
    try {
      assert.equal(typeof server.wss.options.handleProtocols, 'function', 'useServer set handleProtocols after the server was made');
      const out = await run(client, '{ hello(name: "p") }');
      assert.deepEqual(out.results, [{ data: { hello: 'hello p' } }]);
      assert.deepEqual(clientProtocols, [SUBPROTOCOL]);
      assert.equal(server.sockets[0]?.protocol, SUBPROTOCOL);

      // Offered second, it is still the one picked (the default would take the first).
      const second = new WebSocket(server.url, ['other-protocol', SUBPROTOCOL]);
      await withTimeout(new Promise<void>((resolve, reject) => {
        second.once('open', () => resolve());
        second.once('error', reject);
      }), 5000, 'the second client to open');
      assert.equal(second.protocol, SUBPROTOCOL);
      assert.equal(server.sockets[1]?.protocol, SUBPROTOCOL);
      second.close(1000);

      // Not offered: handleProtocols answers false, so no subprotocol, which a client that asked for one refuses.
      const refused = new WebSocket(server.url, ['other-protocol']);
      const err = await withTimeout(new Promise<unknown>((resolve) => {
        refused.once('open', () => resolve(null));
        refused.once('error', resolve);
      }), 5000, 'the third client to fail');
      assert.ok(err instanceof Error, `an error, not ${String(err)}`);
      assert.equal(err.message, 'Server sent no subprotocol');
    } finally {
      await client.dispose();
      await server.close();
    }
  });

  it("a foreign client (the real ws package's WebSocket) against the server attached to node:http", async () => {
    const server = await startGql({ attach: true });
    const clientProtocols: unknown[] = [];
    const client = gqlClient(server.url, {
      webSocketImpl: RealWebSocket,
      on: { connected: (socket) => clientProtocols.push(socket instanceof RealWebSocket ? socket.protocol : 'not a ws socket') },
    });
    try {
      const query = await run(client, '{ hello(name: "ws") }');
      assert.deepEqual(query.results, [{ data: { hello: 'hello ws' } }]);
      const sub = await run(client, 'subscription { count(to: 200) }');
      assert.equal(sub.completed, true);
      assert.deepEqual(sub.results.map((r) => r.data?.count), Array.from({ length: 200 }, (_, i) => i + 1));
      const bad = await run(client, 'subscription { failing }');
      assert.deepEqual(messagesOf(bad.error), ['generator exploded']);
      assert.ok(clientProtocols.length >= 1 && clientProtocols.every((p) => p === SUBPROTOCOL), `protocols ${String(clientProtocols)}`);
      assert.ok(server.sockets.length >= 1 && server.sockets.every((s) => s.protocol === SUBPROTOCOL));
    } finally {
      await client.dispose();
      await server.close();
    }
  });
});
