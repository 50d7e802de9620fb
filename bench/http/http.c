/* bench/http: our HTTP runtime (core-example) against Debian's nginx, same machine, same run.
 *
 * Both servers get the same 1 KiB JSON body (fetched from core-example's /bench/1k and written
 * to nginx's directory) and a /healthz; wrk drives each with the same threads, connections and
 * duration. Prints one JSON line per case and a summary line
 *   {"bench":"http","ratio_vs_nginx":<our 1 KiB requests/s divided by nginx's>, ...}
 * nginx runs from a temporary prefix with its own config (daemon off, loopback only, access
 * log off, as many workers as CPUs); core-example runs with its access log off and one
 * event-loop thread per CPU, so the two do the same work per request. Each case also reports
 * the server's own CPU time per request (user + system from /proc, nginx's workers included),
 * which a busy machine disturbs far less than requests/s. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

typedef struct opts {
    int seconds, connections, threads, rounds;
    const char *server, *nginx, *wrk;
} opts;

typedef struct result {
    double rps, p50_ms, p99_ms;
    double cpu_us_per_req; /* the server's user + system CPU time per request answered */
    long long errors, requests;
} result;

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len)) {
        perror("free port");
        exit(1);
    }
    close(fd);
    return ntohs(a.sin_port);
}

static pid_t spawn(char *const argv[], const char *out_path)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (out_path) {
        posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
    }
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        fprintf(stderr, "bench/http: cannot start %s: %s\n", argv[0], strerror(rc));
        return -1;
    }
    return pid;
}

/* GET path over a fresh connection; returns the body (malloc'd) or NULL. */
static char *http_get(int port, const char *path, size_t *len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return NULL;
    }
    size_t cap = 65536, used = 0;
    char *buf = malloc(cap);
    ssize_t r;
    while (buf && used < cap - 1 && (r = read(fd, buf + used, cap - 1 - used)) > 0)
        used += (size_t)r;
    close(fd);
    if (!buf)
        return NULL;
    buf[used] = '\0';
    char *body = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.1 200", 12) != 0 || !body) {
        free(buf);
        return NULL;
    }
    body += 4;
    *len = used - (size_t)(body - buf);
    memmove(buf, body, *len);
    return buf;
}

static bool wait_ready(int port, pid_t pid)
{
    for (int i = 0; i < 100; i++) {
        size_t len;
        char *b = http_get(port, "/healthz", &len);
        if (b) {
            free(b);
            return true;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            return false;
        struct timespec t = {0, 50 * 1000 * 1000};
        nanosleep(&t, NULL);
    }
    return false;
}

static void stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        struct timespec t = {0, 50 * 1000 * 1000};
        nanosleep(&t, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* "1.23ms" / "850.00us" / "1.02s" -> milliseconds */
static double to_ms(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (strncmp(end, "us", 2) == 0)
        return v / 1000;
    if (strncmp(end, "ms", 2) == 0)
        return v;
    if (strncmp(end, "s", 1) == 0)
        return v * 1000;
    if (strncmp(end, "m", 1) == 0)
        return v * 60000;
    return v;
}

/* User + system CPU time of one process, in milliseconds (-1 if unreadable). */
static double proc_cpu_ms(pid_t pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

/* The CPU time of a server: the process and its direct children (nginx's workers). */
static double server_cpu_ms(pid_t pid)
{
    double total = proc_cpu_ms(pid);
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    FILE *f = fopen(path, "r");
    int child;
    while (f && fscanf(f, "%d", &child) == 1) {
        double c = proc_cpu_ms(child);
        if (c > 0)
            total += c;
    }
    if (f)
        fclose(f);
    return total;
}

static int run_wrk(const opts *o, int port, pid_t server, const char *path, const char *outfile, result *res)
{
    double cpu0 = server_cpu_ms(server);
    char t[16], c[16], d[16], url[256];
    snprintf(t, sizeof t, "%d", o->threads);
    snprintf(c, sizeof c, "%d", o->connections);
    snprintf(d, sizeof d, "%ds", o->seconds);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    char *argv[] = {(char *)o->wrk, "-t", t, "-c", c, "-d", d, "--latency", url, NULL};
    pid_t pid = spawn(argv, outfile);
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "bench/http: wrk failed for %s (output in %s)\n", url, outfile);
        return -1;
    }
    FILE *f = fopen(outfile, "r");
    if (!f)
        return -1;
    memset(res, 0, sizeof *res);
    double cpu = server_cpu_ms(server) - cpu0;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char unit[32];
        double v;
        long long a, b, cc, dd;
        double secs;
        if (sscanf(line, " %lld requests in %lf", &a, &secs) == 2)
            res->requests = a;
        else if (sscanf(line, "Requests/sec: %lf", &v) == 1)
            res->rps = v;
        else if (sscanf(line, " 50%% %31s", unit) == 1)
            res->p50_ms = to_ms(unit);
        else if (sscanf(line, " 99%% %31s", unit) == 1)
            res->p99_ms = to_ms(unit);
        else if (sscanf(line, " Socket errors: connect %lld, read %lld, write %lld, timeout %lld", &a, &b,
                        &cc, &dd) == 4)
            res->errors += a + b + cc + dd;
        else if (sscanf(line, " Non-2xx or 3xx responses: %lld", &a) == 1)
            res->errors += a;
    }
    fclose(f);
    res->cpu_us_per_req = res->requests > 0 && cpu >= 0 ? cpu * 1000.0 / (double)res->requests : 0;
    return res->rps > 0 ? 0 : -1;
}

