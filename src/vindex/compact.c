/*
 * Compaction: giving the slots of deleted and replaced items back. A job runs in phases
 * (vindex_compact_t), always under the writer lock, so it never races an insert:
 *
 *   begin    every tombstone is flagged RECLAIM (from then on no insert links to it), and the
 *            kind prepares (hnsw moves its entry point to a slot that stays);
 *   repair   the kind drops every reference to RECLAIM slots, unit by unit (hnsw relinks the
 *            neighbours of each, ivf_flat rewrites each list without them);
 *   grace    the reader generation is bumped; the job waits until every search that began
 *            under the old one has ended, since such a search may still hold a reclaimed slot;
 *   reclaim  the kind forgets each RECLAIM slot, which goes on the free list.
 *
 * Each phase leaves a valid index behind, so a job can be cut into steps: each writing call
 * does the work of its items (vindex_compact_step) and vindex_compact runs the rest in chunks,
 * letting other writers in between. Readers take no lock: they only count themselves in or out
 * of the current generation (vindex_read_begin/end in index.h).
 */
#include "vindex/index.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Repair units vindex_compact does per hold of the writer lock, at most. */
#define COMPACT_CHUNK_MAX 1024u
/* Pause between checks while vindex_compact waits for older searches to end. */
#define GRACE_POLL_NS 50000

uint64_t vindex_tombstones(const vindex_t *ix)
{
    uint64_t slots = __atomic_load_n(&ix->n_slots, __ATOMIC_ACQUIRE);
    uint64_t used =
        __atomic_load_n(&ix->n_live, __ATOMIC_ACQUIRE) + __atomic_load_n(&ix->free_n, __ATOMIC_ACQUIRE);
    return slots > used ? slots - used : 0;
}

uint32_t vindex_slot_pop_free(vindex_t *ix)
{
    if (!ix->free_n)
        return VINDEX_SLOT_NONE;
    uint32_t slot = ix->free_slots[ix->free_n - 1];
    __atomic_store_n(&ix->free_n, ix->free_n - 1, __ATOMIC_RELEASE);
    __atomic_store_n(&ix->flags[slot], VINDEX_FLAG_DEAD, __ATOMIC_RELAXED);
    return slot;
}

void vindex_slot_publish(vindex_t *ix, uint32_t slot)
{
    __atomic_store_n(&ix->flags[slot], 0, __ATOMIC_RELEASE);
}

static vindex_compact_phase_t phase(const vindex_t *ix)
{
    return __atomic_load_n(&ix->job.phase, __ATOMIC_RELAXED);
}

static void set_phase(vindex_t *ix, vindex_compact_phase_t ph)
{
    __atomic_store_n(&ix->job.phase, ph, __ATOMIC_RELAXED);
}

/* Flags every tombstone RECLAIM and starts the repair. 0 when a job began or there is nothing
 * to reclaim, VINDEX_ENOMEM when the free list cannot take them. */
static int job_begin(vindex_t *ix)
{
    uint32_t end = ix->next_slot;
    uint64_t dead = vindex_tombstones(ix);
    if (dead == 0)
        return 0;
    /* Room on the free list first: the reclaim phase must not fail half way. */
    if ((uint64_t)ix->free_n + dead > ix->free_cap) {
        uint64_t cap = (uint64_t)ix->free_n + dead;
        uint32_t *f = realloc(ix->free_slots, cap * sizeof(*f));
        if (!f)
            return VINDEX_ENOMEM;
        ix->free_slots = f;
        ix->free_cap = (uint32_t)cap;
    }
    uint32_t marked = 0;
    for (uint32_t s = 0; s < end; s++) {
        uint8_t f = __atomic_load_n(&ix->flags[s], __ATOMIC_RELAXED);
        if ((f & VINDEX_FLAG_DEAD) && !(f & VINDEX_FLAG_RECLAIM)) {
            __atomic_fetch_or(&ix->flags[s], VINDEX_FLAG_RECLAIM, __ATOMIC_RELAXED);
            marked++;
        }
    }
    if (!marked)
        return 0;
    ix->job = (vindex_compact_t){
        .end = end,
        .units = ix->ops->repair_units ? ix->ops->repair_units(ix, end) : 0,
        .marked = marked,
    };
    if (ix->ops->compact_begin)
        ix->ops->compact_begin(ix);
    set_phase(ix, VINDEX_COMPACT_REPAIR);
    return 0;
}

/* Up to `budget` units of repair; at the end, the grace period begins. */
static int job_repair(vindex_t *ix, uint64_t budget, unsigned threads)
{
    vindex_compact_t *j = &ix->job;
    uint32_t to = budget >= (uint64_t)(j->units - j->cursor) ? j->units : j->cursor + (uint32_t)budget;
    if (to > j->cursor) {
        int rc = ix->ops->repair(ix, j->cursor, to, threads);
        if (rc)
            return rc;
        j->cursor = to;
    }
    if (j->cursor == j->units) {
        /* Every repair store is ordered before the bump: a search that sees the new
         * generation cannot reach a RECLAIM slot. */
        uint64_t g = __atomic_load_n(&ix->read_gen, __ATOMIC_RELAXED);
        j->grace = (unsigned)(g & 1);
        __atomic_store_n(&ix->read_gen, g + 1, __ATOMIC_SEQ_CST);
        set_phase(ix, VINDEX_COMPACT_GRACE);
    }
    return 0;
}

