// The benchmark's native load generator: the same job as bench/generator.mjs
// (same config, same JSON result, same payload stamps, same verification),
// written in C on epoll so that it needs a fraction of the CPU of the servers
// it measures and the numbers are the server's, not the generator's.
//
// Usage: loadgen '<json config>'    (see README.md for the fields)
// Prints one JSON line on stdout: the result, or {"error": "..."}. Exit 0 on
// success, 2 when an echo failed verification, a connection broke, a phase
// timed out or the config was wrong: the numbers of such a run mean nothing.
//
// Workloads:
//   echo       closed loop, `depth` messages in flight per connection
//   handshake  `connections` loops of connect, handshake, one echo, close
//   idle       open `connections`, one echo each, print ESTABLISHED, hold them
//              until stdin closes or holdMs passes, answering pings
//   fanout     every connection receives what the first one sends (the server
//              broadcasts); the next broadcast goes when all have verified it.
//              The clients may be spread over several server processes
//              ("ports"), and may speak engine.io/socket.io ("protocol":
//              "engine.io") inside the WebSocket, for socket.io servers.
//
// Each payload starts with a 16-byte ASCII stamp: 8 hex digits of connection
// id, 8 of sequence number (fanout: the sender's id and the broadcast
// number), so a reordered, duplicated, lost or cross-connection echo is caught
// and not only a corrupted one. The rest is a fixed per-run template.
//
// With "tls": true every connection runs inside TLS (OpenSSL), in every
// workload, the server certificate verified against tlsCa only. A plain
// connection never touches OpenSSL: its reads and writes are read() and
// write() on the socket, as without TLS.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "config.h"
#include "histogram.h"
#include "sha1.h"

#define STAMP 16
#define MAX_HEAD 8192
#define READ_BUF (512 * 1024)
#define MAX_EVENTS 512
#define FANOUT_SENDER 0 // index of the connection that sends the broadcasts

static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"; // RFC 6455 section 1.3

#if OPENSSL_VERSION_NUMBER < 0x10101000L
#error "loadgen needs OpenSSL 1.1.1 or later (Debian/Ubuntu: apt-get install libssl-dev)"
#endif

enum { OP_CONT = 0x0, OP_TEXT = 0x1, OP_BINARY = 0x2, OP_CLOSE = 0x8, OP_PING = 0x9, OP_PONG = 0xA };

typedef enum {
  ST_FREE,       // no socket (handshake workload: between cycles)
  ST_CONNECTING, // connect() in progress
  ST_TLS,        // TLS handshake in progress (SSL_connect, driven by epoll)
  ST_HANDSHAKE,  // request sent, reading the response head
  ST_OPEN,       // handshake done (ws) or connected (raw)
  ST_CLOSING,    // our close frame (or FIN for raw) is queued: waiting for the server to hang up
  ST_DONE,
} conn_state;

typedef enum { RX_HDR, RX_DATA, RX_CTRL } rx_state;

typedef struct conn {
  int fd;
  uint32_t id;
  int port; // the server port this connection dials (cfg.ports[index % nports])
  conn_state state;
  // TLS: NULL for a plain connection, which never goes through OpenSSL. A
  // TLS operation that cannot go on says which way the socket must move, and
  // that is independent of what the operation was: a read may need the socket
  // writable and a write may need it readable. Each flag records one such
  // wait; EPOLLIN is always armed, EPOLLOUT exactly while encrypted bytes
  // wait in tls_out or one of the *_wants_write flags is set (tls_arm).
  SSL *ssl;
  bool tls_hs_wants_write;    // SSL_connect said WANT_WRITE
  bool tls_read_wants_write;  // SSL_read said WANT_WRITE: retry the read when writable
  bool tls_write_wants_write; // SSL_write (or SSL_shutdown) said WANT_WRITE: retry when writable
  bool tls_write_wants_read;  // SSL_write (or SSL_shutdown) said WANT_READ: retry when readable
  bool tls_close_sent;        // raw close: our close_notify is made (FIN follows once it is out)
  uint8_t *tls_out;           // encrypted bytes the socket has not taken yet (see tls_bio_write)
  size_t tls_out_len, tls_out_off, tls_out_cap;
  bool established; // counted once it is ready for the workload
  bool want_out;    // EPOLLOUT armed
  bool dirty;       // on the flush list
  bool shut_after_flush; // raw close: FIN once the queued bytes are out
  bool got_close;   // the server's close frame arrived
  uint64_t t0;      // handshake: when connect() was called
  char key[25];     // Sec-WebSocket-Key
  char *head;       // response head being read (handshake only)
  size_t head_len;
  // outbound bytes, written with one write() per batch
  uint8_t *out;
  size_t out_len, out_off, out_cap;
  // sequencing
  uint32_t send_seq, recv_seq;
  uint64_t *sent_at; // ring of send times, ns
  uint64_t window_completed;
  // inbound frame state (RFC 6455 section 5.2); server frames are unmasked
  rx_state rx;
  uint8_t hdr[14];
  uint8_t hdr_len;
  bool frame_fin;
  bool in_message; // a fragmented message is open
  uint64_t remaining;
  uint8_t ctrl_op;
  uint8_t ctrl_len, ctrl_need;
  uint8_t ctrl[125];
  uint64_t msg_off; // bytes of the current echoed message verified so far
  uint8_t exp_stamp[STAMP];
  // engine.io (cfg.eio): where the connection is in the socket.io handshake,
  // and the packet being received (see eio_data)
  uint8_t eio_stage;   // 0: waiting for the open packet, 1: "40" sent, waiting for the connect packet, 2: connected
  uint8_t eio_kind;    // of the packet being received: 0 not known yet, 'E' an event, 'B' another packet (buffered whole)
  uint32_t eio_pos;    // bytes of the packet received so far
  uint16_t eio_len;    // bytes in eio_buf
  char eio_buf[512];
} conn;

// ------------------------------------------------------------ run state (one run per process)

static config cfg;
static uint8_t *tmpl; // the payload template; its first 16 bytes are replaced by the stamp
static size_t tmpl_len;
static uint8_t opcode;
static int epfd;
static conn *conns;
static int nconns;
static uint32_t ring_mask;
static uint8_t rbuf[READ_BUF];
static conn **dirty;
static int ndirty;
static uint64_t rng_state;
static int stdin_marker; // its address tags stdin in epoll
static bool stdin_closed;
static bool stdin_go; // goOnStdin: a line arrived
static SSL_CTX *tls_ctx; // NULL unless cfg.tls
static char tls_protocol[32], tls_cipher[128]; // what the first TLS handshake negotiated, for the result

static struct {
  bool running;   // send a new message for each verified echo
  bool measuring; // count what completes
  uint64_t completed;
  histogram lat;
  int in_progress;  // connection attempts not yet established
  int next_to_open; // next connection index to open
  int established;
  int done;         // connections closed
  uint64_t pings;
  uint32_t next_id; // handshake workload: ids keep growing across cycles
  // fanout
  uint32_t fan_sent, fan_done;
  uint64_t *fan_sent_at;
  int *fan_remaining;
} st;

// ------------------------------------------------------------ helpers

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/** Writes s as a JSON string; bytes outside printable ASCII become \u00XX (read as Latin-1, as the Node generator does). */
static void json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
    else if (*p < 0x20 || *p >= 0x7f) fprintf(f, "\\u%04x", *p);
    else fputc(*p, f);
  }
  fputc('"', f);
}

static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fail(const char *fmt, ...) {
  char msg[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fputs("{\"error\":", stdout);
  json_string(stdout, msg);
  fputs("}\n", stdout);
  fflush(stdout);
  _exit(2);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) fail("out of memory (%zu bytes)", n);
  return p;
}

// xorshift64*: masking keys need to be unpredictable to intermediaries
// (RFC 6455 section 5.3), not cryptographic; a getrandom() seed is enough and
// a key then costs a few instructions instead of a system call.
static inline uint64_t rng_next(void) {
  uint64_t x = rng_state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rng_state = x;
  return x * 0x2545F4914F6CDD1DULL;
}

static void fill_random(void *buf, size_t n) {
  uint8_t *p = buf;
  while (n > 0) {
    ssize_t k = getrandom(p, n, 0);
    if (k < 0) {
      if (errno == EINTR) continue;
      fail("getrandom: %s", strerror(errno));
    }
    p += k;
    n -= (size_t)k;
  }
}

static const char HEXD[] = "0123456789abcdef";

/** The 16-byte stamp: id and seq as 8 lowercase hex digits each (bench/generator.mjs writeStamp). */
static void write_stamp(uint8_t *out, uint32_t id, uint32_t seq) {
  for (int i = 0; i < 8; i++) {
    out[i] = (uint8_t)HEXD[(id >> (28 - 4 * i)) & 15];
    out[8 + i] = (uint8_t)HEXD[(seq >> (28 - 4 * i)) & 15];
  }
}

// ------------------------------------------------------------ CPU readings (as bench/generator.mjs)

static double self_cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static double clk_tck(void) {
  if (cfg.clkTck > 0) return cfg.clkTck;
  long t = sysconf(_SC_CLK_TCK);
  return t > 0 ? (double)t : 100;
}

/** User+system CPU seconds of process pid from /proc/<pid>/stat; NaN when unknown. */
static double pid_cpu_seconds(int pid) {
  if (pid <= 0) return NAN;
  char path[64], buf[2048];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return NAN;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  if (!p) return NAN;
  // After ") " come fields 3.. ; utime and stime are fields 14 and 15.
  unsigned long long ut = 0, stt = 0;
  if (sscanf(p + 2, "%*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu %llu", &ut, &stt) != 2) return NAN;
  return (double)(ut + stt) / clk_tck();
}

