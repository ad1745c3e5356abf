// In-process tests of the CLI's argument helpers and of run() with a fake
// stdio (the spawned end-to-end tests are in cli.test.ts).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { parseByteSize, parseHeader, parsePort, urlHost, withUsage } from '../../src/cli/args.js';
import { UsageError, type CliIo } from '../../src/cli/cli-io.js';
import { formatMessage, lineToMessage } from '../../src/cli/connect.js';
import { run } from '../../src/cli/run.js';

function fakeIo(env: Record<string, string> = {}): { io: CliIo; out: () => string; err: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
  const io: CliIo = { stdin: new PassThrough(), stdout, stderr, env, onSignal: () => () => undefined };
  return { io, out: () => out, err: () => err };
}

describe('parsePort', () => {
  it('takes 0-65535 in decimal digits', () => {
    assert.equal(parsePort('0', '--port', 'u'), 0);
    assert.equal(parsePort('7681', '--port', 'u'), 7681);
    assert.equal(parsePort('65535', '--port', 'u'), 65535);
  });
  it('refuses anything else with a UsageError naming the source', () => {
    for (const bad of ['', '-1', '65536', '99999', '1e3', '0x10', ' 80', '80 ', '8.0', 'http', '123456']) {
      assert.throws(() => parsePort(bad, 'the PORT environment variable', 'USAGE'), (e: unknown) => {
        assert.ok(e instanceof UsageError);
        assert.equal(e.usage, 'USAGE');
        assert.match(e.message, /^the PORT environment variable must be a port number/);
        return true;
      }, JSON.stringify(bad));
    }
  });
});

describe('parseByteSize', () => {
  it('takes whole bytes, or K, M, G (KiB, MiB, GiB, any case) as powers of 1024', () => {
    const cases: Array<[string, number]> = [
      ['1', 1],
      ['1024', 1024],
      ['512K', 512 * 1024],
      ['512k', 512 * 1024],
      ['512KiB', 512 * 1024],
      ['16M', 16 * 1024 * 1024],
      ['16MiB', 16 * 1024 * 1024],
      ['64mib', 64 * 1024 * 1024],
      ['2G', 2 * 1024 ** 3],
      ['1GiB', 1024 ** 3],
      ['0040M', 40 * 1024 * 1024],
    ];
    for (const [text, n] of cases) assert.equal(parseByteSize(text, '--max-queued', 'u'), n, text);
  });
  it('refuses anything else with a UsageError naming the option: zero, signs, fractions, spaces, decimal units, unknown suffixes, too large', () => {
    for (const bad of ['', '0', '0K', '-1', '+1', '1.5M', '1e6', '0x10', ' 1', '1 ', '16 M', '16MB', '16mb', '1T', 'M', 'K16', '16Mi', 'lots', '9007199254740993', '99999999999G']) {
      assert.throws(() => parseByteSize(bad, '--max-message', 'USAGE'), (e: unknown) => {
        assert.ok(e instanceof UsageError);
        assert.equal(e.usage, 'USAGE');
        assert.match(e.message, /^--max-message takes a size in bytes/);
        assert.ok(e.message.includes(JSON.stringify(bad)), e.message);
        return true;
      }, JSON.stringify(bad));
    }
  });
});

describe('parseHeader', () => {
  it('splits at the first colon and trims', () => {
    assert.deepEqual(parseHeader('X-Token: abc', 'u'), ['X-Token', 'abc']);
    assert.deepEqual(parseHeader(' Authorization :Bearer a:b ', 'u'), ['Authorization', 'Bearer a:b']);
    assert.deepEqual(parseHeader('X-Empty:', 'u'), ['X-Empty', '']);
  });
  it('refuses a field without a name or a colon', () => {
    for (const bad of ['novalue', ': value', '', '   :x']) {
      assert.throws(() => parseHeader(bad, 'u'), UsageError, JSON.stringify(bad));
    }
  });
});

