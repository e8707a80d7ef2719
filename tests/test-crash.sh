#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Crash safety: SIGKILL the importer at each numbered commit step, at each
# fsync, and at >= 100 random moments.  Afterwards every point that was
# reported done verifies and restores, no point is half-visible (repo check
# is clean), the catalog lists exactly the stored points with their disks,
# and a re-run succeeds.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/crash.sh"
requires qemu-img qemu-nbd python3

repo=$tmp/repo
bootback repo init --chunk-size 64K "$repo"
make_disk "$tmp/a.raw" $(( 3 * 1024 * 1024 + 777 ))
make_disk "$tmp/b.raw" $(( 2 * 1024 * 1024 ))
crash_scenario 100 100 1
echo "crash safety ok"