/** The server's CPU seconds: serverPid and every serverPids process, summed; NaN when one is unknown. */
static double server_cpu_seconds(void) {
  if (cfg.serverPid <= 0 && cfg.nserverPids == 0) return NAN;
  double sum = cfg.serverPid > 0 ? pid_cpu_seconds(cfg.serverPid) : 0;
  for (int i = 0; i < cfg.nserverPids; i++) sum += pid_cpu_seconds(cfg.serverPids[i]);
  return sum;
}

/** Busy seconds (user, nice, system, irq, softirq, steal) of the pinned CPUs (all when unpinned); NaN elsewhere. */
static double busy_cpu_seconds(void) {
  FILE *f = fopen("/proc/stat", "r");
  if (!f) return NAN;
  char line[512];
  double ticks = 0;
  int found = 0;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "cpu", 3) != 0) break;
    bool want;
    if (cfg.ncpus < 0) want = line[3] == ' ';
    else {
      want = false;
      if (isdigit((unsigned char)line[3])) {
        int cpu = atoi(line + 3);
        for (int i = 0; i < cfg.ncpus; i++) want |= cfg.cpus[i] == cpu;
      }
    }
    if (!want) continue;
    unsigned long long v[8] = {0};
    char *p = line + 3;
    while (*p && *p != ' ') p++;
    sscanf(p, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
    ticks += (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]);
    found++;
  }
  fclose(f);
  if (found == 0 || (cfg.ncpus >= 0 && found != cfg.ncpus)) return NAN;
  return ticks / clk_tck();
}

/** With LOADGEN_DEBUG set, prints the time since start of each phase to stderr (for finding where a run spends its time). */
static void phase(const char *what) {
  static uint64_t t_start;
  static int enabled = -1;
  if (enabled < 0) enabled = getenv("LOADGEN_DEBUG") != NULL;
  if (!t_start) t_start = now_ns();
  if (enabled) fprintf(stderr, "loadgen: %8.1f ms  %s\n", (double)(now_ns() - t_start) / 1e6, what);
}

typedef struct {
  uint64_t start;
  double self, server, busy, redis;
} cpu_window;

static cpu_window window_open(void) { return (cpu_window){now_ns(), self_cpu_seconds(), server_cpu_seconds(), busy_cpu_seconds(), cfg.redisPid > 0 ? pid_cpu_seconds(cfg.redisPid) : 0}; }

typedef struct {
  double seconds, generator, server, other, redis;
} cpu_result;

static cpu_result window_close(cpu_window w) {
  cpu_result r;
  r.seconds = (double)(now_ns() - w.start) / 1e9;
  r.generator = (self_cpu_seconds() - w.self) / r.seconds;
  r.server = (server_cpu_seconds() - w.server) / r.seconds; // NaN propagates
  double busy = (busy_cpu_seconds() - w.busy) / r.seconds;
  r.redis = cfg.redisPid > 0 ? (pid_cpu_seconds(cfg.redisPid) - w.redis) / r.seconds : 0;
  // Clock ticks are coarse (10 ms): a small negative difference is rounding.
  r.other = isnan(busy) || isnan(r.server) || isnan(r.redis) ? NAN : fmax(0, busy - r.generator - r.server - r.redis);
  return r;
}

/** A JSON number, or null for NaN (what JSON.stringify does). */
static void jnum(const char *key, double v, bool last) {
  if (isnan(v) || isinf(v)) printf("\"%s\":null%s", key, last ? "" : ",");
  else {
    // The shortest precision that reads back as the same double, as JavaScript prints numbers.
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
      snprintf(buf, sizeof buf, "%.*g", prec, v);
      if (strtod(buf, NULL) == v) break;
    }
    printf("\"%s\":%s%s", key, buf, last ? "" : ",");
  }
}

// ------------------------------------------------------------ outbound bytes

/**
 * Room for n more bytes at the end of a byte queue (buf[off, len) still to
 * send, cap allocated): the sent front is dropped first, then the buffer
 * doubles from first_cap as needed. The caller fills the bytes.
 */
static uint8_t *queue_reserve(uint8_t **buf, size_t *off, size_t *len, size_t *cap, size_t n, size_t first_cap, const char *what, unsigned id) {
  if (*off == *len) *off = *len = 0;
  if (*len + n > *cap) {
    if (*off > 0) {
      memmove(*buf, *buf + *off, *len - *off);
      *len -= *off;
      *off = 0;
    }
    if (*len + n > *cap) {
      size_t c = *cap ? *cap : first_cap;
      while (c < *len + n) c *= 2;
      uint8_t *p = realloc(*buf, c);
      if (!p) fail("out of memory (%zu bytes of %s for connection %u)", c, what, id);
      *buf = p;
      *cap = c;
    }
  }
  uint8_t *p = *buf + *len;
  *len += n;
  return p;
}

/** Room for n more bytes at the end of the outbound queue; the caller fills them. */
static uint8_t *out_reserve(conn *c, size_t n) {
  return queue_reserve(&c->out, &c->out_off, &c->out_len, &c->out_cap, n, 4096, "output", c->id);
}

static void mark_dirty(conn *c) {
  if (!c->dirty) {
    c->dirty = true;
    dirty[ndirty++] = c;
  }
}

static void set_want_out(conn *c, bool want) {
  if (c->want_out == want) return;
  c->want_out = want;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0), .data.ptr = c};
  if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) fail("epoll_ctl: %s", strerror(errno));
}

static void conn_done(conn *c);
static void tls_flush(conn *c);

/** Writes as much of the queue as the socket takes; arms EPOLLOUT for the rest. */
static void flush(conn *c) {
  if (c->fd < 0 || c->state == ST_CONNECTING) return; // connect() completion owns EPOLLOUT until then
  if (c->ssl) {
    tls_flush(c);
    return;
  }
  while (c->out_off < c->out_len) {
    ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
    if (n > 0) {
      c->out_off += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      set_want_out(c, true);
      return;
    }
    if (c->state == ST_CLOSING) { // the server hung up first: that ends the close
      conn_done(c);
      return;
    }
    fail("connection %u: write: %s", c->id, n < 0 ? strerror(errno) : "wrote nothing");
  }
  c->out_off = c->out_len = 0;
  set_want_out(c, false);
  if (c->shut_after_flush) {
    c->shut_after_flush = false;
    shutdown(c->fd, SHUT_WR);
  }
}

static void flush_dirty(void) {
  // Flushing can close a connection, never add one: the list does not grow while it is walked.
  for (int i = 0; i < ndirty; i++) {
    dirty[i]->dirty = false;
    flush(dirty[i]);
  }
  ndirty = 0;
}

/** Copies len template bytes to dst, masked with key (RFC 6455 section 5.3), eight bytes at a time. */
static void mask_copy(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[4]) {
  uint32_t k32;
  memcpy(&k32, key, 4);
  uint64_t k64 = (uint64_t)k32 | (uint64_t)k32 << 32; // the key's bytes repeated, in memory order
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t v;
    memcpy(&v, src + i, 8);
    v ^= k64;
    memcpy(dst + i, &v, 8);
  }
  for (; i < len; i++) dst[i] = src[i] ^ key[i & 3];
}

