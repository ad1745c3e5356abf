/**
 * Runs at most `concurrency` jobs at once, the others in FIFO order. Used to
 * bound zlib work per context (permessage-deflate): libuv's threadpool is
 * small, and an unbounded number of concurrent inflates is a memory hazard.
 */
export class Limiter {
  private running = 0;
  private readonly queue: Array<(release: () => void) => void> = [];
  readonly concurrency: number;

  constructor(concurrency: number) {
    this.concurrency = Math.max(1, concurrency);
  }

  /** Calls `job` with a release function once a slot is free; the job must call release exactly once. */
  run(job: (release: () => void) => void): void {
    if (this.running < this.concurrency) this.start(job);
    else this.queue.push(job);
  }

  get pending(): number {
    return this.queue.length;
  }

  get active(): number {
    return this.running;
  }

  private start(job: (release: () => void) => void): void {
    this.running++;
    let released = false;
    job(() => {
      if (released) return;
      released = true;
      this.running--;
      const next = this.queue.shift();
      if (next) this.start(next);
    });
  }
}
