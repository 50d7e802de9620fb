# lookalike library parts: text analysis, BM25, fusion, colours, CSV, product JSON, catalogue.
MODULES += lookalike
lookalike_DEPS := vindex
lookalike_PKGS += jansson sqlite3 libpq
# postgresql: the tests start a real server (tests/lib/pg_server.sh).
DEB_PKGS += libjansson-dev libsqlite3-dev libpq-dev postgresql
FUZZERS += csv
fuzz_csv_MODULES := lookalike
FUZZERS += product_json
fuzz_product_json_MODULES := lookalike
FUZZERS += text_search
fuzz_text_search_MODULES := lookalike
# Answers of other nodes in a fan-out, and the node snapshot file read at start.
FUZZERS += shard_wire snapshot_load
fuzz_shard_wire_MODULES := lookalike
fuzz_snapshot_load_MODULES := lookalike
BENCHES += bm25
bench_bm25_SRCS := bench/bm25/bm25.c
bench_bm25_MODULES := lookalike

# ---- lookalike program: service, API, subcommands ----
PROGRAMS += lookalike
prog_lookalike_SRCS := src/lookalike/main.c src/lookalike/service.c src/lookalike/search.c \
	src/lookalike/api.c src/lookalike/api_openapi.c src/lookalike/cmd_serve.c src/lookalike/cmd_ingest.c \
	src/lookalike/cmd_tools.c src/lookalike/cmd_embed.c src/lookalike/search_fanout.c \
	src/lookalike/service_snapshot.c src/lookalike/cluster.c src/lookalike/api_cluster.c \
	src/lookalike/membership_etcd.c
prog_lookalike_MODULES := lookalike embed vindex cluster core
# Fan-out to other nodes' shards over HTTP (src/lookalike/cluster.c).
prog_lookalike_LDLIBS := -lcurl
DEB_PKGS += libcurl4-openssl-dev
prog_lookalike_CFLAGS := -DLOOKALIKE_DEFAULT_MODEL='"$(MODELS_DIR)/mobilenet_v1_0.75_224.onnx"'
# The web page (web/, plain files, no build step) is served from the source tree unless --web
# (LOOKALIKE_WEB) points elsewhere, so an edit shows on the next reload.
prog_lookalike_CFLAGS += -DLOOKALIKE_DEFAULT_WEB='"$(abspath web)"'
# The web page's browser tests (tests/e2e/) drive Debian's chromium through npm playwright-core;
# ui.sh installs npm itself when the command is missing, since Debian's npm package conflicts
# with the nodejs builds that ship their own.
DEB_PKGS += chromium nodejs
# `make run`: ingest the demo catalogue on first start, then serve (replaces the core example).
RUN_CMD = scripts/run-lookalike.sh $(BUILD) $(PORT)

# lookalike-load: the stress test (many keep-alive clients, a mix of searches and inserts).
PROGRAMS += lookalike-load
prog_lookalike-load_SRCS := src/lookalike/load_main.c
prog_lookalike-load_MODULES := load core

# lookalike-synth: a synthetic catalogue of vector products (JSON lines) for speed figures.
PROGRAMS += lookalike-synth
prog_lookalike-synth_SRCS := tools/lookalike/synth.c
prog_lookalike-synth_MODULES :=

# build/bench/lookalike: lookalike-load against `lookalike serve` on a 100,000-product synthetic
# catalogue (similar, text, filter, hybrid) and on the demo catalogue (image search), next to the
# embed engine's own throughput (embed-prof) in the same run. Catalogues are cached in
# build/bench-data (the first run ingests them: minutes).
BENCHES += lookalike
bench_lookalike_SRCS := bench/lookalike/lookalike.c
bench_lookalike_LDLIBS := -ljansson
bench_lookalike_RUN := $(BUILD)/bench/lookalike --products 100000 --seconds 15

# build/bench/quality: precision@10 of image search on the demo catalogue (leave-one-out, each
# model in MODELS_DIR) and on Fashion-MNIST (train as catalogue, test as queries), with raw-pixel
# cosine as the baseline. Catalogue embeddings are cached in build/bench-data/quality.
BENCHES += quality
bench_quality_SRCS := bench/quality/quality.c
bench_quality_MODULES := embed vindex
bench_quality_LDLIBS := -lz
bench_quality_RUN := $(BUILD)/bench/quality --fm-queries 1000

# tests/integration/lookalike_bulk.c: thousands of catalogue writes for the cluster test.
IT_MODULES_lookalike_bulk := lookalike
