/* Text search benchmark: our BM25F index against SQLite FTS5 (bm25 ranking, unicode61 with
 * diacritics removed, prefix queries) on the same synthetic Vietnamese-like catalogue, in the
 * same run. Prints JSON lines: index build rate, query rate, and how far the two top-10 lists
 * agree. Usage: bm25 [docs] [queries] (default 100000 and 2000). */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lookalike/lookalike.h"

#define VOCAB 3000

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static uint64_t next(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ull;
}

/* Zipf-like word choice: low indices are common, as in real catalogues. */
static uint32_t pick(void)
{
    double u = (double)(next() >> 11) / 9007199254740992.0;
    return (uint32_t)(VOCAB * u * u * u);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *const onsets[] = {"",  "b", "c",  "ch", "d",  "đ",  "g", "gi", "h",  "k",  "kh", "l",
                                     "m", "n", "ng", "nh", "ph", "qu", "s", "t",  "th", "tr", "v",  "x"};
static const char *const rimes[] = {"a",  "á",  "à",  "ảo",  "ao",  "ơn", "ương", "iên", "ắc",  "ộc", "uần",
                                    "ép", "ây", "ối", "ăng", "inh", "ui", "ưa",   "ồng", "anh", "ết", "ọt"};

static void make_word(uint32_t i, char *out, size_t cap)
{
    uint32_t o = i % 24, r = (i / 24) % 22, o2 = (i / 528) % 24, r2 = (i / 528 / 24) % 22;
    if (i < 528)
        snprintf(out, cap, "%s%s", onsets[o], rimes[r]);
    else
        snprintf(out, cap, "%s%s%s%s", onsets[o], rimes[r], onsets[o2], rimes[r2]);
}

static void make_text(char words[][32], int n, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < n && len + 40 < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? " " : "", words[pick()]);
}

