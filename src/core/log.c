/* JSON-lines logger. Each line is built in memory and written with a single write(2), which
 * keeps lines from different threads whole without a lock. */
#include "core/core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_MAX_DEBUG_SUBSYSTEMS 16
#define LOG_SUBSYSTEM_LEN 32

struct core_log {
    int fd;
    core_log_level min;
    bool debug_all;
    size_t ndebug;
    char debug[LOG_MAX_DEBUG_SUBSYSTEMS][LOG_SUBSYSTEM_LEN];
};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

core_log *core_log_new(int fd, core_log_level min, const char *debug_spec)
{
    core_log *log = calloc(1, sizeof *log);
    if (!log)
        return NULL;
    log->fd = fd;
    log->min = min;
    for (const char *p = debug_spec; p && *p;) {
        size_t n = strcspn(p, ", ");
        if (n == 3 && strncmp(p, "all", 3) == 0)
            log->debug_all = true;
        else if (n > 0 && n < LOG_SUBSYSTEM_LEN && log->ndebug < LOG_MAX_DEBUG_SUBSYSTEMS)
            memcpy(log->debug[log->ndebug++], p, n);
        p += n;
        p += strspn(p, ", ");
    }
    /* Asking for a subsystem's debug lines means wanting them even if min says otherwise. */
    if (log->debug_all || log->ndebug > 0)
        log->min = CORE_LOG_DEBUG;
    return log;
}

void core_log_free(core_log *log)
{
    free(log);
}

int core_log_level_parse(const char *s, core_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (core_log_level)i;
            return 0;
        }
    }
    return CORE_EINVAL;
}

bool core_log_enabled(const core_log *log, core_log_level level, const char *subsystem)
{
    if (!log || level < log->min)
        return false;
    if (level != CORE_LOG_DEBUG || log->debug_all)
        return true;
    for (size_t i = 0; i < log->ndebug; i++)
        if (subsystem && strcmp(log->debug[i], subsystem) == 0)
            return true;
    return false;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

void core_log_vjson(core_log *log, core_log_level level, const char *subsystem, json_t *extra,
                    const char *fmt, va_list ap)
{
    if (!core_log_enabled(log, level, subsystem))
        return;
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[64];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);

    json_t *line = json_object();
    if (!line)
        return;
    json_object_set_new(line, "time", json_string(when));
    json_object_set_new(line, "level", json_string(level_names[level]));
    if (subsystem)
        json_object_set_new(line, "subsystem", json_string(subsystem));
    /* json_stringn_nocheck would let invalid UTF-8 from a client into the log; fall back to a
     * placeholder so one odd byte never loses the line. */
    json_t *m = json_string(msg);
    json_object_set_new(line, "msg", m ? m : json_string("(message is not valid UTF-8)"));
    if (extra)
        json_object_update(line, extra);

    char stackbuf[4096];
    size_t n = json_dumpb(line, stackbuf, sizeof stackbuf - 1, JSON_COMPACT | JSON_REAL_PRECISION(9));
    if (n > 0 && n < sizeof stackbuf - 1) {
        stackbuf[n] = '\n';
        write_all(log->fd, stackbuf, n + 1);
    } else if (n > 0) {
        char *big = malloc(n + 1);
        if (big && json_dumpb(line, big, n, JSON_COMPACT | JSON_REAL_PRECISION(9)) == n) {
            big[n] = '\n';
            write_all(log->fd, big, n + 1);
        }
        free(big);
    }
    json_decref(line);
}

void core_log_json(core_log *log, core_log_level level, const char *subsystem, json_t *extra, const char *fmt,
                   ...)
{
    va_list ap;
    va_start(ap, fmt);
    core_log_vjson(log, level, subsystem, extra, fmt, ap);
    va_end(ap);
}
