/**
 * A node:cluster worker for test/pubsub/cluster-resume.test.ts (not a test
 * itself). A sockeye server with a ClusterBroker whose topic 'feed' is
 * durable, listening on 127.0.0.1 port 0 (shared by every worker, as
 * examples/cluster does). Its envelope sends each publication as
 * {"o":offset,"p":payload}; a client's first message {"since":offset|null}
 * resumes it (session.resume()), answered {"at":offset}, or closed with
 * 4000 and the ResumeError's code.
 *
 * Over IPC: 'publish' starts publishing {"pub":nodeId,"n":1,2,3...} every
 * `everyMs` (or publishes `count` at once, answered with a report); 'stop' stops and reports what it published; 'shutdown' stops,
 * reports, then shuts the server down with 1012 and exits. It exits when the
 * primary goes.
 */
import { createClusterBroker, createServer, ResumeError } from '../../src/index.js';

/** What this worker tells the primary when it stops publishing. */
export interface PublisherReport {
  report: true;
  pub: string;
  published: number;
  /** Publications that resumes on this worker sent from the history. */
  delivered: number;
  resumes: number;
  errors: string[];
}

const broker = createClusterBroker({ durable: ['feed'] });
const errors: string[] = [];
let published = 0;
let delivered = 0;
let resumes = 0;
let timer: NodeJS.Timeout | null = null;

const server = createServer({
  keepalive: null,
  broker,
  // Built once per publication on this node, then one frame for every subscriber.
  envelope: ({ offset, payload }) => `{"o":"${offset}","p":${payload.toString('utf8')}}`,
  onError: (e) => errors.push(String(e)),
  handler: {
    onMessage(session, message) {
      const { since } = JSON.parse(message.text) as { since: string | null };
      session.resume('feed', since).then(
        (r) => {
          resumes++;
          delivered += r.delivered;
          session.send(JSON.stringify({ at: r.offset }));
        },
        (e: unknown) => {
          errors.push(`resume from ${since}: ${String(e)}`);
          session.close(4000, e instanceof ResumeError ? e.code : 'resume failed');
        },
      );
    },
  },
});

function stop(): PublisherReport {
  if (timer) clearInterval(timer);
  timer = null;
  return { report: true, pub: broker.nodeId, published, delivered, resumes, errors };
}

const publishOne = () => server.publish('feed', JSON.stringify({ pub: broker.nodeId, n: ++published }));

process.on('message', (m: { cmd?: string; everyMs?: number; count?: number }) => {
  switch (m.cmd) {
    case 'publish':
      if (m.count === undefined) timer ??= setInterval(publishOne, m.everyMs ?? 10);
      else {
        for (let i = 0; i < m.count; i++) publishOne();
        process.send!({ report: true, pub: broker.nodeId, published, delivered, resumes, errors } satisfies PublisherReport);
      }
      return;
    case 'stop':
      process.send!(stop());
      return;
    case 'shutdown':
      // Reported after every publication on the channel: the relay has stored them all by then.
      process.send!(stop());
      void server.shutdown({ code: 1012, timeoutMs: 5000 }).then(() => process.exit(0));
      return;
  }
});

// Without its primary this worker has no purpose: it never outlives a test that failed.
process.on('disconnect', () => process.exit(0));

const address = await server.listen(0, '127.0.0.1');
process.send!({ ready: true, node: broker.nodeId, port: address.port });
