# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/instant-many: mass instant recovery (bootback instant with 8
# points, one pool) against booting the same 8 from local qcow2 copies
# (make bench runs every BENCHES).
BENCHES += bench/instant-many/run
DEPS += python3
