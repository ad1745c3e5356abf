/**
 * Keepalive end to end: pings after a quiet spell, hang-up of a peer that went
 * silent, configuration per server, per protocol and per client, automatic
 * pongs (RFC 6455 sections 5.5.2 and 5.5.3), and the S2 rule that keepalive
 * traffic never raises a writable callback.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, InvalidArgumentError, type ClientSession, type CloseInfo, type ConnectOptions, type ServerOptions, type WebSocketServer } from '../../src/index.js';
import { startFreezeProxy, type FreezeProxy } from '../helpers/freeze-proxy.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `cond` every 10 ms for at most `ms`; returns whether it became true. */
async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const until = performance.now() + ms;
  while (!cond()) {
    if (performance.now() >= until) return false;
    await sleep(10);
  }
  return true;
}

/** Resolves with `promise`'s value, or rejects after `ms` (so no test waits forever). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms))),
  ]);
}

/** Servers, clients and proxies made by a test, released in its finally. */
class Resources {
  servers: WebSocketServer[] = [];
  clients: ClientSession[] = [];
  proxies: FreezeProxy[] = [];
  /** Errors reported outside any session handler (server onError, client onError); every test ends with none. */
  errors: string[] = [];

  async server(options: ServerOptions): Promise<{ server: WebSocketServer; port: number }> {
    const server = createServer({ closeTimeoutMs: 1000, onError: (err) => this.errors.push(`server: ${String(err)}`), ...options });
    this.servers.push(server);
    const { port } = await server.listen(0, '127.0.0.1');
    return { server, port };
  }

  async client(url: string, options: ConnectOptions): Promise<ClientSession> {
    const c = await connect(url, { closeTimeoutMs: 1000, onError: (err) => this.errors.push(`client: ${String(err)}`), ...options });
    this.clients.push(c);
    return c;
  }

  async proxy(targetPort: number): Promise<FreezeProxy> {
    const p = await startFreezeProxy({ targetPort });
    this.proxies.push(p);
    return p;
  }

  async release(): Promise<void> {
    for (const c of this.clients) c.terminate();
    // Proxies first: a server session behind a frozen proxy would otherwise wait its close timeout.
    await Promise.all(this.proxies.map((p) => p.close()));
    await Promise.all(this.servers.map((s) => s.close()));
  }
}

/** Intervals between consecutive timestamps. */
function gaps(times: number[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < times.length; i++) out.push(times[i] - times[i - 1]);
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)];
}

const HANGUP = { pingAfterMs: 300, hangupAfterMs: 1000 };
/** The requirement: the session is closed within hangupAfterMs + 1 s of the last byte received. */
const HANGUP_DEADLINE_MS = HANGUP.hangupAfterMs + 1000;

function assertKeepaliveTimeout(info: CloseInfo, side: string): void {
  assert.equal(info.code, 1006, `${side}: abnormal closure, no closing handshake with a silent peer (RFC 6455 section 7.1.5)`);
  assert.equal(info.wasClean, false);
  assert.equal(info.error?.code, 'ERR_KEEPALIVE_TIMEOUT', `${side}: error ${info.error?.code} ${info.error?.message}`);
}

test('server hangs up on a client that went silent without closing (no FIN, no RST), within hangupAfterMs + 1 s', async (t) => {
  const r = new Resources();
  try {
    let pongs = 0;
    let closedAt = NaN;
    let closeInfo: CloseInfo | null = null;
    let serverSessions = 0;
    const { port } = await r.server({
      keepalive: HANGUP,
      handler: {
        onOpen: () => serverSessions++,
        onPong: () => pongs++,
        onClose: (_s, info) => {
          closedAt = performance.now();
          closeInfo = info;
        },
      },
    });
    const proxy = await r.proxy(port);
    // The client has no keepalive of its own: only the server's pings (and the client's automatic pongs) cross the line.
    const client = await r.client(`ws://127.0.0.1:${proxy.port}/`, { keepalive: null, handler: { onMessage: () => {} } });

    // Alive: quiet for longer than hangupAfterMs, kept open by pings and pongs.
    await sleep(HANGUP.hangupAfterMs + 600);
    assert.equal(closeInfo, null, 'a peer that answers pings is not hung up on');
    assert.equal(serverSessions, 1);
    assert.ok(pongs >= 2, `the client answered the server's pings (${pongs} pongs)`);

    proxy.freeze();
    const frozenAt = performance.now();
    assert.ok(await waitFor(() => closeInfo !== null, HANGUP_DEADLINE_MS + 3000), 'the server closed the session');
    const lastByte = proxy.toServer.lastAt;
    assert.ok(lastByte <= frozenAt + 50, 'nothing reached the server after the freeze');
    const silence = closedAt - lastByte;
    t.diagnostic(`server closed ${silence.toFixed(0)} ms after the last byte relayed to it (hangupAfterMs ${HANGUP.hangupAfterMs})`);
    assertKeepaliveTimeout(closeInfo!, 'server');
    assert.ok(silence <= HANGUP_DEADLINE_MS, `closed ${silence.toFixed(0)} ms after the last byte it received (deadline ${HANGUP_DEADLINE_MS} ms)`);
    assert.ok(silence >= HANGUP.hangupAfterMs - 20, `not before hangupAfterMs (${silence.toFixed(0)} ms)`);
    // The client was told nothing: no FIN, no RST crossed the frozen relay.
    assert.equal(client.state, 'open');
    assert.deepEqual(r.errors, []);
  } finally {
    await r.release();
  }
});