/** A masked client frame header (section 5.2) for a payload of len bytes; returns where the payload goes. */
static uint8_t *frame_header(conn *c, uint8_t op, size_t len, uint8_t key[4]) {
  size_t hlen = len < 126 ? 2 : len < 65536 ? 4 : 10;
  uint8_t *f = out_reserve(c, hlen + 4 + len);
  f[0] = 0x80 | op; // FIN, no RSV bits: one frame per message
  if (hlen == 2) {
    f[1] = 0x80 | (uint8_t)len;
  } else if (hlen == 4) {
    f[1] = 0x80 | 126;
    f[2] = (uint8_t)(len >> 8);
    f[3] = (uint8_t)len;
  } else {
    f[1] = 0x80 | 127;
    for (int i = 0; i < 8; i++) f[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
  }
  uint32_t k = (uint32_t)(rng_next() >> 32);
  memcpy(key, &k, 4);
  memcpy(f + hlen, key, 4);
  return f + hlen + 4;
}

// engine.io (cfg.eio): a broadcast travels as the socket.io event packet
// 42["fan","<payload>"] in one text frame, both ways (engine.io packet type 4
// "message", socket.io packet type 2 "event", default namespace); the payload
// is letters and digits (cfg.ascii), so it is a JSON string as it is.
static const char EIO_PRE[] = "42[\"fan\",\"";
static const char EIO_SUF[] = "\"]";
#define EIO_PRE_LEN (sizeof EIO_PRE - 1)
#define EIO_SUF_LEN (sizeof EIO_SUF - 1)

/** Queues message `seq` stamped with `id`: a masked frame, or the bare payload for raw. */
static void send_message(conn *c, uint32_t id, uint32_t seq) {
  uint8_t stamp[STAMP];
  write_stamp(stamp, id, seq);
  if (cfg.eio) {
    size_t len = EIO_PRE_LEN + tmpl_len + EIO_SUF_LEN;
    uint8_t *msg = xmalloc(len);
    memcpy(msg, EIO_PRE, EIO_PRE_LEN);
    memcpy(msg + EIO_PRE_LEN, stamp, STAMP);
    memcpy(msg + EIO_PRE_LEN + STAMP, tmpl + STAMP, tmpl_len - STAMP);
    memcpy(msg + EIO_PRE_LEN + tmpl_len, EIO_SUF, EIO_SUF_LEN);
    uint8_t key[4];
    uint8_t *p = frame_header(c, OP_TEXT, len, key);
    mask_copy(p, msg, len, key);
    free(msg);
  } else if (cfg.raw) {
    uint8_t *p = out_reserve(c, tmpl_len);
    memcpy(p, stamp, STAMP);
    memcpy(p + STAMP, tmpl + STAMP, tmpl_len - STAMP);
  } else {
    uint8_t key[4];
    uint8_t *p = frame_header(c, opcode, tmpl_len, key);
    mask_copy(p, tmpl, tmpl_len, key);
    for (int s = 0; s < STAMP; s++) p[s] = stamp[s] ^ key[s & 3];
  }
  mark_dirty(c);
}

static void send_control(conn *c, uint8_t op, const uint8_t *data, size_t len) {
  uint8_t key[4];
  uint8_t *p = frame_header(c, op, len, key);
  for (size_t i = 0; i < len; i++) p[i] = data[i] ^ key[i & 3];
  mark_dirty(c);
}

/** Starts our side of the close: a close frame with 1000 (section 5.5.1), or a FIN for raw. */
static void begin_close(conn *c) {
  if (c->state != ST_OPEN) return;
  c->state = ST_CLOSING;
  if (cfg.raw) {
    c->shut_after_flush = true;
  } else {
    static const uint8_t normal[2] = {0x03, 0xe8};
    send_control(c, OP_CLOSE, normal, 2);
  }
  // The server closes the TCP connection first (RFC 6455 section 7.1.1), so
  // the TIME_WAIT stays on its side and repeated runs do not use up our ports.
  mark_dirty(c);
}

// ------------------------------------------------------------ connections

static void on_established(conn *c);
static void on_message_complete(conn *c, uint64_t now);

static void tls_free(conn *c);

static void conn_reset(conn *c) {
  tls_free(c);
  c->fd = -1;
  c->state = ST_FREE;
  c->established = c->want_out = c->dirty = c->shut_after_flush = c->got_close = false;
  c->out_len = c->out_off = 0;
  c->send_seq = c->recv_seq = 0;
  c->window_completed = 0;
  c->rx = RX_HDR;
  c->hdr_len = 0;
  c->frame_fin = c->in_message = false;
  c->remaining = 0;
  c->msg_off = 0;
  c->eio_stage = c->eio_kind = 0;
  c->eio_pos = c->eio_len = 0;
  free(c->head);
  c->head = NULL;
  c->head_len = 0;
}

static void conn_open(conn *c) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) fail("connection %u: socket: %s", c->id, strerror(errno));
  int one = 1;
  // ws and sockeye both disable Nagle on their sockets; so does the generator.
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
  if (inet_pton(AF_INET, cfg.host, &sa.sin_addr) != 1) fail("host %s is not an IPv4 address", cfg.host);
  c->state = ST_CONNECTING;
  c->t0 = now_ns();
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.ptr = c};
  c->want_out = true;
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) fail("epoll_ctl: %s", strerror(errno));
  if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
    fail("connection %u: connect to %s:%d: %s", c->id, cfg.host, c->port, strerror(errno));
  }
}

static void conn_done(conn *c) {
  tls_free(c);
  if (c->fd >= 0) close(c->fd); // also leaves the epoll set
  c->fd = -1;
  c->state = ST_DONE;
  st.done++;
  if (cfg.workload == W_HANDSHAKE && st.running) {
    // The loop goes round: the same slot dials again as a new connection.
    conn_reset(c);
    c->id = ++st.next_id;
    conn_open(c);
  }
}

static void tls_start(conn *c);
static void on_transport_ready(conn *c);

static void on_connected(conn *c) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err) fail("connection %u: connect to %s:%d: %s", c->id, cfg.host, c->port, strerror(err));
  if (tls_ctx) tls_start(c); // calls on_transport_ready once the TLS handshake is done
  else on_transport_ready(c);
}

/** The byte stream is up (TCP, or TLS over it): raw is ready; ws sends its opening handshake. */
static void on_transport_ready(conn *c) {
  if (cfg.raw) {
    c->state = ST_OPEN;
    set_want_out(c, false);
    on_established(c);
    return;
  }
  uint8_t nonce[16];
  fill_random(nonce, sizeof nonce); // section 4.1: a random 16-byte nonce, base64-encoded
  base64_encode(nonce, sizeof nonce, c->key);
  char req[512];
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                   cfg.path, cfg.host, c->port, c->key);
  memcpy(out_reserve(c, (size_t)n), req, (size_t)n);
  c->head = xmalloc(MAX_HEAD + 1);
  c->head_len = 0;
  c->state = ST_HANDSHAKE;
  set_want_out(c, false);
  mark_dirty(c);
}

/** Checks the server's response head (RFC 6455 section 4.1); returns NULL or what is wrong. */
static const char *check_handshake(char *head, const char *key, char *why, size_t cap) {
  char *eol = strstr(head, "\r\n");
  if (eol) *eol = 0;
  if (strncmp(head, "HTTP/1.1 ", 9) != 0 || !isdigit((unsigned char)head[9]) || !isdigit((unsigned char)head[10]) || !isdigit((unsigned char)head[11])) {
    snprintf(why, cap, "bad status line \"%.80s\"", head);
    return why;
  }
  if (strncmp(head + 9, "101", 3) != 0) {
    snprintf(why, cap, "status %.3s instead of 101", head + 9);
    return why;
  }
  char expect[64], joined[64];
  uint8_t digest[20];
  snprintf(joined, sizeof joined, "%s%s", key, GUID);
  sha1(joined, strlen(joined), digest);
  base64_encode(digest, sizeof digest, expect);
  bool upgrade = false, connection = false, accept = false;
  for (char *line = eol ? eol + 2 : NULL; line && *line;) {
    char *next = strstr(line, "\r\n");
    if (next) *next = 0;
    char *colon = strchr(line, ':');
    if (!colon || colon == line) {
      snprintf(why, cap, "bad header line \"%.80s\"", line);
      return why;
    }
    *colon = 0;
    char *value = colon + 1;
    while (*value == ' ' || *value == '\t') value++;
    char *end = value + strlen(value);
    while (end > value && (end[-1] == ' ' || end[-1] == '\t')) *--end = 0;
    char *name = line;
    end = name + strlen(name);
    while (end > name && (end[-1] == ' ' || end[-1] == '\t')) *--end = 0;
    if (!strcasecmp(name, "upgrade")) upgrade = !strcasecmp(value, "websocket");
    else if (!strcasecmp(name, "connection")) {
      // A comma-separated token list: "Upgrade" must be one of the tokens.
      for (char *tok = strtok(value, ","); tok; tok = strtok(NULL, ",")) {
        while (*tok == ' ' || *tok == '\t') tok++;
        char *te = tok + strlen(tok);
        while (te > tok && (te[-1] == ' ' || te[-1] == '\t')) *--te = 0;
        if (!strcasecmp(tok, "upgrade")) connection = true;
      }
    } else if (!strcasecmp(name, "sec-websocket-accept")) accept = !strcmp(value, expect);
    else if (!strcasecmp(name, "sec-websocket-extensions")) return "server chose an extension that was not offered";
    else if (!strcasecmp(name, "sec-websocket-protocol")) return "server chose a subprotocol that was not offered";
    line = next ? next + 2 : NULL;
  }
  if (!upgrade) return "Upgrade is not websocket";
  if (!connection) return "Connection lacks upgrade";
  if (!accept) return "wrong Sec-WebSocket-Accept";
  return NULL;
}

// ------------------------------------------------------------ verification

/** Compares n echoed bytes at p with what was sent at the current message offset. */
static void verify(conn *c, const uint8_t *p, size_t n) {
  uint32_t id = c->id, seq = c->recv_seq;
  if (cfg.workload == W_FANOUT) {
    id = conns[FANOUT_SENDER].id;
    if (seq >= st.fan_sent) fail("connection %u: received bytes before broadcast %u was sent", c->id, seq);
  } else if (c->recv_seq == c->send_seq) {
    fail("connection %u: received bytes with no message in flight", c->id);
  }
  uint64_t off = c->msg_off, end = off + n;
  if (end > tmpl_len) fail("connection %u: echo of message %u is longer than the %zu bytes sent", c->id, seq, tmpl_len);
  if (off == 0) write_stamp(c->exp_stamp, id, seq);
  const uint8_t *s = p;
  if (off < STAMP) {
    uint64_t k = end < STAMP ? end : STAMP;
    if (memcmp(s, c->exp_stamp + off, k - off) != 0) {
      char got[4 * STAMP + 1];
      size_t g = 0;
      for (uint64_t i = 0; i < k - off; i++) {
        unsigned char ch = s[i];
        if (ch == '"' || ch == '\\') got[g++] = '\\', got[g++] = (char)ch;
        else if (ch >= 0x20 && ch < 0x7f) got[g++] = (char)ch;
        else g += (size_t)snprintf(got + g, sizeof got - g, "\\x%02x", ch);
      }
      got[g] = 0;
      fail("connection %u: echo stamp mismatch at message %u (expected %.*s, got \"%s\"): reordered, lost or corrupted", c->id, seq, (int)(k - off), (const char *)c->exp_stamp + off, got);
    }
    s += k - off;
    off = k;
  }
  if (off < end && memcmp(s, tmpl + off, end - off) != 0) {
    uint64_t at = 0;
    while (s[at] == tmpl[off + at]) at++;
    fail("connection %u: echoed payload differs from the sent one at byte %llu of message %u", c->id, (unsigned long long)(off + at), seq);
  }
  c->msg_off = end;
}

