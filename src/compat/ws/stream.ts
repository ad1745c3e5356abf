import { Duplex, type DuplexOptions } from 'node:stream';
import type { WebSocket } from './websocket.js';

/**
 * ws's createWebSocketStream(): a Duplex over a WebSocket. Each message
 * received is one chunk read (a string for a text message in object mode);
 * each chunk written is one message sent, its callback run when it was
 * written (so the Writable's buffering paces the producer). A full readable
 * buffer pauses the WebSocket's reading, and reading resumes it. Ending the
 * writable side closes the WebSocket (the callback runs once it has closed);
 * the WebSocket's close ends the readable side; its error destroys the
 * stream; destroy() terminates the WebSocket unless it has closed.
 * Guarded by test/compat/ws/stream.test.ts.
 */
export function createWebSocketStream(ws: WebSocket, options: DuplexOptions = {}): Duplex {
  let terminateOnDestroy = true;
  const duplex = new Duplex({ autoDestroy: false, emitClose: false, objectMode: false, writableObjectMode: false, ...options });

  const whenOpen = (fn: () => void): boolean => {
    if (ws.readyState !== ws.CONNECTING) return false;
    ws.once('open', fn);
    return true;
  };

  ws.on('message', (data: Buffer | string, isBinary: boolean) => {
    const chunk = !isBinary && duplex.readableObjectMode ? data.toString() : data;
    if (!duplex.push(chunk)) ws.pause();
  });
  ws.once('error', (err: Error) => {
    if (duplex.destroyed) return;
    // The WebSocket closes itself after an error: destroy() need not terminate it.
    terminateOnDestroy = false;
    duplex.destroy(err);
  });
  ws.once('close', () => {
    if (duplex.destroyed) return;
    duplex.push(null);
  });

  duplex._read = () => {
    if (ws.isPaused) ws.resume();
  };
  duplex._write = (chunk: Buffer | string, _encoding, callback) => {
    if (whenOpen(() => duplex._write(chunk, _encoding, callback))) return;
    ws.send(chunk, callback);
  };
  duplex._final = (callback) => {
    if (whenOpen(() => duplex._final(callback))) return;
    if (ws.readyState === ws.CLOSED) {
      callback();
      return;
    }
    ws.once('close', () => callback());
    ws.close();
  };
  duplex._destroy = (err, callback) => {
    if (ws.readyState === ws.CLOSED) {
      callback(err);
      process.nextTick(() => duplex.emit('close'));
      return;
    }
    let reported = false;
    ws.once('error', (e: Error) => {
      reported = true;
      callback(e);
    });
    ws.once('close', () => {
      if (!reported) callback(err);
      process.nextTick(() => duplex.emit('close'));
    });
    if (terminateOnDestroy) ws.terminate();
  };

  // Both sides done: the stream is finished (autoDestroy is off, as ws has it, so this is ours to do).
  duplex.on('end', () => {
    if (duplex.writableFinished && !duplex.destroyed) duplex.destroy();
  });
  duplex.on('finish', () => {
    if (duplex.readableEnded && !duplex.destroyed) duplex.destroy();
  });
  duplex.on('error', function onError(err: Error) {
    // An error of the stream itself (a write after the WebSocket closed): the stream is destroyed with
    // the WebSocket, and the error still reaches the application, thrown if nobody else listens, as in ws.
    duplex.off('error', onError);
    if (!duplex.destroyed) duplex.destroy();
    if (duplex.listenerCount('error') === 0) duplex.emit('error', err);
  });
  return duplex;
}
