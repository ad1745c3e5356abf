/**
 * The EventTarget form of sockeye/ws's WebSocket, on a bare EventEmitter:
 * which types are accepted, `once`, duplicates, handleEvent objects, on*
 * attributes, and the event objects' shapes (doc/ws.md, addEventListener).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { addEventListener, attributeListener, removeEventListener, setAttributeListener, WAS_CLEAN, WsCloseEvent, WsErrorEvent, WsEvent, WsMessageEvent } from '../../../src/compat/ws/event-target.js';

describe('addEventListener', () => {
  it("accepts only 'open', 'message', 'close' and 'error'", () => {
    const e = new EventEmitter();
    addEventListener(e, 'ping', () => {});
    addEventListener(e, 'open', () => {});
    assert.equal(e.listenerCount('ping'), 0);
    assert.equal(e.listenerCount('open'), 1);
  });

  it('a text message is a string, a binary one the data as emitted; target is the emitter', () => {
    const e = new EventEmitter();
    const got: WsEvent[] = [];
    addEventListener(e, 'message', (ev) => got.push(ev));
    e.emit('message', Buffer.from('héllo'), false);
    e.emit('message', Buffer.from([1]), true);
    assert.ok(got[0] instanceof WsMessageEvent);
    assert.equal((got[0] as WsMessageEvent).data, 'héllo');
    assert.deepEqual((got[1] as WsMessageEvent).data, Buffer.from([1]));
    assert.equal(got[0].target, e);
    assert.equal(got[0].type, 'message');
  });

  it('close and error events carry their fields; wasClean comes from the socket', () => {
    const e = new EventEmitter();
    const got: WsEvent[] = [];
    addEventListener(e, 'close', (ev) => got.push(ev));
    addEventListener(e, 'error', (ev) => got.push(ev));
    (e as EventEmitter & { [WAS_CLEAN]?: boolean })[WAS_CLEAN] = true;
    e.emit('close', 4000, Buffer.from('bye'));
    const err = new Error('bad');
    e.emit('error', err);
    const close = got[0] as WsCloseEvent;
    assert.deepEqual([close.code, close.reason, close.wasClean], [4000, 'bye', true]);
    const error = got[1] as WsErrorEvent;
    assert.equal(error.error, err);
    assert.equal(error.message, 'bad');
  });

  it('once, duplicates and handleEvent objects', () => {
    const e = new EventEmitter();
    let n = 0;
    const fn = () => n++;
    addEventListener(e, 'open', fn);
    addEventListener(e, 'open', fn);
    let m = 0;
    addEventListener(e, 'open', () => m++, { once: true });
    const obj = { calls: 0, handleEvent(this: { calls: number }) {
      this.calls++;
    } };
    addEventListener(e, 'open', obj);
    e.emit('open');
    e.emit('open');
    assert.equal(n, 2, 'added twice, called once per event');
    assert.equal(m, 1, 'once');
    assert.equal(obj.calls, 2);
    removeEventListener(e, 'open', fn);
    e.emit('open');
    assert.equal(n, 2);
  });

  it('an on* attribute replaces the previous one, is not removed by removeEventListener, and is read back', () => {
    const e = new EventEmitter();
    const calls: string[] = [];
    const first = () => calls.push('first');
    const second = () => calls.push('second');
    setAttributeListener(e, 'message', first);
    setAttributeListener(e, 'message', second);
    assert.equal(attributeListener(e, 'message'), second);
    removeEventListener(e, 'message', second);
    e.emit('message', Buffer.from('x'), false);
    assert.deepEqual(calls, ['second']);
    setAttributeListener(e, 'message', null);
    assert.equal(attributeListener(e, 'message'), null);
    assert.equal(e.listenerCount('message'), 0);
  });
});

describe('event objects', () => {
  it('attributes are read-only getters on the prototype, enumerable and configurable, as in ws', () => {
    const cases: Array<[object, string[]]> = [
      [WsEvent.prototype, ['type', 'target']],
      [WsCloseEvent.prototype, ['code', 'reason', 'wasClean']],
      [WsErrorEvent.prototype, ['error', 'message']],
      [WsMessageEvent.prototype, ['data']],
    ];
    for (const [proto, names] of cases) {
      for (const name of names) {
        const d = Object.getOwnPropertyDescriptor(proto, name);
        assert.ok(d, name);
        assert.equal(typeof d.get, 'function', `${name} has a getter`);
        assert.equal(d.set, undefined, `${name} has no setter`);
        assert.equal(d.enumerable, true, `${name} is enumerable`);
        assert.equal(d.configurable, true, `${name} is configurable`);
      }
    }
    const ev = new WsCloseEvent('close', { code: 1000, reason: 'done', wasClean: true });
    assert.deepEqual(Object.keys(ev), []);
    assert.throws(() => {
      (ev as unknown as { code: number }).code = 1;
    }, TypeError);
    assert.equal(ev.code, 1000);
    assert.equal(ev.target, null);
    assert.ok(ev instanceof WsEvent);
  });
});
