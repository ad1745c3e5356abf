/**
 * SessionCounters (src/transport/session-counters.ts), the one object the
 * sessions of a server share: messages count on their last piece, bytes on
 * every piece, text and binary apart. The sessions' calls into it are
 * checked end to end by test/server/metrics.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SessionCounters } from '../../src/transport/session-counters.js';

describe('SessionCounters', () => {
  it('counts messages on their last piece and bytes on every piece, by type', () => {
    const c = new SessionCounters();
    c.received(false, 5, true);
    c.received(true, 3, false);
    c.received(true, 4, true);
    c.sent(false, 7, true);
    c.sent(true, 0, true);
    c.sent(true, 10, false);
    assert.deepEqual(
      [c.textMessagesIn, c.textBytesIn, c.binaryMessagesIn, c.binaryBytesIn, c.textMessagesOut, c.textBytesOut, c.binaryMessagesOut, c.binaryBytesOut],
      [1, 5, 1, 7, 1, 7, 1, 10],
    );
  });
});