// ------------------------------------------------------------ engine.io / socket.io (cfg.eio)
//
// The handshake inside the WebSocket (engine.io protocol 4, socket.io 5):
// the server opens with 0{"sid":...,"pingInterval":...}; we connect to the
// default namespace with "40"; the server answers 40{"sid":...}, and only then
// is the client counted established. The server pings with "2" every
// pingInterval; we answer "3". A broadcast is the event 42["fan","<payload>"]:
// its fixed prefix and suffix are compared byte for byte, the payload with
// verify() like any other. Anything else (a disconnect "41", a close "1", a
// connect error "44", an event of another name) fails the run.

/** Fails the run naming an unexpected engine.io packet (its first bytes, printable). */
static void eio_unexpected(conn *c, const char *why) {
  char shown[96];
  size_t n = c->eio_len < 64 ? c->eio_len : 64, k = 0;
  for (size_t i = 0; i < n; i++) shown[k++] = c->eio_buf[i] >= 0x20 && c->eio_buf[i] < 0x7f ? c->eio_buf[i] : '?';
  shown[k] = 0;
  fail("connection %u: %s: engine.io packet \"%s\"%s", c->id, why, shown, c->eio_len > 64 ? "..." : "");
}

/** n bytes of a text message from a socket.io server (any part of it, in order). */
static void eio_data(conn *c, const uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    if (c->eio_kind != 'E') {
      // Buffered until the first two bytes say what the packet is: "42" is an event (streamed, checked as it comes), the rest is kept whole.
      if (c->eio_len >= sizeof c->eio_buf - 1) eio_unexpected(c, "packet too long");
      c->eio_buf[c->eio_len++] = (char)p[i++];
      c->eio_pos++;
      if (c->eio_kind == 0 && c->eio_len == 2) {
        c->eio_kind = c->eio_buf[0] == '4' && c->eio_buf[1] == '2' ? 'E' : 'B';
        if (c->eio_kind == 'E' && c->eio_stage != 2) eio_unexpected(c, "event before the socket.io connect");
      }
      continue;
    }
    uint64_t pos = c->eio_pos;
    if (pos < EIO_PRE_LEN) {
      if (p[i] != (uint8_t)EIO_PRE[pos]) fail("connection %u: broadcast %u: socket.io event differs from 42[\"fan\",\"...\"] at byte %llu", c->id, c->recv_seq, (unsigned long long)pos);
      c->eio_pos++;
      i++;
    } else if (pos < EIO_PRE_LEN + tmpl_len) {
      size_t k = EIO_PRE_LEN + tmpl_len - pos;
      if (k > n - i) k = n - i;
      verify(c, p + i, k);
      c->eio_pos += (uint32_t)k;
      i += k;
    } else if (pos < EIO_PRE_LEN + tmpl_len + EIO_SUF_LEN) {
      if (p[i] != (uint8_t)EIO_SUF[pos - EIO_PRE_LEN - tmpl_len]) fail("connection %u: broadcast %u: socket.io event differs after its payload, at byte %llu", c->id, c->recv_seq, (unsigned long long)pos);
      c->eio_pos++;
      i++;
    } else {
      fail("connection %u: broadcast %u: socket.io event longer than the %zu bytes sent", c->id, c->recv_seq, EIO_PRE_LEN + tmpl_len + EIO_SUF_LEN);
    }
  }
}

/** A whole text message from a socket.io server has arrived. */
static void eio_end(conn *c, uint64_t now) {
  char kind = (char)c->eio_kind;
  uint32_t pos = c->eio_pos;
  c->eio_kind = 0;
  c->eio_pos = 0;
  if (kind == 'E') {
    c->eio_len = 0;
    if (pos != EIO_PRE_LEN + tmpl_len + EIO_SUF_LEN || c->msg_off != tmpl_len) fail("connection %u: broadcast %u: socket.io event has %u bytes, sent %zu", c->id, c->recv_seq, pos, EIO_PRE_LEN + tmpl_len + EIO_SUF_LEN);
    on_message_complete(c, now);
    return;
  }
  c->eio_buf[c->eio_len] = 0;
  const char *b = c->eio_buf;
  if (c->eio_len == 1 && b[0] == '2') {
    // engine.io ping (protocol 4: the server pings): answer pong at once.
    st.pings++;
    if (c->state == ST_OPEN) send_control(c, OP_TEXT, (const uint8_t *)"3", 1);
  } else if (c->eio_stage == 0 && b[0] == '0' && b[1] == '{' && strstr(b, "\"sid\":\"") && strstr(b, "\"pingInterval\":")) {
    c->eio_stage = 1;
    send_control(c, OP_TEXT, (const uint8_t *)"40", 2); // connect to the default namespace "/"
  } else if (c->eio_stage == 1 && !strncmp(b, "40{\"sid\":\"", 10)) {
    c->eio_stage = 2;
    on_established(c);
  } else {
    eio_unexpected(c, c->eio_stage == 2 ? "unexpected packet" : "unexpected packet in the socket.io handshake");
  }
  c->eio_len = 0;
}

static void end_frame(conn *c, uint64_t now) {
  c->rx = RX_HDR;
  if (!c->frame_fin) return;
  if (cfg.eio) {
    eio_end(c, now);
    return;
  }
  if (c->msg_off != tmpl_len) fail("connection %u: echo of message %u has %llu bytes, sent %zu", c->id, c->recv_seq, (unsigned long long)c->msg_off, tmpl_len);
  on_message_complete(c, now);
}

static void on_control(conn *c) {
  if (c->ctrl_op == OP_PING) {
    // Section 5.5.2: answer with a pong carrying the same application data.
    st.pings++;
    if (c->state == ST_OPEN || c->state == ST_CLOSING) send_control(c, OP_PONG, c->ctrl, c->ctrl_len);
  } else if (c->ctrl_op == OP_CLOSE) {
    if (c->state != ST_CLOSING) {
      if (c->ctrl_len >= 2) fail("connection %u: server sent close (%u)", c->id, (unsigned)c->ctrl[0] << 8 | c->ctrl[1]);
      fail("connection %u: server sent close (no code)", c->id);
    }
    c->got_close = true;
  } else if (c->ctrl_op != OP_PONG) {
    fail("connection %u: unknown control opcode %u", c->id, c->ctrl_op);
  }
}

static void on_frames(conn *c, const uint8_t *p, size_t n, uint64_t now) {
  size_t pos = 0;
  while (pos < n && c->fd >= 0) {
    if (c->rx == RX_DATA) {
      size_t k = c->remaining < n - pos ? (size_t)c->remaining : n - pos;
      if (cfg.eio) eio_data(c, p + pos, k);
      else verify(c, p + pos, k);
      pos += k;
      c->remaining -= k;
      if (c->remaining == 0) end_frame(c, now);
      continue;
    }
    if (c->rx == RX_CTRL) {
      size_t k = (size_t)(c->ctrl_need - c->ctrl_len);
      if (k > n - pos) k = n - pos;
      memcpy(c->ctrl + c->ctrl_len, p + pos, k);
      c->ctrl_len = (uint8_t)(c->ctrl_len + k);
      pos += k;
      if (c->ctrl_len == c->ctrl_need) {
        c->rx = RX_HDR;
        on_control(c);
      }
      continue;
    }
    // A header: 2 bytes, then 2 or 8 more for the extended length; it may be split across reads.
    while (c->hdr_len < 2 && pos < n) c->hdr[c->hdr_len++] = p[pos++];
    if (c->hdr_len < 2) return;
    uint8_t b0 = c->hdr[0], b1 = c->hdr[1];
    unsigned need = (b1 & 0x7f) == 126 ? 4 : (b1 & 0x7f) == 127 ? 10 : 2;
    while (c->hdr_len < need && pos < n) c->hdr[c->hdr_len++] = p[pos++];
    if (c->hdr_len < need) return;
    c->hdr_len = 0;
    bool fin = b0 & 0x80;
    uint8_t op = b0 & 0x0f;
    if (b0 & 0x70) fail("connection %u: RSV bits set without an extension", c->id);
    // Section 5.1: a server MUST NOT mask the frames it sends.
    if (b1 & 0x80) fail("connection %u: server sent a masked frame", c->id);
    uint64_t len = b1 & 0x7f;
    if (need == 4) len = (uint64_t)c->hdr[2] << 8 | c->hdr[3];
    else if (need == 10) {
      len = 0;
      for (int i = 0; i < 8; i++) len = len << 8 | c->hdr[2 + i];
      if (len >> 63) fail("connection %u: 64-bit frame length with the top bit set", c->id); // section 5.2
    }
    // Section 5.2: "the minimal number of bytes MUST be used to encode the length".
    if ((need == 4 && len < 126) || (need == 10 && len < 65536)) fail("connection %u: frame length %llu not in its minimal encoding", c->id, (unsigned long long)len);
    if (c->got_close) fail("connection %u: frame after the server's close frame", c->id);
    if (op >= 0x8) {
      // Control frames (section 5.5): not fragmented, at most 125 bytes, may sit between fragments.
      if (!fin || len > 125) fail("connection %u: malformed control frame", c->id);
      c->ctrl_op = op;
      c->ctrl_len = 0;
      c->ctrl_need = (uint8_t)len;
      if (len == 0) on_control(c);
      else c->rx = RX_CTRL;
      continue;
    }
    if (op == OP_CONT) {
      if (!c->in_message) fail("connection %u: continuation frame without a message", c->id);
    } else if (op == OP_TEXT || op == OP_BINARY) {
      if (c->in_message) fail("connection %u: new message inside a fragmented one", c->id);
      if (op != opcode) fail("connection %u: echo came back as %s", c->id, op == OP_TEXT ? "TEXT" : "BINARY");
    } else {
      fail("connection %u: unknown opcode %u", c->id, op);
    }
    c->in_message = !fin;
    c->frame_fin = fin;
    c->remaining = len;
    c->rx = RX_DATA;
    if (len == 0) end_frame(c, now);
  }
}

