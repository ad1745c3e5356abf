// A small JSON reader for the one flat object the harness passes. Unknown
// keys are skipped (the Node generator ignores them too) so both generators
// can be handed the same config.
#include "config.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *p;
  char err[256];
} reader;

static void ws(reader *r) {
  while (isspace((unsigned char)*r->p)) r->p++;
}

static bool fail(reader *r, const char *what) {
  if (!r->err[0]) snprintf(r->err, sizeof r->err, "config: %s near %.20s", what, r->p);
  return false;
}

/** Reads a JSON string into out (truncation is an error). */
static bool str(reader *r, char *out, size_t cap) {
  if (*r->p != '"') return fail(r, "expected a string");
  r->p++;
  size_t n = 0;
  while (*r->p && *r->p != '"') {
    char c = *r->p++;
    if (c == '\\') {
      c = *r->p++;
      if (c == 'n') c = '\n';
      else if (c == 't') c = '\t';
      else if (c == 'r') c = '\r';
      else if (c != '"' && c != '\\' && c != '/') return fail(r, "unsupported string escape");
    }
    if (n + 1 >= cap) return fail(r, "string too long");
    out[n++] = c;
  }
  if (*r->p != '"') return fail(r, "unterminated string");
  r->p++;
  out[n] = 0;
  return true;
}

static bool num(reader *r, double *out) {
  char *end;
  double v = strtod(r->p, &end);
  if (end == r->p || !isfinite(v)) return fail(r, "expected a number");
  r->p = end;
  *out = v;
  return true;
}

static bool lit(reader *r, const char *word) {
  size_t n = strlen(word);
  if (strncmp(r->p, word, n) != 0) return false;
  r->p += n;
  return true;
}

static bool skip_value(reader *r, int depth) {
  ws(r);
  if (depth > 16) return fail(r, "nested too deeply");
  if (*r->p == '"') {
    char tmp[4096];
    return str(r, tmp, sizeof tmp);
  }
  if (*r->p == '{' || *r->p == '[') {
    char close = *r->p == '{' ? '}' : ']';
    r->p++;
    ws(r);
    if (*r->p == close) return r->p++, true;
    for (;;) {
      if (close == '}') {
        char key[256];
        ws(r);
        if (!str(r, key, sizeof key)) return false;
        ws(r);
        if (*r->p++ != ':') return fail(r, "expected ':'");
      }
      if (!skip_value(r, depth + 1)) return false;
      ws(r);
      if (*r->p == ',') { r->p++; continue; }
      if (*r->p == close) return r->p++, true;
      return fail(r, "expected ',' or a closing bracket");
    }
  }
  if (lit(r, "true") || lit(r, "false") || lit(r, "null")) return true;
  double d;
  return num(r, &d);
}

static bool boolean(reader *r, bool *out) {
  if (lit(r, "true")) return *out = true, true;
  if (lit(r, "false")) return *out = false, true;
  return fail(r, "expected true or false");
}

static bool integer(reader *r, int *out, double lo, double hi, const char *key) {
  double v;
  if (!num(r, &v)) return false;
  if (v != floor(v) || v < lo || v > hi) {
    snprintf(r->err, sizeof r->err, "config: %s must be an integer from %.0f to %.0f", key, lo, hi);
    return false;
  }
  *out = (int)v;
  return true;
}

/** Reads a JSON array of integers from lo to hi into out (at most cap); *count gets how many. */
static bool int_array(reader *r, int *out, int *count, int cap, double lo, double hi, const char *key) {
  if (*r->p != '[') return fail(r, "expected an array");
  r->p++;
  *count = 0;
  ws(r);
  if (*r->p == ']') return r->p++, true;
  for (;;) {
    ws(r);
    if (*count == cap) return fail(r, "array too long");
    if (!integer(r, &out[(*count)++], lo, hi, key)) return false;
    ws(r);
    if (*r->p == ',') { r->p++; continue; }
    if (*r->p == ']') { r->p++; return true; }
    return fail(r, "expected ',' or ']'");
  }
}

