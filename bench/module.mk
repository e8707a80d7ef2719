# bench/: benchmarks, each run side by side with its peers in one run.
# Each benchmark appends its script to BENCHES; `make bench` runs them all
# (results in bench/out/, git-ignored).
BENCHES += bench/serve/run
DEPS    += fio qemu-utils nbdkit nbdkit-plugin-python libnbd-bin \
           python3-libnbd virtnbdbackup e2fsprogs bc

bench: build
	@set -e; for b in $(BENCHES); do echo "== $$b"; $$b; done
.PHONY: bench
