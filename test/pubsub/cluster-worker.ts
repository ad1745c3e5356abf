/**
 * A node:cluster worker for test/pubsub/cluster.test.ts (not a test itself:
 * the runner takes only *.test.js). It runs a sockeye server with a
 * ClusterBroker, listening on 127.0.0.1 port 0: in a cluster every worker
 * that listens on port 0 is given the same port, chosen once by the primary,
 * which accepts the connections and hands them to the workers in turn
 * (Node's cluster docs, "How it works"). Each session is greeted with its
 * node's id, so a test knows which worker a client landed on.
 *
 * Clients drive subscriptions ('sub:<topic>', 'unsub:<topic>', answered
 * 'ok ...'); the test drives the rest over IPC ({ test: ... } messages,
 * answered { id, ... }). It exits when the primary goes.
 */
import { createClusterBroker, createServer, BrokerError, type ClusterBroker } from '../../src/index.js';

interface Command {
  test: 'publish' | 'count' | 'local-count' | 'nodes' | 'errors' | 'state';
  id: number;
  topic?: string;
  prefix?: string;
  count?: number;
}

const broker: ClusterBroker = createClusterBroker();
const errors: Array<{ code: string; topics: readonly string[]; node: string | undefined; message: string }> = [];
const server = createServer({
  keepalive: null,
  broker,
  onError(e) {
    if (e instanceof BrokerError) errors.push({ code: e.code, topics: e.topics, node: e.node, message: e.message });
    else errors.push({ code: 'OTHER', topics: [], node: undefined, message: String(e) });
  },
  handler: {
    onOpen(session) {
      session.send(`hello ${broker.nodeId}`);
    },
    onMessage(session, message) {
      const [verb, topic] = message.text.split(':');
      if (verb === 'sub') session.subscribe(topic);
      else if (verb === 'unsub') session.unsubscribe(topic);
      session.send(`ok ${message.text}`);
    },
  },
});

process.on('message', (m: unknown) => {
  if (typeof m !== 'object' || m === null || !('test' in m)) return;
  const c = m as Command;
  const reply = (body: object) => process.send!({ id: c.id, ...body });
  switch (c.test) {
    case 'publish':
      for (let i = 0; i < (c.count ?? 1); i++) server.publish(c.topic!, `${c.prefix ?? ''}${i}`);
      reply({ done: true });
      return;
    case 'count':
      server.clusterSubscriberCount(c.topic!).then(
        (count) => reply({ count }),
        (e: unknown) => reply({ error: String(e) }),
      );
      return;
    case 'local-count':
      reply({ count: server.subscriberCount(c.topic!) });
      return;
    case 'nodes':
      broker.nodes().then(
        (nodes) => reply({ nodes: nodes.map((n) => n.id).sort() }),
        (e: unknown) => reply({ error: String(e) }),
      );
      return;
    case 'errors':
      reply({ errors });
      return;
    case 'state':
      reply({ state: broker.state });
      return;
  }
});

// Without its primary this worker has no purpose: it never outlives a test that failed.
process.on('disconnect', () => process.exit(0));

const address = await server.listen(0, '127.0.0.1');
process.send!({ ready: true, node: broker.nodeId, port: address.port });
