# vindex: vector index (flat, hnsw, ivf_flat), its unit tests and the ANN benchmark.
MODULES += vindex
vindex_DEPS :=
vindex_LDLIBS := -lm
DEB_PKGS += zlib1g-dev libhnswlib-dev
IT_MODULES_vindex_crash := vindex
FUZZERS += vindex_load
fuzz_vindex_load_MODULES := vindex

# build/bench/vindex_load: vindex_open of a saved 1M x 128-d index (flat, ivf_flat) next to
# hnswlib's save/load of its exact index on the same vectors.
BENCHES += vindex_load
bench_vindex_load_SRCS := bench/vindex_load/vindex_load.c bench/vindex_load/hnswlib_bf_peer.cc
bench_vindex_load_MODULES := vindex
bench_vindex_load_CXXFLAGS := -Ibench/vindex_load -Wno-unused-parameter -Wno-sign-compare
bench_vindex_load_RUN := $(BUILD)/bench/vindex_load --n 1000000 --dim 128 --index flat,ivf_flat
