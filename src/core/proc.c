/* Process figures from /proc/self, read on demand (each /metrics scrape). */
#include "core/core.h"

#include <dirent.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

int core_proc_read(core_proc_stats *st)
{
    memset(st, 0, sizeof *st);
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return CORE_EIO;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        long long v;
        if (sscanf(line, "VmRSS: %lld kB", &v) == 1)
            st->rss_bytes = v * 1024;
        else if (sscanf(line, "Threads: %lld", &v) == 1)
            st->threads = v;
    }
    fclose(f);
    /* In-use chunks of every arena plus mmap'd blocks: what our allocations cost, without the
     * pages malloc keeps for reuse that RSS also counts. */
    struct mallinfo2 mi = mallinfo2();
    st->heap_bytes = (long long)(mi.uordblks + mi.hblkhd);
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return CORE_EIO;
    struct dirent *e;
    long long n = 0;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    st->open_fds = n > 0 ? n - 1 : 0; /* the directory stream's own descriptor */
    return 0;
}

long long core_proc_raise_nofile(long long want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    rlim_t target = (rlim_t)want;
    if (rl.rlim_max != RLIM_INFINITY && target > rl.rlim_max)
        target = rl.rlim_max;
    if (target > rl.rlim_cur) {
        rl.rlim_cur = target;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            return -1;
    }
    return (long long)rl.rlim_cur;
}
