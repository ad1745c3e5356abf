#!/usr/bin/env node
// The `sockeye` bin (package.json "bin"). Everything is in run(); this file
// only binds it to the process.
import { processIo } from './cli-io.js';
import { run } from './run.js';

/**
 * Exits once stdout and stderr have taken everything written. An explicit
 * exit, because stdin (a terminal, an open pipe) would keep the process alive
 * after a connection has ended.
 */
function exit(code: number): void {
  process.exitCode = code;
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

// A reader that went away (`sockeye connect ... | head -1`) is not an error of ours.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

run(process.argv.slice(2), processIo()).then(exit, (err: unknown) => {
  process.stderr.write(`sockeye: ${String(err)}\n`);
  exit(1);
});
