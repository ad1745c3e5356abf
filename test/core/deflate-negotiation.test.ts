import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  PERMESSAGE_DEFLATE,
  acceptDeflateResponse,
  buildDeflateOffer,
  negotiateDeflate,
  validateDeflateConfig,
  type DeflateConfig,
  type DeflateParams,
} from '../../src/core/deflate-negotiation.js';
import { formatExtension, parseExtensionHeader, type ExtensionOffer } from '../../src/core/extension-header.js';
import { HandshakeError, InvalidArgumentError } from '../../src/core/errors.js';

const DEFAULTS: DeflateParams = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 };

/** Server side from a header value as a client sends it: the response as it goes on the wire, and the params. */
function negotiate(header: string, config: DeflateConfig = {}): { response: string; params: DeflateParams } | null {
  const agreed = negotiateDeflate(parseExtensionHeader(header), config);
  return agreed === null ? null : { response: formatExtension(agreed.response), params: agreed.params };
}

/** Client side from a header value as a server sends it. */
function accept(header: string, config: DeflateConfig = {}): DeflateParams {
  const exts = parseExtensionHeader(header);
  assert.equal(exts.length, 1, 'a response accepts one extension');
  return acceptDeflateResponse(exts[0]!, config);
}

function isBadExtension(err: unknown): boolean {
  // Client side: no HTTP status to answer, the connection is failed (RFC 7692 section 7).
  return err instanceof HandshakeError && err.code === 'ERR_BAD_EXTENSION' && err.status === undefined;
}

function expectFail(header: string, config: DeflateConfig = {}, message?: RegExp): void {
  assert.throws(
    () => accept(header, config),
    (err: unknown) => isBadExtension(err) && (message === undefined || message.test((err as Error).message)),
    `the client must fail on ${JSON.stringify(header)} with ${JSON.stringify(config)}`,
  );
}

function isBadConfig(err: unknown): boolean {
  return err instanceof InvalidArgumentError && err.code === 'ERR_BAD_DEFLATE_CONFIG';
}

/**
 * Offers a server MUST decline (RFC 7692 section 7): an unknown parameter, a
 * parameter repeated, a value where none is allowed, a missing or invalid
 * value (range 8..15, decimal, no leading zeros). Also used as responses the
 * client MUST fail on, except where marked offerOnly.
 */
const INVALID_PARAMS: string[] = [
  // unknown parameters
  'x=1',
  'foo',
  'server_max_window',
  'max_window_bits=10',
  'server_no_context_takeover_',
  '__proto__',
  'constructor',
  'toString=1',
  'hasOwnProperty',
  // repeated parameters, with equal or different values
  'server_no_context_takeover; server_no_context_takeover',
  'client_no_context_takeover; client_no_context_takeover',
  'server_max_window_bits=10; server_max_window_bits=10',
  'server_max_window_bits=10; server_max_window_bits=11',
  'client_max_window_bits=10; client_max_window_bits=10',
  'client_max_window_bits; client_max_window_bits',
  'client_max_window_bits; client_max_window_bits=10',
  'Server_No_Context_Takeover; server_no_context_takeover',
  // values where none is allowed (7.1.1.1, 7.1.1.2)
  'server_no_context_takeover=1',
  'client_no_context_takeover=true',
  'server_no_context_takeover="x"',
  // server_max_window_bits without its required value (7.1.2.1)
  'server_max_window_bits',
  // out of range
  'server_max_window_bits=7',
  'server_max_window_bits=16',
  'server_max_window_bits=0',
  'server_max_window_bits=1',
  'server_max_window_bits=100',
  'server_max_window_bits=99999999999999999999',
  'client_max_window_bits=7',
  'client_max_window_bits=16',
  'client_max_window_bits=0',
  // leading zeros ("without leading zeroes")
  'server_max_window_bits=010',
  'server_max_window_bits=09',
  'server_max_window_bits=00015',
  'client_max_window_bits=012',
  'client_max_window_bits=08',
  'server_max_window_bits="010"',
  // not 1*DIGIT
  'server_max_window_bits=1a',
  'server_max_window_bits=+9',
  'server_max_window_bits=-9',
  'server_max_window_bits=0x9',
  'server_max_window_bits=9.0',
  'server_max_window_bits=1e1',
  'server_max_window_bits=ten',
  'client_max_window_bits=1_0',
  'client_max_window_bits=%31%30',
  'client_max_window_bits="010"',
];

