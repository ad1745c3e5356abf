/**
 * The second incident in docs/architecture.md ("The incidents behind S1 and
 * S2"): a libwebsockets client sending JSON once a second saw its messages
 * corrupted after 5-10 minutes. A keepalive PING made the library raise a WRITEABLE callback the
 * application had not asked for, and the application wrote from a buffer it
 * had already released.
 *
 * Invariant S2: what goes on the wire is what the application sent, when it
 * sent it. send() copies; control frames go only between frames; a writable
 * callback fires only because the application asked for it, once per request.
 *
 * The failure took minutes at one message a second with the default
 * keepalive. Here the same mix is compressed: a JSON document every
 * millisecond for 30 s, keepalive pings every 5 ms in both directions (timer
 * resolution 1 ms), and an application that reuses ONE buffer for every send
 * and fills it with garbage right after each send() returns. Every document
 * must arrive whole, in order, without gaps, with a checksum that matches;
 * every writable callback must answer a request.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomFillSync } from 'node:crypto';
import { connect, Context, createServer, type ClientSession, type WebSocketServer } from '../../src/index.js';

const DURATION_MS = 30_000;
/** The app also asks for a writable callback every this many messages, so that path runs all the time. */
const REQUEST_EVERY = 25;
/** Most documents sent in one timer callback when catching up after a late timer. */
const MAX_BURST = 50;
const KEEPALIVE = { pingAfterMs: 5, hangupAfterMs: 2000, alwaysPing: true } as const;

const WORDS = ['sockeye', 'keepalive', 'ping', 'ünïcödé', '漢字', 'émoji 🐟', 'json', 'frame', 'mask', 'pong'];

/** The document for sequence number `seq`: sizes from a few bytes to over 1 KiB (7- and 16-bit length headers), UTF-8 included. */
function body(seq: number): string {
  const words: string[] = [];
  const n = (seq * 7919) % 160;
  for (let i = 0; i < n; i++) words.push(WORDS[(seq + i * 31) % WORDS.length]);
  return words.join(' ');
}

function checksum(seq: number, text: string): string {
  return createHash('sha256').update(`${seq}|${text}`).digest('hex');
}

interface Doc {
  seq: number;
  body: string;
  sum: string;
}

