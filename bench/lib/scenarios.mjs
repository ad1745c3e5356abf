// What the benchmark runs.
//
// kind 'echo': a closed loop; each connection keeps `depth` messages in
// flight and sends the next one when an echo has come back and been verified
// byte for byte. kind 'handshake': `connections` loops of connect, opening
// handshake, one echo, close. kind 'idle': memory of many open, quiet
// connections. kind 'fanout': one client's message is sent by the server to
// every connected client. The last three need the C generator.
//
// `servers` lists the server families a scenario runs against; `base` names
// the rows its ratios are taken to (× ws, × raw); `vsRaw` shows the ratio to
// raw, for scenarios where the sockets' own cost (not per-message work) is
// what is compared.

// sockeye-ws: the ws echo server (servers/ws.mjs) on sockeye/ws, what a ws application gets from its one-line switch.
const ECHO = ['sockeye', 'sockeye-ws', 'ws', 'ws-native', 'raw'];
// Where messages are small, the framing floor runs too (servers/floor.mjs: frames parsed and written back
// with nothing else a server needs), between raw (no framing) and the libraries: what framing alone costs.
const SMALL = [...ECHO, 'floor'];
// Where messages are large, the sockeye server that forwards every echo without a copy (send(..., { transfer:
// true })) runs too, beside the headline row's default copying send() (invariant S2): what the copy costs. So
// does the floor: one pass over each payload byte, the least a server that holds whole messages can do.
const LARGE = ['sockeye', 'sockeye-transfer', 'sockeye-ws', 'ws', 'ws-native', 'raw', 'floor'];

export const SCENARIOS = [
  {
    id: 'bin32-d1',
    kind: 'echo',
    title: '32 B binary, 100 conns × 1 in flight',
    size: 32,
    binary: true,
    connections: 100,
    depth: 1,
    servers: SMALL,
    measures: 'per-message latency and overhead with no pipelining: every echo waits for the previous one (a chat or RPC workload)',
  },
  {
    id: 'bin32-d16',
    kind: 'echo',
    title: '32 B binary, 100 conns × 16 in flight',
    size: 32,
    binary: true,
    connections: 100,
    depth: 16,
    servers: SMALL,
    measures: 'per-message CPU cost of framing, parsing and dispatch when the pipe is full (many small frames per read)',
  },
  {
    id: 'text1k-d16',
    kind: 'echo',
    title: '1 KiB text, 100 conns × 16 in flight',
    size: 1024,
    binary: false,
    connections: 100,
    depth: 16,
    servers: ECHO,
    measures: 'text messages: adds UTF-8 validation of every received byte (RFC 6455 section 8.1) and unmasking of 1 KiB payloads',
  },
  {
    id: 'bin64k-d4',
    kind: 'echo',
    title: '64 KiB binary, 10 conns × 4 in flight',
    size: 64 * 1024,
    binary: true,
    connections: 10,
    depth: 4,
    servers: LARGE,
    vsRaw: true,
    measures: 'medium messages that span several socket reads: reassembly, unmasking and copying throughput',
  },
  {
    id: 'bulk1m-d4',
    kind: 'echo',
    title: '1 MiB binary bulk, 1 conn × 4 in flight',
    size: 1024 * 1024,
    binary: true,
    connections: 1,
    depth: 4,
    servers: LARGE,
    vsRaw: true,
    measures: 'bulk throughput of a single connection: large-frame buffering, unmasking and write-queue behaviour',
  },
  {
    id: 'bulk16m-d2',
    kind: 'echo',
    title: '16 MiB binary bulk, 1 conn × 2 in flight',
    size: 16 * 1024 * 1024,
    binary: true,
    connections: 1,
    depth: 2,
    servers: LARGE,
    vsRaw: true,
    measures: 'very large messages: buffering a 16 MiB frame (the default message limit) before it is delivered, and writing it back',
  },
  {
    id: 'wss-bulk1m-d4',
    kind: 'echo',
    tls: true,
    title: 'wss: 1 MiB binary bulk over TLS, 1 conn × 4 in flight',
    size: 1024 * 1024,
    binary: true,
    connections: 1,
    depth: 4,
    servers: ['sockeye', 'sockeye-transfer', 'sockeye-ws', 'ws', 'raw'],
    vsRaw: true,
    // The C generator (OpenSSL) by default, as every echo scenario; --generator node selects the Node one.
    measures: 'bulk over TLS (node:tls in the servers): the cost of encryption plus the write path of a TLS socket',
  },
  {
    id: 'handshake',
    kind: 'handshake',
    title: 'connection setup: 32 loops of connect, handshake, 32 B echo, close',
    size: 32,
    binary: true,
    connections: 32,
    servers: ['sockeye', 'ws', 'raw', 'floor'],
    measures: 'handshakes per second: accepting, parsing the upgrade request, SHA-1 of the key, session set-up and the closing handshake',
  },
  {
    id: 'idle10k',
    kind: 'idle',
    title: 'memory per idle connection, 10,000 connections',
    size: 32,
    binary: true,
    connections: 10_000,
    // Connections opened before measuring, so pools and code are warm.
    warmConnections: 500,
    servers: ['sockeye', 'ws', 'raw'],
    measures: 'resident memory a server needs per open, quiet connection (after one echo each), after a full GC',
  },
  {
    id: 'fanout10k',
    kind: 'fanout',
    title: 'fan-out: 64 B binary to 10,000 clients, 1 broadcast in flight',
    size: 64,
    binary: true,
    connections: 10_000,
    depth: 1,
    servers: ['sockeye', 'ws', 'floor'],
    measures: 'broadcast: one message sent to every connected client; deliveries per second and the time until the last client has it',
  },
  // WebSockets over HTTP/2 (RFC 8441), against the same servers over HTTP/1.1
  // with TLS. ws has no HTTP/2, and the C generator none either: these run
  // the Node generator (bench/generator.mjs, its h2 option) for every row.
  {
    id: 'h2-text1k-1x16',
    kind: 'echo',
    tls: true,
    generator: 'node',
    title: 'wss: 1 KiB text, 1 WebSocket × 16 in flight (sockeye-h2: one stream of an HTTP/2 connection)',
    size: 1024,
    binary: false,
    connections: 1,
    depth: 16,
    servers: ['sockeye-h2', 'sockeye', 'ws'],
    measures: 'one WebSocket as an HTTP/2 stream (DATA frames, flow-control windows) against the same WebSocket on its own TLS connection',
  },
  {
    id: 'h2-bin32-100x16',
    kind: 'echo',
    tls: true,
    generator: 'node',
    title: 'wss: 32 B binary, 100 WebSockets × 16 in flight (sockeye-h2: 100 streams of one HTTP/2 connection)',
    size: 32,
    binary: true,
    connections: 100,
    depth: 16,
    servers: ['sockeye-h2', 'sockeye', 'ws'],
    measures: 'many WebSockets multiplexed on one connection against one TLS connection each',
  },
  {
    id: 'h2-open',
    kind: 'open',
    tls: true,
    generator: 'node',
    title: 'wss: 32 loops of open a WebSocket, 32 B echo, close (sockeye-h2: a new stream of an open HTTP/2 connection; the others: a new TLS connection each)',
    size: 32,
    binary: true,
    connections: 32,
    depth: 1,
    servers: ['sockeye-h2', 'sockeye', 'ws'],
    measures: 'what opening a WebSocket costs on an HTTP/2 connection that is already open, against a new TCP and TLS connection and an HTTP/1.1 upgrade',
  },
];

