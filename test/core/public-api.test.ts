/**
 * The package's two entry points (docs/api.md#entry-points), checked name by
 * name, so that nothing is added to or dropped from the public API unseen:
 *
 * - 'sockeye' (src/index.ts) exports what applications use: createServer,
 *   connect, the sessions, the handler, session and option types, the
 *   errors and CloseCode;
 * - 'sockeye/core' (src/core/index.ts) exports the sans-I/O core;
 * - neither exports the demo server, which is an application of the library.
 *
 * The runtime names are read from the built package through its own name (so
 * package.json's "exports" map is used as an application would use it); the
 * type names from the sources, with the TypeScript compiler.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join, relative, resolve } from 'node:path';
import { declaredExports } from '../helpers/exports.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Runtime exports of 'sockeye'. */
const ROOT_VALUES = [
  'BrokerError',
  'ClientSession',
  'CloseCode',
  'CloseEvent',
  'Context',
  'DEFAULT_KEEPALIVE',
  'DEFAULT_SESSION_LIMITS',
  'HandshakeError',
  'InvalidArgumentError',
  'InvalidStateError',
  'InvalidUtf8Error',
  'LimitExceededError',
  'LocalBrokerHub',
  'MAX_TOPIC_LENGTH',
  'MessageWriter',
  'PROMETHEUS_CONTENT_TYPE',
  'ProtocolError',
  'ResumeError',
  'ServerSession',
  'Session',
  'TimeoutError',
  'TransportError',
  'WebSocket',
  'WebSocketError',
  'WebSocketServer',
  'clusterBrokerPrimary',
  'compareOffsets',
  'connect',
  'createClusterBroker',
  'createMountHandler',
  'createServer',
  'reconnect',
  'renderPrometheus',
  'retryable',
];

/** Type-only exports of 'sockeye'. */
const ROOT_TYPES = [
  'Broker',
  'BrokerErrorCode',
  'BrokerHost',
  'BrokerMetrics',
  'BrokerNodeInfo',
  'ClientHandler',
  'ClientHttp2Options',
  'CloseEventInit',
  'CloseInfo',
  'ClusterBroker',
  'ClusterBrokerOptions',
  'ClusterBrokerState',
  'ClusterRelay',
  'ClusterRelayOptions',
  'ClusterRelayStats',
  'ConnectOptions',
  'ConnectionLimits',
  'ContextOptions',
  'DurableDelivery',
  'DurableEnvelope',
  'FanOutOptions',
  'FanOutResult',
  'Fragment',
  'Handler',
  'HistogramSnapshot',
  'HistoryRange',
  'Http2Options',
  'HttpRequestHandler',
  'KeepaliveOptions',
  'LocalBroker',
  'Message',
  'MessageCounts',
  'MetricsOptions',
  'MetricsSnapshot',
  'Mount',
  'MountHandlerOptions',
  'PerMessageDeflateOptions',
  'Publication',
  'ReconnectAttempt',
  'ReconnectOptions',
  'Reconnector',
  'RetryPolicy',
  'ResumeErrorCode',
  'ResumeResult',
  'RetryReason',
  'SendStatus',
  'ServerHandler',
  'ServerOptions',
  'SessionLimits',
  'SessionState',
  'ShutdownOptions',
  'ShutdownResult',
  'UpgradeRequest',
  'VerifyResult',
  'WebSocketOptions',
  'WritableInfo',
];

/** Runtime exports of 'sockeye/core'. */
const CORE_VALUES = [
  'CloseCode',
  'Connection',
  'DEFAULT_CLOSE_TIMEOUT_MS',
  'DEFAULT_LIMITS',
  'FrameParser',
  'HandshakeError',
  'HttpHeadParser',
  'InvalidArgumentError',
  'InvalidStateError',
  'InvalidUtf8Error',
  'LimitExceededError',
  'MAX_CLOSE_REASON_BYTES',
  'MAX_CONTROL_PAYLOAD',
  'MIN_FRAME_CHARGE',
  'MessageEvent',
  'Opcode',
  'PERMESSAGE_DEFLATE',
  'ProtocolError',
  'TimeoutError',
  'TransportError',
  'Utf8Validator',
  'WEBSOCKET_GUID',
  'WebSocketError',
  'acceptDeflateResponse',
  'acceptKey',
  'applyMask',
  'buildDeflateOffer',
  'buildExtendedConnectRequest',
  'buildRejectResponse',
  'buildUpgradeRequest',
  'buildUpgradeResponse',
  'decodeClosePayload',
  'encodeClosePayload',
  'encodeFrame',
  'encodeOwnedFrame',
  'formatExtension',
  'formatExtensions',
  'headerSize',
  'isControlOpcode',
  'isKnownOpcode',
  'isValidKey',
  'isValidUtf8',
  'isValidWireCloseCode',
  'negotiateDeflate',
  'parseExtensionHeader',
  'parseTokenList',
  'validateDeflateConfig',
  'validateExtendedConnect',
  'validateExtendedConnectResponse',
  'validateUpgradeRequest',
  'validateUpgradeResponse',
];