test('S2: JSON every ms for 30 s under 5 ms keepalive pings, from one reused buffer, arrives intact and in order', { timeout: 120_000 }, async (t) => {
  const serverContext = new Context({ timerResolutionMs: 1 });
  const clientContext = new Context({ timerResolutionMs: 1 });
  const failures: string[] = [];
  const fail = (msg: string) => {
    if (failures.length < 20) failures.push(msg);
  };

  // Server side: checks every document.
  let received = 0;
  let lastSeq = 0;
  let pingsSeenByServer = 0;
  let pongsSeenByServer = 0;
  let serverWritable = 0;
  let serverCloseCode: number | null = null;

  // Client side: the application.
  let sent = 0;
  let requests = 0; // requestWritable() calls that returned true
  let callbacks = 0; // onWritable calls
  let unrequested = 0; // onWritable with no request pending
  let wrongSerial = 0; // onWritable whose info.request is not the pending request's number
  let backpressured = 0;
  let pending = false;
  let waitingForWritable = false;
  let pingsSeenByClient = 0;
  let started = Infinity;
  let stopped = false;
  let sendDue = () => {};
  let sentInPing = 0;
  let pongsSeenByClient = 0;

  let wss: WebSocketServer | null = null;
  let ws: ClientSession | null = null;
  let sender: NodeJS.Timeout | null = null;
  try {
    wss = createServer({
      context: serverContext,
      keepalive: KEEPALIVE,
      onError: (err) => fail(`server onError: ${String(err)}`),
      handler: {
        onMessage: (_s, m) => {
          received++;
          if (m.binary) fail(`message ${received} arrived as binary`);
          let doc: Doc;
          try {
            doc = JSON.parse(m.text) as Doc;
          } catch {
            fail(`message ${received} is not JSON: ${JSON.stringify(m.text.slice(0, 80))}`);
            return;
          }
          if (doc.seq !== lastSeq + 1) fail(`message ${received} has seq ${doc.seq}, expected ${lastSeq + 1}`);
          lastSeq = doc.seq;
          if (typeof doc.body !== 'string' || doc.sum !== checksum(doc.seq, doc.body) || doc.body !== body(doc.seq)) fail(`message seq ${doc.seq} content does not match its checksum`);
        },
        onPing: () => pingsSeenByServer++,
        onPong: () => pongsSeenByServer++,
        // The server never asks for one: pings and pongs going out must not produce any (S2).
        onWritable: () => serverWritable++,
        onClose: (_s, info) => (serverCloseCode = info.code),
        onError: (_s, err) => fail(`server session error: ${err.code} ${err.message}`),
      },
    });
    const { port } = await wss.listen(0, '127.0.0.1');

    ws = await connect(`ws://127.0.0.1:${port}/`, {
      context: clientContext,
      keepalive: KEEPALIVE,
      // A small high-water mark: a document sent while the socket is corked (from onPing) is still buffered
      // when send() returns, so send() answers 'backpressure' now and then and the app waits for onWritable.
      limits: { highWaterMark: 256 },
      onError: (err) => fail(`client onError: ${String(err)}`),
      handler: {
        onMessage: (_s, m) => fail(`client got an unexpected message of ${m.data.length} bytes`),
        onPing: () => {
          pingsSeenByClient++;
          const before = sent;
          sendDue();
          sentInPing += sent - before;
        },
        onPong: () => pongsSeenByClient++,
        onWritable: (_s, info) => {
          callbacks++;
          if (!pending) unrequested++;
          if (info.request !== requests) wrongSerial++;
          pending = false;
          waitingForWritable = false;
          sendDue();
        },
        onError: (_s, err) => fail(`client session error: ${err.code} ${err.message}`),
      },
    });
    const session = ws;
    started = performance.now();

    // The application: ONE buffer for every send, scribbled over right after each send().
    const buf = Buffer.alloc(16 * 1024);
    const request = () => {
      if (session.requestWritable()) {
        requests++;
        pending = true;
      }
    };
    const sendOne = (): boolean => {
      const seq = sent + 1;
      const text = body(seq);
      const json = JSON.stringify({ seq, body: text, sum: checksum(seq, text) } satisfies Doc);
      const n = buf.write(json);
      if (n !== Buffer.byteLength(json)) throw new Error(`document ${seq} does not fit the buffer`);
      const status = session.send(buf.subarray(0, n), { binary: false });
      randomFillSync(buf); // the buffer is "released" and reused: nothing of it may reach the wire any more
      if (status === 'dropped') {
        fail(`send of seq ${seq} dropped (${session.state})`);
        return false;
      }
      sent = seq;
      if (status === 'backpressure') {
        backpressured++;
        waitingForWritable = true;
        request();
        return false;
      }
      if (seq % REQUEST_EVERY === 0) request();
      return true;
    };

    // One document per elapsed millisecond, sent by whichever comes first: the 1 ms timer, a ping from the
    // server, or a writable callback. Sends from inside onPing happen while the session has the socket corked
    // (replies to one read leave in one write), so the frame is not written at once: a library that kept a
    // reference to the caller's bytes instead of a copy would put the garbage on the wire.
    sendDue = () => {
      if (waitingForWritable || stopped) return;
      const due = Math.min(Math.floor(performance.now() - started), DURATION_MS);
      for (let i = 0; i < MAX_BURST && sent < due; i++) if (!sendOne()) break;
    };
    await new Promise<void>((resolve) => {
      sender = setInterval(() => {
        const elapsed = performance.now() - started;
        if (elapsed >= DURATION_MS || session.state !== 'open' || failures.length > 0) {
          stopped = true;
          clearInterval(sender!);
          sender = null;
          resolve();
          return;
        }
        sendDue();
      }, 1);
    });

    // Everything sent arrives (bounded wait).
    const until = performance.now() + 10_000;
    while (received < sent && performance.now() < until && session.state === 'open') await new Promise((r) => setTimeout(r, 10));
    const seconds = (performance.now() - started) / 1000;
    t.diagnostic(`S2: ${sent} documents in ${seconds.toFixed(1)} s; pings seen by server ${pingsSeenByServer}, by client ${pingsSeenByClient}; ` +
      `pongs seen by server ${pongsSeenByServer}, by client ${pongsSeenByClient}; writable: ${requests} requests, ${callbacks} callbacks, ${backpressured} backpressure; ${sentInPing} sent from onPing`);

    assert.deepEqual(failures, []);
    assert.equal(session.state, 'open', 'the keepalive never hung up on a live connection');
    assert.ok(sent >= 5000, `the client sent a document about every ms (${sent})`);
    assert.equal(received, sent, 'every document arrived');
    assert.equal(lastSeq, sent);

    // Keepalive really ran both ways all along: ~6000 each at 5 ms; timers on a loaded machine fire late.
    assert.ok(pingsSeenByServer > 1000, `client pinged the server (${pingsSeenByServer})`);
    assert.ok(pingsSeenByClient > 1000, `server pinged the client (${pingsSeenByClient})`);
    assert.ok(pongsSeenByServer > 1000 && pongsSeenByClient > 1000, 'pings were answered both ways');

    // Writable callbacks: only answers to requests, one per request (one may still be pending).
    assert.equal(serverWritable, 0, 'no writable callback on the server, which never asked for one');
    assert.equal(unrequested, 0, 'no writable callback arrived with no request pending');
    assert.equal(wrongSerial, 0, 'each writable callback names the request it answers');
    assert.ok(requests >= sent / REQUEST_EVERY / 2, `the app asked for writable callbacks all along (${requests})`);
    assert.ok(requests - callbacks === 0 || (requests - callbacks === 1 && pending), `${requests} requests, ${callbacks} callbacks, pending ${pending}`);
    assert.equal(session.writableRequestCount, requests);
    assert.ok(backpressured > 0, 'the backpressure path (wait for the writable callback) was taken');

    const closed = session.closed;
    session.close(1000, 'done');
    const info = await closed;
    assert.equal(info.wasClean, true);
    assert.equal(info.code, 1000);
    assert.equal(info.unsentMessages, 0);
    assert.ok(requests - callbacks <= 1, 'no writable callback after the close');
    // The server's side of the closing handshake finishes on its own schedule; bounded wait for it.
    const serverUntil = performance.now() + 5000;
    while (serverCloseCode === null && performance.now() < serverUntil) await new Promise((r) => setTimeout(r, 10));
    assert.equal(serverCloseCode, 1000);
    assert.equal(serverWritable, 0);
  } finally {
    if (sender) clearInterval(sender);
    ws?.terminate();
    await wss?.close();
    serverContext.close();
    clientContext.close();
  }
});
