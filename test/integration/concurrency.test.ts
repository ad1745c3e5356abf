/**
 * Many connections at once: 200 clients connect concurrently, each echoes a
 * few messages of different sizes and types, all verified, all closed with a
 * clean closing handshake (RFC 6455 section 7.1.2); afterwards the server
 * holds no session.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type CloseInfo, type ClientSession, type Message } from '../../src/index.js';
import { echoHandler, pseudoRandomBytes, sha256, startServer, withTimeout } from '../helpers/ws-pair.js';

const CONNECTIONS = 200;
const MESSAGES = 4;

it(`${CONNECTIONS} concurrent connections each echo ${MESSAGES} messages and close cleanly`, { timeout: 60_000 }, async () => {
  const serverCloses: CloseInfo[] = [];
  let opened = 0;
  const t = await startServer({
    handler: echoHandler({
      onOpen() {
        opened++;
      },
      onClose(_session, info) {
        serverCloses.push(info);
      },
    }),
  });
  const clients: ClientSession[] = [];
  try {
    async function one(i: number): Promise<CloseInfo> {
      const client = await connect(t.url(`/c${i}`), { keepalive: null });
      clients.push(client);
      const inbox = client.messages();
      for (let k = 0; k < MESSAGES; k++) {
        // Sizes across the three length encodings; text and binary alternate.
        const size = [5, 200, 70_000, 1000][k] + i;
        const binary = (i + k) % 2 === 0;
        const payload = binary ? pseudoRandomBytes(size, i * 100 + k) : `${i}:${k}:` + 'x'.repeat(size);
        assert.notEqual(client.send(payload), 'dropped');
        const r = await inbox.next();
        assert.equal(r.done, false, `connection ${i} ended early`);
        const m = r.value as Message;
        assert.equal(m.binary, binary, `connection ${i} message ${k} type`);
        assert.equal(sha256(m.data), sha256(payload), `connection ${i} message ${k} content`);
      }
      client.close(1000, `bye ${i}`);
      const info = await client.closed;
      // The iterator ends after a clean close.
      assert.equal((await inbox.next()).done, true);
      return info;
    }
    const results = await withTimeout(Promise.all(Array.from({ length: CONNECTIONS }, (_, i) => one(i))), 50_000, 'all connections');
    assert.equal(opened, CONNECTIONS);
    for (const info of results) {
      assert.equal(info.code, 1000);
      assert.equal(info.wasClean, true);
      assert.equal(info.error, undefined);
      assert.equal(info.unsentMessages, 0);
    }
    // The server side learns of each close when its socket is released; wait for all of them (bounded).
    await withTimeout(
      (async () => {
        while (serverCloses.length < CONNECTIONS) await new Promise((r) => setTimeout(r, 10));
      })(),
      10_000,
      'every server-side onClose',
    );
    assert.equal(serverCloses.length, CONNECTIONS);
    for (const info of serverCloses) {
      assert.equal(info.code, 1000);
      assert.equal(info.wasClean, true);
      assert.match(info.reason, /^bye \d+$/);
    }
    assert.equal(t.server.clients.size, 0, 'the server still holds sessions');
  } finally {
    for (const c of clients) c.terminate();
    await t.server.close();
  }
});