describe('validateDeflateConfig', () => {
  it('fills in the defaults (no limits, context takeover allowed)', () => {
    assert.deepEqual(validateDeflateConfig({}), DEFAULTS);
  });

  it('keeps the configured values and ignores other options such as zlib tuning', () => {
    const config = { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 9, clientMaxWindowBits: 12, level: 9, memLevel: 5, threshold: 0 };
    assert.deepEqual(validateDeflateConfig(config), { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 9, clientMaxWindowBits: 12 });
  });

  it('accepts every window size zlib can compress with, 9 to 15', () => {
    for (let bits = 9; bits <= 15; bits++) {
      assert.equal(validateDeflateConfig({ serverMaxWindowBits: bits }).serverMaxWindowBits, bits);
      assert.equal(validateDeflateConfig({ clientMaxWindowBits: bits }).clientMaxWindowBits, bits);
    }
  });

  it('rejects window bits 8 and says why: zlib raw deflate cannot use a 256-byte window', () => {
    for (const name of ['serverMaxWindowBits', 'clientMaxWindowBits'] as const) {
      assert.throws(
        () => validateDeflateConfig({ [name]: 8 }),
        (err: unknown) => isBadConfig(err) && /zlib/.test((err as Error).message) && (err as Error).message.includes(name),
      );
    }
  });

  it('rejects other window bits outside 9..15 or not integers', () => {
    for (const value of [7, 16, 0, -1, -15, 9.5, NaN, Infinity, '12', null, true]) {
      for (const name of ['serverMaxWindowBits', 'clientMaxWindowBits'] as const) {
        assert.throws(() => validateDeflateConfig({ [name]: value } as unknown as DeflateConfig), isBadConfig, `${name}: ${String(value)}`);
      }
    }
  });

  it('rejects flags that are not booleans', () => {
    for (const value of ['yes', 1, 0, null, {}]) {
      for (const name of ['serverNoContextTakeover', 'clientNoContextTakeover'] as const) {
        assert.throws(() => validateDeflateConfig({ [name]: value } as unknown as DeflateConfig), isBadConfig, `${name}: ${String(value)}`);
      }
    }
  });

  it('rejects a config that is not an object; treats a missing one as the defaults', () => {
    assert.throws(() => validateDeflateConfig('deflate' as unknown as DeflateConfig), isBadConfig);
    assert.throws(() => validateDeflateConfig(15 as unknown as DeflateConfig), isBadConfig);
    assert.deepEqual(validateDeflateConfig(undefined as unknown as DeflateConfig), DEFAULTS);
  });

  it('every entry point validates its config', () => {
    const bad = { serverMaxWindowBits: 8 };
    assert.throws(() => buildDeflateOffer(bad), isBadConfig);
    assert.throws(() => negotiateDeflate(parseExtensionHeader('permessage-deflate'), bad), isBadConfig);
    // Even with nothing to negotiate: a bad server setting is reported at once, not on the first deflate offer.
    assert.throws(() => negotiateDeflate([], bad), isBadConfig);
    assert.throws(() => acceptDeflateResponse({ name: PERMESSAGE_DEFLATE, params: [] }, bad), isBadConfig);
  });
});

describe('buildDeflateOffer', () => {
  it('by default offers client_max_window_bits without a value, like Chromium (RFC 7692 section 7.1.2.2)', () => {
    assert.equal(formatExtension(buildDeflateOffer({})), 'permessage-deflate; client_max_window_bits');
  });

  it('includes every configured parameter, in a fixed order', () => {
    const offer = buildDeflateOffer({ serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 11 });
    assert.deepEqual(offer, {
      name: 'permessage-deflate',
      params: [
        ['server_no_context_takeover', true],
        ['client_no_context_takeover', true],
        ['server_max_window_bits', '10'],
        ['client_max_window_bits', '11'],
      ],
    });
  });

  it('leaves out server_max_window_bits at 15 (absence means 32 KiB, 7.1.2.1) and keeps client_max_window_bits bare', () => {
    assert.equal(formatExtension(buildDeflateOffer({ serverMaxWindowBits: 15, clientMaxWindowBits: 15 })), 'permessage-deflate; client_max_window_bits');
    assert.equal(formatExtension(buildDeflateOffer({ serverMaxWindowBits: 9 })), 'permessage-deflate; server_max_window_bits=9; client_max_window_bits');
    assert.equal(formatExtension(buildDeflateOffer({ clientMaxWindowBits: 9 })), 'permessage-deflate; client_max_window_bits=9');
  });

  it('each flag alone', () => {
    assert.equal(formatExtension(buildDeflateOffer({ serverNoContextTakeover: true })), 'permessage-deflate; server_no_context_takeover; client_max_window_bits');
    assert.equal(formatExtension(buildDeflateOffer({ clientNoContextTakeover: true })), 'permessage-deflate; client_no_context_takeover; client_max_window_bits');
  });

  it('makes an offer the server side accepts as valid for every config', () => {
    for (const config of configGrid([9, 12, 15])) {
      const agreed = negotiateDeflate(parseExtensionHeader(formatExtension(buildDeflateOffer(config))), {});
      assert.ok(agreed, `offer for ${JSON.stringify(config)} is accepted`);
    }
  });
});

