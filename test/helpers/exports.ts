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

/** The sources as the compiler sees them, with the project's module settings. */
function programOf(files: string[]): ts.Program {
  return ts.createProgram(files, {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: ['node'],
    strict: true,
    noEmit: true,
    skipLibCheck: true,
  });
}

/** All names (values and types) a source module exports, as the compiler sees them. */
export function declaredExports(files: string[]): Map<string, string[]> {
  const program = programOf(files);
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


/**
 * The public members of each class and interface a module exports: what a
 * user can reach (no `#private`, `private`, `protected`, `_`-prefixed or
 * `@internal` member), declared in this repository's sources (members
 * inherited from Node's types are theirs to document).
 */
export function declaredMembers(files: string[]): Map<string, Map<string, string[]>> {
  const program = programOf(files);
  const checker = program.getTypeChecker();
  const hidden = ts.ModifierFlags.Private | ts.ModifierFlags.Protected;
  const isPublic = (member: ts.Symbol): boolean =>
    !member.name.startsWith('#') &&
    !member.name.startsWith('_') &&
    (member.declarations ?? []).some(
      (d) => !d.getSourceFile().isDeclarationFile && (ts.getCombinedModifierFlags(d) & hidden) === 0 && !/@internal\b/.test(d.getFullText()),
    );
  const out = new Map<string, Map<string, string[]>>();
  for (const file of files) {
    const source = program.getSourceFile(file);
    assert.ok(source, `${file} is not in the program`);
    const moduleSymbol = checker.getSymbolAtLocation(source);
    assert.ok(moduleSymbol, `${file} is not a module`);
    const types = new Map<string, string[]>();
    for (const exported of checker.getExportsOfModule(moduleSymbol)) {
      const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      if ((symbol.flags & (ts.SymbolFlags.Interface | ts.SymbolFlags.Class)) === 0) continue;
      const instance = checker.getPropertiesOfType(checker.getDeclaredTypeOfSymbol(symbol));
      // A class's static members (the readyState constants, say) are part of what users reach too.
      const statics = symbol.flags & ts.SymbolFlags.Class ? checker.getPropertiesOfType(checker.getTypeOfSymbol(symbol)).filter((m) => m.name !== 'prototype') : [];
      types.set(exported.name, sorted(new Set([...instance, ...statics].filter(isPublic).map((m) => m.name))));
    }
    out.set(file, types);
  }
  return out;
}
