import { InvalidArgumentError } from '../core/errors.js';
import { Histogram, type HistogramSnapshot } from '../transport/histogram.js';
import { SessionCounters } from '../transport/session-counters.js';
import { BrokerCounters } from '../pubsub/broker-counters.js';
import { FAN_OUT_BUCKETS } from '../pubsub/fan-out.js';

export type { HistogramSnapshot };

/** createServer({ metrics }): the Prometheus endpoint on the server's own port. */
export interface MetricsOptions {
  /**
   * Answer GET (and HEAD) requests for this path, on the port the server
   * listens on, with server.metrics() in the Prometheus text format
   * (version 0.0.4). It starts with '/'; the query is ignored.
   */
  path: string;
}

/** A count per kind of message. */
export interface MessageCounts {
  readonly text: number;
  readonly binary: number;
}

/** What server.metrics() says of the broker (all 0 for a server without one). */
export interface BrokerMetrics {
  /** This node's publications handed to the broker. */
  readonly publicationsSent: number;
  /** Publications of other nodes received from the broker. */
  readonly publicationsReceived: number;
  /** Local sessions that accepted a publication of another node. */
  readonly deliveries: number;
  /** Gaps found in other nodes' publications (ERR_BROKER_GAP). */
  readonly gaps: number;
  /** Broker failures reported to onError, by BrokerError code (gaps included). */
  readonly errors: Readonly<Record<string, number>>;
}

/**
 * server.metrics(): the server's counters at one moment. Counters count from
 * the server's creation; `connectionsOpen` and `queuedBytes` are the values
 * now. Keys of the by-code records are decimal strings ('1000', '403'), so a
 * snapshot survives JSON.stringify().
 */
export interface MetricsSnapshot {
  /** Sessions open or closing now (server.clients.size). */
  readonly connectionsOpen: number;
  /** Sessions opened (opening handshakes that succeeded). */
  readonly connectionsOpened: number;
  /** Sessions that ended, by CloseInfo.code (1000, 1001, 1006, ...). */
  readonly connectionsClosed: Readonly<Record<string, number>>;
  /** Opening handshakes refused, by the HTTP status answered (400, 403, 404, 408, 426, 431, ...). */
  readonly handshakeFailures: Readonly<Record<string, number>>;
  /** TLS handshakes that failed before any HTTP (wss only). */
  readonly tlsHandshakeFailures: number;
  /** Whole messages received. */
  readonly messagesReceived: MessageCounts;
  /** Payload bytes received (after permessage-deflate). */
  readonly bytesReceived: MessageCounts;
  /** Messages accepted for sending (a fan-out counts one per session). */
  readonly messagesSent: MessageCounts;
  /** Payload bytes accepted for sending (before permessage-deflate). */
  readonly bytesSent: MessageCounts;
  /** Sends answered 'dropped': the session was closing or closed, or the send would have passed maxQueuedBytes. */
  readonly droppedSends: { readonly closed: number; readonly limit: number };
  /** Sends answered 'backpressure'. */
  readonly backpressure: number;
  /** Bytes accepted and not yet taken by the kernel, summed over the sessions now (their bufferedAmount). */
  readonly queuedBytes: number;
  /** Round-trip times of keepalive pings answered by a pong, in seconds. */
  readonly pingRtt: HistogramSnapshot;
  /** Durations of broadcast(), publish() and the local fan-out of other nodes' publications ('remote'), in seconds. */
  readonly fanOutDuration: { readonly broadcast: HistogramSnapshot; readonly publish: HistogramSnapshot; readonly remote: HistogramSnapshot };
  readonly broker: BrokerMetrics;
}

/** Validates ServerOptions.metrics at createServer(): a bad path fails there, not at the first scrape. */
export function validateMetricsOptions(options: MetricsOptions | undefined, attached: boolean): string | null {
  if (options === undefined) return null;
  const path: unknown = (options as { path?: unknown } | null)?.path;
  if (typeof path !== 'string' || !path.startsWith('/') || /[?#\s]/.test(path)) {
    throw new InvalidArgumentError('ERR_BAD_METRICS_PATH', `metrics.path is a request path starting with '/', without query or spaces (got ${JSON.stringify(path)})`);
  }
  if (attached) {
    // The attached HTTP server answers its own requests: a second answer from sockeye would corrupt them.
    throw new InvalidArgumentError('ERR_BAD_METRICS_PATH', 'metrics.path is served on the port sockeye listens on; with `server`, answer renderPrometheus(wsServer.metrics()) from your own request handler');
  }
  return path;
}

/**
 * What a server counts, owned by the server: the counters its sessions share,
 * its broker binding's, and its own (connections, handshakes, fan-outs). No
 * module-level state: two servers count apart (test/server/metrics.test.ts).
 */
export class ServerMetrics {
  readonly sessions = new SessionCounters();
  readonly broker = new BrokerCounters();
  readonly broadcast = new Histogram(FAN_OUT_BUCKETS);
  readonly publish = new Histogram(FAN_OUT_BUCKETS);
  opened = 0;
  tlsFailures = 0;
  /** By close code and by HTTP status: touched once per close or refusal, never per message. */
  private readonly closedByCode = new Map<number, number>();
  private readonly failedByStatus = new Map<number, number>();

  closed(code: number): void {
    this.closedByCode.set(code, (this.closedByCode.get(code) ?? 0) + 1);
  }

  handshakeFailed(status: number): void {
    this.failedByStatus.set(status, (this.failedByStatus.get(status) ?? 0) + 1);
  }

  /** The snapshot, given the server's sessions now (for the gauges). */
  snapshot(sessions: ReadonlySet<{ readonly bufferedAmount: number }>): MetricsSnapshot {
    const s = this.sessions;
    const b = this.broker;
    let queued = 0;
    for (const session of sessions) queued += session.bufferedAmount;
    return {
      connectionsOpen: sessions.size,
      connectionsOpened: this.opened,
      connectionsClosed: record(this.closedByCode),
      handshakeFailures: record(this.failedByStatus),
      tlsHandshakeFailures: this.tlsFailures,
      messagesReceived: { text: s.textMessagesIn, binary: s.binaryMessagesIn },
      bytesReceived: { text: s.textBytesIn, binary: s.binaryBytesIn },
      messagesSent: { text: s.textMessagesOut, binary: s.binaryMessagesOut },
      bytesSent: { text: s.textBytesOut, binary: s.binaryBytesOut },
      droppedSends: { closed: s.droppedClosed, limit: s.droppedLimit },
      backpressure: s.backpressure,
      queuedBytes: queued,
      pingRtt: s.pingRtt.snapshot(),
      fanOutDuration: { broadcast: this.broadcast.snapshot(), publish: this.publish.snapshot(), remote: b.fanOut.snapshot() },
      broker: {
        publicationsSent: b.publicationsSent,
        publicationsReceived: b.publicationsReceived,
        deliveries: b.deliveries,
        gaps: b.gaps,
        errors: record(b.errors),
      },
    };
  }
}

/** A Map as a plain object with its keys in order (numbers ascending, strings sorted). */
function record<K extends number | string>(map: ReadonlyMap<K, number>): Record<string, number> {
  const keys = [...map.keys()].sort((x, y) => (typeof x === 'number' && typeof y === 'number' ? x - y : String(x) < String(y) ? -1 : String(x) > String(y) ? 1 : 0));
  const out: Record<string, number> = {};
  for (const k of keys) out[String(k)] = map.get(k)!;
  return out;
}