static void on_raw(conn *c, const uint8_t *p, size_t n, uint64_t now) {
  size_t pos = 0;
  while (pos < n && c->fd >= 0) {
    size_t k = tmpl_len - c->msg_off;
    if (k > n - pos) k = n - pos;
    verify(c, p + pos, k);
    pos += k;
    if (c->msg_off == tmpl_len) on_message_complete(c, now);
  }
}

static void on_head(conn *c, const uint8_t *p, size_t n, uint64_t now) {
  size_t take = n < MAX_HEAD - c->head_len ? n : MAX_HEAD - c->head_len;
  size_t from = c->head_len >= 3 ? c->head_len - 3 : 0;
  memcpy(c->head + c->head_len, p, take);
  c->head_len += take;
  char *end = memmem(c->head + from, c->head_len - from, "\r\n\r\n", 4);
  if (!end) {
    if (c->head_len >= MAX_HEAD) fail("connection %u: response head too large", c->id);
    return;
  }
  size_t head_bytes = (size_t)(end - c->head) + 4;
  size_t rest_from = head_bytes - (c->head_len - take); // where the frames start in p
  *end = 0;
  char why[256];
  const char *problem = check_handshake(c->head, c->key, why, sizeof why);
  if (problem) fail("connection %u: handshake: %s", c->id, problem);
  free(c->head);
  c->head = NULL;
  c->state = ST_OPEN;
  if (!cfg.eio) on_established(c); // engine.io: once the socket.io handshake is done (eio_end)
  if (rest_from < n) on_frames(c, p + rest_from, n - rest_from, now);
}

/** n bytes of the server's stream, from read() or SSL_read(). */
static inline void on_bytes(conn *c, const uint8_t *p, size_t n) {
  // One clock reading per read: every echo in it arrived at this moment,
  // and the messages sent in answer leave at this moment.
  uint64_t now = now_ns();
  if (c->state == ST_HANDSHAKE) on_head(c, p, n, now);
  else if (cfg.raw) on_raw(c, p, n, now);
  else on_frames(c, p, n, now);
}

static void on_readable(conn *c) {
  ssize_t n = read(c->fd, rbuf, sizeof rbuf);
  if (n > 0) {
    on_bytes(c, rbuf, (size_t)n);
    return;
  }
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (c->state == ST_CLOSING) {
    conn_done(c); // EOF or reset after our close: the close is complete
    return;
  }
  if (n == 0) fail("connection %u closed by the server during the run", c->id);
  fail("connection %u: %s", c->id, strerror(errno));
}

// ------------------------------------------------------------ TLS (only connections with c->ssl get here)
//
// OpenSSL reads the socket itself (a socket BIO) but writes through
// tls_bio_write below, which never refuses bytes: what the socket does not
// take at once waits, in order, in c->tls_out, and goes out on EPOLLOUT. So
// OpenSSL never holds a half-written record. That matters when a TLS read
// must write (the server renegotiates, or asks for a key update): with a
// record of ours stuck inside OpenSSL, OpenSSL 3.0 fails that read ("bad
// length"), or lets it return without answering and both ends wait for each
// other. It costs nothing while the socket keeps up (the record goes from
// OpenSSL's buffer to write()), and one copy of the rest of one record when
// it does not; no new record is made until that rest is out.

static BIO_METHOD *tls_writer;

/** Appends n bytes to the connection's queue of encrypted bytes the socket has not taken yet. */
static void tls_out_append(conn *c, const uint8_t *p, size_t n) {
  memcpy(queue_reserve(&c->tls_out, &c->tls_out_off, &c->tls_out_len, &c->tls_out_cap, n, 32 * 1024, "TLS output", c->id), p, n);
}

/** OpenSSL's output: to the socket if nothing is waiting before it, the rest (or all) queued. Fails only when the socket does. */
static int tls_bio_write(BIO *b, const char *data, size_t len, size_t *written) {
  conn *c = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  size_t done = 0;
  while (c->tls_out_off == c->tls_out_len && done < len) {
    ssize_t n = write(c->fd, data + done, len - done);
    if (n > 0) done += (size_t)n;
    else if (n < 0 && errno == EINTR) continue;
    else if (n < 0 && errno == EAGAIN) break;
    else return 0; // errno says why; SSL_get_error() reports SSL_ERROR_SYSCALL
  }
  if (done < len) tls_out_append(c, (const uint8_t *)data + done, len - done);
  *written = len;
  return 1;
}

static long tls_bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  conn *c = BIO_get_data(b);
  if (cmd == BIO_CTRL_FLUSH) return 1; // nothing is buffered here that a write() now would send
  if (cmd == BIO_CTRL_WPENDING) return c ? (long)(c->tls_out_len - c->tls_out_off) : 0;
  return 0;
}

static int tls_bio_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

/** The context every TLS connection is made from: verification against tlsCa only, non-blocking write semantics. */
static void tls_setup(void) {
  tls_ctx = SSL_CTX_new(TLS_client_method());
  if (!tls_ctx) fail("TLS: SSL_CTX_new failed");
  // Node's default range, so the servers negotiate what they would with the Node generator.
  SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION);
  // The server certificate must chain to what we were told to trust, and
  // nothing else: the file given (Node's `ca`), or without one the default
  // roots (the system's here, Node's bundled ones there). A failure aborts
  // the handshake.
  SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_PEER, NULL);
  if (cfg.tlsCa[0]) {
    FILE *f = fopen(cfg.tlsCa, "r");
    if (!f) fail("TLS: cannot read tlsCa %s: %s", cfg.tlsCa, strerror(errno));
    fclose(f);
    if (SSL_CTX_load_verify_locations(tls_ctx, cfg.tlsCa, NULL) != 1) {
      char why[256];
      ERR_error_string_n(ERR_get_error(), why, sizeof why);
      fail("TLS: no certificate loaded from tlsCa %s: %s", cfg.tlsCa, why);
    }
  } else if (SSL_CTX_set_default_verify_paths(tls_ctx) != 1) {
    fail("TLS: cannot load the system's trusted certificates");
  }
  // The certificate must be issued for the servername, or for the address we
  // connect to: an IP is checked against its IP SANs, a name against its DNS
  // names (Node's checkServerIdentity with servername or host).
  const char *name = cfg.servername[0] ? cfg.servername : cfg.host;
  X509_VERIFY_PARAM *param = SSL_CTX_get0_param(tls_ctx);
  if (X509_VERIFY_PARAM_set1_ip_asc(param, name) != 1 && X509_VERIFY_PARAM_set1_host(param, name, 0) != 1) fail("TLS: cannot check certificates for %s", name);
  // PARTIAL_WRITE: SSL_write returns after each record, so the queue advances
  // as after write(). ACCEPT_MOVING_WRITE_BUFFER: a write that said WANT_READ
  // (in a renegotiation) is retried with the same pending bytes, which
  // out_reserve() may have moved (memmove, realloc) meanwhile. AUTO_RETRY:
  // SSL_read goes on past a non-data record (a session ticket) instead of
  // reporting WANT_READ while bytes wait in its buffer, where epoll cannot see
  // them; WANT_READ then always means the socket is empty.
  long mode = SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_AUTO_RETRY;
  if (cfg.workload == W_ECHO) {
    // Bulk: read up to 64 KiB of records per read() instead of a record header and body in two.
    SSL_CTX_set_read_ahead(tls_ctx, 1);
    SSL_CTX_set_default_read_buffer_len(tls_ctx, 64 * 1024);
  } else {
    // Many quiet connections: no buffers held while a connection has nothing in them.
    mode |= SSL_MODE_RELEASE_BUFFERS;
  }
  SSL_CTX_set_mode(tls_ctx, mode);
  // An EOF without close_notify ends the stream like one with it; the
  // verification of every echoed byte is what catches a truncated echo.
  SSL_CTX_set_options(tls_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  tls_writer = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "loadgen writer");
  if (!tls_writer || !BIO_meth_set_write_ex(tls_writer, tls_bio_write) || !BIO_meth_set_ctrl(tls_writer, tls_bio_ctrl) || !BIO_meth_set_create(tls_writer, tls_bio_create)) fail("TLS: cannot make the socket writer BIO");
}

static void tls_free(conn *c) {
  if (!c->ssl) return;
  SSL_free(c->ssl); // and its BIOs
  c->ssl = NULL;
  c->tls_out_off = c->tls_out_len = 0; // the buffer stays, for the next connection in this slot
  c->tls_hs_wants_write = c->tls_read_wants_write = c->tls_write_wants_write = c->tls_write_wants_read = c->tls_close_sent = false;
}

static inline bool tls_out_pending(const conn *c) { return c->tls_out_off < c->tls_out_len; }

/**
 * EPOLLOUT while encrypted bytes wait for the socket, or while a TLS call
 * waits for writability; EPOLLIN always (S1: reads never wait for writes).
 */
static void tls_arm(conn *c) { set_want_out(c, tls_out_pending(c) || c->tls_hs_wants_write || c->tls_read_wants_write || c->tls_write_wants_write); }

