#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Every export of a repository reads back exactly the imported image:
# nbdcopy and qemu-img compare, for chunk sizes 64K and 1M, with disk
# sizes that are not a multiple of the chunk size (and one smaller than a
# chunk, one all zeros), several VMs, points and disks.  Then
# --filter=checkwrite with nbdcopy "$uri" "$uri" proves that reads are
# stable and that the zero extents really read as zeros.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/nbd-plugin/plugin-functions.sh"
requires qemu-img numfmt

cd "$tmp"
make_image a.img 5000000 "0:300K 1M:64K:7 3000000:1M 4990000:10000"
cp a.img a2.img
make_image a2.img 5000000 "0:300K 1M:64K:7 3000000:1M 4990000:10000 2M:100K"
make_image b.img $((3 * 1048576 + 4097)) "0:1M 2M:4097 3M:4097"
make_image c.img 1000 "0:1000"
make_image z.img $((2 * 1048576 + 1)) ""

exports=(
    "web@20260101T000000Z/vda a.img"
    "web@20260102T000000Z/vda a2.img"
    "db@20260103T000000Z/vda b.img"
    "db@20260103T000000Z/vdb c.img"
    "zero@20260104T000000Z/vda z.img"
)
# The CLI imports any format QEMU reads: a qcow2 copy serves the same bytes
# (of a size that is a multiple of 512, as qcow2 sizes are).
if bb_have_cli; then
    head -c $((9765 * 512)) a.img >q.img
    qemu-img convert -f raw -O qcow2 q.img q.qcow2
    exports+=("qc@20260105T000000Z/vda q.img")
fi

for cs in 64K 1M; do
    repo=repo-$cs
    bb_repo_init $repo $cs
    bb_import $repo web 20260101T000000Z vda=a.img
    bb_import $repo web 20260102T000000Z vda=a2.img
    bb_import $repo db 20260103T000000Z vda=b.img vdb=c.img
    bb_import $repo zero 20260104T000000Z vda=z.img
    if bb_have_cli; then bb_import $repo qc 20260105T000000Z vda=q.qcow2; fi

    bb_nbdkit_start "$plugin" repo=$repo
    for e in "${exports[@]}"; do
        read -r name img <<<"$e"
        euri="nbd+unix:///$name?socket=$sock"
        rm -f out.img
        nbdcopy "$euri" out.img
        cmp out.img "$img" || fail "$cs $name: nbdcopy differs from $img"
        qemu-img compare -q -f raw -F raw "$euri" "$img" ||
            fail "$cs $name: qemu-img compare differs from $img"
        size=$(nbdinfo --size "$euri")
        [ "$size" -eq "$(stat -c %s "$img")" ] || fail "$cs $name: size $size"
    done
    bb_nbdkit_stop

    # point= and disk= select the same exports; the export name is ignored.
    bb_nbdkit -U - "$plugin" repo=$repo point=db@20260103T000000Z disk=vdb \
        --run 'nbdcopy "$uri" out2.img' || fail "point=/disk= copy"
    cmp out2.img c.img || fail "$cs point=db disk=vdb differs"
    bb_nbdkit -U - "$plugin" $repo point=web \
        --run 'nbdcopy "nbd+unix:///whatever?socket=$unixsocket" out3.img' ||
        fail "magic repo / latest copy"
    cmp out3.img a2.img || fail "$cs point=web (latest) differs"

    # checkwrite: every write must equal what a read returns, and every
    # zero extent must read as zeros.
    for p in web@20260101T000000Z db@20260103T000000Z zero; do
        bb_nbdkit -U - --filter=checkwrite "$plugin" repo=$repo point=$p \
            --run 'nbdcopy "$uri" "$uri"' || fail "$cs $p: checkwrite"
    done
    rm -f out2.img out3.img
done
echo "test-copy: ok"
