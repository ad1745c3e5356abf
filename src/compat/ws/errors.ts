import { LimitExceededError, ProtocolError, WebSocketError } from '../../core/errors.js';

/**
 * An error as ws raises it for a peer's fault: a RangeError (or an Error for
 * bad UTF-8) whose message starts "Invalid WebSocket frame: ", with ws's
 * `code` string and the close code the connection is failed with. The engine's
 * own error, with its stricter reason, is kept as `cause`.
 */
export interface WsFrameError extends Error {
  code: string;
  /** The close code sent to the peer for this fault. */
  closeCode: number;
}

function make(ctor: ErrorConstructor | RangeErrorConstructor, message: string, code: string, closeCode: number, cause: WebSocketError): WsFrameError {
  const err = new ctor(message, { cause }) as WsFrameError;
  err.code = code;
  err.closeCode = closeCode;
  return err;
}

const FRAME = 'Invalid WebSocket frame: ';

/** The number a message of the engine ends with ("reserved opcode 0x3", "invalid close code 1004"). */
function trailingNumber(message: string): number {
  const hex = /0x([0-9a-f]+)/i.exec(message);
  if (hex) return parseInt(hex[1], 16);
  const dec = /(\d+)(?!.*\d)/.exec(message);
  return dec ? Number(dec[1]) : 0;
}

/**
 * Translates a fault the engine found in the peer's data into ws's error for
 * it (doc/ws.md, "Error codes"). Returns null for what ws does not report as
 * an 'error' event: transport failures (a reset socket, a close timeout) and
 * the application's own terminate().
 */
export function toWsError(error: WebSocketError): Error | null {
  if (error instanceof LimitExceededError) {
    switch (error.limit) {
      case 'maxMessageBytes':
      case 'maxFrameBytes':
        return make(RangeError, 'Max payload size exceeded', 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', 1009, error);
      case 'maxFragments':
        return make(RangeError, 'Too many message fragments', 'WS_ERR_TOO_MANY_BUFFERED_PARTS', 1008, error);
      default:
        // Limits ws does not have (control frames per second, the send queue): the engine's error as it is.
        return error;
    }
  }
  if (!(error instanceof ProtocolError)) return null;
  switch (error.code) {
    case 'ERR_INVALID_UTF8':
      return make(Error, FRAME + 'invalid UTF-8 sequence', 'WS_ERR_INVALID_UTF8', 1007, error);
    case 'ERR_RESERVED_BITS': {
      const rsv = trailingNumber(error.message);
      return rsv & 0x4
        ? make(RangeError, FRAME + 'RSV1 must be clear', 'WS_ERR_UNEXPECTED_RSV_1', 1002, error)
        : make(RangeError, FRAME + 'RSV2 and RSV3 must be clear', 'WS_ERR_UNEXPECTED_RSV_2_3', 1002, error);
    }
    case 'ERR_RSV1_ON_CONTINUATION':
      return make(RangeError, FRAME + 'RSV1 must be clear', 'WS_ERR_UNEXPECTED_RSV_1', 1002, error);
    case 'ERR_RESERVED_OPCODE':
      return make(RangeError, FRAME + `invalid opcode ${trailingNumber(error.message)}`, 'WS_ERR_INVALID_OPCODE', 1002, error);
    case 'ERR_UNEXPECTED_CONTINUATION':
      return make(RangeError, FRAME + 'invalid opcode 0', 'WS_ERR_INVALID_OPCODE', 1002, error);
    case 'ERR_EXPECTED_CONTINUATION':
      // The engine does not say which data opcode came; ws names it (1 or 2). Text is the common case.
      return make(RangeError, FRAME + 'invalid opcode 1', 'WS_ERR_INVALID_OPCODE', 1002, error);
    case 'ERR_FRAGMENTED_CONTROL':
      return make(RangeError, FRAME + 'FIN must be set', 'WS_ERR_EXPECTED_FIN', 1002, error);
    case 'ERR_MISSING_MASK':
      return make(RangeError, FRAME + 'MASK must be set', 'WS_ERR_EXPECTED_MASK', 1002, error);
    case 'ERR_UNEXPECTED_MASK':
      return make(RangeError, FRAME + 'MASK must be clear', 'WS_ERR_UNEXPECTED_MASK', 1002, error);
    case 'ERR_CONTROL_TOO_LONG':
      return make(RangeError, FRAME + `invalid payload length ${trailingNumber(error.message.replace(/\(max 125\)/, ''))}`, 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH', 1002, error);
    case 'ERR_BAD_CLOSE_PAYLOAD':
      return make(RangeError, FRAME + 'invalid payload length 1', 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH', 1002, error);
    case 'ERR_BAD_CLOSE_CODE':
      return make(RangeError, FRAME + `invalid status code ${trailingNumber(error.message)}`, 'WS_ERR_INVALID_CLOSE_CODE', 1002, error);
    case 'ERR_BAD_LENGTH':
      // ws closes with 1009 here; RFC 6455 section 5.2 makes the top bit of a 64-bit length a framing
      // error ("the most significant bit MUST be 0"), so the engine closes with 1002.
      return make(RangeError, 'Unsupported WebSocket frame: payload length > 2^53 - 1', 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH', 1002, error);
    case 'ERR_INFLATE': {
      // ws reports zlib's own error (its message, code such as Z_DATA_ERROR, and errno), closing with 1007.
      const z = error.cause as (Error & { code?: string; errno?: number }) | undefined;
      if (!(z instanceof Error)) return error;
      const err = make(Error, z.message, z.code ?? error.code, 1007, error) as WsFrameError & { errno?: number };
      if (z.errno !== undefined) err.errno = z.errno;
      return err;
    }
    default:
      // Faults ws does not find: the engine's error, which carries its own code and close code.
      return error;
  }
}
