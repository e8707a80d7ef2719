# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bootback: one non-recursive Makefile.  Each folder contributes a
# module.mk that appends to the variables below; this file only holds the
# common flags and the top-level targets.
#
#   make                 build everything
#   make check           build, then run the default test suite
#   make check-slow      the slow suite (large images, real distributions)
#   make check-valgrind  the default suite with every bootback process under valgrind
#   make fuzz            every libFuzzer target (lab YAML, domain XML, chunk,
#                        index and manifest decoding, the plugin) for
#                        FUZZ_TIME seconds each (default 600)
#   make bench           benchmarks (bench/), side by side with their peers
#   make deps            apt-get install every build and test dependency
#   make demo            deps + build + the main job on a demo VM
#   make install         honours PREFIX and DESTDIR

PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
DESTDIR     ?=
PKG_CONFIG  ?= pkg-config
CC          ?= cc

# The one version of everything built here (programs, plugin, man pages).
PACKAGE_VERSION := 0.1

WARN        := -Wall -Wextra -Wshadow -Wvla -Werror -Wno-unused-parameter
CFLAGS      ?= -O2 -g
ALL_CFLAGS  := -std=gnu11 $(WARN) -D_GNU_SOURCE -fPIC -pthread $(CFLAGS) \
               -DPACKAGE_VERSION='"$(PACKAGE_VERSION)"' \
               -I$(CURDIR) -MMD -MP
LDFLAGS     ?=

# Libraries, all through pkg-config.
PC_REPO     := libzstd openssl jansson zlib libnfs libisal libcurl libxml-2.0
PC_INGEST   := libnbd
PC_CATALOG  := sqlite3
PC_CLI      := libnbd sqlite3 jansson
# intel-ipsec-mb (multi-buffer SHA-256, recovery/repo/chunk.c) has no
# pkg-config file and exists for x86-64 only: used where it links, else
# OpenSSL alone hashes (the same digests).  Whatever links libbbrepo.a
# links $(IPSEC_MB_LIBS) too.
IPSEC_MB_LIBS := $(shell printf '\043include <intel-ipsec-mb.h>\nint main (void) { return !alloc_mb_mgr (0); }\n' | \
                   $(CC) -x c - -lIPSec_MB -o /dev/null 2>/dev/null && echo -lIPSec_MB)
pc_cflags    = $(shell $(PKG_CONFIG) --cflags $(1) 2>/dev/null)
pc_libs      = $(shell $(PKG_CONFIG) --libs $(1) 2>/dev/null)

# Fuzz targets (libFuzzer): built with clang when it can link
# -fsanitize=fuzzer, from the sources (so the library is instrumented
# too); each module adds its own to FUZZERS (and to TEST_BINS when
# FUZZ_OK).  Their test-fuzz.sh run each briefly in `make check`.
FUZZ_CC     ?= clang
FUZZ_TIME   ?= 600
FUZZ_OK     := $(shell echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' | \
                 $(FUZZ_CC) -fsanitize=fuzzer,address -x c - -o /dev/null 2>/dev/null && echo yes)
FUZZ_BASE   := -std=gnu11 -D_GNU_SOURCE -g -O1 -pthread -I$(CURDIR) \
               -DPACKAGE_VERSION='"$(PACKAGE_VERSION)"' \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZERS     :=

# Filled in by the module.mk files.
BINS        :=
LIBS_A      :=
PLUGINS     :=
MANS        :=
TESTS       :=
TESTS_SLOW  :=
TEST_BINS   :=
INSTALLED   :=
BENCHES     :=
DEPS        := build-essential pkg-config perl
CLEAN       :=

all: build

# In dependency order (docs/design.md, "Parts and layering"): a module.mk
# may use the variables of the ones above it (REPO_A, INSTANT_LIBS, ...),
# never of those below.
include recovery/util/module.mk
include recovery/virt/module.mk
include recovery/repo/module.mk
include nbd-plugin/module.mk
include recovery/catalog/module.mk
include recovery/ingest/module.mk
include recovery/instant/module.mk
include recovery/scan/module.mk
include lab/module.mk
include verify/module.mk
include web/module.mk
include recovery/cli/module.mk
include images/module.mk
include tests/module.mk
include demo/module.mk
include bench/backup/module.mk
include bench/crypt/module.mk
include bench/fleet/module.mk
include bench/gc/module.mk
include bench/ingest/module.mk
include bench/instant/module.mk
include bench/instant-many/module.mk
include bench/migrate-delta/module.mk
include bench/nfs/module.mk
include bench/scan/module.mk
include bench/s3/module.mk
include bench/serve/module.mk
include bench/trace/module.mk
include bench/verdict/module.mk
include bench/verify/module.mk
include bench/web/module.mk

# make fuzz: each target for FUZZ_TIME seconds (default 600), keeping
# its corpus in tests/tmp/fuzz/NAME/.
fuzz: $(FUZZERS)
	@set -e; for f in $(FUZZERS); do \
	  d=tests/tmp/fuzz/$$(basename $$f); mkdir -p $$d; \
	  echo "fuzz: $$f for $(FUZZ_TIME)s (corpus $$d)"; \
	  $$f -max_total_time=$(FUZZ_TIME) -timeout=20 -rss_limit_mb=4096 \
	    -print_final_stats=1 $$d; \
	done

build: $(LIBS_A) $(BINS) $(PLUGINS) $(MANS) $(TEST_BINS)

%.o: %.c
	$(CC) $(ALL_CFLAGS) $(EXTRA_CFLAGS_$(dir $<)) -c -o $@ $<

%.1: %.pod
	pod2man --section=1 --center=bootback --release="bootback $(PACKAGE_VERSION)" $< $@

# Tests side by side in make check (tests/run: TEST_JOBS); TEST_JOBS=1 for one at a time.
TEST_JOBS ?= 2

check: build
	@TEST_JOBS=$(TEST_JOBS) tests/run $(TESTS)

check-slow: build
	@tests/run $(TESTS_SLOW)

check-valgrind: build
	@BOOTBACK_VALGRIND=1 tests/run $(TESTS)

deps:
	@tests/install-deps $(sort $(DEPS))
	@$(DEPS_EXTRA) true

install: build $(INSTALLED)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 644 $(MANS) $(DESTDIR)$(MANDIR)/man1/
	$(INSTALL_EXTRA)

bench: build
	@for b in $(BENCHES); do echo "== $$b"; $$b || exit 1; done

check-style:
	@tests/check-style

clean:
	rm -f $(LIBS_A) $(BINS) $(PLUGINS) $(MANS) $(TEST_BINS) $(CLEAN)
	find recovery nbd-plugin lab verify web tests bench \( -name '*.o' -o -name '*.d' \) -type f -delete 2>/dev/null || true

.PHONY: all build check check-slow check-valgrind deps install clean check-style demo bench images fuzz

-include $(shell find recovery nbd-plugin lab verify web tests bench -name '*.d' -type f 2>/dev/null)
