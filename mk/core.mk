# core: the shared runtime (HTTP on libmicrohttpd, JSON on jansson, logs, metrics, config,
# worker pool, WebSocket on wslay) and its example server, benchmarks and fuzz targets.
MODULES += core
core_PKGS := libmicrohttpd jansson
DEB_PKGS += libmicrohttpd-dev libjansson-dev wrk nginx curl

PROGRAMS += core-example
prog_core-example_SRCS := src/core/example/main.c src/core/example/upgrade_echo.c
prog_core-example_MODULES := core

# Until the flagship takes `make run` over, it starts the runtime's example server.
RUN_CMD = $(BUILD)/core-example --port $(PORT)

# wrk against core-example and Debian's nginx, same body, same run.
BENCHES += http
bench_http_SRCS := bench/http/http.c
bench_http_RUN := $(BUILD)/bench/http --server $(BUILD)/core-example

# Parsers that see client bytes, each fuzzed on its own (no server needed).
FUZZERS += router multipart json
fuzz_router_MODULES := core
fuzz_multipart_MODULES := core
fuzz_json_MODULES := core

# ---- WebSocket ----
core_LDLIBS += -lwslay
DEB_PKGS += libwslay-dev
FUZZERS += ws_frame ws_handshake
fuzz_ws_frame_MODULES := core
fuzz_ws_handshake_MODULES := core

# Idle WebSockets on core-example's hub against Node's `ws` (Debian's node-ws), same run.
DEB_PKGS += node-ws
BENCHES += ws
bench_ws_SRCS := bench/ws/ws.c
bench_ws_MODULES := core
bench_ws_RUN := $(BUILD)/bench/ws --server $(BUILD)/core-example --peer bench/ws/peer.js
