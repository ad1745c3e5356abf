/**
 * Messages of the largest default size through the demo server's echo, run
 * as `sockeye serve` runs it, with the default limits (maxMessageBytes
 * 16 MiB, maxQueuedBytes 40 MiB):
 * - a client that keeps three 16 MiB messages in flight and reads its
 *   echoes slowly gets every echo, intact and in order, and is never closed
 *   with 1013: the echo pauses reading from it while its echoes wait, so the
 *   server's queue for it stays within maxQueuedBytes (with and without
 *   permessage-deflate: random bytes deflate to frames a little larger than
 *   the messages, which the limits allow for);
 * - a client that sends 16 MiB messages and never reads is read no further
 *   once an echo waits for it, the server's queue stays within
 *   maxQueuedBytes, and the keepalive hangs it up (1006,
 *   ERR_KEEPALIVE_TIMEOUT), the documented end of a peer that sends nothing
 *   the server reads.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DEFAULT_SESSION_LIMITS, connect, type ClientSession, type ServerSession } from '../../src/index.js';
import { DEFAULT_LIMITS } from '../../src/core/index.js';
import type { DemoFixture } from './demo-fixture.js';
import { startDemo } from './demo-fixture.js';
import { delay, waitUntil, withTimeout } from '../helpers/ws-pair.js';

const MiB = 1024 * 1024;
/** The largest message the default limits accept. */
const SIZE = DEFAULT_LIMITS.maxMessageBytes;
const IN_FLIGHT = 3;
/** Messages per run: every one goes out while IN_FLIGHT - 1 others wait for their echoes. */
const TOTAL = 6;
/** How long the client stops reading after each echo. */
const READ_PAUSE_MS = 250;
const SAMPLE_EVERY_MS = 2;

/** The server's session of the one client connected to `fx`. */
async function serverSessionOf(fx: DemoFixture): Promise<ServerSession> {
  await waitUntil(() => fx.demo.server.clients.size === 1, 5_000, 'the server session');
  return [...fx.demo.server.clients][0] as ServerSession;
}

/** Samples the server session's outbound queue and whether the echo holds its reading paused, until stop(). */
function sampler(fx: DemoFixture, session: ServerSession): { maxBuffered: () => number; pausedSamples: () => number; stop: () => void } {
  let maxBuffered = 0;
  let paused = 0;
  const timer = setInterval(() => {
    maxBuffered = Math.max(maxBuffered, session.bufferedAmount);
    if (fx.demo.echo.isPaused(session)) paused++;
  }, SAMPLE_EVERY_MS);
  return { maxBuffered: () => maxBuffered, pausedSamples: () => paused, stop: () => clearInterval(timer) };
}

