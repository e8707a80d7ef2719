#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# An S3 endpoint that lies (tests/lib/fake-s3.py: a directory served as
# buckets, hostile as told).  Nothing it says may reach outside the
# repository or keep bootback for ever: listing names that leave the
# directory listed ("..", "../../../../../victim") are ignored, so gc
# sends no request outside s3://bkt/site/repo/ and deletes nothing of
# the victim bucket; a listing that never ends is an error, not a hang;
# the server's error message stays one printable line; a read cache
# directory open to others is refused, and one shared by two repositories
# keeps them apart; a chunk the server once answered with another's
# content (intact by its CRCs) is not kept in the read cache for ever:
# once the server answers right, the read does too; a server that sends
# a chunk a byte at a time ends in an error in bounded time; a lock the
# server does not keep is not reported as kept (point lock reads it
# back).
source "$top_srcdir/tests/functions.sh"
requires python3 timeout

export AWS_ACCESS_KEY_ID=AKFAKE AWS_SECRET_ACCESS_KEY=fake-secret-key
export BOOTBACK_S3_REGION=us-east-1
srv=$tmp/srv
mkdir -p "$srv/bkt/site" "$srv/victim"
echo "keep me" > "$srv/victim/data"
bootback repo init "$srv/bkt/site/repo" > /dev/null
head -c $(( 3 << 20 )) /dev/urandom > "$tmp/a.raw"
bootback --repo "$srv/bkt/site/repo" import "$tmp/a.raw" --vm web > /dev/null
url=s3://bkt/site/repo

fake () {       # fake MODE: a fake S3 at $ep, its requests in $tmp/log
    rm -f "$tmp/port" "$tmp/log"
    python3 "$top_srcdir/tests/lib/fake-s3.py" "$srv" "$1" "$tmp/port" "$tmp/log" \
        2> "$tmp/fake.err" &
    fake_pid=$!
    cleanup_fn "kill $fake_pid 2>/dev/null || true"
    for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
    [ -s "$tmp/port" ] || fail "the fake S3 did not start: $(cat "$tmp/fake.err")"
    export BOOTBACK_S3_ENDPOINT=http://127.0.0.1:$(cat "$tmp/port")
}
unfake () { kill "$fake_pid"; wait "$fake_pid" 2>/dev/null || true; }

## honest: the fake serves the repository (so the test can fail)
fake honest
bootback --repo "$url" points | grep -q '^web@' || fail "points through the fake S3"
bootback --repo "$url" restore web --to "$tmp/back.raw" > /dev/null
cmp "$tmp/a.raw" "$tmp/back.raw" || fail "restore through the fake S3 differs"
unfake

## listing names that leave the directory: ignored, nothing outside touched
fake dots
bootback --repo "$url" gc > "$tmp/gc" 2>&1 || fail "gc: $(cat "$tmp/gc")"
[ -f "$srv/victim/data" ] || fail "gc deleted s3://victim/data: $(grep victim "$tmp/log")"
outside=$(grep -v -E '^[A-Z]+ /bkt(/site/repo/[^?]*|\?.*)$' "$tmp/log" || true)
[ -z "$outside" ] || fail "requests outside s3://bkt/site/repo/: $outside"
grep -q '/\.\./\|/\.\.$\|/\.\.?' "$tmp/log" && fail "a request with '..': $(grep -m3 '\.\.' "$tmp/log")"
bootback --repo "$url" points | grep -q '^web@' || fail "the point went"
unfake

## a listing that never ends: an error naming it, in bounded time
fake loop
rc=0
timeout 120 "$BOOTBACK" --repo "$url" points > "$tmp/out" 2> "$tmp/err" || rc=$?
[ $rc -ne 124 ] || fail "a listing without end kept bootback for 120 s"
[ $rc -eq 1 ] || fail "endless listing: exit $rc: $(cat "$tmp/err")"
grep -q "list s3://bkt/site/repo/[a-z]*/: the server.s listing does not end" "$tmp/err" ||
    fail "endless listing: $(cat "$tmp/err")"
unfake

## the server's error message: one printable line, the secret never in it
fake msg
expect_rc 1 bootback --repo "$url" points
[ "$(wc -l < "$tmp/err")" = 1 ] || fail "the error is not one line: $(cat -A "$tmp/err")"
grep -q "HTTP 403 AccessDenied: denied bootback: repo verify" "$tmp/err" ||
    fail "403: $(cat "$tmp/err")"
grep -q "fake-secret-key" "$tmp/err" && fail "the secret key in an error"
unfake

## a read cache directory others can open: refused, naming it
fake honest
mkdir -m 0777 "$tmp/opencache"
BOOTBACK_S3_CACHE=$tmp/opencache expect_rc 1 bootback --repo "$url" points
grep -q "BOOTBACK_S3_CACHE $tmp/opencache: not a directory of this user's alone" "$tmp/err" ||
    fail "a 0777 cache directory was used: $(cat "$tmp/err")"
