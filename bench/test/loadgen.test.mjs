// Checks that the C load generator (bench/loadgen) measures only correct
// echoes: it must pass against the real echo servers, in every workload, over
// TCP and over TLS, and fail with exit status 2 and an error naming the fault
// against servers that corrupt, drop, duplicate, reorder, retype, cross,
// truncate or misframe, or present a certificate it must not trust. Over TLS
// it must also pass against servers that split their records anywhere or
// renegotiate mid-transfer. It builds the generator with make first (which
// needs libssl-dev). Run: node --test bench/test/ (after `npm run build`;
// `npm test` runs it too).
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NO_OPENSSL, assertEchoRun, dribblingRelay, rawServer, rawServerDropping, realServers, startBenchServer, tlsFiles, tlsServerOptions, wsServer } from './helpers.mjs';

const BENCH = dirname(dirname(fileURLToPath(import.meta.url)));
const LOADGEN = join(BENCH, 'loadgen', 'loadgen');
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

before(() => {
  const r = spawnSync('make', ['-s', '-C', join(BENCH, 'loadgen')], { encoding: 'utf8' });
  if (r.error) throw new Error(`cannot run make to build the C load generator (${r.error.message}): install gcc and make`);
  assert.equal(r.status, 0, `make -C bench/loadgen failed:\n${r.stdout}${r.stderr}`);
});

/**
 * Runs the C generator against `port`; resolves with its exit code, result and
 * the lines it printed before the result. With onLine, stdin is a pipe that
 * onLine may end (the idle workload holds until then).
 */
function generate(port, overrides = {}, onLine = null) {
  const config = { mode: 'ws', port, size: 32, binary: true, connections: 4, depth: 4, warmupMs: 50, durationMs: 150, closeTimeoutMs: 2000, ...overrides };
  const child = spawn(LOADGEN, [JSON.stringify(config)], { stdio: [onLine ? 'pipe' : 'ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const lines = [];
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('loadgen did not finish within 20 s'));
    }, 20_000);
    child.stdout.on('data', (c) => {
      out += c;
      let nl;
      while ((nl = out.indexOf('\n')) >= 0 && !out.startsWith('{')) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        lines.push(line);
        onLine?.(line, () => child.stdin.end());
      }
    });
    child.on('close', (code) => { // after stdout is fully read ('exit' can come first)
      clearTimeout(timer);
      try {
        resolve({ code, result: JSON.parse(out.trim()), lines });
      } catch {
        reject(new Error(`loadgen exited (${code}) with ${JSON.stringify(out)}`));
      }
    });
  });
}




async function withServer(serverPromise, fn) {
  const server = await serverPromise;
  try {
    return await fn(server);
  } finally {
    await server.stop();
  }
}

async function expectFault(serverPromise, overrides, pattern) {
  await withServer(serverPromise, async (server) => {
    const { code, result } = await generate(server.port, overrides);
    assert.equal(code, 2, `expected exit 2, got ${code} with ${JSON.stringify(result)}`);
    assert.match(result.error, pattern);
  });
}

// ------------------------------------------------------------ against the real servers

