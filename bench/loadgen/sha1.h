// SHA-1 (FIPS 180-4) and base64 (RFC 4648), just enough for the
// Sec-WebSocket-Accept check of RFC 6455 section 4.1: the generator links
// nothing but libc, so it cannot borrow OpenSSL's.
#ifndef LOADGEN_SHA1_H
#define LOADGEN_SHA1_H

#include <stddef.h>
#include <stdint.h>

void sha1(const void *data, size_t len, uint8_t digest[20]);

/** Writes the padded base64 of in[0..len) and a NUL; out needs 4 * ((len + 2) / 3) + 1 bytes. */
size_t base64_encode(const uint8_t *in, size_t len, char *out);

#endif
