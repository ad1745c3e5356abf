// Test scaffolding shared by the generators' tests: the real bench servers
// and small fault-injecting servers on 127.0.0.1, port 0, over TCP or TLS.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import { selfSigned } from '../lib/certificate.mjs';

const BENCH = dirname(dirname(fileURLToPath(import.meta.url)));

/** Why the TLS tests skip (the openssl command makes their certificates), or false. */
export const NO_OPENSSL = spawnSync('openssl', ['version'], { stdio: 'ignore' }).error ? 'openssl is not installed' : false;

/**
 * Inside describe(): before the block's tests, a temporary directory `dir`
 * with key.pem and cert.pem for 127.0.0.1 (what the servers' --tls DIR
 * reads; `ca` is cert.pem, the one certificate to trust), plus, for each
 * entry of `more`, selfSigned(dir, { prefix, ...options }); removed after.
 * Nothing is made without openssl: give the tests { skip: NO_OPENSSL }.
 */
export function tlsFiles(more = {}) {
  const files = { dir: null, ca: null };
  before(() => {
    if (NO_OPENSSL) return;
    files.dir = mkdtempSync(join(tmpdir(), 'sockeye-bench-test-'));
    for (const [prefix, options] of [['', {}], ...Object.entries(more)]) {
      const made = selfSigned(files.dir, { prefix, ...options });
      assert.equal(made.error, undefined, made.error);
    }
    files.ca = join(files.dir, 'cert.pem');
  });
  after(() => files.dir && rmSync(files.dir, { recursive: true, force: true }));
  return files;
}

/** node:tls server options from a tlsFiles() directory: the key and certificate with that prefix. */
export function tlsServerOptions(files, prefix = '') {
  return { key: readFileSync(join(files.dir, `${prefix}key.pem`)), cert: readFileSync(join(files.dir, `${prefix}cert.pem`)) };
}

/** Starts one of bench/servers/*.mjs; resolves with { port, stop }. */
export function startBenchServer(name, args = []) {
  const child = spawn(process.execPath, [join(BENCH, 'servers', `${name}.mjs`), ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} server did not start`));
    }, 15_000);
    child.stdout.on('data', (c) => {
      out += c;
      const m = /LISTENING (\d+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.stdout.removeAllListeners('data');
      child.stdout.resume();
      resolve({
        port: Number(m[1]),
        stop: () =>
          new Promise((done) => {
            if (child.exitCode !== null) return done();
            child.once('exit', done);
            child.stdin.end();
          }),
      });
    });
  });
}

/**
 * A raw TCP server running `onData(socket, chunk, state)` for each read; with
 * `tls` (node:tls server options), a TLS server doing the same with the
 * decrypted bytes.
 */
export async function rawServer(onData, onConnection = () => {}, tls = null) {
  const sockets = new Set();
  const onSocket = (socket) => {
    sockets.add(socket);
    const state = { bytes: 0, index: sockets.size };
    onConnection(socket, state, sockets);
    socket.on('data', (chunk) => onData(socket, chunk, state, sockets));
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  };
  const server = tls ? createTlsServer(tls, onSocket) : createServer(onSocket);
  if (tls) server.on('tlsClientError', () => {}); // a client that rejects our certificate: the test reads its error
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: server.address().port,
    stop: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(r));
    },
  };
}

/** A ws server whose message handler is `onMessage(ws, data, isBinary, n, wss)` (n counts messages per connection). */
export async function wsServer(onMessage, onConnection = () => {}) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  wss.on('connection', (ws) => {
    let n = 0;
    onConnection(ws, wss);
    ws.on('message', (data, isBinary) => onMessage(ws, data, isBinary, ++n, wss));
    ws.on('error', () => {});
  });
  await new Promise((r) => wss.once('listening', r));
  return {
    port: wss.address().port,
    wss,
    stop: () => {
      for (const c of wss.clients) c.terminate();
      return new Promise((r) => wss.close(r));
    },
  };
}

/**
 * The three real bench echo servers, one process each for a whole describe()
 * block (starting Node is most of a test's time): call inside describe().
 * With `tls` (from tlsFiles(), called first), their --tls variants.
 */
export function realServers(tls = null) {
  const servers = {};
  before(async () => {
    if (tls && !tls.dir) return; // no openssl: the block's tests skip
    const args = tls ? ['--tls', tls.dir] : [];
    const [s, w, r] = await Promise.all([startBenchServer('sockeye', args), startBenchServer('ws', args), startBenchServer('raw', args)]);
    Object.assign(servers, { sockeye: s, ws: w, raw: r });
  });
  after(() => Promise.all(Object.values(servers).map((s) => s.stop())));
  return servers;
}

/** What every passing echo run of either generator reports. */
export function assertEchoRun(code, result, generator, size) {
  assert.equal(result.error, undefined);
  assert.equal(code, 0);
  assert.equal(result.generator, generator);
  assert.ok(result.messages > 0, 'echoes were counted');
  // How many connections saw no echo in the window depends on timing (a loaded machine), so it is only reported.
  assert.ok(Number.isInteger(result.idleConnections));
  assert.ok(result.p50Ms > 0 && result.p99Ms >= result.p50Ms);
  assert.ok(Math.abs(result.mbPerSec - (result.msgPerSec * size) / 1e6) < 1e-6);
}

/** A raw echo server that leaves out stream bytes [from, to) of each connection, however the reads split them. */
export function rawServerDropping(from, to) {
  return rawServer((socket, chunk, state) => {
    const start = state.bytes;
    state.bytes += chunk.length;
    const lo = Math.max(0, from - start);
    const hi = Math.min(chunk.length, to - start);
    if (lo < hi) chunk = Buffer.concat([chunk.subarray(0, lo), chunk.subarray(hi)]);
    socket.write(chunk);
  });
}

/**
 * A relay in front of `upstreamPort` that passes what the client sends as it
 * comes, and re-chunks what the server sends into writes of 1 to 7 bytes, a
 * turn of the event loop apart, so every header, length, stamp (and, in front
 * of a TLS server, every TLS record and handshake message) arrives split
 * across reads.
 */
export function dribblingRelay(upstreamPort) {
  return rawServer(
    () => {},
    (client) => {
      const server = connect({ host: '127.0.0.1', port: upstreamPort });
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
    },
  );
}
