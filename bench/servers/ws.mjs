// ws echo server for the benchmark, with ws's defaults (no permessage-deflate).
// By default it runs ws's plain JavaScript even when the optional native
// add-ons are installed; --native lets ws load them (the "ws-native" row) and
// refuses to start unless bufferutil really loaded as a native add-on.
// --sockeye: the same program on sockeye/ws (dist/src/compat/ws) instead of ws: the "sockeye-ws" row,
// what a ws application gets by changing its import.
// --fanout: every message goes to every client (for (const c of wss.clients) c.send(...)).
// --tls DIR: wss over an https server with DIR/key.pem and DIR/cert.pem.
// Prints "LISTENING <port>"; exits when its stdin closes.
import { createRequire } from 'node:module';
import { createServer as createHttpsServer } from 'node:https';
import { info, serverOptions, serveUntilStdinCloses } from '../lib/server-life.mjs';

const opts = serverOptions();
if (!opts.native) {
  // ws reads these when it is first loaded (lib/buffer-util.js, lib/validation.js).
  process.env.WS_NO_BUFFER_UTIL = '1';
  process.env.WS_NO_UTF_8_VALIDATE = '1';
}
const { WebSocketServer } = opts.sockeye ? await import('../../dist/src/compat/ws/index.js') : await import('ws');

// What ws actually loaded, from the CommonJS module cache: a package that is
// installed but whose compiled binding failed to load shows up as its JS
// fallback, not as a .node file.
const cache = Object.keys(createRequire(import.meta.url).cache);
const addon = (name) => {
  const files = cache.filter((k) => k.includes(`/node_modules/${name}/`));
  return files.some((k) => k.endsWith('.node')) ? 'native' : files.length ? 'JavaScript fallback' : 'not loaded';
};
const loaded = opts.sockeye ? { engine: 'sockeye/ws' } : { bufferutil: addon('bufferutil'), 'utf-8-validate': addon('utf-8-validate') };
info(loaded);
if (opts.native && loaded.bufferutil !== 'native') {
  process.stderr.write(`ws --native: bufferutil is ${loaded.bufferutil} (install the benchmark's own packages: npm --prefix bench ci)\n`);
  process.exit(3);
}

const https = opts.tls ? createHttpsServer({ ...opts.tls }) : null;
const wss = https ? new WebSocketServer({ server: https }) : new WebSocketServer({ host: '127.0.0.1', port: 0 });
wss.on('connection', (ws) => {
  if (opts.fanout) ws.on('message', (data, isBinary) => { for (const c of wss.clients) c.send(data, { binary: isBinary }); });
  else ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  // A generator that hangs up mid-run must not take the server down.
  ws.on('error', () => {});
});
wss.on('error', (error) => process.stderr.write(`ws server error: ${error.message}\n`));
if (https) await new Promise((resolve) => https.listen(0, '127.0.0.1', resolve));
else await new Promise((resolve) => wss.once('listening', resolve));
serveUntilStdinCloses(
  (https ?? wss).address().port,
  async () => {
    for (const client of wss.clients) client.terminate();
    await new Promise((resolve) => wss.close(resolve));
    if (https) await new Promise((resolve) => https.close(resolve));
  },
  () => wss.clients.size,
);
