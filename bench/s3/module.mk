# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/s3: a repository on S3 (Ceph RGW on loopback) vs the same on local
# disk and on NFS (libnfs, loopback nfs-ganesha): import, plugin cold and
# warm sequential read, restore, instant boot with a cold and a warm read
# cache, sync (make bench runs every BENCHES).
BENCHES += bench/s3/run
DEPS    += ceph-mon ceph-osd radosgw nbdkit libnbd-bin bc nfs-ganesha nfs-ganesha-vfs
