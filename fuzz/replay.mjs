// Replays one input through a fuzz target in this process, so a finding can
// be debugged with a plain stack trace: node fuzz/replay.mjs <target> <file>
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { replay } = await import(join(root, 'dist/fuzz/engine.js'));
const [target, file] = process.argv.slice(2);
if (!target || !file) {
  console.error('usage: node fuzz/replay.mjs <target> <input-file>');
  process.exit(2);
}
console.log(await replay(target, readFileSync(file)));
