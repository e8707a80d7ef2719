#!/usr/bin/env bash
# Crash safety: SIGKILL the importer at each numbered commit step, at each
# fsync, and at >= 100 random moments.  Afterwards every point that was
# reported done verifies and restores, no point is half-visible (repo check
# is clean), and a re-run succeeds.
source "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-nbd

repo=$tmp/repo
bootback repo init --chunk-size 64K "$repo"
make_disk "$tmp/a.raw" $(( 3 * 1024 * 1024 + 777 ))
make_disk "$tmp/b.raw" $(( 2 * 1024 * 1024 ))
done_points=()

import_once () {   # prints the point id when reported done
    local out
    if out=$(bootback import "$tmp/$1" --vm "$2" 2>/dev/null); then
        echo "$out" | sed -n 's/^imported [^@]*@\([0-9TZ]*\):.*/\1/p'
    fi
}

check_state () {
    bootback repo verify >/dev/null 2>"$tmp/err" || { cat "$tmp/err"; fail "repo verify after $1"; }
    # A crash between the manifest (step 3) and the catalog row (step 4)
    # leaves the catalog behind the repository: check reports exactly that,
    # and reindex repairs it.  Anything else is a failure.
    if ! bootback repo check >/dev/null 2>"$tmp/err"; then
        if grep -v '^    ' "$tmp/err" | grep -qv "catalog out of date"; then
            cat "$tmp/err"; fail "repo check after $1"
        fi
        bootback repo reindex >/dev/null
        bootback repo check >/dev/null 2>"$tmp/err" || { cat "$tmp/err"; fail "repo check after reindex after $1"; }
    fi
}

# 1. each commit step (4 = after the catalog row)
for step in 1 2 3 4; do
    BOOTBACK_CRASH_STEP=$step bootback import "$tmp/a.raw" --vm stepvm >/dev/null 2>&1 && fail "step $step: no crash"
    check_state "crash at step $step"
done
# steps 3 and 4 happened after the manifest: those points exist and verify;
# the catalog may lack them until reindex
bootback repo reindex
n=$(ls "$repo/points/stepvm" | while read p; do [ -f "$repo/points/stepvm/$p/manifest.json" ] && echo "$p"; done | wc -l)
[ "$n" -eq 2 ] || fail "expected 2 complete points after crashes at steps 3 and 4, got $n"

# 2. each fsync of one import
cnt=$(BOOTBACK_FAULT=count bootback import "$tmp/b.raw" --vm countvm 2>&1 >/dev/null | sed -n 's/.*ops, \([0-9]*\) fsyncs/\1/p')
[ -n "$cnt" ] && [ "$cnt" -gt 2 ] || fail "could not count fsyncs ($cnt)"
for k in $(seq 1 "$cnt"); do
    BOOTBACK_FAULT="crash-fsync@$k" bootback import "$tmp/b.raw" --vm fsyncvm >/dev/null 2>&1 && fail "fsync $k: no crash"
    check_state "crash at fsync $k"
done

# 3. random moments: kill -9 after a random delay
for i in $(seq 1 100); do
    img=a.raw; [ $((i % 2)) -eq 0 ] && img=b.raw
    ( bootback import "$tmp/$img" --vm rnd > "$tmp/out.$i" 2>/dev/null ) &
    pid=$!
    sleep "0.0$(( RANDOM % 10 ))$(( RANDOM % 10 ))"
    kill -9 $pid 2>/dev/null || true
    pkill -9 -P $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
    id=$(sed -n 's/^imported [^@]*@\([0-9TZ]*\):.*/\1/p' "$tmp/out.$i" 2>/dev/null || true)
    [ -n "$id" ] && done_points+=("rnd@$id")
done
check_state "100 random kills"
echo "${#done_points[@]} of 100 killed imports had reported done"
for p in "${done_points[@]}"; do
    bootback point show "$p" >/dev/null || fail "reported point $p is not there"
done
# every complete point restores correctly (a or b)
for d in "$repo"/points/rnd/*; do
    [ -f "$d/manifest.json" ] || continue
    id=$(basename "$d")
    bootback restore "rnd@$id" --to "$tmp/r.raw" >/dev/null
    cmp -s "$tmp/r.raw" "$tmp/a.raw" || cmp -s "$tmp/r.raw" "$tmp/b.raw" || fail "rnd@$id restores to neither image"
    rm "$tmp/r.raw"
done
# leftovers are harmless and gc removes them once old
find "$repo/points" -mindepth 2 -maxdepth 2 -type d | while read d; do
    [ -f "$d/manifest.json" ] || touch -d '1 hour ago' "$d"
done
find "$repo/chunks" -name '*.tmp-*' -exec touch -d '1 hour ago' {} +
bootback gc
left=$(find "$repo/points" -mindepth 2 -maxdepth 2 -type d | while read d; do [ -f "$d/manifest.json" ] || echo "$d"; done | wc -l)
[ "$left" -eq 0 ] || fail "gc left $left incomplete point directories"
[ -z "$(find "$repo/chunks" -name '*.tmp-*')" ] || fail "gc left temp files"
check_state "gc"
# a re-run succeeds
out=$(bootback import "$tmp/a.raw" --vm rnd)
echo "$out"
bootback restore rnd@latest --to "$tmp/final.raw"
cmp "$tmp/final.raw" "$tmp/a.raw"
echo "crash safety ok"
