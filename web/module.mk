# SPDX-License-Identifier: LGPL-2.1-or-later
# web/: libweb.a, the HTTP server of bootback web (web/web.h): the REST
# API, /metrics, API tokens, the dashboard page and its sessions; its
# systemd unit and example alert rules.
# web/static/ (the page's HTML, scripts, style and the vendored uPlot with
# its license) is built into the program as web/static-files.c.
WEB_STATIC := $(shell find web/static -type f)
WEB_SRC := $(sort $(filter-out web/test-% web/static-files.c,$(wildcard web/*.c)) \
                  web/static-files.c)
WEB_OBJ := $(WEB_SRC:.c=.o)
WEB_A   := web/libweb.a
LIBS_A  += $(WEB_A)
PC_WEB  := libmicrohttpd jansson libcrypto
WEB_LIBS = $(call pc_libs,$(PC_WEB))
DEPS    += libmicrohttpd-dev libjansson-dev libssl-dev curl openssl python3 python3-yaml \
           nodejs chromium
# the browser tests' driver (tests/browser: puppeteer-core, pinned).
# Debian's npm only if there is no npm: NodeSource's nodejs has its own
# and conflicts with Debian's.
DEPS_EXTRA += (command -v npm >/dev/null || tests/install-deps npm) && \
              (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error) &&

$(WEB_OBJ) web/test-web.o: ALL_CFLAGS += $(call pc_cflags,$(PC_WEB) $(PC_VERIFY) $(PC_LAB))
$(WEB_A): $(WEB_OBJ)
	$(AR) rcs $@ $^
web/static-files.c: web/embed.sh $(WEB_STATIC)
	web/embed.sh $@ web/static
CLEAN += web/static-files.c

# The unit tests link what libweb.a uses.
WEB_TEST_A := $(WEB_A) $(VERIFY_A) $(LAB_A) $(INSTANT_A) $(INGEST_A) $(CATALOG_A) \
              $(REPO_A) $(VIRT_A) $(UTIL_A)
# token hashing, label escaping, the actions' argument checks
web/test-web: web/test-web.o $(WEB_TEST_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(WEB_LIBS) $(VERIFY_LIBS) \
	  $(INSTANT_LIBS) $(call pc_libs,libnbd) $(CEPH_LIBS) -lpthread
TEST_BINS += web/test-web
TESTS     += web/test-web
# sessions, CSRF tokens, the built-in files
web/test-session.o: ALL_CFLAGS += $(call pc_cflags,$(PC_WEB))
web/test-session: web/test-session.o $(WEB_TEST_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(WEB_LIBS) $(VERIFY_LIBS) \
	  $(INSTANT_LIBS) $(call pc_libs,libnbd) $(CEPH_LIBS) -lpthread
TEST_BINS += web/test-session
TESTS     += web/test-session

# The service: installed by make install, like verify/'s units.
WEB_UNITS := web/bootback-web.service
# the vendored uPlot (built into the program) and its license, as shipped
WEB_DOCDIR ?= $(PREFIX)/share/doc/bootback/web-vendor
INSTALL_EXTRA += install -d $(DESTDIR)$(SYSTEMD_UNITDIR); \
                 for u in $(WEB_UNITS); do \
                   sed 's|@BINDIR@|$(BINDIR)|g' $$u > $(DESTDIR)$(SYSTEMD_UNITDIR)/$$(basename $$u); \
                   chmod 644 $(DESTDIR)$(SYSTEMD_UNITDIR)/$$(basename $$u); \
                 done; \
                 install -d $(DESTDIR)$(WEB_DOCDIR); \
                 install -m 644 web/static/vendor/* $(DESTDIR)$(WEB_DOCDIR)/;
