/**
 * permessage-deflate interop with the `ws` npm package, both ways: a ws
 * client against our server and our client against a ws WebSocketServer,
 * with and without context takeover, with limited windows, text and binary
 * from 1 byte to 16 MiB (SHA-256 on both ends). Both sides compress
 * everything (threshold 0), and a byte-counting TCP relay in the middle shows
 * that they really do: a compressible 1 MiB message must take a few KiB each
 * way, and a repeated random message shrinks the second time only where the
 * sender keeps its context (RFC 7692 section 7.1.1), so each side is seen to
 * honour the takeover parameters it agreed to.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { startCounter, type Counter } from '../helpers/byte-counter.js';
import WebSocket, { WebSocketServer as WsServer } from 'ws';
import { connect, type ClientSession, type Message, type ServerSession } from '../../src/index.js';
import type { PerMessageDeflateOptions } from '../../src/transport/permessage-deflate.js';
import { pseudoRandomBytes, sha256, startServer, utf8Text, waitUntil, withTimeout, type TestServer } from '../helpers/ws-pair.js';

const KiB = 1024;
const MiB = 1024 * 1024;
const SIZES = [1, 1000, 64 * KiB, MiB, 16 * MiB];


function payloadFor(kind: 'text' | 'binary', size: number): string | Buffer {
  // Binary: half random, half repeated bytes, so zlib has both kinds of work.
  return kind === 'text' ? utf8Text(size, size) : Buffer.concat([pseudoRandomBytes(size >> 1, size), Buffer.alloc(size - (size >> 1), 0x55)]);
}

/** Per-message-deflate settings of ws, in its option names. */
type WsDeflate = WebSocket.PerMessageDeflateOptions;

interface Variant {
  name: string;
  /** Our side's options. */
  ours: PerMessageDeflateOptions;
  /** ws's side's options. */
  theirs: WsDeflate;
  /** Whether each sender keeps its window (what the negotiation must end with). */
  clientKeeps: boolean;
  serverKeeps: boolean;
}

const VARIANTS: Variant[] = [
  { name: 'context takeover both ways', ours: { threshold: 0 }, theirs: { threshold: 0 }, clientKeeps: true, serverKeeps: true },
  {
    name: 'no context takeover either way (asked by the client)',
    ours: { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true },
    theirs: { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true },
    clientKeeps: false,
    serverKeeps: false,
  },
  { name: 'windows limited (server 10 bits, client 9 bits)', ours: { threshold: 0, serverMaxWindowBits: 10, clientMaxWindowBits: 9 }, theirs: { threshold: 0, serverMaxWindowBits: 10, clientMaxWindowBits: 9 }, clientKeeps: true, serverKeeps: true },
];

/** Checks on the wire that a repeated random message shrinks the second time exactly where the sender keeps its window. */
async function checkTakeover(roundTrip: (m: Buffer) => Promise<Buffer>, counter: Counter, v: Variant): Promise<void> {
  const message = pseudoRandomBytes(8 * KiB, 4242);
  const up: number[] = [];
  const down: number[] = [];
  for (let i = 0; i < 3; i++) {
    const u0 = counter.up;
    const d0 = counter.down;
    const back = await roundTrip(message);
    assert.deepEqual(back, message);
    await waitUntil(() => counter.down > d0, 5000, 'the echo bytes');
    up.push(counter.up - u0);
    down.push(counter.down - d0);
  }
  for (const [who, keeps, sizes] of [
    ['client', v.clientKeeps, up],
    ['server', v.serverKeeps, down],
  ] as const) {
    // With a 9- or 10-bit window the 8 KiB repeat is out of reach anyway: only judge the 15-bit cases.
    const windowTooSmall = v.ours.serverMaxWindowBits !== undefined;
    if (windowTooSmall) assert.ok(sizes.every((s) => s > 8 * KiB * 0.9), `${who}: ${sizes.join(', ')}`);
    else if (keeps) assert.ok(sizes[1] < sizes[0] / 10 && sizes[2] < sizes[0] / 10, `${who} keeps its window: ${sizes.join(', ')} bytes`);
    else assert.equal(new Set(sizes).size, 1, `${who} resets its window: ${sizes.join(', ')} bytes`);
  }
}

