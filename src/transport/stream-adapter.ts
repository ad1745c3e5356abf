import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { constants as h2constants, type Http2Stream } from 'node:http2';

/** What a session does with its stream's events. */
export interface StreamOwner {
  onData(chunk: Buffer): void;
  onDrain(): void;
  onEnd(): void;
  onStreamError(err: Error): void;
  onStreamClose(): void;
}

/** The owner a stream belongs to, for the shared listeners below. */
const OWNER = Symbol('sockeye.owner');
type OwnedStream = Duplex & { [OWNER]: StreamOwner };

// The same five listener functions for every stream: no closure per listener per session (idle-connection memory).
function onData(this: Duplex, chunk: Buffer): void {
  (this as OwnedStream)[OWNER].onData(chunk);
}
function onDrain(this: Duplex): void {
  (this as OwnedStream)[OWNER].onDrain();
}
function onEnd(this: Duplex): void {
  (this as OwnedStream)[OWNER].onEnd();
}
function onError(this: Duplex, err: Error): void {
  (this as OwnedStream)[OWNER].onStreamError(err);
}
function onClose(this: Duplex): void {
  (this as OwnedStream)[OWNER].onStreamClose();
}

/** True for a TLS stream (node:tls sets `encrypted`). */
export function isEncrypted(stream: Duplex): boolean {
  return (stream as Duplex & { encrypted?: boolean }).encrypted === true;
}

/**
 * True for a stream of an HTTP/2 connection (node:http2 exports no class to
 * test with instanceof; `rstCode` and `session` are Http2Stream's own).
 */
export function isHttp2Stream(stream: Duplex): stream is Http2Stream {
  return 'rstCode' in stream && 'session' in stream;
}

/** The peer's address where the stream has one (a TCP or TLS socket, or an HTTP/2 stream's connection), else undefined. */
export function remoteAddressOf(stream: Duplex): string | undefined {
  if (isHttp2Stream(stream)) return stream.session?.socket?.remoteAddress;
  return (stream as Duplex & { remoteAddress?: string }).remoteAddress;
}

/** Turns Nagle's algorithm off where the stream is a TCP socket (frames leave whole, never delayed). */
export function setNoDelay(stream: Duplex): void {
  if (stream instanceof Socket) stream.setNoDelay(true);
}

/**
 * Everything a session needs of its stream beyond what every Duplex has: the
 * one place that knows about sockets, so that a session runs the same over
 * net.Socket, tls.TLSSocket, an HTTP/2 stream or an in-memory pair
 * (test/transport/session-streams.test.ts, test/transport/stream-adapter.test.ts).
 * There is one adapter per kind of stream, shared by every session of that
 * kind: a session pays one pointer for it.
 */
export class StreamAdapter {
  readonly encrypted: boolean;
  /**
   * A server on a plain TCP socket closes the TCP connection itself once the
   * closing handshake is complete (RFC 6455 section 7.1.1: the server closes
   * first and keeps the TIME_WAIT); see end().
   */
  readonly closesFirst: boolean;
  /** The stream is one stream of an HTTP/2 connection (RFC 8441). */
  readonly http2: boolean;

  private constructor(encrypted: boolean, closesFirst: boolean, http2 = false) {
    this.encrypted = encrypted;
    this.closesFirst = closesFirst;
    this.http2 = http2;
  }

  private static readonly tcpServer = new StreamAdapter(false, true);
  private static readonly plain = new StreamAdapter(false, false);
  private static readonly tls = new StreamAdapter(true, false);
  // The stream itself is not encrypted (its connection may be): the TLS write path of Outbound is not for it.
  private static readonly h2 = new StreamAdapter(false, false, true);

  /** The adapter for a session of `role` over `stream`. */
  static for(stream: Duplex, role: 'server' | 'client'): StreamAdapter {
    if (isEncrypted(stream)) return StreamAdapter.tls;
    if (isHttp2Stream(stream)) return StreamAdapter.h2;
    return role === 'server' && stream instanceof Socket ? StreamAdapter.tcpServer : StreamAdapter.plain;
  }

  /** Gives the stream's events to `owner`. */
  attach(stream: Duplex, owner: StreamOwner): void {
    (stream as OwnedStream)[OWNER] = owner;
    stream.on('data', onData);
    stream.on('drain', onDrain);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.on('close', onClose);
  }

  /**
   * Ends the stream once everything queued has been handed to it. With every
   * byte already in the kernel, a server on plain TCP whose closing handshake
   * completed (`clean`) closes the socket at once: close() sends them and then
   * FIN just as shutdown() would, and saves the wait for the peer's FIN. Only
   * after a clean close: the peer has sent its close frame, so it has nothing
   * left to send that a close() would answer with a reset. A connection we
   * failed, or that ended without close frames, may still have bytes coming; a
   * reset would make the peer's kernel drop what it has not read yet, our close
   * frame included (test/integration/graceful-close.test.ts), so it gets FIN
   * and we read on. TLS ends with end(), which sends close_notify; a client
   * waits for the server's FIN (section 7.1.1); any other stream is ended.
   */
  end(stream: Duplex, clean: boolean): void {
    // end() of an already ended stream makes (and discards) an ERR_STREAM_ALREADY_FINISHED error,
    // stack trace included: a real cost when clients close as fast as they connect.
    if (stream.writableEnded) return;
    if (this.closesFirst && clean && stream.writableLength === 0) stream.destroy();
    else stream.end();
  }

  /**
   * Drops the stream at once. An HTTP/2 stream is reset with CANCEL: RFC 8441
   * section 5.1 maps a TCP reset to RST_STREAM with CANCEL (node's destroy()
   * would pick its own code); its connection and other streams carry on.
   */
  destroy(stream: Duplex): void {
    if (this.http2 && isHttp2Stream(stream) && !stream.closed && !stream.destroyed) stream.close(h2constants.NGHTTP2_CANCEL);
    stream.destroy();
  }
}