describe('against the real bench servers', { concurrency: 3 }, () => {
  const servers = realServers();

  for (const [name, mode] of [['sockeye', 'ws'], ['ws', 'ws'], ['raw', 'raw']]) {
    // 32 B: 7-bit length; 1 KiB text: 16-bit length; 200,000 B: 64-bit length.
    for (const [size, binary] of [[32, true], [1024, false], [200_000, true]]) {
      test(`echo passes against ${name} (${size} B ${binary ? 'binary' : 'text'})`, async () => {
        const { code, result } = await generate(servers[name].port, { mode, size, binary });
        assertEchoRun(code, result, 'c', size);
        // The same fields bench/generator.mjs reports, so bench/run.mjs can read either.
        for (const key of ['seconds', 'messages', 'msgPerSec', 'mbPerSec', 'p50Ms', 'p99Ms', 'generatorCpu', 'serverCpu', 'otherCpu', 'idleConnections']) assert.ok(key in result, key);
      });
    }
    test(`handshake workload passes against ${name}`, async () => {
      // A window long enough that a loaded machine still completes cycles in it (a correctness test, not a timing one).
      const { code, result } = await generate(servers[name].port, { mode, workload: 'handshake', connections: 4, warmupMs: 200, durationMs: 2000 });
      assert.equal(result.error, undefined);
      assert.equal(code, 0);
      assert.ok(result.handshakes > 0 && result.handshakesPerSec > 0);
    });
  }

  test('idle workload: announces its connections, holds them until stdin closes, then closes them', async () => {
    const { code, result, lines } = await generate(servers.sockeye.port, { workload: 'idle', connections: 300, batch: 50, holdMs: 10_000 }, (line, endInput) => {
      if (line.startsWith('ESTABLISHED')) setTimeout(endInput, 100);
    });
    assert.equal(result.error, undefined);
    assert.equal(code, 0);
    assert.deepEqual(lines, ['ESTABLISHED 300']);
    assert.equal(result.connections, 300);
    assert.ok(result.heldMs >= 90 && result.heldMs < 5000, `held ${result.heldMs} ms`);
  });
});

describe('fan-out against the real bench servers', { concurrency: 2 }, () => {
  for (const name of ['sockeye', 'ws', 'floor']) {
    test(`fanout passes against ${name} --fanout`, async () => {
      await withServer(startBenchServer(name, ['--fanout']), async (server) => {
        // A window long enough that a loaded machine still completes broadcasts in it (a correctness test, not a
        // timing one): with the default 150 ms, a CI run once counted none against ws while other test files ran.
        const { code, result } = await generate(server.port, { workload: 'fanout', connections: 20, depth: 1, size: 64, warmupMs: 200, durationMs: 1500 });
        assert.equal(result.error, undefined);
        assert.equal(code, 0);
        assert.ok(result.broadcasts > 0);
        assert.equal(result.deliveries, result.broadcasts * 20);
      });
    });
  }
});

// ------------------------------------------------------------ the framing floor (servers/floor.mjs)

describe('the framing floor server', { concurrency: 2 }, () => {
  // Its row is only a number if every echo it returns is verified like any server's.
  // Frames in one read, frames split across reads (5,000 B with 16 in flight), and frames that span reads and
  // are unmasked read by read into their reply (16- and 64-bit lengths), with echoes behind them in one read.
  const cases = [[32, true, 1, 150], [32, true, 16, 150], [1024, false, 16, 150], [5000, false, 16, 150], [65_535, true, 2, 150], [65_536, true, 4, 500], [100_001, false, 3, 500], [1 << 20, true, 4, 1000], [16 << 20, true, 2, 2000]];
  for (const [size, binary, depth, durationMs] of cases) {
    test(`echo passes against floor (${size} B ${binary ? 'binary' : 'text'}, ${depth} in flight)`, async () => {
      await withServer(startBenchServer('floor'), async (server) => {
        const { code, result } = await generate(server.port, { size, binary, depth, durationMs, ...(size > 65_536 ? { connections: 1 } : {}) });
        assertEchoRun(code, result, 'c', size);
      });
    });
  }

  test('an unmasked or fragmented client frame ends the connection (what it does not handle is never measured), a close frame is echoed before FIN', async () => {
    await withServer(startBenchServer('floor'), async (server) => {
      const { Socket } = await import('node:net');
      const talk = (frame) =>
        new Promise((resolve, reject) => {
          const socket = new Socket();
          const timer = setTimeout(() => reject(new Error('no end within 5 s')), 5000);
          let got = Buffer.alloc(0);
          let upgraded = false;
          socket.on('data', (d) => {
            got = Buffer.concat([got, d]);
            if (!upgraded && got.includes('\r\n\r\n')) {
              upgraded = true;
              got = got.subarray(got.indexOf('\r\n\r\n') + 4);
              socket.write(frame);
            }
          });
          socket.on('error', () => {});
          socket.on('close', () => {
            clearTimeout(timer);
            resolve({ upgraded, got });
          });
          socket.connect(server.port, '127.0.0.1', () => {
            socket.write('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
          });
        });
      const unmasked = await talk(Buffer.from([0x82, 0x02, 0x61, 0x62]));
      assert.ok(unmasked.upgraded);
      assert.equal(unmasked.got.length, 0, 'nothing echoed');
      const fragment = await talk(Buffer.from([0x02, 0x82, 0, 0, 0, 0, 0x61, 0x62]));
      assert.ok(fragment.upgraded);
      assert.equal(fragment.got.length, 0, 'nothing echoed');
      // A masked close frame with code 1000 (key 0, so the payload reads as sent).
      const closed = await talk(Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]));
      assert.deepEqual([...closed.got], [0x88, 0x02, 0x03, 0xe8]);
    });
  });
});

