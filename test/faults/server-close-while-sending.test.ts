/**
 * Fault: the server shuts down (server.close(), close code 1001 "going away",
 * RFC 6455 section 7.4.1) while a client is in the middle of sending 100 MB.
 *
 * Expected:
 * - server.close() resolves (bounded: nothing hangs);
 * - the client's session ends with 1001 and a clean closing handshake: it
 *   answers the close after what it had already queued (section 5.5.1;
 *   control frames may come between the fragments of a message, section
 *   5.4);
 * - from then on the client's sends are 'dropped' (the status is the
 *   report: nothing is discarded silently, invariant S4), and sendStream()
 *   rejects with InvalidStateError;
 * - with whole messages, every message send() accepted is accounted for:
 *   received by the server (which keeps delivering until the client's close
 *   arrives), or counted in the client's CloseInfo.unsentMessages;
 * - each side's events fire once, in order, and every resource is freed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, InvalidStateError, type ClientSession, type SendStatus, type ServerSession } from '../../src/index.js';
import { delay, withTimeout } from '../helpers/ws-pair.js';
import { activeResources, assertResourcesBack } from './events.js';

const TOTAL = 100 * 1024 * 1024;
const CHUNK = 64 * 1024;
const CLOSE_AT = 10 * 1024 * 1024;

describe('fault: the server closes while a client sends 100 MB', () => {
  it('as one streamed message (sendStream): 1001 for the client, its stream rejects, later sends dropped; nothing hangs; all freed', { timeout: 60_000 }, async (t) => {
    const baseline = activeResources();
    let received = 0;
    const serverEvents: string[] = [];
    const server = createServer({
      keepalive: null,
      limits: { maxMessageBytes: 2 * TOTAL, maxFrameBytes: CHUNK },
      onError: () => {},
      handler: {
        onOpen: () => serverEvents.push('open'),
        onFragment: (_s: ServerSession, f) => {
          received += f.data.length;
        },
        onError: (_s: ServerSession, e) => serverEvents.push(`error ${e.code}`),
        onClose: (_s: ServerSession, info) => serverEvents.push(`close ${info.code} ${info.wasClean}`),
      },
    });
    await server.listen(0, '127.0.0.1');
    const clientEvents: string[] = [];
    let client: ClientSession | null = null;
    let closing: Promise<void> | null = null;
    try {
      client = await connect(`ws://127.0.0.1:${server.port}/`, {
        keepalive: null,
        handler: {
          onOpen: () => clientEvents.push('open'),
          onError: (_s, e) => clientEvents.push(`error ${e.code}`),
          onClose: (_s, info) => clientEvents.push(`close ${info.code} ${info.wasClean}`),
        },
      });
      const chunk = Buffer.alloc(CHUNK, 0x5a);
      let produced = 0;
      let receivedAtClose = 0;
      async function* source(): AsyncGenerator<Buffer> {
        while (produced < TOTAL) {
          produced += CHUNK;
          if (closing === null && received >= CLOSE_AT) {
            receivedAtClose = received;
            closing = server.close();
          }
          yield chunk;
        }
      }
      const sending = client.sendStream(source(), { binary: true });
      await assert.rejects(withTimeout(sending, 30_000, 'sendStream to give up'), (err: unknown) => {
        assert.ok(err instanceof InvalidStateError, String(err));
        return true;
      });
      assert.ok(closing !== null, 'server.close() was called mid-stream');
      await withTimeout(closing!, 15_000, 'server.close()');
      const info = await withTimeout(client.closed, 15_000, 'the client to close');
      t.diagnostic(`server.close() after ${receivedAtClose} bytes received (${received} by the end); the stream gave up after ${produced} of ${TOTAL}; client unsentMessages ${info.unsentMessages}`);
      assert.ok(produced < TOTAL, 'the stream stopped early');
      assert.equal(info.code, 1001);
      assert.equal(info.wasClean, true);
      assert.equal(client.send('after the close'), 'dropped');
      assert.equal(client.send(Buffer.alloc(10)), 'dropped');
      await delay(100);
      assert.deepEqual(clientEvents, ['open', 'close 1001 true']);
      assert.deepEqual(serverEvents, ['open', 'close 1001 true']);
      assert.equal(server.clients.size, 0);
    } finally {
      client?.terminate();
      await (closing ?? server.close());
    }
    await assertResourcesBack(baseline);
  });

  it('as 1,600 messages of 64 KiB paced by requestWritable(): 1001; later sends dropped; every accepted message received or reported unsent; all freed', { timeout: 60_000 }, async (t) => {
    const baseline = activeResources();
    let receivedMessages = 0;
    let receivedBytes = 0;
    const serverEvents: string[] = [];
    const server = createServer({
      keepalive: null,
      onError: () => {},
      handler: {
        onOpen: () => serverEvents.push('open'),
        onMessage: (_s: ServerSession, m) => {
          receivedMessages++;
          receivedBytes += m.data.length;
        },
        onError: (_s: ServerSession, e) => serverEvents.push(`error ${e.code}`),
        onClose: (_s: ServerSession, info) => serverEvents.push(`close ${info.code} ${info.wasClean}`),
      },
    });
    await server.listen(0, '127.0.0.1');
    let client: ClientSession | null = null;
    let closing: Promise<void> | null = null;
    const clientEvents: string[] = [];
    let wake: (() => void) | null = null;
    try {
      client = await connect(`ws://127.0.0.1:${server.port}/`, {
        keepalive: null,
        handler: {
          onOpen: () => clientEvents.push('open'),
          onWritable: () => wake?.(),
          onError: (_s, e) => clientEvents.push(`error ${e.code}`),
          onClose: (_s, info) => {
            clientEvents.push(`close ${info.code} ${info.wasClean}`);
            wake?.();
          },
        },
      });
      const payload = Buffer.alloc(CHUNK, 0x33);
      let accepted = 0;
      let dropped = 0;
      let attempts = 0;
      const statuses = new Map<SendStatus, number>();
      while (attempts < TOTAL / CHUNK) {
        attempts++;
        if (closing === null && receivedBytes >= CLOSE_AT) closing = server.close();
        const status = client.send(payload);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (status === 'dropped') {
          dropped++;
          continue; // keep trying, as a careless producer would: every one must be dropped, none may hang
        }
        accepted++;
        if (status === 'backpressure' && client.state === 'open') {
          // Bounded wait: onWritable, or the close, wakes us.
          await withTimeout(
            new Promise<void>((resolve) => {
              wake = resolve;
              if (!client!.requestWritable()) resolve();
            }),
            15_000,
            'onWritable',
          );
          wake = null;
        }
      }
      assert.ok(closing !== null, 'server.close() was called mid-way');
      await withTimeout(closing!, 15_000, 'server.close()');
      const info = await withTimeout(client.closed, 15_000, 'the client to close');
      t.diagnostic(`sends: ${JSON.stringify(Object.fromEntries(statuses))}; server received ${receivedMessages} messages; client unsentMessages ${info.unsentMessages}`);
      assert.equal(info.code, 1001);
      assert.equal(info.wasClean, true);
      assert.ok(dropped > 0, 'sends after the close were dropped');
      assert.equal(client.send('late'), 'dropped');
      // S4: every message accepted was delivered, or is reported as unsent.
      assert.equal(receivedMessages + info.unsentMessages, accepted);
      assert.equal(receivedBytes, receivedMessages * CHUNK);
      await delay(100);
      assert.deepEqual(clientEvents, ['open', 'close 1001 true']);
      assert.deepEqual(serverEvents, ['open', 'close 1001 true']);
      assert.equal(server.clients.size, 0);
    } finally {
      client?.terminate();
      await (closing ?? server.close());
    }
    await assertResourcesBack(baseline);
  });
});
