# SPDX-License-Identifier: LGPL-2.1-or-later
# tests/: the runner, shared shell helpers and the integration tests.
DEPS += bc coreutils
# the lab test renders its HTML report in headless Chromium; mount tests use fuse2fs
DEPS += chromium fuse2fs
# the hostile-mount test: an NTFS and an XFS guest file system
DEPS += ntfs-3g xfsprogs
TESTS += $(sort $(wildcard tests/test-*.sh))
TESTS_SLOW += $(sort $(wildcard tests/slow-*.sh))
