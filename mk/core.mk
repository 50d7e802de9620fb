MODULES += core
core_LDLIBS += -lwslay
DEB_PKGS += libwslay-dev
FUZZERS += ws_frame
fuzz_ws_frame_MODULES := core