/** Type-only exports of 'sockeye/core'. */
const CORE_TYPES = [
  'ConnectionEvent',
  'ConnectionHost',
  'ConnectionLimits',
  'ConnectionOptions',
  'ConnectionState',
  'DeflateConfig',
  'DeflateParams',
  'EncodeOptions',
  'ExtendedConnectInfo',
  'ExtendedConnectRequestOptions',
  'ExtensionOffer',
  'FrameParserOptions',
  'FrameSink',
  'Hangup',
  'HttpHead',
  'HttpHeadLimits',
  'KeepaliveOptions',
  'MessageCodec',
  'OpcodeValue',
  'Role',
  'UpgradeRequestInfo',
  'UpgradeRequestOptions',
];

/** Runtime exports of 'sockeye/ws': ws's, plus its event classes. */
/** Runtime and type-only exports of 'sockeye/redis'. */
const REDIS_VALUES = ['RedisBroker', 'createRedisBroker'];
const REDIS_TYPES = ['RedisBrokerOptions', 'RedisBrokerState', 'RedisClientSettings'];

const WS_VALUES = ['CloseEvent', 'ErrorEvent', 'Event', 'MessageEvent', 'Server', 'WebSocket', 'WebSocketServer', 'createWebSocketStream', 'default'];

/** Type-only exports of 'sockeye/ws'. */
const WS_TYPES = [
  'BinaryType',
  'SendCallback',
  'SendOptions',
  'VerifyClient',
  'VerifyClientCallback',
  'VerifyClientInfo',
  'WebSocketClientOptions',
  'WebSocketServerOptions',
  'WsCommonOptions',
  'WsData',
  'WsFrameError',
  'WsPerMessageDeflateOptions',
];

/** The specifiers go through variables so that the compiler does not resolve them: they name the built package. */
const ROOT_ENTRY: string = 'sockeye';
const CORE_ENTRY: string = 'sockeye/core';
const WS_ENTRY: string = 'sockeye/ws';
const REDIS_ENTRY: string = 'sockeye/redis';

async function entry(specifier: string): Promise<Record<string, unknown>> {
  return (await import(specifier)) as Record<string, unknown>;
}

function sorted(names: Iterable<string>): string[] {
  return [...names].sort();
}

/** Every value the built demo modules export (dist/src/demo/*.js). */
async function demoValues(): Promise<Map<unknown, string>> {
  const dir = join(ROOT, 'dist/src/demo');
  const out = new Map<unknown, string>();
  const files = readdirSync(dir).filter((f) => f.endsWith('.js'));
  assert.ok(files.includes('demo-server.js'), `no demo-server.js in ${dir}`);
  for (const file of files) {
    const mod = (await import(pathToFileURL(join(dir, file)).href)) as Record<string, unknown>;
    for (const [name, value] of Object.entries(mod)) {
      // Objects and functions only: a number such as a message limit may equal a library constant by chance.
      if ((typeof value === 'object' && value !== null) || typeof value === 'function') out.set(value, `src/demo/${file.replace(/\.js$/, '.ts')}: ${name}`);
    }
  }
  return out;
}

