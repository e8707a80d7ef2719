# SPDX-License-Identifier: LGPL-2.1-or-later
# recovery/repo: libbbrepo.a, the repository library (no catalog, no libvirt).
REPO_SRC := $(filter-out recovery/repo/test-% recovery/repo/fuzz-%,$(wildcard recovery/repo/*.c))
REPO_OBJ := $(REPO_SRC:.c=.o)
REPO_A   := recovery/repo/libbbrepo.a
REPO_LIBS := $(call pc_libs,$(PC_REPO)) $(IPSEC_MB_LIBS) -lpthread
LIBS_A   += $(REPO_A)
DEPS     += libzstd-dev libssl-dev libjansson-dev zlib1g-dev libnfs-dev libisal-dev
# multi-buffer SHA-256 of the frames a read checks (chunk.c; x86-64 only)
DEPS     += $(if $(filter x86_64,$(shell uname -m)),libipsec-mb-dev)
# the S3 backend (io-s3.c)
DEPS     += libcurl4-openssl-dev libxml2-dev
# the NFS tests (tests/lib/nfs.sh) run a private nfs-ganesha
DEPS     += nfs-ganesha nfs-ganesha-vfs rpcbind

$(REPO_OBJ): ALL_CFLAGS += $(call pc_cflags,$(PC_REPO)) $(if $(IPSEC_MB_LIBS),-DHAVE_IPSEC_MB)
$(REPO_A): $(REPO_OBJ)
	$(AR) rcs $@ $^

REPO_TESTS := $(patsubst %.c,%,$(wildcard recovery/repo/test-*.c))
$(REPO_TESTS): %: %.o $(REPO_A) $(UTIL_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(REPO_LIBS)
TEST_BINS += $(REPO_TESTS)
TESTS += $(REPO_TESTS)

# The nightly off-site copy (bootback repo sync): example systemd units,
# installed by make install, configured in /etc/bootback/sync.env.
SYSTEMD_UNITDIR ?= $(PREFIX)/lib/systemd/system
REPO_UNITS := recovery/repo/bootback-sync.service recovery/repo/bootback-sync.timer
INSTALL_EXTRA += install -d $(DESTDIR)$(SYSTEMD_UNITDIR); \
                 for u in $(REPO_UNITS); do \
                   sed 's|@BINDIR@|$(BINDIR)|g' $$u > $(DESTDIR)$(SYSTEMD_UNITDIR)/$$(basename $$u); \
                   chmod 644 $(DESTDIR)$(SYSTEMD_UNITDIR)/$$(basename $$u); \
                 done;
