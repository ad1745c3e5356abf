/**
 * Static mounts (src/server/mounts.ts) served on a sockeye server's port
 * through onHttpRequest. Requests are written by hand on a raw TCP socket,
 * so the server sees exactly the bytes each test means (node's own HTTP
 * client would refuse or rewrite some of the hostile ones).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, connect, type WebSocketServer } from '../../src/index.js';
import { contentTypeFor, createMountHandler } from '../../src/server/mounts.js';
import { withTimeout } from '../helpers/ws-pair.js';

interface RawResponse {
  status: number;
  headers: Map<string, string>;
  body: Buffer;
}

/** Sends `head` (request line and headers, without the final blank line) and reads the answer until the server closes. */
function rawRequest(port: number, head: string | Buffer): Promise<RawResponse> {
  return withTimeout(
    new Promise<RawResponse>((resolve, reject) => {
      const socket = netConnect({ host: '127.0.0.1', port });
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('error', reject);
      socket.on('close', () => {
        const all = Buffer.concat(chunks);
        const end = all.indexOf('\r\n\r\n');
        if (end === -1) {
          reject(new Error(`no HTTP answer: ${JSON.stringify(all.toString('latin1'))}`));
          return;
        }
        const lines = all.subarray(0, end).toString('latin1').split('\r\n');
        const m = /^HTTP\/1\.1 (\d{3})/.exec(lines[0]);
        const headers = new Map<string, string>();
        for (const l of lines.slice(1)) {
          const colon = l.indexOf(':');
          headers.set(l.slice(0, colon).trim().toLowerCase(), l.slice(colon + 1).trim());
        }
        resolve({ status: m ? Number(m[1]) : 0, headers, body: all.subarray(end + 4) });
      });
      socket.write(Buffer.concat([typeof head === 'string' ? Buffer.from(head, 'latin1') : head, Buffer.from('\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')]));
    }),
    10_000,
    `an answer to ${JSON.stringify(head.toString())}`,
  );
}

function get(port: number, path: string, extra: Record<string, string> = {}, method = 'GET'): Promise<RawResponse> {
  let head = `${method} ${path} HTTP/1.1`;
  for (const [k, v] of Object.entries(extra)) head += `\r\n${k}: ${v}`;
  return rawRequest(port, head);
}

const SECRET = 'TOP-SECRET-OUTSIDE-THE-MOUNT';

