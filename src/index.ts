// The package's root entry ('sockeye'): what applications use. The sans-I/O
// core is 'sockeye/core' (src/core/index.ts); the demo server is an
// application of the library, run by the command line, and is not exported.
// test/core/public-api.test.ts holds the exact lists of both entries.

// Server and client.
export { createServer, WebSocketServer, type ServerOptions, type ServerHandler, type VerifyResult } from './server/server.js';
export { ServerSession, type UpgradeRequest } from './server/server-session.js';
export { connect, ClientSession, type ConnectOptions, type ClientHandler } from './client/connect.js';
export type { ClientHttp2Options } from './client/http2.js';
export { reconnect, retryable, type Reconnector, type ReconnectOptions, type ReconnectAttempt, type RetryPolicy, type RetryReason } from './client/reconnect.js';
export { WebSocket, type WebSocketOptions } from './client/websocket.js';
export { CloseEvent, type CloseEventInit } from './client/dom-events.js';

// Sessions, handlers and what they receive.
export { Session, MessageWriter, type SessionState } from './transport/session.js';
export type { Handler, SendStatus, Message, Fragment, CloseInfo, WritableInfo, SessionLimits } from './transport/types.js';
export type { FanOutOptions, FanOutResult } from './pubsub/fan-out.js';
export { MAX_TOPIC_LENGTH } from './pubsub/topics.js';
export type { ShutdownOptions, ShutdownResult } from './server/server.js';
export type { Http2Options } from './server/http2-front.js';

// Metrics: server.metrics() and the Prometheus text format (docs/api.md#metrics).
export type { MetricsSnapshot, MetricsOptions, MessageCounts, BrokerMetrics, HistogramSnapshot } from './server/metrics.js';
export { renderPrometheus, PROMETHEUS_CONTENT_TYPE } from './server/prometheus.js';

// Scaling out: a broker under server.publish() (docs/api.md#scaling-out-brokers).
export { BrokerError, type Broker, type BrokerHost, type BrokerNodeInfo, type BrokerErrorCode, type Publication } from './pubsub/broker.js';
export { LocalBrokerHub, type LocalBroker } from './pubsub/local-broker.js';
export { createClusterBroker, clusterBrokerPrimary, type ClusterBroker, type ClusterBrokerOptions, type ClusterBrokerState } from './pubsub/cluster-broker.js';
export type { ClusterRelay, ClusterRelayOptions, ClusterRelayStats } from './pubsub/cluster-relay.js';
// Durable topics with offsets: session.resume() (docs/api.md#resuming-durable-topics).
export { ResumeError, compareOffsets, type ResumeErrorCode } from './pubsub/offset.js';
export type { ResumeResult } from './pubsub/resume.js';
export type { HistoryRange } from './pubsub/history.js';
export type { DurableEnvelope, DurableDelivery } from './pubsub/broker-binding.js';

// Options and their defaults.
export { DEFAULT_SESSION_LIMITS, DEFAULT_KEEPALIVE } from './transport/types.js';
export type { ConnectionLimits, KeepaliveOptions } from './core/connection.js';
export type { PerMessageDeflateOptions } from './transport/permessage-deflate.js';
export { Context, type ContextOptions } from './transport/context.js';

// Static files on the WebSocket port (ServerOptions.onHttpRequest).
export { createMountHandler, type Mount, type MountHandlerOptions, type HttpRequestHandler } from './server/mounts.js';

// Errors (WebSocketError and every subclass) and close codes.
export * from './core/errors.js';
export { CloseCode } from './core/close-codes.js';
