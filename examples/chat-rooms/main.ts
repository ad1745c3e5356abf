// chat-rooms: topics and fan-out. Each client picks a name with the ?name=
// query, joins and leaves rooms ("/join #room", "/leave #room"), and every
// other line it sends goes to the rooms it is in, through server.publish():
// the message is copied once and its frame built once for all the room's
// members. server.broadcast() tells everyone who comes and goes.
//
//   node dist/examples/chat-rooms/main.js [--port N]     runs until Ctrl-C
//   node dist/examples/chat-rooms/main.js --self-test    three clients chat, then it exits
//
// In your own project, import from 'sockeye' instead of '../../src/index.js'.
import { parseArgs } from 'node:util';
import { connect, createServer, type ClientSession, type ServerHandler, type ServerSession } from '../../src/index.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '7681' },
    'self-test': { type: 'boolean', default: false },
  },
});
const selfTest = values['self-test'] || process.env.SOCKEYE_EXAMPLE_SELFTEST === '1';

/** Room names: '#' and 1 to 32 letters, digits, '-' or '_'. */
const ROOM = /^#[A-Za-z0-9_-]{1,32}$/;

/** What each session keeps: its member's name, once it gave a valid one. */
interface Member {
  name?: string;
}

function nameOf(session: ServerSession<Member>): string {
  return String(session.data.name);
}

const chat: ServerHandler<Member> = {
  onOpen(session) {
    const name = session.request.query.get('name') ?? '';
    if (!/^[A-Za-z0-9_-]{1,24}$/.test(name)) {
      session.close(1008, 'pick a name with ?name= (1 to 24 letters, digits, - or _)');
      return;
    }
    session.data.name = name;
    // Everyone, the newcomer included: one frame for all of them.
    server.broadcast(`* ${name} is online (${server.clients.size} connected)`);
  },
  onMessage(session, message) {
    if (message.binary) return;
    const text = message.text;
    const [command, room] = text.split(' ');
    if (command === '/join' || command === '/leave') {
      if (!ROOM.test(room ?? '')) {
        session.send(`! not a room name: ${room ?? ''}`);
        return;
      }
      const changed = command === '/join' ? session.subscribe(room) : session.unsubscribe(room);
      const members = server.subscriberCount(room);
      session.send(changed ? `* ${command === '/join' ? 'joined' : 'left'} ${room} (${members} in it)` : `! already ${command === '/join' ? 'in' : 'out of'} ${room}`);
      return;
    }
    if (session.topics.length === 0) {
      session.send('! join a room first: /join #room');
      return;
    }
    // Each room gets the line once; a member of two rooms gets it once per room.
    for (const r of session.topics) server.publish(r, `[${r}] ${nameOf(session)}: ${text}`);
  },
  onClose(session) {
    // This session is closed, so the broadcast skips it (and it leaves its rooms right after).
    if (session.data.name !== undefined && !stopping) server.broadcast(`* ${nameOf(session)} left`);
  },
};

let stopping = false;
const server = createServer({ handler: chat });
const address = await server.listen(selfTest ? 0 : Number(values.port), '127.0.0.1');
const base = `ws://127.0.0.1:${address.port}/`;
console.log(`chat-rooms: listening on ${base}?name=you`);

if (selfTest) {
  const inboxes = new Map<string, AsyncIterableIterator<{ text: string }>>();
  const clients = new Map<string, ClientSession>();
  async function join(name: string): Promise<void> {
    const c = await connect(`${base}?name=${name}`);
    clients.set(name, c);
    inboxes.set(name, c.messages());
  }
  /** Prints the next message `name` receives. */
  async function next(name: string): Promise<void> {
    const m = await inboxes.get(name)!.next();
    if (m.done) throw new Error(`${name}: connection ended`);
    console.log(`${name} <- ${m.value.text}`);
  }
  function say(name: string, text: string): void {
    console.log(`${name} -> ${text}`);
    clients.get(name)!.send(text);
  }

  await join('alice');
  await next('alice');
  await join('bob');
  await next('alice');
  await next('bob');
  say('alice', '/join #general');
  await next('alice');
  say('bob', '/join #general');
  await next('bob');
  say('bob', '/join #random');
  await next('bob');
  say('alice', 'hello, room');
  await next('alice');
  await next('bob');
  say('bob', 'hi alice');
  // bob is in two rooms: one copy for each; alice only hears #general.
  await next('alice');
  await next('bob');
  await next('bob');
  say('bob', '/leave #general');
  await next('bob');
  say('alice', 'anyone?');
  await next('alice');
  clients.get('bob')!.close(1000, 'bye');
  await clients.get('bob')!.closed;
  await next('alice');
  stopping = true;
  clients.get('alice')!.close(1000, 'bye');
  await clients.get('alice')!.closed;
  await server.close();
  console.log('chat-rooms: stopped');
} else {
  const stop = () => {
    stopping = true;
    console.log('chat-rooms: stopping, closing clients with 1001');
    void server.close().then(() => console.log('chat-rooms: stopped'));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
