/**
 * Resuming durable topics across a rolling restart of a node:cluster: this
 * test file's process is the primary (the relay, which numbers and keeps the
 * durable topic 'feed'), and forks four workers running
 * test/pubsub/cluster-resume-worker.ts, sharing one port (port 0, picked once
 * by the primary and kept while any worker holds it). Forty clients with
 * reconnect() subscribe to 'feed' through session.resume(), each remembering
 * the offset of the last publication it got. Every worker publishes every
 * 10 ms while each of the four is replaced in turn (its replacement forked
 * first, then it shuts down with close code 1012), so every client is cut
 * off at least once and resumes on another worker.
 *
 * At the end every client has every publication of every publisher exactly
 * once, in each publisher's order, with offsets strictly increasing, and
 * resumes did send publications from the history (the path is exercised, not
 * skipped). Bounded in time and count; every client and worker is closed in
 * `finally`, even after a failure.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import { clusterBrokerPrimary, compareOffsets, connect, reconnect, type ClientSession, type ClusterRelay, type Reconnector } from '../../src/index.js';
import { waitUntil, withTimeout } from '../helpers/ws-pair.js';
import type { PublisherReport } from './cluster-resume-worker.js';

const WORKERS = 4;
const CLIENTS = 40;
const PUBLISH_EVERY_MS = 10;

/** One reconnecting client: what it got, checked as it comes. */
class Client {
  last: string | null = null;
  positioned = false;
  connections = 0;
  received = 0;
  readonly seen = new Map<string, number>();
  readonly problems: string[] = [];
  readonly closes: string[] = [];

  take(text: string): void {
    const m = JSON.parse(text) as { at?: string | null; o?: string; p?: { pub: string; n: number } };
    if (m.o === undefined) {
      // The position after a resume: what to resume from if nothing comes first.
      if (this.last === null && m.at !== undefined) this.last = m.at;
      this.positioned = true;
      return;
    }
    if (this.last !== null && compareOffsets(m.o, this.last) <= 0) this.problems.push(`offset ${m.o} after ${this.last}`);
    this.last = m.o;
    const { pub, n } = m.p!;
    const before = this.seen.get(pub) ?? 0;
    if (n !== before + 1) this.problems.push(`${pub}: ${n} after ${before}`);
    this.seen.set(pub, n);
    this.received++;
  }
}

function fork(): Promise<{ worker: Worker; node: string; port: number }> {
  const worker = cluster.fork();
  return withTimeout(
    new Promise((resolve, reject) => {
      worker.on('message', (m: { ready?: boolean; node: string; port: number }) => {
        if (m.ready) resolve({ worker, node: m.node, port: m.port });
      });
      worker.once('exit', (code) => reject(new Error(`worker exited with ${code} before it was ready`)));
    }),
    15_000,
    'a worker to listen',
  );
}

/** Sends `cmd` and waits for the worker's report of what it published. */
function report(worker: Worker, cmd: 'stop' | 'shutdown' | 'publish', count?: number): Promise<PublisherReport> {
  return withTimeout(
    new Promise<PublisherReport>((resolve) => {
      const on = (m: PublisherReport) => {
        if (!m.report) return;
        worker.off('message', on);
        resolve(m);
      };
      worker.on('message', on);
      worker.send({ cmd, count });
    }),
    5000,
    `a worker to ${cmd}`,
  );
}

