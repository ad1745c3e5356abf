/**
 * docs/api.md covers the whole public API:
 * - every name the package exports (each value and type of 'sockeye',
 *   'sockeye/core', 'sockeye/ws' and 'sockeye/redis', as the compiler sees them) appears in
 *   the reference as code (`name`, `name()`, `name<...>` or `name.member`);
 * - every public member of their classes and interfaces (each option, each
 *   handler method, that is each event, each property and method) appears as
 *   code too, alone or as `x.member`, `member(...)` or `member: ...`;
 * - every error code the library raises (each 'ERR_...' string in src/,
 *   outside the command line and the demo, and each limit's ERR_LIMIT_...)
 *   and each of ws's codes that sockeye/ws raises (WS_ERR_...).
 * Anything added without a word in the reference fails here, naming it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readdirSync } from 'node:fs';
import { declaredExports, declaredMembers } from '../helpers/exports.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DOC = readFileSync(join(ROOT, 'docs/api.md'), 'utf8');

/** Every span of inline code in the document. */
const CODE = [...DOC.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]);

function documented(name: string): boolean {
  const re = new RegExp(`^${name}(?:$|[(<.\\s])`);
  return CODE.some((c) => re.test(c) || c.split(/[\s,]+/).some((w) => re.test(w)));
}

/** A member is documented when it appears as code alone, or as `x.member`, `member(...)`, `member: T` or `member?`. */
function documentedMember(name: string): boolean {
  const re = new RegExp(`(?:^|[.\\s,{(])${name.replace(/\$/g, '\\$')}(?:$|[(<.:?\\s,=})\\]])`);
  return CODE.some((c) => re.test(c));
}

/** Source files under `dir`, recursively. */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/**
 * The codes of the errors the library raises: 'ERR_...' and 'WS_ERR_...'
 * string literals in src/ outside the command line and the demo (whose
 * errors are printed, not thrown to users), less Node's own codes that the
 * library only reads, plus ERR_LIMIT_ and each limit's name (errors.ts
 * builds those).
 */
function raisedCodes(): string[] {
  const NODE_CODES = new Set(['ERR_SSL_WRONG_VERSION_NUMBER']);
  const codes = new Set<string>();
  for (const file of sources(join(ROOT, 'src'))) {
    if (/[\\/]src[\\/](cli|demo)[\\/]/.test(file)) continue;
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/'((?:WS_)?ERR_[A-Z0-9_]+)'/g)) if (!NODE_CODES.has(m[1])) codes.add(m[1]);
    for (const m of text.matchAll(/new LimitExceededError\('([A-Za-z]+)'/g)) codes.add('ERR_LIMIT_' + m[1].replace(/[A-Z]/g, (c) => '_' + c).toUpperCase());
  }
  return [...codes].sort();
}

describe('docs/api.md covers the public API', () => {
  const files = { sockeye: join(ROOT, 'src/index.ts'), 'sockeye/core': join(ROOT, 'src/core/index.ts'), 'sockeye/ws': join(ROOT, 'src/compat/ws/index.ts'), 'sockeye/redis': join(ROOT, 'src/redis/index.ts') };
  /** sockeye/redis is one broker: a handful of names, not a library's worth. */
  const small = (entry: string) => entry === 'sockeye/redis';
  const declared = declaredExports(Object.values(files));

  for (const [entry, file] of Object.entries(files)) {
    it(`every export of '${entry}' is named in the reference`, () => {
      const names = declared.get(file) ?? [];
      assert.ok(names.length > (small(entry) ? 2 : 15), `${entry} exports ${names.length} names`);
      const missing = names.filter((n) => !documented(n));
      assert.deepEqual(missing, [], `exported by '${entry}' but not in docs/api.md: ${missing.join(', ')}`);
    });
  }

  const members = declaredMembers(Object.values(files));
  for (const [entry, file] of Object.entries(files)) {
    it(`every public member of the classes and interfaces of '${entry}' is named in the reference`, () => {
      const types = members.get(file) ?? new Map<string, string[]>();
      assert.ok(types.size > (small(entry) ? 1 : 5), `${entry} exports ${types.size} classes and interfaces`);
      const missing = [...types].flatMap(([type, names]) => names.filter((n) => !documentedMember(n)).map((n) => `${type}.${n}`));
      assert.deepEqual(missing, [], `members of '${entry}' not in docs/api.md: ${missing.join(', ')}`);
    });
  }

  it('every error code the library raises is in the reference', () => {
    const codes = raisedCodes();
    assert.ok(codes.length > 50, `${codes.length} codes found`);
    const missing = codes.filter((c) => !DOC.includes(`\`${c}\``));
    assert.deepEqual(missing, [], `error codes not in docs/api.md: ${missing.join(', ')}`);
  });

  it('the check finds an undocumented name', () => {
    assert.equal(documented('createServer'), true);
    assert.equal(documented('NoSuchExportAnywhere'), false);
    assert.equal(documented('Session'), true);
    // A prefix of a documented name is not documented by it.
    assert.equal(documented('createServ'), false);
    assert.equal(documentedMember('maxMessageBytes'), true);
    assert.equal(documentedMember('maxMessageByte'), false);
    assert.ok(raisedCodes().includes('ERR_LIMIT_MAX_MESSAGE_BYTES'));
  });
});
