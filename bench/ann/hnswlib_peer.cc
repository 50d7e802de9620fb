// The hnswlib side of bench/ann, built with the same compiler flags hnswlib's own builds use
// (see bench_ann_CXXFLAGS), behind a C interface.
#include "hnswlib_peer.h"

#include <hnswlib/hnswlib.h>

#include <sys/mman.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

struct hnswlib_peer {
    std::unique_ptr<hnswlib::SpaceInterface<float>> space;
    std::unique_ptr<hnswlib::HierarchicalNSW<float>> index;
    size_t dim;
};

extern "C" hnswlib_peer_t *hnswlib_peer_new(int ip, size_t dim, size_t max_elements, size_t M,
                                            size_t ef_construction, int huge_pages)
{
    try {
        auto p = std::make_unique<hnswlib_peer>();
        p->dim = dim;
        if (ip)
            p->space = std::make_unique<hnswlib::InnerProductSpace>(dim);
        else
            p->space = std::make_unique<hnswlib::L2Space>(dim);
        p->index = std::make_unique<hnswlib::HierarchicalNSW<float>>(p->space.get(), max_elements, M,
                                                                     ef_construction);
        if (huge_pages) {
            // The level-0 array is malloc'd and not yet touched: advise its whole pages.
            auto *h = p->index.get();
            uintptr_t lo = ((uintptr_t)h->data_level0_memory_ + 4095) & ~(uintptr_t)4095;
            uintptr_t hi = ((uintptr_t)h->data_level0_memory_ + max_elements * h->size_data_per_element_) &
                           ~(uintptr_t)4095;
            if (hi > lo)
                madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
        }
        return p.release();
    } catch (...) {
        return nullptr;
    }
}

extern "C" int hnswlib_peer_add(hnswlib_peer_t *p, const float *vecs, size_t n, unsigned threads)
{
    std::atomic<size_t> next{0};
    std::atomic<int> failed{0};
    auto work = [&]() {
        for (size_t i; (i = next.fetch_add(1)) < n;) {
            try {
                p->index->addPoint(vecs + i * p->dim, i);
            } catch (...) {
                failed = 1;
                return;
            }
        }
    };
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < threads; t++)
        pool.emplace_back(work);
    work();
    for (auto &t : pool)
        t.join();
    return failed ? -1 : 0;
}

extern "C" void hnswlib_peer_set_ef(hnswlib_peer_t *p, size_t ef)
{
    p->index->setEf(ef);
}

extern "C" size_t hnswlib_peer_search(hnswlib_peer_t *p, const float *q, size_t k, uint64_t *ids)
{
    auto res = p->index->searchKnn(q, k);
    size_t n = res.size();
    for (size_t i = n; i > 0; i--) {
        ids[i - 1] = res.top().second;
        res.pop();
    }
    return n;
}

extern "C" size_t hnswlib_peer_search_postfilter(hnswlib_peer_t *p, const float *q, size_t k, size_t fetch,
                                                 const uint64_t *bitmap, uint64_t *ids)
{
    auto res = p->index->searchKnn(q, fetch);
    std::vector<uint64_t> all(res.size());
    for (size_t i = res.size(); i > 0; i--) {
        all[i - 1] = res.top().second;
        res.pop();
    }
    size_t n = 0;
    for (size_t i = 0; i < all.size() && n < k; i++) {
        uint64_t id = all[i];
        if ((bitmap[id >> 6] >> (id & 63)) & 1u)
            ids[n++] = id;
    }
    return n;
}

extern "C" void hnswlib_peer_free(hnswlib_peer_t *p)
{
    delete p;
}
