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

# ---- WebSocket ----
core_LDLIBS += -lwslay
DEB_PKGS += libwslay-dev
FUZZERS += ws_frame
fuzz_ws_frame_MODULES := core
