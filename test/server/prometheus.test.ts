/**
 * renderPrometheus() (src/server/prometheus.ts): the text exposition format
 * 0.0.4, read back by a small parser written here from the format's
 * description (not from the renderer): every metric present once, with
 * `# HELP` then `# TYPE` then its samples; names prefixed `sockeye_`,
 * counters ending in `_total`; label values escaped (backslash, double
 * quote, line feed); histograms as cumulative `_bucket{le}` ending in
 * `+Inf`, `_sum` and `_count`. With promtool installed, its parser and
 * linter agree (`promtool check metrics`).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus, type HistogramSnapshot, type MetricsSnapshot } from '../../src/index.js';
import { ServerMetrics } from '../../src/server/metrics.js';
import { promtoolAvailable, promtoolCheckMetrics, requirePeer } from '../helpers/peers.js';

/** Every family the renderer writes, with its type: the exact list. */
const FAMILIES: Record<string, string> = {
  sockeye_connections_open: 'gauge',
  sockeye_connections_opened_total: 'counter',
  sockeye_connections_closed_total: 'counter',
  sockeye_handshake_failures_total: 'counter',
  sockeye_tls_handshake_failures_total: 'counter',
  sockeye_messages_received_total: 'counter',
  sockeye_received_bytes_total: 'counter',
  sockeye_messages_sent_total: 'counter',
  sockeye_sent_bytes_total: 'counter',
  sockeye_dropped_sends_total: 'counter',
  sockeye_backpressure_total: 'counter',
  sockeye_queued_bytes: 'gauge',
  sockeye_ping_rtt_seconds: 'histogram',
  sockeye_fanout_duration_seconds: 'histogram',
  sockeye_broker_publications_sent_total: 'counter',
  sockeye_broker_publications_received_total: 'counter',
  sockeye_broker_deliveries_total: 'counter',
  sockeye_broker_gaps_total: 'counter',
  sockeye_broker_errors_total: 'counter',
};

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: string;
}
interface Family {
  help: string;
  type: string;
  samples: Sample[];
}

/** Reads a label set `{a="x",b="y"}` at `text[i]`, unescaping values; returns the labels and the index after '}'. */
function readLabels(text: string, i: number): [Record<string, string>, number] {
  const labels: Record<string, string> = {};
  assert.equal(text[i], '{');
  i++;
  while (text[i] !== '}') {
    const eq = text.indexOf('=', i);
    const name = text.slice(i, eq);
    assert.match(name, /^[a-zA-Z_][a-zA-Z0-9_]*$/, `label name ${name}`);
    assert.equal(text[eq + 1], '"');
    let value = '';
    let j = eq + 2;
    for (;;) {
      const c = text[j];
      assert.ok(c !== undefined && c !== '\n', 'unterminated label value');
      if (c === '"') break;
      if (c === '\\') {
        const e = text[j + 1];
        assert.ok(e === '\\' || e === '"' || e === 'n', `bad escape \\${e}`);
        value += e === 'n' ? '\n' : e;
        j += 2;
      } else {
        value += c;
        j++;
      }
    }
    labels[name] = value;
    i = j + 1;
    if (text[i] === ',') i++;
  }
  return [labels, i + 1];
}

/** Parses the exposition text into families, checking its grammar line by line. */
function parse(text: string): Map<string, Family> {
  assert.ok(text.endsWith('\n'), 'the text ends with a line feed');
  const families = new Map<string, Family>();
  let current: string | null = null;
  for (const line of text.slice(0, -1).split('\n')) {
    const help = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (help) {
      assert.ok(!families.has(help[1]), `${help[1]} appears twice`);
      assert.ok(!/\\[^\\n]/.test(help[2].replace(/\\\\/g, '')), `bad escape in help of ${help[1]}`);
      families.set(help[1], { help: help[2], type: '', samples: [] });
      current = help[1];
      continue;
    }
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      assert.equal(type[1], current, `# TYPE ${type[1]} right after its # HELP`);
      const f = families.get(type[1])!;
      assert.equal(f.type, '');
      assert.equal(f.samples.length, 0);
      f.type = type[2];
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
    assert.ok(m, `not a sample: ${JSON.stringify(line)}`);
    const name = m[1];
    let labels: Record<string, string> = {};
    let i = name.length;
    if (line[i] === '{') [labels, i] = readLabels(line, i);
    assert.equal(line[i], ' ', `a space before the value: ${line}`);
    const value = line.slice(i + 1);
    assert.match(value, /^(?:[+-]Inf|NaN|-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)$/, `value of ${line}`);
    assert.ok(current !== null, `${name} before any # HELP`);
    const f = families.get(current)!;
    const allowed = f.type === 'histogram' ? [`${current}_bucket`, `${current}_sum`, `${current}_count`] : [current];
    assert.ok(allowed.includes(name), `${name} under the family ${current}`);
    f.samples.push({ name, labels, value });
  }
  return families;
}