describe('negotiateDeflate (server)', () => {
  it('returns null when no permessage-deflate offer is present', () => {
    assert.equal(negotiateDeflate([], {}), null);
    assert.equal(negotiate('x-webkit-deflate-frame'), null);
    assert.equal(negotiate('deflate-frame, permessage-bzip2; x=1'), null);
  });

  it('accepts a bare offer (Firefox) with a bare response and default params', () => {
    assert.deepEqual(negotiate('permessage-deflate'), { response: 'permessage-deflate', params: DEFAULTS });
  });

  it("accepts Chromium's and undici's offer, permessage-deflate; client_max_window_bits", () => {
    assert.deepEqual(negotiate('permessage-deflate; client_max_window_bits'), { response: 'permessage-deflate', params: DEFAULTS });
  });

  it('ignores other extensions, before and after', () => {
    assert.deepEqual(negotiate('x-webkit-deflate-frame, permessage-deflate; client_max_window_bits=12, foo'), {
      response: 'permessage-deflate; client_max_window_bits=12',
      params: { ...DEFAULTS, clientMaxWindowBits: 12 },
    });
  });

  it('matches extension and parameter names case-insensitively (RFC 6455 section 9.1 tokens, lower-cased by the parser)', () => {
    assert.deepEqual(negotiate('PerMessage-Deflate; Server_Max_Window_Bits=10; CLIENT_MAX_WINDOW_BITS'), {
      response: 'permessage-deflate; server_max_window_bits=10',
      params: { ...DEFAULTS, serverMaxWindowBits: 10 },
    });
  });

  it('compares names exactly as lower-case: an offer built with other spellings is not this extension', () => {
    // parseExtensionHeader always lower-cases; an ExtensionOffer made by hand with upper case is not matched.
    assert.equal(negotiateDeflate([{ name: 'Permessage-Deflate', params: [] }], {}), null);
    assert.equal(negotiateDeflate([{ name: PERMESSAGE_DEFLATE, params: [['Server_No_Context_Takeover', true]] }], {}), null);
  });

  it('accepts a quoted value once unquoted (RFC 6455 section 9.1 quoted-string)', () => {
    assert.deepEqual(negotiate('permessage-deflate; server_max_window_bits="10"; client_max_window_bits="9"'), {
      response: 'permessage-deflate; server_max_window_bits=10; client_max_window_bits=9',
      params: { ...DEFAULTS, serverMaxWindowBits: 10, clientMaxWindowBits: 9 },
    });
  });

  describe('server_no_context_takeover (7.1.1.1)', () => {
    it('when offered, is included in the response', () => {
      assert.deepEqual(negotiate('permessage-deflate; server_no_context_takeover'), {
        response: 'permessage-deflate; server_no_context_takeover',
        params: { ...DEFAULTS, serverNoContextTakeover: true },
      });
    });

    it('when configured, is included even if not offered', () => {
      assert.deepEqual(negotiate('permessage-deflate', { serverNoContextTakeover: true }), {
        response: 'permessage-deflate; server_no_context_takeover',
        params: { ...DEFAULTS, serverNoContextTakeover: true },
      });
    });
  });

  describe('client_no_context_takeover (7.1.1.2)', () => {
    it('when configured, is included', () => {
      assert.deepEqual(negotiate('permessage-deflate; client_max_window_bits', { clientNoContextTakeover: true }), {
        response: 'permessage-deflate; client_no_context_takeover',
        params: { ...DEFAULTS, clientNoContextTakeover: true },
      });
    });

    it("when offered, is echoed so the agreement is explicit (libwebsockets-test-client's exact offer)", () => {
      // libwebsockets 4.1.6 test-client: "permessage-deflate; client_no_context_takeover"; its compressor
      // takes its settings from the response only, so the response must say it.
      const expected = { response: 'permessage-deflate; client_no_context_takeover', params: { ...DEFAULTS, clientNoContextTakeover: true } };
      assert.deepEqual(negotiate('permessage-deflate; client_no_context_takeover'), expected);
      // The whole header it sends: its extension list joined with ',' and no space, deflate-frame second.
      assert.deepEqual(negotiate('permessage-deflate; client_no_context_takeover,deflate_frame'), expected);
    });

    it('when neither offered nor configured, is absent and the client may keep its context', () => {
      assert.deepEqual(negotiate('permessage-deflate; server_no_context_takeover')?.params.clientNoContextTakeover, false);
    });
  });

  describe('server_max_window_bits (7.1.2.1)', () => {
    it('when offered, is answered with the smaller of the offer and the configured limit', () => {
      const cases: Array<[offered: number, configured: number, agreed: number]> = [
        [15, 15, 15],
        [12, 15, 12],
        [15, 12, 12],
        [10, 12, 10],
        [12, 10, 10],
        [9, 9, 9],
        [9, 15, 9],
        [15, 9, 9],
      ];
      for (const [offered, configured, agreed] of cases) {
        assert.deepEqual(negotiate(`permessage-deflate; server_max_window_bits=${offered}`, { serverMaxWindowBits: configured }), {
          response: `permessage-deflate; server_max_window_bits=${agreed}`,
          params: { ...DEFAULTS, serverMaxWindowBits: agreed },
        });
      }
    });

    it('when configured below 15, is included even if not offered', () => {
      assert.deepEqual(negotiate('permessage-deflate', { serverMaxWindowBits: 11 }), {
        response: 'permessage-deflate; server_max_window_bits=11',
        params: { ...DEFAULTS, serverMaxWindowBits: 11 },
      });
    });

    it('accepts an offer of 8 (the server will then send uncompressed: zlib cannot use a 256-byte window)', () => {
      assert.deepEqual(negotiate('permessage-deflate; server_max_window_bits=8'), {
        response: 'permessage-deflate; server_max_window_bits=8',
        params: { ...DEFAULTS, serverMaxWindowBits: 8 },
      });
      assert.deepEqual(negotiate('permessage-deflate; server_max_window_bits=8', { serverMaxWindowBits: 9 }), {
        response: 'permessage-deflate; server_max_window_bits=8',
        params: { ...DEFAULTS, serverMaxWindowBits: 8 },
      });
    });

    it('an Autobahn-style offer list with 8 first takes the first offer', () => {
      assert.deepEqual(
        negotiate('permessage-deflate; client_no_context_takeover; client_max_window_bits; server_max_window_bits=8, permessage-deflate; client_no_context_takeover; client_max_window_bits'),
        { response: 'permessage-deflate; client_no_context_takeover; server_max_window_bits=8', params: { ...DEFAULTS, clientNoContextTakeover: true, serverMaxWindowBits: 8 } },
      );
    });
  });

  describe('client_max_window_bits (7.1.2.2)', () => {
    it('offered without a value: included with the configured limit when below 15', () => {
      assert.deepEqual(negotiate('permessage-deflate; client_max_window_bits', { clientMaxWindowBits: 10 }), {
        response: 'permessage-deflate; client_max_window_bits=10',
        params: { ...DEFAULTS, clientMaxWindowBits: 10 },
      });
      assert.deepEqual(negotiate('permessage-deflate; client_max_window_bits', { clientMaxWindowBits: 15 }), { response: 'permessage-deflate', params: DEFAULTS });
    });

    it('offered with a value: the agreed value is the smaller of the offer and the configured limit', () => {
      const cases: Array<[offered: number, configured: number, agreed: number]> = [
        [12, 15, 12],
        [15, 12, 12],
        [10, 12, 10],
        [12, 10, 10],
        [9, 9, 9],
      ];
      for (const [offered, configured, agreed] of cases) {
        assert.deepEqual(negotiate(`permessage-deflate; client_max_window_bits=${offered}`, { clientMaxWindowBits: configured }), {
          response: `permessage-deflate; client_max_window_bits=${agreed}`,
          params: { ...DEFAULTS, clientMaxWindowBits: agreed },
        });
      }
      assert.deepEqual(negotiate('permessage-deflate; client_max_window_bits=15'), { response: 'permessage-deflate', params: DEFAULTS });
    });

    it('offered as 8: accepted, since this side only inflates what the client compresses', () => {
      assert.deepEqual(negotiate('permessage-deflate; client_max_window_bits=8', { clientMaxWindowBits: 12 }), {
        response: 'permessage-deflate; client_max_window_bits=8',
        params: { ...DEFAULTS, clientMaxWindowBits: 8 },
      });
    });

    it('not offered: the response MUST NOT include it, whatever the configured limit; the client keeps 15', () => {
      for (const header of ['permessage-deflate', 'permessage-deflate; server_max_window_bits=10', 'permessage-deflate; client_no_context_takeover']) {
        for (let bits = 9; bits <= 15; bits++) {
          const agreed = negotiateDeflate(parseExtensionHeader(header), { clientMaxWindowBits: bits });
          assert.ok(agreed, header);
          assert.ok(!agreed.response.params.some(([name]) => name === 'client_max_window_bits'), `${header} with clientMaxWindowBits ${bits}`);
          assert.equal(agreed.params.clientMaxWindowBits, 15);
        }
      }
    });
  });

  it('answers every parameter at once, in a fixed order', () => {
    assert.deepEqual(
      negotiate('permessage-deflate; client_max_window_bits=14; server_max_window_bits=13; client_no_context_takeover; server_no_context_takeover', {
        serverMaxWindowBits: 12,
        clientMaxWindowBits: 11,
      }),
      {
        response: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=11',
        params: { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 12, clientMaxWindowBits: 11 },
      },
    );
  });

  describe('declining (RFC 7692 section 7, "A server MUST decline an extension negotiation offer")', () => {
    for (const bad of INVALID_PARAMS) {
      it(`declines "${bad}" and falls back to the next offer`, () => {
        assert.equal(negotiate(`permessage-deflate; ${bad}`), null);
        // The invalid offer is skipped, not the whole header: the next one is taken.
        assert.deepEqual(negotiate(`permessage-deflate; ${bad}, permessage-deflate; server_max_window_bits=11`), {
          response: 'permessage-deflate; server_max_window_bits=11',
          params: { ...DEFAULTS, serverMaxWindowBits: 11 },
        });
        // With a valid parameter before it, still declined.
        assert.equal(negotiate(`permessage-deflate; client_max_window_bits=10; ${bad}`, { serverNoContextTakeover: true }), null);
      });
    }
  });

  it('takes the first acceptable offer in the order given (RFC 7692 section 5: the client lists its preference first)', () => {
    assert.deepEqual(negotiate('permessage-deflate; server_max_window_bits=10, permessage-deflate'), {
      response: 'permessage-deflate; server_max_window_bits=10',
      params: { ...DEFAULTS, serverMaxWindowBits: 10 },
    });
    assert.deepEqual(negotiate('permessage-deflate; x=1, permessage-deflate; server_max_window_bits=16, foo, permessage-deflate; client_max_window_bits=9, permessage-deflate'), {
      response: 'permessage-deflate; client_max_window_bits=9',
      params: { ...DEFAULTS, clientMaxWindowBits: 9 },
    });
  });

  it('declines every offer when all are invalid', () => {
    assert.equal(negotiate('permessage-deflate; x, permessage-deflate; server_max_window_bits, permessage-deflate; server_max_window_bits=16'), null);
  });

  it('does not modify the offers it is given', () => {
    const offers = parseExtensionHeader('permessage-deflate; server_max_window_bits=12; client_max_window_bits, permessage-deflate');
    const copy = structuredClone(offers);
    negotiateDeflate(offers, { serverMaxWindowBits: 10, clientMaxWindowBits: 9, serverNoContextTakeover: true, clientNoContextTakeover: true });
    assert.deepEqual(offers, copy);
  });

  it('handles a header with many offers in one pass (1000 invalid offers, then a valid one)', () => {
    const header = Array.from({ length: 1000 }, (_, i) => `permessage-deflate; p${i}=1`).join(', ') + ', permessage-deflate';
    assert.deepEqual(negotiate(header), { response: 'permessage-deflate', params: DEFAULTS });
  });

  it('every response it sends obeys 7.1 against its offer, for every combination of offered parameters', () => {
    // Offers built from each parameter absent or with one of a few values, valid and invalid; for each
    // accepted one, the response is checked against the RFC's constraints, not against the code's formula.
    const flagValues: Array<string | true | undefined> = [undefined, true, '1'];
    const bitValues: Array<string | true | undefined> = [undefined, true, '8', '9', '12', '15', '16', '010'];
    const serverConfigs: DeflateConfig[] = [{}, { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 9, clientMaxWindowBits: 9 }, { serverMaxWindowBits: 12, clientMaxWindowBits: 12 }];
    let accepted = 0;
    let declined = 0;
    for (const snct of flagValues) {
      for (const cnct of flagValues) {
        for (const smwb of bitValues) {
          for (const cmwb of bitValues) {
            const params: Array<[string, string | true]> = [];
            if (snct !== undefined) params.push(['server_no_context_takeover', snct]);
            if (cnct !== undefined) params.push(['client_no_context_takeover', cnct]);
            if (smwb !== undefined) params.push(['server_max_window_bits', smwb]);
            if (cmwb !== undefined) params.push(['client_max_window_bits', cmwb]);
            const validBits = (v: string | true | undefined) => typeof v === 'string' && ['8', '9', '10', '11', '12', '13', '14', '15'].includes(v);
            const valid = snct !== '1' && cnct !== '1' && (smwb === undefined || validBits(smwb)) && (cmwb === undefined || cmwb === true || validBits(cmwb));
            for (const config of serverConfigs) {
              const agreed = negotiateDeflate([{ name: PERMESSAGE_DEFLATE, params }], config);
              const label = `${JSON.stringify(params)} with ${JSON.stringify(config)}`;
              if (!valid) {
                assert.equal(agreed, null, label);
                declined++;
                continue;
              }
              assert.ok(agreed, label);
              accepted++;
              checkResponse(params, agreed.response, agreed.params, label);
            }
          }
        }
      }
    }
    assert.ok(accepted > 100 && declined > 100, `accepted ${accepted}, declined ${declined}`);
  });
});

