# SPDX-License-Identifier: LGPL-2.1-or-later
# recovery/cli: the bootback program and its man page.
CLI_SRC := $(filter-out recovery/cli/test-%,$(wildcard recovery/cli/*.c))
CLI_OBJ := $(CLI_SRC:.c=.o)
CLI_BIN := recovery/cli/bootback
BINS    += $(CLI_BIN)
MANS    += recovery/cli/bootback.1
DEPS    += libjansson-dev libssl-dev

$(CLI_OBJ): ALL_CFLAGS += $(call pc_cflags,jansson sqlite3 libnbd libvirt)
CLI_LIBS := $(SCAN_A) $(WEB_A) $(VERIFY_A) $(LAB_A) $(INSTANT_A) $(INGEST_A) \
            $(CATALOG_A) $(REPO_A) $(VIRT_A) $(UTIL_A)
CLI_LINK  = $(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) \
	  $(call pc_libs,libnbd sqlite3 libvirt libxml-2.0 $(PC_REPO)) $(IPSEC_MB_LIBS) \
	  $(INSTANT_LIBS) $(call pc_libs,libfyaml libvirt-qemu zlib libpng) $(WEB_LIBS) $(SCAN_LIBS) \
	  $(CEPH_LIBS) -lm -lpthread
$(CLI_BIN): $(CLI_OBJ) $(CLI_LIBS)
	$(CLI_LINK)
# What `make install` installs: the same program without the test hooks
# (recovery/util/hooks.c).
CLI_INSTALLED := recovery/cli/bootback.installed
$(CLI_INSTALLED): $(UTIL_RELEASE_O) $(CLI_OBJ) $(CLI_LIBS)
	$(CLI_LINK)
INSTALLED     += $(CLI_INSTALLED)
INSTALL_EXTRA += install -m 755 $(CLI_INSTALLED) $(DESTDIR)$(BINDIR)/bootback ;
CLEAN         += $(CLI_INSTALLED)
