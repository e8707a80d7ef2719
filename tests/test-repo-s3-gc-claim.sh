#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# An import into S3 claims its point's id (the marker points/VM/ID/) on a
# thread of its own while its chunks go up (writer.c), once it is
# registered (locks/writers/) and has looked for a GC (locks/gc).  A GC
# that starts in that window, with the importer stopped at its first
# repository operation after the look (BOOTBACK_FAULT=stop@K), waits for
# the writer: it sweeps none of the chunks the import then reuses (those
# of a pruned point, unreferenced and old), nor the claimed directory,
# and both end well: the import's point verifies and restores byte for
# byte, and a later gc finds nothing unreferenced that it should have
# kept.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/ceph.sh"
source "$top_srcdir/tests/lib/images.sh"
requires curl python3
images_tiny
ceph_shared

export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
export BOOTBACK_S3_ENDPOINT=$S3_ENDPOINT BOOTBACK_S3_REGION=$S3_REGION
b=bb-s3gc-$$
url=s3://$b/repo
export BOOTBACK_REPO=$url
s3 () { curl -sS -K "$S3_CURL_CONFIG" -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' "$@"; }
# the keys under PREFIX (below the repository)
keys () {
    s3 "$S3_ENDPOINT/$b?list-type=2&prefix=repo%2F$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1")" >/dev/null
    grep -o '<Key>[^<]*</Key>' "$tmp/body" | sed 's/<[^>]*>//g' || true
}
# state PID: its process state letter (T stopped), "" once it is gone
state () { awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null || true; }

bootback repo init --chunk-size 1M "$url" > /dev/null   # 39 chunks of the tiny image
cp --sparse=always "$TINY_IMG" "$tmp/tiny.img"
make_disk "$tmp/other.raw" $(( 4 << 20 ))
# the tiny image's chunks, then unreferenced: its only point pruned
bootback import "$tmp/tiny.img" --vm old > /dev/null
bootback import "$tmp/other.raw" --vm old > /dev/null
bootback prune old --keep-last 1 | grep -q "removed 1 restore points" || fail "prune old"
sleep 3     # the chunks older than gc's 2 s margin: a sweeping gc takes them

# The first operation at which a stopped import is registered: its look
# for locks/gc.  Stopped one operation later, it has looked (nothing
# there) and has not claimed its point yet (its other threads stop a
# moment later: the claim may go on that long).
k=0
for (( n = 1; n <= 200; n++ )); do
    BOOTBACK_FAULT=stop@$n "$BOOTBACK" import "$tmp/tiny.img" --vm new > "$tmp/imp.out" 2>&1 &
    imp=$!
    while [ "$(state $imp)" != T ] && kill -0 $imp 2>/dev/null; do sleep 0.05; done
    [ "$(state $imp)" = T ] || { wait $imp || true; fail "stop@$n: the import ran to its end unstopped"; }
    if [ -n "$(keys locks/writers/)" ]; then
        k=$((n + 1))
        kill -9 $imp; wait $imp || true
        break
    fi
    kill -9 $imp; wait $imp || true
done
[ "$k" -gt 0 ] || fail "no stopped import was ever registered"
[ -z "$(keys points/new/)" ] || fail "a point of new was claimed before the registration: $(keys points/new/)"
echo "registered at operation $((k - 1)); stopping at $k"
sleep 1     # (the killed registrations are dead: this host, pid gone)

BOOTBACK_FAULT=stop@$k "$BOOTBACK" import "$tmp/tiny.img" --vm new > "$tmp/imp.out" 2>&1 &
imp=$!
while [ "$(state $imp)" != T ] && kill -0 $imp 2>/dev/null; do sleep 0.05; done
[ "$(state $imp)" = T ] || { cat "$tmp/imp.out"; fail "stop@$k: the import was not stopped"; }
[ -n "$(keys locks/writers/)" ] || fail "stopped at $k: not registered"
bootback gc --json > "$tmp/gc.json" 2> "$tmp/gc.err" &
gc=$!
sleep 4
kill -0 $gc 2>/dev/null || { cat "$tmp/gc.json" "$tmp/gc.err"; fail "gc did not wait for the registered import"; }
kill -CONT $imp
wait $imp || { cat "$tmp/imp.out"; fail "the import beside gc failed"; }
cat "$tmp/imp.out"
# past its look for gc: it never waited for gc, and reused every chunk
grep -q "39 chunks reused" "$tmp/imp.out" || fail "the import did not reuse the pruned point's chunks"
wait $gc || { cat "$tmp/gc.err"; fail "gc beside the import failed"; }
cat "$tmp/gc.json"
python3 - "$tmp/gc.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
# waited for the writer: its point was there when gc marked, so the
# tiny image's chunks were referenced again; old@'s other.raw chunks stay
assert j["removed"] == 0, j
assert j["incomplete_points_removed"] == 0, j
PY
bootback points new --json | grep -q '"id"' || fail "no point of new"
bootback repo verify | grep -q "2 points, 2 disks, .*: no problems" ||
    fail "after gc beside the import: $(bootback repo verify 2>&1)"
bootback restore new --to "$tmp/back.raw" > /dev/null
cmp "$tmp/tiny.img" "$tmp/back.raw" || fail "the point made beside gc differs"
sleep 3
nref=$(bootback gc --json | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["chunks"] - j["referenced"])')
[ "$nref" = 0 ] || fail "$nref unreferenced chunks left after gc"
echo "gc beside an import stopped between its look for gc and its claim: waited, removed nothing it uses"
