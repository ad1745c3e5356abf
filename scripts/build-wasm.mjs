// Compiles the hand-written WebAssembly text of the library (src/core/mask-simd.wat)
// with wabt (a devDependency: the library itself loads only the bytes) and writes
// them as a TypeScript module (src/core/mask-simd-bytes.ts), so that a checkout
// compiles without this step and a build always ships the bytes of the text.
// The file is rewritten only when its content changes.
// test/scripts/build-wasm.test.ts runs this script with --stdout and checks that
// the committed file is what it prints.
// Usage: node scripts/build-wasm.mjs [--stdout]   (--stdout: print, write nothing)
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const WAT = 'src/core/mask-simd.wat';
const OUT = 'src/core/mask-simd-bytes.ts';

const wabt = await wabtInit();
// SIMD is the only feature past the WebAssembly 1.0 core that the text may use.
const module = wabt.parseWat(WAT, readFileSync(join(root, WAT), 'utf8'), { simd: true });
let bytes;
try {
  module.resolveNames();
  module.validate();
  // No name section: the library needs only the code.
  bytes = module.toBinary({ write_debug_names: false }).buffer;
} finally {
  module.destroy();
}

const base64 = Buffer.from(bytes).toString('base64');
// 76 characters a line (as MIME does), each a string literal joined with +.
const lines = base64.match(/.{1,76}/g) ?? [''];
const text = `// Generated from ${WAT} by scripts/build-wasm.mjs (run by npm run build): do not edit.
// test/scripts/build-wasm.test.ts checks that this file is what the script makes of the .wat.

/** The WebAssembly module of mask-simd.wat (${bytes.length} bytes), base64: a string, so no caller can change it. */
export const MASK_SIMD_WASM_BASE64 =
${lines.map((l) => `  '${l}'`).join(' +\n')};
`;

if (process.argv.includes('--stdout')) {
  process.stdout.write(text);
} else {
  let old = '';
  try {
    old = readFileSync(join(root, OUT), 'utf8');
  } catch {
    // Not there yet: written below.
  }
  if (old !== text) writeFileSync(join(root, OUT), text);
}
