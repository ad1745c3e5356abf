/**
 * permessage-deflate (RFC 7692) against a real browser: headless Chromium
 * opens a WebSocket to our server (createServer with perMessageDeflate) from
 * a page that server serves, offers permessage-deflate, and compresses what
 * it sends. What is checked:
 *
 * - negotiation: the session's extensions, the offer Chromium sent, the
 *   answer our server gave and what the page says was agreed;
 * - text and binary from 1 byte to 16 MiB, page -> server -> page: the page
 *   checks the echo byte for byte, the server checks what it got by SHA-256
 *   against what the page computed before sending;
 * - a burst of pipelined messages comes back complete and in order;
 * - the bytes on the wire, counted by a TCP proxy in front of the server:
 *   a highly compressible 1 MiB message crosses compressed in both
 *   directions, and a repeated 16 KiB random message shrinks to a few bytes
 *   with context takeover and does not without it (RFC 7692 section 7.1.1).
 *
 * Everything runs with and without context takeover.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createConnection, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { createServer, type SendStatus, type ServerSession, type WebSocketServer } from '../../src/index.js';
import type { PerMessageDeflateOptions } from '../../src/transport/permessage-deflate.js';
import { chromiumSkip, launchChromium } from './chromium.js';

const STEP_MS = 20_000;
/** Each test's own limit (the suite has one too); every step inside it has a shorter one. */
const TEST_MS = 45_000;
const MiB = 1024 * 1024;
/** Sizes across the frame-length encodings (RFC 6455 section 5.2: 7-bit, 16-bit, 64-bit) up to 16 MiB, the default message limit. */
const SIZES = [1, 125, 126, 1024, 65535, 65536, MiB, 16 * MiB];

/**
 * The test page. It keeps the received messages in order, and exposes
 * openWs(), roundTrip() and burst(); hashes are computed with crypto.subtle
 * (127.0.0.1 is a secure context) before sending and after receiving.
 */
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>deflate interop</title></head>
<body><script>
'use strict';
let ws = null;
const inbox = [];
let wake = null;
let lastPayload = null;

function next(ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { wake = null; reject(new Error('no message within ' + ms + ' ms')); }, ms);
    const check = () => {
      if (inbox.length > 0) { clearTimeout(timer); wake = null; resolve(inbox.shift()); }
      else wake = check;
    };
    check();
  });
}

window.openWs = (path) => new Promise((resolve, reject) => {
  ws = new WebSocket('ws://' + location.host + path);
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => resolve(ws.extensions);
  ws.onerror = () => reject(new Error('WebSocket error'));
  ws.onmessage = (ev) => { inbox.push(ev.data); if (wake) wake(); };
  ws.onclose = (ev) => { window.closeInfo = { code: ev.code, reason: ev.reason }; };
});

function random(size) {
  const b = new Uint8Array(size);
  for (let off = 0; off < size; off += 65536) crypto.getRandomValues(b.subarray(off, Math.min(size, off + 65536)));
  return b;
}

// Valid UTF-8 words of 1 to 12 bytes: ASCII, 2-, 3- and 4-byte characters.
function utf8Word() {
  const out = [];
  const n = 1 + Math.floor(Math.random() * 6);
  for (let i = 0; i < n; i++) {
    const r = Math.random();
    if (r < 0.7) out.push(0x61 + Math.floor(Math.random() * 26));
    else if (r < 0.85) out.push(0xc3, 0x80 + Math.floor(Math.random() * 64));
    else if (r < 0.95) out.push(0xe6, 0x80 + Math.floor(Math.random() * 64), 0x80 + Math.floor(Math.random() * 64));
    else out.push(0xf0, 0x9f, 0x90 + Math.floor(Math.random() * 16), 0x80 + Math.floor(Math.random() * 64));
  }
  return Uint8Array.from(out);
}

/**
 * Payloads: 'words' picks from a vocabulary of 2000 random words (valid UTF-8
 * for text), so deflate finds matches near and far; 'random' does not
 * compress; 'repeat' is a JSON record over and over; 'again' resends the
 * previous payload. Text is padded with ASCII to the exact byte size.
 */