int main(int argc, char **argv)
{
    size_t ndocs = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    size_t nq = argc > 2 ? strtoul(argv[2], NULL, 10) : 2000;
    static char words[VOCAB][32];
    for (uint32_t i = 0; i < VOCAB; i++)
        make_word(i, words[i], sizeof words[i]);
    char(*docs)[5][256] = malloc(ndocs * sizeof *docs);
    for (size_t d = 0; d < ndocs; d++) {
        make_text(words, 6, docs[d][0], 256);
        make_text(words, 24, docs[d][1], 256);
        make_text(words, 1, docs[d][2], 256);
        make_text(words, 1, docs[d][3], 256);
        make_text(words, 3, docs[d][4], 256);
    }
    char(*queries)[128] = malloc(nq * sizeof *queries);
    char(*fts_q)[160] = malloc(nq * sizeof *fts_q);
    for (size_t q = 0; q < nq; q++) {
        char a[32], b[32];
        snprintf(a, sizeof a, "%s", words[pick()]);
        snprintf(b, sizeof b, "%s", words[pick()]);
        /* The last word is typed half way: a prefix query, folded so both engines see ASCII. */
        char fa[32], fb[32];
        size_t la, lb;
        lookalike_text_fold(a, strlen(a), fa, sizeof fa, &la, NULL, 0);
        lookalike_text_fold(b, strlen(b), fb, sizeof fb, &lb, NULL, 0);
        if (lb > 2)
            fb[lb - 1] = '\0';
        snprintf(queries[q], sizeof queries[q], "%s %s", fa, fb);
        snprintf(fts_q[q], sizeof fts_q[q], "\"%s\" AND \"%s\"*", fa, fb);
    }

    /* Ours. */
    double t0 = now();
    lookalike_bm25_t *ix = lookalike_bm25_new(NULL, NULL, 0);
    for (size_t d = 0; d < ndocs; d++) {
        const char *f[LOOKALIKE_FIELD_COUNT] = {docs[d][0], docs[d][1], docs[d][2], docs[d][3], docs[d][4]};
        if (lookalike_bm25_put(ix, d + 1, f, NULL, 0) != 0)
            return 1;
    }
    double build_ours = now() - t0;
    lookalike_hit_t(*ours)[10] = malloc(nq * sizeof *ours);
    size_t *nours = malloc(nq * sizeof *nours);
    t0 = now();
    for (size_t q = 0; q < nq; q++)
        lookalike_bm25_search(ix, queries[q], 10, NULL, ours[q], &nours[q], NULL, 0);
    double query_ours = now() - t0;

    /* SQLite FTS5, in memory, one transaction for the load. */
    sqlite3 *db;
    sqlite3_open(":memory:", &db);
    char *emsg = NULL;
    if (sqlite3_exec(db,
                     "CREATE VIRTUAL TABLE t USING fts5(title, description, brand, category, attrs,"
                     " tokenize = 'unicode61 remove_diacritics 2')",
                     NULL, NULL, &emsg) != SQLITE_OK) {
        fprintf(stderr, "fts5: %s\n", emsg);
        return 1;
    }
    t0 = now();
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    sqlite3_stmt *ins;
    sqlite3_prepare_v2(db,
                       "INSERT INTO t(rowid, title, description, brand, category, attrs) VALUES(?,?,?,?,?,?)",
                       -1, &ins, NULL);
    for (size_t d = 0; d < ndocs; d++) {
        sqlite3_bind_int64(ins, 1, (sqlite3_int64)d + 1);
        for (int f = 0; f < 5; f++)
            sqlite3_bind_text(ins, f + 2, docs[d][f], -1, SQLITE_STATIC);
        sqlite3_step(ins);
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    double build_fts = now() - t0;
    sqlite3_stmt *sel;
    sqlite3_prepare_v2(
        db, "SELECT rowid FROM t WHERE t MATCH ? ORDER BY bm25(t, 3.0, 1.0, 2.0, 2.0, 1.0) LIMIT 10", -1,
        &sel, NULL);
    uint64_t(*theirs)[10] = malloc(nq * sizeof *theirs);
    size_t *ntheirs = calloc(nq, sizeof *ntheirs);
    t0 = now();
    for (size_t q = 0; q < nq; q++) {
        sqlite3_bind_text(sel, 1, fts_q[q], -1, SQLITE_STATIC);
        while (sqlite3_step(sel) == SQLITE_ROW && ntheirs[q] < 10)
            theirs[q][ntheirs[q]++] = (uint64_t)sqlite3_column_int64(sel, 0);
        sqlite3_reset(sel);
    }
    double query_fts = now() - t0;
    sqlite3_finalize(sel);
    sqlite3_close(db);

    /* Agreement of the top-10 sets, over queries where FTS5 found anything. */
    size_t common = 0, total = 0;
    for (size_t q = 0; q < nq; q++) {
        total += ntheirs[q];
        for (size_t i = 0; i < ntheirs[q]; i++)
            for (size_t j = 0; j < nours[q]; j++)
                common += theirs[q][i] == ours[q][j].id;
    }
    double ours_bps = ndocs / build_ours, fts_bps = ndocs / build_fts;
    double ours_qps = nq / query_ours, fts_qps = nq / query_fts;
    printf("{\"bench\":\"bm25_build\",\"docs\":%zu,\"ours_docs_per_s\":%.0f,\"peer\":\"sqlite_fts5\","
           "\"peer_docs_per_s\":%.0f,\"ratio\":%.2f}\n",
           ndocs, ours_bps, fts_bps, ours_bps / fts_bps);
    printf("{\"bench\":\"bm25_query\",\"docs\":%zu,\"queries\":%zu,\"k\":10,\"ours_qps\":%.0f,"
           "\"peer\":\"sqlite_fts5\",\"peer_qps\":%.0f,\"ratio\":%.2f,\"top10_agreement\":%.3f}\n",
           ndocs, nq, ours_qps, fts_qps, ours_qps / fts_qps, total ? (double)common / total : 0.0);
    lookalike_bm25_free(ix);
    free(docs);
    free(queries);
    free(fts_q);
    free(ours);
    free(nours);
    free(theirs);
    free(ntheirs);
    return 0;
}
