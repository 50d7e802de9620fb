# vindex: vector index (flat, hnsw, ivf_flat), its unit tests and the ANN benchmark.
MODULES += vindex
vindex_DEPS :=
vindex_LDLIBS := -lm
DEB_PKGS += zlib1g-dev libhnswlib-dev libfaiss-dev

# build/bench/ann: vindex against hnswlib (header-only, Debian libhnswlib-dev) for hnsw and
# FAISS (Debian libfaiss-dev, a static library built for baseline x86-64, with OpenMP and
# reference BLAS) for ivf_flat, in one run. hnswlib picks its SIMD kernels at compile time, so
# its side is built for this CPU, as its own builds are; vindex picks at run time.
BENCHES += ann
bench_ann_SRCS := bench/ann/ann.c bench/ann/hnswlib_peer.cc bench/ann/faiss_peer.cc
bench_ann_MODULES := vindex
bench_ann_LDLIBS := -lz -lfaiss -llapack -lblas -lgomp
bench_ann_CXXFLAGS := -march=native -Wno-unused-parameter -Wno-sign-compare -Wno-unused-variable
bench_ann_RUN := $(BUILD)/bench/ann --fashion-mnist $(DATA_DIR)/fashion-mnist --nq 1000 \
	--ef 10,16,24,32,48,64,96,128 --filter-selectivity 0.5,0.1,0.01,0.001 --filter-ef 10,32,64 --peer-thp && \
	$(BUILD)/bench/ann --fashion-mnist $(DATA_DIR)/fashion-mnist --nq 1000 --index ivf_flat --nlist 256 \
	--nprobe 1,2,4,8,16,32,64 --filter-selectivity 0.1,0.01

# tests/integration/vindex_concurrency.c: readers and a writer, runnable under SAN=thread.
IT_MODULES_vindex_concurrency := vindex

# Persistence: crash test, loader fuzz target, load benchmark (by the persistence/IVF author).
IT_MODULES_vindex_crash := vindex
FUZZERS += vindex_load
fuzz_vindex_load_MODULES := vindex

# build/bench/vindex_load: vindex_open of a saved 1M x 128-d index (flat, ivf_flat) next to
# hnswlib's save/load of its exact index on the same vectors; --index hnsw adds the graph, next
# to hnswlib's HierarchicalNSW.
BENCHES += vindex_load
bench_vindex_load_SRCS := bench/vindex_load/vindex_load.c bench/vindex_load/hnswlib_load_peer.cc
bench_vindex_load_MODULES := vindex
bench_vindex_load_CXXFLAGS := -Ibench/vindex_load -Wno-unused-parameter -Wno-sign-compare
bench_vindex_load_RUN := $(BUILD)/bench/vindex_load --n 1000000 --dim 128 --index flat,ivf_flat
