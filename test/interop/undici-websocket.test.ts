/**
 * Differential tests of the standard WebSocket class: each scenario runs
 * against undici's WebSocket (Node's own implementation of the WHATWG
 * WebSockets Standard) and against ours, on the same servers, and the two
 * normalized logs must be equal: every event with the readyState and
 * bufferedAmount its listener sees, code, reason and wasClean, the type and
 * content of message data, and the attributes and exceptions the scenario
 * looks at.
 *
 * Where undici departs from the standard, ours follows the standard; each
 * such place is a test of its own below ("known differences"), which states
 * both behaviours, so that a change on either side is noticed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Blob } from 'node:buffer';
import { createHash } from 'node:crypto';
import { WebSocket as UndiciWebSocket } from 'undici';
import { WebSocket, type ServerHandler, type ServerSession, type WebSocketOptions } from '../../src/index.js';
import { delay, startRawServer, startServer, switchingProtocols, serverFrame, waitUntil, withTimeout, type RawServer, type TestServer } from '../helpers/ws-pair.js';

// ------------------------------------------------------------------ the runner

/** What both classes have, as the scenarios use it. */
interface WebSocketLike extends EventTarget {
  readonly readyState: number;
  readonly bufferedAmount: number;
  readonly url: string;
  readonly protocol: string;
  readonly extensions: string;
  binaryType: string;
  onopen: ((event: Event) => unknown) | null;
  onmessage: ((event: MessageEvent) => unknown) | null;
  send(data: string | ArrayBuffer | ArrayBufferView | Blob): void;
  close(code?: number, reason?: string): void;
}

interface Impl {
  name: 'undici' | 'sockeye';
  create(url: string, protocols?: string | string[], ours?: WebSocketOptions): WebSocketLike;
}

const UNDICI: Impl = {
  name: 'undici',
  create: (url, protocols) => new UndiciWebSocket(url, protocols ?? []) as unknown as WebSocketLike,
};
const SOCKEYE: Impl = {
  name: 'sockeye',
  create: (url, protocols, ours) => new WebSocket(url, protocols ?? [], ours) as unknown as WebSocketLike,
};

/** A message's data as a line: its type and content (large content as its size and SHA-256). */
async function describeData(data: unknown): Promise<string> {
  let kind: string;
  let bytes: Buffer;
  if (typeof data === 'string') {
    kind = 'text';
    bytes = Buffer.from(data, 'utf8');
    if (bytes.length <= 64) return `text:${data}`;
  } else if (data instanceof ArrayBuffer) {
    kind = 'arraybuffer';
    bytes = Buffer.from(data);
  } else if (data instanceof Blob) {
    kind = `blob(type=${JSON.stringify(data.type)})`;
    bytes = Buffer.from(await data.arrayBuffer());
  } else return `unexpected:${Object.prototype.toString.call(data)}`;
  return bytes.length <= 64 ? `${kind}:${bytes.toString('hex')}` : `${kind}:${bytes.length}:${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}`;
}

/** The log of one run: lines pushed by events and by the scenario's script. */
class Log {
  readonly lines: Array<string | Promise<string>> = [];
  note(line: string): void {
    this.lines.push(line);
  }
  /** Runs `fn` and notes the name of what it threw (or 'no exception'). */
  noteThrow(what: string, fn: () => void): void {
    try {
      fn();
      this.note(`${what}: no exception`);
    } catch (err) {
      this.note(`${what}: ${err instanceof DOMException ? `DOMException ${err.name}` : err instanceof Error ? err.constructor.name : String(err)}`);
    }
  }
  async settled(): Promise<string[]> {
    return Promise.all(this.lines);
  }
}

interface Scenario {
  path?: string;
  /** A URL of its own (a raw server's), instead of the test server's `path`. */
  url?: () => string;
  protocols?: string | string[];
  /** Options for ours only (undici has none of these). */
  ours?: WebSocketOptions;
  /** Runs right after the constructor returned. */
  script?(ws: WebSocketLike, log: Log): void;
  /** How long to wait for the close event. */
  timeoutMs?: number;
}

