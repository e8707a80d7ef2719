# SPDX-License-Identifier: LGPL-2.1-or-later
# tests/: the runner, shared shell helpers and the integration tests.
DEPS += bc coreutils
# the lab test renders its HTML report in headless Chromium; mount tests use fuse2fs
DEPS += chromium fuse2fs
# labs on another host (test-lab-remote.sh): the remote's sshd, and ping
# there for its ping checks
DEPS += openssh-server iputils-ping
# the hostile-mount test: an NTFS and an XFS guest file system
DEPS += ntfs-3g xfsprogs
TESTS += $(sort $(wildcard tests/test-*.sh))
TESTS_SLOW += $(sort $(wildcard tests/slow-*.sh))
# the shared Ceph test cluster (tests/lib/ceph.sh): mon, OSD, RGW, the rbd
# and rados tools, QEMU's rbd driver; librbd/librados headers for the C
# code of the fleet and object-storage work
DEPS += ceph-mon ceph-osd radosgw ceph-common qemu-block-extra curl librbd-dev librados-dev
