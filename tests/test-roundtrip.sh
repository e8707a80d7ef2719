#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Import raw, qcow2 (with holes), vmdk and vhdx/vpc images, multi-disk, sizes
# that are not chunk multiples, with two chunk sizes; every restore is
# identical to what was imported (cmp for raw, qemu-img compare for all).
source "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-nbd

# 64K chunks at zstd's fast level -3; 1M chunks at the default level 1.
for cs in 64K 1M; do
    repo="$tmp/repo-$cs"
    level=1; [ "$cs" = 64K ] && level=-3
    bootback repo init --chunk-size "$cs" --zstd-level "$level" "$repo"
    grep -q "\"zstd_level\": $level," "$repo/bootback-repo.json"
    make_disk "$tmp/a.raw" $(( 12 * 1024 * 1024 + 12345 ))
    make_disk "$tmp/b.raw" $(( 3 * 1024 * 1024 + 1 ))
    qemu-img convert -f raw -O qcow2 "$tmp/a.raw" "$tmp/a.qcow2"
    qemu-img convert -f raw -O vmdk "$tmp/b.raw" "$tmp/b.vmdk"
    qemu-img convert -f raw -O vhdx "$tmp/b.raw" "$tmp/b.vhdx"
    qemu-img convert -f raw -O vpc "$tmp/a.raw" "$tmp/a.vpc"

    bootback import "$tmp/a.raw" --vm raw1
    bootback import "$tmp/a.qcow2" --vm q1
    bootback import "$tmp/b.vmdk" --vm vm1
    bootback import "$tmp/b.vhdx" --vm vhdx1
    bootback import "$tmp/a.vpc" --vm vpc1
    bootback import "$tmp/a.qcow2" "$tmp/b.vmdk" --disk sda --disk sdb --vm multi

    # raw: identical byte for byte, sparse
    bootback restore raw1@latest --to "$tmp/out.raw"
    cmp "$tmp/a.raw" "$tmp/out.raw"
    alloc=$(du -k "$tmp/out.raw" | cut -f1)
    [ "$alloc" -lt 6000 ] || fail "restore is not sparse: ${alloc}K allocated"
    rm "$tmp/out.raw"

    for p in q1 vm1 vhdx1 vpc1; do
        src=$tmp/a.raw; [ "$p" = vm1 ] || [ "$p" = vhdx1 ] && src=$tmp/b.raw
        bootback restore "$p" --to "$tmp/out.qcow2" --format qcow2
        qemu-img compare -q "$src" "$tmp/out.qcow2" || fail "$p: qcow2 restore differs"
        bootback restore "$p" --to "$tmp/out.raw"
        qemu-img compare -q "$src" "$tmp/out.raw" || fail "$p: raw restore differs"
        rm -f "$tmp/out.qcow2" "$tmp/out.raw"
    done
    bootback restore multi --disk sda --to "$tmp/sda.raw"
    bootback restore multi --disk sdb --to "$tmp/sdb.raw"
    qemu-img compare -q "$tmp/a.raw" "$tmp/sda.raw"
    qemu-img compare -q "$tmp/b.raw" "$tmp/sdb.raw"
    # several disks: --disk is needed, the message says so
    expect_fail bootback restore multi --to "$tmp/x.raw" 2>"$tmp/err"
    grep -q "has 2 disks; choose one with --disk" "$tmp/err"
    [ ! -e "$tmp/x.raw" ]
    rm -f "$tmp/sda.raw" "$tmp/sdb.raw"

    # dedup: a newer version with one changed region stores only that
    dd if=/dev/urandom of="$tmp/a.raw" bs=64k count=1 seek=10 conv=notrunc status=none
    bootback import "$tmp/a.raw" --vm raw1 --json > "$tmp/j"
    new=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["stats"]["new_bytes"])' "$tmp/j")
    case $cs in
        64K) [ "$new" -eq 65536 ] || fail "64K: expected 65536 new bytes, got $new" ;;
        1M)  [ "$new" -eq 1048576 ] || fail "1M: expected 1048576 new bytes, got $new" ;;
    esac
    bootback restore raw1@latest --to "$tmp/out.raw"
    cmp "$tmp/a.raw" "$tmp/out.raw"
    rm "$tmp/out.raw"
    bootback repo verify
    bootback repo check
    # the restore target must not exist: nothing is overwritten
    echo keep > "$tmp/exists"
    expect_fail bootback restore raw1 --to "$tmp/exists" 2>"$tmp/err"
    grep -q "exists already" "$tmp/err"
    [ "$(cat "$tmp/exists")" = keep ]
done
echo "roundtrips ok"
