import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Topics, MAX_TOPIC_LENGTH, type Subscriber } from '../../src/pubsub/topics.js';
import { InvalidArgumentError } from '../../src/core/errors.js';

function sub(): Subscriber {
  return { topicSet: null };
}

describe('Topics', () => {
  it('subscribe and unsubscribe say whether membership changed, both sides agree', () => {
    const t = new Topics<Subscriber>();
    const a = sub();
    assert.equal(t.subscribe(a, 'room:1'), true);
    assert.equal(t.subscribe(a, 'room:1'), false);
    assert.equal(t.subscribe(a, 'room:2'), true);
    assert.deepEqual([...t.subscribers('room:1')], [a]);
    assert.deepEqual([...a.topicSet!].sort(), ['room:1', 'room:2']);
    assert.equal(t.unsubscribe(a, 'room:1'), true);
    assert.equal(t.unsubscribe(a, 'room:1'), false);
    assert.equal(t.unsubscribe(a, 'nowhere'), false);
    assert.equal(t.subscribers('room:1').size, 0);
    assert.deepEqual([...a.topicSet!], ['room:2']);
  });

  it('an empty topic is deleted, so only live topics are held', () => {
    const t = new Topics<Subscriber>();
    const a = sub();
    const b = sub();
    t.subscribe(a, 'x');
    t.subscribe(b, 'x');
    t.subscribe(b, 'y');
    assert.deepEqual([...t.names()].sort(), ['x', 'y']);
    t.unsubscribe(a, 'x');
    assert.deepEqual([...t.names()].sort(), ['x', 'y']);
    t.removeAll(b);
    assert.deepEqual([...t.names()], []);
    assert.equal(b.topicSet, null);
  });

  it('removeAll leaves the other subscribers of the same topics in place', () => {
    const t = new Topics<Subscriber>();
    const subs = Array.from({ length: 50 }, sub);
    for (const s of subs) {
      t.subscribe(s, 'all');
      t.subscribe(s, `own:${subs.indexOf(s)}`);
    }
    for (let i = 0; i < 50; i += 2) t.removeAll(subs[i]);
    assert.equal(t.subscribers('all').size, 25);
    for (let i = 0; i < 50; i++) assert.equal(t.subscribers(`own:${i}`).size, i % 2);
  });

  it('names such as __proto__ and constructor are plain topics', () => {
    const t = new Topics<Subscriber>();
    const a = sub();
    for (const name of ['__proto__', 'constructor', 'hasOwnProperty', 'toString']) {
      assert.equal(t.subscribe(a, name), true);
      assert.equal(t.subscribers(name).size, 1);
    }
    assert.equal(t.subscribers('valueOf').size, 0);
  });

  it('refuses empty, oversized and non-string topics', () => {
    const t = new Topics<Subscriber>();
    const a = sub();
    for (const bad of ['', 'x'.repeat(MAX_TOPIC_LENGTH + 1), 42, null, undefined]) {
      assert.throws(() => t.subscribe(a, bad as string), InvalidArgumentError);
    }
    assert.equal(t.subscribe(a, 'x'.repeat(MAX_TOPIC_LENGTH)), true);
    assert.equal(a.topicSet!.size, 1);
  });
});
