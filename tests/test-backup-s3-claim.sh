#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bootback backup into an S3 repository (the shared Ceph cluster's RGW)
# whose claim of the point's id fails (BOOTBACK_FAULT=eio@K on the
# claim's operations, which run on a thread of their own while nothing
# else touches the repository): the backup stops before its backup job,
# with the claim's error under "the restore point's id", and leaves no
# checkpoint (one named with an empty id would be "bootback-UUID8-"), no
# point and a thawed guest; the next backup works.  K is found by trying
# 1, 2, ...: an earlier operation fails the backup (or is one it does
# without) before the claim, the same way every time.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/backup.sh"
source "$top_srcdir/tests/lib/ceph.sh"
requires virsh qemu-img python3 curl radosgw
backup_test_start bbs3c
ceph_shared
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
export BOOTBACK_S3_ENDPOINT=$S3_ENDPOINT BOOTBACK_S3_REGION=$S3_REGION
url=s3://bb-s3c-$$/repo
bootback repo init "$url" >/dev/null
virsh -q define "$tmp/vm.xml" >/dev/null
virsh -q start "$dom" >/dev/null
"$qga" --domain "$dom" --timeout 120 ping >/dev/null || { cat "$tmp/vm.serial"; fail "no agent"; }
checkpoints () { virsh -q checkpoint-list "$dom" --name | grep . | sort | tr '\n' ' ' || true; }
npoints () { bootback --repo "$url" points "$dom" --json |
                 python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }

found=
for k in $(seq 1 80); do
    cps=$(checkpoints) n=$(npoints) rc=0
    BOOTBACK_FAULT=eio@$k "$BOOTBACK" --repo "$url" backup "$dom" >"$tmp/out" 2>&1 || rc=$?
    if [ $rc != 0 ] && grep -q "the restore point's id" "$tmp/out"; then found=$k; break; fi
done
[ -n "$found" ] || fail "no operation of the first 80 is the claim's"
cat "$tmp/out"
grep -q "^bootback: .*the restore point's id: .*injected fault at operation $found" "$tmp/out" ||
    fail "the claim's error is not said"
[ "$(checkpoints)" = "$cps" ] ||
    fail "a checkpoint was left by a backup without an id: $(checkpoints), before: $cps"
[ "$(npoints)" = "$n" ] || fail "a failed backup left a point"
[ "$("$qga" --domain "$dom" json '{"execute":"guest-fsfreeze-status"}' | tr -d '" \n')" = thawed ] ||
    fail "the guest was left frozen"

bootback --repo "$url" backup "$dom" >"$tmp/out" 2>&1 || { cat "$tmp/out"; fail "the next backup"; }
[ "$(npoints)" = $((n + 1)) ] || fail "the next backup made no point"
echo "a backup whose id claim failed stops before its job: ok"
