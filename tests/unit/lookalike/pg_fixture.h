/* Real PostgreSQL servers for the catalogue tests, run by tests/lib/pg_server.sh: one shared
 * server started before the first test of this binary and stopped after the last (a fresh
 * database per test), and private servers for the tests that restart, crash or fail over
 * their server. Everything here asserts: a server that cannot be had fails the test. */
#ifndef TESTS_PG_FIXTURE_H
#define TESTS_PG_FIXTURE_H

#include <stddef.h>

/* Base URI of the shared server, "postgresql://postgres@127.0.0.1:PORT". */
const char *pgt_shared(void);

/* Creates an empty database on the server at `base`; uri gets its connection URI. */
void pgt_new_db(const char *base, char *uri, size_t cap);

/* Starts a private server in a new temporary directory (dir), stopped when this process
 * exits at the latest; base gets its base URI. */
void pgt_start(char *dir, size_t dircap, char *base, size_t basecap);

/* Starts a streaming hot standby of the private server in primary_dir. */
void pgt_standby(const char *primary_dir, char *dir, size_t dircap, char *base, size_t basecap);

/* tests/lib/pg_server.sh CMD DIR: "restart", "crash", "promote" or "stop". */
void pgt_ctl(const char *cmd, const char *dir);

/* Runs one SQL statement on uri; the first column of its first row, if any, into out
 * (NULL: ignored). */
void pgt_sql(const char *uri, const char *sql, char *out, size_t cap);

#endif
