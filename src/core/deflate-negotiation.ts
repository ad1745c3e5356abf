/**
 * permessage-deflate negotiation, RFC 7692 section 7 (sans-I/O: no zlib
 * here). The client builds an offer (buildDeflateOffer) and checks the
 * server's answer (acceptDeflateResponse); the server picks among the
 * client's offers (negotiateDeflate). Both sides end with the same
 * DeflateParams: what each direction may use, always filled in.
 *
 * The four parameters of section 7.1:
 *   server_no_context_takeover  no value           offer and response
 *   client_no_context_takeover  no value           offer and response
 *   server_max_window_bits      8..15, required    offer and response
 *   client_max_window_bits      8..15, optional in an offer, required in a response
 *
 * One limit of zlib shapes the choices below: its raw deflate cannot
 * compress with a window of 2^8 bytes (deflateInit2 rejects windowBits 8
 * for raw streams, and Node's zlib silently uses 9 instead, which would
 * break the agreement). This side still agrees to a window of 8 for what it
 * sends, and keeps the agreement by never compressing in that direction:
 * compression is per message and optional for the sender (RFC 7692 section
 * 6: a message without RSV1 is simply not compressed), so every message
 * goes out plain while the peer's messages are still inflated. Declining
 * instead would lose compression in both directions (and Autobahn's 13.x
 * cases offer exactly this). A configuration of 8 for this side's own
 * request is refused: asking for it would only ever mean "don't compress".
 * Inflating data compressed with a 256-byte window is fine (any larger
 * window decodes it).
 */
import { HandshakeError, InvalidArgumentError } from './errors.js';
import type { ExtensionOffer } from './extension-header.js';

export const PERMESSAGE_DEFLATE = 'permessage-deflate';

/** What one side is configured to allow or ask for. All optional; defaults in brackets. */
export interface DeflateConfig {
  /** [false] Server: always reset its own compression context. Client: ask the server to (7.1.1.1). */
  serverNoContextTakeover?: boolean;
  /** [false] Server: ask the client not to keep context. Client: announce that it will not (7.1.1.2). */
  clientNoContextTakeover?: boolean;
  /** [15] 9..15. Server: the largest window it compresses with. Client: the largest it asks the server to use (7.1.2.1). */
  serverMaxWindowBits?: number;
  /** [15] 9..15. Server: the largest window it lets the client use, if the client allows a limit. Client: the largest it will use (7.1.2.2). */
  clientMaxWindowBits?: number;
}

/** What was agreed (RFC 7692 section 7.1): effective values, always filled. */
export interface DeflateParams {
  /** The server resets its compression context after each message. */
  serverNoContextTakeover: boolean;
  /** The client resets its compression context after each message. */
  clientNoContextTakeover: boolean;
  /** The server compresses with a window of at most 2^this bytes (8..15). */
  serverMaxWindowBits: number;
  /** The client compresses with a window of at most 2^this bytes (8..15). */
  clientMaxWindowBits: number;
}

const SERVER_NO_CONTEXT_TAKEOVER = 'server_no_context_takeover';
const CLIENT_NO_CONTEXT_TAKEOVER = 'client_no_context_takeover';
const SERVER_MAX_WINDOW_BITS = 'server_max_window_bits';
const CLIENT_MAX_WINDOW_BITS = 'client_max_window_bits';

/** The smallest window zlib's raw deflate can compress with (see the file comment). */
const MIN_DEFLATE_WINDOW_BITS = 9;
const MAX_WINDOW_BITS = 15;

/**
 * Checks a configuration and fills in the defaults. Other properties (zlib
 * tuning such as level or memLevel) are ignored, so a larger options object
 * may be passed as is. Throws InvalidArgumentError 'ERR_BAD_DEFLATE_CONFIG'.
 */
