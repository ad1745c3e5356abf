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

/**
 * The echo service, for clients that ask for no subprotocol: every message
 * comes back with the same type. A client that sends faster than it reads
 * fills its outbound queue up to maxQueuedBytes; the echo that does not fit
 * is dropped (reported to the session's onError) and the client is closed
 * with 1013 "try again later" rather than left with a hole in its echo
 * stream (invariant S4: nothing is lost silently).
 */
export function echoHandler(options: { perMessageDeflate?: boolean | PerMessageDeflateOptions; onError?: (message: string) => void } = {}): ServerHandler {
  return {
    perMessageDeflate: options.perMessageDeflate ?? true,
    onMessage(session, message) {
      const status = session.send(message.data, { binary: message.binary });
      if (status === 'dropped' && session.state === 'open') session.close(ECHO_BACKLOG_CLOSE.code, ECHO_BACKLOG_CLOSE.reason);
    },
    onError(session, error) {
      options.onError?.(`${session.remoteAddress ?? 'client'}: ${error.message}`);
    },
  };
}
