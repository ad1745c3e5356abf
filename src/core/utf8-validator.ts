/**
 * UTF-8 validation for text messages and close reasons.
 *
 * RFC 6455 section 8.1: an endpoint that receives a text message whose payload
 * is not valid UTF-8 must fail the connection (close code 1007, section 7.4.1).
 * Text arrives split across fragments (section 5.4) and TCP chunks at arbitrary
 * byte positions, so the frame layer feeds a streaming validator that keeps the
 * state of a partial multi-byte sequence between calls.
 *
 * The validator fails fast: it reports invalid at the first byte after which
 * the input can no longer be the prefix of any valid UTF-8 string (the
 * "fail fast on invalid UTF-8" checks of the Autobahn testsuite, cases 6.x).
 * That lets the connection be failed before the rest of a large bad message
 * is read, buffered or inflated.
 *
 * Validity is the grammar of RFC 3629 section 4:
 *
 *   UTF8-1      = %x00-7F
 *   UTF8-2      = %xC2-DF UTF8-tail
 *   UTF8-3      = %xE0 %xA0-BF UTF8-tail / %xE1-EC 2( UTF8-tail ) /
 *                 %xED %x80-9F UTF8-tail / %xEE-EF 2( UTF8-tail )
 *   UTF8-4      = %xF0 %x90-BF 2( UTF8-tail ) / %xF1-F3 3( UTF8-tail ) /
 *                 %xF4 %x80-8F 2( UTF8-tail )
 *   UTF8-tail   = %x80-BF
 *
 * Every alternative is decided by its lead byte, and only the byte right after
 * the lead ever has a range narrower than UTF8-tail. So the whole state is: how
 * many continuation bytes are still owed, and the allowed range of the next one.
 */
import { isUtf8 } from 'node:buffer';

/** The UTF8-tail range of RFC 3629 section 4. */
const TAIL_LO = 0x80;
const TAIL_HI = 0xbf;

/**
 * Streaming UTF-8 validator. Feed it the payload bytes of one text message in
 * order, in any chunking; call isComplete() at the end of the message.
 *
 * One instance per message stream (per connection direction); it holds no
 * shared state, so instances are independent.
 */
export class Utf8Validator {
  /** Continuation bytes still owed by the current multi-byte sequence (0..3). */
  #need = 0;
  /** Inclusive range allowed for the next continuation byte. */
  #lo = TAIL_LO;
  #hi = TAIL_HI;
  /** Sticky: once the input is certainly invalid, no later bytes can repair it. */
  #failed = false;

