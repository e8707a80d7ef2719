#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# File-level restore, the way `bootback mount` does it: the plugin on a
# unix socket in a 0700 directory, nbdfuse (read-only) turning the export
# into a file, the file system mounted read-only, nosuid,nodev,noexec: with
# fuse2fs (what bootback mount uses for ext4) and with a loop device (root;
# `-o ro,noload` so ext4 does not replay its journal).  Also a partitioned disk through nbdkit's partition filter.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/nbd-plugin/plugin-functions.sh"
requires nbdfuse fusermount3 mke2fs sfdisk
[ -c /dev/fuse ] || skip "no /dev/fuse"

cd "$tmp"
mkdir files files/sub
echo hello >files/hello.txt
head -c 300000 /dev/urandom >files/sub/random.bin
cp /etc/os-release files/sub/
mke2fs -q -t ext4 -d files fs.img 32M 2>/dev/null
# A partitioned disk: GPT, partition 1 at 1 MiB, 32 MiB long, ext4.
truncate -s 40M disk.img
echo 'start=2048, size=65536, type=L' | sfdisk -q --label gpt disk.img
mke2fs -q -t ext4 -d files -E offset=1048576 disk.img 32M 2>/dev/null

bb_repo_init repo 1M
bb_import repo vm 20260101T000000Z vda=fs.img vdb=disk.img >/dev/null

# mount_and_check OPTS...: serve with OPTS, nbdfuse, mount, compare, unmount.
mount_and_check () {
    local how=$1; shift
    local fuse mnt=$tmp/mnt i
    bb_nbdkit_start "$plugin" repo=repo point=vm "$@"
    fuse=$sockdir/fuse
    [ "$(stat -c %a "$sockdir")" = 700 ] || fail "socket directory is not 0700"
    mkdir -p "$fuse" "$mnt"
    rm -f "$sockdir/fuse.pid"
    nbdfuse -r -P "$sockdir/fuse.pid" "$fuse" "$uri" &
    fuse_pid=$!
    for (( i = 0; i < 100 * slow; i++ )); do
        [ -s "$sockdir/fuse.pid" ] && break; sleep 0.1
    done
    [ -s "$sockdir/fuse.pid" ] || fail "nbdfuse did not start"
    cleanup_fn "fusermount3 -u '$fuse' 2>/dev/null"
    case $how in
        loop)    mount -o ro,noload,loop,nosuid,nodev,noexec "$fuse/nbd" "$mnt" ;;
        fuse2fs) fuse2fs -o ro,fakeroot,nosuid,nodev,noexec "$fuse/nbd" "$mnt" >/dev/null ;;
    esac
    cleanup_fn "umount '$mnt' 2>/dev/null"
    diff -r -x lost+found files "$mnt" || fail "$how $*: files differ"
    cat "$mnt/hello.txt" | grep -qx hello || fail "$how: hello.txt"
    expect_fail touch "$mnt/new" 2>/dev/null
    umount "$mnt"
    # The loop device (or fuse2fs) lets go of the file a moment after
    # umount returns: until then fusermount3 says "Device or resource busy".
    for (( i = 0; i < 50 * slow; i++ )); do
        fusermount3 -u "$fuse" 2>/dev/null && break
        sleep 0.1
    done
    echo "$how: fusermount3 -u after $i retries"
    wait "$fuse_pid" || fail "nbdfuse exited with an error"
    bb_nbdkit_stop
}

mount_and_check fuse2fs
mount_and_check fuse2fs disk=vdb --filter=partition partition=1
if [ "$(id -u)" -eq 0 ] && [ -e /dev/loop-control ]; then
    mount_and_check loop
    mount_and_check loop disk=vdb --filter=partition partition=1
else
    echo "not root: loop mount not tested"
fi
echo "test-mount: ok"