function makePayload(size, binary, kind) {
  if (kind === 'again') return lastPayload;
  let b;
  if (kind === 'random') {
    b = random(size);
    if (!binary) for (let i = 0; i < size; i++) b[i] = 0x20 + (b[i] % 95);
  } else if (kind === 'repeat') {
    const rec = new TextEncoder().encode('{"id":12345,"name":"sockeye","tags":["ws","deflate"],"ok":true}\\n');
    b = new Uint8Array(size);
    for (let i = 0; i < size; i++) b[i] = rec[i % rec.length];
  } else {
    const vocab = [];
    for (let i = 0; i < 2000; i++) vocab.push(binary ? random(1 + Math.floor(Math.random() * 12)) : utf8Word());
    b = new Uint8Array(size);
    let i = 0;
    const pick = random(Math.max(2, Math.ceil(size / 2) * 2));
    let p = 0;
    while (i < size) {
      const w = vocab[((pick[p % pick.length] << 8) | pick[(p + 1) % pick.length]) % vocab.length];
      p += 2;
      if (i + w.length > size) break;
      b.set(w, i);
      i += w.length;
    }
    for (; i < size; i++) b[i] = 0x2e;
  }
  lastPayload = b;
  return b;
}

async function sha256(bytes) {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(d, (x) => x.toString(16).padStart(2, '0')).join('');
}

