/**
 * Fuzz target: the Sec-WebSocket-Extensions grammar (parseExtensionHeader,
 * RFC 6455 section 9.1) and permessage-deflate negotiation on both sides
 * (negotiateDeflate on the server, acceptDeflateResponse on the client,
 * RFC 7692 section 7).
 *
 * Input layout:
 *   byte 0   server configuration (see configFrom)
 *   byte 1   client configuration
 *   rest     a header value, as latin1 (what a head parser hands over)
 *
 * Invariants checked:
 *   1. Only HandshakeError (status 400) escapes the header parser; the
 *      negotiation functions never throw for a valid configuration, except
 *      acceptDeflateResponse's HandshakeError for a response it must refuse.
 *   2. Parse, format, parse is the identity (what is written always parses
 *      back the same, names lower-cased, values unquoted).
 *   3. Whatever the server answers is a well-formed response whose window
 *      bits are 8-15 and no larger than an offer's limit (7.1.2).
 *   4. Agreement: an offer built by buildDeflateOffer for any client
 *      configuration, placed among the fuzzed offers, is accepted by the
 *      server (first acceptable offer wins, RFC 7692 section 5), and the
 *      client accepts the server's response with exactly the parameters the
 *      server settled on.
 */
import { HandshakeError } from '../../src/core/errors.js';
import { formatExtensions, parseExtensionHeader, type ExtensionOffer } from '../../src/core/extension-header.js';
import { acceptDeflateResponse, buildDeflateOffer, negotiateDeflate, type DeflateConfig, type DeflateParams } from '../../src/core/deflate-negotiation.js';
import type { Rng } from '../rng.js';
import { check, errorKey, expectOnlyWebSocketErrors, type FuzzTarget } from './common.js';

/** bit 0 server_no_context_takeover, bit 1 client_no_context_takeover, bits 2-4 and 5-7: window bits 9 + (n mod 7). */
export function configFrom(b: number): DeflateConfig {
  return {
    serverNoContextTakeover: (b & 1) !== 0,
    clientNoContextTakeover: (b & 2) !== 0,
    serverMaxWindowBits: 9 + (((b >> 2) & 7) % 7),
    clientMaxWindowBits: 9 + (((b >> 5) & 7) % 7),
  };
}