/**
 * family: what --servers selects and what the ratios compare; the TLS
 * variants stand in for their family in TLS scenarios.
 */
/**
 * Node flags for servers whose memory per connection is measured (the idle
 * scenario here, the memory table of bench/deflate.mjs): V8's young generation
 * fixed at the maximum it grows to anyway while thousands of connections are
 * opened (two 16 MiB semi-spaces on 64-bit), so that its growth, the same for
 * any number of connections, does not land between the two readings.
 */
export const IDLE_NODE_FLAGS = ['--min-semi-space-size=16', '--max-semi-space-size=16'];

export const SERVERS = [
  { name: 'sockeye', family: 'sockeye', file: 'servers/sockeye.mjs', mode: 'ws', args: [] },
  { name: 'sockeye-transfer', family: 'sockeye-transfer', file: 'servers/sockeye.mjs', mode: 'ws', args: ['--transfer'] },
  { name: 'ws', family: 'ws', file: 'servers/ws.mjs', mode: 'ws', args: [] },
  { name: 'ws-native', family: 'ws-native', file: 'servers/ws.mjs', mode: 'ws', args: ['--native'] },
  { name: 'sockeye-ws', family: 'sockeye-ws', file: 'servers/ws.mjs', mode: 'ws', args: ['--sockeye'] },
  { name: 'raw', family: 'raw', file: 'servers/raw.mjs', mode: 'raw', args: [] },
  { name: 'floor', family: 'floor', file: 'servers/floor.mjs', mode: 'ws', args: [] },
  { name: 'sockeye-tls', family: 'sockeye', file: 'servers/sockeye.mjs', mode: 'ws', args: [], tls: true },
  { name: 'sockeye-transfer-tls', family: 'sockeye-transfer', file: 'servers/sockeye.mjs', mode: 'ws', args: ['--transfer'], tls: true },
  { name: 'ws-tls', family: 'ws', file: 'servers/ws.mjs', mode: 'ws', args: [], tls: true },
  { name: 'sockeye-ws-tls', family: 'sockeye-ws', file: 'servers/ws.mjs', mode: 'ws', args: ['--sockeye'], tls: true },
  { name: 'raw-tls', family: 'raw', file: 'servers/raw.mjs', mode: 'raw', args: [], tls: true },
  // The sockeye TLS server as it is (HTTP/2 is on by default with TLS), reached over HTTP/2.
  { name: 'sockeye-h2', family: 'sockeye-h2', file: 'servers/sockeye.mjs', mode: 'ws', args: [], tls: true, transport: 'h2' },
];

export const FAMILIES = ['sockeye', 'sockeye-transfer', 'sockeye-ws', 'ws', 'ws-native', 'raw', 'floor', 'sockeye-h2'];

/** The server that plays `family` in `scenario` (its TLS variant in a TLS scenario). */
export function serverFor(scenario, family) {
  return SERVERS.find((s) => s.family === family && !!s.tls === !!scenario.tls) ?? null;
}
