/**
 * ClusterLink over a stand-in for node-redis's cluster client (no server):
 * each command the broker sends is routed by the key of its slot, CLIENT
 * commands go to the anchor key's node, plain pub/sub is refused, the
 * subscribed channels are tracked, and readiness follows the nodes.
 * test/redis/redis-cluster.test.ts runs it on a real cluster.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { ClusterLink, type ClusterClient, type ClusterNodeInfo } from '../../src/redis/redis-cluster-link.js';

class FakeCluster extends EventEmitter {
  isReady = false;
  isOpen = false;
  routed: Array<{ key: string | undefined; args: string[] }> = [];
  nodeCommands: Array<{ key: string; args: string[] }> = [];
  unsubscribed: string[] = [];
  failConnect = 0;
  async connect(): Promise<void> {
    if (this.failConnect-- > 0) throw new Error('no root node answers');
    this.isOpen = this.isReady = true;
    this.emit('connect');
  }
  async sendCommand(firstKey: string | Buffer | undefined, _ro: boolean | undefined, args: ReadonlyArray<string | Buffer>): Promise<unknown> {
    this.routed.push({ key: firstKey === undefined ? undefined : String(firstKey), args: args.map(String) });
    return 'OK';
  }
  async sSubscribe(): Promise<void> {}
  async sUnsubscribe(channel: string): Promise<void> {
    this.unsubscribed.push(channel);
  }
  async getNodeClientForKey(key: string) {
    return { sendCommand: async (args: ReadonlyArray<string | Buffer>) => void this.nodeCommands.push({ key, args: args.map(String) }) };
  }
  getSlotMaster(slot: number): ClusterNodeInfo {
    return { host: '127.0.0.1', port: slot < 8192 ? 7000 : 7001 };
  }
  async close(): Promise<void> {
    this.isOpen = this.isReady = false;
  }
  destroy(): void {
    this.isOpen = this.isReady = false;
  }
}

const link = (fake: FakeCluster, readyNeedsEveryNode = false) =>
  new ClusterLink(fake as unknown as ClusterClient, { anchorKey: 'p:{streams}:', readyNeedsEveryNode, retryDelay: () => 1 });

describe('ClusterLink', () => {
  it('routes each command of the broker by its key, and CLIENT commands to the anchor key\'s node', async () => {
    const fake = new FakeCluster();
    const l = link(fake);
    await l.connect();
    await l.sendCommand(['XADD', 'p:{streams}:a', 'MAXLEN', '~', '10', '*', 'm', Buffer.from('x')]);
    await l.sendCommand(['SPUBLISH', 'p:news', Buffer.from('x')]);
    await l.sendCommand(['EVAL', 'return 1', '2', 'p:{presence}:nodes', 'p:{presence}:counts:n', 'arg']);
    await l.sendCommand(['EVAL', 'return 1', '0']);
    await l.sendCommand(['XREAD', 'COUNT', '5', 'BLOCK', '10', 'STREAMS', 'p:{streams}:a', 'p:{streams}:b', '0-0', '0-0']);
    await l.sendCommand(['XINFO', 'STREAM', 'p:{streams}:b']);
    await l.sendCommand(['HGET', 'p:{presence}:counts:n', 'news']);
    await l.sendCommand(['CLIENT', 'UNBLOCK', '7']);
    assert.deepEqual(
      fake.routed.map((r) => r.key),
      ['p:{streams}:a', 'p:news', 'p:{presence}:nodes', undefined, 'p:{streams}:a', 'p:{streams}:b', 'p:{presence}:counts:n'],
    );
    assert.deepEqual(fake.nodeCommands, [{ key: 'p:{streams}:', args: ['CLIENT', 'UNBLOCK', '7'] }]);
  });

  it('refuses plain pub/sub, and tracks the sharded channels it subscribed (all unsubscribed at once when none is named)', async () => {
    const fake = new FakeCluster();
    const l = link(fake);
    await l.connect();
    await assert.rejects(l.subscribe(), /sharded pub\/sub only/);
    const listener = () => undefined;
    await l.sSubscribe('p:a', listener, true);
    await l.sSubscribe('p:b', listener, true);
    assert.deepEqual([...l.getPubSubListeners('SHARDED').keys()], ['p:a', 'p:b']);
    assert.equal(l.getPubSubListeners('CHANNELS').size, 0);
    await l.sUnsubscribe('p:a');
    assert.deepEqual([...l.getPubSubListeners('SHARDED').keys()], ['p:b']);
    await l.sUnsubscribe();
    assert.deepEqual(fake.unsubscribed, ['p:a', 'p:b']);
    assert.equal(l.getPubSubListeners('SHARDED').size, 0);
  });

  it('tries discovery again until it works, saying each failed round', async () => {
    const fake = new FakeCluster();
    fake.failConnect = 2;
    const l = link(fake);
    const errors: string[] = [];
    let ready = 0;
    l.on('error', (e) => errors.push(e.message));
    l.on('ready', () => ready++);
    // The link's retry timer is unref'd (it must not hold a closing process): this keeps the test's loop alive.
    const keep = setInterval(() => undefined, 1000);
    await l.connect().finally(() => clearInterval(keep));
    assert.deepEqual(errors, ['no root node answers', 'no root node answers']);
    assert.equal(ready, 1);
    assert.ok(l.isReady);
  });

  it('says ready again when a lost node is back; with readyNeedsEveryNode it is not ready while one is down', async () => {
    for (const every of [false, true]) {
      const fake = new FakeCluster();
      const l = link(fake, every);
      let ready = 0;
      const nodes: Array<[string, boolean]> = [];
      l.on('ready', () => ready++);
      l.onNode((address, err) => nodes.push([address, err !== null]));
      await l.connect();
      assert.equal(ready, 1);
      fake.emit('node-error', new Error('Socket closed unexpectedly'), { host: '127.0.0.1', port: 7001 });
      fake.emit('node-error', new Error('ECONNREFUSED'), { host: '127.0.0.1', port: 7001 });
      assert.equal(l.isReady, !every);
      fake.emit('node-ready', { host: '127.0.0.1', port: 7001 });
      assert.ok(l.isReady);
      assert.equal(ready, 2, 'ready again once the node is back');
      assert.deepEqual(nodes, [['127.0.0.1:7001', true], ['127.0.0.1:7001', true], ['127.0.0.1:7001', false]]);
      assert.equal(l.nodeOf('x'), `127.0.0.1:${(await import('../../src/redis/redis-slot.js')).keySlot('x') < 8192 ? 7000 : 7001}`);
    }
  });
});