test('client hangs up on a server that went silent without closing, within hangupAfterMs + 1 s', async (t) => {
  const r = new Resources();
  try {
    let serverInfo: CloseInfo | null = null;
    const { port } = await r.server({ keepalive: null, handler: { onClose: (_s, info) => (serverInfo = info) } });
    const proxy = await r.proxy(port);
    let pongs = 0;
    let closedAt = NaN;
    const client = await r.client(`ws://127.0.0.1:${proxy.port}/`, {
      keepalive: HANGUP,
      handler: {
        onMessage: () => {},
        onPong: () => pongs++,
        onClose: () => (closedAt = performance.now()),
      },
    });

    await sleep(HANGUP.hangupAfterMs + 600);
    assert.equal(client.state, 'open', 'a server that answers pings is not hung up on');
    assert.ok(pongs >= 2, `the server answered the client's pings (${pongs} pongs)`);

    proxy.freeze();
    const frozenAt = performance.now();
    const info = await within(client.closed, HANGUP_DEADLINE_MS + 3000, 'client close');
    const lastByte = proxy.toClient.lastAt;
    assert.ok(lastByte <= frozenAt + 50, 'nothing reached the client after the freeze');
    const silence = closedAt - lastByte;
    t.diagnostic(`client closed ${silence.toFixed(0)} ms after the last byte relayed to it (hangupAfterMs ${HANGUP.hangupAfterMs})`);
    assertKeepaliveTimeout(info, 'client');
    assert.ok(silence <= HANGUP_DEADLINE_MS, `closed ${silence.toFixed(0)} ms after the last byte it received (deadline ${HANGUP_DEADLINE_MS} ms)`);
    assert.ok(silence >= HANGUP.hangupAfterMs - 20, `not before hangupAfterMs (${silence.toFixed(0)} ms)`);
    assert.equal(serverInfo, null, 'the server was told nothing');
    assert.deepEqual(r.errors, []);
  } finally {
    await r.release();
  }
});

const WINDOW_MS = 2000;
const SLOW = 150;
const FAST = 40;
/** Pings at most every `every` ms can put at most this many in the window (+2: one at each edge, one late from before). */
const atMost = (every: number) => Math.floor(WINDOW_MS / every) + 2;

/** Checks the pings seen over the window against a period of `every` ms. */
function assertPingPeriod(times: number[], every: number, label: string): void {
  assert.ok(times.length >= 4, `${label}: pings every ${every} ms arrive (${times.length} in ${WINDOW_MS} ms)`);
  assert.ok(times.length <= atMost(every), `${label}: no more often than every ${every} ms (${times.length} in ${WINDOW_MS} ms)`);
  // Arrival jitter can bring two pings closer; the median gap cannot fall far below the period.
  const m = median(gaps(times));
  assert.ok(m >= every * 0.75, `${label}: median gap ${m.toFixed(0)} ms for pings every ${every} ms`);
}

