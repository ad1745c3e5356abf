/**
 * docs/api.md covers every name the package exports: each value and type of
 * 'sockeye' (src/index.ts) and 'sockeye/core' (src/core/index.ts), as the
 * compiler sees them, appears in the reference as code (`name`, `name()`,
 * `name<...>` or `name.member`). A name added to an entry without a word in
 * the reference fails here, naming it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { declaredExports } from '../helpers/exports.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DOC = readFileSync(join(ROOT, 'docs/api.md'), 'utf8');

/** Every span of inline code in the document. */
const CODE = [...DOC.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]);

function documented(name: string): boolean {
  const re = new RegExp(`^${name}(?:$|[(<.\\s])`);
  return CODE.some((c) => re.test(c) || c.split(/[\s,]+/).some((w) => re.test(w)));
}

describe('docs/api.md covers the public API', () => {
  const files = { sockeye: join(ROOT, 'src/index.ts'), 'sockeye/core': join(ROOT, 'src/core/index.ts'), 'sockeye/ws': join(ROOT, 'src/compat/ws/index.ts') };
  const declared = declaredExports(Object.values(files));

  for (const [entry, file] of Object.entries(files)) {
    it(`every export of '${entry}' is named in the reference`, () => {
      const names = declared.get(file) ?? [];
      assert.ok(names.length > 15, `${entry} exports ${names.length} names`);
      const missing = names.filter((n) => !documented(n));
      assert.deepEqual(missing, [], `exported by '${entry}' but not in docs/api.md: ${missing.join(', ')}`);
    });
  }

  it('the check finds an undocumented name', () => {
    assert.equal(documented('createServer'), true);
    assert.equal(documented('NoSuchExportAnywhere'), false);
    assert.equal(documented('Session'), true);
    // A prefix of a documented name is not documented by it.
    assert.equal(documented('createServ'), false);
  });
});
