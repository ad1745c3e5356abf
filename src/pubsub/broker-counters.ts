import { Histogram } from '../transport/histogram.js';
import { FAN_OUT_BUCKETS } from './fan-out.js';

/**
 * What a server's BrokerBinding counts (server.metrics()): publications
 * handed to the broker and received from it, the local deliveries of the
 * received ones, gaps, and every broker failure reported, by code. Bumped
 * once per publication, never per session; a failure's code is looked up in
 * a Map only on the failure's path. Guarded by test/server/metrics.test.ts
 * ("broker").
 */
export class BrokerCounters {
  /** This node's publications handed to the broker for the other nodes. */
  publicationsSent = 0;
  /** Publications of other nodes that the broker brought to this node. */
  publicationsReceived = 0;
  /** Local sessions that accepted a publication of another node. */
  deliveries = 0;
  /** Gaps found in another node's publications (ERR_BROKER_GAP). */
  gaps = 0;
  /** Broker failures reported to onError, by code (ERR_BROKER_GAP included). */
  readonly errors = new Map<string, number>();
  /** How long the local fan-out of each received publication took, in seconds. */
  readonly fanOut = new Histogram(FAN_OUT_BUCKETS);

  error(code: string): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
    if (code === 'ERR_BROKER_GAP') this.gaps++;
  }
}
