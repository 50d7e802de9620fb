// Peer side of bench/vindex_load: hnswlib's exact index (BruteforceSearch) saved and loaded
// with its own saveIndex/loadIndex, on the same vectors. Its file has no checksums and its
// load does not rebuild the label map, so it is a lower bound for "read the vectors back".
#include <hnswlib/hnswlib.h>

#include <chrono>
#include <cstdio>

extern "C" {
#include "hnswlib_bf_peer.h"
}

static double now_s()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

extern "C" int hnswbf_build_save(const float *v, size_t n, int dim, const char *path, double *save_s)
{
    try {
        hnswlib::L2Space space(dim);
        hnswlib::BruteforceSearch<float> bf(&space, n);
        for (size_t i = 0; i < n; i++)
            bf.addPoint(v + i * (size_t)dim, i);
        double t0 = now_s();
        bf.saveIndex(path);
        *save_s = now_s() - t0;
        return 0;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "hnswlib: %s\n", e.what());
        return -1;
    }
}

extern "C" int hnswbf_load(const char *path, int dim, double *load_s, size_t *count)
{
    try {
        hnswlib::L2Space space(dim);
        double t0 = now_s();
        hnswlib::BruteforceSearch<float> bf(&space, std::string(path));
        *load_s = now_s() - t0;
        *count = bf.cur_element_count;
        return 0;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "hnswlib: %s\n", e.what());
        return -1;
    }
}
