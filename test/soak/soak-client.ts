/**
 * The soak client process: opens and holds many connections (sharing one
 * Context, as an application with many clients would), counts the pings each
 * receives, echoes through them, closes them, and runs connect/close cycles.
 * Driven by test/soak/harness.ts.
 */
import { connect, type ClientSession } from '../../src/index.js';
import { Context } from '../../src/transport/context.js';
import type { CloseInfo } from '../../src/transport/types.js';
import { serveCommands, snapshot } from './proc.js';

interface Data {
  pings: number;
  echo: (() => void) | null;
  closing: boolean;
}

let context: Context | null = new Context();
const sessions: ClientSession[] = [];
let closedEarly = 0;
const earlyCodes: Record<string, number> = {};

const handler = {
  onPing(session: ClientSession) {
    (session.data as unknown as Data).pings++;
  },
  onMessage(session: ClientSession) {
    const d = session.data as unknown as Data;
    const resolve = d.echo;
    d.echo = null;
    resolve?.();
  },
  onClose(session: ClientSession, info: CloseInfo) {
    if (!(session.data as unknown as Data).closing) {
      closedEarly++;
      earlyCodes[info.code] = (earlyCodes[info.code] ?? 0) + 1;
    }
  },
};

/** Runs `total` jobs with at most `concurrency` at once; collects the first few errors. */
async function pool(total: number, concurrency: number, job: (i: number) => Promise<void>): Promise<{ ok: number; failed: number; errors: string[] }> {
  let next = 0;
  let ok = 0;
  let failed = 0;
  const errors: string[] = [];
  const worker = async (): Promise<void> => {
    while (next < total) {
      const i = next++;
      try {
        await job(i);
        ok++;
      } catch (err) {
        failed++;
        if (errors.length < 5) errors.push(String(err instanceof Error ? err.message : err));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  return { ok, failed, errors };
}

serveCommands({
  async open(args: { url: string; count: number; concurrency: number; pingAfterMs: number; hangupAfterMs: number }) {
    const started = Date.now();
    const r = await pool(args.count, args.concurrency, async () => {
      const s = await connect(args.url, {
        context: context!,
        keepalive: { pingAfterMs: args.pingAfterMs, hangupAfterMs: args.hangupAfterMs },
        handler,
        handshakeTimeoutMs: 60_000,
      });
      s.data = { pings: 0, echo: null, closing: false } satisfies Data;
      sessions.push(s);
    });
    return { ...r, ms: Date.now() - started };
  },
  stats() {
    let minPings = Infinity;
    let totalPings = 0;
    let open = 0;
    for (const s of sessions) {
      const d = s.data as unknown as Data;
      minPings = Math.min(minPings, d.pings);
      totalPings += d.pings;
      if (s.state === 'open') open++;
    }
    return { sessions: sessions.length, open, closedEarly, earlyCodes, minPings: Number.isFinite(minPings) ? minPings : 0, totalPings };
  },
  resetPings() {
    for (const s of sessions) (s.data as unknown as Data).pings = 0;
    return null;
  },
  /** Each session sends one message and waits for its echo. */
  async echoAll(args: { timeoutMs: number }) {
    const started = Date.now();
    const r = await pool(sessions.length, sessions.length, async (i) => {
      const s = sessions[i];
      const d = s.data as unknown as Data;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no echo')), args.timeoutMs);
        d.echo = () => {
          clearTimeout(timer);
          resolve();
        };
        const status = s.send(`echo ${i}`);
        if (status === 'dropped') {
          clearTimeout(timer);
          reject(new Error('send dropped'));
        }
      });
    });
    return { ...r, ms: Date.now() - started };
  },
  async closeAll() {
    const started = Date.now();
    const infos = await Promise.all(
      sessions.map((s) => {
        (s.data as unknown as Data).closing = true;
        s.close(1000, 'soak done');
        return s.closed;
      }),
    );
    sessions.length = 0;
    const codes: Record<string, number> = {};
    let clean = 0;
    for (const i of infos) {
      codes[i.code] = (codes[i.code] ?? 0) + 1;
      if (i.wasClean) clean++;
    }
    return { closed: infos.length, clean, codes, ms: Date.now() - started };
  },
  /** `count` times: connect, close, wait for the close to finish; `concurrency` at once. */
  async cycles(args: { url: string; count: number; concurrency: number }) {
    const started = Date.now();
    const codes: Record<string, number> = {};
    let unclean = 0;
    const r = await pool(args.count, args.concurrency, async () => {
      const s = await connect(args.url, { context: context!, keepalive: null, handshakeTimeoutMs: 60_000 });
      s.close(1000);
      const info = await s.closed;
      codes[info.code] = (codes[info.code] ?? 0) + 1;
      if (!info.wasClean) unclean++;
    });
    return { ...r, unclean, codes, ms: Date.now() - started };
  },
  snapshot,
  exit() {
    context?.close();
    context = null;
    setImmediate(() => process.exit(0));
    return null;
  },
});
