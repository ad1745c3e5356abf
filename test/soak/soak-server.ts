/**
 * The soak server process: an echo server with keepalive, counting opens,
 * closes (by code) and pongs per session. Driven by test/soak/harness.ts.
 */
import { createServer, type WebSocketServer } from '../../src/index.js';
import { serveCommands, snapshot } from './proc.js';

interface Data {
  pongs: number;
}

let server: WebSocketServer | null = null;
let opened = 0;
let closed = 0;
const codes: Record<string, number> = {};
const errors: string[] = [];

serveCommands({
  async listen(args: { pingAfterMs: number; hangupAfterMs: number }) {
    server = createServer({
      host: '127.0.0.1',
      keepalive: { pingAfterMs: args.pingAfterMs, hangupAfterMs: args.hangupAfterMs, alwaysPing: true },
      handler: {
        onOpen(session) {
          opened++;
          (session.data as unknown as Data).pongs = 0;
        },
        onPong(session) {
          (session.data as unknown as Data).pongs++;
        },
        onMessage(session, message) {
          session.send(message.data, { binary: message.binary });
        },
        onClose(_session, info) {
          closed++;
          codes[info.code] = (codes[info.code] ?? 0) + 1;
        },
        onError(_session, err) {
          if (errors.length < 10) errors.push(`${err.code}: ${err.message}`);
        },
      },
      onError(err) {
        if (errors.length < 10) errors.push(String(err));
      },
    });
    const address = await server.listen(0, '127.0.0.1');
    return address.port;
  },
  stats() {
    let minPongs = Infinity;
    let totalPongs = 0;
    for (const s of server?.clients ?? []) {
      const p = (s.data as unknown as Data).pongs;
      minPongs = Math.min(minPongs, p);
      totalPongs += p;
    }
    return { clients: server?.clients.size ?? 0, opened, closed, codes, minPongs: Number.isFinite(minPongs) ? minPongs : 0, totalPongs, errors };
  },
  resetPongs() {
    for (const s of server?.clients ?? []) (s.data as unknown as Data).pongs = 0;
    return null;
  },
  snapshot,
  async close() {
    await server?.close();
    server = null;
    return null;
  },
  exit() {
    setImmediate(() => process.exit(0));
    return null;
  },
});
