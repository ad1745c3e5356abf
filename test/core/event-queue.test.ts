/**
 * EventQueue (src/core/event-queue.ts): events reach the host in the order
 * they were raised, once each; the host is never re-entered (deliver() from
 * inside onEvent is a no-op, and what a handler raises is delivered by the
 * running loop after the events already queued); dropUndelivered() keeps
 * only 'closed' events; an exception from the host leaves the events not
 * yet handed over queued for a later deliver().
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventQueue } from '../../src/core/event-queue.js';
import { MessageEvent, type ConnectionEvent } from '../../src/core/connection-types.js';

const ping = (s: string): ConnectionEvent => ({ type: 'ping', data: Buffer.from(s) });
const message = (s: string): ConnectionEvent => new MessageEvent(false, Buffer.from(s));
const closed = (code: number): ConnectionEvent => ({ type: 'closed', code, reason: '', wasClean: true, error: undefined, hangup: 'graceful' });

/** A short name for an event, for comparing timelines. */
function name(e: ConnectionEvent): string {
  switch (e.type) {
    case 'message':
    case 'ping':
    case 'pong':
      return `${e.type} ${e.data.toString()}`;
    case 'fragment':
      return `fragment ${e.data.toString()}`;
    case 'closed':
      return `closed ${e.code}`;
  }
}

/** A host that records what it is given and runs a per-event hook (keyed by name) inside onEvent. */
class Host {
  readonly log: string[] = [];
  readonly hooks = new Map<string, () => void>();
  onEvent(e: ConnectionEvent): void {
    const n = name(e);
    this.log.push(n);
    this.hooks.get(n)?.();
  }
}

function setup() {
  const host = new Host();
  const q = new EventQueue(host);
  return { host, q };
}

