/**
 * Echo over real sockets, our client against our server, over ws:// and
 * wss://: whole messages of every length-encoding boundary (RFC 6455 section
 * 5.2: 7-bit up to 125, 16-bit from 126 to 65535, 64-bit from 65536), up to
 * 64 MiB, and fragmented messages (section 5.4) sent with stream() and
 * sendStream() and received either whole or piece by piece (onFragment).
 * Content is checked with SHA-256, never by length alone.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect, type ClientSession, type Fragment, type Message, type ServerOptions } from '../../src/index.js';
import { testCert } from '../helpers/certs.js';
import { openPair, pseudoRandomBytes, sha256, startServer, utf8Text, withTimeout, type Pair, type TestServer } from '../helpers/ws-pair.js';

const MiB = 1024 * 1024;
const BIG_LIMIT = 80 * MiB;

async function nextMessage(client: ClientSession, ms = 30_000): Promise<Message> {
  const r = await withTimeout(client.messages().next(), ms, 'a message');
  assert.equal(r.done, false, 'the connection ended before the message arrived');
  return r.value as Message;
}

const SIZES = [0, 1, 125, 126, 65535, 65536, MiB, 16 * MiB];

for (const scheme of ['ws', 'wss'] as const) {
  describe(`echo over ${scheme}://`, () => {
    let pair: Pair;
    const cert = scheme === 'wss' ? testCert() : null;

    before(async () => {
      const serverOptions: ServerOptions = { limits: { maxMessageBytes: BIG_LIMIT } };
      if (cert) serverOptions.tls = { key: cert.key, cert: cert.cert };
      pair = await openPair(serverOptions, { limits: { maxMessageBytes: BIG_LIMIT }, ...(cert ? { tls: { ca: cert.ca } } : {}) });
    });
    after(async () => {
      await pair.cleanup();
    });

    it('negotiated the connection over the right transport', () => {
      assert.equal(pair.serverSession.request.secure, scheme === 'wss');
      assert.equal(pair.client.url.protocol, `${scheme}:`);
    });

    for (const size of SIZES) {
      it(`binary message of ${size} bytes comes back identical`, async () => {
        const payload = pseudoRandomBytes(size, size + 7);
        const digest = sha256(payload);
        const status = pair.client.send(payload);
        assert.notEqual(status, 'dropped');
        const m = await nextMessage(pair.client);
        assert.equal(m.binary, true);
        assert.equal(m.data.length, size);
        assert.equal(sha256(m.data), digest);
      });

      it(`text message of ${size} UTF-8 bytes comes back identical`, async () => {
        const text = utf8Text(size, size + 3);
        const digest = sha256(text);
        assert.notEqual(pair.client.send(text), 'dropped');
        const m = await nextMessage(pair.client);
        assert.equal(m.binary, false);
        assert.equal(m.data.length, size);
        assert.equal(sha256(m.data), digest);
        if (size <= 65536) assert.equal(m.text, text);
      });
    }

    // 64 MiB once per transport, one binary and one text, to keep the run short.
    const big = scheme === 'ws' ? 'binary' : 'text';
    it(`${big} message of 64 MiB comes back identical`, { timeout: 60_000 }, async () => {
      const size = 64 * MiB;
      const payload: string | Buffer = big === 'binary' ? pseudoRandomBytes(size, 64) : utf8Text(size, 64);
      const digest = sha256(payload);
      assert.notEqual(pair.client.send(payload), 'dropped');
      const m = await nextMessage(pair.client, 50_000);
      assert.equal(m.binary, big === 'binary');
      assert.equal(m.data.length, size);
      assert.equal(sha256(m.data), digest);
    });

    it('a message sent with sendStream() in many fragments arrives whole and identical', async () => {
      const chunk = 64 * 1024;
      const total = 4 * MiB;
      const source = pseudoRandomBytes(total, 11);
      async function* pieces(): AsyncGenerator<Uint8Array> {
        for (let off = 0; off < total; off += chunk) yield source.subarray(off, off + chunk);
      }
      await withTimeout(pair.client.sendStream(pieces()), 20_000, 'sendStream');
      const m = await nextMessage(pair.client);
      assert.equal(m.binary, true);
      assert.equal(m.data.length, total);
      assert.equal(sha256(m.data), sha256(source));
    });

    it('a text message written with stream() (a character split across fragments) arrives whole', async () => {
      const euro = Buffer.from('€', 'utf8'); // 3 bytes: the fragment boundary falls inside it
      const w = pair.client.stream({ binary: false });
      assert.notEqual(w.write('price: '), 'dropped');
      assert.notEqual(w.write(new Uint8Array(0)), 'dropped'); // an empty continuation frame is legal
      assert.notEqual(w.write(euro.subarray(0, 1)), 'dropped');
      assert.notEqual(w.write(euro.subarray(1)), 'dropped');
      // A message sent while the stream is open goes after it (frames of two messages never interleave, section 5.4).
      assert.notEqual(pair.client.send('after the stream'), 'dropped');
      assert.notEqual(w.end('42'), 'dropped');
      const m = await nextMessage(pair.client);
      assert.equal(m.binary, false);
      assert.equal(m.text, 'price: €42');
      const m2 = await nextMessage(pair.client);
      assert.equal(m2.text, 'after the stream');
    });
  });
}

/**
 * The server streams to the client (stream()/sendStream() on the server's
 * side) and receives piece by piece (onFragment): it hashes as it goes and
 * never holds the message whole.
 */
