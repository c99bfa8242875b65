# utarget build. `make` builds build/utargetd and build/utargetcli;
# `make run` starts the daemon on the embedded default config;
# `make check` builds with -Werror (gcc, and clang when present) and runs
# every test, the integration tests against a sanitizer (ASan + UBSan) build.

CC       ?= gcc
BUILD    ?= build
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
CPPFLAGS += -std=c11 -D_GNU_SOURCE -Isrc -Iinclude -MMD -MP
# The one version number (VERSION): utargetd -V, the control API's version,
# utargetcli version, the library's file name, utarget.pc, the Python module
# and debian/changelog (checked by tests/integration/test_install.py).
VERSION  := $(shell cat VERSION)
CPPFLAGS += -DUTARGET_VERSION='"$(VERSION)"'
# Compiled-in system paths, used when utargetd runs as root (see
# docs/install.md); GNU would put sysconfdir under the prefix, but the
# daemon's config must be where the administrator (and target.service
# habits) expect it: /etc/utarget.
SYSCONFDIR ?= /etc
RUNSTATEDIR ?= /run
CPPFLAGS += -DUTARGET_SYSCONFDIR='"$(SYSCONFDIR)"' -DUTARGET_RUNSTATEDIR='"$(RUNSTATEDIR)"'
LDLIBS   := -lisal -lcrypto -ljansson -luring -lrbd -lrados -lpthread
CLI_LIBS := -ljansson -lreadline

CORE_DIRS := src/util src/io src/backstore src/scsi src/iscsi src/control
CORE_SRCS := $(sort $(foreach d,$(CORE_DIRS),$(wildcard $(d)/*.c)))
DAEMON_SRCS := $(wildcard src/daemon/*.c)
# utargetcli links no core object but the size formatting it shares
CLI_SRCS := $(wildcard src/cli/*.c) src/util/human.c
UNIT_SRCS := $(wildcard tests/unit/test_*.c)

obj = $(patsubst %.c,$(1)/obj/%.o,$(2))
CORE_OBJS := $(call obj,$(BUILD),$(CORE_SRCS))
DAEMON_OBJS := $(call obj,$(BUILD),$(DAEMON_SRCS))
CLI_OBJS := $(call obj,$(BUILD),$(CLI_SRCS))
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

.PHONY: all run check deps clean sanitize unit integration clang-check conformance bench fuzz
all: $(BUILD)/utargetd $(BUILD)/utargetcli

# libutarget (.so and .a) and utargetcli's link on it
include src/lib/lib.mk

deps:
	@scripts/deps.sh build

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	@$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -c $< -o $@

# The version and paths are compiled in: objects follow VERSION and the
# flags file (a changed PREFIX/SYSCONFDIR rebuilds what uses them).
$(CORE_OBJS) $(DAEMON_OBJS) $(CLI_OBJS): VERSION

$(BUILD)/libutcore.a: $(CORE_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/utargetd: $(DAEMON_OBJS) $(BUILD)/libutcore.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/utargetcli: $(CLI_OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(CLI_LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libutcore.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $< $(BUILD)/libutcore.a $(LDLIBS) -lcmocka

run: deps all
	@scripts/run-default.sh $(BUILD)/utargetd

# Sanitizer build of everything, used by the tests.
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
sanitize:
	@$(MAKE) --no-print-directory BUILD=build/san CFLAGS="$(SAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" all $(patsubst $(BUILD)/%,build/san/%,$(UNIT_BINS))

# Warnings-as-errors build under clang too (issue: "clean under gcc and clang").
clang-check:
	@if command -v clang >/dev/null; then \
	  $(MAKE) --no-print-directory BUILD=build/clang CC=clang all; \
	else echo "clang not installed: skipping the clang build"; fi

unit: sanitize
	@set -e; for t in $(patsubst $(BUILD)/%,build/san/%,$(UNIT_BINS)); do echo "== $$t"; $$t; done

integration: all sanitize
	UTARGETD=$(CURDIR)/build/san/utargetd UTARGETCLI=$(CURDIR)/build/san/utargetcli \
	  pytest-3 -q tests/integration

# libiscsi's conformance suite against the sanitizer build (issue 7), on a
# fileio LUN and on an RBD image of a throwaway Ceph cluster (issue 16), and
# its persistent reservation tests across two gateways (issue 18).
conformance: all sanitize
	@scripts/conformance.sh build/san/utargetd
	@BACKSTORE=rbd CONFORMANCE_TIMEOUT=900 scripts/conformance.sh build/san/utargetd
	@# two gateways on one image, cluster persistent reservations (issue 18)
	@BACKSTORE=rbd GATEWAYS=2 CONFORMANCE_TIMEOUT=900 scripts/conformance.sh \
	  build/san/utargetd 'ALL.Prin*,ALL.Prout*'

# utargetd against tgt and istgt side by side (docs/performance.md);
# `make bench BENCH_ARGS=--quick` for a short run.
bench: all
	bench/run.sh $(BENCH_ARGS)

# bench/ddperf: the benchmark's own initiator (header + data digests); built by
# bench/run.sh and tests/integration/test_ddperf.py, not by `all`.
$(BUILD)/bench/ddperf: bench/ddperf.c src/iscsi/digest.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) $(LDFLAGS) -o $@ $^ -lisal

# libFuzzer harnesses (tests/fuzz), each for FUZZ_SECONDS; check runs 5 s each.
FUZZ_SECONDS ?= 60
fuzz:
	@scripts/fuzz.sh $(FUZZ_SECONDS)

check:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory clang-check
	@$(MAKE) --no-print-directory unit
	@if command -v clang >/dev/null; then scripts/fuzz.sh 5; \
	 else echo "clang not installed: skipping the fuzz run"; fi
	@$(MAKE) --no-print-directory integration
	@$(MAKE) --no-print-directory conformance

clean:
	rm -rf build

include mk/install.mk

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