describe('EventQueue', () => {
  it('delivers nothing until deliver(), then every event in order, once', () => {
    const { host, q } = setup();
    q.push(message('a'));
    q.push(ping('b'));
    q.push(closed(1000));
    assert.deepEqual(host.log, []);
    q.deliver();
    assert.deepEqual(host.log, ['message a', 'ping b', 'closed 1000']);
    q.deliver();
    assert.deepEqual(host.log, ['message a', 'ping b', 'closed 1000'], 'a second deliver() hands nothing over again');
    q.push(ping('c'));
    q.deliver();
    assert.deepEqual(host.log, ['message a', 'ping b', 'closed 1000', 'ping c']);
  });

  it('hands over the very event objects pushed', () => {
    const host = { got: [] as ConnectionEvent[], onEvent(e: ConnectionEvent) { this.got.push(e); } };
    const q = new EventQueue(host);
    const e = message('x');
    q.push(e);
    q.deliver();
    assert.equal(host.got[0], e);
  });

  it('deliver() with nothing queued calls nothing', () => {
    const { host, q } = setup();
    q.deliver();
    assert.deepEqual(host.log, []);
    assert.equal(q.delivering, false);
  });

  it('`delivering` is true inside onEvent only', () => {
    const { host, q } = setup();
    const seen: boolean[] = [];
    host.hooks.set('ping a', () => seen.push(q.delivering));
    host.hooks.set('ping b', () => seen.push(q.delivering));
    assert.equal(q.delivering, false);
    q.push(ping('a'));
    q.push(ping('b'));
    q.deliver();
    assert.deepEqual(seen, [true, true]);
    assert.equal(q.delivering, false);
  });

  it('deliver() from inside onEvent is a no-op: the host is not re-entered', () => {
    const { host, q } = setup();
    host.hooks.set('ping a', () => {
      q.push(ping('x'));
      q.deliver();
      host.log.push('end of a');
    });
    q.push(ping('a'));
    q.push(ping('b'));
    q.deliver();
    assert.deepEqual(host.log, ['ping a', 'end of a', 'ping b', 'ping x']);
  });

  it('events raised by a handler are delivered by the running loop, after the ones already queued', () => {
    const { host, q } = setup();
    host.hooks.set('ping a', () => {
      q.push(ping('a1'));
      q.push(ping('a2'));
    });
    host.hooks.set('ping c', () => q.push(ping('c1')));
    host.hooks.set('ping a1', () => q.push(ping('a1-1')));
    q.push(ping('a'));
    q.push(ping('b'));
    q.push(ping('c'));
    q.deliver();
    assert.deepEqual(host.log, ['ping a', 'ping b', 'ping c', 'ping a1', 'ping a2', 'ping c1', 'ping a1-1']);
    q.deliver();
    assert.equal(host.log.length, 7, 'nothing is left to deliver twice');
  });

  it('a long chain of events raised from handlers runs in one loop, without nesting', () => {
    let n = 0;
    let depth = 0;
    let maxDepth = 0;
    const host = {
      onEvent: () => {
        depth++;
        maxDepth = Math.max(maxDepth, depth);
        if (++n < 100_000) {
          q.push(ping('next'));
          q.deliver();
        }
        depth--;
      },
    };
    const q = new EventQueue(host);
    q.push(ping('first'));
    q.deliver();
    assert.equal(n, 100_000);
    assert.equal(maxDepth, 1);
  });

  it('dropUndelivered() outside delivery keeps only the closed events', () => {
    const { host, q } = setup();
    q.push(message('a'));
    q.push(closed(1000));
    q.push(ping('b'));
    q.push(closed(1006));
    q.push(message('c'));
    q.dropUndelivered();
    q.deliver();
    assert.deepEqual(host.log, ['closed 1000', 'closed 1006']);
  });

  it('dropUndelivered() from a handler drops the events after the current one, except closed ones; what is pushed then follows', () => {
    const { host, q } = setup();
    host.hooks.set('message b', () => {
      q.dropUndelivered();
      q.push(closed(4000));
    });
    q.push(message('a'));
    q.push(message('b'));
    q.push(message('c'));
    q.push(closed(1000));
    q.push(ping('d'));
    q.deliver();
    assert.deepEqual(host.log, ['message a', 'message b', 'closed 1000', 'closed 4000']);
  });

  it('dropUndelivered() from the last event\'s handler leaves nothing behind', () => {
    const { host, q } = setup();
    host.hooks.set('ping z', () => q.dropUndelivered());
    q.push(ping('y'));
    q.push(ping('z'));
    q.deliver();
    q.push(ping('after'));
    q.deliver();
    assert.deepEqual(host.log, ['ping y', 'ping z', 'ping after']);
  });

  it('if onEvent throws, the error comes out of deliver() and the events after it stay queued for the next deliver()', () => {
    const { host, q } = setup();
    const boom = new Error('handler failed');
    host.hooks.set('ping b', () => {
      throw boom;
    });
    for (const s of ['a', 'b', 'c', 'd']) q.push(ping(s));
    assert.throws(() => q.deliver(), (err) => err === boom);
    assert.deepEqual(host.log, ['ping a', 'ping b']);
    assert.equal(q.delivering, false, 'the loop is not left running');
    q.deliver();
    assert.deepEqual(host.log, ['ping a', 'ping b', 'ping c', 'ping d'], 'the event that threw is not handed over again');
  });

  it('events pushed before the throw stay behind the ones already queued', () => {
    const { host, q } = setup();
    host.hooks.set('ping a', () => {
      q.push(ping('from a'));
      throw new Error('x');
    });
    q.push(ping('a'));
    q.push(ping('b'));
    assert.throws(() => q.deliver());
    q.push(ping('later'));
    q.deliver();
    assert.deepEqual(host.log, ['ping a', 'ping b', 'ping from a', 'ping later']);
  });

  it('a throw from the last event leaves the queue empty', () => {
    const { host, q } = setup();
    host.hooks.set('ping b', () => {
      throw new Error('x');
    });
    q.push(ping('a'));
    q.push(ping('b'));
    assert.throws(() => q.deliver());
    q.deliver();
    assert.deepEqual(host.log, ['ping a', 'ping b']);
    q.push(ping('c'));
    q.deliver();
    assert.deepEqual(host.log, ['ping a', 'ping b', 'ping c']);
  });

  it('dropUndelivered() after a throw applies to the events left queued', () => {
    const { host, q } = setup();
    host.hooks.set('ping a', () => {
      throw new Error('x');
    });
    q.push(ping('a'));
    q.push(ping('b'));
    q.push(closed(1001));
    assert.throws(() => q.deliver());
    q.dropUndelivered();
    q.deliver();
    assert.deepEqual(host.log, ['ping a', 'closed 1001']);
  });
});
