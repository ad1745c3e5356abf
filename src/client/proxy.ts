/**
 * The client through a proxy: which proxy (the `proxy` option, else the
 * environment read as curl reads it), and opening a tunnel through it to the
 * target, by HTTP CONNECT (RFC 9110 section 9.3.6) over http:// or https://,
 * or by SOCKS5 (RFC 1928, with RFC 1929 username/password authentication).
 *
 * Credentials are kept apart (SECURITY.md, "Proxies"): the proxy URL's
 * username and password go only to the proxy (Proxy-Authorization, or the
 * RFC 1929 exchange) and never into a message; nothing of the target's
 * request (its headers, the WebSocket URL's userinfo) goes to the proxy
 * outside the tunnel: a CONNECT request carries the target's authority, Host
 * and Proxy-Authorization, nothing else.
 */
import { lookup } from 'node:dns/promises';
import { BlockList, connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { HandshakeError, InvalidArgumentError, TimeoutError, TransportError, WebSocketError } from '../core/errors.js';
import { HttpHeadParser } from '../core/http-head.js';
import type { Context } from '../transport/context.js';
import { setNoDelay } from '../transport/stream-adapter.js';

/** How a proxy is spoken to: its URL's scheme. */
export type ProxyProtocol = 'http' | 'https' | 'socks5' | 'socks5h';

/** A proxy to dial through, parsed from its URL. */
export interface ProxyConfig {
  protocol: ProxyProtocol;
  /** Host name or IP address (an IPv6 address without brackets). */
  host: string;
  port: number;
  /** Percent-decoded; '' when the URL has none. */
  username: string;
  password: string;
  /** scheme://host:port, without the credentials: what messages name. */
  display: string;
  /** Where it was found: 'the proxy option' or the environment variable's name. */
  source: string;
}

/** The environment to read: process.env in connect(), a plain object in tests. */
export type ProxyEnv = Readonly<Record<string, string | undefined>>;

/** What selectProxy() needs to know of the WebSocket URL (connect()'s Target has it). */
export interface ProxyTarget {
  secure: boolean;
  host: string;
  port: number;
  socketPath?: string;
}

/** curl's default proxy port (CURL_DEFAULT_PROXY_PORT) for a proxy URL without one, 443 for https:// (lib/url.c, parse_proxy). */
const DEFAULT_PROXY_PORT = 1080;
const DEFAULT_HTTPS_PROXY_PORT = 443;

/**
 * The proxy for `target`: `option` when given (a URL; false or '' for none),
 * else the environment. A unix-socket target never goes through a proxy
 * (curl does not mix them either). Throws InvalidArgumentError ERR_BAD_PROXY
 * for a proxy URL that cannot be used, naming where it came from.
 */
export function selectProxy(target: ProxyTarget, option: string | URL | false | undefined, env: ProxyEnv): ProxyConfig | null {
  if (option !== undefined && option !== false && typeof option !== 'string' && !(option instanceof URL)) {
    throw new InvalidArgumentError('ERR_BAD_PROXY', `the proxy option must be a URL (string or URL) or false, not ${typeof option}`);
  }
  if (target.socketPath !== undefined) return null;
  // An explicit empty proxy means none, as curl's CURLOPT_PROXY "" does.
  if (option === false || option === '') return null;
  if (option !== undefined) return parseProxyUrl(option, 'the proxy option');
  return proxyFromEnv(target, env);
}

/**
 * The proxy the environment names for `target`, the way curl reads it
 * (libcurl-env(3), "[scheme]_proxy", "ALL_PROXY", "NO_PROXY"; lib/url.c,
 * detect_proxy and create_conn_helper_init_proxy):
 * - no_proxy, else NO_PROXY, lists the hosts that go direct (noProxyMatches);
 * - wss:// reads wss_proxy, WSS_PROXY, then https_proxy, HTTPS_PROXY;
 * - ws:// reads ws_proxy, WS_PROXY, then http_proxy, in lower case only:
 *   curl never reads HTTP_PROXY, which a CGI program gets from a request's
 *   "Proxy:" header (the "httpoxy" attack);
 * - then all_proxy, ALL_PROXY.
 * A variable set to the empty string counts as unset (curl_getenv).
 */
export function proxyFromEnv(target: ProxyTarget, env: ProxyEnv): ProxyConfig | null {
  if (target.socketPath !== undefined) return null;
  const get = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value === '' ? undefined : value;
  };
  const noProxy = get('no_proxy') ?? get('NO_PROXY');
  if (noProxy !== undefined && noProxyMatches(noProxy, target.host, target.port)) return null;
  const names = target.secure
    ? ['wss_proxy', 'WSS_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY']
    : ['ws_proxy', 'WS_PROXY', 'http_proxy', 'all_proxy', 'ALL_PROXY'];
  for (const name of names) {
    const value = get(name);
    if (value !== undefined) return parseProxyUrl(value, `the environment variable ${name}`);
  }
  return null;
}

