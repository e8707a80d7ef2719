#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bootback serve: a private (0700) socket and a URI that serves the point;
# bootback mount/umount: file-level restore of an ext4 disk and of a
# partition of a partitioned disk, read-only; nothing left after umount.
source "$top_srcdir/tests/functions.sh"
requires nbdkit nbdinfo nbdcopy nbdfuse mke2fs fusermount3
[ -e /dev/fuse ] || skip "no /dev/fuse"
[ -f "$top_srcdir/nbd-plugin/nbdkit-bootback-plugin.so" ] || skip "plugin not built"

bootback repo init --chunk-size 64K "$tmp/repo" >/dev/null
mkdir -p "$tmp/files/etc" "$tmp/files/srv"
echo "hello from the backup" > "$tmp/files/etc/motd"
head -c 300000 /dev/urandom > "$tmp/files/srv/data.bin"
mke2fs -q -t ext4 -d "$tmp/files" "$tmp/fs.img" 32M
bootback import "$tmp/fs.img" --vm files >/dev/null

# serve, in the background
bootback serve files@latest --background > "$tmp/serve.out"
cat "$tmp/serve.out"
uri=$(sed -n 's/^NBD URI: //p' "$tmp/serve.out")
sock=${uri#nbd+unix:///?socket=}
pidf=$(sed -n 's/.*(pid file \(.*\))$/\1/p' "$tmp/serve.out")
cleanup_fn 'kill $(cat "'"$pidf"'") 2>/dev/null; rm -rf "'"$(dirname "$sock")"'"'
[ "$(stat -c %a "$(dirname "$sock")")" = 700 ] || fail "socket directory is not 0700"
nbdcopy "$uri" "$tmp/served.img"
cmp "$tmp/served.img" "$tmp/fs.img"
kill "$(cat "$pidf")"

# mount the whole disk
mkdir "$tmp/mnt"
bootback mount files "$tmp/mnt"
cleanup_fn 'bootback umount "$tmp/mnt" 2>/dev/null'
[ "$(cat "$tmp/mnt/etc/motd")" = "hello from the backup" ] || fail "wrong file content"
cmp "$tmp/mnt/srv/data.bin" "$tmp/files/srv/data.bin"
expect_fail touch "$tmp/mnt/newfile" 2>/dev/null
expect_fail bootback mount files "$tmp/mnt" 2>"$tmp/err"
grep -q "mounted there by bootback already" "$tmp/err"
bootback umount "$tmp/mnt"
[ ! -e "$tmp/mnt/etc" ] || fail "still mounted"
[ -z "$(ls "$BOOTBACK_HOME/mounts")" ] || fail "mount state left behind"
! pgrep -f "nbdfuse.*$BOOTBACK_HOME" >/dev/null || fail "nbdfuse left running"

# a journal that needs recovery (a backup of a running guest): mounted
# without replaying it
requires debugfs
cp "$tmp/fs.img" "$tmp/dirty.img"
debugfs -w -R "feature needs_recovery" "$tmp/dirty.img" >/dev/null 2>&1
bootback import "$tmp/dirty.img" --vm dirty >/dev/null
bootback mount dirty "$tmp/mnt"
[ "$(cat "$tmp/mnt/etc/motd")" = "hello from the backup" ]
bootback umount "$tmp/mnt"

# a partitioned disk: partition 2 holds the filesystem
truncate -s 40M "$tmp/part.img"
printf 'label: dos\nstart=2048, size=4096, type=83\nstart=8192, type=83\n' |
    sfdisk -q "$tmp/part.img"
dd if="$tmp/fs.img" of="$tmp/part.img" bs=512 seek=8192 conv=notrunc status=none
truncate -s 40M "$tmp/part.img"
bootback import "$tmp/part.img" --vm parted >/dev/null
expect_fail bootback mount parted "$tmp/mnt" 2>"$tmp/err"
grep -q -- "--partition" "$tmp/err"
[ -z "$(ls "$BOOTBACK_HOME/mounts")" ] || fail "a failed mount left state behind"
bootback mount parted "$tmp/mnt" --partition 2
[ "$(cat "$tmp/mnt/etc/motd")" = "hello from the backup" ]
bootback umount "$tmp/mnt"
expect_fail bootback umount "$tmp/mnt" 2>"$tmp/err"
grep -q "not mounted by bootback" "$tmp/err"
echo "serve and mount ok"
