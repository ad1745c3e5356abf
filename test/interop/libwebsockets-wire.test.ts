/**
 * libwebsockets' wire habits, replayed byte for byte by raw peers, so they
 * are tested even where libwebsockets is not installed.
 *
 * libwebsockets-test-server sends an lws-status list (compressed when
 * permessage-deflate was agreed) right before its close frame and then
 * closes TCP: all three can arrive in one read. The message is still being
 * inflated (asynchronously, RFC 7692) when the close frame and the FIN are
 * seen; the session must deliver the message, report a clean close, and not
 * throw (a throw in the socket's 'close' listener would crash the process).
 * test/interop/libwebsockets.test.ts meets the same habit from the real peer.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { constants, deflateRawSync } from 'node:zlib';
import { connect, createServer, type CloseInfo, type Message } from '../../src/index.js';
import { RawClient, encodeRawFrame, closePayload, startRawServer, switchingProtocols, withTimeout } from '../helpers/ws-pair.js';

/** RFC 7692 section 7.2.1: compress, flush, drop the final 00 00 ff ff. */
function compress(text: string): Buffer {
  const z = deflateRawSync(Buffer.from(text, 'utf8'), { finishFlush: constants.Z_SYNC_FLUSH });
  return z.subarray(0, z.length - 4);
}

const RSV1 = 0b100;

describe('compressed message, close frame and FIN in one read', () => {
  it('client side: the message is delivered and the close is clean', async () => {
    const text = JSON.stringify({ version: '4.1.6-', wss_over_h2: '0', conns: [{ peer: '127.0.0.1' }] });
    const server = await startRawServer((socket, req) => {
      const answer = Buffer.from(switchingProtocols(req.key, { 'Sec-WebSocket-Protocol': 'lws-status', 'Sec-WebSocket-Extensions': 'permessage-deflate' }), 'latin1');
      const message = encodeRawFrame(0x1, compress(text), { mask: null, rsv: RSV1 });
      const close = encodeRawFrame(0x8, closePayload(1000), { mask: null });
      socket.end(Buffer.concat([answer, message, close]));
    });
    try {
      for (let round = 0; round < 5; round++) {
        const c = await connect(`ws://127.0.0.1:${server.port}/`, { protocol: 'lws-status', perMessageDeflate: true });
        assert.deepEqual(c.extensions, ['permessage-deflate']);
        const got: string[] = [];
        for await (const m of c.messages()) got.push(m.text);
        const info = await withTimeout(c.closed, 10_000, 'the close');
        assert.deepEqual(got, [text]);
        assert.equal(info.code, 1000);
        assert.equal(info.wasClean, true);
      }
    } finally {
      await server.close();
    }
  });

  it('server side: the message reaches the handler and onClose reports a clean close', async () => {
    const seen: Message[] = [];
    const closes: CloseInfo[] = [];
    const server = createServer({
      port: 0,
      perMessageDeflate: true,
      handler: {
        onMessage: (_s, m) => void seen.push(m),
        onClose: (_s, info) => void closes.push(info),
      },
    });
    const { port } = await server.listen();
    try {
      for (let round = 0; round < 5; round++) {
        const raw = await RawClient.open(port, { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate' } });
        assert.equal(raw.head?.headers.get('sec-websocket-extensions')?.[0], 'permessage-deflate');
        raw.socket.end(Buffer.concat([encodeRawFrame(0x1, compress(`round ${round}`), { rsv: RSV1 }), encodeRawFrame(0x8, closePayload(1000))]));
        await raw.waitClosed(10_000);
        const deadline = Date.now() + 10_000;
        while (closes.length <= round && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
        assert.equal(closes.length, round + 1);
        assert.equal(seen.at(-1)?.text, `round ${round}`);
        assert.equal(closes[round].code, 1000);
        assert.equal(closes[round].wasClean, true);
      }
    } finally {
      await server.close();
    }
  });
});
