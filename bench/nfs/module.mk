# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/nfs: a repository on NFS (libnfs, loopback nfs-ganesha) vs the same
# on local disk: import and plugin sequential read (make bench runs every
# BENCHES).
BENCHES += bench/nfs/run
DEPS    += nfs-ganesha nfs-ganesha-vfs rpcbind nbdkit libnbd-bin e2fsprogs bc python3
