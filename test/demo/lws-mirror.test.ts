/**
 * lws-mirror-protocol on the demo server (libwebsockets'
 * plugins/protocol_lws_mirror.c): every message goes to every member of the
 * sender's `?mirror=NAME` group, sender included; groups do not leak into
 * each other; a member that does not read is dropped (1008) instead of
 * growing the server's memory.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type ClientSession, type Message } from '../../src/index.js';
import { MIRROR_SLOW_READER_CLOSE } from '../../src/demo/lws-mirror.js';
import { startDemo, type DemoFixture } from './demo-fixture.js';
import { RawClient, decodeClose, withTimeout } from '../helpers/ws-pair.js';

async function next(it: AsyncIterator<Message>, what: string): Promise<Message> {
  const r = await withTimeout(it.next(), 10_000, what);
  assert.equal(r.done, false, `${what}: the connection ended`);
  return r.value;
}

const SLOW_BOUND = 256 * 1024;

describe('lws-mirror-protocol', () => {
  let fx: DemoFixture;
  const open: Array<{ terminate(): void }> = [];
  before(async () => {
    fx = await startDemo({ mirror: { maxBufferedBytes: SLOW_BOUND } });
  });
  after(async () => {
    for (const c of open) c.terminate();
    await fx.close();
  });
  const join = async (group: string | null, opts: { perMessageDeflate?: boolean } = {}): Promise<ClientSession> => {
    const q = group === null ? '' : `?mirror=${encodeURIComponent(group)}`;
    const c = await connect(`ws://127.0.0.1:${fx.port}/${q}`, { protocol: 'lws-mirror-protocol', ...opts });
    open.push(c);
    return c;
  };

  it('sends each message to every member of the group, the sender included, and nowhere else', async () => {
    const a = await join('room1', { perMessageDeflate: true });
    const b = await join('room1');
    const other = await join('room2');
    const lobby = await join(null);
    assert.deepEqual(a.extensions, [], 'compression is declined, as on libwebsockets');
    const [ait, bit, oit, lit] = [a.messages(), b.messages(), other.messages(), lobby.messages()];
    a.send('c #ff0000 10 20 5;');
    for (const [name, it] of [['a', ait], ['b', bit]] as const) assert.equal((await next(it, `${name} gets a's message`)).text, 'c #ff0000 10 20 5;');
    b.send('from b');
    for (const [name, it] of [['a', ait], ['b', bit]] as const) assert.equal((await next(it, `${name} gets b's message`)).text, 'from b');
    // Only after room1's traffic went out: if it had leaked, it would come before these.
    other.send('room2 only');
    lobby.send('no group');
    assert.equal((await next(oit, 'room2 message')).text, 'room2 only');
    assert.equal((await next(lit, 'lobby message')).text, 'no group');
    assert.deepEqual(fx.demo.mirror.groupNames.sort(), ['', 'room1', 'room2']);
    for (const c of [a, b, other, lobby]) c.close();
    await Promise.all([a.closed, b.closed, other.closed, lobby.closed]);
    assert.deepEqual(fx.demo.mirror.groupNames, [], 'groups go away with their last member');
  });

  it('keeps each message whole and of its own type', async () => {
    const a = await join('types');
    const it = a.messages();
    const bin = Buffer.from([0xf0, 0x9f, 0x90, 0x9f, 0, 255]);
    a.send(bin);
    const big = 'é'.repeat(5000); // 10000 bytes: libwebsockets would split it into 4096-byte pieces
    a.send(big);
    const m1 = await next(it, 'binary back');
    assert.equal(m1.binary, true);
    assert.ok(m1.data.equals(bin));
    const m2 = await next(it, 'text back');
    assert.equal(m2.binary, false);
    assert.equal(m2.text, big);
    a.close();
    await a.closed;
  });

  it('closes a message over 64 KiB with 1009', async () => {
    const a = await join('big');
    a.send(Buffer.alloc(64 * 1024 + 1));
    const info = await withTimeout(a.closed, 10_000, 'the close');
    assert.equal(info.code, 1009);
  });

  it('drops a member that does not read (1008) before its queue passes the bound; the others carry on', async () => {
    const dropsBefore = fx.demo.mirror.slowReadersDropped;
    // A raw client that completes the handshake and then stops reading.
    const slow = await RawClient.open(fx.port, { path: '/?mirror=slow', headers: { 'Sec-WebSocket-Protocol': 'lws-mirror-protocol' } });
    open.push({ terminate: () => slow.destroy() });
    slow.pause();
    const [slowSession] = fx.demo.mirror.members('slow');
    assert.ok(slowSession, 'the slow member joined');
    const fast = await join('slow');
    const it = fast.messages();
    const payload = Buffer.alloc(32 * 1024, 'm');
    // Enough to fill the kernel's buffers on both sides of the slow socket and then the bound (at most 64 MiB).
    let sent = 0;
    for (let batch = 0; batch < 256 && fx.demo.mirror.slowReadersDropped === dropsBefore; batch++) {
      for (let i = 0; i < 8; i++) fast.send(payload);
      sent += 8;
      for (let i = 0; i < 8; i++) assert.equal((await next(it, 'the fast member gets its own messages')).data.length, payload.length);
    }
    assert.equal(fx.demo.mirror.slowReadersDropped, dropsBefore + 1, `no drop after ${sent} messages of 32 KiB`);
    // Bounded memory: the queue never went past the bound by more than the one message that crossed it.
    assert.ok(slowSession.data.maxBuffered <= SLOW_BOUND + payload.length + 14, `slow member held ${slowSession.data.maxBuffered} bytes`);
    assert.notEqual(slowSession.state, 'open');
    // The fast member is unaffected.
    fast.send('still here');
    assert.equal((await next(it, 'the fast member after the drop')).text, 'still here');
    assert.deepEqual(fx.demo.mirror.members('slow').length, 1);
    // If the slow reader reads after all, it gets what was queued and then the close frame with the reason.
    slow.resume();
    await slow.waitFor(() => slow.frames.some((f) => f.opcode === 0x8), 15_000, 'the close frame');
    const close = decodeClose(slow.frames.find((f) => f.opcode === 0x8)!);
    assert.deepEqual(close, { code: MIRROR_SLOW_READER_CLOSE.code, reason: MIRROR_SLOW_READER_CLOSE.reason });
    const dataFrames = slow.frames.filter((f) => f.opcode !== 0x8);
    assert.ok(dataFrames.length > 0 && dataFrames.length < sent, `${dataFrames.length} of ${sent} messages reached the slow reader`);
    for (const f of dataFrames) assert.equal(f.payload.length, payload.length);
    slow.destroy();
    fast.close();
    await fast.closed;
  });
});