describe('durable topics over node:cluster: resume across a rolling restart', () => {
  it(`${CLIENTS} reconnecting clients get every publication of ${WORKERS} publishing workers exactly once, in order, while each worker restarts`, { timeout: 90_000 }, async () => {
    const relayErrors: string[] = [];
    const relay: ClusterRelay = clusterBrokerPrimary({ heartbeatMs: 500, historyLength: 100_000, onError: (e) => relayErrors.push(String(e)) });
    cluster.setupPrimary({ exec: fileURLToPath(new URL('./cluster-resume-worker.js', import.meta.url)), silent: false });
    const workers: Worker[] = [];
    const loops: Array<{ rc: Reconnector; done: Promise<void> }> = [];
    try {
      let port = 0;
      for (let i = 0; i < WORKERS; i++) {
        const f = await fork();
        workers.push(f.worker);
        // Port 0 in a cluster: one free port, picked once and shared by every worker (and by their replacements
        // while any worker still holds it).
        port ||= f.port;
        assert.equal(f.port, port, 'the workers share one port');
      }

      const clients = Array.from({ length: CLIENTS }, () => new Client());
      for (const c of clients) {
        const rc = reconnect(`ws://127.0.0.1:${port}/`, {
          keepalive: null,
          retry: { delaysMs: [20, 50, 100], jitter: 0.5 },
          handler: { onMessage: (_s, m) => c.take(m.text) },
        });
        const done = (async () => {
          for await (const session of rc) {
            c.connections++;
            session.send(JSON.stringify({ since: c.last }));
            const close = await session.closed;
            c.closes.push(String(close.code));
          }
        })();
        loops.push({ rc, done });
      }
      // Each client knows where it is before anything is published, or restarted.
      await waitUntil(() => clients.every((c) => c.positioned && c.last !== null), 15_000, 'every client positioned on feed');

      for (const w of workers) w.send({ cmd: 'publish', everyMs: PUBLISH_EVERY_MS });
      const reports: PublisherReport[] = [];
      await new Promise((r) => setTimeout(r, 300));
      // The rolling restart, under load: a replacement first (it publishes too), then the old one leaves with 1012.
      for (let i = 0; i < WORKERS; i++) {
        const next = await fork();
        next.worker.send({ cmd: 'publish', everyMs: PUBLISH_EVERY_MS });
        const old = workers[i];
        workers[i] = next.worker;
        const exited = new Promise((r) => old.once('exit', r));
        reports.push(await report(old, 'shutdown'));
        await withTimeout(exited, 10_000, 'a worker to shut down and exit');
        await new Promise((r) => setTimeout(r, 250));
      }
      await new Promise((r) => setTimeout(r, 300));
      for (const w of workers) reports.push(await report(w, 'stop'));

      const expected = reports.reduce((sum, r) => sum + r.published, 0);
      assert.ok(reports.filter((r) => r.published > 0).length >= 2 * WORKERS, `every worker published: ${reports.map((r) => `${r.pub}=${r.published}`).join(' ')}`);
      await waitUntil(() => clients.every((c) => c.received >= expected || c.problems.length > 0), 20_000, `every client to get all ${expected} publications`).catch((e: Error) => {
        throw new Error(`${e.message} (got ${clients.map((c) => c.received).join(' ')}; problems: ${clients.flatMap((c) => c.problems.slice(0, 2)).join('; ')})`);
      });
      for (const [i, c] of clients.entries()) {
        assert.deepEqual(c.problems, [], `client ${i}: nothing repeated, reordered or skipped`);
        assert.equal(c.received, expected, `client ${i}: every publication once`);
        for (const r of reports) assert.equal(c.seen.get(r.pub) ?? 0, r.published, `client ${i}: all of ${r.pub}'s publications`);
        assert.ok(c.connections >= 2, `client ${i} was cut off by the restart and came back (${c.connections} connections, closes ${c.closes.join(',')})`);
        assert.ok(c.closes.every((code) => code === '1012'), `client ${i} was closed only by restarts: ${c.closes.join(',')}`);
      }
      const fromHistory = reports.reduce((sum, r) => sum + r.delivered, 0);
      assert.ok(fromHistory > 0, 'some resumes sent what was published while their client was away');
      assert.deepEqual(
        reports.flatMap((r) => r.errors),
        [],
        'no worker reported an error',
      );
      assert.deepEqual(relayErrors, []);
    } finally {
      for (const l of loops) l.rc.close();
      await withTimeout(Promise.all(loops.map((l) => l.done)), 5000, 'the clients to close').catch(() => {});
      for (const w of workers) if (!w.isDead()) w.process.kill('SIGKILL');
      relay.close();
      await withTimeout(
        Promise.all(workers.map((w) => (w.isDead() ? undefined : new Promise((r) => w.once('exit', r))))),
        5000,
        'the workers to exit',
      ).catch(() => {});
    }
  });

  it('over IPC, an offset older than the kept history closes with ERR_OFFSET_TRIMMED, a future one with ERR_BAD_OFFSET; the edge resumes', { timeout: 30_000 }, async () => {
    const relay = clusterBrokerPrimary({ heartbeatMs: 500, historyLength: 5 });
    cluster.setupPrimary({ exec: fileURLToPath(new URL('./cluster-resume-worker.js', import.meta.url)), silent: false });
    let worker: Worker | null = null;
    const sessions: ClientSession[] = [];
    try {
      const f = await fork();
      worker = f.worker;
      /** One client resuming from `since`: what it got, and how it was closed. */
      const resumeFrom = async (since: string | null, expect: number) => {
        const got: string[] = [];
        const s = await connect(`ws://127.0.0.1:${f.port}/`, { keepalive: null, handler: { onMessage: (_s, m) => void got.push(m.text) } });
        sessions.push(s);
        s.send(JSON.stringify({ since }));
        const closed = s.closed.then((c) => `${c.code} ${c.reason}`);
        await waitUntil(() => got.length > expect || s.state !== 'open', 5000, `the resume from ${since} to answer`);
        return { got, closed, session: s };
      };
      const start = await resumeFrom(null, 0);
      const at = (JSON.parse(start.got[0]) as { at: string }).at;
      assert.match(at, /^\d+-0$/, 'before the first publication: <era>-0');
      assert.equal((await report(worker, 'publish', 8)).published, 8); // kept: 4..8
      await waitUntil(() => start.got.length === 9, 5000, 'the live ones');
      const era = at.split('-')[0];
      const trimmed = await resumeFrom(at, 0);
      assert.equal(await withTimeout(trimmed.closed, 5000, 'the close'), '4000 ERR_OFFSET_TRIMMED');
      assert.deepEqual(trimmed.got, [], 'nothing sent before the error');
      const future = await resumeFrom(`${era}-9`, 0);
      assert.equal(await withTimeout(future.closed, 5000, 'the close'), '4000 ERR_BAD_OFFSET');
      const edge = await resumeFrom(`${era}-3`, 5);
      assert.deepEqual(
        edge.got.map((t) => JSON.parse(t) as { o?: string; at?: string }).map((m) => m.o ?? `at ${m.at}`),
        [`${era}-4`, `${era}-5`, `${era}-6`, `${era}-7`, `${era}-8`, `at ${era}-8`],
      );
    } finally {
      for (const s of sessions) s.terminate();
      if (worker && !worker.isDead()) {
        const exited = new Promise((r) => worker!.once('exit', r));
        worker.process.kill('SIGKILL');
        await withTimeout(exited, 5000, 'the worker to exit').catch(() => {});
      }
      relay.close();
    }
  });
});
