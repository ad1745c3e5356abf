// The latency histogram of bench/lib/histogram.mjs, in C: exact to 1 µs below
// 64 µs, then 64 buckets per power of two (about 1.6 % wide), so the C and
// Node generators report the same quantiles for the same samples.
#ifndef LOADGEN_HISTOGRAM_H
#define LOADGEN_HISTOGRAM_H

#include <stdint.h>

#define HIST_SUB 64
#define HIST_MAX_EXP 36
#define HIST_BUCKETS (HIST_SUB + (HIST_MAX_EXP - 6 + 1) * HIST_SUB)

typedef struct {
  uint64_t counts[HIST_BUCKETS];
  uint64_t total;
} histogram;

void hist_reset(histogram *h);
/** Records one value in nanoseconds (the buckets are in microseconds). */
void hist_record_ns(histogram *h, uint64_t ns);
/** The value in microseconds (bucket midpoint) at quantile q in [0, 1]; NaN when empty. */
double hist_quantile_us(const histogram *h, double q);

#endif