for (const scheme of ['ws', 'wss'] as const) {
  describe(`fragments over ${scheme}:// (server streams and receives piece by piece)`, () => {
    let t: TestServer;
    let client: ClientSession;
    const cert = scheme === 'wss' ? testCert() : null;

    interface Receipt {
      sha: string;
      bytes: number;
      fragments: number;
      maxFragment: number;
      binary: boolean;
      firstFlags: number;
      lastFlags: number;
    }

    before(async () => {
      let hash = createHash('sha256');
      let receipt: Receipt = { sha: '', bytes: 0, fragments: 0, maxFragment: 0, binary: false, firstFlags: 0, lastFlags: 0 };
      t = await startServer({
        ...(cert ? { tls: { key: cert.key, cert: cert.cert } } : {}),
        handler: {
          onFragment(session, f: Fragment) {
            if (f.first) {
              hash = createHash('sha256');
              receipt = { sha: '', bytes: 0, fragments: 0, maxFragment: 0, binary: f.binary, firstFlags: 0, lastFlags: 0 };
            }
            hash.update(f.data);
            receipt.bytes += f.data.length;
            receipt.fragments++;
            receipt.maxFragment = Math.max(receipt.maxFragment, f.data.length);
            if (f.first) receipt.firstFlags++;
            if (f.last) receipt.lastFlags++;
            if (!f.last) return;
            receipt.sha = hash.digest('hex');
            // A short text command asks the server to stream something back.
            if (!f.binary && receipt.bytes < 64) {
              const n = Number(Buffer.from(f.data).toString() || '0');
              const body = pseudoRandomBytes(n, n);
              void session.sendStream(
                (function* () {
                  for (let off = 0; off < n; off += 100_000) yield body.subarray(off, off + 100_000);
                })(),
              );
              return;
            }
            session.send(JSON.stringify(receipt));
          },
        },
      });
      client = await connect(t.url(), { keepalive: null, ...(cert ? { tls: { ca: cert.ca } } : {}) });
    });
    after(async () => {
      client.terminate();
      await t.server.close();
    });

    async function receipt(): Promise<Receipt> {
      const m = await nextMessage(client);
      assert.equal(m.binary, false);
      return JSON.parse(m.text) as Receipt;
    }

    it('a message sent with sendStream() is delivered fragment by fragment, never more than one frame at a time', async () => {
      const chunk = 256 * 1024;
      const total = 8 * MiB;
      const source = pseudoRandomBytes(total, 5);
      await withTimeout(
        client.sendStream(
          (function* () {
            for (let off = 0; off < total; off += chunk) yield source.subarray(off, off + chunk);
          })(),
        ),
        20_000,
        'sendStream',
      );
      const r = await receipt();
      assert.equal(r.binary, true);
      assert.equal(r.bytes, total);
      assert.equal(r.sha, sha256(source));
      assert.equal(r.firstFlags, 1);
      assert.equal(r.lastFlags, 1);
      // Each of our frames carries 256 KiB; the parser hands on pieces as they
      // arrive and never joins frames, so no piece can be larger.
      assert.ok(r.maxFragment > 0 && r.maxFragment <= chunk, `largest piece ${r.maxFragment} bytes`);
      assert.ok(r.fragments >= total / chunk, `${r.fragments} pieces`);
    });

    it('a single 4 MiB frame is delivered in pieces as it arrives (the server never holds it whole)', async () => {
      const total = 4 * MiB;
      const source = pseudoRandomBytes(total, 9);
      assert.notEqual(client.send(source), 'dropped');
      const r = await receipt();
      assert.equal(r.bytes, total);
      assert.equal(r.sha, sha256(source));
      assert.equal(r.firstFlags, 1);
      assert.equal(r.lastFlags, 1);
      // Socket reads are at most 64 KiB (libuv) and TLS records 16 KiB: a
      // piece as large as the message would mean it was buffered whole.
      assert.ok(r.maxFragment <= 1 * MiB, `largest piece ${r.maxFragment} bytes`);
      assert.ok(r.fragments >= 4, `${r.fragments} pieces`);
    });

    it('an empty message still produces one first-and-last fragment', async () => {
      assert.notEqual(client.send(Buffer.alloc(0)), 'dropped');
      const r = await receipt();
      assert.deepEqual([r.bytes, r.fragments, r.firstFlags, r.lastFlags, r.sha], [0, 1, 1, 1, sha256(Buffer.alloc(0))]);
    });

    it('a message the server sends with sendStream() arrives whole at the client', async () => {
      const n = 3 * MiB + 17;
      assert.notEqual(client.send(String(n)), 'dropped');
      const m = await nextMessage(client);
      assert.equal(m.binary, true);
      assert.equal(m.data.length, n);
      assert.equal(sha256(m.data), sha256(pseudoRandomBytes(n, n)));
    });
  });
}

describe('client receiving piece by piece (onFragment on the client)', () => {
  it('gets a 2 MiB server message in pieces with the right content', async () => {
    const total = 2 * MiB;
    const source = pseudoRandomBytes(total, 77);
    const t = await startServer({
      handler: {
        onOpen(session) {
          session.send(source);
        },
      },
    });
    try {
      const hash = createHash('sha256');
      let bytes = 0;
      let maxPiece = 0;
      let pieces = 0;
      const done = new Promise<void>((resolve) => {
        void connect(t.url(), {
          keepalive: null,
          handler: {
            onFragment(session, f) {
              hash.update(f.data);
              bytes += f.data.length;
              pieces++;
              maxPiece = Math.max(maxPiece, f.data.length);
              if (f.last) {
                session.close(1000);
                resolve();
              }
            },
          },
        });
      });
      await withTimeout(done, 10_000, 'the last fragment');
      assert.equal(bytes, total);
      assert.equal(hash.digest('hex'), sha256(source));
      assert.ok(pieces > 1 && maxPiece < total, `${pieces} pieces, largest ${maxPiece}`);
    } finally {
      await t.server.close();
    }
  });
});
