/**
 * The soak and leak test, shared by `npm run soak`
 * (scripts/soak.mjs: 10,000 connections with keepalive every second for
 * 60 s, then 100,000 connect/close cycles) and the bounded version that CI
 * runs (test/soak/soak-small.test.ts).
 *
 * The server and the clients run in two child processes, so each has its
 * own file descriptor limit and its own numbers. Phases:
 *   0. warm-up (connections, echoes, cycles: code loaded, JIT warm, pools
 *      allocated), then the baseline snapshot of both processes;
 *   1. `connections` concurrent connections, held for holdMs while the
 *      server pings each every pingIntervalMs (and the clients answer); every
 *      connection must stay open, see its pings, answer them, echo a message
 *      at the end, and close cleanly with 1000;
 *   2. `cycles` connect/close cycles, each a full opening and closing
 *      handshake, all clean;
 *   3. the final snapshot: RSS, heap, open descriptors and active handles of
 *      both processes back to the baseline within the stated margins.
 */
import { fileURLToPath } from 'node:url';
import { Child, type Snapshot } from './proc.js';

export interface SoakConfig {
  connections: number;
  holdMs: number;
  pingIntervalMs: number;
  /** Hang-up timeout of the keepalive: generous, the machine is shared and slow. */
  hangupAfterMs: number;
  cycles: number;
  cycleConcurrency: number;
  openConcurrency: number;
  warmupConnections: number;
  warmupCycles: number;
  /** Each connection must see at least this share of the pings the hold period allows (timer-wheel slack, load). */
  minPingShare: number;
  margins: Margins;
  log: (line: string) => void;
}

/** How far the final snapshot may be above the baseline. */
export interface Margins {
  /** heapUsed after GC. */
  heapBytes: number;
  /** Resident set size: the allocator and V8 keep some freed pages, so this is looser. */
  rssBytes: number;
  /** Open file descriptors: none may be left behind. */
  fds: number;
  /**
   * RSS growth from the end of the hold phase (all connections closed) to
   * the end of the connect/close cycles: a leak per cycle shows here even
   * where the allocator keeps the peak's pages.
   */
  rssCyclesBytes: number;
}

export interface SoakResult {
  problems: string[];
  baseline: { server: Snapshot; client: Snapshot };
  loaded: { server: Snapshot; client: Snapshot };
  afterHold: { server: Snapshot; client: Snapshot };
  final: { server: Snapshot; client: Snapshot };
  phases: Record<string, unknown>;
}

const here = (name: string): string => fileURLToPath(new URL(name, import.meta.url));
const MB = 1024 * 1024;

export function formatSnapshot(s: Snapshot): string {
  const res = Object.entries(s.resources)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return `rss ${(s.rss / MB).toFixed(1)} MB, heap ${(s.heapUsed / MB).toFixed(1)} MB, external ${(s.external / MB).toFixed(1)} MB, fds ${s.fds}, handles {${res}}`;
}

function compare(who: string, base: Snapshot, end: Snapshot, m: Margins, problems: string[]): void {
  if (end.heapUsed - base.heapUsed > m.heapBytes) problems.push(`${who}: heap ${(end.heapUsed / MB).toFixed(1)} MB, baseline ${(base.heapUsed / MB).toFixed(1)} MB (margin ${(m.heapBytes / MB).toFixed(1)} MB)`);
  if (end.rss - base.rss > m.rssBytes) problems.push(`${who}: RSS ${(end.rss / MB).toFixed(1)} MB, baseline ${(base.rss / MB).toFixed(1)} MB (margin ${(m.rssBytes / MB).toFixed(1)} MB)`);
  if (end.fds - base.fds > m.fds) problems.push(`${who}: ${end.fds} open descriptors, baseline ${base.fds} (margin ${m.fds})`);
  // Active handles must be exactly those of the baseline (the listening socket, the IPC pipe): no socket or timer left.
  const kinds = new Set([...Object.keys(base.resources), ...Object.keys(end.resources)]);
  for (const k of kinds) {
    if ((end.resources[k] ?? 0) !== (base.resources[k] ?? 0)) problems.push(`${who}: ${end.resources[k] ?? 0} active ${k}, baseline ${base.resources[k] ?? 0}`);
  }
}

async function waitFor(what: string, deadlineMs: number, cond: () => Promise<boolean>): Promise<boolean> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return cond().then((ok) => {
    if (!ok) throw new Error(`timed out waiting for ${what}`);
    return ok;
  });
}

