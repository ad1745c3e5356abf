/**
 * Real proxies for the client's proxy tests, each started on 127.0.0.1 on a
 * free port and stopped by the caller's after() hook, every wait bounded:
 * Debian's tinyproxy (HTTP CONNECT, optionally with BasicAuth), microsocks
 * (SOCKS5, optionally with a username and password), a TLS terminator in
 * front of tinyproxy (an https:// proxy), and a recording TCP relay that
 * keeps every byte of both directions, to see what reached whom.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, type Server } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testCert } from './certs.js';
import { accepting, freePort } from './free-port.js';
import { relayTo } from './byte-counter.js';

export const TINYPROXY = '/usr/bin/tinyproxy';
export const MICROSOCKS = '/usr/bin/microsocks';
export const tinyproxyAvailable = (): boolean => existsSync(TINYPROXY);
export const microsocksAvailable = (): boolean => existsSync(MICROSOCKS);

/** Upper bound for a proxy to start listening, or to exit once told to. */
const START_MS = 10_000;
const STOP_MS = 3_000;

export interface Running {
  port: number;
  /** Stops it: SIGTERM, then SIGKILL if it has not exited within 3 s. */
  stop(): Promise<void>;
}


/** Resolves once something accepts TCP connections on `port`; rejects if `child` exits first or after START_MS. */
async function waitListening(port: number, child: ChildProcess, what: string, log: () => string): Promise<void> {
  const until = Date.now() + START_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}) before listening on ${port}\n${log()}`);
    const ok = await accepting(port);
    if (ok) return;
    if (Date.now() > until) throw new Error(`${what} did not listen on ${port} within ${START_MS} ms\n${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Starts `start(port)` on a free port, trying another port if it lost the race for the first one. */
async function onFreePort(what: string, start: (port: number) => { child: ChildProcess; log: () => string; cleanup?: () => void }): Promise<Running> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const { child, log, cleanup } = start(port);
    // A test run that dies without its after() hook must not leave the proxy behind.
    const onExit = () => child.kill('SIGKILL');
    process.once('exit', onExit);
    const stop = async () => {
      await stopChild(child);
      process.off('exit', onExit);
      cleanup?.();
    };
    try {
      await waitListening(port, child, what, log);
      return { port, stop };
    } catch (err) {
      lastError = err;
      await stop();
    }
  }
  throw lastError;
}

/**
 * tinyproxy in the foreground (-d) with its own config, log and pid files in
 * a temp dir; CONNECT allowed to `connectPorts` only (tinyproxy's
 * ConnectPort rules), with BasicAuth when `auth` is given.
 */
export function startTinyproxy(opts: { connectPorts: number[]; auth?: { user: string; password: string } }): Promise<Running & { log(): string }> {
  const dir = mkdtempSync(join(tmpdir(), 'sockeye-tinyproxy-'));
  const logFile = join(dir, 'tinyproxy.log');
  const readLog = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  return onFreePort('tinyproxy', (port) => {
    const lines = [
      `Port ${port}`,
      'Listen 127.0.0.1',
      'Timeout 30',
      `LogFile "${logFile}"`,
      'LogLevel Info',
      `PidFile "${join(dir, 'tinyproxy.pid')}"`,
      'MaxClients 50',
      'Allow 127.0.0.1',
      ...opts.connectPorts.map((p) => `ConnectPort ${p}`),
      ...(opts.auth ? [`BasicAuth ${opts.auth.user} ${opts.auth.password}`] : []),
    ];
    const conf = join(dir, 'tinyproxy.conf');
    writeFileSync(conf, lines.join('\n') + '\n');
    const child = spawn(TINYPROXY, ['-d', '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    return { child, log: () => stderr + readLog() };
  }).then((running) => ({
    ...running,
    log: readLog,
    stop: async () => {
      await running.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  }));
}

/** microsocks on 127.0.0.1, with -u/-P when `auth` is given. */
export function startMicrosocks(opts: { auth?: { user: string; password: string } } = {}): Promise<Running> {
  return onFreePort('microsocks', (port) => {
    const args = ['-i', '127.0.0.1', '-p', String(port), ...(opts.auth ? ['-u', opts.auth.user, '-P', opts.auth.password] : [])];
    const child = spawn(MICROSOCKS, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    return { child, log: () => stderr };
  });
}

/** What a relay saw: every byte from the client (up) and from the upstream (down), per connection. */
export interface Recorder {
  port: number;
  connections: Array<{ up: Buffer[]; down: Buffer[] }>;
  /** Everything received from clients, all connections. */
  upBytes(): Buffer;
  close(): Promise<void>;
}

/** A relay through `server` to 127.0.0.1:`target` that records both directions. */
async function startRecording(server: Server, target: number): Promise<Recorder> {
  const connections: Recorder['connections'] = [];
  const relay = await relayTo(server, target, (client, upstream) => {
    const record = { up: [] as Buffer[], down: [] as Buffer[] };
    connections.push(record);
    client.on('data', (d: Buffer) => record.up.push(Buffer.from(d)));
    upstream.on('data', (d: Buffer) => record.down.push(Buffer.from(d)));
  });
  return { port: relay.port, connections, upBytes: () => Buffer.concat(connections.flatMap((c) => c.up)), close: relay.close };
}

/** A TCP relay to 127.0.0.1:`target` that records both directions. */
export function startRecorder(target: number): Promise<Recorder> {
  return startRecording(createNetServer(), target);
}

/**
 * A TLS terminator (the test certificate, for 127.0.0.1 and localhost) in
 * front of 127.0.0.1:`target`: with tinyproxy behind it, an https:// proxy.
 * It records what it decrypted from clients.
 */
export function startTlsTerminator(target: number): Promise<Recorder> {
  const cert = testCert();
  const server = createTlsServer({ key: cert.key, cert: cert.cert });
  server.on('tlsClientError', () => {});
  return startRecording(server, target);
}