test('keepalive is set per server and overridden per protocol (handler.keepalive)', async (t) => {
  const r = new Resources();
  try {
    const { port } = await r.server({
      keepalive: { pingAfterMs: SLOW, hangupAfterMs: 0 },
      handler: {}, // no subprotocol: the server's keepalive
      protocols: {
        inherit: {}, // no keepalive of its own: the server's
        fast: { keepalive: { pingAfterMs: FAST, hangupAfterMs: 0 } },
        off: { keepalive: null },
      },
    });
    const { port: defaultPort } = await r.server({ handler: {} }); // no keepalive option: the default (first ping after 30 s)
    const pings: Record<string, number[]> = { none: [], inherit: [], fast: [], off: [], default: [] };
    const open = (name: string, url: string, protocol?: string) =>
      r.client(url, {
        ...(protocol ? { protocol } : {}),
        keepalive: null, // only the server pings
        handler: { onMessage: () => {}, onPing: () => pings[name].push(performance.now()) },
      });
    const clients = await Promise.all([
      open('none', `ws://127.0.0.1:${port}/`),
      open('inherit', `ws://127.0.0.1:${port}/`, 'inherit'),
      open('fast', `ws://127.0.0.1:${port}/`, 'fast'),
      open('off', `ws://127.0.0.1:${port}/`, 'off'),
      open('default', `ws://127.0.0.1:${defaultPort}/`),
    ]);
    assert.deepEqual(clients.map((c) => c.protocol), [undefined, 'inherit', 'fast', 'off', undefined]);
    await sleep(WINDOW_MS);
    const counts = Object.fromEntries(Object.entries(pings).map(([k, v]) => [k, v.length]));
    t.diagnostic(`pings in ${WINDOW_MS} ms: ${JSON.stringify(counts)}`);
    assertPingPeriod(pings.none, SLOW, 'server keepalive');
    assertPingPeriod(pings.inherit, SLOW, 'protocol without keepalive inherits the server keepalive');
    assertPingPeriod(pings.fast, FAST, 'protocol keepalive overrides the server keepalive');
    assert.ok(pings.fast.length > atMost(SLOW), `the protocol's faster keepalive is used, not the server's: ${JSON.stringify(counts)}`);
    assert.equal(pings.off.length, 0, 'handler.keepalive: null turns pings off for that protocol');
    assert.equal(pings.default.length, 0, 'the default keepalive does not ping within 2 s');
    for (const c of clients) assert.equal(c.state, 'open');
    assert.deepEqual(r.errors, []);
  } finally {
    await r.release();
  }
});

test('keepalive is set per client', async (t) => {
  const r = new Resources();
  try {
    const pings: Record<string, number[]> = { fast: [], slow: [], off: [], default: [] };
    const { server, port } = await r.server({
      keepalive: null, // only the clients ping
      handler: { onPing: (s) => pings[s.request.path.slice(1)].push(performance.now()) },
    });
    const clients = await Promise.all([
      r.client(`ws://127.0.0.1:${port}/fast`, { keepalive: { pingAfterMs: FAST, hangupAfterMs: 0 }, handler: { onMessage: () => {} } }),
      r.client(`ws://127.0.0.1:${port}/slow`, { keepalive: { pingAfterMs: SLOW, hangupAfterMs: 0 }, handler: { onMessage: () => {} } }),
      r.client(`ws://127.0.0.1:${port}/off`, { keepalive: null, handler: { onMessage: () => {} } }),
      r.client(`ws://127.0.0.1:${port}/default`, { handler: { onMessage: () => {} } }),
    ]);
    assert.ok(await waitFor(() => server.clients.size === 4, 2000));
    await sleep(WINDOW_MS);
    t.diagnostic(`pings in ${WINDOW_MS} ms: ${JSON.stringify(Object.fromEntries(Object.entries(pings).map(([k, v]) => [k, v.length])))}`);
    assertPingPeriod(pings.fast, FAST, 'client with pingAfterMs 40');
    assertPingPeriod(pings.slow, SLOW, 'client with pingAfterMs 150');
    assert.ok(pings.fast.length > atMost(SLOW), `each client uses its own keepalive (fast ${pings.fast.length}, slow ${pings.slow.length})`);
    assert.equal(pings.off.length, 0, 'keepalive: null sends no pings');
    assert.equal(pings.default.length, 0, 'the default keepalive does not ping within 2 s');
    for (const c of clients) assert.equal(c.state, 'open');
    assert.deepEqual(r.errors, []);
  } finally {
    await r.release();
  }
});