#define MAX_ROUNDS 15

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of each figure on its own (requests/s and p99 need not come from the same round). */
static result median(const result *rs, int n)
{
    double rps[MAX_ROUNDS], p50[MAX_ROUNDS], p99[MAX_ROUNDS], cpu[MAX_ROUNDS];
    result m = {0};
    for (int i = 0; i < n; i++) {
        rps[i] = rs[i].rps;
        p50[i] = rs[i].p50_ms;
        p99[i] = rs[i].p99_ms;
        cpu[i] = rs[i].cpu_us_per_req;
        m.errors += rs[i].errors;
    }
    qsort(rps, (size_t)n, sizeof *rps, cmp_double);
    qsort(p50, (size_t)n, sizeof *p50, cmp_double);
    qsort(p99, (size_t)n, sizeof *p99, cmp_double);
    qsort(cpu, (size_t)n, sizeof *cpu, cmp_double);
    m.rps = rps[n / 2];
    m.p50_ms = p50[n / 2];
    m.p99_ms = p99[n / 2];
    m.cpu_us_per_req = cpu[n / 2];
    return m;
}

static void usage(void)
{
    printf("usage: bench/http [--seconds N] [--connections N] [--threads N] [--server PATH] [--nginx PATH] "
           "[--wrk PATH]\n"
           "  --seconds      wrk duration per case (default 5)\n"
           "  --connections  wrk connections (default 64)\n"
           "  --threads      wrk threads (default 2)\n"
           "  --rounds       repeat the four cases, interleaved, and report medians (default 1)\n"
           "  --server       core-example binary (default: ../core-example next to this program)\n");
}

