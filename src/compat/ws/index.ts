/**
 * sockeye/ws: ws 8's API over sockeye's engine, so code written for ws (and
 * socket.io, engine.io or graphql-ws, which take ws's server as their engine)
 * runs on sockeye by changing one import. docs/migrating-from-ws.md lists
 * every difference from ws and why.
 */
import { WebSocket } from './websocket.js';
import { WebSocketServer } from './websocket-server.js';
import { createWebSocketStream } from './stream.js';

// The class carries the module's other exports, as ws's default export does (require('sockeye/ws').Server).
WebSocket.WebSocket = WebSocket;
WebSocket.WebSocketServer = WebSocketServer;
WebSocket.Server = WebSocketServer;
WebSocket.createWebSocketStream = createWebSocketStream;

export { WebSocket, WebSocketServer, WebSocketServer as Server, createWebSocketStream };
export default WebSocket;
export type { BinaryType, SendCallback, SendOptions, WebSocketClientOptions, WsData } from './websocket.js';
export type { VerifyClient, VerifyClientCallback, VerifyClientInfo, WebSocketServerOptions } from './websocket-server.js';
export type { WsCommonOptions, WsPerMessageDeflateOptions } from './options.js';
export type { WsFrameError } from './errors.js';
export { WsCloseEvent as CloseEvent, WsErrorEvent as ErrorEvent, WsEvent as Event, WsMessageEvent as MessageEvent } from './event-target.js';
