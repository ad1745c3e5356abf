/**
 * The close sequence as one state machine (src/transport/lifecycle.ts):
 * open -> closing -> flushing -> ending -> released, every transition made by
 * Lifecycle.step(). First each transition on its own, with a host that
 * records what the lifecycle asks of it; then each transition as a Session
 * makes it over an in-memory duplex pair (no sockets; the timer input is given
 * by hand, not by an OS timer).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Duplex } from 'node:stream';
import type { ClosedEvent } from '../../src/core/connection.js';
import { TransportError } from '../../src/core/errors.js';
import { encodeFrame } from '../../src/core/frame-serializer.js';
import { Context } from '../../src/transport/context.js';
import { Lifecycle, type LifecycleHost } from '../../src/transport/lifecycle.js';
import { Session } from '../../src/transport/session.js';
import type { CloseInfo, Handler } from '../../src/transport/types.js';
import { duplexPair } from '../helpers/duplex-pair.js';

class Host implements LifecycleHost {
  idle = true;
  time = 1000;
  calls: string[] = [];
  infos: CloseInfo[] = [];
  now(): number {
    return this.time;
  }
  endStream(clean: boolean): void {
    this.calls.push(`end ${clean ? 'clean' : 'unclean'}`);
  }
  destroyStream(): void {
    this.calls.push('destroy');
  }
  released(info: CloseInfo): void {
    this.calls.push('released');
    this.infos.push(info);
  }
}

const clean: ClosedEvent = { type: 'closed', code: 1000, reason: 'bye', wasClean: true, error: undefined, hangup: 'graceful' };
const failed: ClosedEvent = { type: 'closed', code: 1002, reason: 'bad', wasClean: false, error: undefined, hangup: 'graceful' };
const aborted: ClosedEvent = { type: 'closed', code: 1006, reason: '', wasClean: false, error: new TransportError('ERR_CONNECTION_LOST', 'lost'), hangup: 'abort' };

function machine(closeTimeoutMs = 500): { life: Lifecycle; host: Host } {
  const host = new Host();
  return { life: new Lifecycle(host, closeTimeoutMs), host };
}

describe('Lifecycle: each transition of step()', () => {
  it('open -> closing when our close frame is queued; again is a no-op', () => {
    const { life, host } = machine();
    assert.equal(life.state, 'open');
    assert.equal(life.deadline, Infinity, 'no deadline of its own while open (the core times the handshake)');
    life.step({ type: 'close-sent' });
    assert.equal(life.state, 'closing');
    life.step({ type: 'close-sent' });
    assert.equal(life.state, 'closing');
    assert.deepEqual(host.calls, []);
  });

  it('closing -> flushing on a graceful close with output still queued; the stream is not ended yet, the destroy deadline is armed', () => {
    const { life, host } = machine(500);
    life.step({ type: 'close-sent' });
    host.idle = false;
    life.step({ type: 'closed', event: clean });
    assert.equal(life.state, 'flushing');
    assert.deepEqual(host.calls, []);
    assert.equal(life.deadline, 1500);
    assert.equal(life.closedEvent, clean);
  });

  it('open -> ending at once on a graceful close with nothing queued: the stream is ended, saying whether the handshake was clean', () => {
    for (const [event, how] of [
      [clean, 'end clean'],
      [failed, 'end unclean'],
    ] as const) {
      const { life, host } = machine();
      life.step({ type: 'closed', event });
      assert.equal(life.state, 'ending');
      assert.deepEqual(host.calls, [how]);
    }
  });

  it('open -> ending on an abort: the stream is destroyed, nothing is flushed', () => {
    const { life, host } = machine();
    host.idle = false;
    life.step({ type: 'closed', event: aborted });
    assert.equal(life.state, 'ending');
    assert.deepEqual(host.calls, ['destroy']);
  });

  it('flushing -> ending when the outbound path is idle, not before', () => {
    const { life, host } = machine();
    host.idle = false;
    life.step({ type: 'closed', event: clean });
    life.step({ type: 'maybe-idle' });
    assert.equal(life.state, 'flushing', 'still bytes to send');
    host.idle = true;
    life.step({ type: 'maybe-idle' });
    assert.equal(life.state, 'ending');
    assert.deepEqual(host.calls, ['end clean']);
    life.step({ type: 'maybe-idle' });
    assert.deepEqual(host.calls, ['end clean'], 'ended once');
  });

  it('progress restarts the destroy deadline while flushing or ending, and does nothing before', () => {
    const { life, host } = machine(500);
    life.step({ type: 'progress' });
    assert.equal(life.deadline, Infinity);
    host.idle = false;
    life.step({ type: 'closed', event: clean });
    host.time = 1400;
    life.step({ type: 'progress' });
    assert.equal(life.deadline, 1900);
  });

  it('flushing -> ending by the timer: before the deadline nothing happens, at it the stream is destroyed', () => {
    const { life, host } = machine(500);
    host.idle = false;
    life.step({ type: 'closed', event: clean });
    life.step({ type: 'timer', now: 1499 });
    assert.equal(life.state, 'flushing');
    assert.deepEqual(host.calls, []);
    life.step({ type: 'timer', now: 1500 });
    assert.equal(life.state, 'ending');
    assert.deepEqual(host.calls, ['destroy']);
    assert.equal(life.deadline, Infinity, 'destroyed once');
  });

  it('ending -> ending by the timer: a peer that never closes its side is destroyed after the close timeout', () => {
    const { life, host } = machine(500);
    life.step({ type: 'closed', event: clean });
    assert.equal(life.state, 'ending');
    life.step({ type: 'timer', now: 1500 });
    assert.deepEqual(host.calls, ['end clean', 'destroy']);
  });

  it('ending -> released when the stream closes: the info counts the unsent messages then, and the closed promise resolves', async () => {
    const { life, host } = machine();
    const early = life.whenReleased();
    life.step({ type: 'closed', event: clean });
    let asked = 0;
    life.step({
      type: 'stream-closed',
      unsent: () => {
        asked++;
        return 3;
      },
    });
    assert.equal(life.state, 'released');
    assert.equal(asked, 1);
    const expected: CloseInfo = { code: 1000, reason: 'bye', wasClean: true, error: undefined, unsentMessages: 3 };
    assert.deepEqual(host.infos, [expected]);
    assert.deepEqual(await early, expected);
    assert.deepEqual(await life.whenReleased(), expected, 'a promise asked for after release resolves too');
    assert.deepEqual(life.info, expected);
  });

  it('a stream that closes before the core closed (messages before a close frame still with the codec): released when the event comes, without ending or destroying', () => {
    const { life, host } = machine();
    life.step({ type: 'stream-closed', unsent: () => 0 });
    assert.equal(life.state, 'open');
    assert.equal(life.streamClosed, true);
    assert.deepEqual(host.calls, []);
    life.step({ type: 'closed', event: clean });
    assert.equal(life.state, 'released');
    assert.deepEqual(host.calls, ['released']);
  });

  it('released is final: every input is ignored', () => {
    const { life, host } = machine();
    life.step({ type: 'closed', event: aborted });
    life.step({ type: 'stream-closed', unsent: () => 0 });
    const before = [...host.calls];
    life.step({ type: 'close-sent' });
    life.step({ type: 'closed', event: clean });
    life.step({ type: 'maybe-idle' });
    life.step({ type: 'progress' });
    life.step({ type: 'timer', now: 1e12 });
    life.step({ type: 'stream-closed', unsent: () => 9 });
    assert.equal(life.state, 'released');
    assert.deepEqual(host.calls, before);
    assert.equal(host.infos.length, 1);
    assert.equal(host.infos[0].code, 1006);
  });

  it('a second closed event is ignored (the first says how the WebSocket ended)', () => {
    const { life } = machine();
    life.step({ type: 'closed', event: failed });
    life.step({ type: 'closed', event: clean });
    assert.equal(life.closedEvent, failed);
  });
});

// ------------------------------------------------------- over a duplex pair

interface End {
  session: Session;
  stream: Duplex;
  closes: CloseInfo[];
}

function end(role: 'server' | 'client', stream: Duplex, context: Context, closeTimeoutMs = 1000): End {
  const closes: CloseInfo[] = [];
  const handler: Handler<Record<string, unknown>> = {
    onClose(_s, info) {
      closes.push(info);
    },
  };
  const session = new Session<Record<string, unknown>>({
    role,
    socket: stream,
    context,
    handler,
    protocol: undefined,
    extensions: [],
    limits: {},
    keepalive: null,
    closeTimeoutMs,
    head: Buffer.alloc(0),
    onHandlerError: () => {},
  });
  session.start(Buffer.alloc(0));
  return { session: session as unknown as Session, stream, closes };
}

function pair(highWaterMark = 64 * 1024, closeTimeoutMs = 1000): { server: End; client: End; context: Context } {
  const context = new Context();
  const [a, b] = duplexPair(highWaterMark);
  return { server: end('server', a, context, closeTimeoutMs), client: end('client', b, context, closeTimeoutMs), context };
}

const turn = () => new Promise((r) => setImmediate(r));
async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !cond(); i++) await turn();
  assert.ok(cond(), `timed out waiting for ${what}`);
}

/** A masked client frame with a reserved opcode: the server fails the connection with 1002. */
const badFrame = () => {
  const f = Buffer.concat(encodeFrame(0x2, Buffer.from('x'), { mask: Buffer.from([1, 2, 3, 4]) }));
  f[0] = 0x83;
  return f;
};