ln -s "$tmp/elsewhere" "$tmp/linkcache"
mkdir -m 0700 "$tmp/elsewhere"
BOOTBACK_S3_CACHE=$tmp/linkcache expect_rc 1 bootback --repo "$url" points
grep -q "not a directory of this user's alone" "$tmp/err" ||
    fail "a symbolic link as cache directory was used: $(cat "$tmp/err")"
if [ "$(id -u)" = 0 ]; then
    mkdir -m 0700 "$tmp/theirs" && chown nobody "$tmp/theirs"
    BOOTBACK_S3_CACHE=$tmp/theirs expect_rc 1 bootback --repo "$url" points
    grep -q "not a directory of this user's alone" "$tmp/err" ||
        fail "another user's cache directory was used: $(cat "$tmp/err")"
fi
BOOTBACK_S3_CACHE=$tmp/cache bootback --repo "$url" restore web --to "$tmp/c.raw" > /dev/null
cmp "$tmp/a.raw" "$tmp/c.raw" && [ "$(stat -c %a "$tmp/cache")" = 700 ] ||
    fail "a fresh cache directory"
unfake

## a read cache shared by two repositories: a chunk one served (good by
## its CRCs, but another's content under the name) is never the other's
cp -a "$srv/bkt/site/repo" "$srv/bkt/evil"
mapfile -t cs < <(find "$srv/bkt/evil/chunks" -type f | sort | head -n 2)
mv "${cs[0]}" "$tmp/x" && mv "${cs[1]}" "${cs[0]}" && mv "$tmp/x" "${cs[1]}"
fake honest
BOOTBACK_S3_CACHE=$tmp/shared expect_rc 1 bootback --repo s3://bkt/evil restore web --to "$tmp/e.raw"
grep -q "${cs[0]##*/}\|${cs[1]##*/}" "$tmp/err" || fail "evil: $(cat "$tmp/err")"
BOOTBACK_S3_CACHE=$tmp/shared bootback --repo "$url" restore web --to "$tmp/g.raw" > "$tmp/out" 2>&1 ||
    fail "what another repository served came from the shared cache: $(cat "$tmp/out")"
cmp "$tmp/a.raw" "$tmp/g.raw" || fail "restore through a shared cache differs"
unfake

## a chunk answered with another's content (intact by its CRCs, cached):
## an error naming it, and once the server answers right, the restore
## through the same cache is right (the cached copy failed its check: it
## is dropped and fetched again, never served for ever)
first=$(find "$srv/bkt/site/repo/chunks" -type f | sort | head -n 1)
fake swap
touch "$tmp/log.swap"
BOOTBACK_S3_CACHE=$tmp/swapcache expect_rc 1 bootback --repo "$url" restore web --to "$tmp/s.raw"
grep -q "${first##*/}.*SHA-256 mismatch" "$tmp/err" || fail "swap: $(cat "$tmp/err")"
rm "$tmp/log.swap"
BOOTBACK_S3_CACHE=$tmp/swapcache bootback --repo "$url" restore web --to "$tmp/h.raw" > "$tmp/out" 2>&1 ||
    fail "a wrong chunk the server served once stays in the read cache: $(cat "$tmp/out")"
cmp "$tmp/a.raw" "$tmp/h.raw" || fail "restore after a wrong chunk was cached differs"
unfake

## a server that sends a chunk a byte at a time (5 bytes/s): each try
## ends once it moved less than 1 KiB/s for the stall time (shortened
## here from 60 s to 2 s), then the tries end: an error naming the chunk,
## in bounded time (before, only less than 1 byte/s ended a try: the
## restore waited for ever)
fake trickle
rc=0
BOOTBACK_S3_STALL_SECONDS=2 timeout 150 "$BOOTBACK" --repo "$url" restore web \
    --to "$tmp/t.raw" > "$tmp/out" 2> "$tmp/err" || rc=$?
[ $rc -ne 124 ] || fail "a server trickling a chunk kept the restore for 150 s"
[ $rc -eq 1 ] || fail "trickle: exit $rc: $(cat "$tmp/err")"
grep -q "s3://bkt/site/repo/chunks/.*6 tries" "$tmp/err" || fail "trickle: $(cat "$tmp/err")"
unfake

## a lock the server answers 200 to but does not keep: not reported as kept
fake nolock
expect_rc 1 bootback --repo "$url" point lock web --days 1
grep -q "lock s3://bkt/site/repo/.*: the server answered but does not keep the retention" "$tmp/err" ||
    fail "point lock on a server that keeps no lock: $(cat "$tmp/out" "$tmp/err")"
grep -q "is locked until" "$tmp/out" && fail "reported locked: $(cat "$tmp/out")"
unfake
echo "hostile S3 endpoint ok"
