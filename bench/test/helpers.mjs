// Test scaffolding shared by the generators' tests: the real bench servers
// and small fault-injecting servers on 127.0.0.1, port 0.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';

const BENCH = dirname(dirname(fileURLToPath(import.meta.url)));

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

/** A raw TCP server running `onData(socket, chunk, state)` for each read. */
export async function rawServer(onData, onConnection = () => {}) {
  const sockets = new Set();
  const server = createServer((socket) => {
    sockets.add(socket);
    const state = { bytes: 0, index: sockets.size };
    onConnection(socket, state, sockets);
    socket.on('data', (chunk) => onData(socket, chunk, state, sockets));
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
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
 */
export function realServers() {
  const servers = {};
  before(async () => {
    const [s, w, r] = await Promise.all([startBenchServer('sockeye'), startBenchServer('ws'), startBenchServer('raw')]);
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
