// The CommonJS entry of sockeye/ws: require('sockeye/ws') is the WebSocket
// class itself, with .WebSocket, .WebSocketServer, .Server and
// .createWebSocketStream on it, as require('ws') is
// (test/package/pack.test.ts loads it from an installed package).
// eslint-disable-next-line @typescript-eslint/no-require-imports -- `export =` needs an import of this form in a CommonJS module
import ws = require('./index.js');
export = ws.WebSocket;
