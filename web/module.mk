# SPDX-License-Identifier: LGPL-2.1-or-later
# web/: libweb.a, the HTTP server of bootback web (web/web.h): the REST
# API, /metrics, API tokens; its systemd unit and example alert rules.
WEB_SRC := $(filter-out web/test-%,$(wildcard web/*.c))
WEB_OBJ := $(WEB_SRC:.c=.o)
WEB_A   := web/libweb.a
LIBS_A  += $(WEB_A)
PC_WEB  := libmicrohttpd jansson libcrypto
WEB_LIBS = $(call pc_libs,$(PC_WEB))
DEPS    += libmicrohttpd-dev libjansson-dev libssl-dev curl openssl python3 python3-yaml

$(WEB_OBJ) web/test-web.o: ALL_CFLAGS += $(call pc_cflags,$(PC_WEB) $(PC_VERIFY) $(PC_LAB))
$(WEB_A): $(WEB_OBJ)
	$(AR) rcs $@ $^

# token hashing, label escaping, the actions' argument checks
web/test-web: web/test-web.o $(WEB_A) $(VERIFY_A) $(LAB_A) $(INSTANT_A) $(INGEST_A) \
              $(CATALOG_A) $(REPO_A) $(VIRT_A) $(UTIL_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(WEB_LIBS) $(VERIFY_LIBS) \
	  $(INSTANT_LIBS) $(call pc_libs,libnbd) -lpthread
TEST_BINS += web/test-web
TESTS     += web/test-web

# The service: installed by make install, like verify/'s units.
WEB_UNITS := web/bootback-web.service
INSTALL_EXTRA += install -d $(DESTDIR)$(SYSTEMD_UNITDIR); \
                 for u in $(WEB_UNITS); do \
                   sed 's|@BINDIR@|$(BINDIR)|g' $$u > $(DESTDIR)$(SYSTEMD_UNITDIR)/$$(basename $$u); \
                   chmod 644 $(DESTDIR)$(SYSTEMD_UNITDIR)/$$(basename $$u); \
                 done;
