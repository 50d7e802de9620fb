# Build for lookalike (and later blogd, meterd) and the shared C runtime.
#
# Directories are the architecture: src/<module>/*.c is one static library per module,
# mk/<module>.mk says what that module needs (Debian packages, pkg-config names, other
# modules) and which programs, benchmarks and fuzz targets it owns. This file only holds
# the generic rules, so adding a module never means editing it.
#
#   make deps            install every Debian package the project needs (idempotent)
#   make / make all      build every program, benchmark and test binary into build/
#   make test            unit + fuzz-corpus replay + integration tests
#   make test SAN=address,undefined   the same, sanitized, in build/san-address-undefined/
#   make test SAN=thread              ThreadSanitizer build, in build/san-thread/
#   make run             build and start the flagship on its embedded default
#   make bench           run every benchmark (each prints JSON lines, ours and the peer's)
#   make fuzz            run each libFuzzer target for FUZZ_SECONDS (default 60)
#   make format / check-format        clang-format the tree / fail on a diff
.DEFAULT_GOAL := all
SHELL := /bin/bash

comma := ,
SAN ?=
CC := gcc
CXX := g++
CLANG := clang
AR := ar

ifeq ($(strip $(SAN)),)
BUILD := build
OPTFLAGS := -O2 -D_FORTIFY_SOURCE=2
SANFLAGS :=
else
BUILD := build/san-$(subst $(comma),-,$(SAN))
OPTFLAGS := -O1 -fno-omit-frame-pointer
SANFLAGS := -fsanitize=$(SAN) -fno-sanitize-recover=all
endif

WARNFLAGS := -Wall -Wextra -Werror
COMMONFLAGS := -g $(OPTFLAGS) $(SANFLAGS) $(WARNFLAGS) -fstack-protector-strong -pthread -D_GNU_SOURCE \
	-Isrc -MMD -MP
CFLAGS_ALL = -std=c11 $(COMMONFLAGS) $(EXTRA_CFLAGS)
CXXFLAGS_ALL = -std=c++17 $(COMMONFLAGS) $(EXTRA_CXXFLAGS)
LDFLAGS_ALL = -pthread $(SANFLAGS) $(EXTRA_LDFLAGS)

# Where the shared models and data sets live; tests and `make run` default to them.
SHARED_DIR ?= $(abspath ../shared)
MODELS_DIR ?= $(SHARED_DIR)/models
DATA_DIR ?= $(SHARED_DIR)/data
export SHARED_DIR MODELS_DIR DATA_DIR

FUZZ_SECONDS ?= 60
JOBS ?= $(shell nproc)
PORT ?= 8080

# Collected from mk/*.mk.
MODULES :=
PROGRAMS :=
BENCHES :=
FUZZERS :=
DEB_PKGS := build-essential clang libclang-rt-14-dev libfuzzer-14-dev clang-format pkg-config \
	libcriterion-dev ca-certificates curl
