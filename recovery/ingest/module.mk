# SPDX-License-Identifier: LGPL-2.1-or-later
# recovery/ingest: libbbingest.a, import of images and full restore
# (through qemu-img / qemu-nbd and libnbd).
INGEST_SRC := $(filter-out recovery/ingest/test-%,$(wildcard recovery/ingest/*.c))
INGEST_OBJ := $(INGEST_SRC:.c=.o)
INGEST_A   := recovery/ingest/libbbingest.a
LIBS_A     += $(INGEST_A)
DEPS       += libnbd-dev qemu-utils libvirt-dev libxml2-dev

$(INGEST_OBJ): ALL_CFLAGS += $(call pc_cflags,libnbd jansson libvirt libxml-2.0)
$(INGEST_A): $(INGEST_OBJ)
	$(AR) rcs $@ $^

# backup-xml.c's golden tests (backup-golden/*.out)
INGEST_TESTS := recovery/ingest/test-backup-xml
recovery/ingest/test-backup-xml.o: ALL_CFLAGS += $(call pc_cflags,libxml-2.0)
recovery/ingest/test-backup-xml: %: %.o $(INGEST_A) $(VIRT_A) $(UTIL_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(call pc_libs,libxml-2.0 libnbd) -lpthread
TEST_BINS += $(INGEST_TESTS)
TESTS += $(INGEST_TESTS)

# chunk-job.c's contract, read from a local file (test-chunk-job.c)
recovery/ingest/test-chunk-job.o: ALL_CFLAGS += $(call pc_cflags,libnbd jansson)
recovery/ingest/test-chunk-job: %: %.o $(INGEST_A) $(REPO_A) $(UTIL_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(call pc_libs,libnbd) $(REPO_LIBS)
TEST_BINS += recovery/ingest/test-chunk-job
TESTS += recovery/ingest/test-chunk-job
