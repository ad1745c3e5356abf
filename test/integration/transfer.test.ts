/**
 * send(data, { transfer: true }): the explicit ownership transfer that
 * invariant S2 allows. The bytes are sent from the caller's memory without a
 * copy; without it they are copied before send() returns and the caller's
 * buffer is never touched. Over real sockets, both roles, with and without
 * permessage-deflate.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { testCert } from '../helpers/certs.js';
import { openPair, pseudoRandomBytes, withTimeout } from '../helpers/ws-pair.js';

const next = async (it: AsyncIterableIterator<{ data: Buffer; binary: boolean }>) => (await withTimeout(it.next(), 5000, 'a message')).value!;

describe('send() with transfer', () => {
  it('a server transfers large, small and text payloads; each arrives intact', async () => {
    const p = await openPair({ handler: {} });
    try {
      const inbox = p.client.messages();
      const large = pseudoRandomBytes(300_000, 1);
      const small = pseudoRandomBytes(40, 2);
      const text = Buffer.from('transferred text: é€😀', 'utf8');
      const copies = [Buffer.from(large), Buffer.from(small), Buffer.from(text)];
      assert.notEqual(p.serverSession.send(large, { transfer: true }), 'dropped');
      assert.notEqual(p.serverSession.send(small, { transfer: true }), 'dropped');
      assert.notEqual(p.serverSession.send(text, { binary: false, transfer: true }), 'dropped');
      const got = [await next(inbox), await next(inbox), await next(inbox)];
      assert.ok(got[0].data.equals(copies[0]) && got[0].binary);
      assert.ok(got[1].data.equals(copies[1]) && got[1].binary);
      assert.ok(got[2].data.equals(copies[2]) && !got[2].binary);
      // A server frame is never masked: the transferred buffer is sent as it is.
      assert.ok(large.equals(copies[0]));
    } finally {
      await p.cleanup();
    }
  });

  it('over wss, transferred frames (written header and payload apart, not joined by node:tls) arrive intact and in order among small ones', async () => {
    const cert = testCert();
    const p = await openPair({ handler: {}, tls: { key: cert.key, cert: cert.cert } }, { tls: { ca: cert.ca } });
    try {
      const inbox = p.client.messages();
      const sent: Buffer[] = [];
      for (let i = 0; i < 24; i++) {
        // 16 KiB and up go header and payload apart over TLS; the small ones in between are corked as usual.
        const size = i % 3 === 0 ? 40 : i % 3 === 1 ? 16 * 1024 + i : 1024 * 1024 + i;
        const payload = pseudoRandomBytes(size, 100 + i);
        sent.push(Buffer.from(payload));
        assert.notEqual(p.serverSession.send(payload, { transfer: true }), 'dropped');
      }
      for (let i = 0; i < sent.length; i++) {
        const got = await next(inbox);
        assert.ok(got.data.equals(sent[i]), `message ${i} (${sent[i].length} bytes) intact and in order`);
      }
      await withTimeout(new Promise<void>((resolve) => {
        const check = () => (p.serverSession.bufferedAmount === 0 ? resolve() : setTimeout(check, 5));
        check();
      }), 5000, 'bufferedAmount back to 0');
    } finally {
      await p.cleanup();
    }
  });

  it('a client transfers a large payload: no copy (it is masked in place, RFC 6455 section 5.3) and the server gets the original', async () => {
    const p = await openPair({});
    try {
      const inbox = p.client.messages();
      const payload = pseudoRandomBytes(200_000, 3);
      const original = Buffer.from(payload);
      assert.notEqual(p.client.send(payload, { transfer: true }), 'dropped');
      // The caller's memory went on the wire: it now holds the masked bytes.
      assert.equal(payload.equals(original), false, 'the transferred buffer was masked in place');
      const echo = await next(inbox);
      assert.ok(echo.data.equals(original), 'the server received (and echoed) the original bytes');
    } finally {
      await p.cleanup();
    }
  });

  it('without transfer the caller keeps its buffer: untouched by a client send, and reusable at once', async () => {
    const p = await openPair({});
    try {
      const inbox = p.client.messages();
      const payload = pseudoRandomBytes(200_000, 4);
      const original = Buffer.from(payload);
      assert.notEqual(p.client.send(payload), 'dropped');
      assert.ok(payload.equals(original), 'a copy was masked, not the caller buffer');
      payload.fill(0);
      assert.ok((await next(inbox)).data.equals(original));
    } finally {
      await p.cleanup();
    }
  });

  it('transfer through permessage-deflate, both ways', async () => {
    const p = await openPair({ perMessageDeflate: true }, { perMessageDeflate: true });
    try {
      assert.deepEqual(p.client.extensions, ['permessage-deflate']);
      const inbox = p.client.messages();
      const text = Buffer.from('compressible '.repeat(5000));
      const copy = Buffer.from(text);
      assert.notEqual(p.client.send(text, { binary: false, transfer: true }), 'dropped');
      const echo = await next(inbox);
      assert.equal(echo.binary, false);
      assert.ok(echo.data.equals(copy));
      const back = Buffer.from(copy);
      assert.notEqual(p.serverSession.send(back, { binary: false, transfer: true }), 'dropped');
      assert.ok((await next(inbox)).data.equals(copy));
    } finally {
      await p.cleanup();
    }
  });
});