/** RFC 7692 section 7.1 constraints on a response to one offer, and the params it implies. */
function checkResponse(offer: Array<[string, string | true]>, response: ExtensionOffer, params: DeflateParams, label: string): void {
  const get = (list: Array<[string, string | true]>, name: string) => list.filter(([n]) => n === name).map(([, v]) => v);
  assert.equal(response.name, PERMESSAGE_DEFLATE, label);
  for (const [name] of response.params) assert.equal(get(response.params, name).length, 1, `${label}: ${name} once`);
  const known = ['server_no_context_takeover', 'client_no_context_takeover', 'server_max_window_bits', 'client_max_window_bits'];
  assert.ok(response.params.every(([name]) => known.includes(name)), label);
  // 7.1.1.1: an offered server_no_context_takeover is accepted by including it.
  if (get(offer, 'server_no_context_takeover').length) assert.deepEqual(get(response.params, 'server_no_context_takeover'), [true], label);
  assert.equal(params.serverNoContextTakeover, get(response.params, 'server_no_context_takeover').length === 1, label);
  assert.equal(params.clientNoContextTakeover, get(response.params, 'client_no_context_takeover').length === 1, label);
  // 7.1.2.1: an offered server_max_window_bits is answered with the same or a smaller value.
  const offeredServerBits = get(offer, 'server_max_window_bits');
  const answeredServerBits = get(response.params, 'server_max_window_bits');
  if (offeredServerBits.length) {
    assert.equal(answeredServerBits.length, 1, label);
    assert.ok(Number(answeredServerBits[0]) <= Number(offeredServerBits[0]), label);
  }
  assert.equal(params.serverMaxWindowBits, answeredServerBits.length ? Number(answeredServerBits[0]) : 15, label);
  // 8 only when the client offered exactly 8 (the server then sends uncompressed); never of its own accord.
  if (params.serverMaxWindowBits < 9) assert.deepEqual(offeredServerBits, ['8'], `${label}: the server agrees to 8 only when offered 8`);
  // 7.1.2.2: client_max_window_bits only if offered, with a value, not above an offered value.
  const offeredClientBits = get(offer, 'client_max_window_bits');
  const answeredClientBits = get(response.params, 'client_max_window_bits');
  if (!offeredClientBits.length) assert.equal(answeredClientBits.length, 0, label);
  if (answeredClientBits.length) {
    assert.equal(typeof answeredClientBits[0], 'string', label);
    if (offeredClientBits[0] !== true) assert.ok(Number(answeredClientBits[0]) <= Number(offeredClientBits[0]), label);
  }
  const clientBound = answeredClientBits.length ? Number(answeredClientBits[0]) : offeredClientBits.length && offeredClientBits[0] !== true ? Number(offeredClientBits[0]) : 15;
  assert.equal(params.clientMaxWindowBits, clientBound, label);
  for (const [, value] of response.params) if (value !== true) assert.match(value, /^(?:[89]|1[0-5])$/, label);
}

