#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Encryption and repo sync across backends (issue 18 items 4 and 5): an
# encrypted repository on NFS (nfs://127.0.0.1/..., a private
# nfs-ganesha) filled by repo sync from a local plain one, served byte for
# byte by the plugin from NFS, no plaintext in the server's files, a rerun
# copying nothing; and back from NFS into a local encrypted repository
# with another key.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/nbd-plugin/plugin-functions.sh"
source "$top_srcdir/tests/lib/nfs.sh"
requires qemu-img qemu-nbd python3 cmp
nfs_start

jget () { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
bootback repo init --compression none --chunk-size 256K "$tmp/plain" > /dev/null
make_disk "$tmp/a.raw" $(( 24 * 1024 * 1024 + 4097 ))
printf 'NEEDLE-%.0s' $(seq 1 4000) | dd of="$tmp/a.raw" bs=64k seek=100 conv=notrunc status=none
bootback import "$tmp/a.raw" --vm web > /dev/null
id=$(latest_id web)

echo "nfs pass" > "$tmp/pass"
url=$(nfs_url enc)
# uncompressed both: the plaintext would show if it were not encrypted
grep -r -q -a -F "NEEDLE-NEEDLE" "$tmp/plain/chunks" || fail "the plain repository lacks the needle"
BOOTBACK_PASSPHRASE_FILE=$tmp/pass bootback repo init --encrypt --compression none \
    --chunk-size 256K "$url" > /dev/null
bootback repo sync --json --verify --dst-passphrase-file "$tmp/pass" "$tmp/plain" "$url" \
    > "$tmp/j" 2>/dev/null
[ "$(jget "$tmp/j" points_copied)" -eq 1 ] && [ "$(jget "$tmp/j" chunks_verified)" -gt 0 ]
if grep -r -q -a -F "NEEDLE-NEEDLE" "$NFS_EXPORT/enc"; then fail "plaintext on the server"; fi
export BOOTBACK_PASSPHRASE_FILE=$tmp/pass
bb_nbdkit -U - "$plugin" repo="$url" point="web@$id" --run "nbdcopy \"\$uri\" $tmp/out.raw"
cmp "$tmp/a.raw" "$tmp/out.raw" || fail "served from NFS differs"
bootback --repo "$url" repo verify > /dev/null
bootback repo sync --json --src-plain "$tmp/plain" "$url" > "$tmp/j" 2>/dev/null
[ "$(jget "$tmp/j" points_present)" -eq 1 ] && [ "$(jget "$tmp/j" chunks_copied)" -eq 0 ]

# NFS (encrypted) -> local (encrypted, another key)
echo "other pass" > "$tmp/pass2"
BOOTBACK_PASSPHRASE_FILE=$tmp/pass2 bootback repo init --encrypt --chunk-size 256K "$tmp/local" > /dev/null
bootback repo sync --dst-passphrase-file "$tmp/pass2" "$url" "$tmp/local" > /dev/null 2>&1
BOOTBACK_PASSPHRASE_FILE=$tmp/pass2 bootback --repo "$tmp/local" restore "web@$id" --to "$tmp/back.raw" > /dev/null
cmp "$tmp/a.raw" "$tmp/back.raw" || fail "NFS -> local copy differs"
echo "sync across NFS ok"