export function validateDeflateConfig(config: DeflateConfig): Required<DeflateConfig> {
  if (config === undefined || config === null) config = {};
  if (typeof config !== 'object') {
    throw new InvalidArgumentError('ERR_BAD_DEFLATE_CONFIG', 'permessage-deflate options must be an object');
  }
  const flag = (name: 'serverNoContextTakeover' | 'clientNoContextTakeover'): boolean => {
    const value = config[name];
    if (value === undefined) return false;
    if (typeof value !== 'boolean') {
      throw new InvalidArgumentError('ERR_BAD_DEFLATE_CONFIG', `permessage-deflate option ${name} must be a boolean`);
    }
    return value;
  };
  const bits = (name: 'serverMaxWindowBits' | 'clientMaxWindowBits'): number => {
    const value = config[name];
    if (value === undefined) return MAX_WINDOW_BITS;
    if (value === 8) {
      // RFC 7692 section 7.1.2 allows 8, but zlib's raw deflate cannot compress with a 256-byte window.
      throw new InvalidArgumentError(
        'ERR_BAD_DEFLATE_CONFIG',
        `permessage-deflate option ${name} cannot be 8: zlib cannot compress raw deflate with a 256-byte window; use 9..15`,
      );
    }
    if (typeof value !== 'number' || !Number.isInteger(value) || value < MIN_DEFLATE_WINDOW_BITS || value > MAX_WINDOW_BITS) {
      throw new InvalidArgumentError('ERR_BAD_DEFLATE_CONFIG', `permessage-deflate option ${name} must be an integer from 9 to 15`);
    }
    return value;
  };
  return {
    serverNoContextTakeover: flag('serverNoContextTakeover'),
    clientNoContextTakeover: flag('clientNoContextTakeover'),
    serverMaxWindowBits: bits('serverMaxWindowBits'),
    clientMaxWindowBits: bits('clientMaxWindowBits'),
  };
}

/**
 * Client: the offer to send. Always includes client_max_window_bits (with a
 * value only when configured below 15) so the server may limit the client's
 * window (7.1.2.2).
 */
export function buildDeflateOffer(config: DeflateConfig): ExtensionOffer {
  const c = validateDeflateConfig(config);
  const params: Array<[string, string | true]> = [];
  // 7.1.1.1: asks the server not to keep its LZ77 window between messages.
  if (c.serverNoContextTakeover) params.push([SERVER_NO_CONTEXT_TAKEOVER, true]);
  // 7.1.1.2: announces that this client will not keep its window either way.
  if (c.clientNoContextTakeover) params.push([CLIENT_NO_CONTEXT_TAKEOVER, true]);
  // 7.1.2.1: "Absence of this parameter in an extension negotiation offer indicates that the client can
  // receive messages compressed using an LZ77 sliding window of up to 32,768 bytes."
  if (c.serverMaxWindowBits < MAX_WINDOW_BITS) params.push([SERVER_MAX_WINDOW_BITS, String(c.serverMaxWindowBits)]);
  // 7.1.2.2: without it in the offer, the response "MUST NOT include" it, so the server could not limit
  // our window; with a value, it is also a promise not to use a larger window.
  params.push([CLIENT_MAX_WINDOW_BITS, c.clientMaxWindowBits < MAX_WINDOW_BITS ? String(c.clientMaxWindowBits) : true]);
  return { name: PERMESSAGE_DEFLATE, params };
}

/** One offer's or response's parameters, checked for syntax and duplicates. */
interface ParsedParams {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number | undefined;
  /** `true` when present without a value (allowed in an offer only). */
  clientMaxWindowBits: number | true | undefined;
}

/**
 * Window bits: "a decimal integer value without leading zeroes between 8 to
 * 15, inclusive" (7.1.2.1, 7.1.2.2), ABNF 1*DIGIT. An exact match of the
 * eight allowed spellings rejects leading zeros, signs, spaces and the like.
 */
function windowBits(value: string): number | undefined {
  switch (value) {
    case '8':
    case '9':
    case '10':
    case '11':
    case '12':
    case '13':
    case '14':
    case '15':
      return Number(value);
    default:
      return undefined;
  }
}