describe('acceptDeflateResponse (client)', () => {
  it('accepts a bare response: default params', () => {
    assert.deepEqual(accept('permessage-deflate'), DEFAULTS);
  });

  it("accepts Python websockets 10.4's answers to this client's default offer", () => {
    // Checked against python3-websockets 10.4's ServerPerMessageDeflateFactory (its server default,
    // server_max_window_bits=12 and client_max_window_bits=12) answering "permessage-deflate; client_max_window_bits".
    assert.deepEqual(accept('permessage-deflate; server_max_window_bits=12; client_max_window_bits=12'), {
      ...DEFAULTS,
      serverMaxWindowBits: 12,
      clientMaxWindowBits: 12,
    });
    // ... and to an offer with client_no_context_takeover and server_no_context_takeover.
    assert.deepEqual(
      accept('permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=12', {
        serverNoContextTakeover: true,
        clientNoContextTakeover: true,
      }),
      { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 12, clientMaxWindowBits: 12 },
    );
  });

  it('rejects a response for another extension', () => {
    assert.throws(() => acceptDeflateResponse({ name: 'permessage-bzip2', params: [] }, {}), isBadExtension);
  });

  describe('server_no_context_takeover (7.1.1.1)', () => {
    it('present: the server resets its context, whether or not it was requested', () => {
      assert.equal(accept('permessage-deflate; server_no_context_takeover').serverNoContextTakeover, true);
      assert.equal(accept('permessage-deflate; server_no_context_takeover', { serverNoContextTakeover: true }).serverNoContextTakeover, true);
    });

    it('requested but missing: fail', () => {
      expectFail('permessage-deflate', { serverNoContextTakeover: true }, /server_no_context_takeover/);
      expectFail('permessage-deflate; client_no_context_takeover; server_max_window_bits=10', { serverNoContextTakeover: true });
    });
  });

  describe('client_no_context_takeover (7.1.1.2)', () => {
    it('present: the client must not keep its context', () => {
      assert.equal(accept('permessage-deflate; client_no_context_takeover').clientNoContextTakeover, true);
    });

    it('offered but not echoed: the client keeps its promise anyway', () => {
      assert.equal(accept('permessage-deflate', { clientNoContextTakeover: true }).clientNoContextTakeover, true);
    });

    it('neither: the client may keep its context', () => {
      assert.equal(accept('permessage-deflate').clientNoContextTakeover, false);
    });
  });

  describe('server_max_window_bits (7.1.2.1)', () => {
    it('not offered: any value 8..15 is accepted, including 8 (this side only inflates with it)', () => {
      for (let bits = 8; bits <= 15; bits++) {
        assert.equal(accept(`permessage-deflate; server_max_window_bits=${bits}`).serverMaxWindowBits, bits);
      }
    });

    it('offered: the same or a smaller value is accepted', () => {
      for (let bits = 8; bits <= 10; bits++) {
        assert.equal(accept(`permessage-deflate; server_max_window_bits=${bits}`, { serverMaxWindowBits: 10 }).serverMaxWindowBits, bits);
      }
    });

    it('offered: a larger value fails', () => {
      for (let bits = 11; bits <= 15; bits++) {
        expectFail(`permessage-deflate; server_max_window_bits=${bits}`, { serverMaxWindowBits: 10 }, /larger/);
      }
    });

    it('offered but missing from the response: fail (the server would use up to 32 KiB)', () => {
      expectFail('permessage-deflate', { serverMaxWindowBits: 10 }, /lacks/);
      expectFail('permessage-deflate; client_max_window_bits=10', { serverMaxWindowBits: 12 });
    });
  });

  describe('client_max_window_bits (7.1.2.2)', () => {
    it('offered without a value: 9..15 accepted as the limit this client compresses with', () => {
      for (let bits = 9; bits <= 15; bits++) {
        assert.equal(accept(`permessage-deflate; client_max_window_bits=${bits}`).clientMaxWindowBits, bits);
      }
    });

    it('8 is accepted (this client then sends uncompressed: zlib cannot use a 256-byte window)', () => {
      assert.equal(accept('permessage-deflate; client_max_window_bits=8').clientMaxWindowBits, 8);
      assert.equal(accept('permessage-deflate; client_max_window_bits=8', { clientMaxWindowBits: 9 }).clientMaxWindowBits, 8);
    });

    it('offered with a value: the same or smaller is accepted, larger fails', () => {
      assert.equal(accept('permessage-deflate; client_max_window_bits=11', { clientMaxWindowBits: 11 }).clientMaxWindowBits, 11);
      assert.equal(accept('permessage-deflate; client_max_window_bits=9', { clientMaxWindowBits: 11 }).clientMaxWindowBits, 9);
      for (let bits = 12; bits <= 15; bits++) {
        expectFail(`permessage-deflate; client_max_window_bits=${bits}`, { clientMaxWindowBits: 11 }, /larger/);
      }
    });

    it('missing from the response: the offered value (or 15) applies', () => {
      assert.equal(accept('permessage-deflate', { clientMaxWindowBits: 11 }).clientMaxWindowBits, 11);
      assert.equal(accept('permessage-deflate').clientMaxWindowBits, 15);
    });

    it('without a value in a response: fail', () => {
      expectFail('permessage-deflate; client_max_window_bits', {}, /needs a value/);
    });
  });

  describe('failing (RFC 7692 section 7, "A client MUST _Fail the WebSocket Connection_")', () => {
    for (const bad of INVALID_PARAMS) {
      it(`fails on "${bad}"`, () => {
        expectFail(`permessage-deflate; ${bad}`);
        // Also next to valid parameters, and whatever the config.
        expectFail(`permessage-deflate; server_no_context_takeover; ${bad}`, { serverNoContextTakeover: true, clientMaxWindowBits: 12 });
      });
    }
  });

  it('does not modify the response it is given', () => {
    const response = parseExtensionHeader('permessage-deflate; server_max_window_bits=12; client_max_window_bits=10')[0]!;
    const copy = structuredClone(response);
    acceptDeflateResponse(response, {});
    assert.deepEqual(response, copy);
  });
});