async function slowReaderWithThreeInFlight(perMessageDeflate: boolean, size: number): Promise<void> {
  const serverErrors: unknown[] = [];
  // Default options, as `sockeye serve` with no option: no limits, no keepalive given.
  const fx = await startDemo({ onError: (e) => serverErrors.push(e) });
  let client: ClientSession | undefined;
  try {
    // The client's own queue must hold its three messages at once: that is the client's limit, not the server's.
    client = await connect(`ws://127.0.0.1:${fx.port}/`, { perMessageDeflate, limits: { maxQueuedBytes: 64 * MiB } });
    assert.deepEqual(client.extensions, perMessageDeflate ? ['permessage-deflate'] : []);
    const session = await serverSessionOf(fx);
    const samples = sampler(fx, session);
    try {
      const waiting: Buffer[] = [];
      let sent = 0;
      const sendOne = () => {
        const payload = randomBytes(size);
        const status = client!.send(payload);
        assert.notEqual(status, 'dropped', `message ${sent} (client ${client!.state})`);
        waiting.push(payload);
        sent++;
      };
      while (sent < IN_FLIGHT) sendOne();
      const echoes = client.messages();
      for (let received = 0; received < TOTAL; received++) {
        const next = await withTimeout(echoes.next(), 15_000, `echo ${received}`);
        assert.equal(next.done, false, `the connection ended before echo ${received}`);
        const expected = waiting.shift()!;
        assert.equal(next.value.binary, true);
        assert.equal(next.value.data.length, size, `echo ${received} length`);
        assert.ok(next.value.data.equals(expected), `echo ${received} is the message sent ${received}th, byte for byte`);
        // Read slowly: the server's queue for this client fills up while it does not read.
        client.pauseReading();
        await delay(READ_PAUSE_MS);
        client.resumeReading();
        if (sent < TOTAL) sendOne();
        assert.equal(client.state, 'open', `still open after echo ${received}`);
      }
    } finally {
      samples.stop();
    }
    assert.ok(samples.maxBuffered() <= DEFAULT_SESSION_LIMITS.maxQueuedBytes, `the server's queue reached ${samples.maxBuffered()} bytes, over maxQueuedBytes`);
    assert.ok(samples.maxBuffered() >= size / 2, `the server's queue held an echo while the client did not read (peak ${samples.maxBuffered()} bytes)`);
    assert.ok(samples.pausedSamples() > 0, 'the echo paused reading while the client did not read');
    client.close(1000, 'done');
    const info = await withTimeout(client.closed, 10_000, 'the close');
    assert.equal(info.code, 1000, `closed with ${info.code} ${info.reason}`);
    assert.equal(info.wasClean, true);
    assert.equal(info.error, undefined);
    assert.deepEqual(serverErrors, [], 'no echo was dropped');
  } finally {
    client?.terminate();
    await fx.close();
  }
}

describe('large messages through the demo echo, default limits', () => {
  it('three 16 MiB messages in flight, echoes read slowly: every echo intact and in order, no 1013, the queue within maxQueuedBytes', { timeout: 30_000 }, async () => {
    await slowReaderWithThreeInFlight(false, SIZE);
  });

  it('the same with permessage-deflate (random bytes: each 16 MiB message deflates to a frame a little larger)', { timeout: 30_000 }, async () => {
    // A compressed frame may be as long as maxMessageBytes of content deflates to (compressedBound).
    await slowReaderWithThreeInFlight(true, SIZE);
  });

  it('a client that sends 16 MiB messages and never reads: not read further, the queue within maxQueuedBytes, hung up by the keepalive', { timeout: 30_000 }, async () => {
    // Only the keepalive is shortened (default: hang-up after 60 s), so that the test is short.
    const fx = await startDemo({ keepalive: { pingAfterMs: 300, hangupAfterMs: 1_500 } });
    let client: ClientSession | undefined;
    try {
      client = await connect(`ws://127.0.0.1:${fx.port}/`, { keepalive: null });
      client.pauseReading();
      const session = await serverSessionOf(fx);
      const samples = sampler(fx, session);
      const serverClosed = session.closed;
      const statuses: string[] = [];
      try {
        // Many messages, each different, for about a second, while nothing is read.
        for (let i = 0; i < 12 && session.state === 'open'; i++) {
          statuses.push(client.send(randomBytes(SIZE)));
          await delay(80);
        }
        const info = await withTimeout(serverClosed, 15_000, 'the server to end the session');
        assert.equal(info.code, 1006, `closed with ${info.code} ${info.reason}`);
        assert.equal(info.error?.code, 'ERR_KEEPALIVE_TIMEOUT', `error: ${info.error?.message}`);
      } finally {
        samples.stop();
      }
      assert.ok(samples.pausedSamples() > 0, 'the echo stopped reading from the client');
      assert.ok(samples.maxBuffered() <= DEFAULT_SESSION_LIMITS.maxQueuedBytes, `the server's queue reached ${samples.maxBuffered()} bytes, over maxQueuedBytes`);
      // What the server did not read waits on the client's side: its own queue, bounded by its own limit.
      assert.ok(statuses.includes('dropped'), `the client's own queue filled up: ${statuses.join(' ')}`);
      const clientInfo = await withTimeout(client.closed, 10_000, 'the client to see the connection end');
      assert.equal(clientInfo.code, 1006);
    } finally {
      client?.terminate();
      await fx.close();
    }
  });
});