/**
 * What went wrong with a TLS call that returned `err`, read at once (errno
 * too); empties OpenSSL's error queue, which must be empty before the next
 * TLS call for SSL_get_error to mean anything. *eof: the server ended the
 * stream (close_notify, or an EOF, which SSL_OP_IGNORE_UNEXPECTED_EOF reports
 * the same way).
 */
static const char *tls_error(int err, char *buf, size_t cap, bool *eof) {
  int saved = errno;
  unsigned long e = ERR_get_error();
  *eof = false;
  if (e) {
    const char *reason = ERR_reason_error_string(e);
    if (reason) snprintf(buf, cap, "%s", reason);
    else ERR_error_string_n(e, buf, cap);
  } else if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && saved == 0)) {
    *eof = true;
    snprintf(buf, cap, "connection closed");
  } else if (err == SSL_ERROR_SYSCALL) {
    snprintf(buf, cap, "%s", strerror(saved));
  } else {
    snprintf(buf, cap, "SSL_get_error %d", err);
  }
  ERR_clear_error();
  return buf;
}

/** A TLS read or write cannot go on (EOF, close_notify, an alert, a bad record): handled as a failed read() or write() is. */
static void tls_lost(conn *c, int err, const char *op) {
  char why[256];
  bool eof;
  tls_error(err, why, sizeof why, &eof);
  if (c->state == ST_CLOSING) { // after our close, the server hanging up (however) completes it
    conn_done(c);
    return;
  }
  if (eof) fail("connection %u closed by the server during the run", c->id);
  fail("connection %u: TLS %s: %s", c->id, op, why);
}

/** Writes queued encrypted bytes to the socket; true when none are left. */
static bool tls_send_queued(conn *c) {
  while (tls_out_pending(c)) {
    ssize_t n = write(c->fd, c->tls_out + c->tls_out_off, c->tls_out_len - c->tls_out_off);
    if (n > 0) {
      c->tls_out_off += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return false;
    if (c->state == ST_CLOSING) { // the server hung up first: that ends the close
      conn_done(c);
      return false;
    }
    fail("connection %u: write: %s", c->id, n < 0 ? strerror(errno) : "wrote nothing");
  }
  c->tls_out_off = c->tls_out_len = 0;
  return true;
}

static void tls_handshake(conn *c);

/** TCP is up: start the TLS handshake on it. */
static void tls_start(conn *c) {
  c->ssl = SSL_new(tls_ctx);
  BIO *rbio = BIO_new_socket(c->fd, BIO_NOCLOSE);
  BIO *wbio = BIO_new(tls_writer);
  if (!c->ssl || !rbio || !wbio) fail("connection %u: TLS: cannot set up the connection", c->id);
  BIO_set_data(wbio, c);
  SSL_set_bio(c->ssl, rbio, wbio); // the SSL owns both now
  // SNI carries a host name only, never an address (RFC 6066 section 3), as in Node.
  struct in_addr a4;
  if (cfg.servername[0] && inet_pton(AF_INET, cfg.servername, &a4) != 1) SSL_set_tlsext_host_name(c->ssl, cfg.servername);
  SSL_set_connect_state(c->ssl);
  c->state = ST_TLS;
  tls_handshake(c);
}

static void tls_read(conn *c);

/** One step of the TLS handshake (SSL_connect), on every event of the socket until it completes. */
static void tls_handshake(conn *c) {
  errno = 0;
  int r = SSL_connect(c->ssl);
  if (r == 1) {
    c->tls_hs_wants_write = false;
    if (!tls_protocol[0]) {
      snprintf(tls_protocol, sizeof tls_protocol, "%s", SSL_get_version(c->ssl));
      snprintf(tls_cipher, sizeof tls_cipher, "%s", SSL_CIPHER_get_name(SSL_get_current_cipher(c->ssl)));
    }
    tls_arm(c);
    on_transport_ready(c);
    // Records that came with the last handshake flight (a session ticket) may
    // sit decrypted or buffered inside OpenSSL, where epoll will never report
    // them: read until the socket itself is empty.
    if (c->ssl && c->state != ST_DONE) tls_read(c);
    return;
  }
  int err = SSL_get_error(c->ssl, r);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    c->tls_hs_wants_write = err == SSL_ERROR_WANT_WRITE;
    tls_arm(c);
    return;
  }
  long v = SSL_get_verify_result(c->ssl);
  if (v != X509_V_OK) {
    ERR_clear_error();
    fail("connection %u: TLS certificate verification failed: %s (the certificate must be for %s and issued by %s)", c->id, X509_verify_cert_error_string(v), cfg.servername[0] ? cfg.servername : cfg.host,
         cfg.tlsCa[0] ? cfg.tlsCa : "a CA in the system's store");
  }
  char why[256];
  bool eof;
  fail("connection %u: TLS handshake with %s:%d failed: %s", c->id, cfg.host, c->port, tls_error(err, why, sizeof why, &eof));
}

/** Did the connection that was c end (or become a new one, in the handshake workload) meanwhile? */
static inline bool same_conn(const conn *c, int fd, uint32_t id) { return c->fd == fd && c->id == id && c->ssl != NULL; }

/**
 * Reads and handles everything the socket and OpenSSL hold, until SSL_read
 * says WANT_READ (the socket is empty) or WANT_WRITE. Stopping any earlier
 * could leave decrypted or read-ahead bytes inside OpenSSL, and epoll never
 * reports those: the connection would wait forever for an event.
 */
static void tls_read(conn *c) {
  int fd = c->fd;
  uint32_t id = c->id;
  for (;;) {
    size_t n = 0;
    errno = 0; // so that SSL_ERROR_SYSCALL's errno is this call's (tls_error)
    int r = SSL_read_ex(c->ssl, rbuf, sizeof rbuf, &n);
    if (r == 1) {
      c->tls_read_wants_write = false;
      on_bytes(c, rbuf, n);
      if (!same_conn(c, fd, id)) return;
      continue;
    }
    int err = SSL_get_error(c->ssl, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      // WANT_WRITE would not be a write of ours being blocked: the read itself
      // must send something first. (Our writer BIO takes every byte, so
      // OpenSSL 3.0 does not say it; if it did, the read is retried when the
      // socket is writable, and still whenever it is readable.)
      bool w = err == SSL_ERROR_WANT_WRITE;
      if (w != c->tls_read_wants_write) {
        c->tls_read_wants_write = w;
        tls_arm(c);
      }
      // What the read wrote (a renegotiation's messages) may wait in tls_out.
      if (tls_out_pending(c)) tls_arm(c);
      return;
    }
    tls_lost(c, err, "read");
    return;
  }
}

/**
 * Encrypts and writes as much of the queue as the socket takes, one record
 * at a time, and no new record while encrypted bytes still wait. SSL_write
 * may say WANT_READ (in a renegotiation it must read the server's messages
 * first): the write is retried when the socket is readable (EPOLLIN is always
 * armed), with the same bytes from the same first byte, as SSL_write requires.
 */
static void tls_flush(conn *c) {
  if (!tls_send_queued(c)) {
    if (c->ssl) tls_arm(c); // (conn_done may have ended it)
    return;
  }
  if (c->state == ST_TLS) { // the handshake owns the socket; nothing is queued before it ends
    tls_arm(c);
    return;
  }
  if (SSL_in_init(c->ssl) && c->out_off < c->out_len) {
    // The server is renegotiating (TLS 1.2). Reads drive that handshake: an
    // SSL_write would drive it too, and OpenSSL fails a write that meets the
    // server's application data there ("unexpected record"), which the server
    // may well be sending. So the write waits until a read completes the
    // handshake; reading goes on meanwhile.
    c->tls_write_wants_read = true;
    tls_arm(c);
    return;
  }
  while (c->out_off < c->out_len && !tls_out_pending(c)) {
    size_t n = 0;
    errno = 0;
    int r = SSL_write_ex(c->ssl, c->out + c->out_off, c->out_len - c->out_off, &n);
    if (r == 1) {
      c->out_off += n;
      c->tls_write_wants_read = c->tls_write_wants_write = false;
      continue;
    }
    int err = SSL_get_error(c->ssl, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      c->tls_write_wants_read = err == SSL_ERROR_WANT_READ;
      c->tls_write_wants_write = err == SSL_ERROR_WANT_WRITE;
      tls_arm(c);
      return;
    }
    tls_lost(c, err, "write");
    return;
  }
  if (c->out_off == c->out_len) {
    c->out_off = c->out_len = 0;
    if (c->shut_after_flush) {
      // raw close: close_notify (the TLS end of our stream), then our FIN once it is out.
      if (!c->tls_close_sent) {
        errno = 0;
        int r = SSL_shutdown(c->ssl);
        if (r < 0) {
          int err = SSL_get_error(c->ssl, r);
          if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
            c->tls_write_wants_read = err == SSL_ERROR_WANT_READ;
            c->tls_write_wants_write = err == SSL_ERROR_WANT_WRITE;
            tls_arm(c);
            return; // shut_after_flush stays set: the next flush retries
          }
          tls_lost(c, err, "close");
          return;
        }
        c->tls_close_sent = true;
      }
      if (!tls_out_pending(c)) {
        c->shut_after_flush = false;
        shutdown(c->fd, SHUT_WR);
      }
    }
  }
  tls_arm(c);
}

/**
 * An epoll event on a TLS connection. Either direction's readiness can be
 * what the other direction's operation waits for, so the event is not taken
 * for a read or a write event as such: a readable socket runs the reads and
 * any write waiting for readability, a writable one the writes (queued
 * encrypted bytes first) and any read waiting for writability.
 */
