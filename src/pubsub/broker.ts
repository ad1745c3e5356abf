import { WebSocketError } from '../core/errors.js';
import type { HistoryRange } from './history.js';

/**
 * One message published to a topic, as it travels between nodes. The origin
 * stamps it (BrokerBinding, never the broker): `seq` numbers every
 * publication of the origin, 1, 2, 3... across all its topics, and `prev` is
 * the `seq` of the origin's previous publication on the same topic (0 when it
 * has none, or has forgotten it). A receiver that remembers the last `seq` it
 * got from that origin on that topic sees a lost publication as a `prev` that
 * does not match, whichever topics it does not subscribe to (and so never
 * sees) in between: a relay may filter by topic without faking gaps.
 */
export interface Publication {
  readonly topic: string;
  /** The message's bytes (UTF-8 for text), owned by the library and never modified once stamped: every node may share them. */
  readonly payload: Buffer;
  readonly binary: boolean;
  /** false: no permessage-deflate for this message, on any node. */
  readonly compress: boolean;
  /** The node that published it (Broker.nodeId there). */
  readonly origin: string;
  /** Its number among the origin's publications (from 1). */
  readonly seq: number;
  /** The seq of the origin's previous publication on this topic; 0 if unknown. */
  readonly prev: number;
  /**
   * Set by an at-least-once broker (a durable Redis topic) on a publication it
   * sent again after a lost link left it unacknowledged: it may repeat one
   * already delivered, and a repeat (seq at or below the last delivered) is
   * dropped without a report. Absent everywhere else.
   */
  readonly redelivery?: boolean;
  /**
   * Its place in its topic's history, assigned by the durable store (a
   * durable topic only; docs/api.md, "Resuming durable topics"). A publication
   * with an offset is delivered through the store to every node, its origin
   * included, so that the origin's own subscribers get the offset too.
   */
  readonly offset?: string;
}

/** A node of a broker, as presence reports it. */
export interface BrokerNodeInfo {
  /** Broker.nodeId of that node. */
  readonly id: string;
  /** Its process id. */
  readonly pid: number;
  /** When it was last heard from (Date.now() of the process that keeps the list). */
  readonly lastSeen: number;
}

/**
 * What a server gives the broker it was created with (Broker.attach): the
 * way in for publications of other nodes and for the broker's failures.
 */
export interface BrokerHost {
  /**
   * A publication of another node, for the local subscribers of its topic:
   * checked for a gap, then fanned out with its frame built once. Calls for
   * one origin must come in the order that origin published.
   */
  receive(publication: Publication): void;
  /** A failure that may have lost publications (a BrokerError naming the topics). Goes to the server's onError. */
  error(error: BrokerError): void;
  /** Another node is down: publications it sent that are still in flight may never come (reported, naming the topics). */
  nodeDown(nodeId: string, reason: string): void;
  /** Another node left in good order (everything it published was delivered first): forgotten, nothing reported. */
  nodeLeft(nodeId: string): void;
  /** Subscribers of `topic` on this node (presence queries). */
  subscriberCount(topic: string): number;
  /** Topics with at least one local subscriber: what a broker subscribes again after a reconnect. */
  subscribedTopics(): Iterable<string>;
}

/**
 * What a server node needs from a broker (createServer({ broker })). The
 * server calls subscribe() when its local subscriber count of a topic goes
 * from 0 to 1 and unsubscribe() when it goes back to 0, never once per
 * session. A publication of this node goes to its own subscribers directly,
 * exactly once; publish() hands it to the broker for the other nodes only,
 * and a broker never delivers it back to its origin, except on a topic it
 * keeps history of (keepsHistory()): that one comes back to every node, its
 * origin included, with its offset, and is delivered only then.
 *
 * Guarantees a broker keeps: delivery at most once (a publication is
 * delivered once or lost, never twice), in the order each origin published;
 * a loss it knows of is reported through host.error() naming the topics
 * (a connection lost, a backlog over its bound), and one it does not know of
 * shows up as a gap at the receiver (BrokerBinding). Invariant S4.
 */
export interface Broker {
  /** This node's id, unique among the broker's nodes. */
  readonly nodeId: string;
  /** Binds the broker to its server; once (a second call throws InvalidStateError). */
  attach(host: BrokerHost): void;
  /** Sends a publication of this node to the other nodes that subscribe to its topic. Never throws for a lost link: that is reported through host.error(). */
  publish(publication: Publication): void;
  /** Starts receiving `topic` from other nodes; resolves once the subscription is in effect (acknowledged). */
  subscribe(topic: string): Promise<void>;
  /** Stops receiving `topic`; resolves once acknowledged. */
  unsubscribe(topic: string): Promise<void>;
  /** Subscribers of `topic` summed over every live node. */
  subscriberCount(topic: string): Promise<number>;
  /** The live nodes, this one included. */
  nodes(): Promise<readonly BrokerNodeInfo[]>;
  /** Leaves: unsubscribes everything, stops heartbeats. Idempotent. */
  close(): Promise<void>;
  /**
   * Whether `topic` is durable with offsets: its publications go through the
   * store, which numbers them, keeps a bounded history and delivers each to
   * every subscribed node, the origin included (host.receive() with
   * `offset` set). A broker without it has no such topics.
   */
  keepsHistory?(topic: string): boolean;
  /**
   * The history of a durable topic after `since` (null: none, only its newest
   * offset), in offset order. Called once this node's subscription to the
   * topic is in effect, so what is published after the range was taken
   * comes live. Rejects with a ResumeError (ERR_OFFSET_TRIMMED when some of
   * it is no longer kept, ERR_BAD_OFFSET) or a BrokerError.
   */
  history?(topic: string, since: string | null): Promise<HistoryRange>;
}

/**
 * Stable codes of BrokerError:
 * - ERR_BROKER_GAP: publications of a node on a topic never arrived;
 * - ERR_BROKER_OUT_OF_ORDER: a publication arrived after a later one of its origin (dropped: at most once, in order);
 * - ERR_BROKER_NODE_DOWN: a node stopped answering or exited; what it had in flight may be lost;
 * - ERR_BROKER_DISCONNECTED: this node lost its link to the others (publications both ways may be lost);
 * - ERR_BROKER_BACKLOG: a link's queue was over its bound, the publication was dropped for it;
 * - ERR_BROKER_SUBSCRIBE: a subscribe or unsubscribe was not acknowledged;
 * - ERR_BROKER_TIMEOUT: a presence query got no answer in time;
 * - ERR_BROKER_MALFORMED: a message from the broker's medium was not a publication (dropped).
 */
export type BrokerErrorCode =
  | 'ERR_BROKER_GAP'
  | 'ERR_BROKER_OUT_OF_ORDER'
  | 'ERR_BROKER_NODE_DOWN'
  | 'ERR_BROKER_DISCONNECTED'
  | 'ERR_BROKER_BACKLOG'
  | 'ERR_BROKER_SUBSCRIBE'
  | 'ERR_BROKER_TIMEOUT'
  | 'ERR_BROKER_MALFORMED';

/** A broker failure: says which topics it affects and, where one is involved, which other node. */
export class BrokerError extends WebSocketError {
  declare readonly code: BrokerErrorCode;
  /** The topics whose publications may have been lost (or were, for a gap). */
  readonly topics: readonly string[];
  /** The other node involved (the origin of a gap, the node that is down), if any. */
  readonly node: string | undefined;
  constructor(code: BrokerErrorCode, message: string, topics: readonly string[], node?: string, options?: { cause?: unknown }) {
    super(code, message, undefined, options);
    this.topics = topics;
    this.node = node;
  }
}
