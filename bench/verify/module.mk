# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/verify: verification of tiny VMs in a lab, end to end, vs plainly
# booting the same image (make bench runs every BENCHES).
BENCHES += bench/verify/run
DEPS    += curl python3 bc