static void tls_on_event(conn *c, uint32_t events) {
  int fd = c->fd;
  uint32_t id = c->id;
  bool in = events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR), out = events & EPOLLOUT;
  if (c->state == ST_TLS) {
    if (out && !tls_send_queued(c)) return;
    if (same_conn(c, fd, id)) tls_handshake(c);
    return;
  }
  if (in || (out && c->tls_read_wants_write)) tls_read(c);
  if (!same_conn(c, fd, id)) return;
  if (out || (in && c->tls_write_wants_read)) tls_flush(c);
}

static void on_event(struct epoll_event *ev) {
  if (ev->data.ptr == &stdin_marker) {
    char buf[256];
    ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
    if (n > 0 && memchr(buf, '\n', (size_t)n)) stdin_go = true;
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      stdin_closed = true;
      epoll_ctl(epfd, EPOLL_CTL_DEL, STDIN_FILENO, NULL);
    }
    return;
  }
  conn *c = ev->data.ptr;
  if (c->state == ST_CONNECTING) {
    if (ev->events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connected(c);
    return;
  }
  if (c->ssl) {
    tls_on_event(c, ev->events);
    return;
  }
  // The read may end this connection, and in the handshake workload the slot
  // then dials again: the rest of this event belongs to the old socket.
  int fd = c->fd;
  if (fd >= 0 && (ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) on_readable(c);
  if (fd >= 0 && c->fd == fd && (ev->events & EPOLLOUT)) flush(c);
}

typedef bool (*condition)(void);
typedef void (*sweeper)(uint64_t now);

/** Runs the event loop until cond() holds or the clock reaches deadline; returns cond(). */
static bool run_loop(condition cond, uint64_t deadline, sweeper sweep) {
  struct epoll_event ev[MAX_EVENTS];
  flush_dirty();
  while (!cond || !cond()) {
    uint64_t now = now_ns();
    if (now >= deadline) return false;
    uint64_t wait_ms = (deadline - now) / 1000000 + 1;
    if (sweep && wait_ms > 200) wait_ms = 200;
    int n = epoll_wait(epfd, ev, MAX_EVENTS, (int)wait_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("epoll_wait: %s", strerror(errno));
    }
    for (int i = 0; i < n; i++) {
      on_event(&ev[i]);
      flush_dirty();
    }
    if (sweep) sweep(now_ns());
  }
  return true;
}

// ------------------------------------------------------------ workloads

/** Opens connections until `batch` attempts are in progress (a burst of 10,000 SYNs would overflow the listen backlog). */
static void open_more(void) {
  while (st.in_progress < cfg.batch && st.next_to_open < nconns) {
    conn *c = &conns[st.next_to_open++];
    st.in_progress++;
    conn_open(c);
  }
}

static void on_established(conn *c) {
  if (cfg.workload == W_HANDSHAKE) {
    c->send_seq = 1;
    send_message(c, c->id, 0);
    return;
  }
  if (cfg.workload == W_IDLE) {
    // One verified echo first: the connection is known to work, and the
    // server has allocated what a connection that has talked once holds.
    c->send_seq = 1;
    send_message(c, c->id, 0);
    return;
  }
  c->established = true;
  st.established++;
  st.in_progress--;
  open_more();
}

static void fanout_send(void) {
  uint32_t seq = st.fan_sent;
  st.fan_sent_at[seq & ring_mask] = now_ns();
  st.fan_remaining[seq & ring_mask] = nconns;
  st.fan_sent++;
  send_message(&conns[FANOUT_SENDER], conns[FANOUT_SENDER].id, seq);
}

static void on_message_complete(conn *c, uint64_t now) {
  uint32_t seq = c->recv_seq++;
  c->msg_off = 0;
  switch (cfg.workload) {
  case W_ECHO:
    if (st.measuring) {
      st.completed++;
      c->window_completed++;
      hist_record_ns(&st.lat, now - c->sent_at[seq & ring_mask]);
    }
    if (st.running) {
      c->sent_at[c->send_seq & ring_mask] = now;
      send_message(c, c->id, c->send_seq++);
    }
    break;
  case W_HANDSHAKE:
    if (st.measuring) {
      st.completed++;
      hist_record_ns(&st.lat, now - c->t0);
    }
    begin_close(c);
    break;
  case W_IDLE:
    c->established = true;
    st.established++;
    st.in_progress--;
    open_more();
    break;
  case W_FANOUT:
    if (--st.fan_remaining[seq & ring_mask] == 0) {
      // Every client has it. Broadcasts complete in order, since each client receives them in order.
      if (seq != st.fan_done) fail("broadcast %u completed before broadcast %u", seq, st.fan_done);
      st.fan_done++;
      if (st.measuring) {
        st.completed++;
        hist_record_ns(&st.lat, now - st.fan_sent_at[seq & ring_mask]);
      }
      if (st.running) fanout_send();
    }
    break;
  }
}

static bool all_established(void) { return st.established == nconns; }
static bool all_done(void) { return st.done >= nconns; }
static bool never(void) { return false; }
static bool stdin_gone(void) { return stdin_closed; }
static bool stdin_go_or_gone(void) { return stdin_go || stdin_closed; }
static bool fanout_drained(void) { return st.fan_done == st.fan_sent; }

static void print_common(cpu_result r);

/* The fields every echo-like result has: counts, rates, latency quantiles, CPU. */
static void print_rates(uint64_t completed, cpu_result r) {
  jnum("messages", (double)completed, false);
  jnum("msgPerSec", completed / r.seconds, false);
  jnum("mbPerSec", (double)completed * (double)cfg.size / r.seconds / 1e6, false);
  jnum("p50Ms", hist_quantile_us(&st.lat, 0.5) / 1000, false);
  jnum("p99Ms", hist_quantile_us(&st.lat, 0.99) / 1000, false);
  print_common(r);
}

/*
 * The warm-up and the measured window every workload shares: load runs from
 * t0 for warmupMs unmeasured, then for durationMs with the counters reset.
 * `reset` (may be NULL) clears a workload's own per-window counters.
 */
static cpu_result measured_window(uint64_t t0, sweeper sweep, void (*reset)(void)) {
  run_loop(never, t0 + (uint64_t)(cfg.warmupMs * 1e6), sweep);
  cpu_window w = window_open();
  st.completed = 0;
  hist_reset(&st.lat);
  if (reset) reset();
  st.measuring = true;
  run_loop(never, t0 + (uint64_t)((cfg.warmupMs + cfg.durationMs) * 1e6), sweep);
  st.measuring = false;
  st.running = false;
  return window_close(w);
}

static void reset_window_counts(void) {
  for (int i = 0; i < nconns; i++) conns[i].window_completed = 0;
}

static void setup_conns(int n) {
  nconns = n;
  conns = calloc((size_t)n, sizeof *conns);
  dirty = calloc((size_t)n + 1, sizeof *dirty);
  if (!conns || !dirty) fail("out of memory for %d connections", n);
  uint32_t ring = 2;
  while (ring < (uint32_t)cfg.depth) ring <<= 1;
  ring_mask = ring - 1;
  for (int i = 0; i < n; i++) {
    conns[i].head = NULL;
    conn_reset(&conns[i]);
    conns[i].id = (uint32_t)i + 1;
    conns[i].port = cfg.ports[i % cfg.nports];
    if (cfg.workload == W_ECHO) conns[i].sent_at = xmalloc(ring * sizeof(uint64_t));
  }
}

static void establish_all(void) {
  phase("connecting");
  open_more();
  uint64_t deadline = now_ns() + (uint64_t)(cfg.connectTimeoutMs * 1e6);
  if (!run_loop(all_established, deadline, NULL)) fail("connections not ready after %.0f ms (%d of %d established)", cfg.connectTimeoutMs, st.established, nconns);
  phase("all established");
}

/** Closes every open connection politely and waits (bounded) for the server to hang up. */
static void close_all(void) {
  phase("closing");
  for (int i = 0; i < nconns; i++) {
    conn *c = &conns[i];
    if (c->state == ST_OPEN) begin_close(c);
    else if (c->state != ST_CLOSING && c->state != ST_DONE) {
      tls_free(c);
      if (c->fd >= 0) close(c->fd);
      c->fd = -1;
      c->state = ST_DONE;
      st.done++;
    }
  }
  uint64_t deadline = now_ns() + (uint64_t)(cfg.closeTimeoutMs * 1e6);
  if (!run_loop(all_done, deadline, NULL)) {
    // As the Node generator does, a slow close is not a failed run: the numbers were taken before it.
    fprintf(stderr, "loadgen: %d of %d connections did not close within %.0f ms; dropped them\n", nconns - st.done, nconns, cfg.closeTimeoutMs);
    for (int i = 0; i < nconns; i++)
      if (conns[i].fd >= 0) close(conns[i].fd);
  }
  phase("closed");
}

static void print_common(cpu_result r) {
  if (cfg.redisPid > 0) jnum("redisCpu", r.redis, false);
  jnum("generatorCpu", r.generator, false);
  jnum("serverCpu", r.server, false);
  jnum("otherCpu", r.other, false);
}

/**
 * The last fields of every result: idleConnections, and over TLS what was
 * negotiated (tlsProtocol and tlsCipher, as the Node generator reports them)
 * and with which library (tlsLibrary, for the report).
 */
static void print_end(int idle) {
  printf("\"idleConnections\":%d", idle);
  if (tls_ctx) {
    printf(",\"tlsProtocol\":");
    json_string(stdout, tls_protocol);
    printf(",\"tlsCipher\":");
    json_string(stdout, tls_cipher);
    printf(",\"tlsLibrary\":");
    json_string(stdout, OpenSSL_version(OPENSSL_VERSION));
  }
  printf("}\n");
}

static void run_echo(void) {
  setup_conns(cfg.connections);
  establish_all();
  st.running = true;
  uint64_t t0 = now_ns();
  for (int i = 0; i < nconns; i++) {
    conn *c = &conns[i];
    for (int k = 0; k < cfg.depth; k++) {
      c->sent_at[c->send_seq & ring_mask] = t0;
      send_message(c, c->id, c->send_seq++); // all `depth` frames in one write
    }
  }
  cpu_result r = measured_window(t0, NULL, reset_window_counts);
  uint64_t completed = st.completed;
  int idle = 0;
  for (int i = 0; i < nconns; i++) idle += conns[i].window_completed == 0;
  close_all();
  printf("{\"generator\":\"c\",");
  jnum("seconds", r.seconds, false);
  print_rates(completed, r);
  print_end(idle);
}

static void handshake_sweep(uint64_t now) {
  for (int i = 0; i < nconns; i++) {
    conn *c = &conns[i];
    if (c->state != ST_DONE && c->state != ST_FREE && now - c->t0 > (uint64_t)(cfg.stallTimeoutMs * 1e6)) {
      static const char *names[] = {"free", "connecting", "TLS handshake", "handshake", "open", "closing", "done"};
      fail("connection %u: handshake cycle stuck in state %s for %.0f ms", c->id, names[c->state], cfg.stallTimeoutMs);
    }
  }
}

static bool cycles_drained(void) {
  for (int i = 0; i < nconns; i++)
    if (conns[i].state != ST_DONE) return false;
  return true;
}

static void run_handshake(void) {
  setup_conns(cfg.connections);
  st.next_id = (uint32_t)nconns;
  st.running = true;
  for (int i = 0; i < nconns; i++) conn_open(&conns[i]);
  uint64_t t0 = now_ns();
  cpu_result r = measured_window(t0, handshake_sweep, NULL);
  uint64_t completed = st.completed;
  // Let the cycles in progress finish, so a server that fails at closing is caught too.
  if (!run_loop(cycles_drained, now_ns() + (uint64_t)(cfg.stallTimeoutMs * 1e6), handshake_sweep)) fail("handshake cycles did not finish within %.0f ms of the end", cfg.stallTimeoutMs);
  printf("{\"generator\":\"c\",");
  jnum("seconds", r.seconds, false);
  jnum("handshakes", (double)completed, false);
  jnum("handshakesPerSec", completed / r.seconds, false);
  print_rates(completed, r);
  print_end(0);
}

static void run_idle(void) {
  setup_conns(cfg.connections);
  cpu_window w = window_open();
  establish_all();
  cpu_result r = window_close(w);
  printf("ESTABLISHED %d\n", nconns);
  fflush(stdout);
  // Hold until the harness closes our stdin (it has read the server's memory) or holdMs passes.
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &stdin_marker};
  bool watch = epoll_ctl(epfd, EPOLL_CTL_ADD, STDIN_FILENO, &ev) == 0; // /dev/null and files cannot be watched
  uint64_t h0 = now_ns();
  run_loop(watch ? stdin_gone : never, h0 + (uint64_t)(cfg.holdMs * 1e6), NULL);
  double held = (double)(now_ns() - h0) / 1e6;
  // The server must still hold every connection: one that went away failed the run above.
  close_all();
  printf("{\"generator\":\"c\",");
  jnum("connections", nconns, false);
  jnum("establishMs", r.seconds * 1000, false);
  jnum("establishedPerSec", nconns / r.seconds, false);
  jnum("heldMs", held, false);
  jnum("pings", (double)st.pings, false);
  print_common(r);
  print_end(0);
}

