export * from './core/index.js';
export { Context, type ContextOptions } from './transport/context.js';
export { Session, MessageWriter, type SessionState } from './transport/session.js';
export type { SendStatus, Message, Fragment, CloseInfo, WritableInfo, SessionLimits, Handler } from './transport/types.js';
export { DEFAULT_SESSION_LIMITS, DEFAULT_KEEPALIVE } from './transport/types.js';
export { createServer, WebSocketServer, type ServerOptions, type ServerHandler, type VerifyResult } from './server/server.js';
export { ServerSession, type UpgradeRequest } from './server/server-session.js';
export { connect, ClientSession, parseWebSocketUrl, type ConnectOptions, type ClientHandler } from './client/connect.js';