describe('public API (docs/api.md#entry-points)', () => {
  it("'sockeye' exports exactly the application API at run time", async () => {
    assert.deepEqual(sorted(Object.keys(await entry(ROOT_ENTRY))), sorted(ROOT_VALUES));
  });

  it("'sockeye/core' exports exactly the sans-I/O core at run time", async () => {
    assert.deepEqual(sorted(Object.keys(await entry(CORE_ENTRY))), sorted(CORE_VALUES));
  });

  it("'sockeye/ws' exports exactly ws's API at run time; the default export is the WebSocket class carrying the others", async () => {
    const ws = await entry(WS_ENTRY);
    assert.deepEqual(sorted(Object.keys(ws)), sorted(WS_VALUES));
    const WebSocket = ws.WebSocket as Record<string, unknown>;
    assert.equal(ws.default, WebSocket);
    assert.equal(WebSocket.WebSocket, WebSocket);
    assert.equal(WebSocket.WebSocketServer, ws.WebSocketServer);
    assert.equal(WebSocket.Server, ws.WebSocketServer);
    assert.equal(WebSocket.createWebSocketStream, ws.createWebSocketStream);
  });

  it("'sockeye/ws' declares exactly these names, types included", () => {
    const file = join(ROOT, 'src/compat/ws/index.ts');
    assert.deepEqual(declaredExports([file]).get(file), sorted([...WS_VALUES, ...WS_TYPES]));
  });

  it("'sockeye/redis' exports exactly the Redis broker, and declares exactly these names", async () => {
    const redis = await entry(REDIS_ENTRY);
    assert.deepEqual(sorted(Object.keys(redis)), sorted(REDIS_VALUES));
    const file = join(ROOT, 'src/redis/index.ts');
    assert.deepEqual(declaredExports([file]).get(file), sorted([...REDIS_VALUES, ...REDIS_TYPES]));
  });

  it('both entries declare exactly these names, types included', () => {
    const rootFile = join(ROOT, 'src/index.ts');
    const coreFile = join(ROOT, 'src/core/index.ts');
    const declared = declaredExports([rootFile, coreFile]);
    assert.deepEqual(declared.get(rootFile), sorted([...ROOT_VALUES, ...ROOT_TYPES]));
    assert.deepEqual(declared.get(coreFile), sorted([...CORE_VALUES, ...CORE_TYPES]));
  });

  it("'sockeye' exports every error class and CloseCode, the same objects as 'sockeye/core'", async () => {
    const root = await entry(ROOT_ENTRY);
    const core = await entry(CORE_ENTRY);
    const errors = (await import(pathToFileURL(join(ROOT, 'dist/src/core/errors.js')).href)) as Record<string, unknown>;
    assert.ok(Object.keys(errors).length > 1, 'no error classes found');
    for (const [name, value] of Object.entries(errors)) {
      assert.ok(typeof value === 'function' && value.prototype instanceof Error, `${name} is not an error class`);
      assert.equal(root[name], value, `'sockeye' does not export ${name}`);
      assert.equal(core[name], value, `'sockeye/core' does not export ${name}`);
    }
    assert.equal(root.CloseCode, core.CloseCode);
  });

  it('neither entry exports the demo server or anything else of src/demo', async () => {
    const demo = await demoValues();
    for (const [label, specifier] of [['sockeye', ROOT_ENTRY], ['sockeye/core', CORE_ENTRY]]) {
      const mod = await entry(specifier);
      for (const name of ['createDemoServer', 'DemoServer', 'DemoServerOptions']) assert.ok(!(name in mod), `'${label}' exports ${name}`);
      const leaked = Object.entries(mod)
        .filter(([, value]) => demo.has(value))
        .map(([name, value]) => `${name} (${demo.get(value)})`);
      assert.deepEqual(leaked, [], `'${label}' exports demo values`);
    }
  });

  it('the examples import the library only through its entry points, as an application would', () => {
    const dir = join(ROOT, 'examples');
    const entries = new Set([join(ROOT, 'src/index.js'), join(ROOT, 'src/core/index.js')]);
    const wrong: string[] = [];
    const walk = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.ts')) {
          for (const m of readFileSync(p, 'utf8').matchAll(/\bfrom\s+'([^']+)'|\bimport\s*\(\s*'([^']+)'\s*\)/g)) {
            const spec = m[1] ?? m[2];
            if (spec.startsWith('node:') || spec === 'sockeye' || spec === 'sockeye/core') continue;
            const target = resolve(dirname(p), spec);
            if (!spec.startsWith('.') || (!target.startsWith(dir) && !entries.has(target))) wrong.push(`${relative(ROOT, p)}: ${spec}`);
          }
        }
      }
    };
    walk(dir);
    assert.deepEqual(wrong, []);
  });
});
