// A log-linear latency histogram (in the manner of HdrHistogram): exact to
// 1 µs below 64 µs, then 64 buckets per power of two (about 1.6 % wide), so
// millions of samples cost a fixed 14 KiB and no sorting.

const SUB = 64; // buckets per power of two
const MAX_EXP = 36; // 2^36 µs is about 19 hours: anything above is clamped

export class Histogram {
  constructor() {
    this.counts = new Float64Array(SUB + (MAX_EXP - 6 + 1) * SUB);
    this.total = 0;
  }

  /** Records one value, in microseconds. */
  record(us) {
    let v = Math.round(us);
    if (v < 0) v = 0;
    let index;
    if (v < SUB) {
      index = v;
    } else {
      let e = Math.floor(Math.log2(v));
      if (e > MAX_EXP) {
        e = MAX_EXP;
        v = 2 ** (MAX_EXP + 1) - 1;
      }
      // v in [2^e, 2^(e+1)): the top 6 bits below the leading one pick the sub-bucket.
      index = SUB + (e - 6) * SUB + (Math.floor(v / 2 ** (e - 6)) - SUB);
    }
    this.counts[index]++;
    this.total++;
  }

  reset() {
    this.counts.fill(0);
    this.total = 0;
  }

  /** The value (µs, bucket midpoint) at quantile q in [0, 1]; NaN when empty. */
  quantile(q) {
    if (this.total === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i];
      if (seen >= rank) return bucketMid(i);
    }
    return bucketMid(this.counts.length - 1);
  }
}

function bucketMid(index) {
  if (index < SUB) return index;
  const e = Math.floor((index - SUB) / SUB) + 6;
  const sub = (index - SUB) % SUB;
  const width = 2 ** (e - 6);
  return (SUB + sub) * width + width / 2;
}
