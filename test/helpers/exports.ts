/**
 * The names a module exports (values and types), as the TypeScript compiler
 * sees them in the sources: for the tests that pin the public API
 * (test/core/public-api.test.ts) and its documentation (test/core/api-docs.test.ts).
 */
import assert from 'node:assert/strict';
import ts from 'typescript';

function sorted(names: Iterable<string>): string[] {
  return [...names].sort();
}

/** All names (values and types) a source module exports, as the compiler sees them. */
export function declaredExports(files: string[]): Map<string, string[]> {
  const program = ts.createProgram(files, {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: ['node'],
    strict: true,
    noEmit: true,
    skipLibCheck: true,
  });
  const checker = program.getTypeChecker();
  const out = new Map<string, string[]>();
  for (const file of files) {
    const source = program.getSourceFile(file);
    assert.ok(source, `${file} is not in the program`);
    const symbol = checker.getSymbolAtLocation(source);
    assert.ok(symbol, `${file} is not a module`);
    out.set(file, sorted(checker.getExportsOfModule(symbol).map((s) => s.name)));
  }
  return out;
}

