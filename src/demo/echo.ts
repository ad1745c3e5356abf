import type { ServerSession } from '../server/server-session.js';
import type { ServerHandler } from '../server/server.js';
import type { PerMessageDeflateOptions } from '../transport/permessage-deflate.js';

export const ECHO_BACKLOG_CLOSE = { code: 1013, reason: 'echo backlog full' } as const;

/**
 * The subprotocol of the echo service that never negotiates
 * permessage-deflate. A browser always offers the extension and cannot be
 * told not to, so a page that wants to measure round trips without zlib
 * (random bytes do not compress) asks for this subprotocol instead of none.
 */
export const ECHO_NO_DEFLATE_PROTOCOL = 'sockeye-echo-nodeflate';

export interface EchoOptions {
  /** Whether the echo negotiates permessage-deflate. Default true. */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  /** Send failures (a dropped echo), as "ADDRESS: message". */
  onError?: (message: string) => void;
}

/**
 * The echo service, for clients that ask for no subprotocol: every message
 * comes back with the same type, in order, at the speed the client reads.
 *
 * Pacing: an echo that leaves more than the high-water mark waiting (send()
 * answers 'backpressure') pauses reading from that client, and reading
 * resumes when everything queued has gone to the kernel (requestWritable(),
 * then onWritable). So a client may keep any number of messages in flight:
 * what it has not read waits on its side of the connection, not in the
 * server's memory, and the server's queue holds about one echo. The pause is
 * the application's choice (pauseReading()); the library itself never pauses
 * reading for writes (invariant S1).
 *
 * While paused, nothing is read, as docs/api.md documents for pauseReading():
 * the client's pings wait unanswered and its close frame unread until its
 * echoes drain, which happens only while it reads. A client that stops
 * reading altogether sends nothing the server reads any more, so the
 * keepalive hangs it up (hangupAfterMs, 1006). When the session starts
 * closing, reading resumes, so that the client's close frame is read and the
 * closing handshake completes: after a 1013 here, and after a shutdown
 * through resumeAll(). Guarded by test/demo/echo.test.ts and
 * test/demo/large-echo.test.ts.
 *
 * An echo that does not fit at all (send() answers 'dropped': the queue
 * would pass maxQueuedBytes, as when messages already read, or still being
 * inflated, come in while reading is paused) is reported to onError and the
 * client is closed with 1013 "try again later", rather than left with a hole
 * in its echo stream (invariant S4: nothing is lost silently).
 */
export class EchoProtocol {
  readonly handler: ServerHandler;
  /** Sessions whose reading the echo has paused until their queue drains. */
  private readonly paused = new Set<ServerSession>();

  constructor(options: EchoOptions = {}) {
    const onError = options.onError;
    this.handler = {
      perMessageDeflate: options.perMessageDeflate ?? true,
      onMessage: (session, message) => {
        // send()'s default copy, as an application that does not think about ownership writes it:
        // what `sockeye serve` measures is what such an application gets.
        const status = session.send(message.data, { binary: message.binary });
        if (status === 'backpressure') this.pause(session);
        else if (status === 'dropped' && session.state === 'open') {
          session.close(ECHO_BACKLOG_CLOSE.code, ECHO_BACKLOG_CLOSE.reason);
          this.resume(session);
        }
      },
      onWritable: (session) => this.resume(session),
      onClose: (session) => {
        this.paused.delete(session);
      },
      onError: (session, error) => {
        onError?.(`${session.remoteAddress ?? 'client'}: ${error.message}`);
      },
    };
  }

  /** Whether the echo holds `session`'s reading paused, waiting for its queue to drain. */
  isPaused(session: ServerSession): boolean {
    return this.paused.has(session);
  }

  /**
   * Resumes reading on every session the echo has paused. For a shutdown,
   * after the sessions were closed: their close frames wait behind their
   * echoes, and the client's answering close frame must be read, or the
   * session ends with 1006 after closeTimeoutMs.
   */
  resumeAll(): void {
    for (const session of [...this.paused]) this.resume(session);
  }

  private pause(session: ServerSession): void {
    if (!this.paused.has(session)) {
      this.paused.add(session);
      session.pauseReading();
    }
    // One onWritable per request; a request already pending answers this one too.
    session.requestWritable();
  }

  private resume(session: ServerSession): void {
    if (!this.paused.delete(session)) return;
    session.resumeReading();
  }
}
