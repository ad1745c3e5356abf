import type { Publication } from '../pubsub/broker.js';
import { decodePublication, encodePublicationBytes } from './redis-codec.js';
import { BUFFERS, compareStreamIds, isReplyError, isTransientReply, messageOf, type RedisLink } from './redis-link.js';

/**
 * Durable topics of the Redis broker: at least once, through Redis Streams.
 * A publication is an entry (XADD, the stream bounded by MAXLEN ~ N) and
 * every subscribed node reads the streams of its topics from the last entry
 * it took (XREAD BLOCK), so a node that was disconnected, or a Redis that
 * restarted with its data, goes on where it was and replays what it missed.
 */

interface OutboxEntry {
  readonly p: Publication;
  readonly key: string;
  readonly bytes: number;
  /** Handed to Redis at least once: a later sending may repeat it (the redelivery flag). */
  sent: boolean;
  /** The link's life (DurableOutbox.epoch) in which it was last handed over. */
  epoch: number;
}

/** What the outbox needs of the broker. */
export interface OutboxSink {
  /** The command link. */
  readonly link: RedisLink;
  readonly maxLength: number;
  /** Redis refused the entry (an error reply): it will never be stored. */
  refused(p: Publication, err: unknown): void;
}

/**
 * This node's durable publications not yet acknowledged by Redis, in the
 * order they were published. Each is sent at once while the link is up; when
 * the link is lost, what was unacknowledged may or may not have been stored,
 * so once it is back every entry still here is sent again, in order, before
 * anything newer (one connection keeps the order), flagged as a redelivery:
 * a receiver drops the repeats by seq without a report (BrokerBinding,
 * test/redis/redis-broker.test.ts, "durable"). Its bytes count against the
 * broker's maxQueuedBytes, checked before push().
 */
export class DurableOutbox {
  private readonly sink: OutboxSink;
  private readonly queue: OutboxEntry[] = [];
  private head = 0;
  private epoch = 0;
  private _bytes = 0;
  private readonly drained: Array<() => void> = [];
  /** A sending again after a transient refusal (CLUSTERDOWN, LOADING...), and how many came in a row. */
  private retryTimer: NodeJS.Timeout | null = null;
  private retries = 0;

  constructor(sink: OutboxSink) {
    this.sink = sink;
  }

  get bytes(): number {
    return this._bytes;
  }

  get size(): number {
    return this.queue.length - this.head;
  }

  push(p: Publication, key: string, bytes: number): void {
    const e: OutboxEntry = { p, key, bytes, sent: false, epoch: this.epoch };
    this.queue.push(e);
    this._bytes += bytes;
    if (this.sink.link.isReady) this.send(e);
  }

  /** The link is (back) up: everything still here goes, in order. */
  linkReady(): void {
    this.epoch++;
    for (let i = this.head; i < this.queue.length; i++) this.send(this.queue[i]);
  }

  /** Resolves once the outbox is empty. */
  whenDrained(): Promise<void> {
    if (this.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drained.push(resolve));
  }

  /** Empties the outbox (closing): what was still in it, for a report. */
  takeAll(): Publication[] {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const rest = this.queue.slice(this.head).map((e) => e.p);
    this.queue.length = 0;
    this.head = 0;
    this._bytes = 0;
    this.settled();
    return rest;
  }

  private send(e: OutboxEntry): void {
    const redelivery = e.sent;
    e.sent = true;
    e.epoch = this.epoch;
    const args = ['XADD', e.key, 'MAXLEN', '~', String(this.sink.maxLength), '*', 'm', encodePublicationBytes(e.p, redelivery)];
    this.sink.link.sendCommand(args).then(
      () => {
        this.retries = 0;
        this.remove(e);
      },
      (err: unknown) => {
        if (isTransientReply(err)) {
          // "Not now" (a cluster node just restarted, a server loading its data): the entry stays and everything
          // still here is sent again, in order, shortly (test/redis/redis-cluster.test.ts, "streams' shard is down").
          this.retryLater();
        } else if (isReplyError(err)) {
          this.remove(e);
          this.sink.refused(e.p, err);
        }
        // Otherwise the link was lost (or is not up): the entry stays, and is sent again by linkReady().
      },
    );
  }

  private retryLater(): void {
    if (this.retryTimer) return;
    const delay = Math.min(50 * 2 ** this.retries++, 1000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.size > 0 && this.sink.link.isReady) this.linkReady();
    }, delay);
    this.retryTimer.unref();
  }

  private remove(e: OutboxEntry): void {
    // Replies come in order on one connection, so this is the head but after takeAll().
    let i = this.head;
    if (this.queue[i] !== e) {
      i = this.queue.indexOf(e, this.head);
      if (i < 0) return;
    }
    this._bytes -= e.bytes;
    if (i === this.head) this.head++;
    else this.queue.splice(i, 1);
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    if (this.size === 0) this.settled();
  }

  private settled(): void {
    for (const r of this.drained.splice(0)) r();
  }
}

