/**
 * Shared pieces of the fault tests: a handler that records every event of
 * every session in order, and checks on what was recorded ("each event fires
 * once, in order").
 */
import assert from 'node:assert/strict';
import type { CloseInfo, Handler, Message, Session } from '../../src/index.js';
import { waitUntil } from '../helpers/ws-pair.js';

export interface SessionLog {
  /** 'open', 'message <n bytes>', 'error <code>', 'close <code>' in the order they fired. */
  events: string[];
  closeInfo: CloseInfo | null;
  messages: Message[];
}

/**
 * A handler recording into one SessionLog per session (keyed by the session
 * object), optionally echoing. `extra` handlers run after recording.
 */
export class EventRecorder<S extends Session<unknown>> {
  readonly logs = new Map<S, SessionLog>();
  constructor(private readonly opts: { echo?: boolean; keepMessages?: boolean } = {}) {}

  private log(s: S): SessionLog {
    let l = this.logs.get(s);
    if (!l) {
      l = { events: [], closeInfo: null, messages: [] };
      this.logs.set(s, l);
    }
    return l;
  }

  handler(extra: Partial<Handler<S>> = {}): Handler<S> {
    return {
      onOpen: (s) => {
        this.log(s).events.push('open');
        extra.onOpen?.(s);
      },
      onMessage: (s, m) => {
        const l = this.log(s);
        l.events.push(`message ${m.data.length}`);
        if (this.opts.keepMessages) l.messages.push(m);
        if (this.opts.echo) s.send(m.data, { binary: m.binary });
        extra.onMessage?.(s, m);
      },
      onError: (s, e) => {
        this.log(s).events.push(`error ${e.code}`);
        extra.onError?.(s, e);
      },
      onClose: (s, info) => {
        const l = this.log(s);
        l.events.push(`close ${info.code}`);
        l.closeInfo = info;
        extra.onClose?.(s, info);
      },
    };
  }

  /** The single session's log (fails if there is not exactly one). */
  only(): SessionLog {
    assert.equal(this.logs.size, 1, `${this.logs.size} sessions recorded`);
    return [...this.logs.values()][0];
  }

  async waitClosed(count: number, ms = 10_000): Promise<void> {
    await waitUntil(() => [...this.logs.values()].filter((l) => l.closeInfo !== null).length >= count, ms, `${count} onClose`);
  }
}

/**
 * "Each event fires once, in order": open first, close last and exactly
 * once, at most one error and only just before the close, and the expected
 * close code. `middle` are the events expected between open and the end
 * (messages), exactly.
 */
export function assertLifecycle(log: SessionLog, code: number, opts: { errorCode?: string | RegExp | null; middle?: string[]; opened?: boolean } = {}): void {
  const ev = log.events;
  const expected: Array<string | RegExp> = [];
  if (opts.opened !== false) expected.push('open');
  expected.push(...(opts.middle ?? []));
  if (opts.errorCode !== null && opts.errorCode !== undefined) expected.push(typeof opts.errorCode === 'string' ? `error ${opts.errorCode}` : opts.errorCode);
  expected.push(`close ${code}`);
  assert.equal(ev.length, expected.length, `events: ${ev.join(' | ')}`);
  expected.forEach((e, i) => {
    if (typeof e === 'string') assert.equal(ev[i], e, `events: ${ev.join(' | ')}`);
    else assert.match(ev[i], e, `events: ${ev.join(' | ')}`);
  });
}

/** Counts of process.getActiveResourcesInfo() by type. */
export function activeResources(): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) m.set(r, (m.get(r) ?? 0) + 1);
  return m;
}

/**
 * All resources freed: waits (bounded) until the counts of TCP handles and
 * timers are back to `baseline` (within `margin`), then asserts it.
 */
export async function assertResourcesBack(baseline: Map<string, number>, margin = 0, ms = 10_000): Promise<void> {
  const types = ['TCPSocketWrap', 'TCPServerWrap', 'TLSWrap', 'Timeout'];
  const over = () => types.filter((t) => (activeResources().get(t) ?? 0) > (baseline.get(t) ?? 0) + margin);
  await waitUntil(() => over().length === 0, ms, 'resources back to the baseline').catch(() => {});
  assert.deepEqual(over(), [], `resources not freed: before ${JSON.stringify(Object.fromEntries(baseline))}, now ${JSON.stringify(Object.fromEntries(activeResources()))}`);
}