describe('withUsage', () => {
  it('turns parseArgs errors into UsageErrors and lets others through', () => {
    const parseErr = Object.assign(new TypeError("Unknown option '--x'"), { code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' });
    assert.throws(() => withUsage(() => { throw parseErr; }, 'U'), (e: unknown) => e instanceof UsageError && e.usage === 'U' && e.message === parseErr.message);
    const other = new RangeError('boom');
    assert.throws(() => withUsage(() => { throw other; }, 'U'), (e: unknown) => e === other);
    assert.equal(withUsage(() => 42, 'U'), 42);
  });
});

describe('urlHost', () => {
  it('brackets IPv6 addresses only', () => {
    assert.equal(urlHost('127.0.0.1'), '127.0.0.1');
    assert.equal(urlHost('::1'), '[::1]');
    assert.equal(urlHost('::'), '[::]');
  });
});

describe('formatMessage', () => {
  const msg = (binary: boolean, data: Buffer) => ({ binary, data, text: data.toString('utf8') });
  it('prints text as it is, one line', () => {
    assert.equal(formatMessage(msg(false, Buffer.from('héllo'))), 'héllo\n');
    assert.equal(formatMessage(msg(false, Buffer.alloc(0))), '\n');
  });
  it('prints binary as <binary N bytes: HEX> with at most 32 bytes of hex', () => {
    assert.equal(formatMessage(msg(true, Buffer.from([1, 2, 0xff]))), '<binary 3 bytes: 0102ff>\n');
    assert.equal(formatMessage(msg(true, Buffer.from([9]))), '<binary 1 byte: 09>\n');
    assert.equal(formatMessage(msg(true, Buffer.alloc(0))), '<binary 0 bytes: >\n');
    assert.equal(formatMessage(msg(true, Buffer.alloc(32, 0x11))), `<binary 32 bytes: ${'11'.repeat(32)}>\n`);
    const big = Buffer.alloc(1000, 0x22);
    assert.equal(formatMessage(msg(true, big)), `<binary 1000 bytes: ${'22'.repeat(32)}...>\n`);
  });
  it('--output prints a binary message whole, in hex or base64, as --binary reads it back; text is unchanged', () => {
    const big = Buffer.alloc(1000, 0x22);
    assert.equal(formatMessage(msg(true, big), 'hex'), '22'.repeat(1000) + '\n');
    assert.equal(formatMessage(msg(true, Buffer.from([0, 0xff, 0x10])), 'base64'), 'AP8Q\n');
    assert.equal(formatMessage(msg(false, Buffer.from('plain')), 'hex'), 'plain\n');
    assert.deepEqual(lineToMessage(formatMessage(msg(true, big), 'base64').trimEnd(), 'base64', false), big);
  });
  it('text that merely looks like the binary form stays text', () => {
    // Ambiguity is the price of printing text raw; only the type decides.
    assert.equal(formatMessage(msg(false, Buffer.from('<binary 1 byte: 00>'))), '<binary 1 byte: 00>\n');
  });
});

describe('run', () => {
  it('--version prints the package version', async () => {
    const f = fakeIo();
    assert.equal(await run(['--version'], f.io), 0);
    assert.match(f.out(), /^sockeye \d+\.\d+\.\d+\n$/);
  });
  it('help with an unknown topic is a usage error', async () => {
    const f = fakeIo();
    assert.equal(await run(['help', 'nope'], f.io), 2);
    assert.match(f.err(), /^sockeye: no command "nope"\n\nUsage: sockeye <command>/);
    assert.equal(f.out(), '');
  });
  it('an option before the command is a usage error', async () => {
    const f = fakeIo();
    assert.equal(await run(['--port', '1', 'serve'], f.io), 2);
    assert.match(f.err(), /unknown option "--port"/);
  });
  it('serve reports a port it cannot bind with exit 1', async () => {
    // Bind a port in this process, then ask serve for the same one.
    const first = fakeIo();
    let stop!: (sig: 'SIGINT' | 'SIGTERM') => void;
    first.io.onSignal = (h) => {
      stop = h;
      return () => undefined;
    };
    const running = run(['serve', '--port', '0'], first.io);
    const deadline = Date.now() + 10_000;
    while (!/listening/.test(first.out()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const port = /:(\d+)\/\n$/.exec(first.out())?.[1];
    assert.ok(port, first.out() + first.err());
    const second = fakeIo();
    assert.equal(await run(['serve', '--port', port], second.io), 1);
    assert.match(second.err(), /cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
    stop('SIGTERM');
    assert.equal(await running, 0);
  });
});
