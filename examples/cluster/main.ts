// cluster: one chat room served by node:cluster workers that share a port.
// Every line a client sends is published to the durable topic 'room' on its
// worker; the relay in the primary numbers it (its offset) and carries it to
// the subscribers on every worker. A rolling restart replaces the workers one
// at a time: each stops with server.shutdown() (close 1012 "service
// restart", after everything queued), and clients that reconnect
// (reconnect()) land on the workers still up and resume from the last offset
// they got, so a line said while they were away still reaches them.
//
// The protocol: a client's first message is {"since": offset or null}; the
// server answers {"at": offset}, then sends each line as {"offset", "text"}.
//
//   node dist/examples/cluster/main.js [--port N] [--workers N]   runs until Ctrl-C;
//                                       SIGHUP to the primary restarts the workers one by one
//   node dist/examples/cluster/main.js --self-test                 four clients, a rolling restart, then it exits
//
// In your own project, import from 'sockeye' instead of '../../src/index.js'.
import cluster, { type Worker } from 'node:cluster';
import { parseArgs } from 'node:util';
import { clusterBrokerPrimary, createClusterBroker, createServer, reconnect, ResumeError, type ClientSession } from '../../src/index.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '7681' },
    workers: { type: 'string', default: '2' },
    'self-test': { type: 'boolean', default: false },
  },
});
const selfTest = values['self-test'] || process.env.SOCKEYE_EXAMPLE_SELFTEST === '1';

/** What a worker tells the primary. */
type FromWorker = { listening: number } | { stopped: number };

if (cluster.isPrimary) await primary();
else await worker();

async function worker(): Promise<void> {
  const broker = createClusterBroker({ durable: ['room'] });
  const server = createServer<{ joined?: boolean }>({
    keepalive: null,
    broker,
    // Once per line on each worker: every subscriber there gets the same frame, with the line's offset.
    envelope: ({ offset, payload }) => JSON.stringify({ offset, text: payload.toString('utf8') }),
    handler: {
      onMessage(session, message) {
        if (session.data.joined) return void server.publish('room', message.text);
        // The first message says where the client was: it gets what it missed, then the live lines.
        session.data.joined = true;
        const { since } = JSON.parse(message.text) as { since: string | null };
        session.resume('room', since).then(
          ({ offset }) => session.send(JSON.stringify({ at: offset })),
          // Older than the history the primary keeps (or not an offset): said, not skipped.
          (err: unknown) => session.close(4000, err instanceof ResumeError ? err.code : 'cannot resume'),
        );
      },
    },
  });
  // Workers that listen on the same port share it: the primary accepts and hands the connections out.
  const { port } = await server.listen(Number(process.env.PORT), '127.0.0.1');
  process.send!({ listening: port } satisfies FromWorker);
  process.on('message', (m) => {
    if (m !== 'shutdown') return;
    // 1012: the clients know to come back; each gets what was queued for it before the close.
    void server.shutdown({ code: 1012, timeoutMs: 5000 }).then(({ sessions }) => {
      process.send!({ stopped: sessions } satisfies FromWorker, () => process.exit(0));
    });
  });
  process.on('disconnect', () => process.exit(0));
}