static int grace_over(vindex_t *ix)
{
    return __atomic_load_n(&ix->readers[ix->job.grace], __ATOMIC_SEQ_CST) == 0;
}

static void job_reclaim(vindex_t *ix)
{
    uint32_t n = 0;
    /* Highest first, so that inserts pop the lowest slots first. */
    for (uint32_t s = ix->job.end; s-- > 0;) {
        uint8_t f = __atomic_load_n(&ix->flags[s], __ATOMIC_RELAXED);
        if (!(f & VINDEX_FLAG_RECLAIM) || (f & VINDEX_FLAG_FREE))
            continue;
        if (ix->ops->reclaim)
            ix->ops->reclaim(ix, s);
        __atomic_fetch_or(&ix->flags[s], VINDEX_FLAG_FREE, __ATOMIC_RELAXED);
        ix->free_slots[ix->free_n] = s;
        __atomic_store_n(&ix->free_n, ix->free_n + 1, __ATOMIC_RELEASE);
        n++;
    }
    if (ix->ops->compact_end)
        ix->ops->compact_end(ix);
    __atomic_fetch_add(&ix->reclaimed, n, __ATOMIC_RELAXED);
    __atomic_fetch_add(&ix->compactions, 1, __ATOMIC_RELAXED);
    set_phase(ix, VINDEX_COMPACT_IDLE);
}

void vindex_compact_step(vindex_t *ix, size_t items, unsigned threads)
{
    if (phase(ix) == VINDEX_COMPACT_IDLE) {
        double t = ix->p.compact_threshold;
        uint64_t dead = vindex_tombstones(ix), used = (uint64_t)ix->next_slot - ix->free_n;
        if (!(t > 0) || dead == 0 || (double)dead <= t * (double)used || job_begin(ix))
            return;
    }
    if (phase(ix) == VINDEX_COMPACT_REPAIR) {
        /* Twice the average work per marked slot: the job ends within marked / 2 writes, before
         * the tombstones it left behind can pile up as high again. */
        const vindex_compact_t *j = &ix->job;
        uint64_t per_item = (2ull * j->units + j->marked - 1) / j->marked;
        if (job_repair(ix, (per_item ? per_item : 1) * items, threads))
            return;
    }
    if (phase(ix) == VINDEX_COMPACT_GRACE && grace_over(ix))
        set_phase(ix, VINDEX_COMPACT_RECLAIM);
    if (phase(ix) == VINDEX_COMPACT_RECLAIM)
        job_reclaim(ix);
}

int vindex_compact(vindex_t *ix, char *err, size_t errlen)
{
    unsigned threads = vindex_threads(ix);
    int began = 0, rc = 0;
    pthread_mutex_lock(&ix->write_lock);
    for (;;) {
        vindex_compact_phase_t ph = phase(ix);
        if (ph == VINDEX_COMPACT_IDLE) {
            /* A job that was under way is finished first, then one for what is left. */
            if (began)
                break;
            began = 1;
            if ((rc = job_begin(ix)) != 0) {
                snprintf(err, errlen, "out of memory for the free list");
                break;
            }
            continue;
        }
        if (ph == VINDEX_COMPACT_REPAIR) {
            uint32_t chunk = ix->job.units / 64;
            chunk = chunk < 1 ? 1 : chunk > COMPACT_CHUNK_MAX ? COMPACT_CHUNK_MAX : chunk;
            if ((rc = job_repair(ix, chunk, threads)) != 0) {
                snprintf(err, errlen, "out of memory while compacting");
                break;
            }
        } else if (ph == VINDEX_COMPACT_GRACE) {
            if (grace_over(ix)) {
                set_phase(ix, VINDEX_COMPACT_RECLAIM);
                continue;
            }
            pthread_mutex_unlock(&ix->write_lock);
            nanosleep(&(struct timespec){.tv_nsec = GRACE_POLL_NS}, NULL);
            pthread_mutex_lock(&ix->write_lock);
            continue;
        } else {
            job_reclaim(ix);
            continue;
        }
        /* Other writers go on between chunks. */
        pthread_mutex_unlock(&ix->write_lock);
        pthread_mutex_lock(&ix->write_lock);
    }
    pthread_mutex_unlock(&ix->write_lock);
    return rc;
}

void vindex_stats(const vindex_t *ix, vindex_stats_t *out)
{
    out->live = vindex_count(ix);
    out->slots = __atomic_load_n(&ix->n_slots, __ATOMIC_ACQUIRE);
    out->free = __atomic_load_n(&ix->free_n, __ATOMIC_ACQUIRE);
    out->tombstones = vindex_tombstones(ix);
    out->compactions = __atomic_load_n(&ix->compactions, __ATOMIC_RELAXED);
    out->reclaimed = __atomic_load_n(&ix->reclaimed, __ATOMIC_RELAXED);
    out->compacting = phase(ix) != VINDEX_COMPACT_IDLE;
    out->mem_bytes = vindex_mem_bytes(ix);
}
