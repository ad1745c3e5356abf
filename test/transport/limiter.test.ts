/**
 * Limiter (src/transport/limiter.ts): the per-Context bound on concurrent zlib
 * jobs. Jobs beyond the bound wait in FIFO order and start as slots are
 * released; nothing is refused. Also: the Context option zlibConcurrency, and
 * real zlib work through DeflateCodec never exceeding the bound.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Limiter } from '../../src/transport/limiter.js';
import { Context } from '../../src/transport/context.js';
import { DeflateCodec } from '../../src/transport/permessage-deflate.js';
import { testBytes } from '../helpers/frames.js';

type Release = () => void;

/** Queues `n` jobs that record their start and keep their release for the test. */
function queueJobs(limiter: Limiter, n: number): { started: number[]; releases: Map<number, Release> } {
  const started: number[] = [];
  const releases = new Map<number, Release>();
  for (let i = 0; i < n; i++) {
    limiter.run((release) => {
      started.push(i);
      releases.set(i, release);
    });
  }
  return { started, releases };
}

describe('Limiter', () => {
  it('runs at most `concurrency` jobs; the others wait and start in FIFO order as slots are released', () => {
    const limiter = new Limiter(3);
    const { started, releases } = queueJobs(limiter, 10);
    assert.deepEqual(started, [0, 1, 2]);
    assert.equal(limiter.active, 3);
    assert.equal(limiter.pending, 7);
    releases.get(1)!();
    assert.deepEqual(started, [0, 1, 2, 3], 'one release starts exactly one waiting job, the oldest');
    releases.get(0)!();
    releases.get(3)!();
    assert.deepEqual(started, [0, 1, 2, 3, 4, 5]);
    assert.equal(limiter.active, 3);
    assert.equal(limiter.pending, 4);
    for (let i = 2; i < 10; i++) releases.get(i)?.();
    // Jobs 6..9 started as others finished; release the ones that started late too.
    for (let i = 0; i < 10; i++) releases.get(i)?.();
    assert.deepEqual(
      started,
      Array.from({ length: 10 }, (_, i) => i),
    );
    assert.equal(limiter.active, 0);
    assert.equal(limiter.pending, 0);
  });

  it('releasing twice frees one slot only (a double release cannot exceed the bound)', () => {
    const limiter = new Limiter(1);
    const { started, releases } = queueJobs(limiter, 3);
    releases.get(0)!();
    releases.get(0)!();
    assert.deepEqual(started, [0, 1]);
    assert.equal(limiter.active, 1);
    assert.equal(limiter.pending, 1);
  });

  it('a job that releases synchronously lets the queue run through without recursion trouble', () => {
    const limiter = new Limiter(1);
    let ran = 0;
    for (let i = 0; i < 100_000; i++) {
      limiter.run((release) => {
        ran++;
        release();
      });
    }
    assert.equal(ran, 100_000);
    assert.equal(limiter.active, 0);
  });

  it('a concurrency below 1 is taken as 1 (work is never refused, only queued)', () => {
    for (const c of [0, -5]) {
      const limiter = new Limiter(c);
      assert.equal(limiter.concurrency, 1);
      const { started, releases } = queueJobs(limiter, 2);
      assert.deepEqual(started, [0]);
      releases.get(0)!();
      assert.deepEqual(started, [0, 1]);
    }
  });

  it('Context: zlibConcurrency sets the bound (default 8); each context has its own limiter', () => {
    const a = new Context({ zlibConcurrency: 2 });
    const b = new Context();
    try {
      assert.equal(a.zlib.concurrency, 2);
      assert.equal(b.zlib.concurrency, 8);
      assert.notEqual(a.zlib, b.zlib);
    } finally {
      a.close();
      b.close();
    }
  });

  it('real zlib work of 20 codecs through a limiter of 2: never more than 2 jobs at once, all complete in order per codec', async () => {
    // Counts jobs between their start and their release independently of the Limiter's own counter.
    let inFlight = 0;
    let maxActive = 0;
    let jobsRun = 0;
    class CountingLimiter extends Limiter {
      override run(job: (release: Release) => void): void {
        super.run((release) => {
          inFlight++;
          jobsRun++;
          maxActive = Math.max(maxActive, inFlight);
          let done = false;
          job(() => {
            if (!done) {
              done = true;
              inFlight--;
            }
            release();
          });
        });
      }
    }
    const limiter = new CountingLimiter(2);
    const params = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 };
    const codecs = Array.from({ length: 20 }, () => new DeflateCodec('server', params, {}, limiter));
    const peers = Array.from({ length: 20 }, () => new DeflateCodec('client', params, {}, limiter));
    try {
      const jobs: Array<Promise<void>> = [];
      for (let c = 0; c < codecs.length; c++) {
        const order: number[] = [];
        const messages = Array.from({ length: 5 }, (_, i) => testBytes(64 * 1024 + i, c * 10 + i));
        jobs.push(
          (async () => {
            const compressed = await Promise.all(
              messages.map(
                (m, i) =>
                  new Promise<Buffer>((resolve, reject) =>
                    codecs[c].compress(
                      m,
                      (err, out) => {
                        order.push(i);
                        if (err) reject(err);
                        else resolve(out!);
                      },
                      true,
                    ),
                  ),
              ),
            );
            assert.deepEqual(order, [0, 1, 2, 3, 4]);
            for (let i = 0; i < messages.length; i++) {
              const back = await new Promise<Buffer>((resolve, reject) => peers[c].decompress([compressed[i]], 1 << 20, (err, out) => (err ? reject(err) : resolve(out!))));
              assert.deepEqual(back, messages[i]);
            }
          })(),
        );
      }
      await Promise.all(jobs);
      assert.ok(maxActive <= 2, `at most 2 zlib jobs at once (saw ${maxActive})`);
      assert.equal(maxActive, 2, 'with 20 codecs busy, both slots were used');
      assert.equal(jobsRun, 20 * 5 * 2, 'every compress and every decompress went through the limiter');
      assert.equal(inFlight, 0);
      assert.equal(limiter.active, 0);
      assert.equal(limiter.pending, 0);
    } finally {
      for (const c of [...codecs, ...peers]) c.close();
    }
  });
});
