/**
 * The bounded soak and leak test that CI runs with `npm test`;
 * `npm run soak` runs the full one (10,000 connections for 60 s, 100,000
 * cycles). Same harness (test/soak/harness.ts), same checks, smaller:
 *
 *   1,000 concurrent connections, the server pinging each every 100 ms
 *   (RFC 6455 section 5.5.2: each ping answered by a pong) for 5 s; then
 *   5,000 connect/close cycles; server and clients in separate processes.
 *
 * Margins (against a baseline taken after a warm-up at full scale, so the
 * allocator has already grown to the test's size):
 *   - heap after GC: within 4 MB of the baseline (a leak of 800 bytes per
 *     cycle, or of 4 KiB per held connection, would exceed it; a session
 *     holds about 6 KiB of heap);
 *   - RSS: within 48 MB of the baseline (measured +2 to +26 MB: freed pages
 *     stay with the allocator), and at most 16 MB of growth over the cycles;
 *   - open descriptors: exactly the baseline;
 *   - active handles (process.getActiveResourcesInfo()): exactly the
 *     baseline's kinds and counts: no socket, server or timer left behind.
 * Keepalive: each connection must receive and answer at least 30% of the
 * 50 pings the hold allows (measured: 39 or more; a 2-core machine running
 * other test files delays timers; the hang-up timeout, 10 s, is far away,
 * so no connection may be dropped).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSoak } from './harness.js';

const MB = 1024 * 1024;

test('soak: 1,000 connections with a 100 ms keepalive for 5 s, then 5,000 connect/close cycles; resources back to the baseline', { timeout: 180_000 }, async () => {
  const log: string[] = [];
  const result = await runSoak({
    connections: 1000,
    holdMs: 5000,
    pingIntervalMs: 100,
    hangupAfterMs: 10_000,
    cycles: 5000,
    cycleConcurrency: 50,
    openConcurrency: 100,
    warmupConnections: 1000,
    warmupCycles: 1000,
    minPingShare: 0.3,
    margins: { heapBytes: 4 * MB, rssBytes: 48 * MB, rssCyclesBytes: 16 * MB, fds: 0 },
    log: (line) => log.push(line),
  });
  for (const line of log) console.log(`# ${line}`);
  assert.deepEqual(result.problems, []);
  // The run really had the connections it claims (the harness checks the details; these guard the harness).
  assert.equal(result.loaded.server.resources.TCPSocketWrap, 1000);
  assert.equal(result.loaded.client.resources.TCPSocketWrap, 1000);
  assert.equal(result.final.server.resources.TCPSocketWrap ?? 0, 0);
});
