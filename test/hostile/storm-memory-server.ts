/**
 * The child process of test/hostile/storm-memory.test.ts: an echo server on
 * 127.0.0.1 port 0, alone in its process so that only the server's memory is
 * measured. argv[2] picks the server: `sockeye` (default options, as an
 * application would create it) or `ws` (the reference: what Node keeps for
 * another library doing the same work).
 *
 * Protocol with the parent (IPC):
 *   child  -> { type: 'listening', port }
 *   parent -> { type: 'sample' }  child -> { type: 'sample', ...Sample }
 *   parent -> { type: 'gc' }      a full garbage collection, then a sample.
 *                                 The parent starts this process with
 *                                 --expose-gc: test only, to tell live
 *                                 objects from garbage the heap still holds.
 *
 * Not a test file (no .test.ts): the test runner does not pick it up.
 */
import { WebSocketServer as WsServer } from 'ws';
import { createServer, type WebSocketServer } from '../../src/index.js';
import { memoryFigures, type MemoryFigures } from '../soak/proc.js';

export interface Sample extends MemoryFigures {
  /** Connections the server still holds. */
  clients: number;
  /** sockeye only: entries and held slot numbers of the context's timer wheel, and whether its timer is set. */
  wheel: { size: number; heldSlots: number; armed: boolean } | null;
}

export type ChildMessage = { type: 'listening'; port: number } | ({ type: 'sample' } & Sample);

const kind = process.argv[2] ?? 'sockeye';
const send = (m: ChildMessage) => process.send!(m);

let port: number;
let clients: () => number;
let sockeye: WebSocketServer | null = null;
if (kind === 'ws') {
  const wss = new WsServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  wss.on('connection', (ws) => {
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  const a = wss.address();
  if (a === null || typeof a === 'string') throw new Error('ws did not listen on TCP');
  port = a.port;
  clients = () => wss.clients.size;
} else {
  sockeye = createServer({
    onError: () => {},
    handler: {
      onMessage(s, m) {
        s.send(m.data, { binary: m.binary });
      },
    },
  });
  port = (await sockeye.listen(0, '127.0.0.1')).port;
  const s = sockeye;
  clients = () => s.clients.size;
}

function sample(): Sample {
  const w = sockeye?.context.timers;
  return {
    ...memoryFigures(),
    clients: clients(),
    wheel: w ? { size: w.size, heldSlots: w.heldSlots, armed: w.armed } : null,
  };
}

const gc = (globalThis as { gc?: () => void }).gc;
process.on('message', (m: { type: string }) => {
  if (m.type === 'gc') {
    if (!gc) throw new Error('storm-memory-server: start it with --expose-gc');
    gc();
    gc();
  }
  if (m.type === 'sample' || m.type === 'gc') send({ type: 'sample', ...sample() });
});
// The parent going away ends this process (the IPC channel is all that keeps it alive besides the server).
process.on('disconnect', () => process.exit(0));
send({ type: 'listening', port });
