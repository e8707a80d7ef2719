#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Ceph RBD as production storage, on the shared test cluster
# (tests/lib/ceph.sh) and a private libvirtd:
#   1. restore --to rbd:POOL/IMAGE: the image equals the point byte for
#      byte (read back through QEMU's rbd driver); an existing image is
#      refused, --force replaces it; a missing pool and a refused key are
#      one-line errors naming the pool and the user;
#   2. a domain whose disk is on RBD (raw): backed up (full, and the
#      output says why: no persistent dirty bitmap), twice (full again),
#      restored byte for byte; restore --force does not replace its
#      image while the VM has it open;
#   3. instant recovery -> migrate --to rbd:POOL: the guest answers its
#      agent after the pivot, its live disk is the RBD image, nbdkit is
#      gone, the image holds the guest's writes; a wrong pool fails
#      naming the pool and the VM keeps running from the backup; an
#      existing image not made by bootback is refused and kept; a migrate
#      killed during its block copy leaves the session running from the
#      backup, and the next migrate replaces the image it left;
#   4. no libvirt secret is left (virsh secret-list) and the key is in
#      no process's argv (QEMU's /proc/PID/cmdline, bootback's);
#   5. with the secret the persistent definition names defined by the
#      user, the VM boots from the RBD image alone, with the guest's file.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/ceph.sh"
requires qemu-img rbd cmp

ceph_shared
name=bbrbd-$$
key=$(sed -n 's/^[[:space:]]*key = //p' "$CEPH_KEYRING")
[ -n "$key" ] || fail "no key in $CEPH_KEYRING"
cephopts=(--ceph-conf "$CEPH_CONF" --ceph-id "$CEPH_ID" --ceph-keyring "$CEPH_KEYRING")
rbd_images () { rbd --id "$CEPH_ID" ls "$CEPH_POOL"; }
rm_images () {
    local i
    for i in $(rbd_images); do
        case $i in $name*) rbd --id "$CEPH_ID" rm --no-progress "$CEPH_POOL/$i" >/dev/null 2>&1 || true ;; esac
    done
}
cleanup_fn rm_images
qemu_rbd () { echo "rbd:$CEPH_POOL/$1:id=$CEPH_ID:conf=$CEPH_CONF:keyring=$CEPH_KEYRING"; }

## 1. restore to RBD
bootback repo init "$tmp/repo" >/dev/null
make_disk "$tmp/d.raw" $((24 << 20))
bootback import "$tmp/d.raw" --vm data >/dev/null
bootback restore data --to "rbd:$CEPH_POOL/$name-r" "${cephopts[@]}" | tee "$tmp/out"
grep -q "^restored data@.* disk .* to rbd:$CEPH_POOL/$name-r" "$tmp/out" || fail "restore output"
qemu-img convert -f raw -O raw "$(qemu_rbd "$name-r")" "$tmp/back.raw"
cmp "$tmp/d.raw" "$tmp/back.raw" || fail "rbd:$CEPH_POOL/$name-r differs from the point"
! grep -q "$name-r.part" <<< "$(rbd_images)" || fail "a .part image is left"

# an existing image: refused, then replaced with --force
expect_rc 1 bootback restore data --to "rbd:$CEPH_POOL/$name-r" "${cephopts[@]}"
grep -q "rbd:$CEPH_POOL/$name-r exists already" "$tmp/err" || fail "existing image: wrong error"
make_disk "$tmp/d2.raw" $((8 << 20))
bootback import "$tmp/d2.raw" --vm data >/dev/null
bootback restore data --to "rbd:$CEPH_POOL/$name-r" --force "${cephopts[@]}" >/dev/null
qemu-img convert -f raw -O raw "$(qemu_rbd "$name-r")" "$tmp/back2.raw"
cmp "$tmp/d2.raw" "$tmp/back2.raw" || fail "--force: the image is not the new point"

# an image called IMAGE.part that no restore made (someone's, not tagged):
# refused and kept; one a killed restore left (tagged) is replaced
rbd --id "$CEPH_ID" create --size 1M "$CEPH_POOL/$name-p.part"
expect_rc 1 bootback restore data --to "rbd:$CEPH_POOL/$name-p" "${cephopts[@]}"
grep -q "rbd:$CEPH_POOL/$name-p.part exists and is not a restore's unfinished image" "$tmp/err" ||
    fail "a foreign .part: wrong error"
