#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Faults of a repository on S3 (issue 18), on the shared Ceph cluster
# (tests/lib/ceph.sh):
#  - RGW stopped mid-import: the import goes through a radosgw of this
#    test's own on the shared cluster, killed (SIGKILL, by its PID) once
#    chunks are being uploaded: the import fails with one error naming
#    the bucket and the key, no point is visible and repo check finds no
#    problem (through the shared gateway), and a rerun completes;
#  - 40 imports killed (SIGKILL) at random I/O operations (BOOTBACK_FAULT
#    crash@K): after each, repo check finds no problem; at the end every
#    point verifies, a rerun restores byte for byte and gc leaves no
#    unreferenced chunk;
#  - 40 syncs local -> S3 killed the same way: after each, the
#    destination passes repo check, and a rerun completes and restores
#    byte for byte.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/ceph.sh"
requires curl python3 cmp radosgw
ceph_shared

export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
export BOOTBACK_S3_ENDPOINT=$S3_ENDPOINT BOOTBACK_S3_REGION=$S3_REGION
b=bb-s3f-$$
s3_keys () {    # BUCKET PREFIX: the keys below PREFIX
    curl -sS -K "$S3_CURL_CONFIG" -o "$tmp/list.xml" \
        "$S3_ENDPOINT/$1?list-type=2&prefix=$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$2")"
    grep -o '<Key>[^<]*</Key>' "$tmp/list.xml" | sed 's/<[^>]*>//g' || true
}
random_at () { echo $(( (RANDOM * 32768 + RANDOM) % $1 + 1 )); }