/**
 * Whether a NO_PROXY list excludes `host` (as written in the URL, never
 * resolved) on `port`. curl's rules (CURLOPT_NOPROXY(3); lib/noproxy.c):
 * entries are separated by commas and blanks; "*" alone matches every host;
 * a name matches itself and every name below it (a leading dot and trailing
 * dots are ignored: "example.com" and ".example.com" both match
 * example.com and www.example.com, never notexample.com), without regard to
 * case; an IP address target matches only IP entries, IPv6 ones written
 * without brackets, with an optional CIDR prefix ("10.0.0.0/8", "::1/128").
 * One addition, as Go's net/http reads NO_PROXY: an entry with a port
 * ("host:8080", "[::1]:8080") matches only that port; curl would never match
 * such an entry.
 */
export function noProxyMatches(list: string, host: string, port: number): boolean {
  if (list.trim() === '*') return true;
  const family = isIP(host);
  let name = host.toLowerCase();
  if (family === 0 && name.endsWith('.')) name = name.slice(0, -1);
  if (name === '') return false;
  for (const entry of list.split(/[\s,]+/)) {
    if (entry === '') continue;
    const { pattern, entryPort } = splitEntryPort(entry);
    if (entryPort !== undefined && entryPort !== port) continue;
    if (family === 0 ? hostMatches(name, pattern) : ipMatches(host, family, pattern)) return true;
  }
  return false;
}

function splitEntryPort(entry: string): { pattern: string; entryPort: number | undefined } {
  const bracketed = /^\[([^\]]*)\](?::(\d{1,5}))?$/.exec(entry);
  if (bracketed) return { pattern: bracketed[1], entryPort: bracketed[2] === undefined ? undefined : Number(bracketed[2]) };
  // One colon followed by digits is a port; more colons make a bare IPv6 address (curl's form).
  const withPort = /^([^:]*):(\d{1,5})$/.exec(entry);
  if (withPort) return { pattern: withPort[1], entryPort: Number(withPort[2]) };
  return { pattern: entry, entryPort: undefined };
}

function hostMatches(name: string, pattern: string): boolean {
  let p = pattern.toLowerCase();
  if (p.endsWith('.')) p = p.slice(0, -1);
  if (p.startsWith('.')) p = p.slice(1);
  if (p === '') return false;
  return name === p || (name.length > p.length && name.endsWith(p) && name[name.length - p.length - 1] === '.');
}

function ipMatches(host: string, family: number, pattern: string): boolean {
  const slash = pattern.indexOf('/');
  const address = slash === -1 ? pattern : pattern.slice(0, slash);
  if (isIP(address) !== family) return false;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  const list = new BlockList();
  if (slash === -1) {
    list.addAddress(address, type);
  } else {
    const bits = Number(pattern.slice(slash + 1));
    if (!Number.isInteger(bits) || bits < 0 || bits > (family === 4 ? 32 : 128) || pattern.slice(slash + 1) === '') return false;
    list.addSubnet(address, bits, type);
  }
  return list.check(host, type);
}

/** The input with whatever stands before its last "@" in the authority replaced, for messages: a password never appears. */
export function redactProxyUrl(input: string): string {
  const at = input.lastIndexOf('@');
  if (at === -1) return input;
  const scheme = input.indexOf('://');
  const start = scheme !== -1 && scheme < at ? scheme + 3 : 0;
  return input.slice(0, start) + '***' + input.slice(at);
}

/**
 * Parses a proxy URL: http://, https://, socks5:// or socks5h://, with
 * optional user:password (percent-encoded). Without a scheme it is http://
 * (curl guesses the same); without a port, 1080 (443 for https://), curl's
 * defaults. A URL object's port is what the URL says: `new URL()` drops 80
 * from http://host:80, so such a URL object means port 80.
 */
