import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './cli-io.js';

/**
 * Runs a node:util parseArgs call (strict mode) and turns its errors
 * (unknown option, missing value, unexpected positional) into UsageErrors
 * that carry the command's usage text.
 */
export function withUsage<R>(parse: () => R, usage: string): R {
  try {
    return parse();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) throw new UsageError((err as Error).message, usage);
    throw err;
  }
}

/** A command's arguments: its options (strict) and positionals, a parse error being a UsageError with `usage`. */
export function parseCommand<const O extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: O,
  usage: string,
): ReturnType<typeof parseArgs<{ args: string[]; strict: true; allowPositionals: true; options: O }>> {
  return withUsage(() => parseArgs({ args: argv, strict: true, allowPositionals: true, options }), usage);
}

/** A TCP port: decimal digits only, 0-65535 (0 lets the system pick). */
export function parsePort(text: string, what: string, usage: string): number {
  const n = /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 0 && n <= 65535)) throw new UsageError(`${what} must be a port number from 0 to 65535, not ${JSON.stringify(text)}`, usage);
  return n;
}

/** What the size suffixes of parseByteSize() multiply by: powers of 1024, each with or without "iB". */
const SIZE_UNITS: ReadonlyMap<string, number> = new Map([
  ['', 1],
  ['k', 1024],
  ['kib', 1024],
  ['m', 1024 ** 2],
  ['mib', 1024 ** 2],
  ['g', 1024 ** 3],
  ['gib', 1024 ** 3],
]);

/**
 * A size in bytes as typed on a command line: decimal digits, optionally
 * followed by K, M or G (or KiB, MiB, GiB; any case), each a power of 1024:
 * "16M" and "16MiB" are 16777216. At least 1. "16MB" is refused rather than
 * guessed at (1000 or 1024?), as are fractions, signs and spaces.
 */
export function parseByteSize(text: string, what: string, usage: string): number {
  const m = /^([0-9]{1,16})([a-zA-Z]*)$/.exec(text);
  const unit = m ? SIZE_UNITS.get(m[2].toLowerCase()) : undefined;
  const n = m && unit !== undefined ? Number(m[1]) * unit : NaN;
  if (!(Number.isSafeInteger(n) && n >= 1)) {
    throw new UsageError(`${what} takes a size in bytes, at least 1: digits, optionally followed by K, M or G (KiB, MiB, GiB), not ${JSON.stringify(text)}`, usage);
  }
  return n;
}

/**
 * `Name: value` as typed on a command line (curl's -H form). The name is
 * checked here only for being present; the handshake builder checks that it
 * is a token and that the value has no CR, LF or NUL.
 */
export function parseHeader(text: string, usage: string): [string, string] {
  const colon = text.indexOf(':');
  const name = colon === -1 ? '' : text.slice(0, colon).trim();
  if (name === '') throw new UsageError(`--header takes NAME:VALUE, not ${JSON.stringify(text)}`, usage);
  return [name, text.slice(colon + 1).trim()];
}

/** How a listening address goes into a URL: IPv6 in brackets. */
export function urlHost(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}
