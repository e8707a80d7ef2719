#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bootback mount of a hostile guest's file system: a setuid file and a
# device node of the guest give nothing on the host (nosuid,nodev,noexec),
# ext4 is read by fuse2fs and ntfs by ntfs-3g (user space) and the output
# says so, types without a user-space reader need --kernel-mount, unknown
# types are refused by name; umount never signals a process that is not
# the one mount started (a stale pid file, a reused pid).
source "$top_srcdir/tests/functions.sh"
requires nbdkit nbdfuse fuse2fs mke2fs fusermount3 findmnt blkid mkfs.minix
[ -e /dev/fuse ] || skip "no /dev/fuse"
[ "$(id -u)" = 0 ] || skip "needs root (mount)"
[ -f "$top_srcdir/nbd-plugin/nbdkit-bootback-plugin.so" ] || skip "plugin not built"

bootback repo init --chunk-size 64K "$tmp/repo" >/dev/null
mkdir -p "$tmp/files/bin" "$tmp/files/dev" "$tmp/files/etc" "$tmp/mnt"
echo "hello from the backup" > "$tmp/files/etc/motd"
# A setuid copy of id(1) owned by uid 12345: run by root, it prints 12345
# if the mount honours setuid.  A device node: /dev/zero's numbers.
cp /usr/bin/id "$tmp/files/bin/suid-id"
chown 12345:12345 "$tmp/files/bin/suid-id"
chmod 4755 "$tmp/files/bin/suid-id"
mknod "$tmp/files/dev/zero" c 1 5
mke2fs -q -t ext4 -d "$tmp/files" "$tmp/fs.img" 32M
bootback import "$tmp/fs.img" --vm hostile >/dev/null
cleanup_fn 'bootback umount "$tmp/mnt" >/dev/null 2>&1'

bootback mount hostile "$tmp/mnt" | tee "$tmp/out"
grep -q "read-only on $tmp/mnt with fuse2fs (ext4), nosuid,nodev,noexec" "$tmp/out" ||
    fail "the output does not name the reader: $(cat "$tmp/out")"
[ "$(cat "$tmp/mnt/etc/motd")" = "hello from the backup" ] || fail "wrong content"
[ "$(findmnt -no FSTYPE "$tmp/mnt")" = fuse.ext4 ] ||
    fail "not mounted by fuse2fs: $(findmnt -no FSTYPE "$tmp/mnt")"
opts=$(findmnt -no OPTIONS "$tmp/mnt")
for o in nosuid nodev noexec; do
    [[ ",$opts," == *",$o,"* ]] || fail "mount options $opts lack $o"
done
[ "$(stat -c %a "$tmp/mnt/bin/suid-id")" = 4755 ] || fail "setuid bit not shown"
euid=$("$tmp/mnt/bin/suid-id" -u 2>/dev/null || true)
[ "$euid" != 12345 ] || fail "a setuid file of the guest ran with its owner's uid"
expect_fail head -c 4 "$tmp/mnt/dev/zero" >/dev/null 2>&1
expect_fail touch "$tmp/mnt/newfile" 2>/dev/null

# umount with a pid file naming an unrelated process: left alone.
state=$(dirname "$(grep -lx "$tmp/mnt" "$BOOTBACK_HOME"/mounts/*/target)")
sock=$state/nbd.sock
nbdkit_pid=$(cut -d' ' -f1 "$state/nbdkit.pid")
cleanup_fn "kill $nbdkit_pid 2>/dev/null"
sleep 300 &
stranger=$!
cleanup_fn "kill $stranger 2>/dev/null"
echo "$stranger" > "$state/nbdkit.pid"
bootback umount "$tmp/mnt" 2>"$tmp/err"
cat "$tmp/err"
kill -0 "$stranger" || fail "umount killed an unrelated process"
grep -q "names process $stranger, which is not the nbdkit" "$tmp/err" ||
    fail "no warning about the stranger"
[ ! -e "$tmp/mnt/etc" ] || fail "still mounted"
# The real nbdkit, not named by the pid file, still runs: stop it.
kill -0 "$nbdkit_pid" || fail "nbdkit $nbdkit_pid is gone"
kill "$nbdkit_pid"

# The right pid with another start time (a reused pid): left alone too.
bootback mount hostile "$tmp/mnt" >/dev/null
state=$(dirname "$(grep -lx "$tmp/mnt" "$BOOTBACK_HOME"/mounts/*/target)")
read -r nbdkit_pid start < "$state/nbdkit.pid"
[ "$start" = "$(cut -d' ' -f22 "/proc/$nbdkit_pid/stat")" ] ||
    fail "nbdkit.pid lacks the start time"
