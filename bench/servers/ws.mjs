// ws echo server for the benchmark, plain JavaScript as ws ships (defaults:
// no permessage-deflate, whatever optional native add-ons are installed).
// Prints "LISTENING <port>"; exits when its stdin closes.
import { WebSocketServer } from 'ws';
import { serveUntilStdinCloses } from '../lib/server-life.mjs';

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  // A generator that hangs up mid-run must not take the server down.
  ws.on('error', () => {});
});
wss.on('error', (error) => process.stderr.write(`ws server error: ${error.message}\n`));
await new Promise((resolve) => wss.once('listening', resolve));
serveUntilStdinCloses(wss.address().port, async () => {
  for (const client of wss.clients) client.terminate();
  await new Promise((resolve) => wss.close(resolve));
});
