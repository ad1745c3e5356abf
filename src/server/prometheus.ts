import type { HistogramSnapshot, MessageCounts, MetricsSnapshot } from './metrics.js';

/** The Content-Type of the Prometheus text exposition format, version 0.0.4. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels = readonly (readonly [string, string])[];

/**
 * Renders a snapshot of server.metrics() in the Prometheus text exposition
 * format 0.0.4: one family per metric, each with `# HELP` and `# TYPE`,
 * names prefixed `sockeye_`, counters ending in `_total`, histograms as
 * `_bucket{le}` (cumulative, `+Inf` last), `_sum` and `_count`. Label values
 * and help text are escaped as the format says. The output passes
 * `promtool check metrics` (test/server/metrics-endpoint.test.ts); the
 * escaping and the families are pinned by test/server/prometheus.test.ts.
 */
export function renderPrometheus(snapshot: MetricsSnapshot): string {
  const out: string[] = [];
  const family = (name: string, type: 'counter' | 'gauge' | 'histogram', help: string): void => {
    out.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
  };
  const sample = (name: string, labels: Labels, value: number): void => {
    out.push(`${name}${formatLabels(labels)} ${formatValue(value)}`);
  };
  const counter = (name: string, help: string, value: number): void => {
    family(name, 'counter', help);
    sample(name, [], value);
  };
  const byType = (name: string, help: string, counts: MessageCounts): void => {
    family(name, 'counter', help);
    sample(name, [['type', 'text']], counts.text);
    sample(name, [['type', 'binary']], counts.binary);
  };
  const byKey = (name: string, label: string, help: string, counts: Readonly<Record<string, number>>): void => {
    family(name, 'counter', help);
    for (const key of Object.keys(counts)) sample(name, [[label, key]], counts[key]);
  };
  const histogram = (name: string, labels: Labels, h: HistogramSnapshot): void => {
    for (const b of h.buckets) sample(`${name}_bucket`, [...labels, ['le', formatValue(b.le)]], b.count);
    sample(`${name}_bucket`, [...labels, ['le', '+Inf']], h.count);
    sample(`${name}_sum`, labels, h.sum);
    sample(`${name}_count`, labels, h.count);
  };

  const s = snapshot;
  family('sockeye_connections_open', 'gauge', 'WebSocket sessions open or closing now.');
  sample('sockeye_connections_open', [], s.connectionsOpen);
  counter('sockeye_connections_opened_total', 'WebSocket sessions opened (successful opening handshakes).', s.connectionsOpened);
  byKey('sockeye_connections_closed_total', 'code', 'WebSocket sessions ended, by close code.', s.connectionsClosed);
  byKey('sockeye_handshake_failures_total', 'status', 'Opening handshakes refused, by HTTP status.', s.handshakeFailures);
  counter('sockeye_tls_handshake_failures_total', 'TLS handshakes that failed before any HTTP.', s.tlsHandshakeFailures);
  byType('sockeye_messages_received_total', 'Whole messages received, by type.', s.messagesReceived);
  byType('sockeye_received_bytes_total', 'Payload bytes received (after permessage-deflate), by message type.', s.bytesReceived);
  byType('sockeye_messages_sent_total', 'Messages accepted for sending (one per session of a fan-out), by type.', s.messagesSent);
  byType('sockeye_sent_bytes_total', 'Payload bytes accepted for sending (before permessage-deflate), by message type.', s.bytesSent);
  family('sockeye_dropped_sends_total', 'counter', "Sends answered 'dropped', by reason: closed (session closing or closed) or limit (maxQueuedBytes).");
  sample('sockeye_dropped_sends_total', [['reason', 'closed']], s.droppedSends.closed);
  sample('sockeye_dropped_sends_total', [['reason', 'limit']], s.droppedSends.limit);
  counter('sockeye_backpressure_total', "Sends answered 'backpressure' (bufferedAmount above highWaterMark).", s.backpressure);
  family('sockeye_queued_bytes', 'gauge', 'Bytes accepted for sending and not yet taken by the kernel, over all sessions now.');
  sample('sockeye_queued_bytes', [], s.queuedBytes);
  family('sockeye_ping_rtt_seconds', 'histogram', 'Round-trip time of keepalive pings answered by a pong.');
  histogram('sockeye_ping_rtt_seconds', [], s.pingRtt);
  family('sockeye_fanout_duration_seconds', 'histogram', "Duration of a fan-out, by operation: broadcast, publish, or remote (another node's publication).");
  histogram('sockeye_fanout_duration_seconds', [['op', 'broadcast']], s.fanOutDuration.broadcast);
  histogram('sockeye_fanout_duration_seconds', [['op', 'publish']], s.fanOutDuration.publish);
  histogram('sockeye_fanout_duration_seconds', [['op', 'remote']], s.fanOutDuration.remote);
  counter('sockeye_broker_publications_sent_total', "This node's publications handed to the broker.", s.broker.publicationsSent);
  counter('sockeye_broker_publications_received_total', 'Publications of other nodes received from the broker.', s.broker.publicationsReceived);
  counter('sockeye_broker_deliveries_total', 'Local sessions that accepted a publication of another node.', s.broker.deliveries);
  counter('sockeye_broker_gaps_total', "Gaps found in other nodes' publications.", s.broker.gaps);
  byKey('sockeye_broker_errors_total', 'code', 'Broker failures reported, by error code (gaps included).', s.broker.errors);
  out.push('');
  return out.join('\n');
}

/** `# HELP` text: a backslash and a line feed are escaped (format 0.0.4). */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** A label value: backslash, double quote and line feed are escaped (format 0.0.4). */
function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatLabels(labels: Labels): string {
  if (labels.length === 0) return '';
  let s = '{';
  for (let i = 0; i < labels.length; i++) s += `${i > 0 ? ',' : ''}${labels[i][0]}="${escapeLabelValue(labels[i][1])}"`;
  return s + '}';
}

/** A sample value as Go's ParseFloat reads it: +Inf, -Inf and NaN spelled the format's way. */
function formatValue(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Number.isNaN(v)) return 'NaN';
  return String(v);
}
