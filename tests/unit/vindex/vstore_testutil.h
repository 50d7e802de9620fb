/* Temporary data directories for the persistence tests. */
#ifndef VSTORE_TESTUTIL_H
#define VSTORE_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>

static inline void vstore_tmpdir_make(char *out, size_t outlen)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, outlen, "%s/vindex-test-XXXXXX", base && *base ? base : P_tmpdir);
    if (!mkdtemp(out))
        abort();
}

static inline void vstore_tmpdir_remove(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        abort();
}

#endif
