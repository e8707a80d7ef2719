#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bootback scan beyond ext4 and FAT, images built without a kernel mount:
# NTFS (mkntfs + ntfscp) and XFS (mkfs.xfs -p, a symlink to a host file
# not followed) are scanned and EICAR found, on NTFS also in an alternate
# data stream (of a clean file, and of the root directory), named
# PATH:STREAM, while the volume's own streams ($BadClus:$Bad) are not; a
# broken LVM label (tests/test-scan-lvm.sh has real ones) and a LUKS
# header are named "not scanned" with the reason and the point is never
# clean (exit 1).
source "$top_srcdir/tests/functions.sh"
requires nbdkit md5sum mkntfs ntfscp mkfs.xfs
[ -f "$top_srcdir/nbd-plugin/nbdkit-bootback-plugin.so" ] || skip "plugin not built"
getent passwd nobody >/dev/null || skip "no user nobody"

bootback repo init --chunk-size 64K "$tmp/repo" >/dev/null
sig=$tmp/sig; mkdir -p "$sig"
printf 'X5O!P%%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' >"$tmp/eicar.com"
echo "$(md5sum <"$tmp/eicar.com" | cut -d' ' -f1):68:Test.Eicar.HDB" >"$sig/test.hdb"

truncate -s 32M "$tmp/ntfs.img"
mkntfs -F -q -f "$tmp/ntfs.img" >/dev/null 2>&1
ntfscp "$tmp/ntfs.img" "$tmp/eicar.com" "eicar test.com" >/dev/null
echo "clean text" >"$tmp/clean.txt"
ntfscp "$tmp/ntfs.img" "$tmp/clean.txt" "clean.txt" >/dev/null
ntfscp -N 'hidden<x>' "$tmp/ntfs.img" "$tmp/eicar.com" "clean.txt" >/dev/null
ntfscp -i -N 'rootstream' "$tmp/ntfs.img" "$tmp/eicar.com" 5 >/dev/null
bootback import "$tmp/ntfs.img" --vm ntfs >/dev/null
rc=0; bootback scan ntfs --signatures "$sig" >"$tmp/out" 2>&1 || rc=$?
cat "$tmp/out"
[ $rc = 2 ] || fail "NTFS with EICAR exits $rc"
grep -qxF 'FOUND: disk vda partition 0: /eicar test.com: Test.Eicar.HDB.UNOFFICIAL (clamav)' "$tmp/out" ||
    fail "EICAR on NTFS not reported"
grep -qxF 'FOUND: disk vda partition 0: /clean.txt:hidden<x>: Test.Eicar.HDB.UNOFFICIAL (clamav)' "$tmp/out" ||
    fail "EICAR in an NTFS alternate data stream not reported as PATH:STREAM"
grep -qxF 'FOUND: disk vda partition 0: /:rootstream: Test.Eicar.HDB.UNOFFICIAL (clamav)' "$tmp/out" ||
    fail "EICAR in a stream of the root directory not reported"
grep -q '\$Bad' "$tmp/out" && fail "the volume's own streams are read as files"
# a clean NTFS volume with a clean stream is clean (its own streams do
# not make it incomplete)
truncate -s 32M "$tmp/ntfs2.img"
mkntfs -F -q -f "$tmp/ntfs2.img" >/dev/null 2>&1
ntfscp "$tmp/ntfs2.img" "$tmp/clean.txt" "clean.txt" >/dev/null
ntfscp -N 'notes' "$tmp/ntfs2.img" "$tmp/clean.txt" "clean.txt" >/dev/null
bootback import "$tmp/ntfs2.img" --vm ntfs2 >/dev/null
rc=0; bootback scan ntfs2 --signatures "$sig" --json >"$tmp/j" 2>&1 || rc=$?
[ $rc = 0 ] || { cat "$tmp/j"; fail "a clean NTFS volume with a stream exits $rc"; }
python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["disks"][0]["partitions"][0]; assert p["streams"] == 1 and p["skipped"] == 0, p' "$tmp/j" ||
    fail "the clean stream is not counted, or something was skipped"

# XFS, read by libfsxfs: EICAR in a subdirectory is found; a guest
# symlink to a host file matched by a rule is not followed.
echo "HOST-ONLY-SECRET-$$" >"$tmp/host-secret"
echo "rule host_secret { strings: \$a = \"HOST-ONLY-SECRET-$$\" condition: \$a }" >"$sig/test.yar"
cat >"$tmp/proto" <<EOF
d
0 0
d--755 0 0
sub d--755 0 0
eicar.com ---644 0 0 $tmp/eicar.com
\$
secret-link l--777 0 0 $tmp/host-secret
\$
EOF
truncate -s 300M "$tmp/xfs.img"
mkfs.xfs -q -p "$tmp/proto" "$tmp/xfs.img"
bootback import "$tmp/xfs.img" --vm xfs >/dev/null
rc=0; bootback scan xfs --signatures "$sig" >"$tmp/out" 2>&1 || rc=$?
cat "$tmp/out"
[ $rc = 2 ] || fail "XFS with EICAR exits $rc"
grep -qxF 'FOUND: disk vda partition 0: /sub/eicar.com: Test.Eicar.HDB.UNOFFICIAL (clamav)' "$tmp/out" ||
    fail "EICAR on XFS not reported"
grep -q '^scanned: disk vda partition 0 (xfs)' "$tmp/out" || fail "XFS not named"
! grep -q host_secret "$tmp/out" || fail "an XFS symlink was followed to a host file"

# An LVM label (sector 1) and a LUKS header: the magic is what is read.
truncate -s 8M "$tmp/lvm.img" "$tmp/luks.img"
printf 'LABELONE' | dd of="$tmp/lvm.img" bs=1 seek=512 conv=notrunc status=none
printf 'LUKS\xba\xbe\x00\x01' | dd of="$tmp/luks.img" conv=notrunc status=none
for t in lvm luks; do
    bootback import "$tmp/$t.img" --format raw --vm "$t" >/dev/null
    rc=0; bootback scan "$t" --signatures "$sig" >"$tmp/out" 2>&1 || rc=$?
    cat "$tmp/out"
    [ $rc = 1 ] || fail "$t exits $rc"
    case $t in
        lvm)  want='libvslvm' ;;
        luks) want='LUKS encrypted volume: cannot be read without its key' ;;
    esac
    grep -q "^not scanned: disk vda partition 0 ($t[2]*): .*$want" "$tmp/out" ||
        fail "$t: no reason"
    grep -q ": incomplete: " "$tmp/out" || fail "$t: not incomplete"
done
