/**
 * The layering rules of docs/architecture.md, checked on the sources:
 *
 * - src/core is sans-I/O (invariant S5): it imports only other core files and
 *   node:buffer and node:crypto (a hash, never randomness), and it uses no
 *   timer, clock or random source of its own;
 * - every layer imports only the layers below it (core <- transport <- pubsub
 *   <- server, client <- demo <- cli; compat, the ws adapter, over core,
 *   transport and server; redis over core, transport and pubsub);
 * - nothing imports a package: the library has no runtime dependencies (the
 *   Redis entry, src/redis, imports its client library, an optional peer).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, relative, resolve, dirname } from 'node:path';

const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));

/** What each layer may import from src/ (its own directory always). */
const ALLOWED: Record<string, readonly string[]> = {
  core: [],
  transport: ['core'],
  pubsub: ['core', 'transport'],
  server: ['core', 'transport', 'pubsub'],
  client: ['core', 'transport'],
  // The ws adapter runs sessions over sockets node:http upgraded; it reads their heads as the server does.
  compat: ['core', 'transport', 'server'],
  demo: ['core', 'transport', 'pubsub', 'server'],
  cli: ['core', 'transport', 'pubsub', 'server', 'client', 'demo'],
  // sockeye/redis: the Redis broker, an entry of its own over the pubsub layer.
  redis: ['core', 'transport', 'pubsub'],
  '.': ['core', 'transport', 'pubsub', 'server', 'client', 'demo'],
};

/**
 * Packages a layer may import: only the Redis entry, its client library, an
 * optional peer dependency that the core never loads (test/redis/redis-entry.test.ts).
 */
const PACKAGES: Record<string, readonly string[]> = { redis: ['redis'] };

/** Node built-ins the core may use: isUtf8 and SHA-1 for Sec-WebSocket-Accept. */
const CORE_BUILTINS = new Set(['node:buffer', 'node:crypto']);

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** The code without comments (a crude cut that may remove more than comments, never less). */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
}

function specifiers(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/\bfrom\s+'([^']+)'|\bimport\s*\(\s*'([^']+)'\s*\)|^\s*import\s+'([^']+)'/gm)) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

/** The layer of a file under src/: its first directory, or '.' for src/index.ts. */
function layerOf(file: string): string {
  const rel = relative(SRC, file).split(/[\\/]/);
  return rel.length === 1 ? '.' : rel[0];
}

describe('layers (docs/architecture.md)', () => {
  const files = sources(SRC);

  it('finds the sources', () => {
    assert.ok(files.some((f) => layerOf(f) === 'core'), `no src/core under ${SRC}`);
  });

  it('each layer imports only itself and the layers below it, and no package', () => {
    const wrong: string[] = [];
    for (const file of files) {
      const layer = layerOf(file);
      const allowed = ALLOWED[layer];
      if (!allowed) {
        wrong.push(`${relative(SRC, file)}: src/${layer} has no rule in this test (add one, and to docs/architecture.md)`);
        continue;
      }
      for (const spec of specifiers(code(readFileSync(file, 'utf8')))) {
        if (spec.startsWith('node:')) {
          if (layer === 'core' && !CORE_BUILTINS.has(spec)) wrong.push(`${relative(SRC, file)}: ${spec} (the core does no I/O)`);
          continue;
        }
        if (!spec.startsWith('.')) {
          if (PACKAGES[layer]?.includes(spec)) continue;
          wrong.push(`${relative(SRC, file)}: package '${spec}' (no runtime dependencies)`);
          continue;
        }
        const target = layerOf(resolve(dirname(file), spec));
        if (target !== layer && !allowed.includes(target)) wrong.push(`${relative(SRC, file)}: imports src/${target}`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it('the core uses no timer, clock or random source (invariant S5)', () => {
    const forbidden = /\b(setTimeout|setInterval|setImmediate|queueMicrotask|Date\.now|new Date|performance\.now|process\.hrtime|Math\.random|randomBytes|randomFill|randomFillSync|randomUUID|getRandomValues)\b/g;
    const wrong: string[] = [];
    for (const file of files.filter((f) => layerOf(f) === 'core')) {
      for (const m of code(readFileSync(file, 'utf8')).matchAll(forbidden)) wrong.push(`${relative(SRC, file)}: ${m[0]}`);
    }
    assert.deepEqual(wrong, []);
  });
});
