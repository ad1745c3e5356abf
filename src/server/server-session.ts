import { Session, type SessionInit } from '../transport/session.js';

/** What the server learnt from the opening handshake. */
export interface UpgradeRequest {
  /** request-target as sent, e.g. '/chat?room=1'. */
  readonly url: string;
  /** Path part of the target, without the query. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly host: string;
  readonly origin: string | undefined;
  /** Lower-cased header names to their values in order. */
  readonly headers: ReadonlyMap<string, readonly string[]>;
  readonly remoteAddress: string | undefined;
  /** Subprotocols the client offered, in its order. */
  readonly protocols: readonly string[];
  /** True over TLS. */
  readonly secure: boolean;
}

/** A server-side session: a Session plus the request that opened it. */
export class ServerSession<T = Record<string, unknown>> extends Session<T> {
  readonly request: UpgradeRequest;
  constructor(init: SessionInit<T>, request: UpgradeRequest) {
    super(init);
    this.request = request;
  }
}
