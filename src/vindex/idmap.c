#include "vindex/idmap.h"
#include "vindex/vindex.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Tables from this size up are mapped on their own, with huge pages advised. */
#define HUGE_TABLE_BYTES ((size_t)8 << 20)

static void table_free(vindex_idmap_table_t *t)
{
    if (t->mapped)
        munmap(t->b, (t->mask + 1) * sizeof(*t->b));
    else
        free(t->b);
    free(t);
}

static vindex_idmap_table_t *table_new(uint64_t buckets)
{
    vindex_idmap_table_t *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    size_t bytes = buckets * sizeof(*t->b);
    /* A big table is probed at random: on huge pages a probe rarely misses the TLB as well. */
    if (bytes >= HUGE_TABLE_BYTES) {
        void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED) {
            (void)madvise(p, bytes, MADV_HUGEPAGE);
            t->b = p;
            t->mapped = 1;
        }
    } else {
        t->b = malloc(bytes);
    }
    if (!t->b) {
        free(t);
        return NULL;
    }
    for (uint64_t i = 0; i < buckets; i++) {
        t->b[i].id = VINDEX_ID_NONE;
        t->b[i].slot = VINDEX_SLOT_NONE;
        t->b[i].pad = 0;
    }
    t->mask = buckets - 1;
    return t;
}

int vindex_idmap_init(vindex_idmap_t *m, uint64_t max_keys, char *err, size_t errlen)
{
    m->keys = 0;
    m->max_keys = max_keys;
    m->cur = table_new(1024);
    if (!m->cur) {
        snprintf(err, errlen, "out of memory for the id map");
        return VINDEX_ENOMEM;
    }
    return 0;
}

void vindex_idmap_release(vindex_idmap_t *m)
{
    vindex_idmap_table_t *t = m->cur;
    while (t) {
        vindex_idmap_table_t *next = t->retired;
        table_free(t);
        t = next;
    }
    m->cur = NULL;
}

uint32_t vindex_idmap_get(const vindex_idmap_t *m, uint64_t id)
{
    const vindex_idmap_table_t *t = __atomic_load_n(&m->cur, __ATOMIC_ACQUIRE);
    for (uint64_t i = mix(id) & t->mask;; i = (i + 1) & t->mask) {
        uint64_t k = __atomic_load_n(&t->b[i].id, __ATOMIC_ACQUIRE);
        if (k == id)
            return __atomic_load_n(&t->b[i].slot, __ATOMIC_ACQUIRE);
        if (k == VINDEX_ID_NONE)
            return VINDEX_SLOT_NONE;
    }
}

void vindex_idmap_prefetch(const vindex_idmap_t *m, uint64_t id)
{
    const vindex_idmap_table_t *t = __atomic_load_n(&m->cur, __ATOMIC_ACQUIRE);
    __builtin_prefetch(&t->b[mix(id) & t->mask]);
}

/* Bucket index for id in t: its own bucket, or the empty one where it would go. */
static uint64_t find(const vindex_idmap_table_t *t, uint64_t id)
{
    uint64_t i = mix(id) & t->mask;
    while (t->b[i].id != id && t->b[i].id != VINDEX_ID_NONE)
        i = (i + 1) & t->mask;
    return i;
}

static int grow(vindex_idmap_t *m, uint64_t buckets, char *err, size_t errlen)
{
    vindex_idmap_table_t *old = m->cur;
    vindex_idmap_table_t *t = table_new(buckets);
    if (!t) {
        snprintf(err, errlen, "out of memory growing the id map");
        return VINDEX_ENOMEM;
    }
    for (uint64_t i = 0; i <= old->mask; i++) {
        if (old->b[i].id == VINDEX_ID_NONE)
            continue;
        t->b[find(t, old->b[i].id)] = old->b[i];
    }
    t->retired = old;
    __atomic_store_n(&m->cur, t, __ATOMIC_RELEASE);
    return 0;
}

int vindex_idmap_set(vindex_idmap_t *m, uint64_t id, uint32_t slot, char *err, size_t errlen)
{
    vindex_idmap_table_t *t = m->cur;
    uint64_t i = find(t, id);
    if (t->b[i].id == id) {
        __atomic_store_n(&t->b[i].slot, slot, __ATOMIC_RELEASE);
        return 0;
    }
    if (slot == VINDEX_SLOT_NONE)
        return 0;
    if (m->keys >= m->max_keys) {
        snprintf(err, errlen, "id map too large (%llu ids)", (unsigned long long)m->max_keys);
        return VINDEX_ETOOLARGE;
    }
    /* Load factor at most 1/2 keeps probe sequences short. */
    if ((m->keys + 1) * 2 > t->mask + 1) {
        int rc = grow(m, (t->mask + 1) * 2, err, errlen);
        if (rc)
            return rc;
        t = m->cur;
        i = find(t, id);
    }
    __atomic_store_n(&t->b[i].slot, slot, __ATOMIC_RELAXED);
    __atomic_store_n(&t->b[i].id, id, __ATOMIC_RELEASE);
    m->keys++;
    return 0;
}

int vindex_idmap_reserve(vindex_idmap_t *m, uint64_t keys, char *err, size_t errlen)
{
    if (keys > m->max_keys)
        keys = m->max_keys;
    uint64_t buckets = m->cur->mask + 1;
    while (keys * 2 > buckets)
        buckets *= 2;
    return buckets > m->cur->mask + 1 ? grow(m, buckets, err, errlen) : 0;
}

size_t vindex_idmap_mem(const vindex_idmap_t *m)
{
    size_t total = 0;
    for (const vindex_idmap_table_t *t = __atomic_load_n(&m->cur, __ATOMIC_ACQUIRE); t; t = t->retired)
        total += sizeof(*t) + (t->mask + 1) * sizeof(vindex_idmap_bucket_t);
    return total;
}
