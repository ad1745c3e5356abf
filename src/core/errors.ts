/**
 * The error tree. Every error sockeye raises or reports extends WebSocketError,
 * carries a stable `code` string (safe to switch on), and, where the failure
 * maps to a close code of RFC 6455 section 7.4.1, the close code that the
 * connection was (or will be) failed with.
 */
export class WebSocketError extends Error {
  readonly code: string;
  readonly closeCode: number | undefined;
  constructor(code: string, message: string, closeCode?: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.closeCode = closeCode;
  }
}

/** The peer broke RFC 6455 framing or state rules: close 1002 (or 1007 for bad UTF-8). */
export class ProtocolError extends WebSocketError {
  constructor(code: string, message: string, closeCode = 1002, options?: { cause?: unknown }) {
    super(code, message, closeCode, options);
  }
}

/** Text (or a close reason) that is not valid UTF-8: close 1007 (RFC 6455 section 8.1). */
export class InvalidUtf8Error extends ProtocolError {
  constructor(message = 'invalid UTF-8 in text data') {
    super('ERR_INVALID_UTF8', message, 1007);
  }
}

/** A configured limit was crossed: 1009 for sizes, 1008 for policy limits. */
export class LimitExceededError extends WebSocketError {
  readonly limit: string;
  constructor(limit: string, message: string, closeCode = 1009) {
    super('ERR_LIMIT_' + limit.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase(), message, closeCode);
    this.limit = limit;
  }
}

/**
 * The opening handshake failed. On the server side `status` is the HTTP status
 * answered (400, 403, 404, 426, 431, ...); on the client side it is the status
 * the server answered, if any.
 */
export class HandshakeError extends WebSocketError {
  readonly status: number | undefined;
  readonly headers: Record<string, string> | undefined;
  constructor(code: string, message: string, status?: number, headers?: Record<string, string>) {
    super(code, message);
    this.status = status;
    this.headers = headers;
  }
}

/** An API call made in a state that does not allow it; names the state. */
export class InvalidStateError extends WebSocketError {
  readonly state: string;
  constructor(operation: string, state: string) {
    super('ERR_INVALID_STATE', `cannot ${operation} while the connection is ${state}`);
    this.state = state;
  }
}

/** A bad argument from the application (e.g. a close code it may not send). */
export class InvalidArgumentError extends WebSocketError {
  constructor(code: string, message: string) {
    super(code, message);
  }
}

/** A timer ran out: handshake, close handshake, or keepalive hang-up. */
export class TimeoutError extends WebSocketError {
  constructor(code: string, message: string, closeCode?: number) {
    super(code, message, closeCode);
  }
}

/** The transport failed (reset, TLS error, unexpected EOF). */
export class TransportError extends WebSocketError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, 1006, options);
  }
}
