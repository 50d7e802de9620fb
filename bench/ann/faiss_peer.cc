// The FAISS side of bench/ann (Debian libfaiss-dev): IVF-Flat or IVF-SQ8 over an exact coarse
// quantiser, behind a C interface. Queries run one at a time on one OpenMP thread, as vindex's do.
#include "faiss_peer.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/impl/IDSelector.h>

#include <memory>
#include <omp.h>
#include <vector>

using idx_t = faiss::Index::idx_t;

struct faiss_peer {
    std::unique_ptr<faiss::IndexFlat> quantizer;
    std::unique_ptr<faiss::IndexIVF> index;
    size_t nprobe = 1;
};

extern "C" faiss_peer_t *faiss_peer_new(int ip, size_t dim, size_t nlist, int sq8)
{
    try {
        auto p = std::make_unique<faiss_peer>();
        faiss::MetricType m = ip ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2;
        p->quantizer = std::make_unique<faiss::IndexFlat>(dim, m);
        if (sq8)
            p->index = std::make_unique<faiss::IndexIVFScalarQuantizer>(p->quantizer.get(), dim, nlist,
                                                                        faiss::ScalarQuantizer::QT_8bit, m);
        else
            p->index = std::make_unique<faiss::IndexIVFFlat>(p->quantizer.get(), dim, nlist, m);
        return p.release();
    } catch (...) {
        return nullptr;
    }
}

extern "C" int faiss_peer_train_add(faiss_peer_t *p, const float *vecs, size_t n, size_t train_per_list,
                                    int iters, unsigned threads)
{
    try {
        omp_set_num_threads((int)threads);
        p->index->cp.niter = iters;
        p->index->cp.max_points_per_centroid = (int)train_per_list;
        p->index->train((idx_t)n, vecs);
        p->index->add((idx_t)n, vecs);
        omp_set_num_threads(1);
        return 0;
    } catch (...) {
        return -1;
    }
}

extern "C" void faiss_peer_set_nprobe(faiss_peer_t *p, size_t nprobe)
{
    p->nprobe = nprobe;
}

extern "C" size_t faiss_peer_search(faiss_peer_t *p, const float *q, size_t k, const uint64_t *bitmap,
                                    size_t bitmap_bits, uint64_t *ids)
{
    std::vector<float> d(k);
    std::vector<idx_t> lab(k);
    faiss::SearchParametersIVF sp;
    sp.nprobe = p->nprobe;
    // Little-endian words read as bytes give the same bit order IDSelectorBitmap expects.
    faiss::IDSelectorBitmap sel((bitmap_bits + 7) / 8, reinterpret_cast<const uint8_t *>(bitmap));
    if (bitmap)
        sp.sel = &sel;
    p->index->search(1, q, (idx_t)k, d.data(), lab.data(), &sp);
    size_t n = 0;
    for (size_t i = 0; i < k; i++) {
        if (lab[i] >= 0)
            ids[n++] = (uint64_t)lab[i];
    }
    return n;
}

extern "C" void faiss_peer_free(faiss_peer_t *p)
{
    delete p;
}
