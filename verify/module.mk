# SPDX-License-Identifier: LGPL-2.1-or-later
# verify/: libverify.a, the checks of a lab run, the run itself, reports
# (JSON, HTML, JUnit) and the run history in the catalog (verify/verify.h).
VERIFY_SRC := $(filter-out verify/test-%,$(wildcard verify/*.c))
VERIFY_OBJ := $(VERIFY_SRC:.c=.o)
VERIFY_A   := verify/libverify.a
LIBS_A     += $(VERIFY_A)
PC_VERIFY  := libvirt libxml-2.0 jansson libpng libcrypto
VERIFY_LIBS = $(call pc_libs,$(PC_VERIFY)) $(LAB_LIBS) -lm
DEPS       += libvirt-dev libxml2-dev libjansson-dev libpng-dev libssl-dev \
              libxml2-utils chromium tesseract-ocr tesseract-ocr-eng

$(VERIFY_OBJ) verify/test-report.o verify/test-history.o verify/test-sign.o \
verify/test-find-good.o verify/test-ocr.o: ALL_CFLAGS += $(call pc_cflags,$(PC_VERIFY) $(PC_LAB) $(PC_VIRT))
$(VERIFY_A): $(VERIFY_OBJ)
	$(AR) rcs $@ $^

verify/test-report: verify/test-report.o $(VERIFY_A) $(LAB_A) $(INSTANT_A) $(CATALOG_A) \
                    $(REPO_A) $(VIRT_A) $(UTIL_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(VERIFY_LIBS) -lpthread
TEST_BINS += verify/test-report
TESTS     += verify/test-report

verify/test-history: verify/test-history.o $(VERIFY_A) $(LAB_A) $(INSTANT_A) $(CATALOG_A) \
                     $(REPO_A) $(VIRT_A) $(UTIL_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(VERIFY_LIBS) -lpthread
TEST_BINS += verify/test-history
TESTS     += verify/test-history

verify/test-summary.o: ALL_CFLAGS += $(call pc_cflags,$(PC_VERIFY) $(PC_LAB) $(PC_VIRT))
verify/test-summary: verify/test-summary.o $(VERIFY_A) $(LAB_A) $(INSTANT_A) $(CATALOG_A) \
                     $(REPO_A) $(VIRT_A) $(UTIL_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(VERIFY_LIBS) -lpthread
TEST_BINS += verify/test-summary
TESTS     += verify/test-summary
verify/test-sign: verify/test-sign.o $(VERIFY_A) $(LAB_A) $(INSTANT_A) $(CATALOG_A) \
                  $(REPO_A) $(VIRT_A) $(UTIL_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(VERIFY_LIBS) -lpthread
TEST_BINS += verify/test-sign
TESTS     += verify/test-sign
verify/test-ocr: verify/test-ocr.o $(VERIFY_A) $(UTIL_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS)
TEST_BINS += verify/test-ocr
TESTS     += verify/test-ocr

verify/test-find-good: verify/test-find-good.o $(VERIFY_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS)
TEST_BINS += verify/test-find-good
TESTS     += verify/test-find-good

# The nightly schedule: systemd units, installed by make install.
SYSTEMD_UNITDIR ?= $(PREFIX)/lib/systemd/system
VERIFY_UNITS := verify/bootback-verify.service verify/bootback-verify.timer \
                verify/bootback-lab-reap.service verify/bootback-lab-reap.timer
INSTALL_EXTRA += install -d $(DESTDIR)$(SYSTEMD_UNITDIR); \
                 for u in $(VERIFY_UNITS); do \
                   sed 's|@BINDIR@|$(BINDIR)|g' $$u > $(DESTDIR)$(SYSTEMD_UNITDIR)/$$(basename $$u); \
                   chmod 644 $(DESTDIR)$(SYSTEMD_UNITDIR)/$$(basename $$u); \
                 done;