## RGW stopped mid-import
# a gateway of our own on the shared cluster: stopping it stops no one else
rgw_start () {
    rgw_port=$(python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    mkdir -p "$tmp/rgw"
    setsid radosgw --conf "$CEPH_CONF" -f -n client.rgw.a \
        --keyring "$(dirname "$CEPH_CONF")/rgw.keyring" --admin-socket "" \
        --rgw-frontends "beast endpoint=127.0.0.1:$rgw_port" \
        --log-file "$tmp/rgw/log" --rgw-data "$tmp/rgw" \
        < /dev/null > "$tmp/rgw/out" 2>&1 &
    rgw_pid=$!
    cleanup_fn "kill -9 $rgw_pid 2>/dev/null || true"
    for _ in $(seq 120); do
        curl -sf -o /dev/null "http://127.0.0.1:$rgw_port/" && return 0
        sleep 0.5
    done
    fail "our radosgw did not start: $(tail -n 3 "$tmp/rgw/out")"
}
url=s3://$b/r
bootback repo init --chunk-size 1M "$url" > /dev/null
head -c $(( 96 << 20 )) /dev/urandom > "$tmp/big.raw"
rgw_start
# the import stops itself (SIGSTOP) at its 40th I/O operation, chunks
# being uploaded; the gateway is killed while it is stopped and the
# import goes on: however fast this machine is, it cannot finish first
rc=0
BOOTBACK_FAULT=stop@40 "$BOOTBACK" --s3-endpoint "http://127.0.0.1:$rgw_port" \
    --repo "$url" import "$tmp/big.raw" --vm big > "$tmp/imp.out" 2> "$tmp/imp.err" &
imp=$!
wait_stopped "$imp" ||
    fail "the import did not stop at its 40th operation: $(cat "$tmp/imp.err")"
[ "$(s3_keys "$b" r/chunks/ | wc -l)" -ge 1 ] || fail "no chunk uploaded before the stop"
kill -9 "$rgw_pid"
wait "$rgw_pid" 2>/dev/null || true
kill -CONT "$imp"
wait "$imp" || rc=$?
cat "$tmp/imp.err"
[ "$rc" -eq 1 ] || fail "import with RGW stopped: exit $rc, expected 1"
[ "$(grep -c . "$tmp/imp.err")" -eq 1 ] || fail "more than one line of error"
grep -q "s3://$b/r/.*127.0.0.1:$rgw_port" "$tmp/imp.err" ||
    fail "the error names neither the object nor the endpoint: $(cat "$tmp/imp.err")"
# nothing half-visible, through the shared gateway
s3_keys "$b" r/points/ > "$tmp/keys"
! grep -q 'manifest.json$' "$tmp/keys" || fail "a manifest was written: $(cat "$tmp/keys")"
expect_rc 0 bootback --repo "$url" points big
! grep -q '^big@' "$tmp/out" || fail "a point is visible: $(cat "$tmp/out")"
bootback --repo "$url" repo check | grep -q "no problems" || fail "repo check after the stopped import"
# the gateway back: a rerun completes
rgw_start
bootback --s3-endpoint "http://127.0.0.1:$rgw_port" --repo "$url" import "$tmp/big.raw" --vm big > /dev/null
bootback --repo "$url" restore big --to "$tmp/back.raw" > /dev/null
cmp "$tmp/big.raw" "$tmp/back.raw" || fail "the rerun's point differs"
rm -f "$tmp/back.raw" "$tmp/big.raw"
kill -9 "$rgw_pid"

## 40 imports killed at random I/O operations
url=s3://$b/k
bootback repo init --chunk-size 256K "$url" > /dev/null
head -c $(( 4 << 20 )) /dev/urandom > "$tmp/k.raw"
BOOTBACK_FAULT=count "$BOOTBACK" --repo "$url" import "$tmp/k.raw" --vm count > /dev/null 2> "$tmp/count"
ops=$(awk '/^bootback-fault:/ {print $2; exit}' "$tmp/count")
[ "$ops" -gt 30 ] || fail "a whole import counted $ops operations"
killed=0
for (( n = 1; n <= 40; n++ )); do
    # new data each time: every import stores as many chunks as counted
    head -c $(( 4 << 20 )) /dev/urandom > "$tmp/kn.raw"
    at=$(random_at "$ops")
    rc=0
    BOOTBACK_FAULT=crash@$at "$BOOTBACK" --repo "$url" import "$tmp/kn.raw" --vm k > /dev/null 2>&1 || rc=$?
    [ $rc -eq 137 ] && killed=$((killed + 1))
    [ $rc -eq 0 ] || [ $rc -eq 137 ] || fail "import crash@$at: exit $rc"
    bootback --repo "$url" repo check > "$tmp/out" 2>&1 ||
        { cat "$tmp/out"; fail "import crash@$at: repo check"; }
done
[ $killed -ge 35 ] || fail "only $killed of 40 imports were killed"
bootback --repo "$url" repo verify > "$tmp/out" 2>&1 || { cat "$tmp/out"; fail "a point does not verify"; }
bootback --repo "$url" import "$tmp/k.raw" --vm k > /dev/null
bootback --repo "$url" restore k --to "$tmp/k.back" > /dev/null
cmp "$tmp/k.raw" "$tmp/k.back" || fail "the import after 40 kills differs"
sleep 3    # past gc's 2 s margin
bootback --repo "$url" gc > /dev/null
left=$(bootback --repo "$url" gc --json | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["chunks"] - j["referenced"])')
[ "$left" = 0 ] || fail "$left unreferenced chunks after gc"
echo "40 killed imports ($killed at an operation): no half-visible point"

## 40 syncs local -> S3 killed at random I/O operations
bootback repo init --chunk-size 256K "$tmp/src" > /dev/null
bootback --repo "$tmp/src" import "$tmp/k.raw" --vm web > /dev/null
cp "$tmp/k.raw" "$tmp/k2.raw"
head -c 300000 /dev/urandom | dd of="$tmp/k2.raw" bs=256k seek=5 conv=notrunc status=none
bootback --repo "$tmp/src" import "$tmp/k2.raw" --vm web > /dev/null
ids=($(bootback --repo "$tmp/src" points web --json | python3 -c 'import json,sys; print(" ".join(p["id"] for p in json.load(sys.stdin)))'))
dst () { echo "s3://$b/s$1"; }
bootback repo init --chunk-size 256K "$(dst 0)" > /dev/null
BOOTBACK_FAULT=count "$BOOTBACK" repo sync "$tmp/src" "$(dst 0)" > /dev/null 2> "$tmp/count"
ops=$(awk '/^bootback-fault:/ {print $2; exit}' "$tmp/count")
[ "$ops" -gt 30 ] || fail "a whole sync counted $ops operations"
killed=0
for (( n = 1; n <= 40; n++ )); do
    d=$(dst "$n")
    bootback repo init --chunk-size 256K "$d" > /dev/null
    at=$(random_at "$ops")
    rc=0
    BOOTBACK_FAULT=crash@$at "$BOOTBACK" repo sync "$tmp/src" "$d" > /dev/null 2>&1 || rc=$?
    [ $rc -eq 137 ] && killed=$((killed + 1))
    [ $rc -eq 0 ] || [ $rc -eq 137 ] || fail "sync crash@$at: exit $rc"
    bootback --repo "$d" repo check > "$tmp/out" 2>&1 ||
        { cat "$tmp/out"; fail "sync crash@$at: the destination fails repo check"; }
    "$BOOTBACK" repo sync "$tmp/src" "$d" > /dev/null 2>&1 || fail "sync crash@$at: the rerun failed"
done
[ $killed -ge 30 ] || fail "only $killed of 40 syncs were killed"
bootback --repo "$d" repo verify > "$tmp/out" 2>&1 || { cat "$tmp/out"; fail "the last destination does not verify"; }
bootback --repo "$d" restore "web@${ids[0]}" --to "$tmp/r0.raw" > /dev/null
bootback --repo "$d" restore "web@${ids[1]}" --to "$tmp/r1.raw" > /dev/null
cmp "$tmp/k.raw" "$tmp/r0.raw" && cmp "$tmp/k2.raw" "$tmp/r1.raw" || fail "the rerun's copies differ"
echo "40 killed syncs to S3 ($killed at an operation), each completed by a rerun"
