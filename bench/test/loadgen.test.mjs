// Checks that the C load generator (bench/loadgen) measures only correct
// echoes: it must pass against the real echo servers, in every workload, and
// fail with exit status 2 and an error naming the fault against servers that
// corrupt, drop, duplicate, reorder, retype, cross, truncate or misframe.
// It builds the generator with make first. Run: node --test bench/test/
// (after `npm run build`; `npm test` runs it too).
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assertEchoRun, rawServer, rawServerDropping, realServers, startBenchServer, wsServer } from './helpers.mjs';

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
  for (const name of ['sockeye', 'ws']) {
    test(`fanout passes against ${name} --fanout`, async () => {
      await withServer(startBenchServer(name, ['--fanout']), async (server) => {
        const { code, result } = await generate(server.port, { workload: 'fanout', connections: 20, depth: 1, size: 64 });
        assert.equal(result.error, undefined);
        assert.equal(code, 0);
        assert.ok(result.broadcasts > 0);
        assert.equal(result.deliveries, result.broadcasts * 20);
      });
    });
  }
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
  // A relay in front of the real ws echo server that re-chunks what the
  // server sends into 1 to 7 byte writes, so frame headers, extended lengths
  // and stamps all arrive split across reads.
  await withServer(startBenchServer('ws'), async (upstream) => {
    await withServer(
      rawServer(() => {}, (client) => {
        const server = connect({ host: '127.0.0.1', port: upstream.port });
        server.setNoDelay(true);
        client.setNoDelay(true);
        client.on('data', (c) => server.write(c));
        let queue = Buffer.alloc(0);
        let busy = false;
        let upstreamClosed = false;
        const pump = () => {
          if (client.destroyed) return;
          if (queue.length === 0) {
            busy = false;
            if (upstreamClosed) client.end();
            return;
          }
          const n = 1 + Math.floor(Math.random() * 7);
          client.write(queue.subarray(0, n));
          queue = queue.subarray(n);
          setImmediate(pump);
        };
        server.on('data', (c) => {
          queue = Buffer.concat([queue, c]);
          if (!busy) {
            busy = true;
            pump();
          }
        });
        server.on('error', () => client.destroy());
        server.on('close', () => {
          upstreamClosed = true;
          if (!busy) client.end();
        });
        client.on('close', () => server.destroy());
      }),
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
