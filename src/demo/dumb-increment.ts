import type { ServerSession } from '../server/server-session.js';
import type { ServerHandler } from '../server/server.js';

/** Per-session state of a dumb-increment-protocol connection. */
export interface DumbIncrementData {
  /** The next number to send. */
  n: number;
}

export type DumbIncrementSession = ServerSession<DumbIncrementData>;

export interface DumbIncrementOptions {
  /** Period of the counter. Default 50 ms, as libwebsockets' DUMB_PERIOD_US. */
  intervalMs?: number;
}

/** Largest message the protocol reads: its only inputs are 'reset\n' and 'closeme\n' (libwebsockets reads 10-byte pieces). */
export const DUMB_INCREMENT_MAX_MESSAGE = 1024;

const RESET = Buffer.from('reset\n');
const CLOSEME = Buffer.from('closeme\n');

/**
 * libwebsockets' dumb-increment-protocol (plugins/protocol_dumb_increment.c):
 * every `intervalMs` each connection is sent the TEXT message "0", "1",
 * "2", ...; a message starting `reset\n` sets the counter back to 0, one
 * starting `closeme\n` closes the connection with 1001 and reason "seeya".
 *
 * Sending follows the libwebsockets pattern: one timer per protocol
 * instance asks every session for a writable callback, and onWritable
 * sends. A session whose reader is slow simply gets fewer numbers: a
 * request is answered only once everything before it has reached the
 * kernel, and requests do not stack, so nothing piles up in memory.
 * (libwebsockets' timer, per connection, wakes all connections, so there
 * each one gets about 20*N messages a second with N clients; here it is 20
 * each, whatever N.)
 *
 * Differences, on purpose: a message is judged whole, by its first bytes
 * (libwebsockets looks at each 10-byte piece of a message on its own); a
 * message over 1 KiB is a protocol violation closed with 1009. Compression
 * is declined, as libwebsockets' test client cannot take it on this
 * protocol.
 */
export class DumbIncrementProtocol {
  readonly handler: ServerHandler<DumbIncrementData>;
  private readonly sessions = new Set<DumbIncrementSession>();
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | null = null;

  constructor(options: DumbIncrementOptions = {}) {
    this.intervalMs = options.intervalMs ?? 50;
    if (!(this.intervalMs > 0)) throw new RangeError(`intervalMs must be positive, not ${this.intervalMs}`);
    this.handler = {
      perMessageDeflate: false,
      limits: { maxMessageBytes: DUMB_INCREMENT_MAX_MESSAGE },
      onOpen: (session) => {
        session.data.n = 0;
        this.sessions.add(session);
        // "0" goes out at once; libwebsockets waits for its first tick, 50 ms later.
        session.requestWritable();
        this.startTimer();
      },
      onWritable: (session) => {
        session.send(String(session.data.n++));
      },
      onMessage: (session, message) => {
        const data = message.data;
        if (startsWith(data, RESET)) session.data.n = 0;
        if (startsWith(data, CLOSEME)) session.close(1001, 'seeya');
      },
      onClose: (session) => {
        this.sessions.delete(session);
        if (this.sessions.size === 0) this.stopTimer();
      },
    };
  }

  /** Connections being counted for. */
  get size(): number {
    return this.sessions.size;
  }

  /** True while the timer runs (only while there are connections). */
  get running(): boolean {
    return this.timer !== null;
  }

  /** Stops the timer (the server's close() ends the sessions themselves). */
  stop(): void {
    this.stopTimer();
  }

  private startTimer(): void {
    if (this.timer) return;
    // Runs only while there are sessions, so an idle server holds no timer.
    this.timer = setInterval(() => this.tick(), this.intervalMs);
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private tick(): void {
    for (const s of this.sessions) {
      // A request still pending answers this tick too (requestWritable returns false): no burst after a slow spell.
      if (s.state === 'open') s.requestWritable();
    }
  }
}

function startsWith(data: Buffer, prefix: Buffer): boolean {
  return data.length >= prefix.length && data.subarray(0, prefix.length).equals(prefix);
}
