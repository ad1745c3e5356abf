/**
 * node-redis stays out of the core: only the sockeye/redis entry's own files
 * import it (src/redis/), and none of the other
 * entries reaches them through its imports. So a program that never imports
 * sockeye/redis does not need node-redis installed (it is an optional peer
 * dependency; test/package/pack.test.ts installs sockeye without it).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SRC = join(ROOT, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : /\.c?ts$/.test(e.name) ? [join(dir, e.name)] : []));
}

/** The module specifiers a source file imports or re-exports. */
function imports(file: string): string[] {
  return [...readFileSync(file, 'utf8').matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'|import\(\s*'([^']+)'\s*\)|require\(\s*'([^']+)'\s*\)/g)].map((m) => m[1] ?? m[2] ?? m[3]);
}

const isRedisFile = (file: string) => /^(redis[\\/]|pubsub[\\/]redis-)/.test(relative(SRC, file));

describe('sockeye/redis is the only way to node-redis', () => {
  it("only the entry's own files import 'redis'", () => {
    const importers = sources(SRC).filter((f) => imports(f).some((s) => s === 'redis' || s.startsWith('redis/') || s.startsWith('@redis/')));
    assert.ok(importers.length > 0);
    assert.deepEqual(importers.filter((f) => !isRedisFile(f)).map((f) => relative(ROOT, f)), []);
  });

  it('no other entry reaches those files through its imports', () => {
    for (const entry of ['index.ts', 'core/index.ts', 'compat/ws/index.ts', 'compat/ws/require.cts']) {
      const seen = new Set<string>();
      const stack = [join(SRC, entry)];
      while (stack.length > 0) {
        const file = stack.pop()!;
        if (seen.has(file)) continue;
        seen.add(file);
        for (const s of imports(file)) if (s.startsWith('.')) stack.push(resolve(dirname(file), s).replace(/\.js$/, '.ts').replace(/\.cjs$/, '.cts'));
      }
      const reached = [...seen].filter(isRedisFile).map((f) => relative(ROOT, f));
      assert.deepEqual(reached, [], `src/${entry} reaches the Redis broker`);
      assert.ok(seen.size > 1 || entry.endsWith('.cts'), `src/${entry} was walked`);
    }
  });
});