/** What the stream reader needs of the broker. */
export interface StreamReaderHost {
  readonly nodeId: string;
  /** The dedicated link for XREAD BLOCK (nothing else waits behind it). */
  readonly reader: RedisLink;
  /** The command link, for CLIENT UNBLOCK while the reader is blocked. */
  readonly link: RedisLink;
  /** Most entries one XREAD takes per stream. */
  readonly batch: number;
  /** Longest XREAD BLOCK, in ms: how late a new topic may be read when CLIENT UNBLOCK is not allowed. */
  readonly blockMs: number;
  keyOf(topic: string): string;
  deliver(p: Publication): void;
  malformed(topic: string, reason: string): void;
  /** Entries past this node's position are gone (trimmed, or Redis lost them) on these topics. */
  lost(topics: string[], reason: string): void;
  failed(err: unknown): void;
}

interface Position {
  readonly key: string;
  /** The id of the last entry taken ('0-0': before the first). */
  id: string;
  /** The stream's entries-added counter as far as this node has taken: at the start, plus one per entry taken. */
  added: number;
}

/**
 * The reading side of durable topics: one XREAD BLOCK loop over the streams
 * of this node's durable topics, each read from the last entry taken. The
 * position of a topic starts at its stream's last generated id when the topic
 * is subscribed (what was published before is not this node's), and moves
 * only as entries are taken, so a lost link or a Redis restart loses nothing
 * that Redis kept: the next XREAD replays it. After a reconnect, each stream
 * is checked for entries deleted past the position (MAXLEN trimming while
 * this node was away, or a Redis that lost its data) and that is reported.
 */
export class StreamReader {
  private readonly host: StreamReaderHost;
  private readonly positions = new Map<string, Position>();
  /** Stream key, as the bytes Redis sends back (latin1 of UTF-8), to topic. */
  private readonly byKey = new Map<string, string>();
  private closed = false;
  private started = false;
  private clientId: string | null = null;
  private needsId = true;
  private reconnected = false;
  /** Bumped at each change of the topic set: an XREAD started before one is woken. */
  private generation = 0;
  private readingGeneration = -1;
  private wake: (() => void) | null = null;
  private loopDone: Promise<void> = Promise.resolve();

  constructor(host: StreamReaderHost) {
    this.host = host;
  }

  get topics(): number {
    return this.positions.size;
  }

  has(topic: string): boolean {
    return this.positions.has(topic);
  }

  /** Starts reading `topic` from its stream's end; resolves once the position is taken. */
  async add(topic: string): Promise<void> {
    const key = this.host.keyOf(topic);
    const info = await streamInfo(this.host.link, key);
    if (this.closed) return;
    this.positions.set(topic, { key, id: info?.lastGenerated ?? '0-0', added: info?.entriesAdded ?? 0 });
    this.byKey.set(Buffer.from(key, 'utf8').toString('latin1'), topic);
    this.generation++;
    if (!this.started) {
      this.started = true;
      this.loopDone = this.loop();
    }
    this.nudge();
  }

  remove(topic: string): void {
    const p = this.positions.get(topic);
    if (!p) return;
    this.positions.delete(topic);
    this.byKey.delete(Buffer.from(p.key, 'utf8').toString('latin1'));
    this.generation++;
  }

  /** The reader link is (back) up. */
  readerReady(): void {
    this.needsId = true;
    this.reconnected = this.started;
    this.wakeUp();
  }

  /** Stops the loop; resolves once it has returned (the reader link is to be destroyed by then). */
  close(): Promise<void> {
    this.closed = true;
    this.wakeUp();
    return this.loopDone;
  }

  private async loop(): Promise<void> {
    const { reader } = this.host;
    while (!this.closed) {
      if (!reader.isReady || this.positions.size === 0) {
        await this.sleep(1000);
        continue;
      }
      try {
        if (this.needsId) {
          this.clientId = String(await reader.sendCommand(['CLIENT', 'ID']));
          this.needsId = false;
          if (this.reconnected) {
            await this.checkLost();
            this.reconnected = false;
          }
        }
        const positions = [...this.positions.values()];
        const args = ['XREAD', 'COUNT', String(this.host.batch), 'BLOCK', String(this.host.blockMs), 'STREAMS', ...positions.map((p) => p.key), ...positions.map((p) => p.id)];
        this.readingGeneration = this.generation;
        const reply = await reader.sendCommand<unknown>(args, { typeMapping: BUFFERS });
        this.readingGeneration = -1;
        if (reply !== null) this.take(reply);
      } catch (err) {
        this.readingGeneration = -1;
        if (this.closed) return;
        if (isTransientReply(err)) {
          // "Not now": nothing is lost (the read starts again from this node's position), so nothing is said.
          await this.sleep(100);
        } else if (isReplyError(err)) {
          // Redis refused the read (a key of another type, an ACL): said once per round, not in a tight loop.
          this.host.failed(err);
          await this.sleep(this.host.blockMs);
        }
        // Otherwise the link was lost: the loop waits for it at the top, and readerReady() wakes it.
      }
    }
  }

