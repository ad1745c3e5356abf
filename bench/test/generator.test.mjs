// Checks that the benchmark's load generator measures only correct echoes:
// it must pass against the three real echo servers and fail, naming the
// fault, against servers that corrupt, drop, duplicate, retype or misframe.
// It also runs over TLS (the wss scenario) against the servers' --tls mode.
// Run: node --test bench/test/   (after `npm run build`; `npm test` runs it too)
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createSecureServer } from 'node:http2';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NO_OPENSSL, assertEchoRun, rawServer, rawServerDropping, realServers, tlsFiles, tlsServerOptions, wsServer } from './helpers.mjs';

const BENCH = dirname(dirname(fileURLToPath(import.meta.url)));
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/**
 * Runs the generator briefly against `port`; resolves with its exit code and result line. The
 * window is long enough that a test process held off the CPU for a while by the rest of the suite
 * still sees echoes in it (its assertions need some, not a rate).
 */
function generate(port, overrides = {}) {
  const config = { mode: 'ws', port, size: 32, binary: true, connections: 4, depth: 4, warmupMs: 100, durationMs: 600, ...overrides };
  const child = spawn(process.execPath, [join(BENCH, 'generator.mjs'), JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('generator did not finish within 20 s'));
    }, 20_000);
    child.stdout.on('data', (c) => (out += c));
    child.on('close', (code) => { // after stdout is fully read ('exit' can come first)
      clearTimeout(timer);
      resolve({ code, result: JSON.parse(out.trim()) });
    });
  });
}




describe('against the real bench servers', { concurrency: 3 }, () => {
  const servers = realServers();

  for (const [name, mode] of [['sockeye', 'ws'], ['ws', 'ws'], ['raw', 'raw']]) {
    for (const [size, binary] of [[32, true], [1024, false], [200_000, true]]) {
      test(`passes against the ${name} echo server (${size} B ${binary ? 'binary' : 'text'})`, async () => {
        const { code, result } = await generate(servers[name].port, { mode, size, binary });
        assertEchoRun(code, result, 'node', size);
      });
    }
  }
});

