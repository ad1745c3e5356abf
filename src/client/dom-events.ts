/**
 * The DOM pieces the standard WebSocket class (websocket.ts) needs that
 * Node.js 20 lacks: the CloseEvent interface of the WebSockets Standard
 * ("The CloseEvent interface"), and the event handler IDL attributes of the
 * HTML Standard (onopen, onmessage, ...). Event, EventTarget and
 * MessageEvent are Node's own globals and are used as they are.
 */

/** EventInit of the DOM Standard (bubbles, cancelable, composed), as Node's Event takes it. */
type EventInit = NonNullable<ConstructorParameters<typeof Event>[1]>;

/** CloseEventInit of the WebSockets Standard: every member optional, with its default. */
export interface CloseEventInit extends EventInit {
  /** Default false. */
  wasClean?: boolean;
  /** An unsigned short; default 0. */
  code?: number;
  /** Default the empty string. */
  reason?: string;
}

/**
 * The event of a WebSocket's close ("The CloseEvent interface"): whether the
 * connection closed cleanly, the close code and the close reason the server
 * sent (1005 when its close frame had no code, 1006 when no close frame came).
 */
export class CloseEvent extends Event {
  readonly #wasClean: boolean;
  readonly #code: number;
  readonly #reason: string;

  constructor(type: string, init: CloseEventInit = {}) {
    super(type, init);
    this.#wasClean = Boolean(init.wasClean ?? false);
    // Web IDL's unsigned short without [Clamp] or [EnforceRange]: the number modulo 2^16.
    this.#code = init.code === undefined ? 0 : toUnsignedShort(init.code);
    this.#reason = init.reason === undefined ? '' : toUSVString(init.reason);
  }

  /** True if the closing handshake completed. */
  get wasClean(): boolean {
    return this.#wasClean;
  }
  /** The WebSocket connection close code. */
  get code(): number {
    return this.#code;
  }
  /** The WebSocket connection close reason, decoded as UTF-8. */
  get reason(): string {
    return this.#reason;
  }
  get [Symbol.toStringTag](): string {
    return 'CloseEvent';
  }
}

// Web IDL attributes are enumerable accessors on the prototype.
for (const name of ['wasClean', 'code', 'reason']) {
  const descriptor = Object.getOwnPropertyDescriptor(CloseEvent.prototype, name);
  if (descriptor) Object.defineProperty(CloseEvent.prototype, name, { ...descriptor, enumerable: true });
}

/** Web IDL's USVString conversion: a string with each lone surrogate replaced by U+FFFD. */
export function toUSVString(value: unknown): string {
  return String(value).replace(LONE_SURROGATE, '\uFFFD');
}
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Web IDL's conversion to unsigned short (ECMAScript ToUint16). */
function toUnsignedShort(value: unknown): number {
  const n = Number(value);
  if (!Number.isFinite(n)) return 0;
  const int = Math.trunc(n);
  return ((int % 65536) + 65536) % 65536;
}

/** What an event handler IDL attribute holds: a function called with the target as `this`, or null. */
export type EventHandler<T, E extends Event> = ((this: T, event: E) => unknown) | null;

/**
 * The event handlers of one EventTarget (HTML Standard, "Event handlers"):
 * the listener behind an attribute is added to the target's listener list
 * the first time the attribute is set to a function, and keeps that place
 * while the attribute changes; setting it to null removes it, so setting it
 * again puts it last. A value that is not a function is taken as null (the
 * attribute's type is [LegacyTreatNonObjectAsNull]; a callable object is all
 * Node could call).
 */
export class EventHandlers<T extends EventTarget> {
  readonly #target: T;
  readonly #handlers = new Map<string, (this: T, event: Event) => unknown>();
  readonly #listeners = new Map<string, (event: Event) => void>();

  constructor(target: T) {
    this.#target = target;
  }

  get(type: string): ((this: T, event: Event) => unknown) | null {
    return this.#handlers.get(type) ?? null;
  }

  set(type: string, value: unknown): void {
    if (typeof value !== 'function') {
      this.#handlers.delete(type);
      const listener = this.#listeners.get(type);
      if (listener) {
        this.#target.removeEventListener(type, listener);
        this.#listeners.delete(type);
      }
      return;
    }
    this.#handlers.set(type, value as (this: T, event: Event) => unknown);
    if (this.#listeners.has(type)) return;
    const listener = (event: Event): void => {
      const handler = this.#handlers.get(type);
      // "Process return value": false cancels the event (a no-op for the WebSocket's events, which are not cancelable).
      if (handler && handler.call(this.#target, event) === false) event.preventDefault();
    };
    this.#listeners.set(type, listener);
    this.#target.addEventListener(type, listener);
  }
}
