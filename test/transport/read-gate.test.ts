/**
 * ReadGate (src/transport/read-gate.ts): the one place that pauses and
 * resumes reading. Any reason pauses; only the last one cleared resumes.
 * Deferred bytes are fed back on a later turn of the event loop, in order,
 * and wait while the application has paused. No OS timers or sockets: a
 * fake stream counts pause() and resume().
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Duplex } from 'node:stream';
import { PauseReason, ReadGate } from '../../src/transport/read-gate.js';

class FakeStream {
  state: 'paused' | 'flowing' | 'untouched' = 'untouched';
  pause(): void {
    this.state = 'paused';
  }
  resume(): void {
    this.state = 'flowing';
  }
}

function gate(onData: (b: Buffer, g: ReadGate) => void = () => {}): { g: ReadGate; s: FakeStream; fed: Buffer[] } {
  const s = new FakeStream();
  const fed: Buffer[] = [];
  const host = {
    onData(b: Buffer) {
      fed.push(b);
      onData(b, g);
    },
  };
  const g = new ReadGate(s as unknown as Duplex, host);
  return { g, s, fed };
}

describe('ReadGate', () => {
  it('pauses for any reason and resumes only when none is left', () => {
    const { g, s } = gate();
    g.apply();
    assert.equal(s.state, 'flowing');
    g.set(PauseReason.Inbox, true);
    assert.equal(s.state, 'paused');
    g.set(PauseReason.Codec, true);
    g.set(PauseReason.Inbox, false);
    assert.equal(s.state, 'paused', 'the codec still holds it');
    assert.equal(g.has(PauseReason.Codec), true);
    g.set(PauseReason.Codec, false);
    assert.equal(s.state, 'flowing');
    assert.equal(g.paused, false);
  });

  it('feeds deferred bytes on the next turn with reading paused meanwhile, then resumes', async () => {
    const { g, s, fed } = gate();
    g.defer(Buffer.from('abc'));
    g.defer(Buffer.from('de'));
    assert.equal(s.state, 'paused');
    assert.equal(g.waitingBytes, 5);
    assert.deepEqual(fed, [], 'never synchronously');
    await nextTurn();
    assert.deepEqual(fed.map(String), ['abcde'], 'in order, in one piece');
    assert.equal(s.state, 'flowing');
  });

  it('bytes the host defers again wait for another turn', async () => {
    let rounds = 0;
    const { g, s, fed } = gate((b, gg) => {
      if (b.length > 1) gg.defer(b.subarray(1));
      rounds++;
    });
    g.defer(Buffer.from('wxyz'));
    for (let i = 0; i < 3; i++) {
      await nextTurn();
      assert.equal(s.state, 'paused', `turn ${i}: still bytes waiting`);
    }
    await nextTurn();
    assert.deepEqual(fed.map(String), ['wxyz', 'xyz', 'yz', 'z']);
    assert.equal(rounds, 4);
    assert.equal(s.state, 'flowing');
  });

  it('while the application has paused, deferred bytes wait for resume (and are fed then, synchronously)', async () => {
    const { g, s, fed } = gate();
    g.set(PauseReason.Application, true);
    g.defer(Buffer.from('held'));
    await nextTurn();
    await nextTurn();
    assert.deepEqual(fed, []);
    assert.equal(s.state, 'paused');
    g.set(PauseReason.Application, false);
    assert.deepEqual(fed.map(String), ['held']);
    assert.equal(s.state, 'flowing');
  });

  it('yieldTurn() pauses until the next turn without bytes waiting', async () => {
    const { g, s, fed } = gate();
    g.apply();
    g.yieldTurn();
    assert.equal(s.state, 'paused');
    await nextTurn();
    assert.equal(s.state, 'flowing');
    assert.deepEqual(fed, []);
  });

  it('after close() nothing is fed and the stream is not touched', async () => {
    const { g, s, fed } = gate();
    g.defer(Buffer.from('x'));
    g.close();
    s.state = 'untouched';
    await nextTurn();
    g.set(PauseReason.Inbox, true);
    assert.deepEqual(fed, []);
    assert.equal(s.state, 'untouched');
  });
});
