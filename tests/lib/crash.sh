# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Crash safety of imports, for any repository (local or NFS): SIGKILL the
# importer at each numbered commit step, at each fsync and at random
# moments.  Afterwards every point reported done is there and restores, no
# point is half-visible (verify and check are clean), gc removes the
# leftovers once old, and a re-run succeeds.
#
#   source "$top_srcdir/tests/lib/crash.sh"
#   crash_scenario KILLS MAX_DELAY_MS EACH_FSYNC
#
# Needs: the repository as the default, $repo its directory on this host,
# $tmp/a.raw and $tmp/b.raw (different images).  KILLS imports are killed
# after a random delay below MAX_DELAY_MS; EACH_FSYNC=1 checks the state
# after every fsync crash, 0 once after all of them.

# verify and check are clean after $1.  A crash between the manifest (step
# 3) and the catalog row (step 4) leaves the catalog behind the repository:
# check reports exactly that, and reindex repairs it.  Anything else fails.
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

crash_scenario () {
    local kills=$1 max_ms=$2 each_fsync=$3
    local step n cnt k i img pid id d p left
    local done_points=()

    # 1. each commit step (4 = after the catalog row)
    for step in 1 2 3 4; do
        BOOTBACK_CRASH_STEP=$step bootback import "$tmp/a.raw" --vm stepvm >/dev/null 2>&1 &&
            fail "step $step: no crash"
        check_state "crash at step $step"
    done
    # steps 3 and 4 happened after the manifest: those points exist and
    # verify; the catalog may lack them until reindex
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
        [ "$each_fsync" = 0 ] || check_state "crash at fsync $k"
    done
    [ "$each_fsync" != 0 ] || check_state "crash at each of $cnt fsyncs"

    # 3. random moments: kill -9 after a random delay
    for i in $(seq 1 "$kills"); do
        img=a.raw; [ $((i % 2)) -eq 0 ] && img=b.raw
        ( bootback import "$tmp/$img" --vm rnd > "$tmp/out.$i" 2>/dev/null ) &
        pid=$!
        sleep "$(printf '0.%03d' $(( RANDOM % max_ms )))"
        kill -9 $pid 2>/dev/null || true
        pkill -9 -P $pid 2>/dev/null || true
        wait $pid 2>/dev/null || true
        id=$(sed -n 's/^imported [^@]*@\([0-9TZ]*\):.*/\1/p' "$tmp/out.$i" 2>/dev/null || true)
        [ -n "$id" ] && done_points+=("rnd@$id")
    done
    check_state "$kills random kills"
    echo "${#done_points[@]} of $kills killed imports had reported done"
    for p in "${done_points[@]}"; do
        bootback point show "$p" >/dev/null || fail "reported point $p is not there"
    done
    # every complete point restores correctly (a or b)
    for d in "$repo"/points/rnd/*; do
        [ -f "$d/manifest.json" ] || continue
        id=$(basename "$d")
        bootback restore "rnd@$id" --to "$tmp/r.raw" >/dev/null
        cmp -s "$tmp/r.raw" "$tmp/a.raw" || cmp -s "$tmp/r.raw" "$tmp/b.raw" ||
            fail "rnd@$id restores to neither image"
        rm "$tmp/r.raw"
    done

    # leftovers (temp files, incomplete points) are harmless; gc removes
    # them once old
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

    # a re-run succeeds
    bootback import "$tmp/a.raw" --vm rnd
    bootback restore rnd@latest --to "$tmp/final.raw"
    cmp "$tmp/final.raw" "$tmp/a.raw"
}
