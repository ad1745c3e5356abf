import { Session, type SessionInit } from '../transport/session.js';
import type { Subscriber, Topics } from '../pubsub/topics.js';
import { InvalidStateError } from '../core/errors.js';
import { ResumeError } from '../pubsub/offset.js';
import type { ResumeResult } from '../pubsub/resume.js';

/** @internal what a session resumes a durable topic through (the server's broker binding). */
export interface Resumer<S> {
  resume(session: S, topic: string, since: string | null): Promise<ResumeResult>;
}

/** What the server learnt from the opening handshake. */
export interface UpgradeRequest {
  /** request-target as sent, e.g. '/chat?room=1'. */
  readonly url: string;
  /** Path part of the target, without the query. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly host: string;
  readonly origin: string | undefined;
  /** Lower-cased header names to their values in order. */
  readonly headers: ReadonlyMap<string, readonly string[]>;
  readonly remoteAddress: string | undefined;
  /** Subprotocols the client offered, in its order. */
  readonly protocols: readonly string[];
  /** True over TLS. */
  readonly secure: boolean;
  /** '1.1' for an HTTP/1.1 upgrade, '2' for an HTTP/2 extended CONNECT (RFC 8441). */
  readonly httpVersion: '1.1' | '2';
}

/** A server-side session: a Session plus the request that opened it, and its topics. */
export class ServerSession<T = unknown> extends Session<T> implements Subscriber {
  readonly request: UpgradeRequest;
  /** @internal the topics this session is in (the server's registry owns the membership). */
  topicSet: Set<string> | null = null;
  private readonly registry: Topics<ServerSession<never>> | null;
  private readonly resumer: Resumer<ServerSession<never>> | null;

  constructor(init: SessionInit<T>, request: UpgradeRequest, topics: Topics<ServerSession<never>> | null = null, resumer: Resumer<ServerSession<never>> | null = null) {
    super(init);
    this.request = request;
    this.registry = topics;
    this.resumer = resumer;
  }

  /**
   * Joins `topic`: server.publish(topic, ...) reaches this session until it
   * unsubscribes or closes. Returns false if it was already subscribed.
   */
  subscribe(topic: string): boolean {
    if (this.state !== 'open') return false;
    return this.topicRegistry().subscribe(this as unknown as ServerSession<never>, topic);
  }

  /**
   * Joins durable `topic` from where a client left it: sends this session
   * every publication after offset `since` still kept by the broker's
   * durable store, then the live ones, each once, in offset order, nothing
   * falling between the two. Without `since`, joins from now and resolves
   * with the topic's newest offset. Rejects, leaving the session out of the
   * topic with nothing sent, with a ResumeError: ERR_OFFSET_TRIMMED (some of
   * what followed `since` is no longer kept), ERR_BAD_OFFSET, ERR_NOT_DURABLE;
   * with InvalidStateError if the session is not open or already in the topic.
   */
  resume(topic: string, since?: string | null): Promise<ResumeResult> {
    if (this.state !== 'open') return Promise.reject(new InvalidStateError(`resume topic '${topic}'`, this.state));
    this.topicRegistry();
    if (!this.resumer) return Promise.reject(new ResumeError('ERR_NOT_DURABLE', `topic '${topic}' cannot be resumed: the server has no broker with durable topics`, topic, since ?? null));
    return this.resumer.resume(this as unknown as ServerSession<never>, topic, since ?? null);
  }

  /** Leaves `topic`; false if the session was not in it. */
  unsubscribe(topic: string): boolean {
    return this.topicRegistry().unsubscribe(this as unknown as ServerSession<never>, topic);
  }

  /** The topics this session is subscribed to. */
  get topics(): readonly string[] {
    return this.topicSet ? [...this.topicSet] : [];
  }

  private topicRegistry(): Topics<ServerSession<never>> {
    if (!this.registry) throw new InvalidStateError('subscribe to a topic', 'a session without a server');
    return this.registry;
  }
}