cleanup_fn "kill $nbdkit_pid 2>/dev/null"
echo "$nbdkit_pid $((start + 1))" > "$state/nbdkit.pid"
bootback umount "$tmp/mnt" 2>"$tmp/err"
kill -0 "$nbdkit_pid" || fail "umount killed a process with another start time"
kill "$nbdkit_pid"
# And a normal umount stops what mount started.
bootback mount hostile "$tmp/mnt" >/dev/null
nbdkit_pid=$(pgrep -f -- "-U $BOOTBACK_HOME/mounts/.*/nbd.sock")
bootback umount "$tmp/mnt" >/dev/null 2>"$tmp/err"
[ ! -s "$tmp/err" ] || fail "umount said: $(cat "$tmp/err")"
for (( i = 0; i < 50; i++ )); do kill -0 "$nbdkit_pid" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$nbdkit_pid" 2>/dev/null || fail "umount left nbdkit running"
[ -z "$(ls "$BOOTBACK_HOME/mounts")" ] || fail "mount state left behind"

# xfs has no user-space reader: only with --kernel-mount.
if command -v mkfs.xfs >/dev/null; then
    truncate -s 300M "$tmp/xfs.img"
    mkfs.xfs -q "$tmp/xfs.img"
    bootback import "$tmp/xfs.img" --vm xfs >/dev/null
    expect_fail bootback mount xfs "$tmp/mnt" 2>"$tmp/err"
    cat "$tmp/err"
    grep -q "xfs has no user-space reader: only --kernel-mount" "$tmp/err" ||
        fail "no --kernel-mount hint"
    [ -z "$(ls "$BOOTBACK_HOME/mounts")" ] || fail "a refused mount left state behind"
    if grep -qw xfs /proc/filesystems; then
        bootback mount xfs "$tmp/mnt" --kernel-mount | tee "$tmp/out"
        grep -q "with the host kernel (xfs), nosuid,nodev,noexec" "$tmp/out"
        opts=$(findmnt -no OPTIONS "$tmp/mnt")
        for o in ro nosuid nodev noexec norecovery; do
            [[ ",$opts," == *",$o,"* ]] || fail "xfs mount options $opts lack $o"
        done
        bootback umount "$tmp/mnt" >/dev/null
    else
        echo "no xfs in this kernel: --kernel-mount part skipped"
    fi
else
    echo "mkfs.xfs not installed: xfs part skipped"
fi

# A type that is not on the allow-list: refused, by name.
mkfs.minix "$tmp/minix.img" 4096 >/dev/null 2>&1 ||
    { truncate -s 4M "$tmp/minix.img"; mkfs.minix "$tmp/minix.img" >/dev/null; }
bootback import "$tmp/minix.img" --vm minix >/dev/null
expect_fail bootback mount minix "$tmp/mnt" --kernel-mount 2>"$tmp/err"
cat "$tmp/err"
grep -q "does not read minix file systems" "$tmp/err" || fail "minix not refused by name"
[ -z "$(findmnt -no TARGET "$tmp/mnt")" ] || fail "minix mounted"

# NTFS: ntfs-3g.
if command -v mkntfs >/dev/null && command -v ntfs-3g >/dev/null; then
    truncate -s 16M "$tmp/ntfs.img"
    mkntfs -q -F -Q "$tmp/ntfs.img" >/dev/null 2>&1
    mkdir "$tmp/w"
    ntfs-3g "$tmp/ntfs.img" "$tmp/w"
    echo "hello from windows" > "$tmp/w/hello.txt"
    umount "$tmp/w"
    bootback import "$tmp/ntfs.img" --vm win >/dev/null
    bootback mount win "$tmp/mnt" | tee "$tmp/out"
    grep -q "with ntfs-3g (ntfs), nosuid,nodev,noexec" "$tmp/out"
    [ "$(cat "$tmp/mnt/hello.txt")" = "hello from windows" ]
    opts=$(findmnt -no OPTIONS "$tmp/mnt")
    for o in ro nosuid nodev noexec; do
        [[ ",$opts," == *",$o,"* ]] || fail "ntfs mount options $opts lack $o"
    done
    # the guest's files are not every host user's (ntfs-3g's defaults
    # were allow_other and mode 0777)
    chmod 0711 "$tmp"
    if setpriv --reuid=65534 --regid=65534 --clear-groups cat "$tmp/mnt/hello.txt" 2>/dev/null; then
        chmod 0700 "$tmp"
        fail "user nobody reads the guest's files of an ntfs mount (options $opts)"
    fi
    chmod 0700 "$tmp"
    bootback umount "$tmp/mnt" >/dev/null
else
    echo "ntfs-3g not installed: NTFS part skipped"
fi
echo "hostile mount ok"