int main(int argc, char **argv)
{
    opts o = {.seconds = 5,
              .connections = 64,
              .threads = 2,
              .rounds = 1,
              .nginx = "/usr/sbin/nginx",
              .wrk = "/usr/bin/wrk"};
    char default_server[4096];
    snprintf(default_server, sizeof default_server, "%s", argv[0]);
    char *slash = strrchr(default_server, '/');
    if (slash)
        snprintf(slash, sizeof default_server - (size_t)(slash - default_server), "/../core-example");
    else
        snprintf(default_server, sizeof default_server, "../core-example");
    o.server = default_server;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--help") == 0) {
            usage();
            return 0;
        } else if (v && strcmp(argv[i], "--seconds") == 0) {
            o.seconds = atoi(v);
        } else if (v && strcmp(argv[i], "--connections") == 0) {
            o.connections = atoi(v);
        } else if (v && strcmp(argv[i], "--rounds") == 0) {
            o.rounds = atoi(v);
        } else if (v && strcmp(argv[i], "--threads") == 0) {
            o.threads = atoi(v);
        } else if (v && strcmp(argv[i], "--server") == 0) {
            o.server = v;
        } else if (v && strcmp(argv[i], "--nginx") == 0) {
            o.nginx = v;
        } else if (v && strcmp(argv[i], "--wrk") == 0) {
            o.wrk = v;
        } else {
            fprintf(stderr, "bench/http: bad argument %s (see --help)\n", argv[i]);
            return 2;
        }
        i++;
    }
    if (o.seconds < 1 || o.connections < 1 || o.threads < 1 || o.threads > o.connections || o.rounds < 1 ||
        o.rounds > MAX_ROUNDS) {
        fprintf(stderr,
                "bench/http: --seconds, --connections, --threads must be >= 1, threads <= connections, "
                "rounds in 1..%d\n",
                MAX_ROUNDS);
        return 2;
    }

    const char *tmp = getenv("TMPDIR");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/bench-http-XXXXXX", tmp && *tmp ? tmp : P_tmpdir);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    chmod(dir, 0755); /* nginx workers may run as another user */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int rc = 1;
    pid_t ours = -1, theirs = -1;
    char path[4200], conf[16384];

    int our_port = free_port();
    char port_arg[16];
    snprintf(port_arg, sizeof port_arg, "%d", our_port);
    snprintf(path, sizeof path, "%s/core-example.log", dir);
    char *our_argv[] = {(char *)o.server, "--port", port_arg, "--access-log=false",
                        "--log-level",    "warn",   NULL};
    ours = spawn(our_argv, path);
    if (ours < 0 || !wait_ready(our_port, ours)) {
        fprintf(stderr, "bench/http: %s did not start (log in %s)\n", o.server, path);
        goto done;
    }
    size_t body_len;
    char *body = http_get(our_port, "/bench/1k", &body_len);
    if (!body || body_len != 1024) {
        fprintf(stderr, "bench/http: /bench/1k did not give 1024 bytes\n");
        free(body);
        goto done;
    }
    snprintf(path, sizeof path, "%s/1k.json", dir);
    FILE *f = fopen(path, "w");
    if (!f || fwrite(body, 1, body_len, f) != body_len) {
        perror(path);
        free(body);
        goto done;
    }
    fclose(f);
    free(body);

    int nginx_port = free_port();
    snprintf(conf, sizeof conf,
             "%s"
             "worker_processes %ld;\n"
             "daemon off;\n"
             "master_process on;\n"
             "pid %s/nginx.pid;\n"
             "error_log %s/nginx-error.log warn;\n"
             "events { worker_connections 4096; }\n"
             "http {\n"
             "  access_log off;\n"
             "  sendfile on; tcp_nopush on; tcp_nodelay on;\n"
             "  keepalive_requests 1000000;\n"
             "  open_file_cache max=1000 inactive=60s; open_file_cache_valid 60s;\n"
             "  client_body_temp_path %s/body; proxy_temp_path %s/proxy; fastcgi_temp_path %s/fastcgi;\n"
             "  uwsgi_temp_path %s/uwsgi; scgi_temp_path %s/scgi;\n"
             "  server {\n"
             "    listen 127.0.0.1:%d;\n"
             "    location = /healthz { default_type application/json; return 200 '{\"status\":\"ok\"}'; }\n"
             "    location = /bench/1k { default_type application/json; alias %s/1k.json; }\n"
             "  }\n"
             "}\n",
             geteuid() == 0 ? "user root root;\n" : "", cpus > 0 ? cpus : 1, dir, dir, dir, dir, dir, dir,
             dir, nginx_port, dir);
    char conf_path[4200];
    snprintf(conf_path, sizeof conf_path, "%s/nginx.conf", dir);
    f = fopen(conf_path, "w");
    if (!f || fputs(conf, f) < 0) {
        perror(conf_path);
        goto done;
    }
    fclose(f);
    char errlog[4200];
    snprintf(errlog, sizeof errlog, "%s/nginx-error.log", dir);
    char *nginx_argv[] = {(char *)o.nginx, "-p", dir, "-c", conf_path, "-e", errlog, NULL};
    snprintf(path, sizeof path, "%s/nginx.out", dir);
    theirs = spawn(nginx_argv, path);
    if (theirs < 0 || !wait_ready(nginx_port, theirs)) {
        fprintf(stderr, "bench/http: nginx did not start (see %s and %s)\n", path, errlog);
        goto done;
    }

    static const char *const paths[] = {"/healthz", "/bench/1k"};
    /* Interleaving the servers within each round spreads a noisy neighbour's load over both. */
    result runs[2][2][MAX_ROUNDS]; /* [path][0 = core, 1 = nginx][round] */
    for (int k = 0; k < o.rounds; k++) {
        for (int p = 0; p < 2; p++) {
            for (int s = 0; s < 2; s++) {
                result *x = &runs[p][s][k];
                snprintf(path, sizeof path, "%s/wrk-%d-%d-%d.txt", dir, p, s, k);
                if (run_wrk(&o, s ? nginx_port : our_port, s ? theirs : ours, paths[p], path, x) != 0)
                    goto done;
                printf("{\"bench\":\"http\",\"server\":\"%s\",\"path\":\"%s\",\"round\":%d,\"requests_per_"
                       "s\":%.0f,"
                       "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"server_cpu_us_per_req\":%.2f,\"errors\":%lld,"
                       "\"connections\":%d,\"threads\":%d,\"seconds\":%d}\n",
                       s ? "nginx" : "core", paths[p], k + 1, x->rps, x->p50_ms, x->p99_ms, x->cpu_us_per_req,
                       x->errors, o.connections, o.threads, o.seconds);
                fflush(stdout);
            }
        }
    }
    result r[2][2];
    for (int p = 0; p < 2; p++)
        for (int s = 0; s < 2; s++)
            r[p][s] = median(runs[p][s], o.rounds);
    printf("{\"bench\":\"http\",\"ratio_vs_nginx\":%.3f,\"ratio_vs_nginx_healthz\":%.3f,\"core_1k_rps\":%.0f,"
           "\"nginx_1k_rps\":%.0f,\"core_1k_p99_ms\":%.3f,\"nginx_1k_p99_ms\":%.3f,\"core_healthz_rps\":%.0f,"
           "\"nginx_healthz_rps\":%.0f,\"core_1k_cpu_us_per_req\":%.2f,\"nginx_1k_cpu_us_per_req\":%.2f,"
           "\"cpu_per_req_ratio_vs_nginx\":%.3f,\"rounds\":%d,\"cpus\":%ld}\n",
           r[1][0].rps / r[1][1].rps, r[0][0].rps / r[0][1].rps, r[1][0].rps, r[1][1].rps, r[1][0].p99_ms,
           r[1][1].p99_ms, r[0][0].rps, r[0][1].rps, r[1][0].cpu_us_per_req, r[1][1].cpu_us_per_req,
           r[1][0].cpu_us_per_req / r[1][1].cpu_us_per_req, o.rounds, cpus);
    rc = 0;
done:
    stop(ours);
    stop(theirs);
    if (rc == 0) {
        char *rm_argv[] = {"/bin/rm", "-rf", dir, NULL};
        pid_t pid = spawn(rm_argv, NULL);
        if (pid > 0)
            waitpid(pid, NULL, 0);
    } else {
        fprintf(stderr, "bench/http: logs kept in %s\n", dir);
    }
    return rc;
}
