/* Per-request bump allocator. Blocks grow geometrically from 4 KiB so that a small request
 * costs one malloc; large allocations get a block of their own so they waste nothing. */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

#define ARENA_FIRST_BLOCK 4096
#define ARENA_MAX_BLOCK (1024 * 1024)
#define ARENA_ALIGN 16

typedef struct arena_block {
    struct arena_block *next;
    size_t size; /* usable bytes after the header */
    size_t used;
    _Alignas(ARENA_ALIGN) unsigned char data[];
} arena_block;

typedef struct arena_cleanup {
    struct arena_cleanup *next;
    void (*fn)(void *);
    void *p;
} arena_cleanup;

struct core_arena {
    arena_block *head;       /* block being filled; older blocks follow */
    arena_cleanup *cleanups; /* newest first */
    size_t cap;              /* 0 = none */
    size_t handed_out;       /* bytes given to callers, counted against cap */
    size_t next_block;       /* size of the next block to allocate */
};

core_arena *core_arena_new(size_t cap)
{
    core_arena *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->cap = cap;
    a->next_block = ARENA_FIRST_BLOCK;
    return a;
}

void core_arena_free(core_arena *a)
{
    if (!a)
        return;
    for (arena_cleanup *c = a->cleanups; c;) {
        arena_cleanup *next = c->next;
        c->fn(c->p);
        free(c);
        c = next;
    }
    for (arena_block *b = a->head; b;) {
        arena_block *next = b->next;
        free(b);
        b = next;
    }
    free(a);
}

void *core_arena_alloc(core_arena *a, size_t n)
{
    size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need < n)
        return NULL;
    if (a->cap && (need > a->cap || a->handed_out > a->cap - need))
        return NULL;
    arena_block *b = a->head;
    if (!b || b->size - b->used < need) {
        size_t size = a->next_block;
        if (need > size)
            size = need;
        b = malloc(sizeof *b + size);
        if (!b)
            return NULL;
        b->size = size;
        b->used = 0;
        /* A big one-off block goes behind the current one, which may still have room. */
        if (a->head && need > a->next_block) {
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
            if (a->next_block < ARENA_MAX_BLOCK)
                a->next_block *= 2;
        }
    }
    void *p = b->data + b->used;
    b->used += need;
    a->handed_out += need;
    return p;
}

void *core_arena_calloc(core_arena *a, size_t n)
{
    void *p = core_arena_alloc(a, n);
    if (p)
        memset(p, 0, n);
    return p;
}

char *core_arena_strndup(core_arena *a, const char *s, size_t n)
{
    char *p = core_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *core_arena_strdup(core_arena *a, const char *s)
{
    return core_arena_strndup(a, s, strlen(s));
}

char *core_arena_printf(core_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *p = core_arena_alloc(a, (size_t)n + 1);
    if (!p)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

int core_arena_defer(core_arena *a, void (*fn)(void *), void *p)
{
    /* Cleanup records are malloc'd, not arena memory, so a full arena can still register. */
    arena_cleanup *c = malloc(sizeof *c);
    if (!c) {
        fn(p);
        return CORE_ENOMEM;
    }
    c->fn = fn;
    c->p = p;
    c->next = a->cleanups;
    a->cleanups = c;
    return 0;
}

size_t core_arena_used(const core_arena *a)
{
    return a->handed_out;
}