describe('static mounts', () => {
  let base: string;
  let root: string;
  let server: WebSocketServer;
  let port: number;
  const big = Buffer.alloc(1024 * 1024 + 7, 'x');

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'sockeye-mounts-'));
    root = join(base, 'root');
    mkdirSync(root);
    mkdirSync(join(root, 'sub'));
    mkdirSync(join(root, 'empty-dir'));
    mkdirSync(join(base, 'outside'));
    mkdirSync(join(base, 'root-evil'));
    mkdirSync(join(base, 'assets'));
    writeFileSync(join(root, 'index.html'), '<h1>home</h1>');
    writeFileSync(join(root, 'app.js'), 'console.log(1)');
    writeFileSync(join(root, 'style.css'), 'body{}');
    writeFileSync(join(root, 'img.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47]));
    writeFileSync(join(root, 'icon.svg'), '<svg/>');
    writeFileSync(join(root, 'data.json'), '{}');
    writeFileSync(join(root, 'favicon.ico'), Buffer.from([0, 0, 1, 0]));
    writeFileSync(join(root, 'notes.txt'), 'notes');
    writeFileSync(join(root, 'blob.xyz'), 'blob');
    writeFileSync(join(root, 'empty.txt'), '');
    writeFileSync(join(root, 'big.txt'), big);
    writeFileSync(join(root, 'with space.txt'), 'spaced');
    writeFileSync(join(root, '.secret'), SECRET);
    writeFileSync(join(root, 'sub', 'index.html'), '<h1>sub</h1>');
    writeFileSync(join(root, 'sub', 'page.html'), '<h1>page</h1>');
    writeFileSync(join(base, 'outside', 'secret.txt'), SECRET);
    writeFileSync(join(base, 'root-evil', 'secret.txt'), SECRET);
    writeFileSync(join(base, 'assets', 'a.txt'), 'asset a');
    // Symlinks: two out of the mount (a file and a directory), one to a sibling whose name starts like the root, one that stays inside.
    symlinkSync(join(base, 'outside', 'secret.txt'), join(root, 'link-out.txt'));
    symlinkSync(join(base, 'outside'), join(root, 'dir-out'));
    symlinkSync('../root-evil/secret.txt', join(root, 'evil.txt'));
    symlinkSync('sub/page.html', join(root, 'link-in.html'));
    server = createServer({
      port: 0,
      onHttpRequest: createMountHandler([
        { mountpoint: '/', origin: root, defaultFile: 'index.html' },
        { mountpoint: '/assets/', origin: join(base, 'assets'), headers: { 'X-Mount': 'assets' } },
      ]),
      handler: { onMessage: (s, m) => void s.send(m.text) },
    });
    port = (await server.listen()).port;
  });

  after(async () => {
    await server.close();
    rmSync(base, { recursive: true, force: true });
  });

  it('serves the default file at / with type, length, ETag and Last-Modified', async () => {
    const r = await get(port, '/');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), '<h1>home</h1>');
    assert.equal(r.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(r.headers.get('content-length'), '13');
    assert.match(r.headers.get('etag') ?? '', /^"[0-9a-f]+-[0-9a-f]+"$/);
    assert.equal(r.headers.get('last-modified'), statSync(join(root, 'index.html')).mtime.toUTCString());
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  });

  it('answers each file with its content type', async () => {
    const expected: Array<[string, string]> = [
      ['/index.html', 'text/html; charset=utf-8'],
      ['/app.js', 'text/javascript; charset=utf-8'],
      ['/style.css', 'text/css; charset=utf-8'],
      ['/img.png', 'image/png'],
      ['/icon.svg', 'image/svg+xml'],
      ['/data.json', 'application/json'],
      ['/favicon.ico', 'image/x-icon'],
      ['/notes.txt', 'text/plain; charset=utf-8'],
      ['/blob.xyz', 'application/octet-stream'],
    ];
    for (const [path, type] of expected) {
      const r = await get(port, path);
      assert.equal(r.status, 200, path);
      assert.equal(r.headers.get('content-type'), type, path);
    }
    assert.equal(contentTypeFor('/x/Y.HTML'), 'text/html; charset=utf-8');
  });

  it('streams a large file whole, and an empty one', async () => {
    const r = await get(port, '/big.txt');
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-length'), String(big.length));
    assert.ok(r.body.equals(big));
    const e = await get(port, '/empty.txt');
    assert.equal(e.status, 200);
    assert.equal(e.headers.get('content-length'), '0');
    assert.equal(e.body.length, 0);
  });

  it('decodes percent-encoded names', async () => {
    const r = await get(port, '/with%20space.txt');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'spaced');
  });

  it('HEAD answers the same headers as GET and no body', async () => {
    const g = await get(port, '/app.js');
    const h = await get(port, '/app.js', {}, 'HEAD');
    assert.equal(h.status, 200);
    assert.equal(h.body.length, 0);
    for (const name of ['content-type', 'content-length', 'etag', 'last-modified']) assert.equal(h.headers.get(name), g.headers.get(name), name);
    const missing = await get(port, '/nope.js', {}, 'HEAD');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.length, 0);
  });

  it('answers 304 to a matching If-None-Match, 200 otherwise', async () => {
    const first = await get(port, '/style.css');
    const etag = first.headers.get('etag')!;
    for (const inm of [etag, `W/${etag}`, `"nope", ${etag}`, '*']) {
      const r = await get(port, '/style.css', { 'If-None-Match': inm });
      assert.equal(r.status, 304, inm);
      assert.equal(r.body.length, 0);
      assert.equal(r.headers.get('etag'), etag);
    }
    const other = await get(port, '/style.css', { 'If-None-Match': '"something-else"' });
    assert.equal(other.status, 200);
    assert.equal(other.body.toString(), 'body{}');
  });

  it('answers 304 to If-Modified-Since not older than the file, and If-None-Match takes precedence', async () => {
    const first = await get(port, '/notes.txt');
    const lm = first.headers.get('last-modified')!;
    assert.equal((await get(port, '/notes.txt', { 'If-Modified-Since': lm })).status, 304);
    assert.equal((await get(port, '/notes.txt', { 'If-Modified-Since': new Date(Date.parse(lm) + 3600_000).toUTCString() })).status, 304);
    const older = await get(port, '/notes.txt', { 'If-Modified-Since': new Date(Date.parse(lm) - 3600_000).toUTCString() });
    assert.equal(older.status, 200);
    assert.equal(older.body.toString(), 'notes');
    assert.equal((await get(port, '/notes.txt', { 'If-Modified-Since': 'not a date' })).status, 200);
    // RFC 9110 section 13.1.3: with If-None-Match present, If-Modified-Since is ignored.
    assert.equal((await get(port, '/notes.txt', { 'If-None-Match': '"other"', 'If-Modified-Since': lm })).status, 200);
  });

  it('answers 404 for missing files, dot-files and a file named as a directory', async () => {
    for (const path of ['/missing.html', '/sub/missing', '/.secret', '/index.html/', '/%2Esecret'.replace('%2E', '.')]) {
      const r = await get(port, path);
      assert.equal(r.status, 404, path);
      assert.ok(!r.body.includes(SECRET), path);
    }
  });

  it('answers 405 with Allow for methods other than GET and HEAD', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']) {
      const r = await get(port, '/index.html', method === 'GET' ? {} : { 'Content-Length': '0' }, method);
      assert.equal(r.status, 405, method);
      assert.equal(r.headers.get('allow'), 'GET, HEAD');
    }
  });

  it('refuses every way out of the mount: dot segments, encoded dots and slashes, backslashes, NUL', async () => {
    const hostile = [
      '/../outside/secret.txt',
      '/sub/../../outside/secret.txt',
      '/sub/../index.html',
      '/./index.html',
      '/%2e%2e/outside/secret.txt',
      '/%2E%2E/outside/secret.txt',
      '/.%2e/outside/secret.txt',
      '/sub/%2e%2e/%2e%2e/outside/secret.txt',
      '/..%2foutside%2fsecret.txt',
      '/%2foutside/secret.txt',
      '/..%5coutside%5csecret.txt',
      '/..\\outside\\secret.txt',
      '/sub\\..\\..\\outside\\secret.txt',
      '/index.html%00.png',
      '/%zz',
    ];
    for (const path of hostile) {
      const r = await get(port, path);
      assert.equal(r.status, 400, path);
      assert.ok(!r.body.includes(SECRET), path);
    }
    // Encoded twice: decoded once it is the literal name '%2e%2e', which does not exist.
    const twice = await get(port, '/%252e%252e/outside/secret.txt');
    assert.equal(twice.status, 404);
    // A raw NUL in the request line never reaches the handler: node's parser refuses it.
    const nul = await rawRequest(port, Buffer.from('GET /index.html\0.png HTTP/1.1', 'latin1'));
    assert.equal(nul.status, 400);
    // Absolute-form targets are for proxies.
    assert.equal((await get(port, 'http://127.0.0.1/index.html')).status, 400);
  });

  it('refuses symlinks whose real path is outside the mount, follows those that stay inside', async () => {
    for (const path of ['/link-out.txt', '/dir-out/secret.txt', '/dir-out/', '/evil.txt']) {
      const r = await get(port, path);
      assert.equal(r.status, 404, path);
      assert.ok(!r.body.includes(SECRET), path);
    }
    const inside = await get(port, '/link-in.html');
    assert.equal(inside.status, 200);
    assert.equal(inside.body.toString(), '<h1>page</h1>');
  });

  it('redirects a directory without its slash, to a local path only', async () => {
    const r = await get(port, '/sub?x=1');
    assert.equal(r.status, 301);
    assert.equal(r.headers.get('location'), '/sub/?x=1');
    // '//sub' must not become a Location of '//sub/' (a host, for a browser).
    const twoSlashes = await get(port, '//sub');
    assert.equal(twoSlashes.status, 301);
    assert.equal(twoSlashes.headers.get('location'), '/sub/');
    const dir = await get(port, '/sub/');
    assert.equal(dir.status, 200);
    assert.equal(dir.body.toString(), '<h1>sub</h1>');
    // No default file in that directory, and no listing.
    assert.equal((await get(port, '/empty-dir/')).status, 404);
  });

  it('picks the longest mountpoint; a mount without defaultFile lists nothing', async () => {
    const a = await get(port, '/assets/a.txt');
    assert.equal(a.status, 200);
    assert.equal(a.body.toString(), 'asset a');
    // The mount's own headers come with its files (and only its files).
    assert.equal(a.headers.get('x-mount'), 'assets');
    assert.equal((await get(port, '/assets/a.txt', { 'If-None-Match': a.headers.get('etag')! })).headers.get('x-mount'), 'assets');
    assert.equal((await get(port, '/notes.txt')).headers.get('x-mount'), undefined);
    const m = await get(port, '/assets');
    assert.equal(m.status, 301);
    assert.equal(m.headers.get('location'), '/assets/');
    assert.equal((await get(port, '/assets/')).status, 404);
    // The root mount's files are not reachable through /assets.
    assert.equal((await get(port, '/assets/index.html')).status, 404);
  });

  it('keeps WebSocket upgrades working on the same port', async () => {
    const c = await connect(`ws://127.0.0.1:${port}/index.html`);
    c.send('still a websocket');
    const m = await withTimeout(c.messages().next(), 5000, 'the echo');
    assert.equal(m.value?.text, 'still a websocket');
    c.close();
    assert.equal((await c.closed).wasClean, true);
  });
});

describe('createMountHandler arguments', () => {
  it('refuses bad mount definitions at once', () => {
    assert.throws(() => createMountHandler([]), TypeError);
    assert.throws(() => createMountHandler([{ mountpoint: 'x', origin: '.' }]), TypeError);
    assert.throws(() => createMountHandler([{ mountpoint: '/', origin: '.', defaultFile: '../x.html' }]), TypeError);
    assert.throws(() => createMountHandler([{ mountpoint: '/', origin: '.', defaultFile: '.hidden' }]), TypeError);
  });

  it('answers 404 when the origin directory does not exist', async () => {
    const server = createServer({ port: 0, onHttpRequest: createMountHandler([{ mountpoint: '/', origin: join(tmpdir(), 'sockeye-no-such-dir-' + process.pid), defaultFile: 'index.html' }]) });
    const { port } = await server.listen();
    try {
      assert.equal((await get(port, '/')).status, 404);
      assert.equal((await get(port, '/a.txt')).status, 404);
    } finally {
      await server.close();
    }
  });
});