function histogram(buckets: [number, number][], sum: number, count: number): HistogramSnapshot {
  return { buckets: buckets.map(([le, c]) => ({ le, count: c })), sum, count };
}

/** A snapshot with a value in every field, and label values that need escaping. */
function busySnapshot(): MetricsSnapshot {
  const zero = new ServerMetrics().snapshot(new Set());
  return {
    ...zero,
    connectionsOpen: 3,
    connectionsOpened: 10,
    connectionsClosed: { '1000': 4, '1006': 2, '4000': 1 },
    handshakeFailures: { '403': 1, '426': 2 },
    tlsHandshakeFailures: 1,
    messagesReceived: { text: 5, binary: 6 },
    bytesReceived: { text: 50, binary: 600 },
    messagesSent: { text: 7, binary: 8 },
    bytesSent: { text: 70, binary: 8_000_000_000_000 },
    droppedSends: { closed: 1, limit: 2 },
    backpressure: 9,
    queuedBytes: 12345,
    pingRtt: histogram([[0.001, 1], [0.01, 3], [0.1, 3]], 0.0175, 4),
    fanOutDuration: { broadcast: histogram([[0.0001, 2]], 0.00013, 2), publish: histogram([[0.0001, 0]], 0, 0), remote: histogram([[1e-7, 1]], 5e-8, 1) },
    broker: { publicationsSent: 1, publicationsReceived: 2, deliveries: 3, gaps: 1, errors: { ERR_BROKER_GAP: 1, 'quote"back\\slash\nnewline': 2 } },
  };
}

const SKIP_PROMTOOL = requirePeer('promtool', promtoolAvailable(), 'apt-get install prometheus');