describe('over TLS (the wss scenario)', { concurrency: 3 }, () => {
  const tls = tlsFiles({ 'localhost-': { subject: '/CN=localhost', altName: 'DNS:localhost' } });
  const servers = realServers(tls);
  const skip = NO_OPENSSL;
  for (const [name, mode] of [['sockeye', 'ws'], ['ws', 'ws'], ['raw', 'raw']]) {
    test(`passes against the ${name} --tls server, verifying its certificate`, { skip }, async () => {
      const { code, result } = await generate(servers[name].port, { mode, size: 100_000, connections: 2, tls: true, tlsCa: tls.ca });
      assert.equal(result.error, undefined);
      assert.equal(code, 0);
      assert.ok(result.messages > 0);
      assert.match(result.tlsProtocol, /^TLSv1\.[23]$/);
    });
  }
  test('fails against a TLS server whose certificate it was not told to trust', { skip }, async () => {
    const { code, result } = await generate(servers.raw.port, { mode: 'raw', connections: 1, tls: true });
    assert.equal(code, 2);
    assert.match(result.error, /self[- ]signed certificate/);
  });
  test('checks the certificate against servername when it is given, else against 127.0.0.1 (as the C generator)', { skip }, async () => {
    const server = await rawServer((socket, chunk) => socket.write(chunk), undefined, tlsServerOptions(tls, 'localhost-'));
    try {
      const tlsCa = join(tls.dir, 'localhost-cert.pem');
      const wrong = await generate(server.port, { mode: 'raw', connections: 1, tls: true, tlsCa });
      assert.equal(wrong.code, 2);
      assert.match(wrong.result.error, /does not match certificate's altnames/);
      const right = await generate(server.port, { mode: 'raw', connections: 1, tls: true, tlsCa, servername: 'localhost' });
      assertEchoRun(right.code, right.result, 'node', 32);
    } finally {
      await server.stop();
    }
  });
});

describe('over HTTP/2 (the sockeye-h2 rows)', { concurrency: 2 }, () => {
  const tls = tlsFiles();
  const servers = realServers(tls);
  const skip = NO_OPENSSL;
  test('echoes as streams of one HTTP/2 connection against the sockeye --tls server', { skip }, async () => {
    const { code, result } = await generate(servers.sockeye.port, { mode: 'ws', size: 1024, binary: false, connections: 8, depth: 4, tls: true, tlsCa: tls.ca, h2: true });
    assertEchoRun(code, result, 'node', 1024);
    assert.match(result.tlsProtocol, /^TLSv1\.[23]$/);
  });
  test("workload 'open' counts open, echo, close cycles, over HTTP/2 and over new TLS connections", { skip }, async () => {
    for (const h2 of [true, false]) {
      const { code, result } = await generate(servers.sockeye.port, { mode: 'ws', connections: 4, depth: 1, tls: true, tlsCa: tls.ca, h2, workload: 'open' });
      assert.equal(result.error, undefined, `h2 ${h2}`);
      assert.equal(code, 0);
      assert.ok(result.opens > 0, `h2 ${h2}: cycles were counted`);
      assert.ok(Math.abs(result.opensPerSec - result.opens / result.seconds) < 1e-6);
      assert.ok(result.p50Ms > 0 && result.p99Ms >= result.p50Ms);
    }
  });
  test('fails, saying why, against an HTTP/2 server that does not enable extended CONNECT', { skip }, async () => {
    const server = createSecureServer(tlsServerOptions(tls));
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { code, result } = await generate(server.address().port, { mode: 'ws', connections: 1, tls: true, tlsCa: tls.ca, h2: true });
      assert.equal(code, 2);
      assert.match(result.error, /SETTINGS_ENABLE_CONNECT_PROTOCOL/);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
  test('fails when the server answers the extended CONNECT with another status than 200', { skip }, async () => {
    const server = createSecureServer({ ...tlsServerOptions(tls), settings: { enableConnectProtocol: true } });
    server.on('stream', (stream) => stream.respond({ ':status': 403 }, { endStream: true }));
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { code, result } = await generate(server.address().port, { mode: 'ws', connections: 1, tls: true, tlsCa: tls.ca, h2: true });
      assert.equal(code, 2);
      assert.match(result.error, /answered 403 instead of 200/);
    } finally {
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

test('raw: one flipped bit in the echo stream fails the run', async () => {
  const server = await rawServer((socket, chunk, state) => {
    const at = 1010 - state.bytes; // byte 1010 of the stream: message 31, offset 18 (past the 16-byte stamp)
    if (at >= 0 && at < chunk.length) chunk[at] ^= 0x01;
    state.bytes += chunk.length;
    socket.write(chunk);
  });
  try {
    const { code, result } = await generate(server.port, { mode: 'raw', connections: 1 });
    assert.equal(code, 2);
    assert.match(result.error, /differs from the sent one at byte 18 of message 31/);
  } finally {
    await server.stop();
  }
});

test('raw: a lost message fails the run (the next stamp does not match)', async () => {
  // Message 10 of 32 bytes left out.
  const server = await rawServerDropping(320, 352);
  try {
    const { code, result } = await generate(server.port, { mode: 'raw', connections: 1 });
    assert.equal(code, 2);
    assert.match(result.error, /stamp mismatch at message 10/);
  } finally {
    await server.stop();
  }
});

test('ws: a corrupted byte deep inside a 64 KiB echo fails the run', async () => {
  const server = await wsServer((ws, data, isBinary, n) => {
    if (n === 3) data[40_000] ^= 0x80;
    ws.send(data, { binary: isBinary });
  });
  try {
    const { code, result } = await generate(server.port, { size: 65_536, connections: 1 });
    assert.equal(code, 2);
    assert.match(result.error, /differs from the sent one at byte 40000 of message 2/);
  } finally {
    await server.stop();
  }
});

test('ws: a duplicated echo fails the run', async () => {
  const server = await wsServer((ws, data, isBinary, n) => {
    ws.send(data, { binary: isBinary });
    if (n === 5) ws.send(data, { binary: isBinary });
  });
  try {
    const { code, result } = await generate(server.port, { connections: 1 });
    assert.equal(code, 2);
    assert.match(result.error, /stamp mismatch at message 5/);
  } finally {
    await server.stop();
  }
});

test('ws: a text message echoed as binary fails the run', async () => {
  const server = await wsServer((ws, data) => ws.send(data, { binary: true }));
  try {
    const { code, result } = await generate(server.port, { size: 1024, binary: false, connections: 1 });
    assert.equal(code, 2);
    assert.match(result.error, /echo came back as BINARY/);
  } finally {
    await server.stop();
  }
});

test('ws: an echo split into fragments still verifies (RFC 6455 section 5.4)', async () => {
  const server = await wsServer((ws, data, isBinary) => {
    ws.send(data.subarray(0, 10), { binary: isBinary, fin: false });
    ws.send(data.subarray(10, 11), { binary: isBinary, fin: false });
    ws.send(data.subarray(11), { binary: isBinary, fin: true });
  });
  try {
    const { code, result } = await generate(server.port, { size: 1024, binary: false });
    assert.equal(result.error, undefined);
    assert.equal(code, 0);
    assert.ok(result.messages > 0);
  } finally {
    await server.stop();
  }
});

/** A hand-made server: answers the handshake with `accept(key)` as the accept value, then sends `after`. */
async function handshakeServer(accept, after = Buffer.alloc(0)) {
  return rawServer((socket, chunk, state) => {
    if (state.bytes > 0) return;
    state.bytes = chunk.length;
    const key = /Sec-WebSocket-Key: (\S+)/i.exec(chunk.toString('latin1'))[1];
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept(key)}\r\n\r\n`);
    socket.write(after);
  });
}

test('ws: a wrong Sec-WebSocket-Accept fails the run (RFC 6455 section 4.1)', async () => {
  const server = await handshakeServer(() => 'dGhlIHNhbXBsZSBub25jZQ==');
  try {
    const { code, result } = await generate(server.port, { connections: 1 });
    assert.equal(code, 2);
    assert.match(result.error, /wrong Sec-WebSocket-Accept/);
  } finally {
    await server.stop();
  }
});

test('ws: a masked frame from the server fails the run (RFC 6455 section 5.1)', async () => {
  const masked = Buffer.from([0x82, 0x82, 1, 2, 3, 4, 0, 0]);
  const server = await handshakeServer((key) => createHash('sha1').update(key + GUID).digest('base64'), masked);
  try {
    const { code, result } = await generate(server.port, { connections: 1 });
    assert.equal(code, 2);
    assert.match(result.error, /server sent a masked frame/);
  } finally {
    await server.stop();
  }
});
