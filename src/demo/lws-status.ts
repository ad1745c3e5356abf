import { hostname } from 'node:os';
import type { ServerSession } from '../server/server-session.js';
import type { ServerHandler } from '../server/server.js';
import type { PerMessageDeflateOptions } from '../transport/permessage-deflate.js';

/** Per-session state of an lws-status connection. */
export interface StatusData {
  /** The list changed since this session was last sent it. */
  dirty: boolean;
}

export type StatusSession = ServerSession<StatusData>;

/** One connection in the list, with libwebsockets' field names (all values are strings there, and here). */
export interface StatusConn {
  /** Remote address. */
  peer: string;
  /** When it opened, in seconds since the epoch. */
  time: string;
  /** Its User-Agent header ('' without one). */
  ua: string;
  /** Its subprotocol ('' for none). Not in libwebsockets, whose list holds lws-status connections only. */
  protocol: string;
}

/** The whole message, as JSON.parse sees it. */
export interface StatusReport {
  version: string;
  /** "0": this server has no WebSockets over HTTP/2 (RFC 8441). */
  wss_over_h2: string;
  hostname: string;
  /** Number of connections, as a string (libwebsockets' count of lws-status connections). */
  wsi: string;
  conns: StatusConn[];
}

export interface StatusOptions {
  /** Reported as "version". */
  version: string;
  /** The connections to list (the server's clients). */
  connections: () => Iterable<ServerSession<unknown>>;
  /** Accept permessage-deflate on this protocol, as libwebsockets does. Default true. */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
}

/**
 * libwebsockets' lws-status (plugins/protocol_lws_status.c): on every
 * connect and disconnect, each lws-status client is sent the list of
 * connections as one JSON TEXT message in fragments (RFC 6455 section 5.4):
 * the head `{"version":..,"wss_over_h2":..,"hostname":..,"wsi":..,"conns":[`
 * first, then one CONTINUATION per connection, then `]}`.
 *
 * Unlike libwebsockets, which lists only the lws-status connections, the
 * list holds every open connection of the server (each with its
 * "protocol"), and changes of any of them trigger a resend: that is what
 * the demo page shows.
 *
 * Changes are coalesced the libwebsockets way: a change marks every status
 * session dirty and asks for a writable callback; the callback sends the
 * list as it is then. A burst of connects gives each reader one or a few
 * lists, never a backlog, and a reader that does not read holds at most one.
 */
export class StatusProtocol {
  readonly handler: ServerHandler<StatusData>;
  private readonly sessions = new Set<StatusSession>();
  private readonly opened = new WeakMap<object, number>();
  private readonly options: StatusOptions;
  private readonly host = hostname();

  constructor(options: StatusOptions) {
    this.options = options;
    this.handler = {
      perMessageDeflate: options.perMessageDeflate ?? true,
      onOpen: (session) => {
        session.data.dirty = false;
        this.sessions.add(session);
        this.changed();
      },
      onWritable: (session) => this.sendReport(session),
      // Whatever a status client sends is ignored, as in libwebsockets.
      onMessage: () => undefined,
      onClose: (session) => {
        this.sessions.delete(session);
      },
    };
  }

  /** Records when a connection opened (for "time"); call from every protocol's onOpen. */
  connectionOpened(session: ServerSession<unknown>): void {
    this.opened.set(session, Math.floor(Date.now() / 1000));
  }

  /** Something connected or disconnected: every status client gets the new list. */
  changed(): void {
    for (const s of this.sessions) {
      s.data.dirty = true;
      if (s.state === 'open') s.requestWritable();
    }
  }

  /** The list as it is now. */
  report(): StatusReport {
    const conns: StatusConn[] = [];
    for (const c of this.options.connections()) {
      if (c.state !== 'open') continue;
      conns.push({
        peer: c.remoteAddress ?? 'unknown',
        time: String(this.opened.get(c) ?? Math.floor(Date.now() / 1000)),
        ua: c.request.headers.get('user-agent')?.[0] ?? '',
        protocol: c.protocol ?? '',
      });
    }
    return { version: this.options.version, wss_over_h2: '0', hostname: this.host, wsi: String(conns.length), conns };
  }

  private sendReport(session: StatusSession): void {
    if (!session.data.dirty || session.state !== 'open') return;
    session.data.dirty = false;
    const r = this.report();
    const head = { version: r.version, wss_over_h2: r.wss_over_h2, hostname: r.hostname, wsi: r.wsi };
    // The whole message is written in this one callback, so nothing can come between its fragments.
    const writer = session.stream({ binary: false });
    writer.write(JSON.stringify(head).slice(0, -1) + ',"conns":[');
    r.conns.forEach((c, i) => writer.write((i > 0 ? ',' : '') + JSON.stringify(c)));
    writer.end(']}');
  }
}