describe('ws client -> sockeye server, permessage-deflate', () => {
  for (const v of VARIANTS) {
    describe(v.name, () => {
      let t: TestServer;
      let counter: Counter;
      let ws: WebSocket;
      let session: ServerSession;
      let answer = '';
      const inbox: Array<{ data: Buffer; binary: boolean }> = [];
      let wake: (() => void) | null = null;

      before(async () => {
        let resolveSession!: (s: ServerSession) => void;
        const sessionP = new Promise<ServerSession>((r) => (resolveSession = r));
        t = await startServer({
          perMessageDeflate: v.ours,
          limits: { maxMessageBytes: 32 * MiB, maxQueuedBytes: 128 * MiB },
          handler: {
            onOpen: (s) => resolveSession(s),
            onMessage(s: ServerSession, m: Message) {
              s.send(m.data, { binary: m.binary });
            },
          },
        });
        counter = await startCounter(t.port);
        ws = new WebSocket(`ws://127.0.0.1:${counter.port}/`, { perMessageDeflate: v.theirs, maxPayload: 64 * MiB });
        // ws.extensions only names the extensions: the parameters are read from the 101 answer.
        ws.once('upgrade', (res) => (answer = String(res.headers['sec-websocket-extensions'] ?? '')));
        ws.on('message', (data: Buffer, binary: boolean) => {
          inbox.push({ data, binary });
          wake?.();
        });
        await withTimeout(new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject)), 10_000, 'ws open');
        session = await withTimeout(sessionP, 5000, 'the server session');
      });
      after(async () => {
        ws.terminate();
        await t.server.close();
        await counter.close();
      });

      async function next(): Promise<{ data: Buffer; binary: boolean }> {
        await withTimeout(
          (async () => {
            while (inbox.length === 0) await new Promise<void>((r) => (wake = r));
          })(),
          30_000,
          'a message at the ws client',
        );
        return inbox.shift()!;
      }

      it('compression is negotiated on both sides', () => {
        assert.equal(ws.extensions, 'permessage-deflate');
        assert.match(answer, /^permessage-deflate/);
        assert.deepEqual([...session.extensions], ['permessage-deflate']);
        if (!v.serverKeeps) assert.match(answer, /server_no_context_takeover/);
        if (!v.clientKeeps) assert.match(answer, /client_no_context_takeover/);
        if (v.ours.serverMaxWindowBits) assert.match(answer, /server_max_window_bits=10/);
        if (v.ours.clientMaxWindowBits) assert.match(answer, /client_max_window_bits=9/);
      });

      for (const size of SIZES) {
        for (const kind of ['text', 'binary'] as const) {
          it(`${kind} of ${size} bytes round trip (SHA-256)`, { timeout: 60_000 }, async () => {
            const payload = payloadFor(kind, size);
            ws.send(payload, { binary: kind === 'binary', compress: true });
            const m = await next();
            assert.equal(m.binary, kind === 'binary');
            assert.equal(m.data.length, size);
            assert.equal(sha256(m.data), sha256(payload));
          });
        }
      }

      it('a compressible 1 MiB text takes a few KiB each way (both sides compress)', async () => {
        const text = '{"type":"tick","ok":true} '.repeat(Math.ceil(MiB / 26)).slice(0, MiB);
        const u0 = counter.up;
        const d0 = counter.down;
        ws.send(text);
        assert.equal((await next()).data.toString(), text);
        await waitUntil(() => counter.down > d0, 5000, 'the echo bytes');
        assert.ok(counter.up - u0 < 64 * KiB, `ws compressed: ${counter.up - u0} bytes`);
        assert.ok(counter.down - d0 < 64 * KiB, `sockeye compressed: ${counter.down - d0} bytes`);
      });

      it('each sender keeps or resets its window as agreed (seen on the wire)', async () => {
        await checkTakeover(
          async (m) => {
            ws.send(m);
            return (await next()).data;
          },
          counter,
          v,
        );
      });
    });
  }
});