describe('renderPrometheus', () => {
  it('writes every metric once, HELP then TYPE, sockeye_ names, counters ending in _total', () => {
    const families = parse(renderPrometheus(new ServerMetrics().snapshot(new Set())));
    assert.deepEqual(Object.fromEntries([...families].map(([n, f]) => [n, f.type])), FAMILIES);
    for (const [name, f] of families) {
      assert.match(name, /^sockeye_[a-z_]+$/);
      assert.ok(f.help.length > 10, `${name} has a help text`);
      if (f.type === 'counter') assert.match(name, /_total$/);
      else assert.doesNotMatch(name, /_total$/);
    }
  });

  it('an empty snapshot: fixed label sets at 0, by-code families with no sample yet, histograms all 0', () => {
    const families = parse(renderPrometheus(new ServerMetrics().snapshot(new Set())));
    assert.deepEqual(families.get('sockeye_messages_sent_total')!.samples, [
      { name: 'sockeye_messages_sent_total', labels: { type: 'text' }, value: '0' },
      { name: 'sockeye_messages_sent_total', labels: { type: 'binary' }, value: '0' },
    ]);
    assert.deepEqual(families.get('sockeye_dropped_sends_total')!.samples.map((s) => `${s.labels.reason} ${s.value}`), ['closed 0', 'limit 0']);
    assert.deepEqual(families.get('sockeye_connections_closed_total')!.samples, []);
    assert.deepEqual(families.get('sockeye_broker_errors_total')!.samples, []);
    const rtt = families.get('sockeye_ping_rtt_seconds')!.samples;
    assert.ok(rtt.every((s) => s.value === '0'));
    assert.deepEqual(rtt.slice(-3).map((s) => s.name), ['sockeye_ping_rtt_seconds_bucket', 'sockeye_ping_rtt_seconds_sum', 'sockeye_ping_rtt_seconds_count']);
    assert.equal(rtt[rtt.length - 3].labels.le, '+Inf');
    assert.equal(families.get('sockeye_fanout_duration_seconds')!.samples.filter((s) => s.name.endsWith('_count')).length, 3);
  });

  it('every field of the snapshot reaches its sample', () => {
    const families = parse(renderPrometheus(busySnapshot()));
    const values = (name: string) => families.get(name)!.samples.map((s) => `${Object.values(s.labels).join(',')}=${s.value}`);
    assert.deepEqual(values('sockeye_connections_open'), ['=3']);
    assert.deepEqual(values('sockeye_connections_opened_total'), ['=10']);
    assert.deepEqual(values('sockeye_connections_closed_total'), ['1000=4', '1006=2', '4000=1']);
    assert.deepEqual(families.get('sockeye_connections_closed_total')!.samples.map((s) => Object.keys(s.labels)), [['code'], ['code'], ['code']]);
    assert.deepEqual(values('sockeye_handshake_failures_total'), ['403=1', '426=2']);
    assert.equal(families.get('sockeye_handshake_failures_total')!.samples[0].labels.status, '403');
    assert.deepEqual(values('sockeye_tls_handshake_failures_total'), ['=1']);
    assert.deepEqual(values('sockeye_messages_received_total'), ['text=5', 'binary=6']);
    assert.deepEqual(values('sockeye_received_bytes_total'), ['text=50', 'binary=600']);
    assert.deepEqual(values('sockeye_messages_sent_total'), ['text=7', 'binary=8']);
    assert.deepEqual(values('sockeye_sent_bytes_total'), ['text=70', 'binary=8000000000000']);
    assert.deepEqual(values('sockeye_dropped_sends_total'), ['closed=1', 'limit=2']);
    assert.deepEqual(values('sockeye_backpressure_total'), ['=9']);
    assert.deepEqual(values('sockeye_queued_bytes'), ['=12345']);
    assert.deepEqual(values('sockeye_broker_publications_sent_total'), ['=1']);
    assert.deepEqual(values('sockeye_broker_publications_received_total'), ['=2']);
    assert.deepEqual(values('sockeye_broker_deliveries_total'), ['=3']);
    assert.deepEqual(values('sockeye_broker_gaps_total'), ['=1']);
  });

  it('histograms: cumulative buckets by le, +Inf equal to _count, then _sum and _count, other labels first', () => {
    const families = parse(renderPrometheus(busySnapshot()));
    assert.deepEqual(
      families.get('sockeye_ping_rtt_seconds')!.samples.map((s) => `${s.name}${s.labels.le === undefined ? '' : `{le=${s.labels.le}}`} ${s.value}`),
      [
        'sockeye_ping_rtt_seconds_bucket{le=0.001} 1',
        'sockeye_ping_rtt_seconds_bucket{le=0.01} 3',
        'sockeye_ping_rtt_seconds_bucket{le=0.1} 3',
        'sockeye_ping_rtt_seconds_bucket{le=+Inf} 4',
        'sockeye_ping_rtt_seconds_sum 0.0175',
        'sockeye_ping_rtt_seconds_count 4',
      ],
    );
    const text = renderPrometheus(busySnapshot());
    assert.ok(text.includes('sockeye_fanout_duration_seconds_bucket{op="broadcast",le="0.0001"} 2\n'));
    assert.ok(text.includes('sockeye_fanout_duration_seconds_bucket{op="remote",le="1e-7"} 1\n'));
    assert.ok(text.includes('sockeye_fanout_duration_seconds_sum{op="remote"} 5e-8\n'));
    assert.ok(text.includes('sockeye_fanout_duration_seconds_count{op="publish"} 0\n'));
  });

  it('label values are escaped: backslash, double quote and line feed', () => {
    const text = renderPrometheus(busySnapshot());
    assert.ok(text.includes('sockeye_broker_errors_total{code="quote\\"back\\\\slash\\nnewline"} 2\n'), text);
    const errors = parse(text).get('sockeye_broker_errors_total')!.samples;
    assert.deepEqual(
      errors.map((s) => s.labels.code),
      ['ERR_BROKER_GAP', 'quote"back\\slash\nnewline'],
    );
  });

  it('non-finite values are spelled +Inf, -Inf and NaN', () => {
    const text = renderPrometheus({ ...busySnapshot(), queuedBytes: NaN, backpressure: Infinity, connectionsOpen: -Infinity });
    assert.ok(text.includes('\nsockeye_queued_bytes NaN\n'));
    assert.ok(text.includes('\nsockeye_backpressure_total +Inf\n'));
    assert.ok(text.includes('\nsockeye_connections_open -Inf\n'));
  });

  it('the content type names version 0.0.4', () => {
    assert.equal(PROMETHEUS_CONTENT_TYPE, 'text/plain; version=0.0.4; charset=utf-8');
  });

  it('promtool check metrics accepts the output, escapes included', { skip: SKIP_PROMTOOL }, () => {
    // The check is not vacuous: promtool refuses a counter without _total and a bad escape.
    assert.notEqual(promtoolCheckMetrics('# HELP x a\n# TYPE x counter\nx 1\n').status, 0);
    assert.notEqual(promtoolCheckMetrics('# HELP x_total a\n# TYPE x_total counter\nx_total{a="\\q"} 1\n').status, 0);
    for (const snapshot of [new ServerMetrics().snapshot(new Set()), busySnapshot()]) {
      const r = promtoolCheckMetrics(renderPrometheus(snapshot));
      assert.equal(r.output, '');
      assert.equal(r.status, 0);
    }
  });
});