/** Runs `scenario` with `impl`: the log of every event until the close event, and a little after. */
async function run(impl: Impl, url: string, scenario: Scenario): Promise<string[]> {
  const log = new Log();
  const ws = impl.create(url, scenario.protocols, scenario.ours);
  log.note(`init rs=${ws.readyState} url=${ws.url} protocol=${JSON.stringify(ws.protocol)} extensions=${JSON.stringify(ws.extensions)} binaryType=${ws.binaryType} ba=${ws.bufferedAmount}`);
  let closed!: () => void;
  const closedP = new Promise<void>((resolve) => (closed = resolve));
  for (const type of ['open', 'message', 'error', 'close']) {
    ws.addEventListener(type, (event: Event) => {
      let line = `${event.type} rs=${ws.readyState} ba=${ws.bufferedAmount}`;
      if (type === 'open') line += ` protocol=${JSON.stringify(ws.protocol)} extensions=${JSON.stringify(ws.extensions.split(';')[0])}`;
      if (type === 'close') {
        const e = event as Event & { code: number; reason: string; wasClean: boolean };
        log.note(`${line} code=${e.code} reason=${JSON.stringify(e.reason)} wasClean=${e.wasClean}`);
        closed();
      } else if (type === 'message') {
        const e = event as MessageEvent;
        log.lines.push(describeData(e.data).then((d) => `${line} origin=${e.origin} ${d}`));
      } else log.note(line);
    });
  }
  scenario.script?.(ws, log);
  await withTimeout(closedP, scenario.timeoutMs ?? 5000, `${impl.name}: the close event`);
  // Nothing may follow the close event.
  await delay(30);
  log.note(`end rs=${ws.readyState} ba=${ws.bufferedAmount}`);
  return log.settled();
}

/** Runs `scenario` with both implementations, undici first, and returns both logs. */
async function both(url: string, scenario: Scenario): Promise<{ undici: string[]; sockeye: string[] }> {
  const undici = await run(UNDICI, url, scenario);
  const sockeye = await run(SOCKEYE, url, scenario);
  return { undici, sockeye };
}

/** Runs `scenario` with both and requires equal logs; returns ours. */
async function same(url: string, scenario: Scenario): Promise<string[]> {
  const { undici, sockeye } = await both(url, scenario);
  assert.deepEqual(sockeye, undici, `sockeye:\n  ${sockeye.join('\n  ')}\nundici:\n  ${undici.join('\n  ')}`);
  return sockeye;
}

/** Once open, runs `fn` (in the open event's task). */
function onOpen(fn: (ws: WebSocketLike, log: Log) => void): Scenario['script'] {
  return (ws, log) => {
    ws.onopen = () => fn(ws, log);
  };
}

// ------------------------------------------------------------------ the server

/** An echo, with commands in text messages; the '/paused' path pauses reading until the test resumes it. */
function serverHandler(paused: ServerSession[]): ServerHandler {
  return {
    onOpen(session) {
      if (session.request.path === '/paused') {
        session.pauseReading();
        paused.push(session);
      }
    },
    onMessage(session, message) {
      const text = message.binary ? '' : message.text;
      if (session.request.path === '/paused') session.send(`received ${message.data.length}`);
      else if (text.startsWith('cmd:close ')) {
        const [, code, ...reason] = text.split(' ');
        session.close(Number(code), reason.join(' '));
      } else if (text === 'cmd:close-empty') session.close(null);
      else if (text === 'cmd:terminate') session.terminate();
      else if (text === 'cmd:burst') {
        for (const m of ['m1', 'm2', 'm3']) session.send(m);
        session.close(4001, 'after burst');
      } else if (text === 'cmd:burst-open') for (const m of ['m1', 'm2', 'm3']) session.send(m);
      else if (text === 'cmd:binary') {
        session.send(Buffer.from([0xde, 0xad, 0xbe, 0xef]));
        session.send(Buffer.alloc(100_000, 7));
      } else session.send(message.data, { binary: message.binary });
    },
  };
}