include $(sort $(wildcard mk/*.mk))

# Sources that are a program's main() stay out of the module libraries.
MAIN_SRCS := $(foreach p,$(PROGRAMS),$(prog_$(p)_SRCS)) $(foreach b,$(BENCHES),$(bench_$(b)_SRCS))

# ---------------------------------------------------------------------------------------
# Modules: src/<m>/*.c -> $(BUILD)/lib<m>.a
#   <m>_DEPS     modules it links against, in link order
#   <m>_PKGS     pkg-config names (cflags and libs)
#   <m>_LDLIBS   further -l flags
#   <m>_CFLAGS   extra compile flags for this module's sources
define module_rules
mod_$(1)_srcs := $$(filter-out $$(MAIN_SRCS),$$(wildcard src/$(1)/*.c))
mod_$(1)_objs := $$(patsubst src/%.c,$$(BUILD)/obj/%.o,$$(mod_$(1)_srcs))
$$(BUILD)/obj/$(1)/%.o: src/$(1)/%.c
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS_ALL) $$($(1)_CFLAGS) $$(call pkg_cflags,$$($(1)_PKGS)) -c $$< -o $$@
$$(BUILD)/lib$(1).a: $$(mod_$(1)_objs)
	@mkdir -p $$(@D)
	@rm -f $$@
	$$(AR) rcs $$@ $$^
endef

pkg_cflags = $(if $(strip $(1)),$(shell pkg-config --cflags $(1) 2>/dev/null))
pkg_libs = $(if $(strip $(1)),$(shell pkg-config --libs $(1) 2>/dev/null))
# Link inputs for a list of modules: their archives, then every package and library they need.
mod_closure = $(foreach m,$(1),$(m) $($(m)_DEPS))
mod_libs = $(foreach m,$(call uniq,$(call mod_closure,$(1))),$(BUILD)/lib$(m).a)
mod_ldlibs = $(call pkg_libs,$(sort $(foreach m,$(call mod_closure,$(1)),$($(m)_PKGS)))) \
	$(foreach m,$(call uniq,$(call mod_closure,$(1))),$($(m)_LDLIBS)) -lm
mod_cflags = $(call pkg_cflags,$(sort $(foreach m,$(call mod_closure,$(1)),$($(m)_PKGS))))
uniq = $(if $(1),$(firstword $(1)) $(call uniq,$(filter-out $(firstword $(1)),$(1))))

$(foreach m,$(MODULES),$(eval $(call module_rules,$(m))))

# C and C++ sources outside src/<m>/*.c (programs, benchmarks, tests) compile here.
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) $(OBJ_CFLAGS) -c $< -o $@
$(BUILD)/obj/%.o: %.cc
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS_ALL) $(OBJ_CXXFLAGS) -c $< -o $@

# ---------------------------------------------------------------------------------------
# Programs: $(BUILD)/<name>
#   PROGRAMS += name ; prog_name_SRCS := ... ; prog_name_MODULES := modules in link order ;
#   prog_name_LDLIBS, prog_name_CFLAGS
link_for = $(if $(filter %.cc,$(1)),$(CXX),$(CC))
define program_rules
prog_$(1)_OBJS := $$(patsubst %.cc,$$(BUILD)/obj/%.o,$$(patsubst %.c,$$(BUILD)/obj/%.o,$$(prog_$(1)_SRCS)))
$$(prog_$(1)_OBJS): OBJ_CFLAGS := $$(call mod_cflags,$$(prog_$(1)_MODULES)) $$(prog_$(1)_CFLAGS)
$$(prog_$(1)_OBJS): OBJ_CXXFLAGS := $$(call mod_cflags,$$(prog_$(1)_MODULES)) $$(prog_$(1)_CXXFLAGS)
$$(BUILD)/$(1): $$(prog_$(1)_OBJS) $$(call mod_libs,$$(prog_$(1)_MODULES))
	$$(call link_for,$$(prog_$(1)_SRCS)) $$(LDFLAGS_ALL) -o $$@ $$^ $$(call mod_ldlibs,$$(prog_$(1)_MODULES)) $$(prog_$(1)_LDLIBS)
endef
$(foreach p,$(PROGRAMS),$(eval $(call program_rules,$(p))))

# Benchmarks: $(BUILD)/bench/<name>
#   BENCHES += name ; bench_name_SRCS ; bench_name_MODULES ; bench_name_LDLIBS
#   bench_name_RUN: the command `make bench` runs (default: the binary with no arguments)
define bench_rules
bench_$(1)_OBJS := $$(patsubst %.cc,$$(BUILD)/obj/%.o,$$(patsubst %.c,$$(BUILD)/obj/%.o,$$(bench_$(1)_SRCS)))
$$(bench_$(1)_OBJS): OBJ_CFLAGS := $$(call mod_cflags,$$(bench_$(1)_MODULES)) $$(bench_$(1)_CFLAGS)
$$(bench_$(1)_OBJS): OBJ_CXXFLAGS := $$(call mod_cflags,$$(bench_$(1)_MODULES)) $$(bench_$(1)_CXXFLAGS)
$$(BUILD)/bench/$(1): $$(bench_$(1)_OBJS) $$(call mod_libs,$$(bench_$(1)_MODULES))
	@mkdir -p $$(@D)
	$$(call link_for,$$(bench_$(1)_SRCS)) $$(LDFLAGS_ALL) -o $$@ $$^ $$(call mod_ldlibs,$$(bench_$(1)_MODULES)) $$(bench_$(1)_LDLIBS)
endef
$(foreach b,$(BENCHES),$(eval $(call bench_rules,$(b))))

# ---------------------------------------------------------------------------------------
# Unit tests: tests/unit/<m>/*.c -> $(BUILD)/tests/unit-<m> (Criterion), linked with <m>.
UNIT_MODULES := $(foreach m,$(MODULES),$(if $(wildcard tests/unit/$(m)/*.c),$(m)))
define unit_rules
unit_$(1)_OBJS := $$(patsubst %.c,$$(BUILD)/obj/%.o,$$(wildcard tests/unit/$(1)/*.c))
$$(unit_$(1)_OBJS): OBJ_CFLAGS := $$(call mod_cflags,$(1)) -Itests/unit
$$(BUILD)/tests/unit-$(1): $$(unit_$(1)_OBJS) $$(call mod_libs,$(1))
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS_ALL) -o $$@ $$^ $$(call mod_ldlibs,$(1)) $$($(1)_TEST_LDLIBS) -lcriterion
endef
$(foreach m,$(UNIT_MODULES),$(eval $(call unit_rules,$(m))))
UNIT_BINS := $(foreach m,$(UNIT_MODULES),$(BUILD)/tests/unit-$(m))

# Integration test helpers written in C: tests/integration/<name>.c -> $(BUILD)/tests/<name>,
# linked with the modules in IT_MODULES_<name> (default: core).
IT_C := $(wildcard tests/integration/*.c)
define it_rules
it_$(1)_mods := $$(or $$(IT_MODULES_$(1)),core)
$$(BUILD)/obj/tests/integration/$(1).o: OBJ_CFLAGS := $$(call mod_cflags,$$(it_$(1)_mods))
$$(BUILD)/tests/$(1): $$(BUILD)/obj/tests/integration/$(1).o $$(call mod_libs,$$(it_$(1)_mods))
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS_ALL) -o $$@ $$^ $$(call mod_ldlibs,$$(it_$(1)_mods))
endef
$(foreach t,$(IT_C),$(eval $(call it_rules,$(basename $(notdir $(t))))))
IT_BINS := $(foreach t,$(IT_C),$(BUILD)/tests/$(basename $(notdir $(t))))

# ---------------------------------------------------------------------------------------
# Fuzz targets: fuzz/<name>/<name>.c defines LLVMFuzzerTestOneInput; fuzz/<name>/corpus/
# holds the seed corpus. FUZZERS += name ; fuzz_name_MODULES := modules it links.
# `make test` replays every corpus through a plain driver (fuzz/replay.c) built with the
# same flags (so SAN=... applies); `make fuzz` builds real libFuzzer binaries with clang.
define fuzz_rules
$$(BUILD)/obj/fuzz/$(1)/$(1).o: OBJ_CFLAGS := $$(call mod_cflags,$$(fuzz_$(1)_MODULES))
$$(BUILD)/fuzz/replay-$(1): $$(BUILD)/obj/fuzz/$(1)/$(1).o $$(BUILD)/obj/fuzz/replay.o $$(call mod_libs,$$(fuzz_$(1)_MODULES))
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS_ALL) -o $$@ $$^ $$(call mod_ldlibs,$$(fuzz_$(1)_MODULES))
build/libfuzzer/$(1): fuzz/$(1)/$(1).c $$(foreach m,$$(call uniq,$$(call mod_closure,$$(fuzz_$(1)_MODULES))),$$(mod_$$(m)_srcs))
	@mkdir -p $$(@D)
	$$(CLANG) -std=c11 -g -O1 -D_GNU_SOURCE -Isrc -pthread -fsanitize=fuzzer,address,undefined \
		$$(foreach m,$$(call uniq,$$(call mod_closure,$$(fuzz_$(1)_MODULES))),$$($$(m)_CFLAGS)) \
		$$(call mod_cflags,$$(fuzz_$(1)_MODULES)) -o $$@ $$^ $$(call mod_ldlibs,$$(fuzz_$(1)_MODULES))
endef
$(foreach f,$(FUZZERS),$(eval $(call fuzz_rules,$(f))))
FUZZ_REPLAY_BINS := $(foreach f,$(FUZZERS),$(BUILD)/fuzz/replay-$(f))

# ---------------------------------------------------------------------------------------
PROGRAM_BINS := $(foreach p,$(PROGRAMS),$(BUILD)/$(p))
BENCH_BINS := $(foreach b,$(BENCHES),$(BUILD)/bench/$(b))
TEST_BINS := $(UNIT_BINS) $(IT_BINS) $(FUZZ_REPLAY_BINS)

.PHONY: all deps test unit run bench fuzz format check-format clean programs
all: $(PROGRAM_BINS) $(BENCH_BINS) $(TEST_BINS)
programs: $(PROGRAM_BINS)

deps:
	@scripts/deps.sh $(sort $(DEB_PKGS))

# The test runner takes the build directory; TESTS=pattern narrows it (e.g. TESTS=unit-core).
test: deps
	@$(MAKE) --no-print-directory -j$(JOBS) all
	@BUILD=$(BUILD) SAN=$(SAN) scripts/run-tests.sh $(TESTS)

run: deps
	@$(MAKE) --no-print-directory -j$(JOBS) programs
	@$(RUN_CMD)

bench: deps
	@$(MAKE) --no-print-directory -j$(JOBS) all
	@set -e; $(foreach b,$(BENCHES),echo "== bench $(b)" >&2; $(or $(bench_$(b)_RUN),$(BUILD)/bench/$(b));)

fuzz: deps $(foreach f,$(FUZZERS),build/libfuzzer/$(f))
	@set -e; for f in $(FUZZERS); do \
		mkdir -p build/fuzz-corpus/$$f; cp -n fuzz/$$f/corpus/* build/fuzz-corpus/$$f/ 2>/dev/null || true; \
		dict=""; [ -f fuzz/$$f/$$f.dict ] && dict="-dict=fuzz/$$f/$$f.dict"; \
		echo "== fuzz $$f for $(FUZZ_SECONDS)s" >&2; \
		build/libfuzzer/$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $$dict \
			build/fuzz-corpus/$$f fuzz/$$f/corpus; \
	done

FORMAT_FILES = $(shell git ls-files -co --exclude-standard -- '*.c' '*.h' '*.cc' 2>/dev/null)
format:
	@clang-format -i $(FORMAT_FILES)
check-format:
	@clang-format --dry-run --Werror $(FORMAT_FILES) && echo "format ok"

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
