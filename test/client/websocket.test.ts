/**
 * The standard WebSocket class (src/client/websocket.ts) against a real
 * sockeye server on 127.0.0.1: every attribute, method, event and error of
 * the WHATWG WebSockets Standard, with exact event sequences (type, the
 * readyState seen by the listener, code, reason, wasClean, data).
 *
 * test/interop/undici-websocket.test.ts runs the common scenarios against
 * undici's implementation too and requires the same logs.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Blob } from 'node:buffer';
import type { Socket } from 'node:net';
import { ClientSession, CloseEvent, Session, WebSocket, type CloseInfo, type ServerHandler, type ServerSession } from '../../src/index.js';
import { testCert } from '../helpers/certs.js';
import { delay, echoHandler, serverFrame, startRawServer, startServer, switchingProtocols, waitUntil, withTimeout, type RawServer, type TestServer } from '../helpers/ws-pair.js';

// ------------------------------------------------------------------ helpers

/** Every event of a WebSocket, as a line: type, readyState seen by the listener, then what the event carries. */
class Recorder {
  readonly lines: string[] = [];
  /** Raw message data, in order, for checks of their types. */
  readonly data: unknown[] = [];
  readonly events: Event[] = [];
  readonly #closed: Promise<void>;
  #pending: Array<Promise<void>> = [];

  constructor(readonly ws: WebSocket) {
    let done!: () => void;
    this.#closed = new Promise((resolve) => (done = resolve));
    for (const type of ['open', 'message', 'error', 'close']) {
      ws.addEventListener(type, (event: Event) => {
        this.events.push(event);
        const index = this.lines.length;
        this.lines.push(`${event.type} ${ws.readyState}`);
        if (event instanceof CloseEvent) {
          this.lines[index] += ` ${event.code} ${JSON.stringify(event.reason)} ${event.wasClean}`;
          done();
        } else if (event instanceof MessageEvent) {
          const data: unknown = event.data;
          this.data.push(data);
          if (typeof data === 'string') this.lines[index] += ` text:${data}`;
          else if (data instanceof ArrayBuffer) this.lines[index] += ` arraybuffer:${Buffer.from(data).toString('hex')}`;
          else if (data instanceof Blob) {
            this.lines[index] += ' blob:';
            this.#pending.push(data.arrayBuffer().then((b) => void (this.lines[index] += Buffer.from(b).toString('hex'))));
          } else this.lines[index] += ` unexpected:${String(data)}`;
        }
      });
    }
  }

