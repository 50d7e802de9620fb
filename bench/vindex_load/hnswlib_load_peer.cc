// Peer side of bench/vindex_load: hnswlib's exact index (BruteforceSearch) or graph
// (HierarchicalNSW) saved and loaded with its own saveIndex / loading constructor, on the same
// vectors. Its files have no checksums and its load trusts every count and link it reads, so it
// is a lower bound for "read the index back".
#include <hnswlib/hnswlib.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <thread>
#include <vector>

extern "C" {
#include "hnswlib_load_peer.h"
}

static double now_s()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static double cpu_s()
{
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

extern "C" int hnswlib_load_build_save(int hnsw, const float *v, size_t n, int dim, size_t M,
                                       size_t ef_construction, unsigned threads, const char *path,
                                       double *build_s, double *save_s)
{
    try {
        hnswlib::L2Space space(dim);
        double t0 = now_s();
        if (!hnsw) {
            hnswlib::BruteforceSearch<float> bf(&space, n);
            for (size_t i = 0; i < n; i++)
                bf.addPoint(v + i * (size_t)dim, i);
            *build_s = now_s() - t0;
            t0 = now_s();
            bf.saveIndex(path);
            *save_s = now_s() - t0;
            return 0;
        }
        hnswlib::HierarchicalNSW<float> g(&space, n, M, ef_construction);
        std::atomic<size_t> next{0};
        auto work = [&]() {
            for (size_t i; (i = next.fetch_add(1)) < n;)
                g.addPoint(v + i * (size_t)dim, i);
        };
        std::vector<std::thread> pool;
        for (unsigned t = 1; t < threads; t++)
            pool.emplace_back(work);
        work();
        for (auto &t : pool)
            t.join();
        *build_s = now_s() - t0;
        t0 = now_s();
        g.saveIndex(path);
        *save_s = now_s() - t0;
        return 0;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "hnswlib: %s\n", e.what());
        return -1;
    }
}

extern "C" int hnswlib_load(int hnsw, const char *path, int dim, double *load_s, double *load_cpu_s,
                            size_t *count)
{
    try {
        hnswlib::L2Space space(dim);
        double t0 = now_s(), c0 = cpu_s();
        if (hnsw) {
            hnswlib::HierarchicalNSW<float> g(&space, std::string(path));
            *load_s = now_s() - t0;
            *load_cpu_s = cpu_s() - c0;
            *count = g.cur_element_count;
        } else {
            hnswlib::BruteforceSearch<float> bf(&space, std::string(path));
            *load_s = now_s() - t0;
            *load_cpu_s = cpu_s() - c0;
            *count = bf.cur_element_count;
        }
        return 0;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "hnswlib: %s\n", e.what());
        return -1;
    }
}
