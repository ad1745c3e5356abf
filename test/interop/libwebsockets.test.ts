/**
 * Interop with libwebsockets 4.1.6 itself (Debian's libwebsockets-test-server
 * package), both directions, over ws:// and wss://:
 *
 * - libwebsockets-test-client against our demo server: it opens one
 *   dumb-increment-protocol and one lws-mirror-protocol connection, logs
 *   every number it gets, sends 16k-80k drawing commands on the mirror and
 *   then drops it. It always exits 0, so the run is judged from its log
 *   (`-d 15`): `I: rx N 'VALUE'` per number, `opened mirror connection with
 *   N lifetime`, `mirror_lifetime=0` and `E: Exiting` at the end.
 * - our client against libwebsockets-test-server: dumb-increment counts and
 *   resets, `closeme\n` ends with 1001 "seeya", the mirror reaches every
 *   member of a `?mirror=` group and no one else, lws-status arrives
 *   fragmented (and compressed: libwebsockets accepts deflate there only).
 *
 * Every peer process runs under a deadline and is killed in cleanup.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { connect, type ClientSession, type ConnectOptions, type Fragment, type Message } from '../../src/index.js';
import { createDemoServer, type DemoServer } from '../../src/demo/demo-server.js';
import { testCert } from '../helpers/certs.js';
import { libwebsocketsTestAppsAvailable, requirePeer } from '../helpers/peers.js';
import { withTimeout } from '../helpers/ws-pair.js';
import { accepting, freePort } from '../helpers/free-port.js';

const skip = requirePeer('libwebsockets-test-server', libwebsocketsTestAppsAvailable(), 'apt-get install libwebsockets-test-server');

/** The test client's whole run: its mirror side sends up to ~82k messages (about 13 s here); generous on a shared machine. */
const CLIENT_RUN_MS = 60_000;
const STEP_MS = 10_000;

/** Processes started by this file, killed in cleanup whatever happened. */
const children = new Set<ChildProcess>();

function killAll(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
}
process.once('exit', killAll);

interface Peer {
  child: ChildProcess;
  /** Notice, warning and error lines (bounded), for failure messages. */
  log: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts a libwebsockets program; `onLine` sees every log line (both streams). */
function startPeer(command: string, args: string[], onLine: (line: string) => void = () => undefined): Peer {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const log: string[] = [];
  const take = (line: string) => {
    if (/\] [NEW]: /.test(line) && log.length < 400) log.push(line);
    onLine(line);
  };
  createInterface({ input: child.stdout! }).on('line', take);
  createInterface({ input: child.stderr! }).on('line', take);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
    child.once('error', (err) => {
      log.push(`spawn error: ${err.message}`);
      children.delete(child);
      resolve({ code: null, signal: null });
    });
  });
  return { child, log, exited };
}


