# SPDX-License-Identifier: LGPL-2.1-or-later
# nbd-plugin: nbdkit-bootback-plugin.so (plugin.c = nbdkit callbacks,
# serve.c = the logic), its man page, its tests and its fuzz targets.
PLUGIN_SO      := nbd-plugin/nbdkit-bootback-plugin.so
PLUGIN_OBJ     := nbd-plugin/plugin.o nbd-plugin/serve.o nbd-plugin/trace.o
PLUGIN_DIR     := $(shell $(PKG_CONFIG) --variable=plugindir nbdkit 2>/dev/null)
PLUGINS        += $(PLUGIN_SO)
MANS           += nbd-plugin/nbdkit-bootback-plugin.1
DEPS           += nbdkit nbdkit-plugin-dev libnbd-bin libnbd-dev qemu-utils \
                  e2fsprogs fuse3 fdisk xxd python3-libnbd valgrind clang fio
INSTALL_EXTRA  += install -d $(DESTDIR)$(PLUGIN_DIR) && \
                  install -m 755 $(PLUGIN_INST) $(DESTDIR)$(PLUGIN_DIR)/nbdkit-bootback-plugin.so ;

NBDP_OBJ := $(PLUGIN_OBJ) nbd-plugin/helper-repo.o \
            $(patsubst %.c,%.o,$(wildcard nbd-plugin/test-*.c))
$(NBDP_OBJ): ALL_CFLAGS += $(call pc_cflags,nbdkit $(PC_REPO))
# Only plugin_init (NBDKIT_DLL_PUBLIC) is exported; the static libraries'
# symbols stay inside the .so.
$(PLUGIN_OBJ): ALL_CFLAGS += -fvisibility=hidden

PLUGIN_LINK = $(CC) $(ALL_CFLAGS) -shared -Wl,--exclude-libs,ALL -Wl,-z,nodelete -o $@ \
	  $^ $(LDFLAGS) $(REPO_LIBS)
$(PLUGIN_SO): $(PLUGIN_OBJ) $(REPO_A) $(UTIL_A)
	$(PLUGIN_LINK)
# What `make install` installs: without the test hooks (recovery/util/hooks.c).
PLUGIN_INST := nbd-plugin/nbdkit-bootback-plugin.installed.so
$(PLUGIN_INST): $(UTIL_RELEASE_O) $(PLUGIN_OBJ) $(REPO_A) $(UTIL_A)
	$(PLUGIN_LINK)
INSTALLED   += $(PLUGIN_INST)
CLEAN       += $(PLUGIN_INST)

# helper-repo: makes repositories for the tests (writer API).
nbd-plugin/helper-repo: nbd-plugin/helper-repo.o $(REPO_A) $(UTIL_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(REPO_LIBS)
TEST_BINS += nbd-plugin/helper-repo

NBDP_TESTS := $(patsubst %.c,%,$(wildcard nbd-plugin/test-*.c))
$(NBDP_TESTS): %: %.o nbd-plugin/serve.o $(REPO_A) $(UTIL_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(REPO_LIBS)
TEST_BINS += $(NBDP_TESTS)
TESTS     += $(NBDP_TESTS) $(sort $(wildcard nbd-plugin/test-*.sh))
TESTS_SLOW += $(sort $(wildcard nbd-plugin/slow-*.sh))

# Fuzz targets (libFuzzer, see the Makefile): test-fuzz.sh runs each
# briefly in `make check`.
FUZZ_FLAGS := $(FUZZ_BASE) $(call pc_cflags,nbdkit $(PC_REPO))
FUZZ_LIBSRC := $(REPO_SRC) $(UTIL_SRC)
NBDP_FUZZ  := nbd-plugin/fuzz-decode nbd-plugin/fuzz-plugin nbd-plugin/fuzz-trace
nbd-plugin/fuzz-decode: nbd-plugin/fuzz-decode.c $(FUZZ_LIBSRC)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $^ $(REPO_LIBS)
nbd-plugin/fuzz-trace: nbd-plugin/fuzz-trace.c $(FUZZ_LIBSRC)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $^ $(REPO_LIBS)
nbd-plugin/fuzz-plugin: nbd-plugin/fuzz-plugin.c nbd-plugin/nbdkit-stubs.c \
                        nbd-plugin/plugin.c nbd-plugin/serve.c nbd-plugin/trace.c \
                        $(FUZZ_LIBSRC)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $^ $(REPO_LIBS)
ifeq ($(FUZZ_OK),yes)
TEST_BINS += $(NBDP_FUZZ)
endif
FUZZERS   += $(NBDP_FUZZ)
CLEAN     += $(NBDP_FUZZ)
