# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/trace: bootback instant from a cold NFS repository with and without
# the previous boot's trace, against a warm local one (make bench runs
# every BENCHES).
BENCHES += bench/trace/run
DEPS += curl python3 sqlite3 nfs-ganesha nfs-ganesha-vfs