/** Resolves once something accepts TCP connections on the port (bounded). */
async function waitListening(port: number, peer: Peer): Promise<void> {
  const deadline = Date.now() + STEP_MS;
  let exited = false;
  void peer.exited.then(() => (exited = true));
  for (;;) {
    const ok = await accepting(port);
    if (ok) return;
    if (exited) throw new Error(`libwebsockets-test-server exited before listening:\n${peer.log.join('\n')}`);
    if (Date.now() > deadline) throw new Error(`libwebsockets-test-server not listening on ${port} after ${STEP_MS} ms:\n${peer.log.join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const schemes = [
  { scheme: 'ws', secure: false },
  { scheme: 'wss', secure: true },
] as const;

// ---------------------------------------------------------------------------
// libwebsockets-test-client -> sockeye demo server

interface ClientRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** dumb-increment values, in order. */
  rx: string[];
  lifetime: number | null;
  /** mirror_lifetime left when the mirror connection closed. */
  lifetimeLeft: number | null;
  exiting: boolean;
  connectionErrors: string[];
  log: string[];
}

async function runTestClient(url: string, extra: string[]): Promise<ClientRun> {
  const run: Omit<ClientRun, 'code' | 'signal' | 'timedOut' | 'log'> = { rx: [], lifetime: null, lifetimeLeft: null, exiting: false, connectionErrors: [] };
  const peer = startPeer('libwebsockets-test-client', [url, '-O', '-d', '15', ...extra], (line) => {
    let m: RegExpExecArray | null;
    if ((m = / I: rx \d+ '(.*)'$/.exec(line))) {
      if (run.rx.length < 100_000) run.rx.push(m[1]);
    } else if ((m = / N: opened mirror connection with (\d+) lifetime/.exec(line))) run.lifetime = Number(m[1]);
    else if ((m = / N: mirror: LWS_CALLBACK_CLOSED mirror_lifetime=(-?\d+)/.exec(line))) run.lifetimeLeft = Number(m[1]);
    else if (/ E: Exiting/.test(line)) run.exiting = true;
    else if (/CLIENT_CONNECTION_ERROR/.test(line)) run.connectionErrors.push(line);
  });
  let timedOut = false;
  // It retries a failed connection forever: the deadline ends it.
  const timer = setTimeout(() => {
    timedOut = true;
    peer.child.kill('SIGKILL');
  }, CLIENT_RUN_MS);
  const { code, signal } = await peer.exited;
  clearTimeout(timer);
  return { ...run, code, signal, timedOut, log: peer.log };
}

describe('libwebsockets-test-client -> sockeye demo server', { skip }, () => {
  let pageDir: string;
  before(() => {
    pageDir = mkdtempSync(join(tmpdir(), 'sockeye-lws-page-'));
    writeFileSync(join(pageDir, 'index.html'), '<!doctype html><title>placeholder</title>');
  });
  after(() => {
    killAll();
    rmSync(pageDir, { recursive: true, force: true });
  });

  for (const { scheme, secure } of schemes) {
    it(`completes its run over ${scheme}://: numbers received, the mirror run to its end`, async () => {
      const cert = testCert();
      const demo: DemoServer = createDemoServer({ staticDir: pageDir, tls: secure ? { key: cert.key, cert: cert.cert } : undefined, onError: () => undefined });
      const { port } = await demo.listen(0, '127.0.0.1');
      try {
        // -A: verify our certificate strictly (it is its own CA; its SAN has IP 127.0.0.1). The client's Host header has no port: our server does not mind.
        const run = await runTestClient(`${scheme}://127.0.0.1:${port}/`, secure ? ['-A', cert.certPath] : []);
        const transcript = `exit ${run.code ?? run.signal}${run.timedOut ? ' (killed at the deadline)' : ''}; ${run.rx.length} numbers; log:\n${run.log.join('\n')}`;
        assert.equal(run.timedOut, false, transcript);
        assert.equal(run.code, 0, transcript);
        assert.deepEqual(run.connectionErrors, [], transcript);
        // dumb-increment: "0", "1", "2", ... one by one, none lost, none compressed (it would have dropped the connection).
        assert.ok(run.rx.length >= 3, transcript);
        run.rx.forEach((v, i) => assert.equal(v, String(i), `number ${i} was ${JSON.stringify(v)}\n${transcript}`));
        // The mirror: every drawing command sent, the connection closed by the client at lifetime 0, then the clean exit.
        assert.ok(run.lifetime !== null && run.lifetime >= 16384, transcript);
        assert.equal(run.lifetimeLeft, 0, transcript);
        assert.equal(run.exiting, true, transcript);
        // Our side saw every one of its messages (and sent each back to it, the group's only member).
        if (!secure) {
          assert.equal(demo.mirror.messagesIn, run.lifetime, transcript);
        } else {
          // Over TLS the lws client counts a message as sent once lws_write() has taken it, then drops TCP without a
          // close frame — with its last writes possibly still in its TLS buffer. One CI run of 73,932
          // saw 73,930 arrive. So over wss: never more than it sent, and at most a few short at the very end. (That the
          // shortfall is on the client's side is an inference from its behaviour, not yet proven with a capture.)
          assert.ok(demo.mirror.messagesIn <= run.lifetime && run.lifetime - demo.mirror.messagesIn <= 8, `${demo.mirror.messagesIn} of ${run.lifetime}\n${transcript}`);
        }
        assert.equal(demo.mirror.slowReadersDropped, 0, transcript);
      } finally {
        killAll();
        await demo.close();
      }
    });
  }
});