describe('sockeye client -> ws server, permessage-deflate', () => {
  for (const v of VARIANTS) {
    describe(v.name, () => {
      let wss: WsServer;
      let counter: Counter;
      let client: ClientSession;
      let serverExtensions = '';

      before(async () => {
        wss = new WsServer({ host: '127.0.0.1', port: 0, perMessageDeflate: v.theirs, maxPayload: 64 * MiB });
        wss.on('connection', (sock) => {
          serverExtensions = sock.extensions;
          sock.on('message', (data: Buffer, binary: boolean) => sock.send(data, { binary, compress: true }));
          sock.on('error', () => {});
        });
        await withTimeout(new Promise((resolve) => wss.once('listening', resolve)), 5000, 'ws server listening');
        counter = await startCounter((wss.address() as AddressInfo).port);
        client = await connect(`ws://127.0.0.1:${counter.port}/`, { perMessageDeflate: v.ours, keepalive: null, limits: { maxMessageBytes: 32 * MiB, maxQueuedBytes: 128 * MiB } });
      });
      after(async () => {
        client.terminate();
        for (const c of wss.clients) c.terminate();
        await new Promise((resolve) => wss.close(resolve));
        await counter.close();
      });

      async function next(): Promise<Message> {
        const r = await withTimeout(client.messages().next(), 30_000, 'a message at the sockeye client');
        assert.equal(r.done, false);
        return r.value as Message;
      }

      it('compression is negotiated on both sides', async () => {
        await waitUntil(() => serverExtensions !== '', 5000, 'the ws server connection');
        assert.deepEqual([...client.extensions], ['permessage-deflate']);
        assert.match(serverExtensions, /^permessage-deflate/);
        const answer = client.responseHeaders.get('sec-websocket-extensions')?.[0] ?? '';
        if (!v.serverKeeps) assert.match(answer, /server_no_context_takeover/);
        if (!v.clientKeeps) assert.match(answer, /client_no_context_takeover/);
        if (v.ours.serverMaxWindowBits) assert.match(answer, /server_max_window_bits=10/);
        if (v.ours.clientMaxWindowBits) assert.match(answer, /client_max_window_bits=9/);
      });

      for (const size of SIZES) {
        for (const kind of ['text', 'binary'] as const) {
          it(`${kind} of ${size} bytes round trip (SHA-256)`, { timeout: 60_000 }, async () => {
            const payload = payloadFor(kind, size);
            assert.notEqual(client.send(payload), 'dropped');
            const m = await next();
            assert.equal(m.binary, kind === 'binary');
            assert.equal(m.data.length, size);
            assert.equal(sha256(m.data), sha256(payload));
          });
        }
      }

      it('a compressible 1 MiB text takes a few KiB each way (both sides compress)', async () => {
        const text = '{"type":"tick","ok":true} '.repeat(Math.ceil(MiB / 26)).slice(0, MiB);
        const u0 = counter.up;
        const d0 = counter.down;
        client.send(text);
        assert.equal((await next()).text, text);
        await waitUntil(() => counter.down > d0, 5000, 'the echo bytes');
        assert.ok(counter.up - u0 < 64 * KiB, `sockeye compressed: ${counter.up - u0} bytes`);
        assert.ok(counter.down - d0 < 64 * KiB, `ws compressed: ${counter.down - d0} bytes`);
      });

      it('each sender keeps or resets its window as agreed (seen on the wire)', async () => {
        await checkTakeover(
          async (m) => {
            client.send(m);
            return (await next()).data;
          },
          counter,
          v,
        );
      });

      it('a fragmented compressed message from our client (stream) and many messages back to back', async () => {
        const pieces = [utf8Text(10 * KiB, 1), utf8Text(100 * KiB, 2), utf8Text(5, 3)];
        const w = client.stream({ binary: false, compress: true });
        w.write(pieces[0]);
        w.write(pieces[1]);
        w.end(pieces[2]);
        assert.equal((await next()).text, pieces.join(''));
        const N = 500;
        for (let i = 0; i < N; i++) client.send(i % 3 === 0 ? `plain ${i}` : `${i} ` + utf8Text(2000, i), { compress: i % 5 !== 0 });
        for (let i = 0; i < N; i++) {
          const m = await next();
          assert.equal(m.text, i % 3 === 0 ? `plain ${i}` : `${i} ` + utf8Text(2000, i), `message ${i}`);
        }
      });
    });
  }
});
