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
  Connection,
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