export function parseProxyUrl(input: string | URL, source: string): ProxyConfig {
  const text = typeof input === 'string' ? input.trim() : input.href;
  const shown = redactProxyUrl(text);
  const bad = (why: string) => new InvalidArgumentError('ERR_BAD_PROXY', `bad proxy URL ${shown} (from ${source}): ${why}`);
  const withScheme = typeof input === 'string' && !/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? `http://${text}` : text;
  let url: URL;
  try {
    url = typeof input === 'string' ? new URL(withScheme) : input;
  } catch {
    throw bad('not a URL (a proxy URL looks like http://host:port or socks5h://user:password@host:port)');
  }
  const scheme = url.protocol.slice(0, -1).toLowerCase();
  if (scheme !== 'http' && scheme !== 'https' && scheme !== 'socks5' && scheme !== 'socks5h') {
    throw bad(`unsupported scheme ${scheme}: (http:, https:, socks5: or socks5h:)`);
  }
  const protocol: ProxyProtocol = scheme;
  let host = url.hostname;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host === '') throw bad('no host');
  let port: number;
  if (url.port !== '') port = Number(url.port);
  else if (typeof input === 'string' && /^[^/]*\/\/(?:[^@/?#]*@)?(?:\[[^\]]*\]|[^:/?#]*):\d+(?:[/?#]|$)/.test(withScheme)) {
    // The string had the scheme's default port, which URL dropped: it is that port, not curl's default.
    port = protocol === 'https' ? 443 : 80;
  } else if (typeof input === 'string') port = protocol === 'https' ? DEFAULT_HTTPS_PROXY_PORT : DEFAULT_PROXY_PORT;
  else port = protocol === 'https' ? 443 : protocol === 'http' ? 80 : DEFAULT_PROXY_PORT;
  if (!(port > 0 && port <= 65535)) throw bad('the port must be 1 to 65535');
  let username: string;
  let password: string;
  try {
    username = decodeURIComponent(url.username);
    password = decodeURIComponent(url.password);
  } catch {
    throw bad('the credentials are not valid percent-encoding');
  }
  if (protocol === 'http' || protocol === 'https') {
    // RFC 7617 section 2: the user-id of Basic credentials cannot contain a colon.
    if (username.includes(':')) throw bad('a Basic user name cannot contain ":"');
  } else if (username !== '' || password !== '') {
    // RFC 1929 section 2: UNAME and PASSWD are 1 to 255 bytes each (an empty password is sent as 0 bytes, as curl does).
    if (Buffer.byteLength(username) < 1 || Buffer.byteLength(username) > 255 || Buffer.byteLength(password) > 255) {
      throw bad('a SOCKS5 user name must be 1 to 255 bytes and its password at most 255 (RFC 1929)');
    }
  }
  const hostPart = isIP(host) === 6 ? `[${host}]` : host;
  return { protocol, host, port, username, password, display: `${protocol}://${hostPart}:${port}`, source };
}

/** How openTunnel() is bounded and what it may use. */
export interface TunnelOptions {
  /** The timers of connect()'s context. */
  context: Context;
  /** When the whole opening handshake must be done, on context.now()'s clock. */
  deadline: number;
  /** The handshake timeout, for the message when the deadline passes. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** TLS options for an https:// proxy (ca, ...); the target's own TLS options never go to the proxy. */
  proxyTls?: TlsConnectionOptions;
  /** Largest HTTP head accepted from an HTTP proxy. Default 16384. */
  maxHeadBytes?: number;
}

/** The endpoint the tunnel leads to, and the WebSocket URL for messages. */
export interface TunnelTarget {
  host: string;
  port: number;
  href: string;
}

/** RFC 1928 section 6: the reply field. */
const SOCKS_REPLIES: ReadonlyMap<number, string> = new Map([
  [1, 'general SOCKS server failure'],
  [2, 'connection not allowed by ruleset'],
  [3, 'network unreachable'],
  [4, 'host unreachable'],
  [5, 'connection refused'],
  [6, 'TTL expired'],
  [7, 'command not supported'],
  [8, 'address type not supported'],
]);

/**
 * Opens a tunnel to `target` through `proxy`. Resolves with the socket to
 * the proxy once it relays bytes to and from the target, paused, with any
 * bytes that came after the proxy's answer put back (unshift) for whatever
 * reads it next: TLS to the target for wss://, the upgrade request's answer
 * for ws://. Rejects with TransportError, HandshakeError or TimeoutError
 * (docs/api.md, "Proxies"); the socket is destroyed then.
 */
export function openTunnel(proxy: ProxyConfig, target: TunnelTarget, options: TunnelOptions): Promise<Socket> {
  const authority = `${isIP(target.host) === 6 ? `[${target.host}]` : target.host}:${target.port}`;
  return new Promise<Socket>((resolve, reject) => {
    let socket: Socket | null = null;
    let settled = false;
    /** Where the SOCKS5 CONNECT goes: the target, with its name resolved here for socks5://. */
    let destination = target;
    const timer = {
      onTimer: () =>
        fail(new TimeoutError('ERR_HANDSHAKE_TIMEOUT', `opening handshake not finished within ${options.timeoutMs} ms (${target.href} through proxy ${proxy.display}, which had not opened the tunnel yet)`)),
    };
    const onAbort = () => fail(new TransportError('ERR_ABORTED', `${target.href}: the opening handshake was aborted`));
    const cleanup = () => {
      options.context.timers.cancel(timer);
      options.signal?.removeEventListener('abort', onAbort);
      if (socket) {
        socket.off('data', onData);
        socket.off('error', onError);
        socket.off('close', onClose);
        socket.off(proxy.protocol === 'https' ? 'secureConnect' : 'connect', onConnect);
      }
    };
    const fail = (err: WebSocketError) => {
      if (settled) return;
      settled = true;
      cleanup();
      socket?.destroy();
      reject(err);
    };
    const succeed = (rest: Buffer) => {
      if (settled || !socket) return;
      settled = true;
      // Paused before the listener goes: a flowing socket without a 'data' listener would drop what comes next.
      socket.pause();
      cleanup();
      // Bytes that followed the proxy's answer already belong to the tunnel (RFC 9110 section 9.3.6: tunnel mode
      // starts right after the 2xx header section); a copy, since `rest` views the read's buffer.
      if (rest.length > 0) socket.unshift(Buffer.from(rest));
      resolve(socket);
    };

    let onData: (chunk: Buffer) => void = () => {};
    const onError = (err: Error) => fail(new TransportError('ERR_PROXY_CONNECT', `cannot connect to proxy ${proxy.display} (for ${target.href}): ${err.message}${proxyHint(err, proxy)}`, { cause: err }));
    const onClose = () => fail(new TransportError('ERR_PROXY_CONNECT', `proxy ${proxy.display} closed the connection before it opened a tunnel to ${authority} (for ${target.href})`));
    const onConnect = () => {
      if (!socket) return;
      try {
        if (proxy.protocol === 'http' || proxy.protocol === 'https') onData = httpConnect(socket, proxy, authority, options, succeed, fail);
        else onData = socks5Connect(socket, proxy, destination, authority, succeed, fail);
      } catch (err) {
        // A bad maxHeadBytes, found when the parser is made: an event handler must reject, not throw.
        return fail(err instanceof WebSocketError ? err : new TransportError('ERR_PROXY_CONNECT', `proxy ${proxy.display}: ${String(err)}`));
      }
      socket.on('data', onData);
    };

    options.context.timers.schedule(timer, options.deadline);
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort);

    const dial = () => {
      if (settled) return;
      socket =
        proxy.protocol === 'https'
          ? tlsConnect({ host: proxy.host, port: proxy.port, ALPNProtocols: ['http/1.1'], ...(isIP(proxy.host) === 0 ? { servername: proxy.host } : {}), ...options.proxyTls })
          : netConnect({ host: proxy.host, port: proxy.port });
      setNoDelay(socket);
      socket.on(proxy.protocol === 'https' ? 'secureConnect' : 'connect', onConnect);
      socket.on('error', onError);
      socket.on('close', onClose);
    };
    if (proxy.protocol === 'socks5' && isIP(target.host) === 0) {
      // socks5:// resolves the target's name here and sends the address; socks5h:// sends the name (curl's distinction).
      lookup(target.host).then(
        (found) => {
          destination = { ...target, host: found.address };
          dial();
        },
        (err: Error) =>
          fail(new TransportError('ERR_CONNECT', `cannot connect to ${target.href}: ${err.message}: the host name does not resolve here (socks5:// resolves names locally; socks5h:// lets the proxy resolve them)`, { cause: err })),
      );
    } else {
      dial();
    }
  });
}