  /**
   * Feeds bytes data[start, end). Returns false as soon as the input seen so
   * far (across all calls since reset) is certainly invalid; after false the
   * validator stays failed until reset().
   *
   * Throws RangeError if [start, end) is not a range of integer indices of data:
   * a caller bug, not a property of the peer's input.
   */
  write(data: Uint8Array, start = 0, end: number = data.length): boolean {
    if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start <= end && end <= data.length)) {
      throw new RangeError(`invalid range [${start}, ${end}) for ${data.length} bytes`);
    }
    if (this.#failed) return false;

    // Work on locals: the loop is hot and private-field access is not free.
    let need = this.#need;
    let lo = this.#lo;
    let hi = this.#hi;
    let i = start;

    if (need === 0 && end - start >= NATIVE_MIN) {
      // Between characters with a long run ahead: node:buffer's native isUtf8
      // checks everything up to the last character that starts in the range;
      // the loop below only sees what may be an unfinished last character
      // (at most 3 bytes). Failing here is failing at this write, as the loop
      // would (the input is invalid somewhere in this range either way).
      const cut = lastCharStart(data, start, end);
      const whole = cut === -1 || cut + sequenceLength(data[cut]) <= end ? end : cut;
      if (whole > start) {
        const view = whole - start === data.length ? data : data.subarray(start, whole);
        if (!isUtf8(view)) return this.#fail();
        i = whole;
      }
    }

    while (i < end) {
      if (need === 0) {
        // Between characters. Most text is ASCII (UTF8-1), which needs no
        // state, so skip runs of it: eight bytes at a time while their OR has
        // the high bit clear, then byte by byte up to the first non-ASCII one.
        while (
          i + 8 <= end &&
          (data[i] |
            data[i + 1] |
            data[i + 2] |
            data[i + 3] |
            data[i + 4] |
            data[i + 5] |
            data[i + 6] |
            data[i + 7]) <
            0x80
        ) {
          i += 8;
        }
        while (i < end && data[i] < 0x80) i++;
        if (i === end) break;

        const b = data[i++];
        if (b >= 0xc2 && b <= 0xdf) {
          // UTF8-2. C0 and C1 would only encode U+0000..U+007F (overlong), so
          // RFC 3629 section 4 leaves them out of the grammar: they fail here.
          need = 1;
          lo = TAIL_LO;
          hi = TAIL_HI;
        } else if (b >= 0xe0 && b <= 0xef) {
          // UTF8-3. After E0 only A0..BF (below that is an overlong form of
          // U+0000..U+07FF); after ED only 80..9F (above that are the UTF-16
          // surrogates U+D800..U+DFFF, which RFC 3629 section 3 forbids).
          need = 2;
          lo = b === 0xe0 ? 0xa0 : TAIL_LO;
          hi = b === 0xed ? 0x9f : TAIL_HI;
        } else if (b >= 0xf0 && b <= 0xf4) {
          // UTF8-4. After F0 only 90..BF (below is overlong); after F4 only
          // 80..8F (above is beyond U+10FFFF). F5..FF can only start
          // code points above U+10FFFF and fail here.
          need = 3;
          lo = b === 0xf0 ? 0x90 : TAIL_LO;
          hi = b === 0xf4 ? 0x8f : TAIL_HI;
        } else {
          // 80..BF (a continuation byte where a character must start), C0, C1
          // and F5..FF: no valid string has this byte here.
          return this.#fail();
        }
      } else {
        const b = data[i++];
        // Anything outside the range, including a lead byte or ASCII where a
        // continuation is owed, makes the prefix unextendable at this byte.
        if (b < lo || b > hi) return this.#fail();
        need--;
        // Only the first continuation byte can be narrower than UTF8-tail.
        lo = TAIL_LO;
        hi = TAIL_HI;
      }
    }

    this.#need = need;
    this.#lo = lo;
    this.#hi = hi;
    return true;
  }

  /**
   * True if everything fed so far is valid and complete (not in the middle of
   * a multi-byte sequence). Does not reset.
   */
  isComplete(): boolean {
    return !this.#failed && this.#need === 0;
  }

  /** Returns to the initial state. */
  reset(): void {
    this.#need = 0;
    this.#lo = TAIL_LO;
    this.#hi = TAIL_HI;
    this.#failed = false;
  }

  #fail(): false {
    this.#failed = true;
    this.#need = 0;
    this.#lo = TAIL_LO;
    this.#hi = TAIL_HI;
    return false;
  }
}

/** Below this many bytes the native check's call costs more than the loop. */
const NATIVE_MIN = 32;

/**
 * Index of the last byte in [start, end) that is not a continuation byte,
 * looking at most 4 bytes back (a character is at most 4 bytes), or -1.
 */
function lastCharStart(data: Uint8Array, start: number, end: number): number {
  const stop = Math.max(start, end - 4);
  for (let j = end - 1; j >= stop; j--) if ((data[j] & 0xc0) !== 0x80) return j;
  return -1;
}

/** Length of the sequence a byte starts (1 for ASCII and for bytes that cannot start one: isUtf8 then decides). */
function sequenceLength(b: number): number {
  if (b >= 0xc2 && b <= 0xdf) return 2;
  if (b >= 0xe0 && b <= 0xef) return 3;
  if (b >= 0xf0 && b <= 0xf4) return 4;
  return 1;
}

/**
 * Whole-buffer check, for complete messages and close reasons (RFC 6455
 * section 7.1.6 requires the close reason to be UTF-8 too). node:buffer's
 * isUtf8 is native code and validates the same RFC 3629 grammar.
 */
export function isValidUtf8(data: Uint8Array): boolean {
  return isUtf8(data);
}
