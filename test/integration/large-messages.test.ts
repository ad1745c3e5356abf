/**
 * Large messages over real sockets, where the outgoing frames of send()'s
 * copy are built in buffers that the context's FramePool lends and takes back
 * once the socket has written them. Invariant S2 under reuse: every echo
 * arrives with exactly the bytes that were sent, in order, while the peer
 * reads slowly (so writes stay unfinished and frames queue), while the
 * sender overwrites its own buffers right after send(), over TCP and TLS,
 * and a buffer that comes back is reused for later frames. Messages that
 * span many reads are joined as they arrive (test/core/message-assembler.test.ts).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type ClientSession } from '../../src/index.js';
import { Context } from '../../src/transport/context.js';
import { testCert } from '../helpers/certs.js';
import { delay, echoHandler, pseudoRandomBytes, startServer, withTimeout } from '../helpers/ws-pair.js';

const COUNT = 40;

/** Message sizes from 64 KiB to about 1.5 MiB, the same for every run. */
function sizes(): number[] {
  const out: number[] = [];
  for (let i = 0; i < COUNT; i++) out.push(64 * 1024 + ((i * 7919 * 97) % (1536 * 1024)));
  return out;
}

/** Records which pooled buffers come back: the reuse the pool exists for. */
function watchGiveBacks(context: Context): { count: number; distinct: Set<ArrayBufferLike> } {
  const seen = { count: 0, distinct: new Set<ArrayBufferLike>() };
  const pool = context.frames;
  const original = pool.giveBack.bind(pool);
  pool.giveBack = (buf: Buffer) => {
    if (pool.isLent(buf)) {
      seen.count++;
      seen.distinct.add(buf.buffer);
    }
    original(buf);
  };
  return seen;
}

async function echoRun(tls: boolean): Promise<void> {
  const cert = tls ? testCert() : null;
  const serverContext = new Context();
  const clientContext = new Context();
  const serverBacks = watchGiveBacks(serverContext);
  const clientBacks = watchGiveBacks(clientContext);
  const t = await startServer({
    context: serverContext,
    handler: echoHandler(),
    limits: { maxQueuedBytes: 256 << 20 },
    ...(cert ? { tls: { key: cert.key, cert: cert.cert } } : {}),
  });
  let client: ClientSession | null = null;
  try {
    client = await connect(t.url(), { context: clientContext, limits: { maxQueuedBytes: 256 << 20 }, ...(cert ? { tls: { ca: cert.ca } } : {}) });
    const inbox = client.messages();
    const expected: Buffer[] = [];
    // One buffer, refilled and sent again and again: the copy must have been taken at send().
    const scratch = Buffer.allocUnsafe(2 << 20);
    for (const [i, size] of sizes().entries()) {
      const payload = pseudoRandomBytes(size, i + 1);
      expected.push(payload);
      payload.copy(scratch);
      assert.notEqual(client.send(scratch.subarray(0, size)), 'dropped');
      scratch.fill(0xee);
    }
    for (let i = 0; i < COUNT; i++) {
      // A slow reader: the server's writes back stay unfinished, its frames queue.
      if (i % 5 === 0) {
        client.pauseReading();
        await delay(30);
        client.resumeReading();
      }
      const got = (await withTimeout(inbox.next(), 20_000, `echo ${i}`)).value!;
      assert.ok(got.data.equals(expected[i]), `echo ${i} (${expected[i].length} bytes) arrived exactly as sent`);
    }
    assert.ok(serverBacks.count > 0, 'the server took back frame buffers');
    assert.ok(serverBacks.distinct.size < serverBacks.count, 'and lent them again');
    assert.ok(clientBacks.count > 0, 'so did the client');
  } finally {
    client?.close();
    await t.server.close();
    serverContext.close();
    clientContext.close();
  }
}

describe('large messages with pooled frame buffers (S2 under reuse)', () => {
  it('over TCP: 40 echoes of 64 KiB to 1.5 MiB to a slow reader arrive exact and in order', async () => {
    await echoRun(false);
  });

  it('over TLS: the same', async () => {
    await echoRun(true);
  });
});