function same(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

async function check(bytes, binary, got) {
  const gotBinary = typeof got !== 'string';
  const gotBytes = gotBinary ? new Uint8Array(got) : new TextEncoder().encode(got);
  return { size: bytes.length, binary, sha: await sha256(bytes), gotBinary, gotLen: gotBytes.length, gotSha: await sha256(gotBytes), same: same(bytes, gotBytes) };
}

function sendBytes(bytes, binary) {
  ws.send(binary ? bytes : new TextDecoder('utf-8', { fatal: true }).decode(bytes));
}

// One message out, its echo back.
window.roundTrip = async (size, binary, kind) => {
  const bytes = makePayload(size, binary, kind);
  sendBytes(bytes, binary);
  return check(bytes, binary, await next(30000));
};

// n messages sent back to back, then their echoes, which must come in order.
window.burst = async (n) => {
  const sent = [];
  for (let i = 0; i < n; i++) {
    const binary = i % 2 === 1;
    const bytes = makePayload((i * 7919) % 100000, binary, i % 3 === 0 ? 'random' : 'words');
    sent.push([bytes, binary]);
    sendBytes(bytes, binary);
  }
  const results = [];
  for (const [bytes, binary] of sent) results.push(await check(bytes, binary, await next(30000)));
  return results;
};
</script></body></html>
`;

interface PageCheck {
  size: number;
  binary: boolean;
  sha: string;
  gotBinary: boolean;
  gotLen: number;
  gotSha: string;
  same: boolean;
}

interface Received {
  binary: boolean;
  len: number;
  sha: string;
  echo: SendStatus;
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** One TCP connection through the proxy: bytes each way, and the first bytes of each direction (the HTTP heads). */
interface Pipe {
  up: number;
  down: number;
  headUp: string;
  headDown: string;
}

/** A counting TCP proxy in front of the server: what it counts is what crossed the wire. */
async function startProxy(target: number): Promise<{ server: NetServer; port: number; pipes: Pipe[]; close(): Promise<void> }> {
  const pipes: Pipe[] = [];
  const sockets = new Set<Socket>();
  const server = createNetServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: target });
    const pipe: Pipe = { up: 0, down: 0, headUp: '', headDown: '' };
    pipes.push(pipe);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.on('data', (d: Buffer) => {
      pipe.up += d.length;
      if (pipe.headUp.length < 4096) pipe.headUp += d.subarray(0, 4096).toString('latin1');
    });
    upstream.on('data', (d: Buffer) => {
      pipe.down += d.length;
      if (pipe.headDown.length < 4096) pipe.headDown += d.subarray(0, 4096).toString('latin1');
    });
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    server,
    port,
    pipes,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

const skip = chromiumSkip();

describe('permessage-deflate with headless Chromium', { skip, timeout: 90_000 }, () => {
  let browser: Browser;

  before(async () => {
    browser = await launchChromium();
  }, { timeout: TEST_MS });

  after(async () => {
    await browser?.close();
  }, { timeout: TEST_MS });

  const configs: Array<[string, PerMessageDeflateOptions]> = [
    ['with context takeover', {}],
    ['without context takeover', { serverNoContextTakeover: true, clientNoContextTakeover: true }],
  ];

  for (const [label, deflate] of configs) {
    const takeover = !deflate.serverNoContextTakeover;

    describe(label, () => {
      let server: WebSocketServer;
      let proxy: Awaited<ReturnType<typeof startProxy>>;
      let page: Page;
      let agreed: string;
      const sessions: ServerSession[] = [];
      const received: Received[] = [];
      const serverErrors: unknown[] = [];

      before(async () => {
        server = createServer({
          perMessageDeflate: deflate,
          keepalive: null, // nothing but the test's own messages on the wire
          onHttpRequest(req, res) {
            if (req.url === '/') {
              res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
              res.end(PAGE);
            } else {
              res.writeHead(404).end();
            }
          },
          onError: (err) => serverErrors.push(err),
          handler: {
            onOpen: (s) => sessions.push(s),
            onMessage(s, m) {
              const echo = s.send(m.data, { binary: m.binary });
              received.push({ binary: m.binary, len: m.data.length, sha: sha256(m.data), echo });
            },
            onError: (_s, err) => serverErrors.push(err),
          },
        });
        const { port } = await server.listen(0, '127.0.0.1');
        proxy = await startProxy(port);
        page = await browser.newPage();
        page.setDefaultTimeout(STEP_MS);
        // The page comes from the server under test, through the proxy (see chromium.ts on local-network access).
        await page.goto(`http://127.0.0.1:${proxy.port}/`);
        agreed = (await page.evaluate(`openWs('/deflate')`)) as string;
      }, { timeout: TEST_MS });

      after(async () => {
        await page?.close().catch(() => {});
        try {
          await server?.close();
        } finally {
          await proxy?.close();
        }
      }, { timeout: TEST_MS });

      /** The proxied TCP connection that carried the WebSocket. */
      function wsPipe(): Pipe {
        const found = proxy.pipes.filter((p) => /^upgrade: websocket\r$/im.test(p.headUp));
        assert.equal(found.length, 1, 'one WebSocket connection went through the proxy');
        return found[0];
      }

      async function roundTrip(size: number, binary: boolean, kind: 'words' | 'random' | 'repeat' | 'again'): Promise<{ page: PageCheck; server: Received }> {
        const before = received.length;
        const r = (await page.evaluate(`roundTrip(${size}, ${binary}, '${kind}')`)) as PageCheck;
        assert.equal(received.length, before + 1, 'the server received one message');
        return { page: r, server: received[before] };
      }

      function assertEchoed(r: { page: PageCheck; server: Received }, size: number, binary: boolean): void {
        const what = `${size} bytes ${binary ? 'binary' : 'text'}`;
        // Page -> server: what the server inflated is what the page sent (RFC 7692 section 6.2).
        assert.equal(r.server.binary, binary, `${what}: type at the server`);
        assert.equal(r.server.len, size, `${what}: length at the server`);
        assert.equal(r.server.sha, r.page.sha, `${what}: SHA-256 at the server`);
        assert.notEqual(r.server.echo, 'dropped', `${what}: echo accepted`);
        // Server -> page: what Chromium inflated is what was sent.
        assert.equal(r.page.gotBinary, binary, `${what}: type at the page`);
        assert.equal(r.page.gotLen, size, `${what}: length at the page`);
        assert.equal(r.page.same, true, `${what}: bytes at the page`);
        assert.equal(r.page.gotSha, r.page.sha, `${what}: SHA-256 at the page`);
      }

      it('negotiates permessage-deflate with the parameters configured', { timeout: TEST_MS }, () => {
        assert.equal(sessions.length, 1);
        const [session] = sessions;
        assert.deepEqual([...session.extensions], ['permessage-deflate']);
        const offer = session.request.headers.get('sec-websocket-extensions')?.join(', ') ?? '';
        assert.match(offer, /^permessage-deflate\b/, `Chromium's offer: ${offer}`);
        const answer = /^sec-websocket-extensions: *(.*)\r$/im.exec(wsPipe().headDown)?.[1] ?? '';
        assert.match(answer, /^permessage-deflate\b/, `our answer: ${answer}`);
        // RFC 7692 section 7.1.1: the no-context-takeover parameters are in the answer exactly when configured.
        assert.equal(/\bserver_no_context_takeover\b/.test(answer), !takeover, answer);
        assert.equal(/\bclient_no_context_takeover\b/.test(answer), !takeover, answer);
        // The page's WebSocket.extensions is the answer Chromium accepted.
        assert.equal(agreed.replace(/\s+/g, ''), answer.replace(/\s+/g, ''));
      });

      it('echoes text and binary from 1 byte to 16 MiB, verified on both sides', { timeout: 60_000 }, async () => {
        for (const size of SIZES) {
          for (const binary of [false, true]) {
            assertEchoed(await roundTrip(size, binary, 'words'), size, binary);
          }
        }
      });

      it('Chromium compresses what it sends, and so does the server (1 MiB of JSON)', { timeout: TEST_MS }, async () => {
        const pipe = wsPipe();
        const [up0, down0] = [pipe.up, pipe.down];
        const r = await roundTrip(MiB, false, 'repeat');
        assertEchoed(r, MiB, false);
        const up = pipe.up - up0;
        const down = pipe.down - down0;
        // Uncompressed, the frame would carry at least 1 MiB; deflated, a repeated 65-byte record takes a few KiB.
        assert.ok(up > 0 && up < MiB / 50, `Chromium sent ${up} bytes for 1 MiB`);
        assert.ok(down > 0 && down < MiB / 50, `the server sent ${down} bytes for 1 MiB`);
      });

      it(`a repeated random 16 KiB message ${takeover ? 'shrinks (context taken over)' : 'does not shrink (no context takeover)'}`, { timeout: TEST_MS }, async () => {
        const pipe = wsPipe();
        assertEchoed(await roundTrip(16384, true, 'random'), 16384, true);
        const [up1, down1] = [pipe.up, pipe.down];
        assertEchoed(await roundTrip(16384, true, 'again'), 16384, true);
        const up = pipe.up - up1;
        const down = pipe.down - down1;
        if (takeover) {
          // The second copy is one back-reference into the previous message's window.
          assert.ok(up < 1024, `Chromium sent ${up} bytes for the repeat`);
          assert.ok(down < 1024, `the server sent ${down} bytes for the repeat`);
        } else {
          // Each message starts from an empty window (RFC 7692 section 7.1.1), and random bytes do not compress.
          assert.ok(up >= 16384, `Chromium sent ${up} bytes for the repeat`);
          assert.ok(down >= 16384, `the server sent ${down} bytes for the repeat`);
        }
      });

      it('a burst of 60 pipelined messages comes back complete and in order', { timeout: TEST_MS }, async () => {
        const before = received.length;
        const results = (await page.evaluate('burst(60)')) as PageCheck[];
        assert.equal(results.length, 60);
        const got = received.slice(before);
        assert.equal(got.length, 60);
        results.forEach((r, i) => {
          assert.equal(got[i].sha, r.sha, `message ${i} at the server, in order`);
          assert.equal(got[i].binary, r.binary);
          assert.equal(r.same, true, `message ${i} echoed intact, in order`);
          assert.equal(r.gotBinary, r.binary);
        });
      });

      it('the connection is still open and nothing failed', { timeout: TEST_MS }, async () => {
        assert.equal(sessions[0].state, 'open');
        assert.equal(await page.evaluate('window.closeInfo ?? null'), null);
        assert.deepEqual(serverErrors, []);
      });
    });
  }
});
