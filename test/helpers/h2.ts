/**
 * HTTP/2 for the RFC 8441 tests, with node:http2 alone (no sockeye client):
 * a connection that waits for the server's SETTINGS, an extended CONNECT
 * stream, and a bare sockeye Session run over such a stream as a client.
 */
import * as http2 from 'node:http2';
import { Context } from '../../src/transport/context.js';
import type { Session } from '../../src/transport/session.js';
import { bareSession } from './bare-session.js';
import type { Handler } from '../../src/transport/types.js';
import { createDeflateRaw } from 'node:zlib';

/** Rejects after `ms` with `what` (every wait in these tests is bounded). */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)))]).finally(() => clearTimeout(timer));
}

/** Everything a test opens (servers, connections, contexts), closed at its end whatever happened, in reverse order. */
export class Scope {
  private readonly closers: Array<() => unknown> = [];
  add<T>(thing: T, close: (t: T) => unknown): T {
    this.closers.push(() => close(thing));
    return thing;
  }
  async close(): Promise<void> {
    for (const c of this.closers.reverse()) {
      try {
        await within(Promise.resolve(c()), 5000, 'closing a test resource');
      } catch {
        /* the next one still closes */
      }
    }
  }
}

/** An HTTP/2 connection, resolved once the server's SETTINGS have come (RFC 8441 section 3 needs them). */
export async function h2Connect(origin: string, options: http2.SecureClientSessionOptions = {}): Promise<{ session: http2.ClientHttp2Session; settings: http2.Settings }> {
  const session = http2.connect(origin, { rejectUnauthorized: false, ...options });
  session.on('error', () => undefined);
  try {
    const settings = await within(
      new Promise<http2.Settings>((resolve, reject) => {
        session.once('remoteSettings', resolve);
        session.once('error', reject);
        session.once('close', () => reject(new Error('connection closed before SETTINGS')));
      }),
      5000,
      'SETTINGS',
    );
    return { session, settings };
  } catch (err) {
    session.destroy();
    throw err;
  }
}

/** Opens an extended CONNECT stream (RFC 8441 section 5) and waits for its response headers. */
export async function openStream(session: http2.ClientHttp2Session, path: string, extra: http2.OutgoingHttpHeaders = {}, scheme = 'https'): Promise<{ stream: http2.ClientHttp2Stream; headers: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader }> {
  const stream = session.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': scheme, ':path': path, 'sec-websocket-version': '13', ...extra }, { endStream: false });
  stream.on('error', () => undefined);
  const [headers] = await within(
    new Promise<[http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader]>((resolve, reject) => {
      stream.once('response', (h) => resolve([h]));
      stream.once('close', () => reject(new Error(`stream closed without a response (rst ${stream.rstCode})`)));
    }),
    5000,
    'response headers',
  );
  return { stream, headers };
}

/** A sockeye client Session over `stream` (no handshake of its own: the stream is open). */
export function clientOver(stream: http2.ClientHttp2Stream, context: Context, handler: Handler<Session> = {}, inbox = !handler.onMessage): Session {
  return bareSession('client', stream, context, handler, { inbox });
}

/** A raw deflate message (RFC 7692 section 7.2.1: the trailing 00 00 ff ff removed) of `size` zeros. */
export async function deflatedZeros(size: number): Promise<Buffer> {
  const z = createDeflateRaw();
  const parts: Buffer[] = [];
  z.on('data', (b: Buffer) => parts.push(b));
  const done = new Promise((r) => z.on('end', r));
  const chunk = Buffer.alloc(1 << 20);
  for (let left = size; left > 0; left -= chunk.length) z.write(left >= chunk.length ? chunk : chunk.subarray(0, left));
  z.end();
  await done;
  const all = Buffer.concat(parts);
  return all;
}
