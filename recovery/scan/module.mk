# SPDX-License-Identifier: LGPL-2.1-or-later
# recovery/scan: libbbscan.a, malware scanning of restore points (The
# Sleuth Kit and libfsxfs over NBD, libyara, libclamav), used only by the CLI.
PC_SCAN   := tsk libfsxfs libvslvm libbfio yara libclamav libnbd jansson libseccomp
SCAN_SRC  := $(filter-out recovery/scan/test-%,$(wildcard recovery/scan/*.c))
SCAN_OBJ  := $(SCAN_SRC:.c=.o)
SCAN_A    := recovery/scan/libbbscan.a
SCAN_LIBS := $(call pc_libs,$(PC_SCAN)) -lstdc++
LIBS_A    += $(SCAN_A)
DEPS      += libtsk-dev libfsxfs-dev libvslvm-dev libbfio-dev libyara-dev libclamav-dev \
             libnbd-dev libseccomp-dev

$(SCAN_OBJ): ALL_CFLAGS += $(call pc_cflags,$(PC_SCAN))
$(SCAN_A): $(SCAN_OBJ)
	$(AR) rcs $@ $^

# scan_escape (test-scan.c)
recovery/scan/test-scan: %: %.o $(SCAN_A) $(REPO_A) $(UTIL_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(SCAN_LIBS) $(REPO_LIBS)
recovery/scan/test-scan.o: ALL_CFLAGS += $(call pc_cflags,$(PC_SCAN))
TEST_BINS += recovery/scan/test-scan
TESTS     += recovery/scan/test-scan
