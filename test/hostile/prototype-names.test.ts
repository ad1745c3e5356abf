/**
 * Hostile input: names that are also members of Object.prototype
 * (`constructor`, `__proto__`, `toString`, `hasOwnProperty`, `valueOf`,
 * `__defineGetter__`, `isPrototypeOf`) used as subprotocols, extension
 * names, extension parameters and header names. A lookup keyed by a peer's
 * string in a plain object would find a function where it expects a handler
 * or a value, and crash or misroute; sockeye keys everything a peer names by
 * Map or by exact comparison.
 *
 * | input                                                        | answer |
 * |--------------------------------------------------------------|--------|
 * | those names as subprotocols, server with protocols {chat} only | 400 (none supported), no crash |
 * | the same offered with 'chat' last                            | 101, chat chosen |
 * | those names as subprotocols, server with a default handler   | 101, no subprotocol, default handler |
 * | those names as extensions, permessage-deflate on             | 101, all declined (no Sec-WebSocket-Extensions) |
 * | permessage-deflate with those names as parameters            | 101, the offer declined (RFC 7692 section 7) |
 * | such an offer followed by a plain permessage-deflate offer   | 101, the second one accepted |
 * | those names as request header fields                         | 101; Object.prototype untouched |
 *
 * After every case: no report to onError (a 500 would mean a handler lookup
 * threw), Object.prototype has exactly the properties it had, the canary
 * echoes, and a new client connects.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HostileBench, RawClient, encodeRawFrame, expectRejection, upgradeRequest } from './harness.js';

const NAMES = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__', 'isPrototypeOf'];
const prototypeKeys = () => Object.getOwnPropertyNames(Object.prototype).sort().join(',');

async function open(port: number, path: string, headers: Record<string, string>): Promise<RawClient> {
  return RawClient.open(port, { path, headers });
}

describe('hostile: Object.prototype names, server routing only by its protocols map', () => {
  let b: HostileBench;
  const protoBefore = prototypeKeys();
  before(async () => {
    b = await HostileBench.start({ protocolNames: ['chat'], defaultHandler: false, canaryProtocol: 'chat' });
  });
  after(async () => {
    await b.end();
  });

  for (const name of NAMES) {
    it(`subprotocol '${name}' alone: 400 (none supported); never routed to Object.prototype.${name}`, async (t) => {
      const mark = b.canary.mark();
      const r = await expectRejection(b.h.port, upgradeRequest({ path: '/hostile-proto', headers: { 'Sec-WebSocket-Protocol': name } }), 400);
      assert.match(r.body, /none of the offered subprotocols/);
      await b.assertHealthy(t, mark);
    });
  }

  it(`all of them followed by 'chat': 101 choosing chat`, async (t) => {
    const mark = b.canary.mark();
    const raw = await open(b.h.port, '/hostile-proto-chat', { 'Sec-WebSocket-Protocol': [...NAMES, 'chat'].join(', ') });
    try {
      assert.deepEqual(raw.head!.headers.get('sec-websocket-protocol'), ['chat']);
    } finally {
      raw.destroy();
    }
    await b.assertHealthy(t, mark);
  });

  it('nothing was reported to onError and Object.prototype is untouched', () => {
    assert.deepEqual(b.h.errors, []);
    assert.equal(prototypeKeys(), protoBefore);
  });
});

describe('hostile: Object.prototype names, server with a default handler and permessage-deflate', () => {
  let b: HostileBench;
  const protoBefore = prototypeKeys();
  before(async () => {
    b = await HostileBench.start({ perMessageDeflate: true, canaryDeflate: true });
  });
  after(async () => {
    await b.end();
  });

  it('as subprotocols: 101 without Sec-WebSocket-Protocol; the default handler echoes', async (t) => {
    const mark = b.canary.mark();
    const raw = await open(b.h.port, '/hostile-proto-default', { 'Sec-WebSocket-Protocol': NAMES.join(', ') });
    try {
      assert.equal(raw.head!.headers.get('sec-websocket-protocol'), undefined);
      const session = [...b.h.server.clients].find((s) => s.request.path === '/hostile-proto-default');
      assert.equal(session?.protocol, undefined);
      assert.deepEqual(session?.request.protocols, NAMES);
      raw.write(encodeRawFrame(0x1, 'still an echo server'));
      await raw.waitFrames(1);
      assert.equal(raw.frames[0].payload.toString(), 'still an echo server');
    } finally {
      raw.destroy();
    }
    await b.assertHealthy(t, mark);
  });

  const extensionCases: Array<[string, string, string | undefined]> = [
    ['those names as extensions', NAMES.join(', '), undefined],
    ['those names with parameters named after them', NAMES.map((n) => `${n}; ${n}=${n}`).join(', '), undefined],
    ['permessage-deflate with each name as a parameter', NAMES.map((n) => `permessage-deflate; ${n}`).join(', '), undefined],
    ['permessage-deflate with __proto__=1 and constructor=x', 'permessage-deflate; __proto__=1; constructor=x', undefined],
    ['such an offer, then a plain permessage-deflate offer', 'permessage-deflate; __proto__, permessage-deflate', 'permessage-deflate'],
  ];
  for (const [what, header, agreed] of extensionCases) {
    it(`Sec-WebSocket-Extensions with ${what}: 101, ${agreed ?? 'all declined'}`, async (t) => {
      const mark = b.canary.mark();
      const raw = await open(b.h.port, '/hostile-ext', { 'Sec-WebSocket-Extensions': header });
      try {
        assert.deepEqual(raw.head!.headers.get('sec-websocket-extensions'), agreed === undefined ? undefined : [agreed]);
      } finally {
        raw.destroy();
      }
      await b.assertHealthy(t, mark);
    });
  }

  it('as request header names: 101, the values are plain data in request.headers', async (t) => {
    const mark = b.canary.mark();
    // Written by hand: the test helper builds heads from a plain object, where a '__proto__' key would vanish.
    const lines = NAMES.map((n, i) => `${n}: value-${i}\r\n`).join('');
    const raw = await RawClient.connect(b.h.port);
    try {
      raw.write(upgradeRequest({ path: '/hostile-header-names' }).replace(/\r\n\r\n$/, `\r\n${lines}\r\n`));
      assert.equal((await raw.waitHead()).status, 101);
      const session = [...b.h.server.clients].find((s) => s.request.path === '/hostile-header-names');
      assert.ok(session);
      NAMES.forEach((n, i) => assert.deepEqual(session.request.headers.get(n.toLowerCase()), [`value-${i}`]));
      assert.equal(typeof ({} as Record<string, unknown>).constructor, 'function');
    } finally {
      raw.destroy();
    }
    await b.assertHealthy(t, mark);
  });

  it('nothing was reported to onError and Object.prototype is untouched', () => {
    assert.deepEqual(b.h.errors, []);
    assert.equal(prototypeKeys(), protoBefore);
  });
});
