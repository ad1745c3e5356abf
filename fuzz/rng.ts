/**
 * A small deterministic PRNG (mulberry32) for the fuzzer: a run is fully
 * determined by its seed, so a finding in CI can be replayed exactly. Not for
 * anything security-related (the library's own masks come from the CSPRNG).
 */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** An integer in [0, n) (n >= 1). */
  below(n: number): number {
    return n <= 1 ? 0 : this.u32() % n;
  }

  /** An integer in [lo, hi] inclusive. */
  range(lo: number, hi: number): number {
    return lo + this.below(hi - lo + 1);
  }

  /** True with probability 1/n. */
  oneIn(n: number): boolean {
    return this.below(n) === 0;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)];
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }
}

/**
 * Cuts `data` into chunks whose sizes are drawn from `rng`: mostly small
 * (1-3 bytes, to split headers and UTF-8 sequences), sometimes larger.
 * Every byte ends up in exactly one chunk, in order; chunks are copies.
 */
export function splitChunks(data: Buffer, rng: Rng): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < data.length) {
    const r = rng.below(8);
    const size = r < 4 ? 1 + rng.below(3) : r < 7 ? 1 + rng.below(32) : 1 + rng.below(1024);
    out.push(Buffer.from(data.subarray(pos, pos + size)));
    pos += size;
  }
  return out;
}