/** What to try after a failure to reach the proxy, from the error's code. */
function proxyHint(err: Error, proxy: ProxyConfig): string {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (/SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|CERT_UNTRUSTED|CERT_HAS_EXPIRED|ERR_TLS_CERT_ALTNAME/.test(code)) {
    return ": the proxy's certificate is not trusted; pass its CA as proxyTls: { ca }";
  }
  if (proxy.protocol === 'https' && (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number|packet length too long/.test(err.message))) {
    return ': the proxy does not speak TLS on this port: use http://';
  }
  if (code === 'ECONNREFUSED') return ': nothing listens there (is the proxy running, and on this port?)';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return ": the proxy's host name does not resolve";
  return '';
}

/**
 * HTTP CONNECT (RFC 9110 section 9.3.6): the request-target in
 * authority-form (RFC 9112 section 3.2.3), Host with the same authority (RFC
 * 9112 section 3.2), Proxy-Authorization: Basic (RFC 9110 section 11.7.2,
 * RFC 7617) when the proxy URL has credentials, and no other field. Any 2xx
 * opens the tunnel; the answer's head is read with the bounded HttpHeadParser.
 * Returns the 'data' listener.
 */
function httpConnect(
  socket: Socket,
  proxy: ProxyConfig,
  authority: string,
  options: TunnelOptions,
  succeed: (rest: Buffer) => void,
  fail: (err: WebSocketError) => void,
): (chunk: Buffer) => void {
  const credentials = proxy.username !== '' || proxy.password !== '';
  let head = `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n`;
  if (credentials) head += `Proxy-Authorization: Basic ${Buffer.from(`${proxy.username}:${proxy.password}`, 'utf8').toString('base64')}\r\n`;
  socket.write(head + '\r\n');
  const parser = new HttpHeadParser('response', { maxHeadBytes: options.maxHeadBytes });
  return (chunk: Buffer) => {
    let result: ReturnType<HttpHeadParser['push']>;
    try {
      result = parser.push(chunk);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      fail(new HandshakeError('ERR_PROXY_PROTOCOL', `proxy ${proxy.display} answered CONNECT to ${authority} with something other than HTTP: ${why}`));
      return;
    }
    if (!result) return;
    const { status, reason } = result.head;
    if (status >= 200 && status < 300) return succeed(result.rest);
    // A null-prototype object, as for a server's refusal: a "__proto__" field from the proxy stays data.
    const headers = Object.create(null) as Record<string, string>;
    for (const [name, values] of result.head.headers) headers[name] = values.join(', ');
    const said = `proxy ${proxy.display} refused CONNECT to ${authority}: ${status}${reason !== '' ? ` ${reason}` : ''}`;
    if (status === 407 || status === 401) {
      // RFC 9110 section 15.5.8: the proxy wants (other) credentials. A 401 to CONNECT can only be the proxy's
      // too (the target has not been reached): tinyproxy 1.11 answers 401 to wrong credentials.
      const hint = credentials ? ' (it refused the credentials in the proxy URL)' : ' (no credentials were sent: put them in the proxy URL, http://user:password@host:port)';
      fail(new HandshakeError('ERR_PROXY_AUTH', said + hint, status, headers));
    } else {
      fail(new HandshakeError('ERR_PROXY_REFUSED', said, status, headers));
    }
  };
}

