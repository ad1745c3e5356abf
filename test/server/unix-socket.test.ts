/**
 * Unix domain sockets: a server listening on a path (its file's mode, a
 * stale file replaced, a live one or a plain file left alone), the native
 * client through ws+unix:// and socketPath, sockeye/ws's client, and the
 * CLI's --unix on both sides.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, TransportError, InvalidArgumentError, InvalidStateError, type ServerSession } from '../../src/index.js';
import { WebSocket as WsWebSocket } from '../../src/compat/ws/index.js';
import { cli, reap, within } from '../helpers/cli-child.js';

/** A private directory for socket files, and its removal. */
function tempDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'sockeye-unix-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

function echoServer(sessions: ServerSession[] = []) {
  return createServer({
    keepalive: null,
    handler: {
      onOpen: (s) => void sessions.push(s),
      onMessage: (s, m) => void s.send(m.data, { binary: m.binary }),
    },
  });
}

describe('unix domain sockets', { concurrency: 2 }, () => {
  it('listen({ path, mode }); a ws+unix:// client gets its request path and query, a round trip and a clean close; the file goes with the server', async () => {
    const t = tempDir();
    const path = join(t.dir, 'app.sock');
    const sessions: ServerSession[] = [];
    const server = echoServer(sessions);
    try {
      assert.deepEqual(await server.listen({ path, mode: 0o600 }), { path });
      assert.equal(server.socketPath, path);
      assert.equal(statSync(path).isSocket(), true);
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.throws(() => server.address(), (e: unknown) => e instanceof InvalidStateError && /unix socket/.test(e.message));
      const client = await connect(`ws+unix://${path}:/chat?room=1`, { keepalive: null });
      assert.equal(sessions[0].request.url, '/chat?room=1');
      assert.equal(sessions[0].request.host, 'localhost');
      client.send('over a unix socket');
      const got = await within(client.messages().next(), 'the echo');
      assert.equal(got.value?.text, 'over a unix socket');
      client.close(1000, 'done');
      const info = await within(client.closed, 'close');
      assert.deepEqual([info.code, info.wasClean], [1000, true]);
      // Without a request path, the request is for '/'.
      const bare = await connect(`ws+unix://${path}`, { keepalive: null });
      assert.equal(sessions[1].request.url, '/');
      bare.close();
      await within(bare.closed, 'close');
    } finally {
      await server.close();
      t.remove();
    }
    assert.equal(existsSync(path), false, 'the socket file is removed on close');
  });

  it('socketPath: a ws:// URL over a unix socket keeps its Host and path', async () => {
    const t = tempDir();
    const path = join(t.dir, 'side.sock');
    const sessions: ServerSession[] = [];
    const server = echoServer(sessions);
    try {
      await server.listen({ path });
      const client = await connect('ws://api.internal:8080/v1/feed', { socketPath: path, keepalive: null });
      assert.equal(sessions[0].request.host, 'api.internal:8080');
      assert.equal(sessions[0].request.url, '/v1/feed');
      client.close();
      await within(client.closed, 'close');
      await assert.rejects(connect('ws://localhost/', { socketPath: join(t.dir, 'none.sock') }), (e: unknown) => e instanceof TransportError && /no unix socket at that path/.test(e.message));
      await assert.rejects(connect('ws://localhost/', { socketPath: '' }), InvalidArgumentError);
      await assert.rejects(connect('ws+unix://host/x.sock'), (e: unknown) => e instanceof InvalidArgumentError && /names a socket file, not a host/.test(e.message));
    } finally {
      await server.close();
      t.remove();
    }
  });

  it('a stale socket file (its server killed) is replaced; a live one and a plain file are left alone', async () => {
    const t = tempDir();
    try {
      // A server killed with SIGKILL leaves its socket file behind.
      const stale = join(t.dir, 'stale.sock');
      const child = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(stale)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
      await within(new Promise((r) => child.stdout!.once('data', r)), 'the child to listen');
      await new Promise<void>((r) => {
        child.once('exit', () => r());
        child.kill('SIGKILL');
      });
      assert.equal(statSync(stale).isSocket(), true, 'the killed server left its file');
      const server = echoServer();
      await server.listen({ path: stale });
      const client = await connect(`ws+unix://${stale}:/`, { keepalive: null });
      // Another server on the same path: refused, and the first one keeps serving.
      const second = echoServer();
      await assert.rejects(second.listen({ path: stale }), (e: unknown) => e instanceof TransportError && e.code === 'ERR_LISTEN' && /EADDRINUSE/.test(e.message));
      client.send('still here');
      assert.equal((await within(client.messages().next(), 'the echo')).value?.text, 'still here');
      client.close();
      await within(client.closed, 'close');
      await server.close();
      await second.close();
      // A file that is not a socket is never removed.
      const plain = join(t.dir, 'notes.txt');
      writeFileSync(plain, 'keep me');
      const third = echoServer();
      await assert.rejects(third.listen({ path: plain }), (e: unknown) => e instanceof TransportError && /not a socket/.test(e.message));
      assert.equal(readFileSync(plain, 'utf8'), 'keep me');
      await third.close();
      await assert.rejects(echoServer().listen({ path: '' }), InvalidArgumentError);
      await assert.rejects(echoServer().listen({ path: join(t.dir, 'm.sock'), mode: 0o1777 }), InvalidArgumentError);
    } finally {
      t.remove();
    }
  });

  it("sockeye/ws's client connects with ws+unix: as ws's does", async () => {
    const t = tempDir();
    const path = join(t.dir, 'ws.sock');
    const server = echoServer();
    try {
      await server.listen({ path });
      const ws = new WsWebSocket(`ws+unix://${path}:/ws`);
      const echoed = await within(
        new Promise<string>((resolve, reject) => {
          ws.on('open', () => ws.send('from sockeye/ws'));
          ws.on('message', (data: Buffer) => resolve(data.toString()));
          ws.on('error', reject);
        }),
        'the echo',
      );
      assert.equal(echoed, 'from sockeye/ws');
      const closed = new Promise<number>((resolve) => ws.on('close', (code: number) => resolve(code)));
      ws.close(1000);
      assert.equal(await within(closed, 'close'), 1000);
    } finally {
      await server.close();
      t.remove();
    }
  });

  it('the CLI: listen --unix PATH and connect --unix PATH (and a ws+unix URL) exchange messages and close cleanly', async () => {
    const t = tempDir();
    const path = join(t.dir, 'cli.sock');
    const l = cli(['listen', '--unix', path], { stdin: null });
    try {
      await l.waitFor(new RegExp(`^sockeye: listening on ws\\+unix://${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:/$`, 'm'));
      const c = cli(['connect', '--unix', path, 'ws://localhost/'], { stdin: null });
      try {
        await l.waitFor(/client 1 connected/, 'stderr');
        c.child.stdin.write('from connect\n');
        await l.waitFor(/^from connect$/m);
        l.child.stdin.write('from listen\n');
        await c.waitFor(/^from listen$/m);
        c.child.stdin.end();
        assert.equal(await c.exited(), 0, c.stderr());
      } finally {
        reap(c);
      }
      const u = cli(['connect', `ws+unix://${path}:/`], { stdin: 'by URL\n' });
      try {
        assert.equal(await u.exited(), 0, u.stderr());
        await l.waitFor(/^by URL$/m);
      } finally {
        reap(u);
      }
      l.child.kill('SIGTERM');
      assert.equal(await l.exited(), 0, l.stderr());
      assert.equal(existsSync(path), false);
      const both = cli(['listen', '--unix', path, '--port', '0']);
      assert.equal(await both.exited(), 2);
      assert.match(both.stderr(), /--unix or --port\/--host, not both/);
    } finally {
      reap(l);
      t.remove();
    }
  });
});