/**
 * Parses the parameters of an offer ('offer') or a response ('response').
 * Returns the reason as a string when they break section 7's rules, which the
 * caller turns into declining (offer) or failing (response). Parameter names
 * come lower-cased from the header parser and are compared exactly; nothing
 * is keyed by a peer-supplied name.
 */
function parseParams(params: ReadonlyArray<readonly [string, string | true]>, kind: 'offer' | 'response'): ParsedParams | string {
  const out: ParsedParams = {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: undefined,
    clientMaxWindowBits: undefined,
  };
  // Section 7: decline / fail if it "contains multiple extension parameters with the same name".
  let seenServerNct = false;
  let seenClientNct = false;
  let seenServerBits = false;
  let seenClientBits = false;
  const repeated = (name: string): string => `parameter ${name} appears more than once (RFC 7692 section 7)`;
  for (const [name, value] of params) {
    switch (name) {
      case SERVER_NO_CONTEXT_TAKEOVER:
      case CLIENT_NO_CONTEXT_TAKEOVER: {
        const server = name === SERVER_NO_CONTEXT_TAKEOVER;
        if (server ? seenServerNct : seenClientNct) return repeated(name);
        if (server) seenServerNct = true;
        else seenClientNct = true;
        // 7.1.1.1 / 7.1.1.2: "This extension parameter has no value."
        if (value !== true) return `parameter ${name} must not have a value (RFC 7692 section ${server ? '7.1.1.1' : '7.1.1.2'})`;
        if (server) out.serverNoContextTakeover = true;
        else out.clientNoContextTakeover = true;
        break;
      }
      case SERVER_MAX_WINDOW_BITS: {
        if (seenServerBits) return repeated(name);
        seenServerBits = true;
        // 7.1.2.1: a value is required, in an offer and in a response alike.
        const bits = value === true ? undefined : windowBits(value);
        if (bits === undefined) return `parameter ${name} needs a value from 8 to 15 without leading zeros (RFC 7692 section 7.1.2.1)`;
        out.serverMaxWindowBits = bits;
        break;
      }
      case CLIENT_MAX_WINDOW_BITS: {
        if (seenClientBits) return repeated(name);
        seenClientBits = true;
        if (value === true) {
          // 7.1.2.2: "This parameter has no value or a decimal integer value" in an offer; the response's
          // parameter "has a decimal integer value".
          if (kind === 'response') return `parameter ${name} in a response needs a value (RFC 7692 section 7.1.2.2)`;
          out.clientMaxWindowBits = true;
          break;
        }
        const bits = windowBits(value);
        if (bits === undefined) return `parameter ${name} must be from 8 to 15 without leading zeros (RFC 7692 section 7.1.2.2)`;
        out.clientMaxWindowBits = bits;
        break;
      }
      default:
        // Section 7: "an extension parameter not defined for use in an offer" / "in a response".
        return `unknown parameter ${JSON.stringify(name)} (RFC 7692 section 7)`;
    }
  }
  return out;
}

/**
 * Server: picks the first acceptable permessage-deflate offer among `offers`
 * (all extensions the client offered, in order; others ignored). Returns null
 * if none is acceptable (then the server answers without the extension).
 * Throws InvalidArgumentError only for a bad `config`.
 */
