import type { BrokerNodeInfo } from '../pubsub/broker.js';

/**
 * Presence of the Redis broker's nodes, kept in Redis itself:
 *
 * - one hash, the registry, field = node id, value = "pid lastSeen heartbeatMs state"
 *   (state `up`, or `left` once it closed in good order); lastSeen is Redis's
 *   own clock (TIME), so nodes on machines whose clocks differ agree on it;
 * - one hash per node, its subscriber count per topic, rewritten at each of
 *   its heartbeats and expiring after three of them: a node that dies takes
 *   its counts with it even if nobody cleans up.
 *
 * Both live under one hash tag ({presence}), so a Redis Cluster keeps them
 * in one slot and the heartbeat script may touch them together.
 */

/**
 * One heartbeat, atomic in Redis:
 * KEYS[1] registry, KEYS[2] this node's counts;
 * ARGV: node id, pid, heartbeatMs, state (up|left), counts TTL in ms, then topic, count pairs.
 * Returns { now (Redis ms), this node's previous entry or '', the registry as field, value pairs }.
 * Entries not renewed for ten of their own heartbeats are removed: every
 * other node has judged them long before (RedisPresence.judge).
 */
export const HEARTBEAT_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local prev = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. now .. ' ' .. ARGV[3] .. ' ' .. ARGV[4])
redis.call('DEL', KEYS[2])
if ARGV[4] == 'up' and #ARGV > 5 then
  for i = 6, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  local seen, hb = string.match(all[i + 1], '^%d+ (%d+) (%d+) %a+$')
  if seen == nil or now - tonumber(seen) > 10 * tonumber(hb) then
    redis.call('HDEL', KEYS[1], all[i])
  else
    out[#out + 1] = all[i]
    out[#out + 1] = all[i + 1]
  end
end
return { now, prev or '', out }
`;

/** KEYS[1] registry. Returns { now (Redis ms), the registry as field, value pairs }: one clock for judging lastSeen. */
export const REGISTRY_SCRIPT = `
local t = redis.call('TIME')
return { tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), redis.call('HGETALL', KEYS[1]) }
`;

/**
 * KEYS[1] registry; ARGV: node id, its entry as it was judged. Marks that
 * entry down unless the node renewed it meanwhile, so that the node, when it
 * comes back, knows it was taken for down (and reports what it may have lost).
 */
export const MARK_DOWN_SCRIPT = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], (string.gsub(ARGV[2], ' up$', ' down')))
  return 1
end
return 0
`;

/** The registry's view of one node. */
export interface NodeEntry extends BrokerNodeInfo {
  readonly heartbeatMs: number;
  /** up; left (closed in good order); down (another node judged it so; it has not beaten since). */
  readonly state: 'up' | 'left' | 'down';
}

/** Parses one registry value; null for anything else (a foreign or damaged field is ignored, not trusted). */
export function parseEntry(id: string, value: string): NodeEntry | null {
  const m = /^(\d{1,10}) (\d{1,16}) (\d{1,10}) (up|left|down)$/.exec(value);
  if (!m) return null;
  return { id, pid: Number(m[1]), lastSeen: Number(m[2]), heartbeatMs: Number(m[3]), state: m[4] as NodeEntry['state'] };
}

/** The registry value of an entry (what HEARTBEAT_SCRIPT writes). */
export function formatEntry(e: NodeEntry): string {
  return `${e.pid} ${e.lastSeen} ${e.heartbeatMs} ${e.state}`;
}

/** The registry from HGETALL's flat field, value list. */
export function parseRegistry(flat: readonly unknown[]): Map<string, NodeEntry> {
  const out = new Map<string, NodeEntry>();
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const id = text(flat[i]);
    const value = text(flat[i + 1]);
    if (id === null || value === null) continue;
    const e = parseEntry(id, value);
    if (e) out.set(id, e);
  }
  return out;
}

/** Alive: up, and heard from within two of its own heartbeats. */
export function isAlive(e: NodeEntry, now: number): boolean {
  return e.state === 'up' && now - e.lastSeen <= 2 * e.heartbeatMs;
}

/** What a heartbeat's look at the registry found about the other nodes. */
export interface Judgement {
  /** Nodes this node knew alive that missed two heartbeats (or vanished): id and reason. */
  readonly down: Array<[string, string]>;
  /** Nodes this node knew alive that closed in good order. */
  readonly left: string[];
  /** Entries this node judged down, to be marked so in the registry (MARK_DOWN_SCRIPT). */
  readonly mark: NodeEntry[];
}

/**
 * What one node knows of the others, from heartbeat to heartbeat. A node is
 * reported only by the nodes that knew it alive, once per life: it is down
 * when it has not renewed its entry for two of its own heartbeats (judged at
 * every heartbeat of this node, so seen between two and three intervals after
 * its last sign of life: test/redis/redis-broker.test.ts, "a node killed"),
 * or left when its entry says so.
 */
export class PresenceWatch {
  private readonly selfId: string;
  private readonly known = new Map<string, NodeEntry>();

  constructor(selfId: string) {
    this.selfId = selfId;
  }

  /**
   * `judgeDown` false: this node was itself held up (its timer fired late),
   * so silence it caused proves nothing about the others; nobody is judged
   * down this round, as the cluster relay does.
   */
  judge(now: number, registry: ReadonlyMap<string, NodeEntry>, judgeDown: boolean): Judgement {
    const down: Array<[string, string]> = [];
    const left: string[] = [];
    const mark: NodeEntry[] = [];
    for (const e of registry.values()) {
      if (e.id === this.selfId) continue;
      if (e.state === 'left') {
        if (this.known.delete(e.id)) left.push(e.id);
      } else if (isAlive(e, now)) {
        this.known.set(e.id, e);
      } else if (e.state === 'down') {
        // Judged by another node already (this one may have been held up meanwhile): the same verdict.
        if (this.known.delete(e.id)) down.push([e.id, `missed 2 heartbeats (last seen ${now - e.lastSeen} ms ago)`]);
      } else if (judgeDown) {
        mark.push(e);
        if (this.known.delete(e.id)) down.push([e.id, `missed 2 heartbeats (last seen ${now - e.lastSeen} ms ago)`]);
      }
    }
    if (judgeDown) {
      // Gone from the registry (a Redis that lost its data, say): judged on what was last seen of it.
      for (const [id, e] of this.known) {
        if (registry.has(id) || now - e.lastSeen <= 2 * e.heartbeatMs) continue;
        this.known.delete(id);
        down.push([id, `missed 2 heartbeats (gone from the registry, last seen ${now - e.lastSeen} ms ago)`]);
      }
    }
    return { down, left, mark };
  }
}

function text(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return null;
}
