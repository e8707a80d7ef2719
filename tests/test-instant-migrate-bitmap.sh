#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Delta migrate-back onto a production qcow2 that keeps the dirty bitmap
# of the point's checkpoint (recovery/instant/delta-qcow2.c), through a
# private libvirtd (TCG).  The tiny VM runs from a qcow2 and is backed up
# with `bootback backup` (a libvirt checkpoint: a persistent bitmap in the
# image); the guest writes 8 MiB after the backup; the VM is stopped and
# undefined (the outage).  The point booted instantly, the guest writes
# again.  A migrate --onto killed in the middle of the delta: the next
# `bootback sessions` gives the image its content back.  Then migrate
# --onto the production qcow2: the output says the
# bitmap was used, how many chunks it left to read and how many were
# written (fewer than the image holds), and the image is byte for byte
# the guest's view of its disk; the guest runs on it with what it wrote.
# Then a copy of the production image whose bitmap lies (cleared with
# qemu-img, then 80 chunks written with qemu-io): the sample of clean
# chunks catches it, the output says every chunk was compared, and the
# image still ends byte for byte the session's disk.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/instant.sh"
instant_requires cmp qemu-io

instant_setup
M=1048576
prod=$tmp/prod/tiny.qcow2
mkdir -p "$tmp/prod"
qemu-img convert -O qcow2 "$TINY_IMG" "$prod"
"$top_srcdir/images/domain-xml" NAME=tiny DISK_PATH="$prod" DISK_FORMAT=qcow2 \
    NET_TYPE=none > "$tmp/tiny.xml"
virsh -q define "$tmp/tiny.xml" >/dev/null
virsh -q start tiny >/dev/null
"$qga" --domain tiny --timeout 120 ping >/dev/null || fail "no guest agent"
bootback backup tiny > "$tmp/backup.out" || { cat "$tmp/backup.out"; fail "backup"; }
cp=$(virsh checkpoint-list tiny --name | grep '^bootback-')
[ -n "$cp" ] || fail "the backup made no checkpoint"
"$qga" --domain tiny exec /bin/sh -c \
    'dd if=/dev/urandom of=/root/after bs=1M count=8 2>/dev/null; sync'
virsh -q destroy tiny >/dev/null                 # SIGTERM: QEMU stores the bitmaps
virsh -q undefine tiny --checkpoints-metadata >/dev/null
info=$(qemu-img info -U --output=json "$prod")
grep -q "\"name\": \"$cp\"" <<< "$info" || fail "no bitmap $cp in $prod: $info"
cp "$prod" "$tmp/prod.orig"

bootback instant tiny --network none --agent-timeout 120 > "$tmp/instant.out"
"$qga" --domain tiny exec /bin/sh -c \
    'dd if=/dev/urandom of=/root/data bs=1M count=6 2>/dev/null; sha256sum /root/data > /root/data.sum; sync'

# 1. Killed in the middle of the delta (after 2 chunks written through
# qemu-nbd): the next bootback command undoes it, the image as it was.
journal=$tmp/prod/.tiny.qcow2.bootback-undo
rc=0
BOOTBACK_DELTA_TEST=crash@2 "$BOOTBACK" migrate 1 --onto "$prod" --format qcow2 >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 137 ] || fail "crash@2: exit $rc, expected 137 (SIGKILL)"
[ -f "$journal" ] || fail "no undo journal after a crash"
for (( i = 0; i < 100; i++ )); do
    pgrep -f "qemu-nbd .*$prod" >/dev/null || break; sleep 0.1    # it follows us
done
! qemu-img compare -U -q -f qcow2 -F qcow2 "$tmp/prod.orig" "$prod" ||
    fail "crash@2 wrote nothing (the hook did not fire)"
bootback sessions >/dev/null
[ ! -e "$journal" ] || fail "the undo journal is left"
qemu-img compare -U -f qcow2 -F qcow2 "$tmp/prod.orig" "$prod" ||
    fail "the image is not as it was after the undo"

# 2. The bitmap used: the guest paused (its view of its disk stands
# still), what a full migration would give first, then migrate --onto.
virsh -q suspend tiny
qemu-img convert -U -O raw "$BOOTBACK_HOME/overlays/tiny.vda.qcow2" "$tmp/expected.img"
bootback migrate 1 --onto "$prod" --format qcow2 | tee "$tmp/migrate.out"
line=$(grep "^delta of vda: " "$tmp/migrate.out") || fail "no delta line"
read -r dirty total sampled written < <(sed -n \
    "s/^delta of vda: bitmap $cp used: \([0-9]*\) of \([0-9]*\) chunks dirty since the point; \([0-9]*\) clean chunks sampled, all the point's; \([0-9]*\) chunks written$/\1 \2 \3 \4/p" \
    <<< "$line")
[ -n "$written" ] || fail "the bitmap was not used: $line"
[ "$total" -eq 256 ] && [ "$sampled" -eq 64 ] || fail "unexpected counts: $line"
[ "$dirty" -ge 8 ] && [ "$dirty" -lt 128 ] || fail "$dirty dirty chunks for 8 MiB written: $line"
[ "$written" -ge 8 ] && [ "$written" -le "$dirty" ] || fail "$written written, $dirty dirty: $line"
grep -q "^delta: $written of 256 chunks differed and were written" "$tmp/migrate.out" ||
    fail "the summary disagrees"
qemu-img compare -U -f raw -F qcow2 "$tmp/expected.img" "$prod" ||
    fail "the production image differs from the guest's view"
[ ! -e "$tmp/prod/.tiny.qcow2.bootback-undo" ] || fail "undo journal left after the pivot"
grep -q "$prod" <<< "$(virsh domblklist tiny)" || fail "running disk not on $prod"
grep -q "type='qcow2'" <<< "$(virsh dumpxml --inactive tiny)" ||
    fail "the persistent definition does not say qcow2"
! grep -q "protocol='nbd'" <<< "$(virsh dumpxml tiny)" ||
    fail "the migrated disk still has the backup (NBD) under it"
virsh -q resume tiny
grep -q "/root/data: OK" <<< "$("$qga" --domain tiny exec /bin/sh -c \
    'echo 3 > /proc/sys/vm/drop_caches; sha256sum -c /root/data.sum')" ||
    fail "the guest's data differs on the migrated disk"

# 3. A bitmap that lies: cleared, then 80 chunks written without it.
lie=$tmp/prod/lie.qcow2
cp "$tmp/prod.orig" "$lie"
qemu-img bitmap --clear "$lie" "$cp"
args=()
for (( c = 3; c < 243; c += 3 )); do args+=(-c "write -P 0x5a $(( c * M )) 4096"); done
qemu-io -f qcow2 "${args[@]}" "$lie" >/dev/null
qemu-img bitmap --clear "$lie" "$cp"
bootback instant tiny --name tiny2 --network none --agent-timeout 0 >/dev/null
virsh -q suspend tiny2
qemu-img convert -U -O raw "$BOOTBACK_HOME/overlays/tiny2.vda.qcow2" "$tmp/expected2.img"
bootback migrate 2 --onto "$lie" --format qcow2 | tee "$tmp/migrate2.out"
grep -q "^delta of vda: bitmap $cp not used: chunk [0-9]*, clean by it, differs from the point .*: every chunk compared; [0-9]* chunks written$" \
    "$tmp/migrate2.out" || fail "a lying bitmap was not caught"
qemu-img compare -U -f raw -F qcow2 "$tmp/expected2.img" "$lie" ||
    fail "after a lying bitmap, the image differs from the guest's view"
echo "migrate --onto qcow2 with its bitmap ok"
