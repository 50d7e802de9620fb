# lookalike library parts: text analysis, BM25, fusion, colours, CSV, product JSON, catalogue.
MODULES += lookalike
lookalike_DEPS := vindex
lookalike_PKGS += jansson sqlite3
DEB_PKGS += libjansson-dev libsqlite3-dev
FUZZERS += csv
fuzz_csv_MODULES := lookalike
FUZZERS += product_json
fuzz_product_json_MODULES := lookalike
FUZZERS += text_search
fuzz_text_search_MODULES := lookalike
BENCHES += bm25
bench_bm25_SRCS := bench/bm25/bm25.c
bench_bm25_MODULES := lookalike
