# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/scan: bootback scan vs clamscan -r of the same files, and an
# incremental scan after a 1% change (make bench runs every BENCHES).
BENCHES += bench/scan/run
DEPS    += e2fsprogs bc python3 lvm2