static void fanout_sweep(uint64_t now) {
  if (st.fan_done < st.fan_sent && now - st.fan_sent_at[st.fan_done & ring_mask] > (uint64_t)(cfg.stallTimeoutMs * 1e6)) {
    fail("broadcast %u reached %d of %d clients within %.0f ms", st.fan_done, nconns - st.fan_remaining[st.fan_done & ring_mask], nconns, cfg.stallTimeoutMs);
  }
}

static void run_fanout(void) {
  setup_conns(cfg.connections);
  uint32_t ring = ring_mask + 1;
  st.fan_sent_at = xmalloc(ring * sizeof(uint64_t));
  st.fan_remaining = xmalloc(ring * sizeof(int));
  // Every client must be in the server's set before the first broadcast: it
  // is once its 101 response has arrived (both servers add it before writing that).
  establish_all();
  if (cfg.goOnStdin) {
    // The harness checks what only the servers know (every client in its topic or room on every
    // process, each process subscribed at Redis), then says go.
    printf("ESTABLISHED %d\n", nconns);
    fflush(stdout);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &stdin_marker};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, STDIN_FILENO, &ev) < 0) fail("goOnStdin: cannot watch stdin: %s", strerror(errno));
    if (!run_loop(stdin_go_or_gone, now_ns() + (uint64_t)(cfg.connectTimeoutMs * 1e6), NULL)) fail("goOnStdin: no go line within %.0f ms", cfg.connectTimeoutMs);
    if (!stdin_go) fail("goOnStdin: stdin closed before the go line");
    epoll_ctl(epfd, EPOLL_CTL_DEL, STDIN_FILENO, NULL);
  }
  st.running = true;
  uint64_t t0 = now_ns();
  for (int k = 0; k < cfg.depth; k++) fanout_send();
  cpu_result r = measured_window(t0, fanout_sweep, NULL);
  uint64_t completed = st.completed;
  phase("measured; draining");
  if (!run_loop(fanout_drained, now_ns() + (uint64_t)(cfg.stallTimeoutMs * 1e6), fanout_sweep)) fanout_sweep(UINT64_MAX / 2);
  close_all();
  double deliveries = (double)completed * nconns;
  printf("{\"generator\":\"c\",");
  jnum("seconds", r.seconds, false);
  jnum("clients", nconns, false);
  jnum("broadcasts", (double)completed, false);
  jnum("broadcastsPerSec", completed / r.seconds, false);
  jnum("deliveries", deliveries, false);
  jnum("deliveriesPerSec", deliveries / r.seconds, false);
  jnum("messages", (double)completed, false);
  jnum("msgPerSec", completed / r.seconds, false);
  jnum("mbPerSec", deliveries * (double)cfg.size / r.seconds / 1e6, false);
  jnum("p50Ms", hist_quantile_us(&st.lat, 0.5) / 1000, false);
  jnum("p99Ms", hist_quantile_us(&st.lat, 0.99) / 1000, false);
  print_common(r);
  print_end(0);
}

// ------------------------------------------------------------ main

/** Binary: random bytes. Text: valid UTF-8 with 2-, 3- and 4-byte sequences, so the servers' validation does real work. */
static void make_template(void) {
  tmpl_len = (size_t)cfg.size;
  tmpl = xmalloc(tmpl_len);
  if (!cfg.binary && cfg.ascii) {
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for (size_t i = 0; i < tmpl_len; i++) tmpl[i] = (uint8_t)alnum[rng_next() % (sizeof alnum - 1)];
  } else if (cfg.binary) {
    for (size_t i = 0; i < tmpl_len; i += 8) {
      uint64_t r = rng_next();
      memcpy(tmpl + i, &r, tmpl_len - i < 8 ? tmpl_len - i : 8);
    }
  } else {
    static const char sample[] = "{\"from\":\"Zo\xc3\xab\",\"text\":\"na\xc3\xafve caf\xc3\xa9 \xe2\x80\x94 "
                                 "\xe6\x9d\xb1\xe4\xba\xac\xe3\x81\xa7\xe4\xbc\x9a\xe3\x81\x84\xe3\x81\xbe\xe3\x81\x97\xe3\x82\x87\xe3\x81\x86 "
                                 "\xf0\x9f\x90\x9f\xf0\x9f\xa6\x80\",\"n\":12345}, ";
    size_t slen = sizeof sample - 1, off = STAMP;
    while (off + slen <= tmpl_len) {
      memcpy(tmpl + off, sample, slen);
      off += slen;
    }
    memset(tmpl + off, 0x20, tmpl_len - off); // pad with spaces: whole code points only
  }
  memset(tmpl, '0', STAMP); // ASCII placeholder where the stamp goes
  opcode = cfg.binary ? OP_BINARY : OP_TEXT;
}

/** Raises the open-file limit to the hard limit; fails if the run needs more descriptors than that. */
static void raise_nofile(int need) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)need > rl.rlim_cur) {
    fail("%d connections need %d file descriptors, but the limit is %llu (ulimit -Hn)", need - 16, need, (unsigned long long)rl.rlim_cur);
  }
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN); // a server that hangs up shows as EPIPE on write, handled there
  if (argc != 2) fail("usage: loadgen '<json config>'");
  const char *problem = config_parse(argv[1], &cfg);
  if (problem) fail("%s", problem);
  fill_random(&rng_state, sizeof rng_state);
  rng_state |= 1; // xorshift must not start at zero
  make_template();
  raise_nofile(cfg.connections + 16);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) fail("epoll_create1: %s", strerror(errno));
  if (cfg.tls) tls_setup();
  switch (cfg.workload) {
  case W_ECHO: run_echo(); break;
  case W_HANDSHAKE: run_handshake(); break;
  case W_IDLE: run_idle(); break;
  case W_FANOUT: run_fanout(); break;
  }
  fflush(stdout);
  return 0;
}
