import { Histogram } from './histogram.js';

/** Upper bounds of the ping round-trip histogram, in seconds (0.5 ms to 10 s). */
export const PING_RTT_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * What the sessions of one server count, in one object they share (the
 * server owns it and reads it for server.metrics()). Plain number fields,
 * bumped where the event already happens: no Map lookup, no closure, no timer
 * per message or per session, so counting costs a few additions on the hot
 * path. Client sessions have none. Guarded by test/server/metrics.test.ts.
 */
export class SessionCounters {
  /** Whole messages received (delivered to onMessage, messages() or, for onFragment, on their last fragment). */
  textMessagesIn = 0;
  binaryMessagesIn = 0;
  /** Payload bytes received (after permessage-deflate). */
  textBytesIn = 0;
  binaryBytesIn = 0;
  /** Messages accepted for sending (send(), streams on their last fragment, each session of a fan-out). */
  textMessagesOut = 0;
  binaryMessagesOut = 0;
  /** Payload bytes accepted for sending (before permessage-deflate). */
  textBytesOut = 0;
  binaryBytesOut = 0;
  /** Sends answered 'dropped' because the session was no longer open. */
  droppedClosed = 0;
  /** Sends answered 'dropped' because they would have passed maxQueuedBytes. */
  droppedLimit = 0;
  /** Sends answered 'backpressure' (bufferedAmount above highWaterMark). */
  backpressure = 0;
  /** Round-trip times of keepalive pings, in seconds. */
  readonly pingRtt = new Histogram(PING_RTT_BUCKETS);

  received(binary: boolean, bytes: number, endsMessage: boolean): void {
    if (binary) {
      this.binaryBytesIn += bytes;
      if (endsMessage) this.binaryMessagesIn++;
    } else {
      this.textBytesIn += bytes;
      if (endsMessage) this.textMessagesIn++;
    }
  }

  sent(binary: boolean, bytes: number, endsMessage: boolean): void {
    if (binary) {
      this.binaryBytesOut += bytes;
      if (endsMessage) this.binaryMessagesOut++;
    } else {
      this.textBytesOut += bytes;
      if (endsMessage) this.textMessagesOut++;
    }
  }
}
