# vindex: vector index (flat, hnsw, ivf_flat), its unit tests and the ANN benchmark.
MODULES += vindex
vindex_DEPS :=
vindex_LDLIBS := -lm
DEB_PKGS += zlib1g-dev libhnswlib-dev