grep -qx "$name-p.part" <<< "$(rbd_images)" || fail "a foreign .part image was removed"
rbd --id "$CEPH_ID" image-meta set "$CEPH_POOL/$name-p.part" bootback.owner "bootback restore"
bootback restore data --to "rbd:$CEPH_POOL/$name-p" "${cephopts[@]}" >/dev/null ||
    fail "a restore's own leftover .part was not replaced"
! grep -qx "$name-p.part" <<< "$(rbd_images)" || fail "the .part is left"

# a missing pool; a key the cluster refuses
expect_rc 1 bootback restore data --to "rbd:nopool-$$/x" "${cephopts[@]}"
grep -q "ceph pool nopool-$$: no such pool" "$tmp/err" || fail "missing pool: wrong error"
[ "$(wc -l < "$tmp/err")" -eq 1 ] || fail "missing pool: not one line"
printf '[client.%s]\n\tkey = %s\n' "$CEPH_ID" "AQBfake0000000000000000000000000000000000w==" > "$tmp/bad.keyring"
chmod 600 "$tmp/bad.keyring"
expect_rc 1 bootback restore data --to "rbd:$CEPH_POOL/$name-bad" --ceph-conf "$CEPH_CONF" \
    --ceph-id "$CEPH_ID" --ceph-keyring "$tmp/bad.keyring"
grep -q "ceph pool $CEPH_POOL: cannot connect as client.$CEPH_ID .*$tmp/bad.keyring.*the key was refused" "$tmp/err" ||
    fail "refused key: wrong error"
! grep -q "$name-bad" <<< "$(rbd_images)" || fail "a refused restore left an image"

## 2. a running domain whose disk is on RBD: backed up (full, said), restored
source "$top_srcdir/tests/lib/instant.sh"
instant_requires
instant_setup
printf '%s' "$key" > "$tmp/key.b64"; chmod 600 "$tmp/key.b64"
cat > "$tmp/secret.xml" <<EOT
<secret ephemeral='no' private='yes'><usage type='ceph'><name>ceph client.$CEPH_ID</name></usage></secret>
EOT
suuid=$(virsh secret-define "$tmp/secret.xml" | sed -n 's/^Secret \([0-9a-f-]*\) created$/\1/p')
[ -n "$suuid" ] || fail "virsh secret-define"
virsh -q secret-set-value "$suuid" --file "$tmp/key.b64" >/dev/null
rbd_disk () {   # rbd_disk IMAGE: a <disk> reading rbd:$CEPH_POOL/IMAGE as client.$CEPH_ID
    cat <<EOT
<disk type='network' device='disk'><driver name='qemu' type='raw'/>
<source protocol='rbd' name='$CEPH_POOL/$1'><host name='$CEPH_MON_HOST' port='$CEPH_MON_PORT'/></source>
<auth username='$CEPH_ID'><secret type='ceph' usage='ceph client.$CEPH_ID'/></auth>
<target dev='vda' bus='virtio'/></disk>
EOT
}
# random data, no boot sector: the firmware only reads, nothing writes
make_disk "$tmp/vm.raw" $((32 << 20))
qemu-img convert -n -f raw -O raw "$tmp/vm.raw" "$(qemu_rbd "$name-vm")" 2>/dev/null ||
    { rbd --id "$CEPH_ID" create --size 32M "$CEPH_POOL/$name-vm";
      qemu-img convert -n -f raw -O raw "$tmp/vm.raw" "$(qemu_rbd "$name-vm")"; }
