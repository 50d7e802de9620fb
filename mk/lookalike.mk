# lookalike library parts: text analysis, BM25, fusion, colours, CSV, product JSON, catalogue.
MODULES += lookalike
lookalike_DEPS :=
lookalike_PKGS += jansson sqlite3
DEB_PKGS += libjansson-dev libsqlite3-dev
FUZZERS += csv
fuzz_csv_MODULES := lookalike