test('pings are answered by pongs with the same payload, both ways (RFC 6455 sections 5.5.2, 5.5.3)', async () => {
  const r = new Resources();
  try {
    const seenByServer: string[] = [];
    const pongsAtServer: string[] = [];
    const seenByClient: string[] = [];
    const pongsAtClient: string[] = [];
    let writable = 0;
    const { server, port } = await r.server({
      keepalive: null,
      handler: {
        onPing: (_s, d) => seenByServer.push(d.toString('hex')),
        onPong: (_s, d) => pongsAtServer.push(d.toString('hex')),
        onWritable: () => writable++,
      },
    });
    const client = await r.client(`ws://127.0.0.1:${port}/`, {
      keepalive: null,
      handler: {
        onMessage: () => {},
        onPing: (_s, d) => seenByClient.push(d.toString('hex')),
        onPong: (_s, d) => pongsAtClient.push(d.toString('hex')),
        onWritable: () => writable++,
      },
    });
    assert.ok(await waitFor(() => server.clients.size === 1, 2000));
    const [serverSession] = server.clients;

    // Empty, text, binary, and the largest control payload (125 bytes, section 5.5).
    const payloads: Array<string | Uint8Array> = ['', 'hello', Uint8Array.from([0, 255, 1, 254]), Buffer.alloc(125, 0xa5)];
    const hex = payloads.map((p) => Buffer.from(p).toString('hex'));
    for (const p of payloads) assert.notEqual(client.ping(p), 'dropped');
    assert.ok(await waitFor(() => pongsAtClient.length === payloads.length, 2000), `client got ${pongsAtClient.length} pongs`);
    assert.deepEqual(seenByServer, hex, 'the server saw the client pings in order');
    assert.deepEqual(pongsAtClient, hex, 'each pong echoes its ping (section 5.5.3: "Application data" of the Ping)');

    for (const p of payloads) assert.notEqual(serverSession.ping(p), 'dropped');
    assert.ok(await waitFor(() => pongsAtServer.length === payloads.length, 2000), `server got ${pongsAtServer.length} pongs`);
    assert.deepEqual(seenByClient, hex);
    assert.deepEqual(pongsAtServer, hex);

    await sleep(50);
    assert.equal(writable, 0, 'no writable callback for pings or pongs nobody asked for (S2)');
    assert.equal(seenByServer.length, payloads.length, 'no unsolicited pings');
    assert.deepEqual(r.errors, []);
  } finally {
    await r.release();
  }
});

test('keepalive pings never raise onWritable; requested callbacks still fire exactly once', async () => {
  const r = new Resources();
  try {
    const keepalive = { pingAfterMs: 20, hangupAfterMs: 5000, alwaysPing: true };
    const server = { pings: 0, pongs: 0, writable: [] as number[] };
    const client = { pings: 0, pongs: 0, writable: [] as number[] };
    const { server: wss, port } = await r.server({
      keepalive,
      handler: {
        onPing: () => server.pings++,
        onPong: () => server.pongs++,
        onWritable: (_s, info) => server.writable.push(info.request),
      },
    });
    const ws = await r.client(`ws://127.0.0.1:${port}/`, {
      keepalive,
      handler: {
        onMessage: () => {},
        onPing: () => client.pings++,
        onPong: () => client.pongs++,
        onWritable: (_s, info) => client.writable.push(info.request),
      },
    });
    assert.ok(await waitFor(() => wss.clients.size === 1, 2000));
    const [serverSession] = wss.clients;

    assert.ok(await waitFor(() => Math.min(server.pings, client.pings, server.pongs, client.pongs) >= 10, 5000),
      `keepalive traffic both ways: ${JSON.stringify({ server, client })}`);
    assert.deepEqual(server.writable, [], 'keepalive never raised a writable callback on the server');
    assert.deepEqual(client.writable, [], 'keepalive never raised a writable callback on the client');

    assert.equal(serverSession.requestWritable(), true);
    assert.equal(ws.requestWritable(), true);
    assert.ok(await waitFor(() => server.writable.length === 1 && client.writable.length === 1, 2000));
    // More keepalive traffic after the answered requests: still exactly one callback each.
    const before = server.pings + client.pings;
    assert.ok(await waitFor(() => server.pings + client.pings >= before + 10, 5000));
    assert.deepEqual(server.writable, [1], 'one callback, answering request 1');
    assert.deepEqual(client.writable, [1]);
    assert.deepEqual(r.errors, []);
  } finally {
    await r.release();
  }
});