dom=rbdvm-$$
"$top_srcdir/images/domain-xml" NAME="$dom" DISK_PATH=/dev/null NET_TYPE=none > "$tmp/dom.xml"
python3 - "$tmp/dom.xml" "$(rbd_disk "$name-vm")" <<'EOT'
import re, sys
s = open(sys.argv[1]).read()
s = re.sub(r"<disk type='file'.*?</disk>", sys.argv[2], s, count=1, flags=re.S)
open(sys.argv[1], "w").write(s)
EOT
virsh -q define "$tmp/dom.xml" >/dev/null
virsh -q start "$dom" >/dev/null
cleanup_fn "virsh -q destroy $dom >/dev/null 2>&1 || true"
bootback backup "$dom" | tee "$tmp/b1.out"
grep -q "RBD disk (raw): QEMU keeps no persistent dirty bitmap" "$tmp/b1.out" ||
    fail "the backup does not say why an RBD disk is read whole"
bootback backup "$dom" --json > "$tmp/b2.json"
python3 - "$tmp/b2.json" <<'EOT' || fail "second backup of the RBD disk is not a full read"
import json, sys
d = json.load(open(sys.argv[1]))[0]
disk = d["disks"][0]
assert disk["mode"] == "full" and "RBD disk" in disk["reason"], disk
assert disk["bytes_read"] > 0, disk
EOT
bootback restore "$dom" --to "$tmp/vm.back" >/dev/null
cmp "$tmp/vm.raw" "$tmp/vm.back" || fail "the RBD domain's point differs from its disk"
# --force does not replace an image a running VM has open
expect_rc 1 bootback restore data --to "rbd:$CEPH_POOL/$name-vm" --force "${cephopts[@]}"
grep -q "cannot remove the existing image (in use?).*rbd:$CEPH_POOL/$name-vm" "$tmp/err" ||
    fail "--force over an image in use: wrong error"
qemu-img convert -f raw -O raw "$(qemu_rbd "$name-vm")" "$tmp/vm.after"
cmp "$tmp/vm.raw" "$tmp/vm.after" || fail "--force changed an image in use"
! grep -q "$name-vm.part" <<< "$(rbd_images)" || fail "a .part image is left"
virsh -q destroy "$dom" >/dev/null
virsh -q undefine "$dom" >/dev/null
virsh -q secret-undefine "$suuid" >/dev/null

## 3. instant recovery, then migrate --to rbd:POOL/PREFIX
instant_import_tiny
bootback instant tiny --agent-timeout 120 > "$tmp/instant.out" || { cat "$tmp/instant.out"; fail "instant"; }
grep -q "guest agent heartbeat after" "$tmp/instant.out" || fail "no heartbeat from the instant VM"
state () { bootback sessions --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["state"])'; }

# a wrong pool: one line naming it, the VM still on the backup
expect_rc 1 bootback migrate tiny --to "rbd:nopool-$$/x-" "${cephopts[@]}"
grep -q "ceph pool nopool-$$: no such pool" "$tmp/err" || fail "wrong pool: wrong error"
[ "$(wc -l < "$tmp/err")" -eq 1 ] || fail "wrong pool: not one line"
[ "$(state)" = running ] || fail "state after the wrong pool: $(state)"

# an image of that name that is not this session's: refused, kept
rbd --id "$CEPH_ID" create --size 1M "$CEPH_POOL/$name-x-tiny-vda"
expect_rc 1 bootback migrate tiny --to "rbd:$CEPH_POOL/$name-x-" "${cephopts[@]}"
grep -q "rbd:$CEPH_POOL/$name-x-tiny-vda exists already" "$tmp/err" || fail "existing image: wrong error"
grep -q "$name-x-tiny-vda" <<< "$(rbd_images)" || fail "someone else's image was removed"

# the guest writes before the migration (24 MiB for the mirror)
"$qga" --domain tiny exec /bin/sh -c 'echo before-$$ > /root/before.txt;
    dd if=/dev/urandom of=/root/big bs=1M count=24 conv=fsync 2>/dev/null; sync'

# a migrate killed (kill -9) during its block copy (1 MiB/s): the next
# command puts the session back on the backup; the image it left is
# tagged as this session's, so the next migrate replaces it
BOOTBACK_MIGRATE_BANDWIDTH=1024K "$BOOTBACK" migrate tiny --to "rbd:$CEPH_POOL/$name-" \
    "${cephopts[@]}" >/dev/null 2>&1 &
mpid=$!
for (( i = 0; i < 600; i++ )); do
    grep -q "Block Copy" <<< "$(virsh blockjob tiny vda 2>&1)" && break
    sleep 0.1
