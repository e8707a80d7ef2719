# recovery/util: libbbutil.a, libc only.
UTIL_SRC := $(wildcard recovery/util/[a-z]*.c)
UTIL_SRC := $(filter-out recovery/util/test-%.c,$(UTIL_SRC))
UTIL_OBJ := $(UTIL_SRC:.c=.o)
UTIL_A   := recovery/util/libbbutil.a
LIBS_A   += $(UTIL_A)

$(UTIL_A): $(UTIL_OBJ)
	$(AR) rcs $@ $^

recovery/util/test-util: recovery/util/test-util.o $(UTIL_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) -lpthread
TEST_BINS += recovery/util/test-util
TESTS += recovery/util/test-util
