# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/serve: serving a restore point (the plugin) vs nbdkit file,
# qemu-nbd and virtnbdbackup's plugin (make bench runs every BENCHES).
BENCHES += bench/serve/run
DEPS    += fio qemu-utils nbdkit nbdkit-plugin-python libnbd-bin \
           python3-libnbd virtnbdbackup e2fsprogs bc
BENCH_SERVE_LIMIT := bench/serve/decode-limit
$(BENCH_SERVE_LIMIT): %: %.o $(REPO_A) $(UTIL_A)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(REPO_LIBS)
TEST_BINS += $(BENCH_SERVE_LIMIT)
