// What the benchmark runs. Every scenario is a closed loop: each connection
// keeps `depth` messages in flight and sends the next one when an echo has
// come back and been verified byte for byte.

export const SCENARIOS = [
  {
    id: 'bin32-d1',
    title: '32 B binary, 100 conns × 1 in flight',
    size: 32,
    binary: true,
    connections: 100,
    depth: 1,
    measures: 'per-message latency and overhead with no pipelining: every echo waits for the previous one (a chat or RPC workload)',
  },
  {
    id: 'bin32-d16',
    title: '32 B binary, 100 conns × 16 in flight',
    size: 32,
    binary: true,
    connections: 100,
    depth: 16,
    measures: 'per-message CPU cost of framing, parsing and dispatch when the pipe is full (many small frames per read)',
  },
  {
    id: 'text1k-d16',
    title: '1 KiB text, 100 conns × 16 in flight',
    size: 1024,
    binary: false,
    connections: 100,
    depth: 16,
    measures: 'text messages: adds UTF-8 validation of every received byte (RFC 6455 section 8.1) and unmasking of 1 KiB payloads',
  },
  {
    id: 'bin64k-d4',
    title: '64 KiB binary, 10 conns × 4 in flight',
    size: 64 * 1024,
    binary: true,
    connections: 10,
    depth: 4,
    measures: 'medium messages that span several socket reads: reassembly, unmasking and copying throughput',
  },
  {
    id: 'bulk1m-d4',
    title: '1 MiB binary bulk, 1 conn × 4 in flight',
    size: 1024 * 1024,
    binary: true,
    connections: 1,
    depth: 4,
    measures: 'bulk throughput of a single connection: large-frame buffering, unmasking and write-queue behaviour',
  },
];

export const SERVERS = [
  { name: 'sockeye', file: 'servers/sockeye.mjs', mode: 'ws' },
  { name: 'ws', file: 'servers/ws.mjs', mode: 'ws' },
  { name: 'raw', file: 'servers/raw.mjs', mode: 'raw' },
];