export function negotiateDeflate(offers: ExtensionOffer[], config: DeflateConfig): { response: ExtensionOffer; params: DeflateParams } | null {
  const c = validateDeflateConfig(config);
  // RFC 7692 section 5: a client may offer the extension several times, the preferred first; the server
  // accepts at most one, and section 7: "A server MUST decline an extension negotiation offer for this
  // extension if any of the following conditions are met", after which the next offer is considered.
  for (const offer of offers) {
    if (offer.name !== PERMESSAGE_DEFLATE) continue;
    const o = parseParams(offer.params, 'offer');
    if (typeof o === 'string') continue; // Section 7: unknown, repeated or badly valued parameter: decline.

    const params: Array<[string, string | true]> = [];

    // 7.1.1.1: "A server accepts an extension negotiation offer that includes the
    // server_no_context_takeover extension parameter by including the server_no_context_takeover extension
    // parameter in the corresponding extension negotiation response", and "MAY include [it] ... even if
    // the extension negotiation offer ... didn't include" it: so also when configured.
    const serverNoContextTakeover = o.serverNoContextTakeover || c.serverNoContextTakeover;
    if (serverNoContextTakeover) params.push([SERVER_NO_CONTEXT_TAKEOVER, true]);

    // 7.1.1.2: "A server MAY include the client_no_context_takeover extension parameter in an extension
    // negotiation response." Included when configured, and also when the client offered it: "the server
    // may ... use the parameter to avoid taking over the LZ77 sliding window unnecessarily by including
    // [it] in the corresponding extension negotiation response". Echoing it makes the agreement explicit,
    // which matters in practice: libwebsockets' client offers client_no_context_takeover but configures its
    // compressor only from the response's parameters, so it keeps its context unless the response says
    // otherwise. The agreed value is therefore exactly what the response says, so this server's inflater
    // never resets a context that the client still uses.
    const clientNoContextTakeover = o.clientNoContextTakeover || c.clientNoContextTakeover;
    if (clientNoContextTakeover) params.push([CLIENT_NO_CONTEXT_TAKEOVER, true]);

    let serverMaxWindowBits: number;
    if (o.serverMaxWindowBits !== undefined) {
      // 7.1.2.1: "A server accepts an extension negotiation offer with this parameter by including the
      // server_max_window_bits extension parameter in the extension negotiation response to send back to
      // the client with the same or smaller value as the offer."
      serverMaxWindowBits = Math.min(o.serverMaxWindowBits, c.serverMaxWindowBits);
      // Only an offer of 8 gives a value below MIN_DEFLATE_WINDOW_BITS: zlib cannot compress with it, so it
      // is accepted and honoured by sending every message of this server uncompressed (see the top comment).
      params.push([SERVER_MAX_WINDOW_BITS, String(serverMaxWindowBits)]);
    } else {
      // 7.1.2.1: "A server MAY include the server_max_window_bits extension parameter in an extension
      // negotiation response even if the extension negotiation offer being accepted by the response didn't
      // include" it; needed to tell the client about a configured smaller window (15 is the default anyway).
      serverMaxWindowBits = c.serverMaxWindowBits;
      if (serverMaxWindowBits < MAX_WINDOW_BITS) params.push([SERVER_MAX_WINDOW_BITS, String(serverMaxWindowBits)]);
    }

    let clientMaxWindowBits: number;
    if (o.clientMaxWindowBits !== undefined) {
      // 7.1.2.2: "If a received extension negotiation offer has the client_max_window_bits extension
      // parameter, the server MAY include the client_max_window_bits extension parameter in the
      // corresponding extension negotiation response", "with a value equal to or smaller than the received
      // value". A value in the offer is already a promise (the client "is not going to use an LZ77 sliding
      // window size greater than the size specified"), so it bounds the agreed value too. Window bits 8
      // here (the client's own offer) is fine: this side only inflates what the client sends.
      clientMaxWindowBits = Math.min(c.clientMaxWindowBits, o.clientMaxWindowBits === true ? MAX_WINDOW_BITS : o.clientMaxWindowBits);
      if (clientMaxWindowBits < MAX_WINDOW_BITS) params.push([CLIENT_MAX_WINDOW_BITS, String(clientMaxWindowBits)]);
    } else {
      // 7.1.2.2: "If a received extension negotiation offer doesn't have the client_max_window_bits
      // extension parameter, the corresponding extension negotiation response to the offer MUST NOT include
      // the client_max_window_bits extension parameter." A configured smaller limit cannot be had; the offer
      // is still accepted, and the client may use the full window.
      clientMaxWindowBits = MAX_WINDOW_BITS;
    }

    return {
      response: { name: PERMESSAGE_DEFLATE, params },
      params: { serverNoContextTakeover, clientNoContextTakeover, serverMaxWindowBits, clientMaxWindowBits },
    };
  }
  return null;
}

