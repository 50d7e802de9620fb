/* Real PostgreSQL servers for the catalogue tests; see pg_fixture.h. */
#include "pg_fixture.h"

#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SCRIPT "tests/lib/pg_server.sh"

/* Set by the runner before any test starts (the test processes inherit it). */
#define SHARED_ENV "LOOKALIKE_TEST_PG"
#define SHARED_DIR_ENV "LOOKALIKE_TEST_PG_DIR"

static void make_tmp(char *dir, size_t cap)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, cap, "%s/lookalike-pg-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(dir))
        dir[0] = '\0';
}

/* Runs the script and reads the one line it prints; 0 on success. */
static int script(const char *args, char *out, size_t cap)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s", SCRIPT, args);
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    char line[512] = "";
    if (!fgets(line, sizeof line, f))
        line[0] = '\0';
    int rc = pclose(f);
    line[strcspn(line, "\n")] = '\0';
    if (out)
        snprintf(out, cap, "%s", line);
    return rc == 0 && (!out || line[0]) ? 0 : -1;
}

/* The shared server lives as long as the runner: started before the first test, stopped
 * after the last. A server given from outside (LOOKALIKE_TEST_PG) is used as it is. */
static int shared_started;

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    (void)set;
    if (getenv(SHARED_ENV))
        return;
    char dir[512], args[640], base[512];
    make_tmp(dir, sizeof dir);
    snprintf(args, sizeof args, "start %s %d", dir, (int)getpid());
    if (!dir[0] || script(args, base, sizeof base) != 0) {
        fprintf(stderr, "cannot start the test PostgreSQL server (%s %s)\n", SCRIPT, args);
        exit(1);
    }
    setenv(SHARED_ENV, base, 1);
    setenv(SHARED_DIR_ENV, dir, 1);
    shared_started = 1;
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    (void)stats;
    if (!shared_started)
        return;
    char args[640];
    snprintf(args, sizeof args, "stop %s", getenv(SHARED_DIR_ENV));
    script(args, NULL, 0);
}

const char *pgt_shared(void)
{
    const char *b = getenv(SHARED_ENV);
    cr_assert_not_null(b, "no shared PostgreSQL server");
    return b;
}

void pgt_sql(const char *uri, const char *sql, char *out, size_t cap)
{
    PGconn *c = PQconnectdb(uri);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "connect %s: %s", uri, PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    cr_assert(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
    if (out && cap) {
        out[0] = '\0';
        if (st == PGRES_TUPLES_OK && PQntuples(r) > 0)
            snprintf(out, cap, "%s", PQgetvalue(r, 0, 0));
    }
    PQclear(r);
    PQfinish(c);
}

void pgt_new_db(const char *base, char *uri, size_t cap)
{
    static int n;
    char admin[600], sql[128], name[64];
    snprintf(name, sizeof name, "t%d_%d", (int)getpid(), n++);
    snprintf(admin, sizeof admin, "%s/postgres", base);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    pgt_sql(admin, sql, NULL, 0);
    snprintf(uri, cap, "%s/%s", base, name);
}

void pgt_start(char *dir, size_t dircap, char *base, size_t basecap)
{
    char args[640];
    make_tmp(dir, dircap);
    cr_assert(dir[0], "mkdtemp");
    snprintf(args, sizeof args, "start %s %d", dir, (int)getpid());
    cr_assert_eq(script(args, base, basecap), 0, "%s %s failed", SCRIPT, args);
}

void pgt_standby(const char *primary_dir, char *dir, size_t dircap, char *base, size_t basecap)
{
    char args[1200];
    make_tmp(dir, dircap);
    cr_assert(dir[0], "mkdtemp");
    snprintf(args, sizeof args, "standby %s %s %d", primary_dir, dir, (int)getpid());
    cr_assert_eq(script(args, base, basecap), 0, "%s %s failed", SCRIPT, args);
}

void pgt_ctl(const char *cmd, const char *dir)
{
    char args[640];
    snprintf(args, sizeof args, "%s %s", cmd, dir);
    cr_assert_eq(script(args, NULL, 0), 0, "%s %s failed", SCRIPT, args);
}
