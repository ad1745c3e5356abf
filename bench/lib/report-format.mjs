// The numbers of the benchmark reports (bench/run.mjs, bench/fanout-redis.mjs):
// medians over rounds and the cells' formats, so both reports round and print
// alike. A value that is not a finite number prints as a dash (pct: n/a).

/** The median of the finite values, NaN when there are none. */
export function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

export const int = (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—');

/** `digits` significant digits, at most 3 decimals. */
export function sig(n, digits = 3) {
  if (!Number.isFinite(n)) return '—';
  if (n === 0) return '0';
  const d = Math.max(0, digits - 1 - Math.floor(Math.log10(Math.abs(n))));
  return n.toFixed(Math.min(d, 3));
}

export const pct = (n) => (n === null || n === undefined || !Number.isFinite(n) ? 'n/a' : `${Math.round(n * 100)}%`);
export const ratio = (n) => (Number.isFinite(n) ? `${n.toFixed(2)}×` : '—');
export const mib = (n) => (Number.isFinite(n) ? `${(n / 2 ** 20).toFixed(1)} MiB` : '—');
export const kib = (n) => (Number.isFinite(n) ? `${(n / 1024).toFixed(1)} KiB` : '—');
