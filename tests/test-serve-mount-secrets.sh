#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bootback mount: the programs that parse the guest's file system (blkid,
# nbdfuse, fuse2fs through mount) get none of the secrets bootback was
# given (the repository's passphrase, S3 keys) in their environment:
# they read what a compromised guest wrote, and only nbdkit needs them.
source "$top_srcdir/tests/functions.sh"
requires nbdkit nbdfuse mke2fs fusermount3 blkid
[ -e /dev/fuse ] || skip "no /dev/fuse"
[ -f "$top_srcdir/nbd-plugin/nbdkit-bootback-plugin.so" ] || skip "plugin not built"

echo "mount pass" > "$tmp/pass"
export BOOTBACK_PASSPHRASE_FILE=$tmp/pass
bootback repo init --encrypt --chunk-size 64K "$tmp/repo" > /dev/null
mkdir -p "$tmp/files/etc"
echo "hello from the backup" > "$tmp/files/etc/motd"
mke2fs -q -t ext4 -d "$tmp/files" "$tmp/fs.img" 16M
bootback --repo "$tmp/repo" import "$tmp/fs.img" --vm files > /dev/null

# wrappers that keep their environment, then run the real program
mkdir "$tmp/bin"
for p in blkid nbdfuse; do
    real=$(command -v $p)
    printf '#!/bin/sh\nenv > "%s/%s.env"\nexec %s "$@"\n' "$tmp" "$p" "$real" > "$tmp/bin/$p"
    chmod +x "$tmp/bin/$p"
done
mkdir "$tmp/mnt"
PATH=$tmp/bin:$PATH BOOTBACK_PASSPHRASE="mount pass" AWS_SECRET_ACCESS_KEY=s3-secret \
    bootback --repo "$tmp/repo" mount files "$tmp/mnt"
cleanup_fn 'bootback --repo "$tmp/repo" umount "$tmp/mnt" 2>/dev/null'
[ "$(cat "$tmp/mnt/etc/motd")" = "hello from the backup" ] || fail "wrong file content"
for p in blkid nbdfuse; do
    [ -s "$tmp/$p.env" ] || fail "$p did not run through the wrapper"
    if grep -E '^(BOOTBACK_PASSPHRASE|BOOTBACK_PASSPHRASE_FILE|BOOTBACK_KEY_FILE|AWS_SECRET_ACCESS_KEY|AWS_ACCESS_KEY_ID)=' \
        "$tmp/$p.env"; then
        fail "$p got a secret in its environment"
    fi
done
bootback --repo "$tmp/repo" umount "$tmp/mnt"
echo "mount helpers get no secrets ok"