// ------------------------------------------------------------ over TLS (the wss scenario)

describe('over TLS', { concurrency: 3 }, () => {
  // cert.pem: the one certificate the generator is told to trust (tlsCa), for 127.0.0.1.
  // other-: the same name, not trusted. localhost-: trusted below, but issued for the name localhost only.
  const tls = tlsFiles({ 'other-': {}, 'localhost-': { subject: '/CN=localhost', altName: 'DNS:localhost' } });
  const servers = realServers(tls);
  const skip = NO_OPENSSL;

  for (const [name, mode] of [['sockeye', 'ws'], ['ws', 'ws'], ['raw', 'raw']]) {
    test(`echo passes against ${name} --tls, verifying its certificate (1 MiB, 4 in flight, as wss-bulk1m-d4)`, { skip }, async () => {
      const size = 1 << 20;
      // A 1 s window, as in the test below: with three TLS tests at once on 2 CPUs, a TLS handshake and
      // a 1 MiB echo did not always fit the default 150 ms, and a run with no echo in its window fails.
      const { code, result } = await generate(servers[name].port, { mode, size, connections: 1, depth: 4, tls: true, tlsCa: tls.ca, durationMs: 1000 });
      assertEchoRun(code, result, 'c', size);
      // What bench/generator.mjs reports over TLS, and the library, for the report.
      assert.match(result.tlsProtocol, /^TLSv1\.[23]$/);
      assert.match(result.tlsCipher, /^TLS_|^ECDHE-/);
      assert.match(result.tlsLibrary, /^OpenSSL \d/);
    });
  }

  test('echo over TLS: records that OpenSSL has already read are handled without another epoll event', { skip }, async () => {
    // One message in flight: once the server has echoed it, it sends nothing
    // until the next one. The echo's 7 records often come in one read();
    // records left decrypted or buffered inside OpenSSL produce no epoll
    // event, so a generator that stops reading before SSL_read says
    // WANT_READ waits for them forever.
    // A 1 s window, not the default 150 ms: a hang shows as no echo at all, however long the
    // window, and on a loaded CI machine (three TLS tests at once on 2 CPUs) a 150 ms window once
    // passed with no echo from a server that was merely starved, not stalled.
    const size = 100_000;
    const { code, result } = await generate(servers.raw.port, { mode: 'raw', size, connections: 4, depth: 1, tls: true, tlsCa: tls.ca, warmupMs: 200, durationMs: 1000 });
    assertEchoRun(code, result, 'c', size);
    assert.equal(result.idleConnections, 0, 'every connection completed echoes in the window');
  });

  test('echo over TLS: many small messages per TLS record, and text', { skip }, async () => {
    for (const [size, binary] of [[32, true], [1024, false]]) {
      const { code, result } = await generate(servers.sockeye.port, { size, binary, connections: 4, depth: 16, tls: true, tlsCa: tls.ca });
      assertEchoRun(code, result, 'c', size);
    }
  });

  test('handshake workload over TLS: a TLS handshake per cycle; raw closes with close_notify and FIN', { skip }, async () => {
    for (const [name, mode] of [['sockeye', 'ws'], ['raw', 'raw']]) {
      const { code, result } = await generate(servers[name].port, { mode, workload: 'handshake', connections: 4, warmupMs: 100, durationMs: 500, tls: true, tlsCa: tls.ca });
      assert.equal(result.error, undefined, name);
      assert.equal(code, 0);
      assert.ok(result.handshakes > 0, name);
    }
  });

  test('idle workload over TLS: holds its connections, then closes them', { skip }, async () => {
    const { code, result, lines } = await generate(servers.ws.port, { workload: 'idle', connections: 40, batch: 20, holdMs: 10_000, tls: true, tlsCa: tls.ca }, (line, endInput) => {
      if (line.startsWith('ESTABLISHED')) setTimeout(endInput, 50);
    });
    assert.equal(result.error, undefined);
    assert.equal(code, 0);
    assert.deepEqual(lines, ['ESTABLISHED 40']);
  });

  test('fanout workload over TLS against sockeye --fanout --tls', { skip }, async () => {
    await withServer(startBenchServer('sockeye', ['--fanout', '--tls', tls.dir]), async (server) => {
      const { code, result } = await generate(server.port, { workload: 'fanout', connections: 10, depth: 1, size: 64, tls: true, tlsCa: tls.ca, warmupMs: 200, durationMs: 1500 });
      assert.equal(result.error, undefined);
      assert.equal(code, 0);
      assert.ok(result.broadcasts > 0);
      assert.equal(result.deliveries, result.broadcasts * 10);
    });
  });

  test('TLS: one flipped bit in a decrypted echo fails the run, naming the byte', { skip }, () =>
    expectFault(
      rawServer(
        (socket, chunk, state) => {
          const at = 3 * 100_000 + 54_321 - state.bytes; // message 3, byte 54321 of the plaintext stream
          if (at >= 0 && at < chunk.length) chunk[at] ^= 0x10;
          state.bytes += chunk.length;
          socket.write(chunk);
        },
        undefined,
        tlsServerOptions(tls),
      ),
      { mode: 'raw', size: 100_000, connections: 1, tls: true, tlsCa: tls.ca },
      /differs from the sent one at byte 54321 of message 3/,
    ));

  test('TLS: a server certificate other than the trusted one fails the run (verification error)', { skip }, () =>
    expectFault(
      rawServer((socket, chunk) => socket.write(chunk), undefined, tlsServerOptions(tls, 'other-')),
      { mode: 'raw', connections: 1, tls: true, tlsCa: tls.ca },
      /connection 1: TLS certificate verification failed: self-signed certificate/,
    ));

  test('TLS: without tlsCa the default roots are trusted, which do not include the test certificate', { skip }, () =>
    expectFault(rawServer((socket, chunk) => socket.write(chunk), undefined, tlsServerOptions(tls)), { mode: 'raw', connections: 1, tls: true }, /TLS certificate verification failed: self-signed certificate/));

  test('TLS: a trusted certificate issued for another name fails the run; with that servername it passes', { skip }, async () => {
    const localhostCa = join(tls.dir, 'localhost-cert.pem');
    await withServer(rawServer((socket, chunk) => socket.write(chunk), undefined, tlsServerOptions(tls, 'localhost-')), async (server) => {
      const wrong = await generate(server.port, { mode: 'raw', connections: 1, tls: true, tlsCa: localhostCa });
      assert.equal(wrong.code, 2);
      assert.match(wrong.result.error, /TLS certificate verification failed: IP address mismatch \(the certificate must be for 127\.0\.0\.1/);
      // A 1 s window, for the same reason as the TLS echo tests above.
      const right = await generate(server.port, { mode: 'raw', connections: 1, tls: true, tlsCa: localhostCa, servername: 'localhost', durationMs: 1000 });
      assertEchoRun(right.code, right.result, 'c', 32);
    });
  });

  test('TLS: records and handshake messages arriving a few bytes per read still verify', { skip }, () =>
    // The real ws --tls server behind a relay that re-chunks its encrypted
    // bytes into 1 to 7 byte writes: every SSL_connect and SSL_read step waits
    // for the rest of a record, many times over.
    withServer(dribblingRelay(servers.ws.port), async (relay) => {
      const { code, result } = await generate(relay.port, { size: 300, connections: 2, depth: 2, warmupMs: 0, durationMs: 300, tls: true, tlsCa: tls.ca });
      assertEchoRun(code, result, 'c', 300);
    }));

  test('TLS: an echo written back in tiny TLS records (1 to 7 bytes each) still verifies', { skip }, () =>
    withServer(
      rawServer(
        (socket, chunk, state) => {
          // Each write is its own record; a turn of the event loop apart, so node:tls cannot join them.
          state.queue = Buffer.concat([state.queue ?? Buffer.alloc(0), chunk]);
          if (state.busy) return;
          state.busy = true;
          const pump = () => {
            if (socket.destroyed) return;
            if (state.queue.length === 0) return void (state.busy = false);
            const n = 1 + Math.floor(Math.random() * 7);
            socket.write(state.queue.subarray(0, n));
            state.queue = state.queue.subarray(n);
            setImmediate(pump);
          };
          pump();
        },
        undefined,
        tlsServerOptions(tls),
      ),
      async (server) => {
        const { code, result } = await generate(server.port, { mode: 'raw', size: 200, connections: 2, depth: 2, warmupMs: 0, durationMs: 300, tls: true, tlsCa: tls.ca });
        assertEchoRun(code, result, 'c', 200);
      },
    ));

  test('TLS: a server that keeps renegotiating (TLS 1.2) mid-transfer: writes wait for reads, and nothing stalls', { skip }, async () => {
    // A renegotiation starts when the server's HelloRequest is read, while
    // megabytes of ours are being written. SSL_write cannot go on until the
    // server's handshake messages are read (an SSL_write that met the
    // server's echoes there fails with "unexpected record"), and the reads
    // must write the client's handshake messages whatever the socket's
    // state: the case of a "want read" taken for a "want write".
    let renegotiations = 0;
    await withServer(
      rawServer(
        (socket, chunk) => socket.write(chunk),
        (socket) => {
          // One after another: a renegotiation asked for while one is running breaks node:tls's own side.
          const again = () =>
            !socket.destroyed &&
            socket.renegotiate({}, (err) => {
              if (err) return;
              renegotiations++;
              setTimeout(again, 5);
            });
          setTimeout(again, 5);
        },
        { ...tlsServerOptions(tls), maxVersion: 'TLSv1.2' },
      ),
      async (server) => {
        // 1 MiB messages over a 1.5 s window: a connection that stalls completes nothing, one that is
        // merely slowed (npm test runs two files at once) still completes many. (4 MiB in 400 ms left a
        // connection with none under load: a timing failure, not a stall.)
        const size = 1 << 20;
        const { code, result } = await generate(server.port, { mode: 'raw', size, connections: 2, depth: 4, warmupMs: 100, durationMs: 1500, tls: true, tlsCa: tls.ca });
        assertEchoRun(code, result, 'c', size);
        assert.equal(result.tlsProtocol, 'TLSv1.2');
        // A stalled connection completes nothing in the window.
        assert.equal(result.idleConnections, 0);
        assert.ok(renegotiations >= 2, `${renegotiations} renegotiations`);
      },
    );
  });
});

// ------------------------------------------------------------ faults it must catch

test('raw: one flipped bit in the echo stream fails the run', () =>
  expectFault(
    rawServer((socket, chunk, state) => {
      const at = 1010 - state.bytes; // byte 1010 of the stream: message 31, offset 18 (past the 16-byte stamp)
      if (at >= 0 && at < chunk.length) chunk[at] ^= 0x01;
      state.bytes += chunk.length;
      socket.write(chunk);
    }),
    { mode: 'raw', connections: 1 },
    /differs from the sent one at byte 18 of message 31/,
  ));

test('raw: a lost message fails the run (the next stamp does not match)', () =>
  expectFault(
    // Message 10 of 32 bytes left out.
    rawServerDropping(320, 352),
    { mode: 'raw', connections: 1 },
    /stamp mismatch at message 10/,
  ));

test('ws: a corrupted byte deep inside a 64 KiB echo fails the run', () =>
  expectFault(
    wsServer((ws, data, isBinary, n) => {
      if (n === 3) data[40_000] ^= 0x80;
      ws.send(data, { binary: isBinary });
    }),
    { size: 65_536, connections: 1 },
    /differs from the sent one at byte 40000 of message 2/,
  ));

test('ws: a duplicated echo fails the run', () =>
  expectFault(
    wsServer((ws, data, isBinary, n) => {
      ws.send(data, { binary: isBinary });
      if (n === 5) ws.send(data, { binary: isBinary });
    }),
    { connections: 1 },
    /stamp mismatch at message 5/,
  ));

test('ws: two echoes swapped fail the run', () => {
  let held = null;
  return expectFault(
    wsServer((ws, data, isBinary, n) => {
      if (n === 4) return void (held = data);
      ws.send(data, { binary: isBinary });
      if (n === 5) ws.send(held, { binary: isBinary });
    }),
    { connections: 1 },
    /connection 1: echo stamp mismatch at message 3 \(expected 0000000100000003, got "0000000100000004"\)/,
  );
});

test('ws: a dropped echo fails the run (nothing arrives for it, then the wrong one does)', () =>
  expectFault(
    wsServer((ws, data, isBinary, n) => {
      if (n !== 7) ws.send(data, { binary: isBinary });
    }),
    { connections: 1 },
    /stamp mismatch at message 6/,
  ));

test('ws: an echo sent to another connection fails the run', () =>
  expectFault(
    wsServer((ws, data, isBinary, n, wss) => {
      // The 3rd message of each connection goes to some other client instead.
      const other = [...wss.clients].find((c) => c !== ws) ?? ws;
      (n === 3 ? other : ws).send(data, { binary: isBinary });
    }),
    { connections: 2, depth: 1 },
    /echo stamp mismatch at message \d+ \(expected 0000000(1|2)/,
  ));

test('ws: a text message echoed as binary fails the run', () =>
  expectFault(wsServer((ws, data) => ws.send(data, { binary: true })), { size: 1024, binary: false, connections: 1 }, /echo came back as BINARY/));

test('ws: a binary message echoed as text fails the run', () =>
  expectFault(wsServer((ws, data) => ws.send(data.toString('latin1'))), { connections: 1 }, /echo came back as TEXT/));

test('ws: a truncated echo fails the run', () =>
  expectFault(wsServer((ws, data, isBinary) => ws.send(data.subarray(0, data.length - 1), { binary: isBinary })), { size: 100, connections: 1 }, /echo of message 0 has 99 bytes, sent 100/));

test('ws: a close from the server during the run fails it, with the code', () =>
  expectFault(
    wsServer((ws, data, isBinary, n) => {
      if (n === 20) ws.close(1011, 'oops');
      else ws.send(data, { binary: isBinary });
    }),
    { connections: 1, depth: 1 },
    /server sent close \(1011\)/,
  ));

test('ws: an echo split into fragments, with pings between them, still verifies and every ping is answered', async () => {
  const pongs = { n: 0, bad: 0 };
  await withServer(
    wsServer(
      (ws, data, isBinary) => {
        // RFC 6455 section 5.4: control frames may be injected between fragments.
        ws.send(data.subarray(0, 10), { binary: isBinary, fin: false });
        ws.ping('between');
        ws.send(data.subarray(10, 11), { binary: isBinary, fin: false });
        ws.send(data.subarray(11), { binary: isBinary, fin: true });
      },
      (ws) => ws.on('pong', (d) => (d.toString() === 'between' ? pongs.n++ : pongs.bad++)),
    ),
    async (server) => {
      const { code, result } = await generate(server.port, { size: 1024, binary: false, connections: 2 });
      assert.equal(result.error, undefined);
      assert.equal(code, 0);
      assert.ok(result.messages > 0);
      assert.ok(pongs.n > 0, 'pongs came back');
      assert.equal(pongs.bad, 0);
    },
  );
});

test('ws: echoes delivered a few bytes per write (headers split anywhere) still verify', async () => {
  // The real ws echo server behind a relay that re-chunks what it sends into
  // 1 to 7 byte writes, so frame headers, extended lengths and stamps all
  // arrive split across reads.
  await withServer(startBenchServer('ws'), async (upstream) => {
    await withServer(
      dribblingRelay(upstream.port),
      async (relay) => {
        const { code, result } = await generate(relay.port, { size: 300, connections: 2, depth: 2, warmupMs: 0, durationMs: 300 });
        assert.equal(result.error, undefined);
        assert.equal(code, 0);
        assert.ok(result.messages > 0);
      },
    );
  });
});

/** A hand-made server: answers the handshake with `status` and `accept(key)`, then sends `after`. */
function handshakeServer(accept, after = Buffer.alloc(0), status = '101 Switching Protocols') {
  return rawServer((socket, chunk, state) => {
    if (state.bytes > 0) return;
    state.bytes = chunk.length;
    const key = /Sec-WebSocket-Key: (\S+)/i.exec(chunk.toString('latin1'))[1];
    socket.write(`HTTP/1.1 ${status}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept(key)}\r\n\r\n`);
    socket.write(after);
  });
}
const goodAccept = (key) => createHash('sha1').update(key + GUID).digest('base64');

test('ws: a wrong Sec-WebSocket-Accept fails the run (RFC 6455 section 4.1)', () =>
  expectFault(handshakeServer(() => 'dGhlIHNhbXBsZSBub25jZQ=='), { connections: 1 }, /wrong Sec-WebSocket-Accept/));

test('ws: a status other than 101 fails the run', () =>
  expectFault(handshakeServer(goodAccept, Buffer.alloc(0), '403 Forbidden'), { connections: 1 }, /status 403 instead of 101/));

test('ws: a masked frame from the server fails the run (RFC 6455 section 5.1)', () =>
  expectFault(handshakeServer(goodAccept, Buffer.from([0x82, 0x82, 1, 2, 3, 4, 0, 0])), { connections: 1 }, /server sent a masked frame/));

test('ws: RSV bits without an extension fail the run', () =>
  expectFault(handshakeServer(goodAccept, Buffer.from([0xc2, 0x00])), { connections: 1 }, /RSV bits set without an extension/));

test('ws: a length in a longer encoding than needed fails the run (RFC 6455 section 5.2)', () =>
  expectFault(handshakeServer(goodAccept, Buffer.from([0x82, 126, 0, 5, 1, 2, 3, 4, 5])), { connections: 1 }, /frame length 5 not in its minimal encoding/));

test('fanout: a client that does not get the broadcast fails the run, naming how many did', () =>
  expectFault(
    wsServer((ws, data, isBinary, n, wss) => {
      const all = [...wss.clients];
      for (const c of all.slice(0, -1)) c.send(data, { binary: isBinary });
    }),
    { workload: 'fanout', connections: 10, depth: 1, stallTimeoutMs: 300 },
    /broadcast 0 reached 9 of 10 clients within 300 ms/,
  ));

test('idle: a connection the server closes while idle fails the run', () =>
  expectFault(
    wsServer(
      (ws, data, isBinary) => ws.send(data, { binary: isBinary }),
      (ws, wss) => {
        if (wss.clients.size === 5) setTimeout(() => ws.terminate(), 200);
      },
    ),
    { workload: 'idle', connections: 5, holdMs: 2000 },
    /connection \d+ closed by the server during the run/,
  ));

test('a bad config fails with exit 2 and says what is wrong', async () => {
  const { code, result } = await generate(1, { size: 8 });
  assert.equal(code, 2);
  assert.match(result.error, /payload size must be at least 32 bytes/);
});