/** Every combination of the two flags and the given window bits for both directions. */
function configGrid(bits: number[]): DeflateConfig[] {
  const out: DeflateConfig[] = [];
  for (const serverNoContextTakeover of [false, true]) {
    for (const clientNoContextTakeover of [false, true]) {
      for (const serverMaxWindowBits of bits) {
        for (const clientMaxWindowBits of bits) {
          out.push({ serverNoContextTakeover, clientNoContextTakeover, serverMaxWindowBits, clientMaxWindowBits });
        }
      }
    }
  }
  return out;
}

describe('round trip: client offer -> server -> client', () => {
  it('both sides agree on identical params for every pair of configs, and on what each asked for', () => {
    const grid = configGrid([9, 10, 12, 15]);
    let pairs = 0;
    for (const client of grid) {
      // On the wire and back, as the handshake carries it.
      const offerHeader = formatExtension(buildDeflateOffer(client));
      for (const server of grid) {
        const agreed = negotiateDeflate(parseExtensionHeader(offerHeader), server);
        const label = `client ${JSON.stringify(client)}, server ${JSON.stringify(server)}`;
        assert.ok(agreed, label);
        const responses = parseExtensionHeader(formatExtension(agreed.response));
        assert.equal(responses.length, 1, label);
        const clientParams = acceptDeflateResponse(responses[0]!, client);
        assert.deepEqual(clientParams, agreed.params, label);
        // Each side gets at least what it asked for: no context takeover if either wants it, and the
        // smaller window of the two limits in each direction.
        assert.deepEqual(
          clientParams,
          {
            serverNoContextTakeover: client.serverNoContextTakeover! || server.serverNoContextTakeover!,
            clientNoContextTakeover: client.clientNoContextTakeover! || server.clientNoContextTakeover!,
            serverMaxWindowBits: Math.min(client.serverMaxWindowBits!, server.serverMaxWindowBits!),
            clientMaxWindowBits: Math.min(client.clientMaxWindowBits!, server.clientMaxWindowBits!),
          },
          label,
        );
        pairs++;
      }
    }
    assert.equal(pairs, grid.length * grid.length);
  });

  it('with the defaults on both sides, no parameter is needed in the response', () => {
    const agreed = negotiateDeflate(parseExtensionHeader(formatExtension(buildDeflateOffer({}))), {});
    assert.ok(agreed);
    assert.equal(formatExtension(agreed.response), 'permessage-deflate');
    assert.deepEqual(acceptDeflateResponse(agreed.response, {}), DEFAULTS);
  });

  it('a client limiting its own window to 9 and asking for server_max_window_bits=9 against a server limited to 12', () => {
    const offer = formatExtension(buildDeflateOffer({ serverMaxWindowBits: 9, clientMaxWindowBits: 9 }));
    assert.equal(offer, 'permessage-deflate; server_max_window_bits=9; client_max_window_bits=9');
    const agreed = negotiate(offer, { serverMaxWindowBits: 12, clientMaxWindowBits: 12 });
    assert.deepEqual(agreed, {
      response: 'permessage-deflate; server_max_window_bits=9; client_max_window_bits=9',
      params: { ...DEFAULTS, serverMaxWindowBits: 9, clientMaxWindowBits: 9 },
    });
    assert.deepEqual(accept(agreed!.response, { serverMaxWindowBits: 9, clientMaxWindowBits: 9 }), agreed!.params);
  });
});
