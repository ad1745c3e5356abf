/**
 * StreamAdapter (src/transport/stream-adapter.ts): the one place that knows
 * what kind of stream a session runs over. Over real TCP and TLS sockets on
 * 127.0.0.1 and an in-memory pair: which adapter each kind gets (only a
 * server on plain TCP closes first, RFC 6455 section 7.1.1; TLS is
 * encrypted), that one adapter is shared by every stream of its kind, that
 * attach() routes each stream's events to its own owner, and how end()
 * finishes a stream: a clean server on TCP with nothing left to send closes
 * at once, anything else gets FIN (or close_notify) and reads on, and an
 * ended stream is left alone.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as netConnect, createServer as createNetServer, Socket, type AddressInfo, type Server } from 'node:net';
import { Duplex } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { StreamAdapter, isEncrypted, remoteAddressOf, setNoDelay, type StreamOwner } from '../../src/transport/stream-adapter.js';
import { testCert } from '../helpers/certs.js';
import { duplexPair } from '../helpers/duplex-pair.js';

interface SocketPair<S extends Socket> {
  /** The accepted socket. */
  server: S;
  /** The connecting socket. */
  client: S;
  close(): Promise<void>;
}

async function closeServer(listener: Server, sockets: Socket[]): Promise<void> {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => listener.close(() => resolve()));
}

/** A TCP connection on 127.0.0.1 (port 0): both ends. */
async function tcpPair(): Promise<SocketPair<Socket>> {
  const listener = createNetServer();
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const accepted = once(listener, 'connection') as Promise<[Socket]>;
  const client = netConnect({ host: '127.0.0.1', port: (listener.address() as AddressInfo).port, allowHalfOpen: true });
  const [[server]] = await Promise.all([accepted, once(client, 'connect')]);
  server.on('error', () => {});
  client.on('error', () => {});
  return { server, client, close: () => closeServer(listener, [server, client]) };
}

/** A TLS connection on 127.0.0.1 (port 0) with the test certificate: both ends, handshake done. */
async function tlsPair(): Promise<SocketPair<TLSSocket>> {
  const cert = testCert();
  const listener = createTlsServer({ key: cert.key, cert: cert.cert });
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const accepted = once(listener, 'secureConnection') as Promise<[TLSSocket]>;
  const client = tlsConnect({ host: '127.0.0.1', port: (listener.address() as AddressInfo).port, ca: cert.ca });
  const [[server]] = await Promise.all([accepted, once(client, 'secureConnect')]);
  server.on('error', () => {});
  client.on('error', () => {});
  return { server, client, close: () => closeServer(listener, [server, client]) };
}

