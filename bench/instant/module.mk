# bench/instant: bootback instant vs restore-then-boot vs a local copy, and
# migration vs qemu-img convert (make bench runs every BENCHES).
BENCHES += bench/instant/run
DEPS += curl python3
