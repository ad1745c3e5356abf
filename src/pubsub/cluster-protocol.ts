import type { BrokerErrorCode, BrokerNodeInfo, Publication } from './broker.js';
import type { ResumeErrorCode } from './offset.js';

/**
 * The messages between the node:cluster relay (primary) and the cluster
 * brokers (workers), over the workers' IPC channels. Each carries TAG, so
 * that the application's own process.send() messages pass by untouched, and
 * `n`, the node it comes from or goes to (a worker may run several nodes).
 * The channel must use serialization 'advanced' (payloads are Buffers; JSON
 * would turn them into arrays of numbers): the hello carries a probe that
 * the relay checks.
 */
export const TAG = 'sockeye-broker';

/** Version of this protocol, the value of TAG. */
export const PROTOCOL_VERSION = 1;

interface Tagged {
  [TAG]: typeof PROTOCOL_VERSION;
  /** The node (Broker.nodeId) that sends it, or that it is for. */
  n: string;
}

export type QueryKind = { q: 'count'; topic: string } | { q: 'nodes' };

/** Worker to primary. */
export type ToRelay = Tagged &
  (
    | { t: 'hello'; pid: number; probe: Uint8Array }
    | { t: 'beat' }
    | { t: 'sub'; id: number; topic: string }
    | { t: 'unsub'; id: number; topic: string }
    /** d: a durable topic's publication, for the relay to number, keep and deliver to its origin too. */
    | { t: 'pub'; p: Publication; d?: true }
    /** The history of a durable topic after `since`. */
    | { t: 'hist'; id: number; topic: string; since: string | null }
    | { t: 'count-reply'; id: number; count: number }
    | ({ t: 'query'; id: number } & QueryKind)
    | { t: 'bye' }
  );

/** Primary to worker. */
export type ToWorker = Tagged &
  (
    | { t: 'welcome'; heartbeatMs: number }
    | { t: 'refused'; reason: string }
    | { t: 'ack'; id: number }
    | { t: 'pub'; p: Publication }
    | { t: 'count'; id: number; topic: string }
    | { t: 'range'; id: number; entries: Publication[]; last: string | null; error?: { code: ResumeErrorCode; message: string; oldest: string | null } }
    | { t: 'reply'; id: number; count?: number; nodes?: BrokerNodeInfo[]; error?: { code: BrokerErrorCode; message: string; node?: string } }
    | { t: 'down'; node: string; reason: string }
    | { t: 'left'; node: string }
    | { t: 'evicted'; reason: string }
    | { t: 'relay-closed' }
  );

export function isProtocolMessage(m: unknown): m is Tagged & { t: string } {
  return typeof m === 'object' && m !== null && (m as Record<string, unknown>)[TAG] === PROTOCOL_VERSION && typeof (m as Record<string, unknown>).n === 'string';
}

/** Bytes a message holds in an IPC queue, near enough for a bound: its payload, if it has one. */
export function queuedSize(m: ToRelay | ToWorker): number {
  if (m.t === 'pub') return m.p.payload.length + m.p.topic.length + 64;
  if (m.t === 'range') return m.entries.reduce((sum, p) => sum + p.payload.length + p.topic.length + 64, 64);
  return 64;
}

/** Default heartbeat interval: a node is down after two missed heartbeats. */
export const DEFAULT_HEARTBEAT_MS = 1000;

/** Default bound of what waits in one IPC channel's queue (per direction, per node). */
export const DEFAULT_MAX_QUEUED_BYTES = 64 * 1024 * 1024;

/** Default time for a subscribe acknowledgement or a presence query. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;