  /** Takes XREAD's reply: per stream, its entries in order. */
  private take(reply: unknown): void {
    if (!Array.isArray(reply)) return;
    // RESP3 gives a map (flat here: key, entries, key, entries...); RESP2 an array of [key, entries].
    const pairs: Array<[unknown, unknown]> = [];
    if (reply.length > 0 && Array.isArray(reply[0])) for (const r of reply as unknown[][]) pairs.push([r[0], r[1]]);
    else for (let i = 0; i + 1 < reply.length; i += 2) pairs.push([reply[i], reply[i + 1]]);
    for (const [keyBytes, entries] of pairs) {
      if (!Buffer.isBuffer(keyBytes) || !Array.isArray(entries)) continue;
      const topic = this.byKey.get(keyBytes.toString('latin1'));
      if (topic === undefined) continue; // unsubscribed while the read was under way
      const position = this.positions.get(topic)!;
      for (const entry of entries as unknown[]) {
        if (!Array.isArray(entry) || !Buffer.isBuffer(entry[0])) continue;
        position.id = entry[0].toString('latin1');
        position.added++;
        const fields = entry[1];
        // Exactly one field, 'm': anything else was written by someone else.
        if (!Array.isArray(fields) || fields.length !== 2 || !Buffer.isBuffer(fields[0]) || fields[0].toString('latin1') !== 'm' || !Buffer.isBuffer(fields[1])) {
          this.host.malformed(topic, `stream entry ${position.id} is not a publication (its fields are not exactly 'm')`);
          continue;
        }
        const d = decodePublication(topic, fields[1]);
        if (!d.ok) this.host.malformed(topic, `stream entry ${position.id}: ${d.reason}`);
        else if (d.publication.origin !== this.host.nodeId) this.host.deliver(d.publication);
        // A delivery may have unsubscribed the topic (a session that left on a message).
        if (!this.positions.has(topic)) break;
      }
    }
  }

  /**
   * After a reconnect: were entries past a position deleted before this node
   * read them? Trimming takes the oldest entries, so when the stream's first
   * entry is past the position, every entry past it that is still there is in
   * the stream's length, and entries-added (Redis 7) says how many there were.
   */
  private async checkLost(): Promise<void> {
    const lost: string[] = [];
    for (const [topic, p] of [...this.positions]) {
      const info = await streamInfo(this.host.reader, p.key);
      if (info === null) {
        // The stream is gone while this node had read some of it: Redis lost its data.
        if (p.id !== '0-0') lost.push(topic);
        p.id = '0-0';
        p.added = 0;
      } else if (info.first !== null && compareStreamIds(info.first, p.id) > 0 && info.entriesAdded - p.added > info.length) {
        lost.push(topic);
      }
    }
    if (lost.length > 0) this.host.lost(lost, 'entries past where this node had read were deleted while it was disconnected (MAXLEN trimming, or Redis lost its data)');
  }

  /** The topic set changed while an XREAD may be blocked without it: CLIENT UNBLOCK ends that XREAD early. */
  private nudge(tries = 5): void {
    this.wakeUp();
    if (this.closed || this.readingGeneration === -1 || this.readingGeneration >= this.generation || this.clientId === null || !this.host.link.isReady) return;
    this.host.link.sendCommand(['CLIENT', 'UNBLOCK', this.clientId]).then(
      (n) => {
        // 0: the XREAD has not reached Redis yet (or just returned); tried again shortly, then left to blockMs.
        if (n === 0 && tries > 1) setTimeout(() => this.nudge(tries - 1), 10).unref();
      },
      () => undefined, // not allowed (ACL), or the link is down: the XREAD ends within blockMs anyway
    );
  }

  private wakeUp(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      t.unref();
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }
}

/** What XINFO STREAM says that this module needs; null when there is no such stream. */
async function streamInfo(link: RedisLink, key: string): Promise<{ lastGenerated: string; first: string | null; length: number; entriesAdded: number } | null> {
  let reply: unknown;
  try {
    reply = await link.sendCommand(['XINFO', 'STREAM', key], { typeMapping: BUFFERS });
  } catch (err) {
    if (isReplyError(err) && /no such key/i.test(messageOf(err))) return null;
    throw err;
  }
  const flat = Array.isArray(reply) ? (reply as unknown[]) : [];
  const field = (name: string): unknown => {
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const k = flat[i];
      if (Buffer.isBuffer(k) && k.toString('latin1') === name) return flat[i + 1];
    }
    return undefined;
  };
  const id = (v: unknown): string | null => (Buffer.isBuffer(v) ? v.toString('latin1') : null);
  const first = field('first-entry');
  return {
    lastGenerated: id(field('last-generated-id')) ?? '0-0',
    first: Array.isArray(first) ? id(first[0]) : null,
    length: Number(field('length') ?? 0),
    entriesAdded: Number(field('entries-added') ?? 0),
  };
}
