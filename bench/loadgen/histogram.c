#include "histogram.h"

#include <math.h>
#include <string.h>

void hist_reset(histogram *h) { memset(h, 0, sizeof *h); }

void hist_record_ns(histogram *h, uint64_t ns) {
  uint64_t v = (ns + 500) / 1000; // rounded to whole microseconds, as the JS version does
  unsigned index;
  if (v < HIST_SUB) {
    index = (unsigned)v;
  } else {
    int e = 63 - __builtin_clzll(v);
    if (e > HIST_MAX_EXP) {
      e = HIST_MAX_EXP;
      v = (1ULL << (HIST_MAX_EXP + 1)) - 1;
    }
    // v in [2^e, 2^(e+1)): the 6 bits below the leading one pick the sub-bucket.
    index = HIST_SUB + (unsigned)(e - 6) * HIST_SUB + (unsigned)((v >> (e - 6)) - HIST_SUB);
  }
  h->counts[index]++;
  h->total++;
}

static double bucket_mid(unsigned index) {
  if (index < HIST_SUB) return index;
  unsigned e = (index - HIST_SUB) / HIST_SUB + 6;
  unsigned sub = (index - HIST_SUB) % HIST_SUB;
  double width = ldexp(1, (int)e - 6);
  return (HIST_SUB + sub) * width + width / 2;
}

double hist_quantile_us(const histogram *h, double q) {
  if (h->total == 0) return NAN;
  uint64_t rank = (uint64_t)ceil(q * (double)h->total);
  if (rank < 1) rank = 1;
  uint64_t seen = 0;
  for (unsigned i = 0; i < HIST_BUCKETS; i++) {
    seen += h->counts[i];
    if (seen >= rank) return bucket_mid(i);
  }
  return bucket_mid(HIST_BUCKETS - 1);
}
