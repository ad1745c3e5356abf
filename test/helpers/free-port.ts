import { connect, createServer, type AddressInfo } from 'node:net';

/**
 * A port on 127.0.0.1 that was free a moment ago (found through port 0 and
 * released): for a peer that takes a port number rather than 0, or for a
 * port nothing listens on.
 */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Whether something accepts a TCP connection on 127.0.0.1:`port` right now (the probe is closed at once). */
export function accepting(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
