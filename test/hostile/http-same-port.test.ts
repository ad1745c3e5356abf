/**
 * Hostile input when plain HTTP is served on the WebSocket port (the server
 * option onHttpRequest). The first request on a connection is read by
 * sockeye's own head parser (maxHeadBytes, maxHeaders, handshakeTimeoutMs
 * apply), then handed to an internal node:http server; later requests on a
 * keep-alive connection are parsed by node:http itself, with maxHeaderSize
 * set to maxHeadBytes.
 *
 * | input                                                       | answer |
 * |-------------------------------------------------------------|--------|
 * | a plain GET with 5,000 header fields                        | 431 (sockeye's parser) |
 * | a plain GET trickled one byte a second                      | 408 after handshakeTimeoutMs |
 * | a keep-alive GET, then a second GET with a 20 kB head       | 200, then 431 (node:http's parser) |
 * | a keep-alive GET, then an upgrade with a bad key, then RST  | 200, then 400; the server survives |
 * | a keep-alive GET, then a valid upgrade                      | 200, then 101 and an echo |
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HOSTILE_HEAD, HostileBench, RawClient, encodeRawFrame, expectRejection, upgradeRequest, waitUntil } from './harness.js';

const GET = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}\r\n`;

/** Reads HTTP responses off a raw keep-alive socket (status lines and Content-Length bodies). */
class ResponseReader {
  private buf = '';
  readonly statuses: number[] = [];
  readonly bodies: string[] = [];
  private rawTail = Buffer.alloc(0);
  upgraded = false;
  constructor(raw: RawClient) {
    raw.socket.removeAllListeners('data');
    raw.socket.on('data', (d: Buffer) => this.push(d));
  }
  private push(d: Buffer): void {
    if (this.upgraded) {
      this.rawTail = Buffer.concat([this.rawTail, d]);
      return;
    }
    this.buf += d.toString('latin1');
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = this.buf.slice(0, end);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      if (status === 101) {
        this.statuses.push(101);
        this.upgraded = true;
        this.rawTail = Buffer.from(this.buf.slice(end + 4), 'latin1');
        this.buf = '';
        return;
      }
      if (this.buf.length < end + 4 + length) return;
      this.statuses.push(status);
      this.bodies.push(this.buf.slice(end + 4, end + 4 + length));
      this.buf = this.buf.slice(end + 4 + length);
    }
  }
  get afterUpgrade(): Buffer {
    return this.rawTail;
  }
}

describe('hostile: plain HTTP on the WebSocket port (onHttpRequest)', () => {
  let b: HostileBench;
  before(async () => {
    b = await HostileBench.start({
      onHttpRequest(req, res) {
        res.end(`hello ${req.url}`);
      },
    });
  });
  after(async () => {
    await b.end();
  });

  it('a plain GET with 5,000 header fields: 431 from the first head parser', async (t) => {
    const mark = b.canary.mark();
    const headers = Array.from({ length: 5000 }, (_, i) => `X-H${i}: v\r\n`).join('');
    await expectRejection(b.h.port, GET('/hostile-http', headers), 431);
    await b.assertHealthy(t, mark);
  });

  it(`a plain GET trickled one byte a second: 408 after handshakeTimeoutMs (${HOSTILE_HEAD.handshakeTimeoutMs} ms)`, { timeout: 20_000 }, async (t) => {
    const mark = b.canary.mark();
    const raw = await RawClient.connect(b.h.port);
    const request = Buffer.from(GET('/hostile-http-trickle'));
    let i = 0;
    const timer = setInterval(() => {
      if (!raw.isClosed && i < request.length) raw.write(request.subarray(i, ++i));
    }, 1000);
    try {
      raw.write(request.subarray(0, ++i));
      const r = await raw.waitRejection(HOSTILE_HEAD.handshakeTimeoutMs + 8000);
      assert.equal(r.status, 408);
    } finally {
      clearInterval(timer);
      raw.destroy();
    }
    await b.assertHealthy(t, mark);
  });

  it('a keep-alive GET, then a second request with a 20 kB head: 200, then 431 from node:http', async (t) => {
    const mark = b.canary.mark();
    const raw = await RawClient.connect(b.h.port);
    const reader = new ResponseReader(raw);
    try {
      raw.write(GET('/first'));
      await waitUntil(() => reader.statuses.length === 1, 5000, 'the first answer');
      assert.deepEqual(reader.bodies, ['hello /first']);
      raw.write(GET('/second', `X-Big: ${'b'.repeat(20_000)}\r\n`));
      await waitUntil(() => reader.statuses.length === 2, 5000, 'the second answer');
      assert.deepEqual(reader.statuses, [200, 431]);
      await raw.waitClosed(5000);
    } finally {
      raw.destroy();
    }
    await b.assertHealthy(t, mark);
  });

  it('a keep-alive GET, then an upgrade with a bad key and a reset: 200, then 400; the server survives', async (t) => {
    const mark = b.canary.mark();
    for (let round = 0; round < 20; round++) {
      const raw = await RawClient.connect(b.h.port);
      const reader = new ResponseReader(raw);
      try {
        raw.write(GET('/first'));
        await waitUntil(() => reader.statuses.length === 1, 5000, 'the first answer');
        raw.write(upgradeRequest({ path: '/hostile-http-upgrade', key: 'bad' }));
        await waitUntil(() => reader.statuses.length === 2, 5000, 'the second answer');
        assert.deepEqual(reader.statuses, [200, 400]);
        raw.socket.resetAndDestroy();
      } finally {
        raw.destroy();
      }
    }
    await b.assertHealthy(t, mark);
  });

  it('a keep-alive GET, then a valid upgrade: 200, then 101 and an echo', async (t) => {
    const mark = b.canary.mark();
    const raw = await RawClient.connect(b.h.port);
    const reader = new ResponseReader(raw);
    try {
      raw.write(GET('/first'));
      await waitUntil(() => reader.statuses.length === 1, 5000, 'the first answer');
      raw.write(upgradeRequest({ path: '/hostile-http-ok' }));
      await waitUntil(() => reader.upgraded, 5000, 'the 101');
      raw.write(encodeRawFrame(0x1, 'after HTTP'));
      await waitUntil(() => reader.afterUpgrade.length >= 12, 5000, 'the echo');
      assert.equal(reader.afterUpgrade.subarray(2, 12).toString(), 'after HTTP');
    } finally {
      raw.destroy();
    }
    await b.assertHealthy(t, mark);
  });
});
