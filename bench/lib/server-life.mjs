// Shared lifetime of the benchmark's echo servers: announce the port on
// stdout, then run until the harness closes our stdin (or signals us).

/**
 * @param {number} port the bound port, announced as "LISTENING <port>"
 * @param {() => Promise<void>} shutdown closes the server and its connections
 */
export function serveUntilStdinCloses(port, shutdown) {
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    // Bounded: a server that does not close within 3 s is ended anyway.
    const timer = setTimeout(() => process.exit(0), 3000);
    shutdown().then(
      () => {
        clearTimeout(timer);
        process.exit(0);
      },
      (error) => {
        process.stderr.write(`shutdown failed: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdout.write(`LISTENING ${port}\n`);
}
