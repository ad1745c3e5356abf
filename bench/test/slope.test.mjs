// The least-squares slope behind the memory-per-connection figures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { slope } from '../lib/slope.mjs';

test('slope: exact on a straight line', () => {
  const points = [5000, 6000, 7000, 8000, 9000, 10000].map((c) => ({ connections: c, rss: 1e6 + 3072 * c }));
  assert.equal(slope(points, 'rss'), 3072);
});

test('slope: one reading off the line moves it by a fraction of what it moves a two-point slope', () => {
  const line = (c) => 1e6 + 3000 * c;
  const points = [5000, 6000, 7000, 8000, 9000, 10000].map((c) => ({ connections: c, heap: line(c) }));
  points[0].heap += 1_000_000; // the first reading 1 MB high, as after an opening burst
  const twoPoint = (points[5].heap - points[0].heap) / 5000; // 2800: off by 200 B per connection
  const fitted = slope(points, 'heap'); // off by 1e6 * (5000 - 7500) / 17.5e6 = -142.9
  assert.ok(Math.abs(fitted - 3000) < Math.abs(twoPoint - 3000));
  assert.ok(Math.abs(fitted - (3000 - 1e6 * 2500 / 17.5e6)) < 1e-6);
});

test('slope: refuses readings at one connection count', () => {
  assert.throws(() => slope([{ connections: 5, rss: 1 }, { connections: 5, rss: 2 }], 'rss'), /two or more/);
});
