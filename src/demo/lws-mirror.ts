import type { ServerSession } from '../server/server-session.js';
import type { ServerHandler } from '../server/server.js';
import type { Message } from '../transport/types.js';

/** Per-session state of an lws-mirror-protocol connection. */
export interface MirrorData {
  /** The mirror group: the `mirror` query parameter of the request URL ('' without one). */
  group: string;
  /** Largest bufferedAmount seen right after a mirrored send (what the bound keeps in check). */
  maxBuffered: number;
}

export type MirrorSession = ServerSession<MirrorData>;

export interface MirrorOptions {
  /**
   * Most bytes a member may have waiting to be sent (its bufferedAmount)
   * after a mirrored message was queued for it. A member over it is closed
   * with 1008 "mirror reader too slow" and gets nothing more. Default 1 MiB.
   */
  maxBufferedBytes?: number;
  /** Largest message accepted from a member (bigger: closed with 1009). Default 64 KiB. */
  maxMessageBytes?: number;
  /** Called when a slow member is dropped. */
  onSlowReader?: (session: MirrorSession, bufferedAmount: number) => void;
}

export const MIRROR_SLOW_READER_CLOSE = { code: 1008, reason: 'mirror reader too slow' } as const;

/**
 * libwebsockets' lws-mirror-protocol (plugins/protocol_lws_mirror.c): every
 * message a member sends goes to every member of its group, the sender
 * included. Groups are named by `?mirror=NAME` in the URL.
 *
 * Memory stays bounded with a reader that does not keep up. libwebsockets
 * keeps a 512-message ring per group and stops reading from the sender when
 * a member falls behind, so one slow member stalls the whole group. Here a
 * member whose queue passes `maxBufferedBytes` is dropped instead, with
 * close code 1008 (policy violation: it broke the "keep reading" contract),
 * and the others carry on at full speed. The close is graceful: what was
 * already queued for it is still delivered before the close frame, if it
 * ever reads; nothing more is queued (send() answers 'dropped' once it is
 * closing), and the session's close timeout ends a reader that never comes
 * back. The most a member holds is thus maxBufferedBytes plus one message.
 *
 * Differences, on purpose: a message comes back whole and with its own type
 * (libwebsockets splits it into pieces of at most 4096 bytes and sends each
 * as TEXT, which turns binary into invalid text; RFC 6455 section 5.6 says
 * TEXT is UTF-8). Compression is declined, as on libwebsockets.
 */
export class MirrorProtocol {
  readonly handler: ServerHandler<MirrorData>;
  private readonly groups = new Map<string, Set<MirrorSession>>();
  private readonly maxBufferedBytes: number;
  private readonly onSlowReader: MirrorOptions['onSlowReader'];
  /** Members dropped for reading too slowly, since the start. */
  slowReadersDropped = 0;
  /** Messages received from members (each sent on to its whole group), since the start. */
  messagesIn = 0;

  constructor(options: MirrorOptions = {}) {
    this.maxBufferedBytes = options.maxBufferedBytes ?? 1024 * 1024;
    this.onSlowReader = options.onSlowReader;
    this.handler = {
      perMessageDeflate: false,
      limits: { maxMessageBytes: options.maxMessageBytes ?? 64 * 1024 },
      onOpen: (session) => {
        const group = session.request.query.get('mirror') ?? '';
        session.data.group = group;
        session.data.maxBuffered = 0;
        let members = this.groups.get(group);
        if (!members) {
          members = new Set();
          this.groups.set(group, members);
        }
        members.add(session);
      },
      onMessage: (session, message) => {
        this.messagesIn++;
        this.broadcast(session.data.group, message);
      },
      onClose: (session) => {
        const members = this.groups.get(session.data.group);
        if (!members) return;
        members.delete(session);
        if (members.size === 0) this.groups.delete(session.data.group);
      },
    };
  }

  /** Open members of a group. */
  members(group: string): MirrorSession[] {
    return [...(this.groups.get(group) ?? [])].filter((s) => s.state === 'open');
  }

  /** Names of the groups that have members. */
  get groupNames(): string[] {
    return [...this.groups.keys()];
  }

  private broadcast(group: string, message: Message): void {
    const members = this.groups.get(group);
    if (!members) return;
    for (const member of members) {
      if (member.state !== 'open') continue;
      const status = member.send(message.data, { binary: message.binary });
      const buffered = member.bufferedAmount;
      if (buffered > member.data.maxBuffered) member.data.maxBuffered = buffered;
      if (status === 'dropped' || buffered > this.maxBufferedBytes) {
        this.slowReadersDropped++;
        this.onSlowReader?.(member, buffered);
        member.close(MIRROR_SLOW_READER_CLOSE.code, MIRROR_SLOW_READER_CLOSE.reason);
      }
    }
  }
}
