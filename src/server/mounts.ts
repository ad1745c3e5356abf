import { open, realpath, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';

/** A request over HTTP/1.1 (node:http) or HTTP/2 (node:http2's compatibility API): the members used here are the same. */
type AnyRequest = IncomingMessage | Http2ServerRequest;
type AnyResponse = ServerResponse | Http2ServerResponse;
import { extname, join, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream';

/**
 * A static mount (libwebsockets' name for a URL prefix served from a
 * directory): GET and HEAD of files under `origin` at URLs under
 * `mountpoint`.
 */
export interface Mount {
  /** URL path prefix, e.g. '/' or '/assets'. A trailing slash is ignored. */
  mountpoint: string;
  /** Directory the files come from. Symlinks inside it are followed only while they stay inside it. */
  origin: string;
  /** File served for the mount's directories (e.g. 'index.html'). Without it a directory is 404: there is no listing. */
  defaultFile?: string;
  /** Extra headers on every successful answer (e.g. a Content-Security-Policy). */
  headers?: Record<string, string>;
}

export interface MountHandlerOptions {
  /** Unexpected errors (not "no such file"): default printed to stderr. The client gets a 500. */
  onError?: (error: unknown, req: AnyRequest) => void;
}

/** What node:http's request listener and ServerOptions.onHttpRequest take (over HTTP/1.1 and HTTP/2 alike). */
export type HttpRequestHandler = (req: AnyRequest, res: AnyResponse) => void;

/** Content types by extension; anything else is application/octet-stream. */
export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
};

export function contentTypeFor(file: string): string {
  return CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
}

interface PreparedMount {
  /** Without a trailing slash; '' for the root mount. */
  prefix: string;
  origin: string;
  defaultFile: string | undefined;
  headers: Record<string, string>;
}

/** Why a request is answered the way it is (an HTTP status and a short text). */
class Refusal {
  constructor(
    readonly status: number,
    readonly message: string,
    readonly headers: Record<string, string> = {},
  ) {}
}

const NOT_FOUND = new Refusal(404, 'not found');

/**
 * Percent-encodings that could smuggle a path separator or a dot segment
 * past the checks below (%2e '.', %2f '/', %5c '\', %00 NUL). A browser
 * never needs to encode them in a path, so a request that does is refused
 * outright (400) instead of being decoded and re-checked.
 */
const FORBIDDEN_ENCODINGS = /%(2e|2f|5c|00)/i;

/**
 * Builds an onHttpRequest handler (see ServerOptions.onHttpRequest) that
 * serves static files from mounts. The longest matching mountpoint wins.
 *
 * Answers: 200 (GET and HEAD, with Content-Type, Content-Length, ETag and
 * Last-Modified), 304 for a matching If-None-Match or, without one, an
 * If-Modified-Since not older than the file (RFC 9110 section 13.1), 301 to
 * add the slash to a directory's URL, 400 for a path that tries to leave
 * its mount, 404, 405 (with Allow) for other methods.
 *
 * No way out of a mount: `..` and `.` segments, backslashes, NUL and the
 * encodings above are refused before the file system is touched; the file
 * found is resolved with realpath() (all symlinks followed) and refused
 * (404, as if absent) unless its real path is inside the mount's real
 * origin. Dot-files (a segment starting with '.') are not served either.
 * A symlink swapped between the check and the open() is outside this
 * model: whoever can write into the origin can publish anything anyway.
 */
export function createMountHandler(mounts: readonly Mount[], options: MountHandlerOptions = {}): HttpRequestHandler {
  if (mounts.length === 0) throw new TypeError('createMountHandler needs at least one mount');
  const prepared: PreparedMount[] = mounts
    .map((m) => {
      if (!m.mountpoint.startsWith('/')) throw new TypeError(`a mountpoint starts with '/': ${JSON.stringify(m.mountpoint)}`);
      if (m.defaultFile !== undefined && (m.defaultFile === '' || /[/\\\0]/.test(m.defaultFile) || m.defaultFile.startsWith('.'))) {
        throw new TypeError(`defaultFile is a plain file name: ${JSON.stringify(m.defaultFile)}`);
      }
      return { prefix: m.mountpoint.replace(/\/+$/, ''), origin: resolve(m.origin), defaultFile: m.defaultFile, headers: m.headers ?? {} };
    })
    // Longest prefix first, so '/assets' is tried before '/'.
    .sort((a, b) => b.prefix.length - a.prefix.length);
  const onError = options.onError ?? ((err: unknown) => console.error('sockeye mounts:', err));

  return (req, res) => {
    serve(prepared, req, res).catch((err: unknown) => {
      // A file that went away between the checks and the open is simply not found.
      const gone = NOT_FOUND_CODES.has((err as NodeJS.ErrnoException).code ?? '');
      if (!gone) onError(err, req);
      if (!res.headersSent) answer(req, res, gone ? NOT_FOUND : new Refusal(500, 'internal error'));
      else res.destroy();
    });
  };
}

async function serve(mounts: readonly PreparedMount[], req: AnyRequest, res: AnyResponse): Promise<void> {
  const method = req.method ?? '';
  if (method !== 'GET' && method !== 'HEAD') {
    answer(req, res, new Refusal(405, 'method not allowed', { Allow: 'GET, HEAD' }));
    return;
  }
  const target = parseTarget(req.url ?? '');
  if (target instanceof Refusal) {
    answer(req, res, target);
    return;
  }
  const { segments, trailingSlash, query } = target;
  const path = '/' + segments.join('/');
  const mount = mounts.find((m) => m.prefix === '' || path === m.prefix || path.startsWith(m.prefix + '/'));
  if (!mount) {
    answer(req, res, NOT_FOUND);
    return;
  }
  const prefixSegments = mount.prefix === '' ? 0 : mount.prefix.split('/').length - 1;
  const rel = segments.slice(prefixSegments);
  // Dot-files (.git, .env, ...) stay private even inside the origin.
  if (rel.some((s) => s.startsWith('.'))) {
    answer(req, res, NOT_FOUND);
    return;
  }

  const realRoot = await realpathOrNull(mount.origin);
  if (realRoot === null) {
    answer(req, res, NOT_FOUND);
    return;
  }
  let file = await inside(realRoot, join(mount.origin, ...rel));
  if (file === null) {
    answer(req, res, NOT_FOUND);
    return;
  }
  let info = await stat(file);
  if (info.isDirectory()) {
    if (!trailingSlash) {
      // A directory's relative links only work under its URL with the slash. The Location is rebuilt from the checked segments, so it can never point off-site ('//host').
      answer(req, res, new Refusal(301, 'moved', { Location: path + '/' + query }));
      return;
    }
    if (mount.defaultFile === undefined) {
      answer(req, res, NOT_FOUND);
      return;
    }
    file = await inside(realRoot, join(file, mount.defaultFile));
    if (file === null) {
      answer(req, res, NOT_FOUND);
      return;
    }
    info = await stat(file);
  } else if (trailingSlash) {
    // '/index.html/' names a directory that does not exist.
    answer(req, res, NOT_FOUND);
    return;
  }
  if (!info.isFile()) {
    answer(req, res, NOT_FOUND);
    return;
  }

  const handle = await open(file, 'r');
  let handedOver = false;
  try {
    // Size and date from the opened file itself, so headers and body agree.
    const st = await handle.stat();
    if (!st.isFile()) {
      answer(req, res, NOT_FOUND);
      return;
    }
    const etag = `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
    const headers: Record<string, string> = {
      ...mount.headers,
      ETag: etag,
      'Last-Modified': st.mtime.toUTCString(),
      // Revalidate every time (a 304 is cheap): the demo page must never be stale after an edit.
      'Cache-Control': 'no-cache',
      'X-Content-Type-Options': 'nosniff',
    };
    if (notModified(req, etag, st.mtimeMs)) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    headers['Content-Type'] = contentTypeFor(file);
    headers['Content-Length'] = String(st.size);
    res.writeHead(200, headers);
    if (method === 'HEAD') {
      res.end();
      return;
    }
    if (st.size === 0) {
      res.end();
      return;
    }
    handedOver = true;
    // The stream owns the handle now and closes it at its end (autoClose); at most the size announced is read.
    pipeline(handle.createReadStream({ start: 0, end: st.size - 1 }), res, () => undefined);
  } finally {
    if (!handedOver) await handle.close();
  }
}

interface Target {
  /** Decoded, non-empty path segments. */
  segments: string[];
  trailingSlash: boolean;
  /** '?...' as sent, or ''. */
  query: string;
}

/** Splits and checks a request-target; every way out of a mount is refused here. */
function parseTarget(url: string): Target | Refusal {
  // Only origin-form ('/path?query', RFC 9112 section 3.2.1): absolute-form is for proxies.
  if (!url.startsWith('/')) return new Refusal(400, 'bad request target');
  const q = url.indexOf('?');
  const rawPath = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? '' : url.slice(q);
  if (rawPath.includes('\\') || rawPath.includes('\0') || FORBIDDEN_ENCODINGS.test(rawPath)) return new Refusal(400, 'bad path');
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    return new Refusal(400, 'bad percent-encoding');
  }
  // Decoding once cannot produce '/', '\', '.' or NUL (their encodings were refused above); checked again all the same.
  if (decoded.includes('\\') || decoded.includes('\0')) return new Refusal(400, 'bad path');
  const parts = decoded.split('/');
  if (parts.some((p) => p === '..' || p === '.')) return new Refusal(400, 'dot segments are not allowed');
  return { segments: parts.filter((p) => p !== ''), trailingSlash: decoded.endsWith('/'), query };
}

/** The real path of `candidate` if it exists and stays inside `realRoot`, else null. */
async function inside(realRoot: string, candidate: string): Promise<string | null> {
  const real = await realpathOrNull(candidate);
  if (real === null) return null;
  if (real !== realRoot && !real.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep)) return null;
  return real;
}

/** File-system errors that mean "nothing to serve here". */
const NOT_FOUND_CODES = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'ENAMETOOLONG', 'EACCES', 'EISDIR']);

async function realpathOrNull(p: string): Promise<string | null> {
  try {
    return await realpath(p);
  } catch (err) {
    if (NOT_FOUND_CODES.has((err as NodeJS.ErrnoException).code ?? '')) return null;
    throw err;
  }
}

/**
 * RFC 9110 section 13.1.2: If-None-Match (weak comparison) decides when
 * present; only without it does If-Modified-Since (section 13.1.3) count,
 * at the one-second resolution of HTTP dates.
 */
function notModified(req: AnyRequest, etag: string, mtimeMs: number): boolean {
  const inm = req.headers['if-none-match'];
  if (inm !== undefined) {
    const tags = inm.split(',').map((t) => t.trim());
    const opaque = etag.replace(/^W\//, '');
    return tags.some((t) => t === '*' || t.replace(/^W\//, '') === opaque);
  }
  const ims = req.headers['if-modified-since'];
  if (ims !== undefined) {
    const since = Date.parse(ims);
    if (Number.isNaN(since)) return false;
    return Math.floor(mtimeMs / 1000) * 1000 <= since;
  }
  return false;
}

function answer(req: AnyRequest, res: AnyResponse, r: Refusal): void {
  const body = `${r.status} ${r.message}\n`;
  res.writeHead(r.status, {
    ...r.headers,
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    'X-Content-Type-Options': 'nosniff',
  });
  if (req.method === 'HEAD') res.end();
  else res.end(body);
}
