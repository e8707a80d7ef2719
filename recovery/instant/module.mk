# SPDX-License-Identifier: LGPL-2.1-or-later
# recovery/instant: libbbinstant.a, instant-recovery sessions and migration
# (libvirt + libxml2), and the golden-file test of the domain XML rewrite.
PC_INSTANT    := libvirt libvirt-qemu libxml-2.0 openssl libnbd
INSTANT_SRC   := $(filter-out recovery/instant/test-% recovery/instant/fuzz-%,$(wildcard recovery/instant/*.c))
INSTANT_OBJ   := $(INSTANT_SRC:.c=.o)
INSTANT_A     := recovery/instant/libbbinstant.a
INSTANT_LIBS  := $(call pc_libs,$(PC_INSTANT))
LIBS_A        += $(INSTANT_A)
DEPS          += libvirt-dev libxml2-dev libvirt-daemon-system libvirt-clients \
                 qemu-system-x86 qemu-utils nbdkit libnbd-dev

INSTANT_TESTOBJ := $(patsubst %.c,%.o,$(wildcard recovery/instant/test-*.c))
$(INSTANT_OBJ) $(INSTANT_TESTOBJ): ALL_CFLAGS += $(call pc_cflags,$(PC_INSTANT) jansson sqlite3)
$(INSTANT_A): $(INSTANT_OBJ)
	$(AR) rcs $@ $^

recovery/instant/test-domain-xml: recovery/instant/test-domain-xml.o $(INSTANT_A) $(VIRT_A) $(UTIL_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(call pc_libs,libxml-2.0)
TEST_BINS += recovery/instant/test-domain-xml
TESTS     += recovery/instant/test-domain-xml
# The session state machine (session.c), against a catalog in /tmp.
recovery/instant/test-session-state: recovery/instant/test-session-state.o \
                                     $(INSTANT_A) $(INGEST_A) $(CATALOG_A) $(REPO_A) $(VIRT_A) \
                                     $(UTIL_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(INSTANT_LIBS) \
	  $(call pc_libs,jansson sqlite3) $(REPO_LIBS) -lm -lpthread
TEST_BINS += recovery/instant/test-session-state
TESTS     += recovery/instant/test-session-state
# The delta of migrate --onto and its undo journal (delta.c), in /tmp.
recovery/instant/test-delta: recovery/instant/test-delta.o \
                             $(INSTANT_A) $(INGEST_A) $(CATALOG_A) $(REPO_A) $(VIRT_A) $(UTIL_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(INSTANT_LIBS) \
	  $(call pc_libs,jansson sqlite3) $(REPO_LIBS) -lm -lpthread
TEST_BINS += recovery/instant/test-delta
TESTS     += recovery/instant/test-delta

# fuzz-domain-xml (libFuzzer, see the Makefile): the rewrite, its
# allow-list and the backup side's disk parser; lab/test-fuzz.sh runs it.
INSTANT_FUZZ := recovery/instant/fuzz-domain-xml
$(INSTANT_FUZZ): recovery/instant/fuzz-domain-xml.c recovery/instant/domain-xml.c \
                 recovery/instant/sanitize.c recovery/ingest/backup-xml.c \
                 recovery/virt/xml.c $(UTIL_SRC)
	$(FUZZ_CC) $(FUZZ_BASE) $(call pc_cflags,libxml-2.0 libvirt libnbd) -o $@ $^ \
	  $(call pc_libs,libxml-2.0)
ifeq ($(FUZZ_OK),yes)
TEST_BINS += $(INSTANT_FUZZ)
endif
FUZZERS   += $(INSTANT_FUZZ)
CLEAN     += $(INSTANT_FUZZ)