const char *config_parse(const char *json, config *cfg) {
  static char message[256];
  reader r = {.p = json, .err = {0}};
  memset(cfg, 0, sizeof *cfg);
  strcpy(cfg->host, "127.0.0.1");
  strcpy(cfg->path, "/");
  cfg->binary = true;
  cfg->depth = 1;
  cfg->ncpus = -1;
  cfg->batch = 128;
  cfg->holdMs = 60000;
  cfg->warmupMs = -1;
  cfg->durationMs = -1;
  cfg->size = -1;
  cfg->connectTimeoutMs = -1;
  cfg->closeTimeoutMs = 5000;
  cfg->stallTimeoutMs = 10000;
  bool seen_mode = false, seen_port = false, seen_conns = false, seen_depth = false;

  ws(&r);
  if (*r.p++ != '{') return "config: expected a JSON object";
  ws(&r);
  bool ok = true;
  if (*r.p == '}') r.p++;
  else for (;;) {
    char key[64];
    ws(&r);
    if (!(ok = str(&r, key, sizeof key))) break;
    ws(&r);
    if (*r.p++ != ':') { ok = fail(&r, "expected ':'"); break; }
    ws(&r);
    if (!strcmp(key, "mode")) {
      char v[16];
      if (!(ok = str(&r, v, sizeof v))) break;
      if (!strcmp(v, "raw")) cfg->raw = true;
      else if (strcmp(v, "ws") != 0) { ok = fail(&r, "mode must be \"ws\" or \"raw\""); break; }
      seen_mode = true;
    } else if (!strcmp(key, "workload")) {
      char v[16];
      if (!(ok = str(&r, v, sizeof v))) break;
      if (!strcmp(v, "echo")) cfg->workload = W_ECHO;
      else if (!strcmp(v, "handshake")) cfg->workload = W_HANDSHAKE;
      else if (!strcmp(v, "idle")) cfg->workload = W_IDLE;
      else if (!strcmp(v, "fanout")) cfg->workload = W_FANOUT;
      else { ok = fail(&r, "workload must be echo, handshake, idle or fanout"); break; }
    } else if (!strcmp(key, "host")) ok = str(&r, cfg->host, sizeof cfg->host);
    else if (!strcmp(key, "path")) ok = str(&r, cfg->path, sizeof cfg->path);
    else if (!strcmp(key, "port")) ok = seen_port = integer(&r, &cfg->port, 1, 65535, key);
    else if (!strcmp(key, "ports")) {
      if ((ok = int_array(&r, cfg->ports, &cfg->nports, MAX_PORTS, 1, 65535, key)) && cfg->nports == 0) ok = fail(&r, "ports is empty");
    } else if (!strcmp(key, "serverPids")) ok = int_array(&r, cfg->serverPids, &cfg->nserverPids, MAX_PIDS, 1, 1e9, key);
    else if (!strcmp(key, "redisPid") && lit(&r, "null")) cfg->redisPid = 0;
    else if (!strcmp(key, "redisPid")) ok = integer(&r, &cfg->redisPid, 0, 1e9, key);
    else if (!strcmp(key, "goOnStdin")) ok = boolean(&r, &cfg->goOnStdin);
    else if (!strcmp(key, "ascii")) ok = boolean(&r, &cfg->ascii);
    else if (!strcmp(key, "protocol")) {
      char v[16];
      if (!(ok = str(&r, v, sizeof v))) break;
      if (!strcmp(v, "engine.io")) cfg->eio = true;
      else if (strcmp(v, "websocket") != 0) { ok = fail(&r, "protocol must be \"websocket\" or \"engine.io\""); break; }
    }
    else if (!strcmp(key, "size")) {
      int v;
      if ((ok = integer(&r, &v, 0, 1 << 30, key))) cfg->size = v;
    } else if (!strcmp(key, "binary")) ok = boolean(&r, &cfg->binary);
    else if (!strcmp(key, "connections")) ok = seen_conns = integer(&r, &cfg->connections, 1, 1000000, key);
    else if (!strcmp(key, "depth")) ok = seen_depth = integer(&r, &cfg->depth, 1, 65536, key);
    else if (!strcmp(key, "warmupMs")) ok = num(&r, &cfg->warmupMs);
    else if (!strcmp(key, "durationMs")) ok = num(&r, &cfg->durationMs);
    else if (!strcmp(key, "holdMs")) ok = num(&r, &cfg->holdMs);
    else if (!strcmp(key, "connectTimeoutMs")) ok = num(&r, &cfg->connectTimeoutMs);
    else if (!strcmp(key, "closeTimeoutMs")) ok = num(&r, &cfg->closeTimeoutMs);
    else if (!strcmp(key, "stallTimeoutMs")) ok = num(&r, &cfg->stallTimeoutMs);
    else if (!strcmp(key, "tls")) ok = boolean(&r, &cfg->tls);
    else if (!strcmp(key, "tlsCa") && lit(&r, "null")) cfg->tlsCa[0] = 0;
    else if (!strcmp(key, "tlsCa")) ok = str(&r, cfg->tlsCa, sizeof cfg->tlsCa);
    else if (!strcmp(key, "servername") && lit(&r, "null")) cfg->servername[0] = 0;
    else if (!strcmp(key, "servername")) ok = str(&r, cfg->servername, sizeof cfg->servername);
    else if (!strcmp(key, "batch")) ok = integer(&r, &cfg->batch, 1, 100000, key);
    else if (!strcmp(key, "serverPid") && lit(&r, "null")) cfg->serverPid = 0;
    else if (!strcmp(key, "serverPid")) ok = integer(&r, &cfg->serverPid, 0, 1e9, key);
    else if (!strcmp(key, "clkTck")) ok = integer(&r, &cfg->clkTck, 0, 1e6, key);
    else if (!strcmp(key, "cpus")) {
      if (lit(&r, "null")) cfg->ncpus = -1;
      else if (*r.p != '[') ok = fail(&r, "cpus must be an array or null");
      else {
        r.p++;
        cfg->ncpus = 0;
        ws(&r);
        if (*r.p == ']') r.p++;
        else for (;;) {
          ws(&r);
          if (cfg->ncpus == MAX_CPUS) { ok = fail(&r, "too many cpus"); break; }
          if (!(ok = integer(&r, &cfg->cpus[cfg->ncpus++], 0, 4095, key))) break;
          ws(&r);
          if (*r.p == ',') { r.p++; continue; }
          if (*r.p == ']') { r.p++; break; }
          ok = fail(&r, "expected ',' or ']'");
          break;
        }
      }
    } else ok = skip_value(&r, 0);
    if (!ok) break;
    ws(&r);
    if (*r.p == ',') { r.p++; continue; }
    if (*r.p == '}') { r.p++; break; }
    ok = fail(&r, "expected ',' or '}'");
    break;
  }
  if (!ok) {
    snprintf(message, sizeof message, "%s", r.err);
    return message;
  }
  ws(&r);
  if (*r.p) return "config: trailing characters after the object";

  // The fields the Node generator requires are required here too.
  if (cfg->nports > 0) { // "ports" wins over "port"
    cfg->port = cfg->ports[0];
    seen_port = true;
  }
  if (cfg->nports == 0) {
    cfg->ports[0] = cfg->port;
    cfg->nports = 1;
  }
  const char *missing = !seen_mode ? "mode" : !seen_port ? "port" : cfg->size < 0 ? "size" : !seen_conns ? "connections" : NULL;
  if (!missing && cfg->workload != W_IDLE) {
    missing = cfg->warmupMs < 0 ? "warmupMs" : cfg->durationMs < 0 ? "durationMs" : NULL;
    if (!missing && cfg->workload == W_ECHO && !seen_depth) missing = "depth";
  }
  if (missing) {
    snprintf(message, sizeof message, "missing config field %s", missing);
    return message;
  }
  if (cfg->size < 32) return "payload size must be at least 32 bytes";
  if (cfg->eio) {
    // Engine.io events are text (JSON), so the payload is a JSON string of letters and digits: it needs no escaping.
    if (cfg->raw) return "protocol engine.io needs mode ws";
    if (cfg->workload != W_FANOUT) return "protocol engine.io is only for the fanout workload";
    cfg->binary = false;
    cfg->ascii = true;
    if (!strcmp(cfg->path, "/")) strcpy(cfg->path, "/socket.io/?EIO=4&transport=websocket");
  }
  if (cfg->connectTimeoutMs < 0) cfg->connectTimeoutMs = 15000 + cfg->connections; // 1 ms more per connection
  return NULL;
}
