# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/instant: bootback instant vs restore-then-boot vs a local copy, and
# migration vs qemu-img convert (make bench runs every BENCHES).
BENCHES += bench/instant/run
DEPS += curl python3
