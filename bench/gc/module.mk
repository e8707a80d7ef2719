# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/gc: gc and repo check on a synthetic repository of 10^8 references
# to 10^6 chunks, this tree vs the base commit (make bench runs every
# BENCHES).  gen-repo writes the repository; tests/test-gc-memory.sh uses
# it too, at a small scale.
BENCHES += bench/gc/run
DEPS    += time e2fsprogs bc
BENCH_GC_GEN := bench/gc/gen-repo
$(BENCH_GC_GEN): %: %.o $(REPO_A) $(UTIL_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(REPO_LIBS)
TEST_BINS += $(BENCH_GC_GEN)
