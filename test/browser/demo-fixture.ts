/**
 * The server under test for the demo page: the real demo server
 * (createDemoServer from src/demo, what `npm start` runs), serving the page
 * from demo-page/ through its static mount, on a free port of 127.0.0.1.
 */
import type { TlsOptions } from 'node:tls';
import { createDemoServer, type DemoServer } from '../../src/demo/demo-server.js';
import type { WebSocketServer } from '../../src/index.js';

export interface DemoUnderTest {
  demo: DemoServer;
  /** The WebSocket server inside it (its clients are the sessions the pages opened). */
  server: WebSocketServer;
  /** http://127.0.0.1:PORT or https://… */
  origin: string;
  /** WebSocket sessions one demo page opens on the server (counter, mirror, status, echo). */
  sessionsPerPage: number;
  /** Entries one open page adds to the lws-status connection list (the demo server lists every connection). */
  listedPerPage: number;
  close(): Promise<void>;
}

export async function startDemo(options: { tls?: TlsOptions } = {}): Promise<DemoUnderTest> {
  const demo = createDemoServer({ port: 0, host: '127.0.0.1', tls: options.tls });
  const addr = await demo.listen(0, '127.0.0.1');
  return {
    demo,
    server: demo.server,
    origin: `${options.tls ? 'https' : 'http'}://127.0.0.1:${addr.port}`,
    sessionsPerPage: 4,
    listedPerPage: 4,
    close: () => demo.close(),
  };
}