/**
 * Client: checks the server's answer against what it offered (the offer
 * buildDeflateOffer(config) makes); throws HandshakeError('ERR_BAD_EXTENSION')
 * when the client must Fail the WebSocket Connection (section 7).
 */
export function acceptDeflateResponse(response: ExtensionOffer, config: DeflateConfig): DeflateParams {
  const c = validateDeflateConfig(config);
  const fail = (why: string): never => {
    throw new HandshakeError('ERR_BAD_EXTENSION', `bad permessage-deflate response: ${why}`);
  };
  if (response.name !== PERMESSAGE_DEFLATE) fail(`extension ${JSON.stringify(response.name)} is not ${PERMESSAGE_DEFLATE}`);
  // Section 7: "A client MUST _Fail the WebSocket Connection_ if the peer server accepted an extension
  // negotiation offer for this extension with an extension negotiation response meeting any of the
  // following conditions": a parameter not defined for a response, an invalid value, a repeated name ...
  const r = parseParams(response.params, 'response');
  if (typeof r === 'string') return fail(r);

  // ... or "The client does not support the configuration that the response represents."

  // 7.1.1.1: the server accepts a server_no_context_takeover offer "by including the
  // server_no_context_takeover extension parameter in the corresponding extension negotiation response";
  // without it the server would keep its context, which this client asked it not to.
  if (c.serverNoContextTakeover && !r.serverNoContextTakeover) {
    fail('server_no_context_takeover was requested but the response lacks it (RFC 7692 section 7.1.1.1)');
  }

  let serverMaxWindowBits = MAX_WINDOW_BITS;
  if (r.serverMaxWindowBits !== undefined) {
    // 7.1.2.1: the response carries "the same or smaller value as the offer"; without a limit in the
    // offer the server may still include one, and any value 8..15 is fine for inflating.
    if (c.serverMaxWindowBits < MAX_WINDOW_BITS && r.serverMaxWindowBits > c.serverMaxWindowBits) {
      fail(`server_max_window_bits=${r.serverMaxWindowBits} is larger than the ${c.serverMaxWindowBits} offered (RFC 7692 section 7.1.2.1)`);
    }
    serverMaxWindowBits = r.serverMaxWindowBits;
  } else if (c.serverMaxWindowBits < MAX_WINDOW_BITS) {
    // 7.1.2.1: an offer with this parameter is accepted only "by including the server_max_window_bits
    // extension parameter in the extension negotiation response"; absent, the server may use 32 KiB.
    fail(`server_max_window_bits=${c.serverMaxWindowBits} was offered but the response lacks it (RFC 7692 section 7.1.2.1)`);
  }

  // 7.1.1.2: with the parameter in the response the client must not keep its context; having offered it,
  // the client said it "is not going to use context takeover" even if the response lacks it.
  const clientNoContextTakeover = r.clientNoContextTakeover || c.clientNoContextTakeover;

  // The offer always has client_max_window_bits (buildDeflateOffer), so the server may include it (7.1.2.2).
  let clientMaxWindowBits = c.clientMaxWindowBits;
  if (r.clientMaxWindowBits !== undefined) {
    const bits = r.clientMaxWindowBits as number; // parseParams requires a value in a response.
    // 7.1.2.2: the server answers "with a value equal to or smaller than the received value".
    if (bits > c.clientMaxWindowBits) {
      fail(`client_max_window_bits=${bits} is larger than the ${c.clientMaxWindowBits} offered (RFC 7692 section 7.1.2.2)`);
    }
    // 8 (below MIN_DEFLATE_WINDOW_BITS): zlib cannot compress with a 256-byte window, so this client
    // honours it by sending every message uncompressed (see the top comment).
    clientMaxWindowBits = bits;
  }
  // Absent: 7.1.2.2, "the client is not going to use an LZ77 sliding window size greater than the size
  // specified by the value in the extension negotiation offer", or up to 15 when the offer had none.

  return { serverNoContextTakeover: r.serverNoContextTakeover, clientNoContextTakeover, serverMaxWindowBits, clientMaxWindowBits };
}