/** An owner that writes down what it is given. */
class RecordingOwner implements StreamOwner {
  readonly events: string[] = [];
  onData(chunk: Buffer): void {
    this.events.push(`data ${chunk.toString()}`);
  }
  onDrain(): void {
    this.events.push('drain');
  }
  onEnd(): void {
    this.events.push('end');
  }
  onStreamError(err: Error): void {
    this.events.push(`error ${err.message}`);
  }
  onStreamClose(): void {
    this.events.push('close');
  }
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Records calls to stream.end() and stream.destroy(), then lets them through. */
function spyEnds(stream: Duplex): string[] {
  const calls: string[] = [];
  const end = stream.end as (...args: unknown[]) => Duplex;
  const destroy = stream.destroy as (...args: unknown[]) => Duplex;
  stream.end = ((...args: unknown[]) => {
    calls.push('end');
    return end.apply(stream, args);
  }) as Duplex['end'];
  stream.destroy = ((...args: unknown[]) => {
    calls.push('destroy');
    return destroy.apply(stream, args);
  }) as Duplex['destroy'];
  return calls;
}

/** Reads `socket` to its end: the bytes received, or a rejection if it was reset instead. */
function readToEnd(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  return new Promise((resolve, reject) => {
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.once('error', reject);
  });
}

describe('StreamAdapter.for', () => {
  it('a server over a TCP socket closes first and is not encrypted; a client over TCP does not close first', async () => {
    const tcp = await tcpPair();
    try {
      const server = StreamAdapter.for(tcp.server, 'server');
      assert.deepEqual([server.closesFirst, server.encrypted], [true, false]);
      const client = StreamAdapter.for(tcp.client, 'client');
      assert.deepEqual([client.closesFirst, client.encrypted], [false, false]);
    } finally {
      await tcp.close();
    }
  });

  it('a TLS socket is encrypted and never closes first, on either side', async () => {
    const tls = await tlsPair();
    try {
      assert.ok(tls.server instanceof Socket, 'a TLSSocket is a net.Socket too: the TLS check must come first');
      for (const [stream, role] of [
        [tls.server, 'server'],
        [tls.client, 'client'],
      ] as const) {
        const a = StreamAdapter.for(stream, role);
        assert.deepEqual([a.encrypted, a.closesFirst], [true, false], role);
      }
    } finally {
      await tls.close();
    }
  });

  it('an in-memory pair never closes first and is not encrypted', () => {
    const [a, b] = duplexPair();
    for (const role of ['server', 'client'] as const) {
      const adapter = StreamAdapter.for(role === 'server' ? a : b, role);
      assert.deepEqual([adapter.closesFirst, adapter.encrypted], [false, false], role);
    }
    a.destroy();
    b.destroy();
  });

  it('shares one adapter object among the streams of one kind, and none between kinds', async () => {
    const tcp1 = await tcpPair();
    const tcp2 = await tcpPair();
    const tls1 = await tlsPair();
    const tls2 = await tlsPair();
    const [m1, m2] = duplexPair();
    try {
      const tcpServer = StreamAdapter.for(tcp1.server, 'server');
      assert.equal(StreamAdapter.for(tcp2.server, 'server'), tcpServer);
      const tls = StreamAdapter.for(tls1.server, 'server');
      assert.equal(StreamAdapter.for(tls2.server, 'server'), tls);
      assert.equal(StreamAdapter.for(tls1.client, 'client'), tls);
      const plain = StreamAdapter.for(tcp1.client, 'client');
      assert.equal(StreamAdapter.for(tcp2.client, 'client'), plain);
      assert.equal(StreamAdapter.for(m1, 'server'), plain);
      assert.equal(StreamAdapter.for(m2, 'client'), plain);
      assert.equal(new Set([tcpServer, tls, plain]).size, 3);
    } finally {
      m1.destroy();
      m2.destroy();
      await Promise.all([tcp1.close(), tcp2.close(), tls1.close(), tls2.close()]);
    }
  });
});

describe('StreamAdapter.attach', () => {
  it("routes each stream's data, drain, end, error and close to its own owner", async () => {
    const [a, b] = duplexPair(16);
    const adapter = StreamAdapter.for(a, 'server');
    const ownerA = new RecordingOwner();
    const ownerB = new RecordingOwner();
    adapter.attach(a, ownerA);
    adapter.attach(b, ownerB);

    b.write('hi');
    await until(() => ownerA.events.length === 1, 'data at a');
    assert.deepEqual(ownerA.events, ['data hi']);

    b.pause(); // the write to b waits for its reader: a keeps it buffered
    assert.equal(a.write('x'.repeat(64)), false, 'above the high-water mark: a drain will follow');
    await nextTurn();
    assert.deepEqual(ownerA.events, ['data hi'], 'no drain while the write waits');
    b.resume();
    await until(() => ownerA.events.length === 2 && ownerB.events.length === 1, 'drain at a, data at b');
    assert.deepEqual(ownerA.events, ['data hi', 'drain']);
    assert.deepEqual(ownerB.events, [`data ${'x'.repeat(64)}`]);

    b.end();
    await until(() => ownerA.events.length === 3, 'end at a');
    assert.equal(ownerA.events[2], 'end');

    a.destroy(new Error('boom'));
    await until(() => ownerA.events.length === 5, 'error and close at a');
    assert.deepEqual(ownerA.events.slice(3), ['error boom', 'close']);
    await until(() => ownerB.events.includes('close'), 'close at b (the pair resets)');
    assert.ok(!ownerB.events.some((e) => e === 'end' || e.startsWith('error') || e === 'drain'), ownerB.events.join(', '));
  });

  it('routes the events of a real TCP socket', async () => {
    const tcp = await tcpPair();
    try {
      const owner = new RecordingOwner();
      StreamAdapter.for(tcp.server, 'server').attach(tcp.server, owner);
      tcp.client.end('over tcp');
      await until(() => owner.events.includes('end'), 'end');
      tcp.server.destroy();
      await until(() => owner.events.includes('close'), 'close');
      const data = owner.events.filter((e) => e.startsWith('data ')).map((e) => e.slice(5));
      assert.equal(data.join(''), 'over tcp');
      assert.deepEqual(owner.events.slice(data.length), ['end', 'close']);
    } finally {
      await tcp.close();
    }
  });
});

describe('StreamAdapter.end', () => {
  it('a TCP server after a clean close, with nothing buffered, closes at once; the peer gets every byte, then FIN', async () => {
    const tcp = await tcpPair();
    try {
      const received = readToEnd(tcp.client);
      await new Promise<void>((resolve, reject) => tcp.server.write('last words', (err) => (err ? reject(err) : resolve())));
      assert.equal(tcp.server.writableLength, 0);
      StreamAdapter.for(tcp.server, 'server').end(tcp.server, true);
      assert.equal(tcp.server.destroyed, true, 'destroyed synchronously');
      assert.equal((await received).toString(), 'last words', 'an orderly FIN, not a reset');
    } finally {
      await tcp.close();
    }
  });

  it('a TCP server after a clean close, with bytes still buffered, ends instead: every byte arrives', async () => {
    const tcp = await tcpPair();
    try {
      tcp.client.pause();
      const size = 32 * 1024 * 1024;
      tcp.server.write(Buffer.alloc(size, 7));
      assert.ok(tcp.server.writableLength > 0, `precondition: bytes buffered above the kernel (${tcp.server.writableLength})`);
      StreamAdapter.for(tcp.server, 'server').end(tcp.server, true);
      assert.equal(tcp.server.destroyed, false, 'not destroyed with bytes buffered');
      assert.equal(tcp.server.writableEnded, true);
      let got = 0;
      tcp.client.on('data', (c: Buffer) => (got += c.length));
      tcp.client.resume();
      await once(tcp.client, 'end');
      assert.equal(got, size);
    } finally {
      await tcp.close();
    }
  });

  it('a TCP server after a failed close sends FIN and reads on: the peer sees end, and what it sends afterwards arrives', async () => {
    const tcp = await tcpPair();
    try {
      const owner = new RecordingOwner();
      const adapter = StreamAdapter.for(tcp.server, 'server');
      adapter.attach(tcp.server, owner);
      const received = readToEnd(tcp.client);
      adapter.end(tcp.server, false);
      assert.equal(tcp.server.destroyed, false);
      assert.equal(tcp.server.writableEnded, true);
      assert.equal((await received).length, 0, "the peer saw 'end'");
      tcp.client.end('still reading');
      await until(() => owner.events.includes('end'), 'end at the server');
      assert.deepEqual(owner.events.slice(0, 2), ['data still reading', 'end']);
    } finally {
      await tcp.close();
    }
  });

  it('a TCP client, a TLS socket and an in-memory stream are ended, not destroyed, even after a clean close', async () => {
    const tcp = await tcpPair();
    const tls = await tlsPair();
    const [m1, m2] = duplexPair();
    try {
      const cases: Array<[string, Duplex, 'server' | 'client', Duplex]> = [
        ['tcp client', tcp.client, 'client', tcp.server],
        ['tls server', tls.server, 'server', tls.client],
        ['tls client', tls.client, 'client', tls.server],
        ['in-memory server', m1, 'server', m2],
      ];
      for (const [name, stream, role, peer] of cases) {
        const peerEnded = once(peer, 'end');
        peer.resume();
        StreamAdapter.for(stream, role).end(stream, true);
        assert.equal(stream.destroyed, false, name);
        assert.equal(stream.writableEnded, true, name);
        await peerEnded;
      }
    } finally {
      m1.destroy();
      m2.destroy();
      await Promise.all([tcp.close(), tls.close()]);
    }
  });

  it('does nothing on a stream already ended: neither end() again nor destroy()', async () => {
    const tcp = await tcpPair();
    try {
      tcp.server.end();
      const calls = spyEnds(tcp.server);
      const adapter = StreamAdapter.for(tcp.server, 'server');
      assert.equal(tcp.server.writableLength, 0, 'so a clean end would otherwise destroy');
      adapter.end(tcp.server, true);
      adapter.end(tcp.server, false);
      assert.deepEqual(calls, []);
      assert.equal(tcp.server.destroyed, false);
    } finally {
      await tcp.close();
    }
  });
});

describe('isEncrypted, remoteAddressOf, setNoDelay', () => {
  /** A Duplex that is not a socket, with a setNoDelay of its own that must not be called. */
  class PlainDuplex extends Duplex {
    noDelayCalls = 0;
    override _read(): void {}
    override _write(_c: Buffer, _e: BufferEncoding, cb: () => void): void {
      cb();
    }
    setNoDelay(): void {
      this.noDelayCalls++;
    }
  }

  function spyNoDelay(s: Socket): boolean[] {
    const calls: boolean[] = [];
    const orig = s.setNoDelay.bind(s);
    s.setNoDelay = (v?: boolean) => {
      calls.push(v === true);
      return orig(v);
    };
    return calls;
  }

  it('on TCP and TLS sockets', async () => {
    const tcp = await tcpPair();
    const tls = await tlsPair();
    try {
      assert.deepEqual([isEncrypted(tcp.server), isEncrypted(tcp.client)], [false, false]);
      assert.deepEqual([isEncrypted(tls.server), isEncrypted(tls.client)], [true, true]);
      for (const s of [tcp.server, tcp.client, tls.server, tls.client]) assert.equal(remoteAddressOf(s), '127.0.0.1');
      for (const s of [tcp.server, tcp.client, tls.server]) {
        const calls = spyNoDelay(s);
        setNoDelay(s);
        assert.deepEqual(calls, [true], 'Nagle off');
      }
    } finally {
      await Promise.all([tcp.close(), tls.close()]);
    }
  });

  it('on a plain Duplex: not encrypted, no address, setNoDelay leaves it alone', () => {
    const d = new PlainDuplex();
    assert.equal(isEncrypted(d), false);
    assert.equal(remoteAddressOf(d), undefined);
    assert.doesNotThrow(() => setNoDelay(d));
    assert.equal(d.noDelayCalls, 0, 'only a net.Socket is touched');
    const [m] = duplexPair();
    assert.equal(isEncrypted(m), false);
    assert.equal(remoteAddressOf(m), undefined);
    assert.doesNotThrow(() => setNoDelay(m));
    d.destroy();
    m.destroy();
  });
});
