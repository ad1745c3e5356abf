import { readFileSync } from 'node:fs';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError, type CliIo } from './cli-io.js';
import { CONNECT_USAGE, runConnect } from './connect.js';
import { SERVE_USAGE, runServe } from './serve.js';
import { LISTEN_USAGE, runListen } from './listen.js';

export const MAIN_USAGE = `Usage: sockeye <command> [options]

Commands:
  serve              run the demo server: demo page, test protocols, echo
  connect URL        connect to a server: stdin lines out, messages to stdout
  listen             accept clients: their messages to stdout, stdin lines to all
  help [command]     show this help, or a command's

Options:
  -h, --help         show this help
  -v, --version      print the version

Run 'sockeye <command> --help' for the options of a command.
Exit status: 0 success, 1 failure, 2 bad command line.
`;

interface Command {
  usage: string;
  run(argv: string[], io: CliIo): Promise<number>;
}

/** The commands, by name. A new command is one entry here and one file. */
const COMMANDS: Record<string, Command> = {
  serve: { usage: SERVE_USAGE, run: runServe },
  connect: { usage: CONNECT_USAGE, run: runConnect },
  listen: { usage: LISTEN_USAGE, run: runListen },
};

function version(): string {
  try {
    // dist/src/cli/run.js -> the package root, three levels up.
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Runs the command line `argv` (without node and the script) and resolves with the exit status. */
export async function run(argv: string[], io: CliIo): Promise<number> {
  try {
    const [name, ...rest] = argv;
    if (name === undefined) throw new UsageError('a command is needed', MAIN_USAGE);
    if (name === '-h' || name === '--help') {
      io.stdout.write(MAIN_USAGE);
      return EXIT_OK;
    }
    if (name === '-v' || name === '--version') {
      io.stdout.write(`sockeye ${version()}\n`);
      return EXIT_OK;
    }
    if (name === 'help') {
      const topic = rest[0];
      if (topic === undefined) io.stdout.write(MAIN_USAGE);
      else if (Object.hasOwn(COMMANDS, topic)) io.stdout.write(COMMANDS[topic].usage);
      else throw new UsageError(`no command ${JSON.stringify(topic)}`, MAIN_USAGE);
      return EXIT_OK;
    }
    if (!Object.hasOwn(COMMANDS, name)) {
      throw new UsageError(name.startsWith('-') ? `unknown option ${JSON.stringify(name)}` : `unknown command ${JSON.stringify(name)}`, MAIN_USAGE);
    }
    return await COMMANDS[name].run(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`sockeye: ${err.message}\n\n${err.usage}`);
      return EXIT_USAGE;
    }
    io.stderr.write(`sockeye: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return EXIT_FAILURE;
  }
}
