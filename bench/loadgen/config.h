// The run's configuration: the same JSON object bench/generator.mjs takes on
// its command line, plus the fields of the workloads only this generator has.
#ifndef LOADGEN_CONFIG_H
#define LOADGEN_CONFIG_H

#include <stdbool.h>

#define MAX_CPUS 64
#define MAX_PORTS 16
#define MAX_PIDS 16

typedef enum { W_ECHO, W_HANDSHAKE, W_IDLE, W_FANOUT } workload_kind;

typedef struct {
  bool raw;            // mode: "raw" (no framing) or "ws"
  workload_kind workload;
  char host[64];       // default 127.0.0.1
  char path[256];      // request target, default "/"
  int port;            // ports[0]
  int ports[MAX_PORTS]; // "ports": connection i dials ports[i % nports] (several server processes); default [port]
  int nports;
  long size;           // payload bytes per message
  bool binary;         // default true
  int connections;     // echo/idle/fanout: connections; handshake: concurrent loops
  int depth;           // messages in flight per connection (fanout: broadcasts in flight)
  double warmupMs, durationMs;
  int serverPid;       // 0: unknown
  int serverPids[MAX_PIDS]; // "serverPids": more server processes, their CPU summed with serverPid's
  int nserverPids;
  int redisPid;        // "redisPid": a process the servers use (redis-server), its CPU reported as redisCpu; 0: none
  bool goOnStdin;      // fanout: print ESTABLISHED <n> once every client is open, then wait for a line on stdin before the first broadcast
  bool ascii;          // text payloads of letters and digits only (the same bytes in every library's frame, JSON-safe)
  bool eio;            // engine.io 4 / socket.io 5 protocol inside the WebSocket (socket.io servers): open packet, "40" connect, "2"/"3" ping/pong, events 42["fan","<payload>"]
  int clkTck;          // 0: sysconf
  int cpus[MAX_CPUS];
  int ncpus;           // -1: cpus was null or absent (use the "cpu" total line)
  int batch;           // connection attempts in progress at once
  double holdMs;       // idle: hold at most this long (stdin closing ends it sooner)
  double connectTimeoutMs;
  double closeTimeoutMs;
  double stallTimeoutMs; // handshake/fanout: one cycle or broadcast may take this long
  // TLS, with the keys bench/generator.mjs takes for it, so one config serves both generators.
  bool tls;            // connect with TLS (OpenSSL); the WebSocket or raw bytes go inside it
  char tlsCa[4096];    // PEM file of the certificates to trust, and only those; empty: the system's default store
  char servername[256]; // name or IP the server certificate must be issued for (and SNI when a name); empty: host
} config;

/** Parses `json` into cfg; returns NULL or a message naming the problem (static storage). */
const char *config_parse(const char *json, config *cfg);

#endif
