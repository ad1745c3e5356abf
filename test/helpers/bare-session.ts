/**
 * A sockeye Session over any open Duplex, with no handshake of its own (the
 * stream is already a WebSocket): what the transport tests run over
 * in-memory pairs and HTTP/2 streams.
 */
import type { Duplex } from 'node:stream';
import type { Context } from '../../src/transport/context.js';
import { Session } from '../../src/transport/session.js';
import type { Handler } from '../../src/transport/types.js';

export interface BareSessionOptions {
  /** Buffer whole messages for messages() (default: when the handler has no onMessage). */
  inbox?: boolean;
  /** Where a handler's throw goes (default: dropped). */
  onHandlerError?: (error: unknown) => void;
  /** Call start() now (default true). */
  start?: boolean;
}

export function bareSession(role: 'server' | 'client', stream: Duplex, context: Context, handler: Handler<Session> = {}, options: BareSessionOptions = {}): Session {
  // The handler is typed for the session it gets; SessionInit types it by the session's data.
  const session: Session = new Session<Record<string, unknown>>({
    role,
    socket: stream,
    context,
    handler: handler as unknown as Handler<Record<string, unknown>>,
    protocol: undefined,
    extensions: [],
    limits: {},
    keepalive: null,
    closeTimeoutMs: 2000,
    head: Buffer.alloc(0),
    inbox: options.inbox ?? !handler.onMessage,
    onHandlerError: options.onHandlerError ?? (() => undefined),
  });
  if (options.start !== false) session.start(Buffer.alloc(0));
  return session;
}