done
grep -q "Block Copy" <<< "$(virsh blockjob tiny vda 2>&1)" || fail "no block copy to kill"
kill -9 "$mpid"; wait "$mpid" || true
[ "$(state)" = running ] || fail "state after a killed migration: $(state)"
grep -q "overlays/tiny.vda.qcow2" <<< "$(virsh domblklist tiny)" || fail "disk moved by a killed migrate"
grep -q "$name-tiny-vda" <<< "$(rbd_images)" || fail "the killed migrate left no image (test premise)"
BOOTBACK_PROGRESS=1 bootback migrate tiny --to "rbd:$CEPH_POOL/$name-" "${cephopts[@]}" |
    tee "$tmp/migrate.out"
grep -q "^migrated session 1 (tiny)" "$tmp/migrate.out" || fail "migrate output"
grep -q "disk vda: rbd:$CEPH_POOL/$name-tiny-vda" "$tmp/migrate.out" || fail "no rbd image named"
grep -q "usage 'ceph client.$CEPH_ID'" "$tmp/migrate.out" || fail "no word about the secret"
[ "$(state)" = migrated ] || fail "state after the migration: $(state)"
grep -q "$CEPH_POOL/$name-tiny-vda" <<< "$(virsh domblklist tiny)" || fail "live disk not on RBD"
virsh dumpxml tiny > "$tmp/live.xml"
grep -q "protocol='rbd' name='$CEPH_POOL/$name-tiny-vda'" "$tmp/live.xml" || fail "live XML: no rbd source"
virsh dumpxml --inactive tiny > "$tmp/inactive.xml"
grep -q "protocol='rbd' name='$CEPH_POOL/$name-tiny-vda'" "$tmp/inactive.xml" ||
    fail "persistent definition not on RBD"
grep -q "usage='ceph client.$CEPH_ID'" "$tmp/inactive.xml" || fail "persistent definition: secret usage"
sleep 1
if pgrep -af -- "^nbdkit .*$BOOTBACK_HOME/sessions/1/"; then fail "nbdkit still running after the pivot"; fi
# the guest answers and its writes, old and new, are on RBD
"$qga" --domain tiny --timeout 60 ping >/dev/null || fail "no heartbeat after the migration"
"$qga" --domain tiny exec /bin/sh -c 'echo after-$$ > /root/after.txt; sync'
grep -q "before-" <<< "$("$qga" --domain tiny exec /bin/sh -c \
    'echo 3 > /proc/sys/vm/drop_caches; cat /root/before.txt')" || fail "file written before lost"
grep -q "$name-tiny-vda" <<< "$(rbd_images)" || fail "no image in the pool"

## 4. no secret left, no key in any argv
[ -z "$(virsh -q secret-list)" ] || { virsh secret-list; fail "a libvirt secret is left"; }
qpid=$(libvirtd_domain_pid tiny)
[ -n "$qpid" ] || fail "no QEMU PID for tiny"
! grep -qa -- "$key" "/proc/$qpid/cmdline" || fail "the key is on QEMU's command line"
for p in $(pgrep -f -- "$BOOTBACK_HOME" || true); do
    ! grep -qa -- "$key" "/proc/$p/cmdline" 2>/dev/null || fail "the key is in the argv of PID $p"
done

## 5. the VM starts again from RBD alone, once the user defined the secret
virsh -q destroy tiny >/dev/null
suuid=$(virsh secret-define "$tmp/secret.xml" | sed -n 's/^Secret \([0-9a-f-]*\) created$/\1/p')
virsh -q secret-set-value "$suuid" --file "$tmp/key.b64" >/dev/null
cleanup_fn "virsh -q secret-undefine $suuid >/dev/null 2>&1 || true"
virsh -q start tiny >/dev/null
"$qga" --domain tiny --timeout 180 ping >/dev/null || fail "the VM does not boot from RBD"
grep -q "after-" <<< "$("$qga" --domain tiny exec /bin/sh -c 'cat /root/after.txt')" ||
    fail "the file written after the migration is not on the RBD image"
virsh -q destroy tiny >/dev/null
