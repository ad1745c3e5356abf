/**
 * A histogram of observed values (seconds, for the server's metrics): a
 * fixed list of upper bounds, a count per bucket, their sum and count, as
 * Prometheus histograms are exposed. It is fed where the event already
 * happens (a pong, the end of a fan-out), never per message, and costs a
 * short scan of the bounds per observation: no allocation, no Map.
 * Guarded by test/server/metrics.test.ts ("histogram").
 */
export interface HistogramSnapshot {
  /**
   * Upper bounds in increasing order (`le`, inclusive) with the number of
   * observations at or below each: cumulative, as Prometheus exposes them.
   * The implicit last bucket, `+Inf`, holds `count`.
   */
  readonly buckets: readonly { readonly le: number; readonly count: number }[];
  /** Sum of the observed values. */
  readonly sum: number;
  /** Number of observations. */
  readonly count: number;
}

export class Histogram {
  readonly bounds: readonly number[];
  /** Observations per bucket, not cumulative; the last one is above every bound (+Inf). */
  private readonly counts: number[];
  sum = 0;
  count = 0;

  /** `bounds`: finite upper bounds in strictly increasing order. */
  constructor(bounds: readonly number[]) {
    for (let i = 0; i < bounds.length; i++) {
      if (!Number.isFinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) throw new RangeError(`histogram bounds must be finite and increasing (got ${bounds.join(', ')})`);
    }
    this.bounds = Object.freeze([...bounds]);
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }

  snapshot(): HistogramSnapshot {
    let cumulative = 0;
    const buckets = this.bounds.map((le, i) => ({ le, count: (cumulative += this.counts[i]) }));
    return { buckets, sum: this.sum, count: this.count };
  }
}
