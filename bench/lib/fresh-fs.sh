# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A fresh file system for a benchmark's repositories (sourced by bench/*/run).
#
# The host's root file system here is ext4 without a journal: after a
# mass deletion it scans for free inodes, costing whichever tool creates
# files first up to a second, so its state would pick a winner.  As root
# (and without BENCH_DIR), a benchmark puts what it writes on a journaled
# ext4 made for the run on a loop device, which is also what a backup
# target looks like.
#
#   dir=$(bench_fresh_fs NAME SIZE)   mounted directory, or "" if not root,
#                                     no losetup, or BENCH_DIR is set
#   bench_fresh_fs_remove NAME        unmount and delete it

bench_fresh_fs () {
    local fsimg=/var/tmp/bootback-bench-$1.fs mnt=/var/tmp/bootback-bench-$1.mnt
    [ -z "${BENCH_DIR:-}" ] && [ "$(id -u)" = 0 ] && command -v losetup >/dev/null || return 0
    umount "$mnt" 2>/dev/null || true
    rm -f "$fsimg"; truncate -s "$2" "$fsimg"
    # inode tables and journal written now: no lazy init in the background
    # competing with the first tool timed
    mke2fs -q -F -t ext4 -E lazy_itable_init=0,lazy_journal_init=0 "$fsimg" >&2
    mkdir -p "$mnt"; mount -o loop "$fsimg" "$mnt" >&2
    echo "$mnt"
}

bench_fresh_fs_remove () {
    local fsimg=/var/tmp/bootback-bench-$1.fs mnt=/var/tmp/bootback-bench-$1.mnt
    if mountpoint -q "$mnt"; then
        umount "$mnt" && rm -f "$fsimg" && rmdir "$mnt"
    fi
}
