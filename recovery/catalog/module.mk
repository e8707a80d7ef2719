# SPDX-License-Identifier: LGPL-2.1-or-later
# recovery/catalog: libbbcatalog.a, the SQLite catalog.
CATALOG_SRC := $(filter-out recovery/catalog/test-%,$(wildcard recovery/catalog/*.c))
CATALOG_OBJ := $(CATALOG_SRC:.c=.o)
CATALOG_A   := recovery/catalog/libbbcatalog.a
LIBS_A      += $(CATALOG_A)
DEPS        += libsqlite3-dev sqlite3

$(CATALOG_OBJ): ALL_CFLAGS += $(call pc_cflags,sqlite3)
$(CATALOG_A): $(CATALOG_OBJ)
	$(AR) rcs $@ $^

# migrations from every earlier schema version (test-catalog.c)
CATALOG_TESTS := recovery/catalog/test-catalog
recovery/catalog/test-catalog.o: ALL_CFLAGS += $(call pc_cflags,sqlite3)
recovery/catalog/test-catalog: %: %.o $(CATALOG_A) $(REPO_A) $(UTIL_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(call pc_libs,sqlite3) $(REPO_LIBS)
TEST_BINS += $(CATALOG_TESTS)
TESTS += $(CATALOG_TESTS)

# the ransomware score's verdict (test-score.c)
recovery/catalog/test-score: %: %.o $(CATALOG_A) $(REPO_A) $(UTIL_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(call pc_libs,sqlite3) $(REPO_LIBS) -lm
TEST_BINS += recovery/catalog/test-score
TESTS += recovery/catalog/test-score
