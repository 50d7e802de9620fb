# load: the HTTP/1.1 load engine behind lookalike-load (src/load/load.h), its unit tests and
# the fuzz target of its response parser (the one parser here that reads a server's bytes).
MODULES += load
load_DEPS :=
FUZZERS += http_resp
fuzz_http_resp_MODULES := load
