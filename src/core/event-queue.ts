import type { ConnectionEvent } from './connection-types.js';

/**
 * The events of the input being processed, handed to the host once the input
 * is (ConnectionHost.onEvent). An event raised while earlier ones are being
 * handed over (a handler closed the connection) joins the end of the queue
 * and is handed over by the same loop, so order is kept and the host is
 * never re-entered. Guarded by test/core/event-queue.test.ts.
 */
export class EventQueue {
  private readonly events: ConnectionEvent[] = [];
  private next = 0;
  private running = false;
  private readonly host: { onEvent(event: ConnectionEvent): void };

  constructor(host: { onEvent(event: ConnectionEvent): void }) {
    this.host = host;
  }

  /** True while events are being handed over (the host is running). */
  get delivering(): boolean {
    return this.running;
  }

  /** Nothing waits to be delivered. */
  get empty(): boolean {
    return this.events.length === 0;
  }

  push(event: ConnectionEvent): void {
    this.events.push(event);
  }

  /** Hands every queued event over, in order; a no-op when called from inside onEvent (the running loop goes on). */
  deliver(): void {
    if (this.running) return;
    const q = this.events;
    if (q.length === 0) return;
    this.running = true;
    try {
      while (this.next < q.length) this.host.onEvent(q[this.next++]);
    } finally {
      if (this.next >= q.length) q.length = 0;
      else q.splice(0, this.next);
      this.next = 0;
      this.running = false;
    }
  }

  /** Forgets the events not handed over yet, except 'closed' (the connection ended under the loop). */
  dropUndelivered(): void {
    const q = this.events;
    let w = this.next;
    for (let r = this.next; r < q.length; r++) if (q[r].type === 'closed') q[w++] = q[r];
    q.length = w;
  }
}