  /** Waits (bounded) for the close event, and for the Blobs' contents. */
  async closed(ms = 5000): Promise<string[]> {
    await withTimeout(this.#closed, ms, 'the close event');
    await Promise.all(this.#pending);
    return this.lines;
  }

  async opened(ms = 5000): Promise<void> {
    await waitUntil(() => this.lines.length > 0, ms, 'the first event');
    assert.equal(this.lines[0], 'open 1', `the connection did not open: ${this.lines.join(', ')}`);
  }

  async messages(n: number, ms = 5000): Promise<void> {
    await waitUntil(() => this.data.length >= n || this.lines.some((l) => l.startsWith('close')), ms, `${n} message(s)`);
    assert.ok(this.data.length >= n, `closed after ${this.data.length} of ${n} messages: ${this.lines.join(', ')}`);
  }
}

function isDomException(name: string): (err: unknown) => boolean {
  return (err) => err instanceof DOMException && err.name === name;
}

/**
 * The server: an echo, plus commands in text messages ('cmd:...') to make
 * it close, burst, terminate or report what it received.
 */
function commandHandler(closes: CloseInfo[]): ServerHandler {
  return echoHandler({
    onMessage(session, message) {
      const text = message.binary ? '' : message.text;
      if (text.startsWith('cmd:close ')) {
        const [, code, ...reason] = text.split(' ');
        session.close(Number(code), reason.join(' '));
      } else if (text === 'cmd:close-empty') session.close(null);
      else if (text === 'cmd:burst') {
        for (const m of ['m1', 'm2', 'm3']) session.send(m);
        session.close(4001, 'after burst');
      } else if (text === 'cmd:burst-binary') {
        session.send(Buffer.from([1]));
        session.send(Buffer.from([2]));
      } else if (text === 'cmd:burst-open') {
        for (const m of ['m1', 'm2', 'm3']) session.send(m);
      } else if (text === 'cmd:terminate') session.terminate();
      else if (text === 'cmd:header') session.send(session.request.headers.get('x-test')?.join(',') ?? '(none)');
      else session.send(message.data, { binary: message.binary });
    },
    onClose(_session, info) {
      closes.push(info);
    },
  });
}

describe('WebSocket (WHATWG WebSockets Standard)', () => {
  let t: TestServer;
  /** How each server session ended (the client's close code and reason). */
  const closes: CloseInfo[] = [];

  before(async () => {
    t = await startServer({
      handler: commandHandler(closes),
      protocols: {
        chat: commandHandler(closes),
        silent: {},
      },
      perMessageDeflate: true,
      verifyClient: (request) => (request.path === '/forbidden' ? { status: 403 } : true),
    });
  });
  after(async () => {
    await t.server.close();
  });

  /** Opens a WebSocket to the server and waits (bounded) for its open event. */
  async function open(path = '/', protocols: string | string[] = [], options: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<Recorder> {
    const ws = new WebSocket(t.url(path), protocols, options);
    const rec = new Recorder(ws);
    await rec.opened();
    return rec;
  }

  // --------------------------------------------------------------- interface

  describe('interface', () => {
    it('has the ready-state constants on the class and on instances, read-only', async () => {
      assert.deepEqual([WebSocket.CONNECTING, WebSocket.OPEN, WebSocket.CLOSING, WebSocket.CLOSED], [0, 1, 2, 3]);
      const rec = await open();
      const ws = rec.ws;
      assert.deepEqual([ws.CONNECTING, ws.OPEN, ws.CLOSING, ws.CLOSED], [0, 1, 2, 3]);
      for (const target of [WebSocket, WebSocket.prototype]) {
        const d = Object.getOwnPropertyDescriptor(target, 'OPEN');
        assert.deepEqual(d, { value: 1, writable: false, enumerable: true, configurable: false });
      }
      assert.throws(() => {
        (WebSocket as unknown as { OPEN: number }).OPEN = 5;
      }, TypeError);
      assert.equal(Object.prototype.toString.call(ws), '[object WebSocket]');
      assert.ok(ws instanceof EventTarget);
      ws.close();
      await rec.closed();
    });

    it('exposes the attributes as enumerable accessors on the prototype, as Web IDL does', () => {
      for (const name of ['url', 'readyState', 'bufferedAmount', 'extensions', 'protocol', 'binaryType', 'onopen', 'onmessage', 'onerror', 'onclose']) {
        const d = Object.getOwnPropertyDescriptor(WebSocket.prototype, name);
        assert.ok(d && typeof d.get === 'function' && d.enumerable, name);
      }
      for (const name of ['send', 'close']) assert.equal(Object.getOwnPropertyDescriptor(WebSocket.prototype, name)?.enumerable, true, name);
    });
  });

  // ------------------------------------------------------------- constructor

  describe('constructor', () => {
    it('throws a SyntaxError DOMException for a bad URL, a bad scheme or a fragment, and dials nothing', async () => {
      let dialled = 0;
      const raw = await startRawServer(() => dialled++);
      try {
        const base = `127.0.0.1:${raw.port}`;
        for (const url of ['not a url', '/relative/path', `ftp://${base}/`, `file:///etc/passwd`, `ws://${base}/#`, `ws://${base}/#frag`, `wss://${base}/?q#f`, `http://${base}/#x`]) {
          assert.throws(() => new WebSocket(url), isDomException('SyntaxError'), url);
        }
        assert.throws(() => new (WebSocket as unknown as new () => WebSocket)(), TypeError);
        await delay(50);
        assert.equal(dialled, 0);
        assert.equal(raw.accepted, 0);
      } finally {
        await raw.close();
      }
    });

    it('throws a SyntaxError DOMException for a protocol that is not a token, or repeated (in any case)', () => {
      const url = t.url();
      const bad: Array<string | string[]> = ['', 'a b', 'a,b', 'a;b', 'a/b', 'a"b', '(a)', 'a\tb', 'é', 'a\u0000', ['chat', 'chat'], ['chat', 'CHAT'], ['ok', ''], ['ok', 'not ok']];
      for (const protocols of bad) assert.throws(() => new WebSocket(url, protocols), isDomException('SyntaxError'), JSON.stringify(protocols));
    });

    it('takes http: and https: URLs as ws: and wss:, and url is the ws: form', async () => {
      const rec = new Recorder(new WebSocket(`http://127.0.0.1:${t.port}/a/b?c=d`));
      assert.equal(rec.ws.url, `ws://127.0.0.1:${t.port}/a/b?c=d`);
      await rec.opened();
      rec.ws.close();
      await rec.closed();
      const tls = new Recorder(new WebSocket(`https://127.0.0.1:${t.port}/x`));
      assert.equal(tls.ws.url, `wss://127.0.0.1:${t.port}/x`);
      // A TLS client to a plain server: the handshake fails, which the script sees as error then close 1006.
      assert.deepEqual(await tls.closed(), ['error 3', 'close 3 1006 "" false']);
    });

    it('serializes the URL as the URL parser does, from a string or a URL', async () => {
      const rec = new Recorder(new WebSocket(`WS://127.0.0.1:${t.port}/a/../b c`));
      assert.equal(rec.ws.url, `ws://127.0.0.1:${t.port}/b%20c`);
      rec.ws.close();
      await rec.closed();
      const fromUrl = new Recorder(new WebSocket(new URL(`https://127.0.0.1:${t.port}/u?v`)));
      assert.equal(fromUrl.ws.url, `wss://127.0.0.1:${t.port}/u?v`);
      fromUrl.ws.close();
      await fromUrl.closed();
    });

    it('starts in CONNECTING, with empty protocol and extensions, binaryType blob and nothing buffered', async () => {
      const ws = new WebSocket(t.url(), 'chat');
      const rec = new Recorder(ws);
      assert.equal(ws.readyState, WebSocket.CONNECTING);
      assert.equal(ws.protocol, '');
      assert.equal(ws.extensions, '');
      assert.equal(ws.binaryType, 'blob');
      assert.equal(ws.bufferedAmount, 0);
      for (const h of [ws.onopen, ws.onmessage, ws.onerror, ws.onclose]) assert.equal(h, null);
      await rec.opened();
      ws.close();
      await rec.closed();
    });
  });

  // ------------------------------------------------------- protocol, extensions

  describe('protocol and extensions', () => {
    it('protocol is set when the open event fires, to the subprotocol the server selected', async () => {
      const ws = new WebSocket(t.url(), ['other', 'chat']);
      const seen: string[] = [];
      ws.onopen = () => seen.push(ws.protocol);
      const rec = new Recorder(ws);
      assert.equal(ws.protocol, '');
      await rec.opened();
      assert.deepEqual(seen, ['chat']);
      ws.close();
      await rec.closed();
    });

    it('fails the connection when protocols were offered and the server selected none', async () => {
      // The server knows none of these, so it answers without Sec-WebSocket-Protocol (RFC 6455 allows that; the standard does not).
      const rec = new Recorder(new WebSocket(t.url(), ['unknown-a', 'unknown-b']));
      assert.deepEqual(await rec.closed(), ['error 3', 'close 3 1006 "" false']);
    });

    it('extensions is the Sec-WebSocket-Extensions the server answered, or empty', async () => {
      const plain = await open();
      assert.equal(plain.ws.extensions, '');
      plain.ws.close();
      await plain.closed();
      const raw = await startRawServer((socket, request) => {
        socket.write(switchingProtocols(request.key, { 'Sec-WebSocket-Extensions': 'permessage-deflate;  server_no_context_takeover' }));
        socket.on('data', () => socket.end()); // the client's close frame
      });
      try {
        const ws = new WebSocket(`ws://127.0.0.1:${raw.port}/`, [], { perMessageDeflate: true });
        const rec = new Recorder(ws);
        await rec.opened();
        assert.equal(ws.extensions, 'permessage-deflate;  server_no_context_takeover');
        ws.close();
        // The server hangs up without answering the close frame: not clean.
        assert.deepEqual(await rec.closed(), ['open 1', 'error 3', 'close 3 1006 "" false']);
      } finally {
        await raw.close();
      }
    });

    it('negotiates permessage-deflate with the perMessageDeflate option and echoes through it', async () => {
      const rec = await open('/', [], { perMessageDeflate: true });
      assert.match(rec.ws.extensions, /^permessage-deflate(;|$)/);
      rec.ws.send('x'.repeat(5000));
      await rec.messages(1);
      assert.equal(rec.data[0], 'x'.repeat(5000));
      rec.ws.close();
      assert.equal((await rec.closed()).at(-1), 'close 3 1005 "" true');
    });
  });

  // ------------------------------------------------------------ events, order

  describe('events', () => {
    it('a normal exchange: open, messages in order, then close', async () => {
      const rec = await open();
      const ws = rec.ws;
      ws.binaryType = 'arraybuffer';
      ws.send('hello');
      ws.send(new Uint8Array([1, 2, 3]));
      ws.send('cmd:close 4000 done here');
      assert.deepEqual(await rec.closed(), ['open 1', 'message 1 text:hello', 'message 1 arraybuffer:010203', 'close 3 4000 "done here" true']);
    });

    it('fires every event from a task of its own: nothing inside send() or close()', async () => {
      const rec = await open();
      const ws = rec.ws;
      const before = rec.lines.length;
      ws.send('a');
      ws.close();
      assert.equal(rec.lines.length, before);
      await Promise.resolve();
      assert.equal(rec.lines.length, before, 'an event fired from a microtask of send() or close()');
      assert.deepEqual(await rec.closed(), ['open 1', 'close 3 1005 "" true']);
      // close() while CONNECTING fails the connection at once; its events still wait for a task of their
      // own, after the current one (and after this immediate, queued before).
      let sameTask = true;
      setImmediate(() => (sameTask = false));
      const early = new Recorder(new WebSocket(t.url()));
      const fired: boolean[] = [];
      for (const type of ['error', 'close']) early.ws.addEventListener(type, () => fired.push(sameTask));
      early.ws.close();
      assert.deepEqual(await early.closed(), ['error 3', 'close 3 1006 "" false']);
      assert.deepEqual(fired, [false, false]);
    });

    it('message events carry the origin of the URL and a string, a Blob or an ArrayBuffer', async () => {
      const rec = await open('/path?q=1');
      const ws = rec.ws;
      ws.send('text');
      ws.send(new Uint8Array([0xff, 0]));
      await rec.messages(2);
      ws.binaryType = 'arraybuffer';
      ws.send(new Uint8Array([7]));
      await rec.messages(3);
      const events = rec.events.filter((e): e is MessageEvent => e instanceof MessageEvent);
      for (const e of events) {
        assert.equal(e.origin, `ws://127.0.0.1:${t.port}`);
        assert.equal(e.type, 'message');
        assert.equal(e.target, ws);
      }
      assert.equal(rec.data[0], 'text');
      const blob = rec.data[1];
      assert.ok(blob instanceof Blob);
      assert.equal(blob.size, 2);
      assert.equal(blob.type, '');
      assert.deepEqual([...new Uint8Array(await blob.arrayBuffer())], [0xff, 0]);
      const buffer = rec.data[2];
      assert.ok(buffer instanceof ArrayBuffer);
      assert.equal(buffer.byteLength, 1);
      assert.deepEqual([...new Uint8Array(buffer)], [7]);
      ws.close();
      await rec.closed();
    });

    it('reads binaryType when each message task runs, not when the message came', async () => {
      const rec = await open();
      const ws = rec.ws;
      ws.onmessage = () => {
        ws.binaryType = 'arraybuffer';
      };
      ws.send('cmd:burst-binary');
      await rec.messages(2);
      assert.ok(rec.data[0] instanceof Blob);
      assert.ok(rec.data[1] instanceof ArrayBuffer);
      ws.close();
      await rec.closed();
    });

    it('the server closing with a code and reason: close with them, clean', async () => {
      const rec = await open();
      rec.ws.send('cmd:close 4321 see you');
      assert.deepEqual(await rec.closed(), ['open 1', 'close 3 4321 "see you" true']);
    });

    it('the server closing without a code: close 1005', async () => {
      const rec = await open();
      rec.ws.send('cmd:close-empty');
      assert.deepEqual(await rec.closed(), ['open 1', 'close 3 1005 "" true']);
    });

    it('messages the server sent before its close frame are all delivered, in OPEN', async () => {
      const rec = await open();
      rec.ws.send('cmd:burst');
      assert.deepEqual(await rec.closed(), ['open 1', 'message 1 text:m1', 'message 1 text:m2', 'message 1 text:m3', 'close 3 4001 "after burst" true']);
    });

    it('messages still queued when close() is called are not delivered ("If ready state is not OPEN, then return")', async () => {
      const rec = await open();
      const ws = rec.ws;
      ws.onmessage = () => ws.close(3000);
      ws.send('cmd:burst-open');
      assert.deepEqual(await rec.closed(), ['open 1', 'message 1 text:m1', 'close 3 3000 "" true']);
    });

    it('the server dropping the connection: error, then close 1006, not clean', async () => {
      const rec = await open();
      rec.ws.send('cmd:terminate');
      assert.deepEqual(await rec.closed(), ['open 1', 'error 3', 'close 3 1006 "" false']);
    });

    it('a refused connection: error, then close 1006', async () => {
      const raw = await startRawServer(() => {});
      const port = raw.port;
      await raw.close();
      const rec = new Recorder(new WebSocket(`ws://127.0.0.1:${port}/`));
      assert.deepEqual(await rec.closed(), ['error 3', 'close 3 1006 "" false']);
    });

    it('a handshake refused with 403, or answered 200: error, then close 1006', async () => {
      const rec = new Recorder(new WebSocket(t.url('/forbidden')));
      assert.deepEqual(await rec.closed(), ['error 3', 'close 3 1006 "" false']);
      const raw = await startRawServer((socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'));
      try {
        const rec200 = new Recorder(new WebSocket(`ws://127.0.0.1:${raw.port}/`));
        assert.deepEqual(await rec200.closed(), ['error 3', 'close 3 1006 "" false']);
      } finally {
        await raw.close();
      }
    });

    it('a protocol error from the server: error, then close 1006', async () => {
      const raw = await startRawServer((socket, request) => {
        // A text message that is not UTF-8: the client fails the connection (RFC 6455 section 8.1).
        socket.write(switchingProtocols(request.key));
        socket.write(serverFrame(0x1, Buffer.from([0xc3, 0x28])));
        socket.on('data', () => socket.end()); // the client's close frame
      });
      try {
        const rec = new Recorder(new WebSocket(`ws://127.0.0.1:${raw.port}/`));
        assert.deepEqual(await rec.closed(), ['open 1', 'error 3', 'close 3 1006 "" false']);
      } finally {
        await raw.close();
      }
    });

    it('CloseEvent has the standard defaults and is an Event', () => {
      const plain = new CloseEvent('close');
      assert.ok(plain instanceof Event);
      assert.deepEqual([plain.type, plain.wasClean, plain.code, plain.reason], ['close', false, 0, '']);
      const e = new CloseEvent('close', { wasClean: true, code: 4000, reason: 'r\uD800' });
      assert.deepEqual([e.wasClean, e.code, e.reason], [true, 4000, 'r\uFFFD']);
      assert.equal(new CloseEvent('close', { code: 65537 }).code, 1);
      assert.equal(Object.prototype.toString.call(e), '[object CloseEvent]');
    });
  });

  // ------------------------------------------------------ on* event handlers

  describe('event handler attributes', () => {
    it('hold a function or null; calls them with the WebSocket as this; a non-function is null', async () => {
      const ws = new WebSocket(t.url());
      const rec = new Recorder(ws);
      const calls: string[] = [];
      function onopen(this: WebSocket, event: Event): void {
        assert.equal(this, ws);
        calls.push(`onopen ${event.type}`);
      }
      ws.onopen = onopen;
      assert.equal(ws.onopen, onopen);
      ws.onmessage = 'not a function' as unknown as null;
      assert.equal(ws.onmessage, null);
      ws.onclose = (e) => calls.push(`onclose ${e.code}`);
      ws.onerror = () => calls.push('onerror');
      await rec.opened();
      ws.close();
      await rec.closed();
      assert.deepEqual(calls, ['onopen open', 'onclose 1005']);
    });

    it('keeps its place among the listeners while it changes; null removes it', async () => {
      const rec = await open();
      const ws = rec.ws;
      const order: string[] = [];
      ws.addEventListener('message', () => order.push('A'));
      ws.onmessage = () => order.push('H1');
      ws.addEventListener('message', () => order.push('B'));
      ws.onmessage = () => order.push('H2');
      ws.send('one');
      await rec.messages(1);
      assert.deepEqual(order, ['A', 'H2', 'B']);
      ws.onmessage = null;
      ws.onmessage = () => order.push('H3');
      ws.send('two');
      await rec.messages(2);
      assert.deepEqual(order, ['A', 'H2', 'B', 'A', 'B', 'H3']);
      ws.close();
      await rec.closed();
    });

    it('removeEventListener removes a listener added with addEventListener', async () => {
      const rec = await open();
      const ws = rec.ws;
      let n = 0;
      const listener = (): void => void n++;
      ws.addEventListener('message', listener);
      ws.send('one');
      await rec.messages(1);
      ws.removeEventListener('message', listener);
      ws.send('two');
      await rec.messages(2);
      assert.equal(n, 1);
      ws.close();
      await rec.closed();
    });
  });

  // -------------------------------------------------------------- binaryType

  describe('binaryType', () => {
    it("is 'blob' by default, takes 'arraybuffer' and 'blob', and ignores any other value", async () => {
      const rec = await open();
      const ws = rec.ws;
      assert.equal(ws.binaryType, 'blob');
      ws.binaryType = 'arraybuffer';
      assert.equal(ws.binaryType, 'arraybuffer');
      ws.binaryType = 'nodebuffer' as 'blob';
      assert.equal(ws.binaryType, 'arraybuffer');
      ws.binaryType = '' as 'blob';
      assert.equal(ws.binaryType, 'arraybuffer');
      ws.binaryType = 'blob';
      assert.equal(ws.binaryType, 'blob');
      ws.close();
      await rec.closed();
    });
  });

  // -------------------------------------------------------------------- send

  describe('send()', () => {
    it('throws an InvalidStateError DOMException while CONNECTING and counts nothing', async () => {
      const ws = new WebSocket(t.url());
      const rec = new Recorder(ws);
      assert.throws(() => ws.send('early'), isDomException('InvalidStateError'));
      assert.throws(() => ws.send(new Uint8Array(10)), isDomException('InvalidStateError'));
      assert.equal(ws.bufferedAmount, 0);
      assert.throws(() => (ws.send as () => void)(), TypeError);
      await rec.opened();
      ws.close();
      await rec.closed();
    });

    it('sends strings as text and ArrayBuffers, views and Blobs as binary, in the order of the calls', async () => {
      const rec = await open();
      const ws = rec.ws;
      ws.binaryType = 'arraybuffer';
      const bytes = new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7]);
      ws.send('a');
      ws.send(new Blob([Buffer.from('blob-1')]));
      ws.send(bytes.buffer);
      ws.send(new DataView(bytes.buffer, 2, 3));
      ws.send(new Uint16Array([0x0102]));
      ws.send(new Blob([]));
      ws.send(42 as unknown as string);
      ws.send('é😀');
      await rec.messages(8);
      ws.close();
      assert.deepEqual((await rec.closed()).slice(1, -1), [
        'message 1 text:a',
        `message 1 arraybuffer:${Buffer.from('blob-1').toString('hex')}`,
        'message 1 arraybuffer:0001020304050607',
        'message 1 arraybuffer:020304',
        `message 1 arraybuffer:${Buffer.from(new Uint16Array([0x0102]).buffer).toString('hex')}`,
        'message 1 arraybuffer:',
        'message 1 text:42',
        'message 1 text:é😀',
      ]);
    });

    it('copies the data at the call: changing the buffer afterwards changes nothing sent (S2)', async () => {
      const rec = await open();
      const ws = rec.ws;
      ws.binaryType = 'arraybuffer';
      const bytes = new Uint8Array([1, 2, 3]);
      ws.send(bytes);
      ws.send(new Blob(['x']));
      const behind = new Uint8Array([4, 5, 6]);
      ws.send(behind); // waits behind the Blob: copied now all the same
      bytes.fill(9);
      behind.fill(9);
      await rec.messages(3);
      assert.deepEqual(rec.lines.slice(1, 4), ['message 1 arraybuffer:010203', 'message 1 arraybuffer:78', 'message 1 arraybuffer:040506']);
      ws.close();
      await rec.closed();
    });

    it('a large Blob and what follows it keep their order', async () => {
      const rec = await open();
      const ws = rec.ws;
      ws.binaryType = 'arraybuffer';
      const big = Buffer.alloc(3 << 20, 0xab);
      ws.send('before');
      ws.send(new Blob([big]));
      ws.send('after');
      ws.send(new Blob(['small']));
      ws.send('last');
      await rec.messages(5, 10_000);
      const kinds = rec.data.map((d) => (typeof d === 'string' ? d : (d as ArrayBuffer).byteLength));
      assert.deepEqual(kinds, ['before', 3 << 20, 'after', 5, 'last']);
      assert.ok(Buffer.from(rec.data[1] as ArrayBuffer).equals(big));
      ws.close();
      await rec.closed();
    });

    it('close() behind a Blob being read starts the closing handshake after the messages sent before it', async () => {
      const got: string[] = [];
      let info: CloseInfo | null = null;
      const s = await startServer({
        handler: {
          onMessage(_session, m) {
            got.push(m.binary ? `binary ${m.data.length}` : `text ${m.text}`);
          },
          onClose(_session, i) {
            info = i;
          },
        },
      });
      try {
        const rec = new Recorder(new WebSocket(s.url()));
        await rec.opened();
        const ws = rec.ws;
        ws.send(new Blob([Buffer.alloc(1 << 20)]));
        ws.send('behind');
        ws.close(3003, 'after the blob');
        assert.equal(ws.readyState, WebSocket.CLOSING);
        assert.equal(ws.bufferedAmount, (1 << 20) + 6);
        ws.send('never');
        assert.equal(ws.bufferedAmount, (1 << 20) + 6 + 5);
        assert.deepEqual(await rec.closed(10_000), ['open 1', 'close 3 3003 "" true']);
        await waitUntil(() => info !== null, 5000, 'the server session to close');
        assert.deepEqual(got, ['binary 1048576', 'text behind']);
        assert.deepEqual([info!.code, info!.reason, info!.wasClean], [3003, 'after the blob', true]);
      } finally {
        await s.server.close();
      }
    });
  });

  // ---------------------------------------------------------- bufferedAmount

  describe('bufferedAmount', () => {
    it('grows at once by the UTF-8 size of text and the size of binary data and Blobs, and drains to 0', async () => {
      const rec = await open();
      const ws = rec.ws;
      ws.send('héllo');
      assert.equal(ws.bufferedAmount, 6);
      ws.send(new Uint8Array(10));
      assert.equal(ws.bufferedAmount, 16);
      ws.send(new Blob(['abc']));
      assert.equal(ws.bufferedAmount, 19);
      ws.send(new DataView(new ArrayBuffer(100), 10, 20));
      assert.equal(ws.bufferedAmount, 39);
      // Still within the task that sent: the data counts even if the kernel has taken it.
      await Promise.resolve();
      assert.equal(ws.bufferedAmount, 39);
      await rec.messages(4);
      assert.equal(ws.bufferedAmount, 0);
      ws.close();
      await rec.closed();
    });

    it('keeps growing with sends made while CLOSING and CLOSED, which are never sent', async () => {
      const before = closes.length;
      const rec = await open();
      const ws = rec.ws;
      ws.close(1000);
      ws.send('abcd');
      assert.equal(ws.bufferedAmount, 4);
      ws.send(new Uint8Array(3));
      assert.equal(ws.bufferedAmount, 7);
      assert.deepEqual(await rec.closed(), ['open 1', 'close 3 1000 "" true']);
      assert.equal(ws.bufferedAmount, 7);
      ws.send('xy');
      ws.send(new Blob(['12345']));
      assert.equal(ws.bufferedAmount, 14);
      await delay(20);
      assert.equal(ws.bufferedAmount, 14);
      await waitUntil(() => closes.length > before, 5000, 'the server session to close');
      assert.equal(closes.at(-1)!.code, 1000);
    });

    it('stays up while a server that does not read holds 8 MiB back, and drains once it reads', async () => {
      let session: ServerSession | null = null;
      const s = await startServer({
        handler: {
          onOpen(ss) {
            ss.pauseReading();
            session = ss;
          },
          onMessage(ss, m) {
            ss.send(String(m.data.length));
          },
        },
      });
      try {
        const ws = new WebSocket(s.url());
        const rec = new Recorder(ws);
        await rec.opened();
        ws.send(new Uint8Array(8 << 20));
        assert.equal(ws.bufferedAmount, 8 << 20);
        await delay(300);
        const held = ws.bufferedAmount;
        assert.ok(held > 0 && held <= 8 << 20, `bufferedAmount ${held} while the server does not read`);
        let atMessage = -1;
        ws.onmessage = () => (atMessage = ws.bufferedAmount);
        session!.resumeReading();
        await rec.messages(1, 10_000);
        assert.equal(rec.data[0], String(8 << 20));
        assert.equal(atMessage, 0);
        ws.close();
        await rec.closed();
      } finally {
        await s.server.close();
      }
    });

    it('a send the session cannot queue (maxQueuedBytes) flags the WebSocket as full: error, then close 1006', async () => {
      let serverSession: ServerSession | null = null;
      const s = await startServer({
        handler: {
          onOpen(ss) {
            ss.pauseReading();
            serverSession = ss;
          },
        },
      });
      try {
        const ws = new WebSocket(s.url(), [], { limits: { maxQueuedBytes: 1 << 20 } });
        const rec = new Recorder(ws);
        await rec.opened();
        const chunk = new Uint8Array(256 << 10);
        let sent = 0;
        // The kernel's buffers take a few MiB; past them and the 1 MiB queue, a send is refused, the
        // session is dropped, and readyState leaves OPEN.
        while (sent < 256 << 20 && ws.readyState === WebSocket.OPEN) {
          ws.send(chunk);
          sent += chunk.length;
        }
        assert.ok(sent < 256 << 20, 'no send was refused');
        assert.equal(ws.readyState, WebSocket.CLOSING);
        // The refused send counts in bufferedAmount: it was queued by send() and never transmitted.
        assert.ok(ws.bufferedAmount >= chunk.length, `bufferedAmount ${ws.bufferedAmount}`);
        assert.deepEqual(await rec.closed(), ['open 1', 'error 3', 'close 3 1006 "" false']);
      } finally {
        // The server's side, not reading, has not seen the connection go: it reads again to find out.
        (serverSession as ServerSession | null)?.resumeReading();
        await s.server.close();
      }
    });
  });

  // ------------------------------------------------------------------- close

  describe('close()', () => {
    it('throws an InvalidAccessError DOMException for a code other than 1000 or 3000-4999, in any state', async () => {
      const rec = await open();
      const ws = rec.ws;
      for (const code of [0, 999, 1001, 1005, 1006, 1011, 2999, 5000, 65535, -1, NaN, 70000]) {
        assert.throws(() => ws.close(code), isDomException('InvalidAccessError'), String(code));
      }
      assert.equal(ws.readyState, WebSocket.OPEN);
      ws.close();
      await rec.closed();
      assert.throws(() => ws.close(1001), isDomException('InvalidAccessError'), 'in CLOSED');
    });

    it('throws a SyntaxError DOMException for a reason over 123 UTF-8 bytes, in any state', async () => {
      const rec = await open();
      const ws = rec.ws;
      assert.throws(() => ws.close(1000, 'x'.repeat(124)), isDomException('SyntaxError'));
      assert.throws(() => ws.close(1000, 'é'.repeat(62)), isDomException('SyntaxError'));
      // The code is checked first.
      assert.throws(() => ws.close(1001, 'x'.repeat(124)), isDomException('InvalidAccessError'));
      assert.equal(ws.readyState, WebSocket.OPEN);
      ws.close(1000, 'é'.repeat(61) + 'x');
      await rec.closed();
      assert.throws(() => ws.close(undefined, 'x'.repeat(200)), isDomException('SyntaxError'), 'in CLOSED');
    });

    it('clamps and rounds the code as Web IDL [Clamp] unsigned short does (to nearest, ties to even)', async () => {
      const rec = await open();
      for (const code of [999.4, 4999.5, -0.4, 2999.4]) assert.throws(() => rec.ws.close(code), isDomException('InvalidAccessError'), String(code));
      rec.ws.close();
      await rec.closed();
      for (const [code, sent] of [[3000.5, 3000], [999.5, 1000], [3001.5, 3002], [4998.7, 4999]]) {
        const before = closes.length;
        const r = await open();
        r.ws.close(code);
        assert.equal((await r.closed()).at(-1), `close 3 ${sent} "" true`);
        await waitUntil(() => closes.length > before, 5000, 'the server session to close');
        assert.equal(closes.at(-1)!.code, sent);
      }
    });

    it('from OPEN: CLOSING at once, the code and reason reach the server, close when it answers', async () => {
      const before = closes.length;
      const rec = await open();
      const ws = rec.ws;
      ws.close(4000, 'bye now');
      assert.equal(ws.readyState, WebSocket.CLOSING);
      // The server answers with the code alone (sockeye echoes the code, RFC 6455 section 5.5.1).
      assert.deepEqual(await rec.closed(), ['open 1', 'close 3 4000 "" true']);
      await waitUntil(() => closes.length > before, 5000, 'the server session to close');
      assert.deepEqual([closes.at(-1)!.code, closes.at(-1)!.reason, closes.at(-1)!.wasClean], [4000, 'bye now', true]);
    });

    it('without arguments sends a close frame without a body; a reason alone goes with 1000', async () => {
      let before = closes.length;
      const rec = await open();
      rec.ws.close();
      assert.deepEqual(await rec.closed(), ['open 1', 'close 3 1005 "" true']);
      await waitUntil(() => closes.length > before, 5000, 'the server session to close');
      assert.deepEqual([closes.at(-1)!.code, closes.at(-1)!.reason], [1005, '']);
      before = closes.length;
      const rec2 = await open();
      rec2.ws.close(undefined, 'why');
      assert.deepEqual(await rec2.closed(), ['open 1', 'close 3 1000 "" true']);
      await waitUntil(() => closes.length > before, 5000, 'the server session to close');
      assert.deepEqual([closes.at(-1)!.code, closes.at(-1)!.reason], [1000, 'why']);
    });

    it('from CLOSING and CLOSED does nothing more', async () => {
      const rec = await open();
      const ws = rec.ws;
      ws.close(3001);
      ws.close(3002, 'again');
      ws.close();
      assert.equal(ws.readyState, WebSocket.CLOSING);
      assert.deepEqual(await rec.closed(), ['open 1', 'close 3 3001 "" true']);
      ws.close();
      ws.close(1000, 'x');
      await delay(20);
      assert.deepEqual(rec.lines, ['open 1', 'close 3 3001 "" true']);
      assert.equal(ws.readyState, WebSocket.CLOSED);
    });

    it('from CONNECTING: fails the connection, with CLOSING at once, then error and close 1006, and no open', async () => {
      const rec = new Recorder(new WebSocket(t.url()));
      rec.ws.close(1000, 'never mind');
      assert.equal(rec.ws.readyState, WebSocket.CLOSING);
      assert.deepEqual(rec.lines, []);
      assert.deepEqual(await rec.closed(), ['error 3', 'close 3 1006 "" false']);
      await delay(50);
      assert.deepEqual(rec.lines, ['error 3', 'close 3 1006 "" false']);
    });

    it('from CONNECTING aborts the handshake in progress: the server sees the connection go', async () => {
      let serverSocket: Socket | null = null;
      let raw: RawServer | null = null;
      try {
        raw = await startRawServer((socket) => (serverSocket = socket)); // reads the request, never answers
        const rec = new Recorder(new WebSocket(`ws://127.0.0.1:${raw.port}/`));
        await waitUntil(() => serverSocket !== null, 5000, 'the upgrade request');
        const gone = new Promise<void>((resolve) => serverSocket!.once('close', () => resolve()));
        rec.ws.close();
        await withTimeout(gone, 2000, 'the client to drop the connection');
        assert.deepEqual(await rec.closed(), ['error 3', 'close 3 1006 "" false']);
      } finally {
        await raw?.close();
      }
    });

  });

  // ----------------------------------------------------------------- options

  describe('options (sockeye)', () => {
    it('passes headers to the handshake', async () => {
      const rec = await open('/', [], { headers: { 'X-Test': 'passed' } });
      rec.ws.send('cmd:header');
      await rec.messages(1);
      assert.equal(rec.data[0], 'passed');
      rec.ws.close();
      await rec.closed();
    });

    it('handshakeTimeoutMs bounds the opening handshake: error, then close 1006', async () => {
      const raw = await startRawServer(() => {});
      try {
        const started = Date.now();
        const rec = new Recorder(new WebSocket(`ws://127.0.0.1:${raw.port}/`, [], { handshakeTimeoutMs: 200 }));
        assert.deepEqual(await rec.closed(3000), ['error 3', 'close 3 1006 "" false']);
        assert.ok(Date.now() - started >= 150, 'closed before the timeout');
      } finally {
        await raw.close();
      }
    });

    it('connects over TLS with the tls option', async () => {
      const cert = testCert();
      const s = await startServer({ tls: { key: cert.key, cert: cert.cert }, handler: echoHandler() });
      try {
        const rec = new Recorder(new WebSocket(s.url('/secure'), [], { tls: { ca: cert.ca } }));
        assert.equal(rec.ws.url, s.url('/secure'));
        assert.ok(rec.ws.url.startsWith('wss://'));
        await rec.opened();
        rec.ws.send('over tls');
        await rec.messages(1);
        rec.ws.close();
        assert.deepEqual(await rec.closed(), ['open 1', 'message 1 text:over tls', 'close 3 1005 "" true']);
      } finally {
        await s.server.close();
      }
    });
  });

  // -------------------------------------------------------------- many messages

  it('stops reading while more than 16 x highWaterMark bytes of messages wait for their tasks, and loses none (S3)', async () => {
    let serverSession: ServerSession | null = null;
    const s = await startServer({ handler: { onOpen: (ss) => void (serverSession = ss) } });
    // The client session's pauseReading() and resumeReading() calls, counted on the prototype.
    const { pauseReading, resumeReading } = Session.prototype;
    const calls: string[] = [];
    Session.prototype.pauseReading = function (this: Session) {
      if (this instanceof ClientSession) calls.push('pause');
      pauseReading.call(this);
    };
    Session.prototype.resumeReading = function (this: Session) {
      if (this instanceof ClientSession) calls.push('resume');
      resumeReading.call(this);
    };
    try {
      const rec = new Recorder(new WebSocket(s.url(), [], { limits: { highWaterMark: 16 << 10 } }));
      rec.ws.binaryType = 'arraybuffer';
      await rec.opened();
      rec.ws.onmessage = () => {
        const end = Date.now() + 2; // a slow application
        while (Date.now() < end);
      };
      for (let i = 0; i < 200; i++) serverSession!.send(Buffer.alloc(64 << 10, i));
      await rec.messages(200, 20_000);
      assert.deepEqual(
        rec.data.map((d) => new Uint8Array(d as ArrayBuffer)[100]),
        Array.from({ length: 200 }, (_, i) => i),
      );
      assert.ok(calls.length >= 2 && calls[0] === 'pause', `reading was never paused: ${calls.join(' ')}`);
      assert.deepEqual(calls, calls.map((_, i) => (i % 2 === 0 ? 'pause' : 'resume')));
      rec.ws.close();
      await rec.closed();
    } finally {
      Session.prototype.pauseReading = pauseReading;
      Session.prototype.resumeReading = resumeReading;
      await s.server.close();
    }
  });

  it('delivers a burst of many messages in order, each from its own task', async () => {
    const rec = await open();
    const ws = rec.ws;
    const n = 2000;
    let microtasksBetween = 0;
    let last = -1;
    ws.onmessage = (e) => {
      const i = Number(e.data);
      assert.equal(i, last + 1);
      last = i;
      // A microtask queued by one message's listener runs before the next message event (a task each).
      queueMicrotask(() => {
        if (last === i) microtasksBetween++;
      });
    };
    for (let i = 0; i < n; i++) ws.send(String(i));
    await rec.messages(n, 20_000);
    assert.equal(last, n - 1);
    assert.equal(microtasksBetween, n);
    ws.close();
    await rec.closed();
  });
});