interface ServerStats {
  clients: number;
  opened: number;
  closed: number;
  codes: Record<string, number>;
  minPongs: number;
  totalPongs: number;
  errors: string[];
}
interface ClientStats {
  sessions: number;
  open: number;
  closedEarly: number;
  earlyCodes: Record<string, number>;
  minPings: number;
  totalPings: number;
}
interface PoolResult {
  ok: number;
  failed: number;
  errors: string[];
  ms: number;
}

export async function runSoak(c: SoakConfig): Promise<SoakResult> {
  const problems: string[] = [];
  const phases: Record<string, unknown> = {};
  const server = new Child(here('./soak-server.js'), 'soak server');
  const client = new Child(here('./soak-client.js'), 'soak client');
  const serverClientsZero = () => waitFor('the server to release every session', 60_000, async () => (await server.call<ServerStats>('stats')).clients === 0);
  try {
    const port = await server.call<number>('listen', { pingAfterMs: c.pingIntervalMs, hangupAfterMs: c.hangupAfterMs });
    const url = `ws://127.0.0.1:${port}/`;
    const keepalive = { pingAfterMs: c.pingIntervalMs, hangupAfterMs: c.hangupAfterMs };

    // 0. Warm-up and baseline.
    await client.call('open', { url, count: c.warmupConnections, concurrency: 50, ...keepalive });
    await client.call('echoAll', { timeoutMs: 30_000 });
    await client.call('closeAll');
    await client.call('cycles', { url, count: c.warmupCycles, concurrency: c.cycleConcurrency });
    await serverClientsZero();
    const baseline = { server: await server.call<Snapshot>('snapshot'), client: await client.call<Snapshot>('snapshot') };
    c.log(`baseline server: ${formatSnapshot(baseline.server)} (fd limit ${baseline.server.fdLimit})`);
    c.log(`baseline client: ${formatSnapshot(baseline.client)} (fd limit ${baseline.client.fdLimit})`);
    for (const [who, s] of Object.entries(baseline)) {
      if (s.fdLimit < c.connections + 200) problems.push(`${who}: descriptor limit ${s.fdLimit} is too low for ${c.connections} connections`);
    }

    // 1. Many connections with keepalive.
    const opened = await client.call<PoolResult>('open', { url, count: c.connections, concurrency: c.openConcurrency, ...keepalive });
    c.log(`opened ${opened.ok}/${c.connections} connections in ${opened.ms} ms${opened.failed ? `, ${opened.failed} failed: ${opened.errors.join('; ')}` : ''}`);
    if (opened.ok !== c.connections) problems.push(`${opened.failed} of ${c.connections} connections failed to open: ${opened.errors.join('; ')}`);
    await waitFor('the server to see every connection', 30_000, async () => (await server.call<ServerStats>('stats')).clients >= opened.ok);
    await server.call('resetPongs');
    await client.call('resetPings');
    const holdStart = Date.now();
    await new Promise((r) => setTimeout(r, c.holdMs));
    const held = Date.now() - holdStart;
    const sStats = await server.call<ServerStats>('stats');
    const cStats = await client.call<ClientStats>('stats');
    const loaded = { server: await server.call<Snapshot>('snapshot'), client: await client.call<Snapshot>('snapshot') };
    const expectedPings = Math.floor(held / c.pingIntervalMs);
    const minPings = Math.floor(expectedPings * c.minPingShare);
    c.log(
      `held ${opened.ok} connections for ${held} ms: server sees ${sStats.clients}, client ${cStats.open} open, ${cStats.closedEarly} closed early; ` +
        `pings per connection min ${cStats.minPings} (total ${cStats.totalPings}), pongs per connection min ${sStats.minPongs} (total ${sStats.totalPongs}), ${expectedPings} expected`,
    );
    c.log(`loaded server: ${formatSnapshot(loaded.server)}; per connection ${((loaded.server.rss - baseline.server.rss) / opened.ok / 1024).toFixed(1)} KiB RSS, ${((loaded.server.heapUsed - baseline.server.heapUsed) / opened.ok / 1024).toFixed(1)} KiB heap`);
    c.log(`loaded client: ${formatSnapshot(loaded.client)}`);
    phases.hold = { opened, held, server: sStats, client: cStats, expectedPings };
    if (sStats.clients !== opened.ok) problems.push(`server holds ${sStats.clients} sessions, ${opened.ok} were opened`);
    if (cStats.open !== opened.ok || cStats.closedEarly !== 0) problems.push(`${cStats.closedEarly} connections closed during the hold (codes ${JSON.stringify(cStats.earlyCodes)}), ${cStats.open} open`);
    if (cStats.minPings < minPings) problems.push(`a connection received only ${cStats.minPings} pings in ${held} ms (at least ${minPings} required)`);
    if (sStats.minPongs < minPings) problems.push(`a connection answered only ${sStats.minPongs} pings in ${held} ms (at least ${minPings} required)`);
    if (sStats.errors.length > 0) problems.push(`server errors: ${sStats.errors.join('; ')}`);

    const echoed = await client.call<PoolResult>('echoAll', { timeoutMs: 60_000 });
    c.log(`echo through every connection: ${echoed.ok} ok, ${echoed.failed} failed, ${echoed.ms} ms`);
    if (echoed.ok !== opened.ok) problems.push(`${echoed.failed} connections did not echo after the hold: ${echoed.errors.join('; ')}`);
    const closed = await client.call<{ closed: number; clean: number; codes: Record<string, number>; ms: number }>('closeAll');
    c.log(`closed ${closed.closed} connections in ${closed.ms} ms, ${closed.clean} clean, codes ${JSON.stringify(closed.codes)}`);
    if (closed.clean !== opened.ok || closed.codes['1000'] !== opened.ok) problems.push(`closing: ${closed.clean} clean of ${opened.ok}, codes ${JSON.stringify(closed.codes)}`);
    await serverClientsZero();
    phases.close = closed;
    const afterHold = { server: await server.call<Snapshot>('snapshot'), client: await client.call<Snapshot>('snapshot') };
    c.log(`after closing, server: ${formatSnapshot(afterHold.server)}`);
    c.log(`after closing, client: ${formatSnapshot(afterHold.client)}`);

    // 2. Connect/close cycles.
    const cycles = await client.call<PoolResult & { unclean: number; codes: Record<string, number> }>('cycles', { url, count: c.cycles, concurrency: c.cycleConcurrency }, 1_800_000);
    c.log(`${cycles.ok}/${c.cycles} connect/close cycles in ${cycles.ms} ms (${Math.round((cycles.ok / cycles.ms) * 1000)}/s, concurrency ${c.cycleConcurrency}), ${cycles.unclean} unclean, ${cycles.failed} failed${cycles.failed ? ': ' + cycles.errors.join('; ') : ''}, codes ${JSON.stringify(cycles.codes)}`);
    if (cycles.ok !== c.cycles || cycles.unclean !== 0) problems.push(`cycles: ${cycles.ok} of ${c.cycles} done, ${cycles.unclean} unclean, errors: ${cycles.errors.join('; ')}`);
    await serverClientsZero();
    const sEnd = await server.call<ServerStats>('stats');
    phases.cycles = { ...cycles, server: sEnd };
    const totalOpened = c.warmupConnections + c.warmupCycles + opened.ok + cycles.ok;
    if (sEnd.opened !== totalOpened || sEnd.closed !== totalOpened) problems.push(`server opened ${sEnd.opened} and closed ${sEnd.closed} sessions, ${totalOpened} expected`);

    // 3. Back to the baseline.
    const final = { server: await server.call<Snapshot>('snapshot'), client: await client.call<Snapshot>('snapshot') };
    c.log(`final server: ${formatSnapshot(final.server)}`);
    c.log(`final client: ${formatSnapshot(final.client)}`);
    compare('server', baseline.server, final.server, c.margins, problems);
    compare('client', baseline.client, final.client, c.margins, problems);
    for (const who of ['server', 'client'] as const) {
      const growth = final[who].rss - afterHold[who].rss;
      c.log(`${who}: RSS ${growth >= 0 ? '+' : ''}${(growth / MB).toFixed(1)} MB over the ${cycles.ok} cycles, ${((final[who].rss - baseline[who].rss) / MB).toFixed(1)} MB over the baseline; heap ${((final[who].heapUsed - baseline[who].heapUsed) / MB).toFixed(2)} MB over the baseline`);
      if (growth > c.margins.rssCyclesBytes) problems.push(`${who}: RSS grew ${(growth / MB).toFixed(1)} MB during the cycles (margin ${(c.margins.rssCyclesBytes / MB).toFixed(1)} MB)`);
    }

    await server.call('close');
    return { problems, baseline, loaded, afterHold, final, phases };
  } finally {
    await Promise.all([server.stop(), client.stop()]);
  }
}
