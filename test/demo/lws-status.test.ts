/**
 * lws-status on the demo server (libwebsockets' plugins/protocol_lws_status.c):
 * the list of connections as JSON, sent fragmented (TEXT + CONTINUATION,
 * RFC 6455 section 5.4) on every connect and disconnect, with libwebsockets'
 * field names; permessage-deflate accepted, as libwebsockets does on it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { connect, type ClientSession, type Fragment } from '../../src/index.js';
import type { StatusReport } from '../../src/demo/lws-status.js';
import { startDemo, type DemoFixture } from './demo-fixture.js';
import { RawClient } from '../helpers/ws-pair.js';

/** A status client that keeps every report with the fragments it came in. */
class StatusWatcher {
  readonly reports: Array<{ report: StatusReport; fragments: Fragment[] }> = [];
  private current: Fragment[] = [];
  private wake: (() => void) | null = null;
  session!: ClientSession;

  static async open(port: number, opts: { perMessageDeflate?: boolean; headers?: Record<string, string> } = {}): Promise<StatusWatcher> {
    const w = new StatusWatcher();
    w.session = await connect(`ws://127.0.0.1:${port}/`, {
      protocol: 'lws-status',
      perMessageDeflate: opts.perMessageDeflate,
      headers: opts.headers,
      handler: {
        onFragment: (_s, f) => {
          w.current.push(f);
          if (!f.last) return;
          const fragments = w.current;
          w.current = [];
          const text = Buffer.concat(fragments.map((x) => x.data)).toString('utf8');
          w.reports.push({ report: JSON.parse(text) as StatusReport, fragments });
          w.wake?.();
        },
      },
    });
    return w;
  }

  /** Waits (bounded) for a report that satisfies `pred`, newer than index `from`. */
  async waitFor(pred: (r: StatusReport) => boolean, what: string, from = 0): Promise<{ report: StatusReport; fragments: Fragment[] }> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const found = this.reports.slice(from).find((r) => pred(r.report));
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for a status report with ${what}; got ${JSON.stringify(this.reports.map((r) => r.report))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 100));
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }
}