// ---------------------------------------------------------------------------
// sockeye client -> libwebsockets-test-server

async function nextText(it: AsyncIterator<Message>, what: string): Promise<string> {
  const r = await withTimeout(it.next(), STEP_MS, what);
  assert.equal(r.done, false, `${what}: the connection ended`);
  assert.equal(r.value.binary, false, `${what}: TEXT expected`);
  return r.value.text;
}

for (const { scheme, secure } of schemes) {
  describe(`sockeye client -> libwebsockets-test-server over ${scheme}://`, { skip }, () => {
    let port: number;
    let server: Peer;
    let options: ConnectOptions;
    const open: ClientSession[] = [];
    const url = (q = '') => `${scheme}://127.0.0.1:${port}/${q}`;

    before(async () => {
      const cert = testCert();
      port = await freePort();
      // -i lo: loopback only (it would listen on every address). Its own certificate is RSA-1024, which OpenSSL 3 refuses: ours is RSA-2048.
      const args = [`--port=${port}`, '-i', 'lo', ...(secure ? ['--ssl', `--ssl-cert=${cert.certPath}`, `--ssl-key=${cert.keyPath}`] : [])];
      server = startPeer('libwebsockets-test-server', args);
      await waitListening(port, server);
      options = secure ? { tls: { ca: cert.ca } } : {};
    });

    after(() => {
      for (const c of open) c.terminate();
      killAll();
    });

    const dial = async (protocol: string, q = '', extra: ConnectOptions = {}) => {
      const c = await connect(url(q), { ...options, ...extra, protocol });
      open.push(c);
      return c;
    };

    it('dumb-increment-protocol counts up, declines compression, restarts at 0 on reset\\n', async () => {
      const c = await dial('dumb-increment-protocol', '', { perMessageDeflate: true });
      assert.equal(c.protocol, 'dumb-increment-protocol');
      assert.deepEqual(c.extensions, [], 'libwebsockets declines permessage-deflate on dumb-increment-protocol');
      const it = c.messages();
      for (let i = 0; i < 5; i++) assert.equal(await nextText(it, 'a number'), String(i));
      c.send('reset\n');
      // Numbers already on their way come first, still counting up; then 0, 1, 2.
      const seen: string[] = [];
      let last = 4;
      for (let i = 0; i < 40; i++) {
        const v = await nextText(it, 'a number after reset');
        seen.push(v);
        if (v === '0') break;
        assert.equal(Number(v), last + 1, seen.join(','));
        last = Number(v);
      }
      assert.equal(seen.at(-1), '0', `no 0 after reset: ${seen.join(',')}`);
      for (let i = 1; i <= 3; i++) assert.equal(await nextText(it, 'a number'), String(i));
      c.close();
      assert.equal((await withTimeout(c.closed, STEP_MS, 'the close')).wasClean, true);
    });

    it('closeme\\n ends the connection with 1001 "seeya"', async () => {
      const c = await dial('dumb-increment-protocol');
      await nextText(c.messages(), 'a number');
      c.send('closeme\n');
      const info = await withTimeout(c.closed, STEP_MS, 'the close');
      assert.equal(info.code, 1001);
      assert.equal(info.reason, 'seeya');
      assert.equal(info.wasClean, true);
    });

    it('lws-mirror-protocol sends each message to every member of the ?mirror= group, and nowhere else', async () => {
      const group = `g${process.pid}${scheme}`;
      const a = await dial('lws-mirror-protocol', `?mirror=${group}`);
      const b = await dial('lws-mirror-protocol', `?mirror=${group}`);
      const other = await dial('lws-mirror-protocol', `?mirror=${group}-other`);
      const [ait, bit, oit] = [a.messages(), b.messages(), other.messages()];
      a.send('c #00ff00 100 50 8;');
      assert.equal(await nextText(ait, 'a gets its own message'), 'c #00ff00 100 50 8;');
      assert.equal(await nextText(bit, "b gets a's message"), 'c #00ff00 100 50 8;');
      b.send('from b');
      assert.equal(await nextText(ait, "a gets b's message"), 'from b');
      assert.equal(await nextText(bit, 'b gets its own message'), 'from b');
      // Sent after the group's traffic went out: had it leaked, it would come first.
      other.send('other group');
      assert.equal(await nextText(oit, 'the other group'), 'other group');
      for (const c of [a, b, other]) c.close();
      await Promise.all([a.closed, b.closed, other.closed]);
    });

    it('lws-status arrives fragmented (TEXT + CONTINUATION), plain or compressed, as JSON listing the connections', async () => {
      interface Report {
        text: string;
        fragments: Fragment[];
      }
      const watch = async (ua: string, perMessageDeflate: boolean) => {
        const reports: Report[] = [];
        let current: Fragment[] = [];
        const c = await connect(url(), {
          ...options,
          protocol: 'lws-status',
          perMessageDeflate,
          headers: { 'User-Agent': ua },
          handler: {
            onFragment: (_s, f) => {
              current.push(f);
              if (f.last) {
                reports.push({ text: Buffer.concat(current.map((x) => x.data)).toString('utf8'), fragments: current });
                current = [];
              }
            },
          },
        });
        open.push(c);
        return { c, reports };
      };
      const waitReport = async (reports: Report[], pred: (r: { conns: unknown[] }) => boolean, what: string) => {
        const deadline = Date.now() + STEP_MS;
        for (;;) {
          const found = reports.find((r) => pred(JSON.parse(r.text) as { conns: unknown[] }));
          if (found) return found;
          if (Date.now() > deadline) throw new Error(`no lws-status report with ${what}: ${JSON.stringify(reports.map((r) => r.text))}`);
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      // Without compression first: our client hands a compressed message over whole (it inflates at the end), so the fragments show only on an uncompressed one.
      const first = await watch('sockeye-status-1', false);
      assert.deepEqual(first.c.extensions, []);
      const r1 = await waitReport(first.reports, (r) => r.conns.length >= 1, 'a connection');
      assert.ok(r1.fragments.length >= 3, `${r1.fragments.length} fragments`);
      assert.equal(r1.fragments[0].first, true);
      assert.equal(r1.fragments[0].binary, false);
      assert.ok(r1.fragments.slice(1).every((f) => !f.first));
      const report = JSON.parse(r1.text) as { version: string; wss_over_h2: string; conns: Array<{ peer: string; time: string; ua: string }> };
      assert.match(report.version, /^4\./);
      assert.equal(typeof report.wss_over_h2, 'string');
      assert.match(report.conns[0].peer, /127\.0\.0\.1/);
      assert.match(report.conns[0].time, /^\d+$/);
      // A second status client, with compression: both get the list with two connections.
      const second = await watch('sockeye-status-2', true);
      assert.deepEqual(second.c.extensions, ['permessage-deflate'], 'libwebsockets accepts deflate on lws-status');
      await waitReport(second.reports, (r) => r.conns.length >= 2, 'two connections');
      await waitReport(first.reports, (r) => r.conns.length >= 2, 'two connections');
      first.c.close();
      second.c.close();
      await Promise.all([first.c.closed, second.c.closed]);
    });
  });
}
