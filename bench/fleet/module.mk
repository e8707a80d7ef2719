# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/fleet: remote backup, remote instant, TLS NBD serving and migration
# to Ceph RBD against the same done on one host (make bench runs every BENCHES).
BENCHES += bench/fleet/run
DEPS += curl nbdkit libnbd-bin python3-libnbd
