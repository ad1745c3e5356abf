/**
 * Close status codes, RFC 6455 section 7.4 and the IANA "WebSocket Close Code
 * Number Registry" (which added 1012-1014 after the RFC).
 */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  UnsupportedData: 1003,
  /** Never on the wire: "no status code was present" (7.4.1). */
  NoStatus: 1005,
  /** Never on the wire: "closed abnormally, without a close frame" (7.4.1). */
  Abnormal: 1006,
  InvalidPayload: 1007,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  MandatoryExtension: 1010,
  InternalError: 1011,
  ServiceRestart: 1012,
  TryAgainLater: 1013,
  BadGateway: 1014,
  /** Never on the wire: TLS handshake failure (7.4.1). */
  TlsHandshake: 1015,
} as const;

/**
 * May this code appear in a close frame? RFC 6455 section 7.4.1 forbids 1004
 * (reserved), 1005, 1006 and 1015 on the wire; 0-999 are unused and 1016-2999
 * are reserved for future RFCs, so a peer sending them is a protocol error
 * (section 7.4.2: "MUST NOT be used" / section 7.1.5). 3000-4999 are for
 * libraries, frameworks and applications.
 */
export function isValidWireCloseCode(code: number): boolean {
  if (code >= 3000 && code <= 4999) return true;
  if (code < 1000 || code > 1014) return false;
  return code !== 1004 && code !== 1005 && code !== 1006;
}

/** Largest close reason in bytes: 125-byte control payload minus the 2-byte code (RFC 6455 section 5.5). */
export const MAX_CLOSE_REASON_BYTES = 123;
