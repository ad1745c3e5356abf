// The memory-per-connection figure of the idle scenario (bench/run.mjs) and of
// the deflate memory table (bench/deflate.mjs): a least-squares fit over
// several readings, so one reading caught by a step of V8's or malloc's
// growth moves it less than it moves a slope between two readings.

/**
 * Least-squares slope of points[i][key] against points[i].connections.
 * Needs at least two distinct connection counts.
 */
export function slope(points, key) {
  const n = points.length;
  const mx = points.reduce((a, p) => a + p.connections, 0) / n;
  const my = points.reduce((a, p) => a + p[key], 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const p of points) {
    sxy += (p.connections - mx) * (p[key] - my);
    sxx += (p.connections - mx) ** 2;
  }
  if (!(sxx > 0)) throw new Error('slope() needs readings at two or more connection counts');
  return sxy / sxx;
}