test('a busy connection gets no idle pings when alwaysPing is false, and does with alwaysPing', async () => {
  const r = new Resources();
  try {
    const PING_AFTER = 400;
    const BUSY_MS = 1500;
    const received: Record<string, number> = { idle: 0, always: 0 };
    const { port: idlePort } = await r.server({
      keepalive: { pingAfterMs: PING_AFTER, hangupAfterMs: 0 },
      handler: { onMessage: () => received.idle++ },
    });
    const { port: alwaysPort } = await r.server({
      keepalive: { pingAfterMs: PING_AFTER, hangupAfterMs: 0, alwaysPing: true },
      handler: { onMessage: () => received.always++ },
    });
    const pings: Record<string, number> = { idle: 0, always: 0 };
    const open = (name: string, port: number) =>
      r.client(`ws://127.0.0.1:${port}/`, { keepalive: null, handler: { onMessage: () => {}, onPing: () => pings[name]++ } });
    const idleClient = await open('idle', idlePort);
    const alwaysClient = await open('always', alwaysPort);

    // Data flows to both servers every 5 ms: never a quiet spell of PING_AFTER.
    let sent = 0;
    const started = performance.now();
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (performance.now() - started >= BUSY_MS) {
          clearInterval(timer);
          resolve();
          return;
        }
        idleClient.send(`tick ${sent}`);
        alwaysClient.send(`tick ${sent}`);
        sent++;
      }, 5);
    });
    assert.ok(await waitFor(() => received.idle === sent && received.always === sent, 2000));
    assert.ok(sent >= 50, `data really flowed (${sent} messages)`);
    assert.equal(pings.idle, 0, 'no keepalive ping while data keeps arriving (alwaysPing false)');
    assert.ok(pings.always >= 2, `alwaysPing pings even while data flows (${pings.always})`);

    // Once the line is quiet, the same keepalive does ping: the silence above was not a dead keepalive.
    assert.ok(await waitFor(() => pings.idle >= 1, PING_AFTER + 2000), 'a ping after a quiet spell');
    assert.deepEqual(r.errors, []);
  } finally {
    await r.release();
  }
});

test('ping() and pong() refuse a payload over 125 bytes at once (InvalidArgumentError ERR_CONTROL_TOO_LONG, RFC 6455 section 5.5); 125 bytes goes out', async () => {
  const r = new Resources();
  try {
    const pingsAtServer: Buffer[] = [];
    const pongsAtClient: Buffer[] = [];
    const pingsAtClient: Buffer[] = [];
    const { server, port } = await r.server({ keepalive: null, handler: { onPing: (_s, d) => pingsAtServer.push(d) } });
    const client = await r.client(`ws://127.0.0.1:${port}/`, {
      keepalive: null,
      handler: { onMessage: () => {}, onPing: (_s, d) => pingsAtClient.push(d), onPong: (_s, d) => pongsAtClient.push(d) },
    });
    assert.ok(await waitFor(() => server.clients.size === 1, 2000));
    const [serverSession] = server.clients;
    const tooLong = (err: unknown) => err instanceof InvalidArgumentError && err.code === 'ERR_CONTROL_TOO_LONG';

    for (const [side, s] of [['client', client], ['server', serverSession]] as const) {
      assert.throws(() => s.ping(Buffer.alloc(126, 1)), tooLong, `${side} ping of 126 bytes`);
      assert.throws(() => s.ping('x'.repeat(126)), tooLong, `${side} ping of a 126-byte string`);
      assert.throws(() => s.pong(Buffer.alloc(126, 1)), tooLong, `${side} pong of 126 bytes`);
      assert.equal(s.state, 'open', `${side}: a refused ping leaves the session open`);
    }

    const max = Buffer.alloc(125, 0x5a);
    assert.notEqual(client.ping(max), 'dropped');
    assert.notEqual(serverSession.ping(max), 'dropped');
    assert.ok(await waitFor(() => pingsAtServer.length === 1 && pingsAtClient.length === 1 && pongsAtClient.length === 1, 2000), 'the 125-byte pings and the pong');
    await sleep(50);
    // Only the 125-byte pings went out: nothing of the refused ones reached either peer.
    assert.deepEqual(pingsAtServer, [max]);
    assert.deepEqual(pingsAtClient, [max]);
    assert.deepEqual(pongsAtClient, [max]);
    assert.equal(client.state, 'open');
    assert.deepEqual(r.errors, []);
  } finally {
    await r.release();
  }
});