/**
 * SOCKS5 (RFC 1928): the method negotiation (section 3), username/password
 * authentication (RFC 1929) when the proxy URL has credentials, then CONNECT
 * (section 4) with an IPv4, IPv6 or domain-name address (section 5), and
 * the reply (section 6), whose length depends on its address type. Every
 * answer is small and bounded: at most 262 bytes are held. Returns the
 * 'data' listener.
 */
function socks5Connect(
  socket: Socket,
  proxy: ProxyConfig,
  target: TunnelTarget,
  authority: string,
  succeed: (rest: Buffer) => void,
  fail: (err: WebSocketError) => void,
): (chunk: Buffer) => void {
  const credentials = proxy.username !== '' || proxy.password !== '';
  // Section 3: X'00' no authentication, X'02' username/password.
  const methods = credentials ? [0x00, 0x02] : [0x00];
  socket.write(Buffer.from([0x05, methods.length, ...methods]));
  let step: 'method' | 'auth' | 'reply' = 'method';
  let held: Buffer = Buffer.alloc(0);
  const garbled = (what: string) => new HandshakeError('ERR_PROXY_PROTOCOL', `proxy ${proxy.display} does not speak SOCKS5: ${what}`);

  const sendConnect = () => {
    step = 'reply';
    const family = isIP(target.host);
    let address: Buffer;
    if (family === 4) address = Buffer.from([0x01, ...target.host.split('.').map(Number)]);
    else if (family === 6) address = Buffer.concat([Buffer.from([0x04]), ipv6Bytes(target.host)]);
    else {
      const name = Buffer.from(target.host, 'latin1');
      if (name.length > 255) return fail(new InvalidArgumentError('ERR_BAD_PROXY', `${target.host} is longer than the 255 bytes a SOCKS5 domain name may have (RFC 1928 section 5)`));
      address = Buffer.concat([Buffer.from([0x03, name.length]), name]);
    }
    const port = Buffer.alloc(2);
    port.writeUInt16BE(target.port);
    socket.write(Buffer.concat([Buffer.from([0x05, 0x01, 0x00]), address, port]));
  };

  return (chunk: Buffer) => {
    held = held.length === 0 ? chunk : Buffer.concat([held, chunk]);
    for (;;) {
      if (step === 'method') {
        if (held.length < 2) return;
        if (held[0] !== 0x05) return fail(garbled(`its greeting answer has version ${held[0]}`));
        const method = held[1];
        held = held.subarray(2);
        if (method === 0xff) {
          const offered = credentials ? 'no authentication, username/password' : 'no authentication';
          const hint = credentials ? '' : ': it wants credentials; put them in the proxy URL, socks5://user:password@host:port';
          return fail(new HandshakeError('ERR_PROXY_AUTH', `proxy ${proxy.display} refused CONNECT to ${authority}: none of the offered authentication methods (${offered}) is acceptable${hint}`));
        }
        if (method === 0x00) sendConnect();
        else if (method === 0x02 && credentials) {
          // RFC 1929 section 2: VER 1, ULEN, UNAME, PLEN, PASSWD.
          step = 'auth';
          const user = Buffer.from(proxy.username, 'utf8');
          const pass = Buffer.from(proxy.password, 'utf8');
          socket.write(Buffer.concat([Buffer.from([0x01, user.length]), user, Buffer.from([pass.length]), pass]));
        } else return fail(garbled(`it chose authentication method ${method}, which was not offered`));
      } else if (step === 'auth') {
        if (held.length < 2) return;
        const status = held[1];
        held = held.subarray(2);
        // RFC 1929 section 2: STATUS X'00' is success; anything else and the server closes the connection.
        if (status !== 0x00) return fail(new HandshakeError('ERR_PROXY_AUTH', `proxy ${proxy.display} refused CONNECT to ${authority}: it refused the username and password (RFC 1929 status ${status})`));
        sendConnect();
      } else {
        if (held.length < 2) return;
        if (held[0] !== 0x05) return fail(garbled(`its reply has version ${held[0]}`));
        const rep = held[1];
        if (rep !== 0x00) {
          const what = SOCKS_REPLIES.get(rep) ?? 'unassigned reply code';
          return fail(new TransportError('ERR_PROXY_REFUSED', `proxy ${proxy.display} refused CONNECT to ${authority}: SOCKS reply ${rep} (${what})`));
        }
        if (held.length < 5) return;
        const atyp = held[3];
        const addressLength = atyp === 0x01 ? 4 : atyp === 0x04 ? 16 : atyp === 0x03 ? 1 + held[4] : -1;
        if (addressLength === -1) return fail(garbled(`its reply has address type ${atyp}`));
        const total = 4 + addressLength + 2;
        if (held.length < total) return;
        return succeed(held.subarray(total));
      }
    }
  };
}

/** The 16 bytes of an IPv6 address (RFC 4291 section 2.2 text forms, IPv4 tail included). */
function ipv6Bytes(address: string): Buffer {
  let text = address;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  let tail: number[] = [];
  if (v4) {
    const parts = v4[1].split('.').map(Number);
    tail = [(parts[0] << 8) | parts[1], (parts[2] << 8) | parts[3]];
    text = text.slice(0, -v4[1].length) + '0:0';
  }
  const [left, right] = text.includes('::') ? text.split('::') : [text, undefined];
  const l = left === '' ? [] : left.split(':');
  const r = right === undefined || right === '' ? [] : right.split(':');
  const groups = right === undefined ? l : [...l, ...new Array<string>(8 - l.length - r.length).fill('0'), ...r];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  if (tail.length === 2) {
    out.writeUInt16BE(tail[0], 12);
    out.writeUInt16BE(tail[1], 14);
  }
  return out;
}
