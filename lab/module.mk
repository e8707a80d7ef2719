# SPDX-License-Identifier: LGPL-2.1-or-later
# lab/: liblab.a, the verification lab (lab/lab.h): definition (YAML),
# isolated network, lab VMs, runs and sandboxes.
LAB_SRC := $(filter-out lab/test-% lab/fuzz-%,$(wildcard lab/*.c))
LAB_OBJ := $(LAB_SRC:.c=.o)
LAB_A   := lab/liblab.a
LIBS_A  += $(LAB_A)
PC_LAB  := libfyaml libxml-2.0 libvirt libvirt-qemu jansson
# lab links instant (sessions), which links the catalog and the repository,
# and virt (libvirt): whatever links liblab.a links these after it.
LAB_LIBS = $(INGEST_A) $(REPO_A) $(VIRT_A) $(UTIL_A) $(call pc_libs,$(PC_LAB) sqlite3 $(PC_REPO) libnbd) $(IPSEC_MB_LIBS)
DEPS    += libfyaml-dev libxml2-dev libvirt-dev libjansson-dev iproute2 iptables
# a lab on another host: its commands go there through ssh (hostcmd.c)
DEPS    += openssh-client

$(LAB_OBJ) lab/test-conf.o lab/test-domain-xml.o lab/test-state.o lab/test-quick.o lab/test-console.o lab/test-activity.o lab/test-hostcmd.o: ALL_CFLAGS += $(call pc_cflags,$(PC_LAB))
$(LAB_A): $(LAB_OBJ) | $(VIRT_A)
	$(AR) rcs $@ $^

lab/test-conf: lab/test-conf.o $(LAB_A) $(INSTANT_A) $(CATALOG_A) $(REPO_A) $(VIRT_A) $(UTIL_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(LAB_LIBS) -lm -lpthread
lab/test-quick: lab/test-quick.o $(LAB_A) $(INSTANT_A) $(CATALOG_A) $(REPO_A) $(VIRT_A) $(UTIL_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(LAB_LIBS) -lm -lpthread
lab/test-domain-xml: lab/test-domain-xml.o $(LAB_A) $(INSTANT_A) $(CATALOG_A) $(REPO_A) $(VIRT_A) $(UTIL_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(LAB_LIBS) -lm -lpthread
lab/test-state: lab/test-state.o $(LAB_A) $(INSTANT_A) $(CATALOG_A) $(REPO_A) $(VIRT_A) $(UTIL_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(LAB_LIBS) -lm -lpthread
lab/test-console: lab/test-console.o $(LAB_A) $(INSTANT_A) $(CATALOG_A) $(REPO_A) $(VIRT_A) $(UTIL_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(LAB_LIBS) -lm -lpthread
lab/test-activity: lab/test-activity.o $(LAB_A) $(INSTANT_A) $(CATALOG_A) $(REPO_A) $(VIRT_A) $(UTIL_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(LAB_LIBS) -lm -lpthread
TEST_BINS += lab/test-conf lab/test-quick lab/test-domain-xml lab/test-state lab/test-console
TESTS     += lab/test-conf lab/test-quick lab/test-domain-xml lab/test-state lab/test-console
lab/test-hostcmd: lab/test-hostcmd.o $(LAB_A) $(INSTANT_A) $(CATALOG_A) $(REPO_A) $(VIRT_A) $(UTIL_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(LAB_LIBS) -lm -lpthread
TEST_BINS += lab/test-activity lab/test-hostcmd
TESTS     += lab/test-activity lab/test-hostcmd

# fuzz-lab (libFuzzer, see the Makefile): lab YAML, a point's <bb:verify>
# and the quick definition, the lab's check of rewritten XML.
# test-fuzz.sh runs it and recovery/instant/fuzz-domain-xml briefly.
LAB_FUZZ := lab/fuzz-lab
$(LAB_FUZZ): lab/fuzz-lab.c lab/conf.c lab/quick.c lab/domain-xml.c \
             recovery/instant/domain-xml.c recovery/instant/sanitize.c recovery/virt/xml.c $(UTIL_SRC)
	$(FUZZ_CC) $(FUZZ_BASE) $(call pc_cflags,libxml-2.0 libvirt libfyaml) -o $@ $^ \
	  $(call pc_libs,libxml-2.0 libfyaml)
ifeq ($(FUZZ_OK),yes)
TEST_BINS += $(LAB_FUZZ)
endif
FUZZERS   += $(LAB_FUZZ)
CLEAN     += $(LAB_FUZZ)
TESTS     += lab/test-fuzz.sh

# Slow suite: a lab of the debian image (nginx + PostgreSQL).
TESTS_SLOW += lab/test-lab-debian.sh
