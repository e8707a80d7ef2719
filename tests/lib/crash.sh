# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Crash safety of imports, for any repository (local or NFS): SIGKILL the
# importer at each numbered commit step, at each fsync and at random
# moments.  Afterwards every point reported done is there and restores, no
# point is half-visible (verify and check are clean), the catalog lists
# exactly the stored points with their disks (no reindex), gc removes the
# leftovers once old, and a re-run succeeds.
#
#   source "$top_srcdir/tests/lib/crash.sh"
#   crash_scenario KILLS MAX_DELAY_MS EACH_FSYNC
#
# Needs: the repository as the default, $repo its directory on this host,
# $tmp/a.raw and $tmp/b.raw (different images).  KILLS imports are killed
# after a random delay below MAX_DELAY_MS or the time one import takes,
# whichever is longer; EACH_FSYNC=1 checks the state after every fsync
# crash, 0 once after all of them.

# The catalog lists exactly the points stored (manifest present), each with
# its manifest's disks, without a reindex: no listing may miss a committed
# point (one killed between its manifest and its catalog row included) or
# show a wrong disk list (one killed inside its catalog row).
catalog_matches () {
    bootback points --json > "$tmp/points.json" || fail "points after $1"
    python3 - "$repo/points" "$tmp/points.json" "$1" <<'PY'
import glob, json, os, sys
top, listed, when = sys.argv[1:]
disks = lambda ds: [(d["name"], d["size"], d["index_sha256"]) for d in ds]
stored = {}
for f in glob.glob(os.path.join(top, "*", "*", "manifest.json")):
    m = json.load(open(f))
    stored["%s@%s" % (m["vm"], m["id"])] = disks(m["disks"])
cat = {p["point"]: disks(p["disks"]) for p in json.load(open(listed))}
missing = sorted(set(stored) - set(cat))
extra = sorted(set(cat) - set(stored))
wrong = sorted(p for p in stored if p in cat and cat[p] != stored[p])
if missing or extra or wrong:
    sys.exit("FAIL: catalog after %s: %d points stored, %d listed; not listed: %s; "
             "listed but not stored: %s; wrong disk list: %s"
             % (when, len(stored), len(cat), missing, extra, wrong))
PY
}

# verify and check are clean after $1, and the catalog lists exactly the
# stored points (a catalog behind its repository catches up by itself).
check_state () {
    bootback repo verify >/dev/null 2>"$tmp/err" || { cat "$tmp/err"; fail "repo verify after $1"; }
    catalog_matches "$1"
    bootback repo check >/dev/null 2>"$tmp/err" || { cat "$tmp/err"; fail "repo check after $1"; }
}

crash_scenario () {
    local kills=$1 max_ms=$2 each_fsync=$3
    local step n cnt k i img pid id d p left t0 ms
    local done_points=()

    # 1. each commit step (3 = between the manifest and the catalog row,
    # 6 = inside the catalog row's transaction, 4 = after the catalog row)
    for step in 1 2 3 6 4; do
        BOOTBACK_CRASH_STEP=$step bootback import "$tmp/a.raw" --vm stepvm >/dev/null 2>&1 &&
            fail "step $step: no crash"
        check_state "crash at step $step"
    done
    # steps 3, 6 and 4 happened after the manifest: those points exist,
    # verify, and are listed
    n=$(for p in "$repo"/points/stepvm/*; do [ -f "$p/manifest.json" ] && echo "$p"; done | wc -l)
    [ "$n" -eq 3 ] || fail "expected 3 complete points after crashes at steps 3, 6 and 4, got $n"
    [ "$(bootback points stepvm | grep -c '^stepvm@')" -eq 3 ] || fail "points does not list the 3 points of stepvm"

    # 2. each fsync of one import (timed: the random kills below spread
    # over a whole import however slowly it runs, e.g. under valgrind, so
    # they reach its commit and its catalog row too)
    t0=$(date +%s%N)
    cnt=$(BOOTBACK_FAULT=count bootback import "$tmp/b.raw" --vm countvm 2>&1 >/dev/null |
          sed -n 's/.*ops, \([0-9]*\) fsyncs/\1/p')
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    [ "$ms" -le "$max_ms" ] || max_ms=$ms
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
        ms=$(( (RANDOM << 15 | RANDOM) % max_ms ))
        sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
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