describe('Lifecycle: each transition as a Session makes it over an in-memory duplex pair', () => {
  it('open -> closing -> ending -> released: a closing handshake; the peer answers once it reads again', async () => {
    const { server, client, context } = pair();
    server.session.pauseReading();
    client.session.close(1000, 'bye');
    assert.equal(client.session.lifecycleState, 'closing');
    server.session.resumeReading();
    await until('both released', () => client.closes.length === 1 && server.closes.length === 1);
    assert.equal(client.session.lifecycleState, 'released');
    assert.equal(server.session.lifecycleState, 'released');
    assert.deepEqual([client.closes[0].code, client.closes[0].wasClean, client.closes[0].unsentMessages], [1000, true, 0]);
    context.close();
  });

  it('open -> flushing -> ending -> released: a failure with output queued flushes it before ending (S4)', async () => {
    const { server, client, context } = pair(16 * 1024);
    client.session.pauseReading();
    assert.equal(server.session.send(Buffer.alloc(256 * 1024, 7)), 'queued', 'the paused client leaves it queued');
    client.stream.write(badFrame());
    await until('the server fails', () => server.session.state === 'closed');
    assert.equal(server.session.lifecycleState, 'flushing', 'the close frame waits behind 256 KiB');
    client.session.resumeReading();
    await until('both released', () => server.closes.length === 1 && client.closes.length === 1);
    assert.equal(server.closes[0].code, 1002);
    assert.equal(server.closes[0].unsentMessages, 0, 'the queued message was delivered before the end');
    assert.equal(client.closes[0].code, 1002);
    context.close();
  });

  it('flushing -> ending by the timer: a peer that stops reading is destroyed after the close timeout, its message counted unsent', async () => {
    const { server, client, context } = pair(16 * 1024, 200);
    client.session.pauseReading();
    server.session.send(Buffer.alloc(256 * 1024, 7));
    client.stream.write(badFrame());
    await until('the server fails', () => server.session.state === 'closed');
    assert.equal(server.session.lifecycleState, 'flushing');
    server.session.onTimer(context.now() + 100);
    assert.equal(server.session.lifecycleState, 'flushing', 'not before the deadline');
    server.session.onTimer(context.now() + 10_000);
    assert.equal(server.session.lifecycleState, 'ending');
    await until('the server released', () => server.closes.length === 1);
    assert.equal(server.closes[0].unsentMessages, 1);
    await until('the client released', () => client.closes.length === 1);
    context.close();
  });

  it('open -> ending -> released on an abort (terminate)', async () => {
    const { server, client, context } = pair();
    server.session.terminate();
    assert.equal(server.session.lifecycleState, 'ending');
    await until('both released', () => server.closes.length === 1 && client.closes.length === 1);
    assert.equal(server.closes[0].error?.code, 'ERR_TERMINATED');
    assert.equal(client.closes[0].code, 1006);
    context.close();
  });

  it('the stream closes first (the peer reset): released with 1006, never ended or destroyed by the session', async () => {
    const { server, client, context } = pair();
    client.stream.destroy();
    await until('the server released', () => server.closes.length === 1);
    assert.equal(server.session.lifecycleState, 'released');
    assert.deepEqual([server.closes[0].code, server.closes[0].wasClean], [1006, false]);
    context.close();
  });
});
