#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# nbdinfo --list shows every disk of every restore point with its
# description; the short export-name forms resolve to the right point
# and disk; the empty name means the only VM's latest point.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/nbd-plugin/plugin-functions.sh"
requires numfmt

cd "$tmp"
make_image a.img 1M "0:64K"
make_image b.img 2M "0:64K"
make_image c.img 3M "0:64K"
bb_repo_init repo 64K
bb_import repo web 20260101T000000Z vda=a.img >/dev/null
bb_import repo web 20260102T030405Z vda=b.img vdb=c.img >/dev/null
bb_import repo db 20260103T000000Z sda=c.img >/dev/null

bb_nbdkit_start "$plugin" repo=repo
nbdinfo --list "$uri" >list.out
grep -E '^export=|description' list.out | sed 's/^[[:space:]]*//' >list.actual
cat >list.expected <<'GOLD'
export="db@20260103T000000Z/sda":
description: VM db, disk sda, 2026-01-03 00:00:00 UTC, 3.0 MiB (full, crash-consistent)
export="web@20260101T000000Z/vda":
description: VM web, disk vda, 2026-01-01 00:00:00 UTC, 1.0 MiB (full, crash-consistent)
export="web@20260102T030405Z/vda":
description: VM web, disk vda, 2026-01-02 03:04:05 UTC, 2.0 MiB (full, crash-consistent)
export="web@20260102T030405Z/vdb":
description: VM web, disk vdb, 2026-01-02 03:04:05 UTC, 3.0 MiB (full, crash-consistent)
GOLD
diff -u list.expected list.actual || fail "nbdinfo --list differs"

# Short forms: NAME -> expected size.
for e in "web 2097152" "web@latest 2097152" "web/vdb 3145728" \
         "web@latest/vdb 3145728" "web@20260101T000000Z 1048576" \
         "web@2026-01-01T00:00:00Z/vda 1048576" "db 3145728" \
         "db@20260103T000000Z/sda 3145728"; do
    read -r name size <<<"$e"
    got=$(nbdinfo --size "nbd+unix:///$name?socket=$sock")
    [ "$got" = "$size" ] || fail "export $name: size $got, expected $size"
done

# Wrong names are refused at open with a message saying what is missing.
for e in "nosuch@latest/vda:no restore points of VM 'nosuch'" \
         "web@20250101T000000Z/vda:no restore point web@20250101T000000Z" \
         "web@latest/vdz:has no disk 'vdz'" \
         "web@20260101T000000Z/vdb:has no disk 'vdb'" \
         "web@yesterday:web@yesterday" \
         "a/b/c:invalid disk name" \
         "@x:invalid VM name" \
         ":holds 2 VMs"; do
    name=${e%%:*} msg=${e#*:}
    : >"$tmp/nbdkit.log.cut"
    before=$(wc -l <"$tmp/nbdkit.log")
    expect_fail nbdinfo --size "nbd+unix:///$name?socket=$sock" 2>/dev/null
    sleep 0.2
    tail -n +"$((before + 1))" "$tmp/nbdkit.log" | grep -qF "$msg" ||
        { cat "$tmp/nbdkit.log"; fail "export '$name': no '$msg' in the log"; }
done
bb_nbdkit_stop

# web has two disks at its latest point: "web" alone picks vda; with
# disk=vdb it picks vdb.
bb_nbdkit -U - "$plugin" repo=repo disk=vdb \
    --run 'nbdinfo --size "nbd+unix:///web?socket=$unixsocket"' >size.out
[ "$(cat size.out)" = 3145728 ] || fail "disk= default for export names"

# point=: one export, listed under its canonical name.
bb_nbdkit -U - "$plugin" repo=repo point=web disk=vdb \
    --run 'nbdinfo --list "$uri"' >list1.out
grep -c '^export=' list1.out | grep -qx 1 || fail "point=: not one export"
grep -qF 'export="web@20260102T030405Z/vdb"' list1.out || fail "point=: name"

# A repository with one VM: the empty export name is its latest point.
bb_repo_init repo1 64K
bb_import repo1 solo 20260101T000000Z vda=a.img >/dev/null
bb_import repo1 solo 20260105T000000Z vda=c.img >/dev/null
bb_nbdkit -U - "$plugin" repo=repo1 --run 'nbdinfo --size "$uri"' >size.out
[ "$(cat size.out)" = 3145728 ] || fail "default export"
echo "test-list: ok"
