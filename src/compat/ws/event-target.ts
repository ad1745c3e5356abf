import type { EventEmitter } from 'node:events';

/**
 * The event objects of ws's EventTarget form (addEventListener and the on*
 * attributes): plain classes with ws's shapes, not the DOM's (`target` is the
 * WebSocket; a text message's `data` is a string). As in ws, each attribute
 * is a read-only getter on the prototype, enumerable and configurable
 * (test/compat/ws/event-target.test.ts, "attributes are read-only getters on
 * the prototype").
 */
/** Sets an event's `target` when it is dispatched (the attribute itself is read-only). */
let setTarget: (event: WsEvent, target: unknown) => void;

export class WsEvent {
  #type: string;
  #target: unknown = null;
  static {
    setTarget = (event, target) => {
      event.#target = target;
    };
  }
  constructor(type: string) {
    this.#type = type;
  }
  get type(): string {
    return this.#type;
  }
  get target(): unknown {
    return this.#target;
  }
}

export class WsCloseEvent extends WsEvent {
  #code: number;
  #reason: string;
  #wasClean: boolean;
  constructor(type: string, init: { code?: number; reason?: string; wasClean?: boolean } = {}) {
    super(type);
    this.#code = init.code ?? 0;
    this.#reason = init.reason ?? '';
    this.#wasClean = init.wasClean ?? false;
  }
  get code(): number {
    return this.#code;
  }
  get reason(): string {
    return this.#reason;
  }
  get wasClean(): boolean {
    return this.#wasClean;
  }
}

export class WsErrorEvent extends WsEvent {
  #error: unknown;
  #message: string;
  constructor(type: string, init: { error?: unknown; message?: string } = {}) {
    super(type);
    this.#error = init.error ?? null;
    this.#message = init.message ?? '';
  }
  get error(): unknown {
    return this.#error;
  }
  get message(): string {
    return this.#message;
  }
}

export class WsMessageEvent extends WsEvent {
  #data: unknown;
  constructor(type: string, init: { data?: unknown } = {}) {
    super(type);
    this.#data = init.data ?? null;
  }
  get data(): unknown {
    return this.#data;
  }
}

for (const [cls, names] of [[WsEvent, ['type', 'target']], [WsCloseEvent, ['code', 'reason', 'wasClean']], [WsErrorEvent, ['error', 'message']], [WsMessageEvent, ['data']]] as const) {
  for (const name of names) {
    const descriptor = Object.getOwnPropertyDescriptor(cls.prototype, name)!;
    Object.defineProperty(cls.prototype, name, { ...descriptor, enumerable: true });
  }
}

export type EventListenerLike = ((event: WsEvent) => void) | { handleEvent(event: WsEvent): void };

/** What a wrapped listener remembers: the user's listener, and whether an on* attribute set it. */
export const LISTENER = Symbol('sockeye.ws.listener');
export const FROM_ATTRIBUTE = Symbol('sockeye.ws.fromAttribute');

type Wrapped = ((...args: unknown[]) => void) & { [LISTENER]?: EventListenerLike; [FROM_ATTRIBUTE]?: boolean };

function call(listener: EventListenerLike, target: unknown, event: WsEvent): void {
  if (typeof listener === 'function') listener.call(target, event);
  else listener.handleEvent.call(listener, event);
}

/** Where a WebSocket keeps whether its closing handshake completed, for the close event's `wasClean`. */
export const WAS_CLEAN = Symbol('sockeye.ws.wasClean');

/** Builds the event object of `type` from the EventEmitter arguments ws emits with. */
function toEvent(emitter: EventEmitter, type: string, args: unknown[]): WsEvent {
  switch (type) {
    case 'message': {
      const [data, isBinary] = args as [Buffer | ArrayBuffer | Buffer[], boolean];
      return new WsMessageEvent('message', { data: isBinary ? data : String(data) });
    }
    case 'close': {
      const [code, reason] = args as [number, Buffer];
      return new WsCloseEvent('close', { code, reason: reason.toString(), wasClean: (emitter as { [WAS_CLEAN]?: boolean })[WAS_CLEAN] === true });
    }
    case 'error': {
      const [error] = args as [Error];
      return new WsErrorEvent('error', { error, message: error.message });
    }
    default:
      return new WsEvent(type);
  }
}

const EVENT_TYPES = new Set(['open', 'message', 'close', 'error']);

/**
 * addEventListener as ws has it: only 'open', 'message', 'close' and 'error';
 * a listener already added (not by an attribute) is not added twice; `once`
 * removes it after its first call.
 */
export function addEventListener(emitter: EventEmitter, type: string, listener: EventListenerLike | null | undefined, options: { once?: boolean; [FROM_ATTRIBUTE]?: boolean } = {}): void {
  if (!EVENT_TYPES.has(type) || listener === null || listener === undefined) return;
  const fromAttribute = options[FROM_ATTRIBUTE] === true;
  if (!fromAttribute) {
    for (const l of emitter.listeners(type) as Wrapped[]) if (l[LISTENER] === listener && !l[FROM_ATTRIBUTE]) return;
  }
  const wrapped: Wrapped = function (this: unknown, ...args: unknown[]) {
    const event = toEvent(emitter, type, args);
    setTarget(event, emitter);
    call(listener, emitter, event);
  };
  wrapped[LISTENER] = listener;
  if (fromAttribute) wrapped[FROM_ATTRIBUTE] = true;
  if (options.once) emitter.once(type, wrapped);
  else emitter.on(type, wrapped);
}

/** Removes a listener added by addEventListener (never one an on* attribute set). */
export function removeEventListener(emitter: EventEmitter, type: string, listener: EventListenerLike): void {
  for (const l of emitter.listeners(type) as Wrapped[]) {
    if (l[LISTENER] === listener && !l[FROM_ATTRIBUTE]) {
      emitter.removeListener(type, l);
      return;
    }
  }
}

/** The listener an on* attribute holds, or null. */
export function attributeListener(emitter: EventEmitter, type: string): EventListenerLike | null {
  for (const l of emitter.listeners(type) as Wrapped[]) if (l[FROM_ATTRIBUTE]) return l[LISTENER] ?? null;
  return null;
}

/** Sets an on* attribute: the previous one is removed; a non-function clears it. */
export function setAttributeListener(emitter: EventEmitter, type: string, listener: unknown): void {
  for (const l of emitter.listeners(type) as Wrapped[]) {
    if (l[FROM_ATTRIBUTE]) {
      emitter.removeListener(type, l);
      break;
    }
  }
  if (typeof listener === 'function') addEventListener(emitter, type, listener as EventListenerLike, { [FROM_ATTRIBUTE]: true });
}
