#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Exclusive creates in a bucket with Object Lock (io-s3.c 3.).  RGW 16.2
# ignores If-None-Match: * in a versioned bucket (every Object Lock
# bucket is one), so a second create of a lock succeeded too: two gc's at
# once, a gc's lock hidden by another's release (an import then went on
# beside a sweeping gc), two imports in one point id.  The lock protocol
# on versions: exactly one of processes racing to create a lock, or to
# claim a point id, wins, round after round; a second gc is refused
# while one holds locks/gc, the holder stays visible, an import waits
# for it; the bucket's default retention locks none of the bookkeeping
# (gc and imports leave no version behind under locks/); a version left
# by a killed taker (this host, its pid gone) does not block the lock; a
# lock removed by hand (a delete marker) is free, and its old holder's
# release takes nothing of the next holder's; in a bucket made versioned
# by its owner (no Object Lock), a dead taker's newer version does not
# hide a live holder.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/ceph.sh"
source "$top_srcdir/nbd-plugin/plugin-functions.sh"
requires curl python3

ceph_shared
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
export BOOTBACK_S3_ENDPOINT=$S3_ENDPOINT BOOTBACK_S3_REGION=$S3_REGION
s3 () { curl -sS -K "$S3_CURL_CONFIG" -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' "$@"; }
b=bb-excl-$$
url=s3://$b/repo
bootback repo init --lock 1 "$url" > /dev/null
export BOOTBACK_REPO=$url
make_image "$tmp/a.img" 1M "0:64K:7"
bootback import "$tmp/a.img" --vm a > /dev/null

# race N CMD PATH...: N processes, one per PATH round, started at once
race () {
    local n=$1 cmd=$2 path=$3 i at
    rm -f "$tmp"/race.*
    at=$(python3 -c 'import time; print(time.time() + 1.5)')
    for (( i = 0; i < n; i++ )); do
        HELPER_START_AT=$at "$helper" "$cmd" "$url" "$path" > "$tmp/race.$i" 2>&1 &
    done
    wait
    cat "$tmp"/race.* | sort | uniq -c | tr '\n' ' '
    echo
}

## exactly one of 6 concurrent creates of a lock wins, 4 rounds
for r in 1 2 3 4; do
    out=$(race 6 excl "locks/race-$r")
    echo "excl round $r: $out"
    grep -qE '(^| )1 won( |$)' <<< "$out" && grep -qE '(^| )5 lost( |$)' <<< "$out" ||
        fail "round $r of 6 exclusive creates of locks/race-$r: $out ($(cat "$tmp"/race.*))"
done
# the losers took their versions back: one version is left
[ "$(s3 "$S3_ENDPOINT/$b?prefix=repo%2Flocks%2Frace-1&versions=")" = 200 ] || fail "list versions"
[ "$(grep -o '<Version>' "$tmp/body" | wc -l)" = 1 ] ||
    fail "the losers' versions of locks/race-1 are left: $(cat "$tmp/body")"

## a point id: exactly one of 4 concurrent claims wins, 3 rounds
for r in 1 2 3; do
    out=$(race 4 claim "points/a/2030010${r}T000000Z")
    echo "claim round $r: $out"
    grep -qE '(^| )1 won( |$)' <<< "$out" && grep -qE '(^| )3 lost( |$)' <<< "$out" ||
        fail "round $r of 4 claims of a point id: $out"
done

## gc against a holder of locks/gc (a gc in its sweep), and an import
coproc holder { "$helper" lock "$url" locks/gc 2>&1; }
read -r line hpid <&"${holder[0]}"
[ "$line" = locked ] || fail "helper-repo lock: $line"
expect_rc 1 bootback gc
grep -q "another garbage collection is running (.*locks/gc: host $(hostname) pid $hpid)" "$tmp/err" ||
    fail "a second gc beside the holder of locks/gc: $(cat "$tmp/err")"
[ "$("$helper" held "$url" locks/gc)" = 1 ] || fail "the holder's locks/gc is not seen after the refused gc"
# an import waits for the gc (and commits once it is over)
bootback import "$tmp/a.img" --vm b > "$tmp/imp.log" 2>&1 &
imp=$!
sleep 3
kill -0 "$imp" 2>/dev/null || fail "an import went on beside a gc's lock: $(cat "$tmp/imp.log")"
[ "$(bootback points b --json 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 0 ] ||
    fail "a point was committed beside a gc's lock"
echo >&"${holder[1]}"
read -r line <&"${holder[0]}"
[ "$line" = unlocked ] || fail "helper-repo lock: $line"
wait "$imp" || fail "the import after the gc: $(cat "$tmp/imp.log")"
sleep 3   # past gc's 2 s margin
bootback gc > /dev/null || fail "gc after the holder let go"
bootback import "$tmp/a.img" --vm b > /dev/null || fail "an import after gc"

## the default retention locks none of it: nothing is left under locks/
## but the clock (every lock, registration and loser's version deleted)
[ "$(s3 "$S3_ENDPOINT/$b?prefix=repo%2Flocks%2F&versions=")" = 200 ] || fail "list versions"
python3 - "$tmp/body" <<'PY' || fail "versions left under locks/: $(cat "$tmp/body")"
import re, sys
keys = re.findall(r'<Key>([^<]*)</Key>', open(sys.argv[1]).read())
left = sorted(set(k for k in keys if k != 'repo/locks/clock' and not k.startswith('repo/locks/race-')))
sys.exit(1 if left else 0)
PY
[ "$(s3 -I "$S3_ENDPOINT/$b/repo/locks/race-1")" = 200 ] || fail "HEAD locks/race-1"
grep -qi '^x-amz-object-lock-mode: GOVERNANCE' "$tmp/headers" ||
    fail "a lock has the default's retention: $(cat "$tmp/headers")"

## a lock removed by hand (a DELETE of its key: a delete marker) is
## released; its holder's release later takes nothing else
coproc holder2 { "$helper" lock "$url" locks/holds 2>&1; }
read -r line hpid <&"${holder2[0]}"
[ "$line" = locked ] || fail "helper-repo lock locks/holds: $line"
[ "$(s3 -X DELETE "$S3_ENDPOINT/$b/repo/locks/holds")" = 204 ] || fail "DELETE locks/holds"
[ "$("$helper" held "$url" locks/holds)" = 0 ] || fail "a lock removed by hand is still held"
[ "$("$helper" excl "$url" locks/holds)" = won ] || fail "a lock removed by hand could not be taken"
echo >&"${holder2[1]}"
read -r line <&"${holder2[0]}"
[ "$line" = unlocked ] || fail "helper-repo lock locks/holds: $line"
[ "$("$helper" held "$url" locks/holds)" = 1 ] || fail "the new holder's lock went with the old holder's release"

## a version left by a taker of this host that is gone (it took the
## lock and exited without releasing it) is taken over
[ "$(HELPER_HOST=$(hostname) "$helper" excl "$url" locks/gc)" = won ] ||
    fail "a taker of locks/gc"
bootback gc > /dev/null || fail "gc with a dead taker's version of locks/gc"

## a bucket its owner made versioned, without Object Lock: the same
## protocol.  A dead taker's version newer than a live holder's is not
## what a contender reads: it waits for the holder (it took the lock
## over, hiding the holder's version behind a delete marker, before)
vb=bb-ver-$$
[ "$(s3 -X PUT "$S3_ENDPOINT/$vb")" = 200 ] || fail "create $vb: $(cat "$tmp/body")"
printf '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>' > "$tmp/ver.xml"
[ "$(s3 -X PUT --data-binary @"$tmp/ver.xml" "$S3_ENDPOINT/$vb?versioning=")" = 200 ] ||
    fail "turn versioning on: $(cat "$tmp/body")"
vurl=s3://$vb/repo
bootback repo init "$vurl" > /dev/null
coproc vholder { "$helper" lock "$vurl" locks/holds 2>&1; }
read -r line hpid <&"${vholder[0]}"
[ "$line" = locked ] || fail "helper-repo lock locks/holds ($vb): $line"
sleep 0 & dead=$!
wait "$dead"
printf 'host=%s pid=%s n=1-0\n' "$(hostname)" "$dead" > "$tmp/dead"
[ "$(s3 -X PUT --data-binary @"$tmp/dead" "$S3_ENDPOINT/$vb/repo/locks/holds")" = 200 ] ||
    fail "PUT a dead taker's version"
out=$(timeout 8 "$helper" lock "$vurl" locks/holds < /dev/null 2>&1 || true)
! grep -q '^locked' <<< "$out" ||
    fail "a contender took locks/holds from its live holder in a versioned bucket: $out"
[ "$("$helper" held "$vurl" locks/holds)" = 1 ] || fail "the live holder's locks/holds is hidden"
echo >&"${vholder[1]}"
read -r line <&"${vholder[0]}"
[ "$line" = unlocked ] || fail "helper-repo lock locks/holds ($vb): $line"
echo "exclusive creates ok"
