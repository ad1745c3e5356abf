import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDemoServer, type DemoServer, type DemoServerOptions } from '../../src/demo/demo-server.js';

/** The placeholder page the demo server serves in tests (the real demo-page/ belongs to the page's own tests). */
export const PLACEHOLDER_HTML = '<!doctype html><title>sockeye demo (test placeholder)</title><p>placeholder</p>';

export interface DemoFixture {
  demo: DemoServer;
  port: number;
  dir: string;
  close(): Promise<void>;
}

/** A demo server on 127.0.0.1, a free port, serving a temporary directory with a placeholder index.html. */
export async function startDemo(options: DemoServerOptions = {}): Promise<DemoFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'sockeye-demo-page-'));
  writeFileSync(join(dir, 'index.html'), PLACEHOLDER_HTML);
  const demo = createDemoServer({ staticDir: dir, onError: () => undefined, ...options });
  const { port } = await demo.listen(0, '127.0.0.1');
  return {
    demo,
    port,
    dir,
    async close() {
      try {
        await demo.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