async function primary(): Promise<void> {
  // The relay between the workers: it must run in the primary before they are forked.
  const relay = clusterBrokerPrimary();
  cluster.setupPrimary({ serialization: 'advanced' });
  const count = selfTest ? 2 : Number(values.workers);
  // Every worker listens on the same port number, 0 included: in a cluster, port 0 means one free port
  // chosen once and shared by all of them (Node's cluster docs), so a worker's replacement gets it too.
  const listenPort = selfTest ? 0 : Number(values.port);
  let port = listenPort;

  const fork = (): Promise<Worker> => {
    const w = cluster.fork({ PORT: String(listenPort) });
    return new Promise((resolve, reject) => {
      w.on('message', (m: FromWorker) => {
        if ('listening' in m) {
          port = m.listening;
          resolve(w);
        }
      });
      w.once('exit', (code) => reject(new Error(`worker exited with ${code} before it listened`)));
    });
  };
  /** Replaces the workers one at a time: the next one stops only once its replacement listens. */
  const rollingRestart = async (workers: Worker[]): Promise<void> => {
    for (let i = 0; i < workers.length; i++) {
      const old = workers[i];
      // The worker says how many sessions it closed with 1012 before it exits.
      const stopped = new Promise<number>((resolve) => old.on('message', (m: FromWorker) => 'stopped' in m && resolve(m.stopped)));
      old.send('shutdown');
      await stopped;
      workers[i] = await fork();
      console.log(`worker ${i + 1} restarted`);
    }
  };

  // The first worker picks the port (0: a free one); the others share it.
  const workers = [await fork()];
  while (workers.length < count) workers.push(await fork());
  if (!selfTest) {
    console.log(`${count} workers on ws://127.0.0.1:${port}/ (SIGHUP: rolling restart)`);
    process.on('SIGHUP', () => void rollingRestart(workers));
    return;
  }
  console.log(`${count} workers listening on port ${port}`);

  // Four clients that come back after each drop, from the last offset they got; each records what the room says.
  const url = `ws://127.0.0.1:${port}/`;
  const names = ['ann', 'bob', 'cat', 'dan'];
  const current = new Map<string, ClientSession>();
  const heard = new Map<string, string[]>(names.map((n) => [n, []]));
  const last = new Map<string, string | null>(names.map((n) => [n, null]));
  const join = (name: string) => {
    const rc = reconnect(url, {
      keepalive: null,
      retry: { delaysMs: [50, 100] },
      handler: {
        onOpen: (s) => s.send(JSON.stringify({ since: last.get(name) })),
        onMessage: (_s, m) => {
          const { at, offset, text } = JSON.parse(m.text) as { at?: string; offset?: string; text?: string };
          if (offset !== undefined) {
            last.set(name, offset);
            heard.get(name)!.push(text!);
          } else if (last.get(name) === null) last.set(name, at!);
        },
      },
    });
    const done = (async () => {
      for await (const session of rc) {
        current.set(name, session);
        await session.closed;
      }
    })();
    return { rc, done };
  };
  const loops = new Map(names.map((name) => [name, join(name)]));
  const until = async (check: () => boolean | Promise<boolean>, what: string) => {
    const deadline = Date.now() + 10_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`${what}: not within 10 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  /** Every client connected and resumed, and the room's subscribers known across the cluster. */
  const allIn = () =>
    until(async () => names.every((n) => current.get(n)?.state === 'open' && last.get(n) !== null) && (await relay.subscriberCount('room')) === names.length, 'every client in the room');
  const say = async (who: string, text: string, listeners = names) => {
    for (const n of listeners) heard.set(n, []);
    current.get(who)!.send(text);
    await until(() => listeners.every((n) => heard.get(n)!.includes(text)), `everyone to hear "${text}"`);
    console.log(`${who} said "${text}": all ${listeners.length} heard it once`);
    for (const n of listeners) if (heard.get(n)!.filter((t) => t === text).length !== 1) throw new Error(`${n} heard it more than once`);
  };

  await allIn();
  console.log(`${names.length} clients in the room`);
  await say('ann', 'hello from one worker');
  await rollingRestart(workers);
  await allIn();
  console.log(`${names.length} clients back in the room`);
  await say('dan', 'after the restart');

  // bob goes away for a while; what is said meanwhile waits for him in the primary's history.
  const bob = loops.get('bob')!;
  bob.rc.close();
  await bob.done;
  console.log('bob left');
  await say('ann', 'while bob was away', ['ann', 'cat', 'dan']);
  heard.set('bob', []);
  loops.set('bob', join('bob'));
  await until(() => heard.get('bob')!.length === 1, 'bob to get what he missed');
  console.log(`bob came back from his last offset and got "${heard.get('bob')![0]}"`);

  for (const l of loops.values()) l.rc.close();
  await Promise.all([...loops.values()].map((l) => l.done));
  for (const w of workers) w.kill();
  relay.close();
  console.log('done');
}