describe('lws-status', () => {
  let fx: DemoFixture;
  const open: Array<{ terminate(): void }> = [];
  before(async () => {
    fx = await startDemo({ version: 'sockeye-test 1.2.3' });
  });
  after(async () => {
    for (const c of open) c.terminate();
    await fx.close();
  });

  it('sends the connection list on connect, fragmented, with libwebsockets field names', async () => {
    const w = await StatusWatcher.open(fx.port, { headers: { 'User-Agent': 'status-test/1.0' } });
    open.push(w.session);
    const { report, fragments } = await w.waitFor((r) => r.conns.some((c) => c.ua === 'status-test/1.0'), 'this client listed');
    // Head, one fragment per connection, then the closing "]}".
    assert.equal(fragments.length, report.conns.length + 2);
    assert.equal(fragments[0].first, true);
    assert.equal(fragments[0].binary, false, 'TEXT');
    assert.ok(fragments.slice(1).every((f) => !f.first));
    assert.equal(fragments.at(-1)!.data.toString(), ']}');
    assert.deepEqual(Object.keys(report), ['version', 'wss_over_h2', 'hostname', 'wsi', 'conns']);
    assert.equal(report.version, 'sockeye-test 1.2.3');
    assert.equal(report.wss_over_h2, '0');
    assert.equal(report.hostname, hostname());
    assert.equal(report.wsi, String(report.conns.length));
    const me = report.conns.find((c) => c.ua === 'status-test/1.0')!;
    assert.deepEqual(Object.keys(me), ['peer', 'time', 'ua', 'protocol']);
    assert.match(me.peer, /127\.0\.0\.1/);
    assert.match(me.time, /^\d+$/);
    assert.ok(Math.abs(Number(me.time) - Date.now() / 1000) < 60);
    assert.equal(me.protocol, 'lws-status');
    w.session.close();
    await w.session.closed;
  });

  it('sends a new list on every connect and disconnect, of any protocol', async () => {
    const w = await StatusWatcher.open(fx.port);
    open.push(w.session);
    await w.waitFor((r) => r.conns.length >= 1, 'itself');
    const mark = w.reports.length;
    const dumb = await connect(`ws://127.0.0.1:${fx.port}/`, { protocol: 'dumb-increment-protocol', headers: { 'User-Agent': 'dumb-ua' } });
    open.push(dumb);
    await w.waitFor((r) => r.conns.some((c) => c.ua === 'dumb-ua' && c.protocol === 'dumb-increment-protocol'), 'the dumb-increment connection', mark);
    const echo = await connect(`ws://127.0.0.1:${fx.port}/`, { headers: { 'User-Agent': 'echo-ua' } });
    open.push(echo);
    await w.waitFor((r) => r.conns.some((c) => c.ua === 'echo-ua' && c.protocol === ''), 'the echo connection', mark);
    const mark2 = w.reports.length;
    dumb.close();
    await dumb.closed;
    await w.waitFor((r) => !r.conns.some((c) => c.ua === 'dumb-ua') && r.conns.some((c) => c.ua === 'echo-ua'), 'the dumb-increment connection gone', mark2);
    // A connection that just drops (no closing handshake) is a disconnect too.
    const mark3 = w.reports.length;
    echo.terminate();
    await w.waitFor((r) => !r.conns.some((c) => c.ua === 'echo-ua'), 'the echo connection gone', mark3);
    w.session.close();
    await w.session.closed;
  });

  it('accepts permessage-deflate and its fragments inflate to the same JSON', async () => {
    const w = await StatusWatcher.open(fx.port, { perMessageDeflate: true, headers: { 'User-Agent': 'deflate-ua' } });
    open.push(w.session);
    assert.deepEqual(w.session.extensions, ['permessage-deflate']);
    const { report } = await w.waitFor((r) => r.conns.some((c) => c.ua === 'deflate-ua'), 'this client listed');
    assert.equal(report.wss_over_h2, '0');
    w.session.close();
    await w.session.closed;
  });

  it('coalesces changes: one list per writable callback, not one per change', async () => {
    const w = await StatusWatcher.open(fx.port);
    open.push(w.session);
    await w.waitFor((r) => r.conns.length >= 1, 'itself');
    const mark = w.reports.length;
    // Ten changes in one turn of the event loop, then a real connect.
    for (let i = 0; i < 10; i++) fx.demo.status.changed();
    const c = await connect(`ws://127.0.0.1:${fx.port}/`, { headers: { 'User-Agent': 'coalesce-ua' } });
    open.push(c);
    await w.waitFor((r) => r.conns.some((x) => x.ua === 'coalesce-ua'), 'the new connection', mark);
    const got = w.reports.length - mark;
    assert.ok(got >= 1 && got <= 2, `${got} lists for 11 changes`);
    c.close();
    w.session.close();
    await Promise.all([c.closed, w.session.closed]);
  });

  it('a reader that paused reading still ends up with the current list', async () => {
    const slow = await RawClient.open(fx.port, { headers: { 'Sec-WebSocket-Protocol': 'lws-status' } });
    open.push({ terminate: () => slow.destroy() });
    slow.pause();
    for (let i = 0; i < 20; i++) {
      const c = await connect(`ws://127.0.0.1:${fx.port}/`);
      c.close();
      await c.closed;
    }
    slow.resume();
    // Whatever it missed, the last list it gets is the current one: only itself.
    await slow.waitFor(() => {
      const last = reassemble(slow.frames.map((f) => ({ fin: f.fin, payload: f.payload }))).at(-1);
      return last !== undefined && (JSON.parse(last) as StatusReport).conns.length === 1;
    }, 10_000, 'a list with only the raw client');
    slow.destroy();
  });
});

function reassemble(frames: Array<{ fin: boolean; payload: Buffer }>): string[] {
  const out: string[] = [];
  let cur: Buffer[] = [];
  for (const f of frames) {
    cur.push(f.payload);
    if (f.fin) {
      out.push(Buffer.concat(cur).toString('utf8'));
      cur = [];
    }
  }
  return out;
}
