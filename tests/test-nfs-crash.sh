#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Crash safety and bit rot on an NFS repository.  SIGKILL the importer at
# each numbered commit step, at each fsync and at random moments: every
# point reported done is there and verifies, no point is half-visible,
# gc removes the leftovers, a re-run succeeds.  Then flipped bits and a
# missing chunk on the server are found by verify (exit 2), naming the
# chunk and the points using it, with no fault injected on the client.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/nfs.sh"
requires qemu-img qemu-nbd python3
nfs_start

repo=$NFS_EXPORT/repo
bootback repo init --chunk-size 64K "$(nfs_url repo)"
make_disk "$tmp/a.raw" $(( 3 * 1024 * 1024 + 777 ))
make_disk "$tmp/b.raw" $(( 2 * 1024 * 1024 ))

check_state () {
    bootback repo verify >/dev/null 2>"$tmp/err" || { cat "$tmp/err"; fail "repo verify after $1"; }
    if ! bootback repo check >/dev/null 2>"$tmp/err"; then
        if grep -v '^    ' "$tmp/err" | grep -qv "catalog out of date"; then
            cat "$tmp/err"; fail "repo check after $1"
        fi
        bootback repo reindex >/dev/null
        bootback repo check >/dev/null 2>"$tmp/err" || { cat "$tmp/err"; fail "repo check after reindex after $1"; }
    fi
}

# 1. each commit step
for step in 1 2 3 4; do
    BOOTBACK_CRASH_STEP=$step bootback import "$tmp/a.raw" --vm stepvm >/dev/null 2>&1 &&
        fail "step $step: no crash"
    check_state "crash at step $step"
done
bootback repo reindex
n=$(for p in "$repo"/points/stepvm/*; do [ -f "$p/manifest.json" ] && echo "$p"; done | wc -l)
[ "$n" -eq 2 ] || fail "expected 2 complete points after crashes at steps 3 and 4, got $n"

# 2. each fsync of one import
cnt=$(BOOTBACK_FAULT=count bootback import "$tmp/b.raw" --vm countvm 2>&1 >/dev/null |
      sed -n 's/.*ops, \([0-9]*\) fsyncs/\1/p')
[ -n "$cnt" ] && [ "$cnt" -gt 2 ] || fail "could not count fsyncs ($cnt)"
for k in $(seq 1 "$cnt"); do
    BOOTBACK_FAULT="crash-fsync@$k" bootback import "$tmp/b.raw" --vm fsyncvm >/dev/null 2>&1 &&
        fail "fsync $k: no crash"
done
check_state "crash at each of $cnt fsyncs"

# 3. random moments
done_points=()
for i in $(seq 1 40); do
    img=a.raw; [ $((i % 2)) -eq 0 ] && img=b.raw
    ( bootback import "$tmp/$img" --vm rnd > "$tmp/out.$i" 2>/dev/null ) &
    pid=$!
    sleep "0.$(( RANDOM % 3 ))$(( RANDOM % 10 ))"
    kill -9 $pid 2>/dev/null || true
    pkill -9 -P $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
    id=$(sed -n 's/^imported [^@]*@\([0-9TZ]*\):.*/\1/p' "$tmp/out.$i" 2>/dev/null || true)
    [ -n "$id" ] && done_points+=("rnd@$id")
done
check_state "40 random kills"
echo "${#done_points[@]} of 40 killed imports had reported done"
for p in "${done_points[@]}"; do
    bootback point show "$p" >/dev/null || fail "reported point $p is not there"
done
for d in "$repo"/points/rnd/*; do
    [ -f "$d/manifest.json" ] || continue
    id=$(basename "$d")
    bootback restore "rnd@$id" --to "$tmp/r.raw" >/dev/null
    cmp -s "$tmp/r.raw" "$tmp/a.raw" || cmp -s "$tmp/r.raw" "$tmp/b.raw" ||
        fail "rnd@$id restores to neither image"
    rm "$tmp/r.raw"
done
# leftovers (temp files, incomplete points, dead writers' locks) go once old
find "$repo/points" -mindepth 2 -maxdepth 2 -type d | while read -r d; do
    [ -f "$d/manifest.json" ] || touch -d '1 hour ago' "$d"
done
find "$repo/chunks" -name '*.tmp-*' -exec touch -d '1 hour ago' {} +
bootback gc
left=$(find "$repo/points" -mindepth 2 -maxdepth 2 -type d |
       while read -r d; do [ -f "$d/manifest.json" ] || echo "$d"; done | wc -l)
[ "$left" -eq 0 ] || fail "gc left $left incomplete point directories"
[ -z "$(find "$repo/chunks" -name '*.tmp-*')" ] || fail "gc left temp files"
check_state "gc"
bootback import "$tmp/a.raw" --vm rnd
bootback restore rnd@latest --to "$tmp/final.raw"
cmp "$tmp/final.raw" "$tmp/a.raw"

# 4. bit rot on the server, found through NFS
bootback import "$tmp/a.raw" --vm web
h=$(python3 -c 'import sys; print(open(sys.argv[1], "rb").read()[64:96].hex())' \
    "$(ls -d "$repo"/points/web/*/vda.fidx | head -1)")
chunk=$repo/chunks/${h:0:4}/$h
cp "$chunk" "$tmp/chunk.good"
python3 - "$chunk" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[100] ^= 0x04
open(p, 'wb').write(b)
PY
set +e
bootback repo verify > "$tmp/out" 2> "$tmp/err"; rc=$?
set -e
cat "$tmp/err"
[ $rc -eq 2 ] || fail "flipped bit: verify exit $rc, expected 2"
grep -q "$h" "$tmp/err" || fail "flipped bit: chunk not named"
grep -q "web@.* disk vda bytes 0-65535" "$tmp/err" || fail "flipped bit: point not named"
expect_fail bootback restore web --to "$tmp/bad.raw" 2> "$tmp/err"
grep -q "$h" "$tmp/err" || fail "flipped bit: restore does not name the chunk"
[ ! -e "$tmp/bad.raw" ] || fail "flipped bit: restore left its output"
rm "$chunk"
set +e
bootback repo verify > "$tmp/out" 2> "$tmp/err"; rc=$?
set -e
cat "$tmp/err"
[ $rc -eq 2 ] || fail "missing chunk: verify exit $rc, expected 2"
grep -q "$h" "$tmp/err" || fail "missing chunk: not named"
cp "$tmp/chunk.good" "$chunk"
bootback repo verify
echo "nfs crash safety and bit rot ok"
