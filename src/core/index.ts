// The sans-I/O core ('sockeye/core'): RFC 6455 and RFC 7692 machinery fed
// bytes and time, with no sockets, timers or randomness of its own.
export * from './errors.js';
export * from './close-codes.js';
export * from './opcodes.js';
export { applyMask } from './mask.js';
export { FrameParser, type FrameSink, type FrameParserOptions } from './frame-parser.js';
export { encodeFrame, encodeOwnedFrame, headerSize, type EncodeOptions } from './frame-serializer.js';
export { Utf8Validator, isValidUtf8 } from './utf8-validator.js';
export { HttpHeadParser, type HttpHead, type HttpHeadLimits } from './http-head.js';
export * from './handshake.js';
export * from './extension-header.js';
export {
  PERMESSAGE_DEFLATE,
  validateDeflateConfig,
  buildDeflateOffer,
  negotiateDeflate,
  acceptDeflateResponse,
  type DeflateConfig,
  type DeflateParams,
} from './deflate-negotiation.js';
export type { MessageCodec } from './message-codec.js';
export {
  Connection,
  MessageEvent,
  DEFAULT_LIMITS,
  MIN_FRAME_CHARGE,
  DEFAULT_CLOSE_TIMEOUT_MS,
  encodeClosePayload,
  decodeClosePayload,
  type ConnectionEvent,
  type ConnectionHost,
  type ConnectionLimits,
  type ConnectionOptions,
  type ConnectionState,
  type KeepaliveOptions,
  type Hangup,
  type Role,
} from './connection.js';