function sameOffers(a: readonly ExtensionOffer[], b: readonly ExtensionOffer[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function checkParams(p: DeflateParams): void {
  for (const bits of [p.serverMaxWindowBits, p.clientMaxWindowBits]) check(Number.isInteger(bits) && bits >= 8 && bits <= 15, `window bits ${bits}`);
  check(typeof p.serverNoContextTakeover === 'boolean' && typeof p.clientNoContextTakeover === 'boolean', 'no-context-takeover flags are not booleans');
}

function runExtensionTarget(data: Buffer): string {
  const server = configFrom(data.length > 0 ? data[0] : 0);
  const client = configFrom(data.length > 1 ? data[1] : 0);
  const value = data.subarray(2).toString('latin1');

  const parsed = expectOnlyWebSocketErrors(() => parseExtensionHeader(value));
  if (parsed.error) {
    const e = parsed.error;
    check(e instanceof HandshakeError && e.code === 'ERR_BAD_EXTENSION_HEADER' && e.status === 400, () => `parseExtensionHeader threw ${errorKey(e)}`);
  }
  const offers = parsed.value ?? [];

  if (parsed.value) {
    // Invariant 2.
    const text = formatExtensions(offers);
    const again = parseExtensionHeader(text);
    check(sameOffers(offers, again), () => `format/parse round trip changed ${JSON.stringify(offers)} into ${JSON.stringify(again)}`);
    // Invariant 1 for the client's check of each element taken as a response.
    for (const o of offers) {
      const r = expectOnlyWebSocketErrors(() => acceptDeflateResponse(o, client));
      if (r.error) check(r.error instanceof HandshakeError && r.error.code === 'ERR_BAD_EXTENSION', () => `acceptDeflateResponse threw ${errorKey(r.error)}`);
      else checkParams(r.value);
    }
  }

  // Invariant 3.
  const picked = negotiateDeflate(offers, server);
  if (picked) {
    checkParams(picked.params);
    const back = parseExtensionHeader(formatExtensions([picked.response]));
    check(sameOffers(back, [picked.response]), 'the server response does not round-trip');
  }

  // Invariant 4: our own client's offer, behind the fuzzed ones that the server may decline.
  const offer = buildDeflateOffer(client);
  const declinable = offers.filter((o) => negotiateDeflate([o], server) === null);
  const withOurs = parseExtensionHeader(formatExtensions([...declinable, offer]));
  const result = negotiateDeflate(withOurs, server);
  check(result !== null, () => `the server declined a valid offer ${formatExtensions([offer])}`);
  const response = parseExtensionHeader(formatExtensions([result.response]))[0];
  const accepted = expectOnlyWebSocketErrors(() => acceptDeflateResponse(response, client));
  check(accepted.error === undefined, () => `client refuses the answer to its own offer: ${accepted.error?.message}`);
  check(JSON.stringify(accepted.value) === JSON.stringify(result.params), () => `client and server disagree: client ${JSON.stringify(accepted.value)} server ${JSON.stringify(result.params)}`);
  // 7.1.2: the server honours the client's announced limits.
  check(result.params.clientMaxWindowBits <= client.clientMaxWindowBits!, 'client window larger than the client offered');
  check(result.params.serverMaxWindowBits <= client.serverMaxWindowBits!, 'server window larger than the client asked for');

  // Coarse on purpose: names and values are arbitrary tokens, and a signature per token would keep every input.
  const shape = parsed.error ? parsed.error.code : offers.slice(0, 4).map((o) => `${o.name === 'permessage-deflate' ? 'p' : 'x'}${Math.min(o.params.length, 5)}`).join(',');
  return `${shape}|${picked ? picked.response.params.map(([n]) => n).join(';') : 'declined'}`;
}

const PARAMS: readonly string[] = [
  'server_no_context_takeover',
  'client_no_context_takeover',
  'server_max_window_bits=10',
  'server_max_window_bits=8',
  'server_max_window_bits=15',
  'server_max_window_bits',
  'server_max_window_bits=010',
  'client_max_window_bits',
  'client_max_window_bits=9',
  'client_max_window_bits="12"',
  'client_max_window_bits=16',
  'unknown=1',
  '__proto__',
  'constructor=x',
];

/** Grammar-aware mutation: add, drop or repeat extensions and parameters. */
function mutateExtensions(data: Buffer, rng: Rng): Buffer | null {
  if (data.length < 2) return null;
  const elements = data.subarray(2).toString('latin1').split(',');
  const i = rng.below(elements.length);
  switch (rng.below(5)) {
    case 0:
      elements[i] += '; ' + rng.pick(PARAMS);
      break;
    case 1:
      elements.splice(rng.below(elements.length + 1), 0, rng.pick(['permessage-deflate', 'x-webkit-deflate-frame', 'permessage-deflate; ' + rng.pick(PARAMS), ' ', '']));
      break;
    case 2:
      elements.splice(i, 0, elements[i]);
      break;
    case 3: {
      const params = elements[i].split(';');
      if (params.length > 1) params.splice(1 + rng.below(params.length - 1), 1);
      elements[i] = params.join(';');
      break;
    }
    default:
      elements[i] = elements[i].replace(/=.*$/, '="' + rng.pick(['10', '1"0', '\\1\\0', '', ' 9', '15']) + '"');
      break;
  }
  return Buffer.concat([data.subarray(0, 2), Buffer.from(elements.join(','), 'latin1')]);
}

export const target: FuzzTarget = {
  name: 'extension-negotiation',
  maxLen: 2048,
  async: false,
  run: runExtensionTarget,
  mutate: mutateExtensions,
};

/** Jazzer.js entry point. */
export function fuzz(data: Buffer): void {
  runExtensionTarget(data);
}
