import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CloseCode, isValidWireCloseCode, MAX_CLOSE_REASON_BYTES } from '../../src/core/close-codes.js';

/**
 * The reference, written from the text of RFC 6455 section 7.4 and the IANA
 * registry rather than from the implementation:
 * - 0-999: "not used" (7.4.2);
 * - 1000-2999: reserved for the protocol; of those, the defined ones a peer
 *   may put on the wire are 1000-1003 and 1007-1011 (7.4.1), plus 1012-1014
 *   registered with IANA later; 1004 is reserved, 1005/1006/1015 "MUST NOT be
 *   set as a status code in a Close control frame"; the rest are undefined;
 * - 3000-3999: registered libraries/frameworks; 4000-4999: private use;
 * - 5000 and above do not exist.
 */
const DEFINED_ON_WIRE = new Set([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014]);
function referenceValid(code: number): boolean {
  return DEFINED_ON_WIRE.has(code) || (code >= 3000 && code <= 4999);
}

describe('close codes (RFC 6455 section 7.4)', () => {
  it('isValidWireCloseCode agrees with the RFC/IANA reference on every 16-bit code', () => {
    const wrong: number[] = [];
    for (let code = 0; code <= 0xffff; code++) if (isValidWireCloseCode(code) !== referenceValid(code)) wrong.push(code);
    assert.deepEqual(wrong, []);
  });

  it('accepts the codes Autobahn 7.7.x sends', () => {
    for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]) {
      assert.equal(isValidWireCloseCode(code), true, String(code));
    }
  });

  it('refuses the codes Autobahn 7.9.x and 7.13.x send', () => {
    for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
      assert.equal(isValidWireCloseCode(code), false, String(code));
    }
  });

  it('the named codes have their section 7.4.1 values, and the never-on-the-wire ones are refused', () => {
    assert.equal(CloseCode.Normal, 1000);
    assert.equal(CloseCode.GoingAway, 1001);
    assert.equal(CloseCode.ProtocolError, 1002);
    assert.equal(CloseCode.UnsupportedData, 1003);
    assert.equal(CloseCode.NoStatus, 1005);
    assert.equal(CloseCode.Abnormal, 1006);
    assert.equal(CloseCode.InvalidPayload, 1007);
    assert.equal(CloseCode.PolicyViolation, 1008);
    assert.equal(CloseCode.MessageTooBig, 1009);
    assert.equal(CloseCode.MandatoryExtension, 1010);
    assert.equal(CloseCode.InternalError, 1011);
    assert.equal(CloseCode.TlsHandshake, 1015);
    for (const code of [CloseCode.NoStatus, CloseCode.Abnormal, CloseCode.TlsHandshake]) assert.equal(isValidWireCloseCode(code), false);
  });

  it('a close reason has at most 125 - 2 = 123 bytes (section 5.5)', () => {
    assert.equal(MAX_CLOSE_REASON_BYTES, 123);
  });
});
