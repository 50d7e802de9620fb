/* Log-linear latency histogram: values below LOAD_HIST_SUB microseconds have a bucket each;
 * above, each power of two is split into LOAD_HIST_SUB equal buckets (HdrHistogram's layout
 * with one significant binary digit group), so a bucket is at most 1/64 of its value wide. */
#include "load/load.h"

#include <string.h>

void load_hist_init(load_hist_t *h)
{
    memset(h, 0, sizeof *h);
}

/* Bucket of v: exact below SUB, else (exponent group, top 6 bits after the leading one). */
static size_t bucket_of(uint64_t v)
{
    if (v < LOAD_HIST_SUB)
        return (size_t)v;
    int msb = 63 - __builtin_clzll(v); /* >= 6 */
    size_t group = (size_t)(msb - 5), sub = (size_t)((v >> (msb - 6)) & (LOAD_HIST_SUB - 1));
    size_t b = group * LOAD_HIST_SUB + sub;
    return b < LOAD_HIST_BUCKETS ? b : LOAD_HIST_BUCKETS - 1;
}

/* Largest value that falls in bucket b. */
static uint64_t bucket_top(size_t b)
{
    if (b < LOAD_HIST_SUB)
        return b;
    size_t group = b / LOAD_HIST_SUB, sub = b % LOAD_HIST_SUB;
    /* The bucket holds (SUB + sub) << (group - 1) up to the next bucket's start, exclusive. */
    return ((uint64_t)(LOAD_HIST_SUB + sub + 1) << (group - 1)) - 1;
}

void load_hist_add(load_hist_t *h, uint64_t us)
{
    h->counts[bucket_of(us)]++;
    h->n++;
    h->sum_us += (double)us;
    if (us > h->max_us)
        h->max_us = us;
}

void load_hist_merge(load_hist_t *dst, const load_hist_t *src)
{
    for (size_t i = 0; i < LOAD_HIST_BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    dst->n += src->n;
    dst->sum_us += src->sum_us;
    if (src->max_us > dst->max_us)
        dst->max_us = src->max_us;
}

uint64_t load_hist_quantile(const load_hist_t *h, double q)
{
    if (!h->n)
        return 0;
    if (q < 0)
        q = 0;
    if (q > 1)
        q = 1;
    /* The rank of the value asked for, 1-based: ceil(q * n), at least 1. */
    uint64_t rank = (uint64_t)(q * (double)h->n);
    if ((double)rank < q * (double)h->n)
        rank++;
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (size_t b = 0; b < LOAD_HIST_BUCKETS; b++) {
        seen += h->counts[b];
        if (seen >= rank) {
            uint64_t top = bucket_top(b);
            return top < h->max_us ? top : h->max_us;
        }
    }
    return h->max_us;
}