describe('the standard WebSocket, ours against undici', () => {
  let t: TestServer;
  const paused: ServerSession[] = [];
  const raws: RawServer[] = [];

  before(async () => {
    t = await startServer({
      handler: serverHandler(paused),
      protocols: { chat: serverHandler(paused) },
      verifyClient: (request) => (request.path === '/forbidden' ? { status: 403, message: 'no' } : true),
    });
  });
  after(async () => {
    await t.server.close();
    for (const raw of raws) await raw.close();
  });

  async function rawServer(onRequest: Parameters<typeof startRawServer>[0]): Promise<string> {
    const raw = await startRawServer(onRequest);
    raws.push(raw);
    return `ws://127.0.0.1:${raw.port}/`;
  }

  // --------------------------------------------------------------- exchanges

  it('a normal echo: text, binary of every kind, then close() with a code and reason', async () => {
    const log = await same(t.url('/echo?x=1'), {
      script: onOpen((ws, log) => {
        ws.binaryType = 'arraybuffer';
        ws.send('hello');
        ws.send('héllo 😀');
        ws.send(new Uint8Array([1, 2, 3]));
        ws.send(new Uint16Array([0x0102, 0x0304]).buffer);
        ws.send(new DataView(new Uint8Array([9, 8, 7, 6]).buffer, 1, 2));
        ws.send(new Blob(['blob!']));
        ws.send('x'.repeat(70_000));
        log.note(`after sends ba=${ws.bufferedAmount}`);
        let n = 0;
        ws.onmessage = () => {
          if (++n === 7) ws.close(1000, 'done');
        };
      }),
    });
    assert.equal(log.filter((l) => l.startsWith('message')).length, 7);
    assert.ok(log.includes(`after sends ba=${5 + 11 + 3 + 4 + 2 + 5 + 70_000}`), log.join('\n'));
  });

  it('permessage-deflate negotiated (ours with perMessageDeflate: true, as a browser offers it)', async () => {
    const s = await startServer({ handler: serverHandler(paused), perMessageDeflate: true });
    try {
      const log = await same(s.url(), {
        ours: { perMessageDeflate: true },
        script: onOpen((ws) => {
          ws.send('z'.repeat(10_000));
          ws.onmessage = () => ws.close();
        }),
      });
      assert.ok(log.some((l) => l.startsWith('open') && l.includes('extensions="permessage-deflate"')), log.join('\n'));
    } finally {
      await s.server.close();
    }
  });

  it('a subprotocol the server selects is in protocol from the open event on', async () => {
    const log = await same(t.url(), { protocols: ['other', 'chat'], script: onOpen((ws) => ws.close()) });
    assert.ok(log[1].startsWith('open rs=1 ba=0 protocol="chat"'), log[1]);
  });

  it('protocols offered and none selected: the connection fails', async () => {
    // A server of its own: undici leaves this connection open (a known difference, below).
    const s = await startServer({ handler: serverHandler(paused) });
    try {
      await same(s.url(), { protocols: ['unknown-protocol'] });
    } finally {
      for (const session of s.server.clients) session.terminate();
      await s.server.close();
    }
  });

  for (const binaryType of ['blob', 'arraybuffer']) {
    it(`binary messages with binaryType '${binaryType}'`, async () => {
      const log = await same(t.url(), {
        script: (ws) => {
          ws.binaryType = binaryType;
          ws.onopen = () => ws.send('cmd:binary');
          let n = 0;
          ws.onmessage = () => {
            if (++n === 2) ws.close(3000, binaryType);
          };
        },
      });
      assert.ok(log.some((l) => l.includes(binaryType === 'blob' ? 'blob(type="")' : 'arraybuffer:deadbeef')), log.join('\n'));
    });
  }

  it('the server closing with a code and a reason', async () => {
    await same(t.url(), { script: onOpen((ws) => ws.send('cmd:close 4001 going away')) });
  });

  it('the server closing without a code (1005)', async () => {
    await same(t.url(), { script: onOpen((ws) => ws.send('cmd:close-empty')) });
  });

  it('the server sending messages and its close frame at once: every message, then close', async () => {
    const log = await same(t.url(), { script: onOpen((ws) => ws.send('cmd:burst')) });
    assert.equal(log.filter((l) => l.startsWith('message rs=1')).length, 3);
  });

  it('messages behind close() are not delivered', async () => {
    const log = await same(t.url(), {
      script: onOpen((ws) => {
        ws.onmessage = () => ws.close(3001, 'enough');
        ws.send('cmd:burst-open');
      }),
    });
    assert.equal(log.filter((l) => l.startsWith('message')).length, 1);
  });

  it('the server dropping the connection without a close frame', async () => {
    await same(t.url(), { script: onOpen((ws) => ws.send('cmd:terminate')) });
  });

  it('text that is not UTF-8 from the server: the client fails the connection', async () => {
    const url = await rawServer((socket, request) => {
      socket.write(switchingProtocols(request.key));
      socket.write(serverFrame(0x1, Buffer.from([0xc3, 0x28])));
      socket.on('data', () => socket.end());
    });
    await same(url, {});
  });

  // ----------------------------------------------------- failed connections

  it('a refused connection', async () => {
    const raw = await startRawServer(() => {});
    const port = raw.port;
    await raw.close();
    await same(`ws://127.0.0.1:${port}/`, {});
  });

  it('a handshake answered 403', async () => {
    await same(t.url('/forbidden'), {});
  });

  it('a handshake answered 200 with a page', async () => {
    const url = await rawServer((socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 9\r\nConnection: close\r\n\r\n<p>hi</p>'));
    await same(url, {});
  });

  it('a 101 with a wrong Sec-WebSocket-Accept', async () => {
    const url = await rawServer((socket) => socket.write(switchingProtocols('AAAAAAAAAAAAAAAAAAAAAA==')));
    await same(url, {});
  });

  // ------------------------------------------------------------ close(), states

  it('close() while OPEN: CLOSING at once, then the server answer', async () => {
    await same(t.url(), {
      script: onOpen((ws, log) => {
        ws.close(3000, 'bye');
        log.note(`after close() rs=${ws.readyState}`);
      }),
    });
  });

  it('close() while CLOSING does nothing more', async () => {
    await same(t.url(), {
      script: onOpen((ws, log) => {
        ws.close(3000, 'first');
        ws.close(3001, 'second');
        ws.close();
        log.note(`after close() x3 rs=${ws.readyState}`);
      }),
    });
  });

  it('close() while CLOSED does nothing, but still checks its arguments', async () => {
    const check = (ws: WebSocketLike, log: Log): void => {
      log.noteThrow('close()', () => ws.close());
      log.noteThrow('close(1000, ok)', () => ws.close(1000, 'ok'));
      log.noteThrow('close(1001)', () => ws.close(1001));
      log.noteThrow('close(1000, 124 bytes)', () => ws.close(1000, 'x'.repeat(124)));
      log.note(`rs=${ws.readyState}`);
    };
    const logs = await Promise.all(
      [UNDICI, SOCKEYE].map(async (impl) => {
        const log = new Log();
        const ws = impl.create(t.url());
        await withTimeout(new Promise((resolve) => ws.addEventListener('open', resolve)), 5000, 'open');
        ws.close();
        await withTimeout(new Promise((resolve) => ws.addEventListener('close', resolve)), 5000, 'close');
        let late = 0;
        for (const type of ['open', 'message', 'error', 'close']) ws.addEventListener(type, () => late++);
        check(ws, log);
        await delay(30);
        log.note(`events after: ${late}`);
        return log.settled();
      }),
    );
    assert.deepEqual(logs[1], logs[0]);
    assert.deepEqual(logs[1], [
      'close(): no exception',
      'close(1000, ok): no exception',
      'close(1001): DOMException InvalidAccessError',
      'close(1000, 124 bytes): DOMException SyntaxError',
      'rs=3',
      'events after: 0',
    ]);
  });

  it('close() while CONNECTING: error, then close 1006, and no open (the order of the events)', async () => {
    const scenario: Scenario = {
      script: (ws, log) => {
        ws.close();
        log.note('close() returned');
      },
    };
    const { undici, sockeye } = await both(t.url(), scenario);
    // The same events, readyStates and codes; where close() returned among them is a known difference (below).
    const events = (log: string[]): string[] => log.filter((l) => l !== 'close() returned' && !l.startsWith('end'));
    assert.deepEqual(events(sockeye), events(undici));
    assert.deepEqual(events(sockeye).slice(1), ['error rs=3 ba=0', 'close rs=3 ba=0 code=1006 reason="" wasClean=false']);
  });

  it('send() while CONNECTING throws InvalidStateError and counts nothing', async () => {
    await same(t.url(), {
      script: (ws, log) => {
        log.noteThrow('send(text)', () => ws.send('early'));
        log.noteThrow('send(bytes)', () => ws.send(new Uint8Array(4)));
        log.note(`ba=${ws.bufferedAmount}`);
        ws.onopen = () => ws.close();
      },
    });
  });

  it('close() arguments: the codes and reasons refused, and the code sent', async () => {
    await same(t.url(), {
      script: onOpen((ws, log) => {
        for (const code of [0, 999, 1001, 1005, 1015, 2999, 5000, 65535]) log.noteThrow(`close(${code})`, () => ws.close(code));
        log.noteThrow('close(1000, 124 ASCII bytes)', () => ws.close(1000, 'x'.repeat(124)));
        log.noteThrow('close(1000, 124 UTF-8 bytes)', () => ws.close(1000, 'é'.repeat(62)));
        log.noteThrow('close(4999, 123 bytes)', () => ws.close(4999, 'é'.repeat(61) + 'x'));
        log.note(`rs=${ws.readyState}`);
      }),
    });
  });

  // ------------------------------------------------------------- bufferedAmount

  it('8 MiB to a server that does not read: bufferedAmount stays up, then drains once it reads', async () => {
    const scenario: Scenario = {
      path: '/paused',
      timeoutMs: 15_000,
      script: onOpen((ws, log) => {
        ws.send(new Uint8Array(8 << 20));
        log.note(`after send ba=${ws.bufferedAmount}`);
        setTimeout(() => {
          const ba = ws.bufferedAmount;
          log.note(`after 300 ms: ${ba > 0 && ba <= 8 << 20 ? 'held back' : `ba=${ba}`}`);
          const session = paused.shift();
          assert.ok(session, 'no server session');
          session.resumeReading();
        }, 300);
        ws.onmessage = () => ws.close();
      }),
    };
    const log = await same(t.url('/paused'), scenario);
    assert.ok(log.includes(`after send ba=${8 << 20}`), log.join('\n'));
    assert.ok(log.includes('after 300 ms: held back'), log.join('\n'));
  });

  it('bufferedAmount counts text as UTF-8 at once, and is 0 once the echoes are back', async () => {
    await same(t.url(), {
      script: onOpen((ws, log) => {
        ws.send('héllo');
        log.note(`ba=${ws.bufferedAmount}`);
        ws.send(new Uint8Array(10));
        log.note(`ba=${ws.bufferedAmount}`);
        ws.send(new Blob(['abc']));
        log.note(`ba=${ws.bufferedAmount}`);
        let n = 0;
        ws.onmessage = () => {
          if (++n === 3) setTimeout(() => ws.close(), 10);
        };
      }),
    });
  });

  // ------------------------------------------------------------ constructor

  it('the constructor: the same URLs and protocols refused, with the same exceptions', async () => {
    const base = `127.0.0.1:${t.port}`;
    const cases: Array<[string, string | string[]]> = [
      ['not a url', []],
      ['/relative', []],
      [`ftp://${base}/`, []],
      [`ws://${base}/#`, []],
      [`ws://${base}/#frag`, []],
      [`http://${base}/#x`, []],
      [`ws://${base}/`, ''],
      [`ws://${base}/`, 'a b'],
      [`ws://${base}/`, 'a,b'],
      [`ws://${base}/`, ['a', 'a']],
      [`ws://${base}/`, ['a', 'A']],
      [`ws://${base}/`, ['é']],
      [`ws://${base}/`, ['a{']],
    ];
    const outcome = (impl: Impl): string[] =>
      cases.map(([url, protocols]) => {
        try {
          impl.create(url, protocols).close();
          return `${url} ${JSON.stringify(protocols)}: created`;
        } catch (err) {
          return `${url} ${JSON.stringify(protocols)}: ${err instanceof DOMException ? err.name : String(err)}`;
        }
      });
    const ours = outcome(SOCKEYE);
    assert.deepEqual(ours, outcome(UNDICI));
    assert.ok(ours.every((line) => line.endsWith('SyntaxError')), ours.join('\n'));
  });

  it('http: and https: URLs are taken as ws: and wss:', async () => {
    await same(`http://127.0.0.1:${t.port}/from-http?q`, { script: onOpen((ws) => ws.close()) });
    await same(`https://127.0.0.1:${t.port}/from-https`, {});
  });

  // --------------------------------------------------------- known differences

  describe('known differences (ours follows the WebSockets Standard)', () => {
    it('close() while CONNECTING: undici fires error and close inside close() and is left CLOSING; ours fires them from tasks, then CLOSED', async () => {
      const { undici, sockeye } = await both(t.url(), {
        script: (ws, log) => {
          ws.close();
          log.note(`close() returned rs=${ws.readyState}`);
        },
      });
      const init = `init rs=0 url=${t.url()} protocol="" extensions="" binaryType=blob ba=0`;
      const error = 'error rs=3 ba=0';
      const close = 'close rs=3 ba=0 code=1006 reason="" wasClean=false';
      // The standard queues a task for the close event ("When the WebSocket connection is closed ... queue a task").
      assert.deepEqual(undici, [init, error, close, 'close() returned rs=2', 'end rs=2 ba=0']);
      assert.deepEqual(sockeye, [init, 'close() returned rs=2', error, close, 'end rs=3 ba=0']);
    });

    it('send() while CLOSING or CLOSED: undici leaves bufferedAmount alone; ours adds the size, as the standard requires', async () => {
      const { undici, sockeye } = await both(t.url(), {
        script: onOpen((ws, log) => {
          ws.close();
          ws.send('abcd');
          log.note(`CLOSING ba=${ws.bufferedAmount}`);
          ws.addEventListener('close', () => {
            ws.send(new Uint8Array(3));
            log.note(`CLOSED ba=${ws.bufferedAmount}`);
          });
        }),
      });
      const notes = (log: string[]): string[] => log.filter((l) => / ba=/.test(l) && (l.startsWith('CLOS') || l.startsWith('end')));
      assert.deepEqual(notes(undici), ['CLOSING ba=0', 'CLOSED ba=0', 'end rs=3 ba=0']);
      assert.deepEqual(notes(sockeye), ['CLOSING ba=4', 'CLOSED ba=7', 'end rs=3 ba=7']);
    });

    it("binaryType set to a value that is not 'blob' or 'arraybuffer': undici sets 'blob'; ours ignores it (Web IDL enumeration)", async () => {
      const results = await Promise.all(
        [UNDICI, SOCKEYE].map(async (impl) => {
          const ws = impl.create(t.url());
          ws.binaryType = 'arraybuffer';
          ws.binaryType = 'nodebuffer';
          const seen = ws.binaryType;
          // Listening first: undici fires close inside close() while CONNECTING.
          const closed = new Promise((resolve) => ws.addEventListener('close', resolve));
          ws.close();
          await withTimeout(closed, 5000, 'close');
          return seen;
        }),
      );
      assert.deepEqual(results, ['blob', 'arraybuffer']);
    });

    it('protocols offered and none selected: undici fails the connection but leaves its TCP connection open; ours closes it', async () => {
      const s = await startServer({ handler: serverHandler(paused) });
      try {
        const left: number[] = [];
        for (const impl of [UNDICI, SOCKEYE]) {
          const before = s.server.clients.size;
          const ws = impl.create(s.url(), ['unknown-protocol']);
          await withTimeout(new Promise((resolve) => ws.addEventListener('close', resolve)), 5000, 'close');
          if (impl === SOCKEYE) await waitUntil(() => s.server.clients.size === before, 2000, 'the server session to close');
          else await delay(300);
          left.push(s.server.clients.size - before);
        }
        assert.deepEqual(left, [1, 0]);
      } finally {
        // Undici's connection, left open: dropped here rather than closed with a handshake it never answers.
        for (const session of s.server.clients) session.terminate();
        await s.server.close();
      }
    });

    it('the error event: undici fires an ErrorEvent; ours a plain Event, as the standard says ("fire an event named error")', async () => {
      const kinds = await Promise.all(
        [UNDICI, SOCKEYE].map(async (impl) => {
          const ws = impl.create(t.url('/forbidden'));
          const error = new Promise<Event>((resolve) => ws.addEventListener('error', resolve));
          const closed = new Promise((resolve) => ws.addEventListener('close', resolve));
          const e = await withTimeout(error, 5000, 'error');
          await withTimeout(closed, 5000, 'close');
          return `${e.constructor.name} ${e instanceof Event}`;
        }),
      );
      assert.deepEqual(kinds, ['ErrorEvent true', 'Event true']);
    });
  });

  it('leaves no server session behind', async () => {
    await waitUntil(() => t.server.clients.size === 0, 5000, 'every server session to close');
  });
});
