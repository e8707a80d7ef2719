# SPDX-License-Identifier: LGPL-2.1-or-later
# recovery/util: libbbutil.a, libc only.
UTIL_SRC := $(wildcard recovery/util/[a-z]*.c)
UTIL_SRC := $(filter-out recovery/util/test-%.c,$(UTIL_SRC))
UTIL_OBJ := $(UTIL_SRC:.c=.o)
UTIL_A   := recovery/util/libbbutil.a
LIBS_A   += $(UTIL_A)

$(UTIL_A): $(UTIL_OBJ)
	$(AR) rcs $@ $^

# hooks.c is compiled twice (its header says why): hooks.o, in the library,
# honours the test hooks; hooks-release.o, which the programs that `make
# install` installs are linked with in front of the library, does not.
UTIL_RELEASE_O := recovery/util/hooks-release.o
recovery/util/hooks.o: ALL_CFLAGS += -DBOOTBACK_TEST_HOOKS
$(UTIL_RELEASE_O): recovery/util/hooks.c
	$(CC) $(ALL_CFLAGS) -fvisibility=hidden -c -o $@ $<
CLEAN += $(UTIL_RELEASE_O)

recovery/util/test-util: recovery/util/test-util.o $(UTIL_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) -lpthread
TEST_BINS += recovery/util/test-util
TESTS += recovery/util/test-util
