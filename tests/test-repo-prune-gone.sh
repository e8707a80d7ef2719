#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A prune whose removal of the manifest finds it gone already (an NFS
# REMOVE sent again after the first one was done, another prune at the
# same moment) still prunes: the point is gone, its pruned/ marker stays,
# and no host takes the point for a loss.  Before, the marker was removed
# and the prune failed, so every catalog that knew the point reported a
# rollback.  The prune stops itself at the removal (BOOTBACK_FAULT=stop@K:
# the first K at which a crash leaves the marker written and the manifest
# still there), the manifest goes, and the prune goes on.
source "$top_srcdir/tests/functions.sh"
requires qemu-img

make_disk "$tmp/a.raw" $(( 1024 * 1024 ))
bootback repo init --chunk-size 64K "$tmp/repo" >/dev/null
export BOOTBACK_REPO=$tmp/repo
for t in 20261101T010000Z 20261102T010000Z; do
    bootback import "$tmp/a.raw" --vm web --time "$t" >/dev/null
done
old=20261101T010000Z
man=points/web/$old/manifest.json
cp -a "$tmp/repo" "$tmp/repo.0"
cp -a "$BOOTBACK_HOME" "$tmp/home.0"

# K: the manifest's removal
k=
for i in $(seq 1 200); do
    rm -rf "$tmp/repo" "$BOOTBACK_HOME"
    cp -a "$tmp/repo.0" "$tmp/repo"
    cp -a "$tmp/home.0" "$BOOTBACK_HOME"
    rc=0
    BOOTBACK_FAULT=crash@$i bootback prune web --keep-last 1 >/dev/null 2>&1 || rc=$?
    [ "$rc" -eq 137 ] || fail "no crash at operation $i: the removal was not found (exit $rc)"
    if [ -e "$tmp/repo/pruned/web/$old" ] && [ -e "$tmp/repo/$man" ]; then
        k=$i
        break
    fi
done
[ -n "$k" ] || fail "no operation with the marker written and the manifest there"
# the marker may take several operations to be written (a temporary file,
# its rename): the removal is the last K with both there
while :; do
    rm -rf "$tmp/repo" "$BOOTBACK_HOME"
    cp -a "$tmp/repo.0" "$tmp/repo"
    cp -a "$tmp/home.0" "$BOOTBACK_HOME"
    BOOTBACK_FAULT=crash@$(( k + 1 )) bootback prune web --keep-last 1 >/dev/null 2>&1 || true
    [ -e "$tmp/repo/$man" ] || break
    k=$(( k + 1 ))
done
rm -rf "$tmp/repo" "$BOOTBACK_HOME"
cp -a "$tmp/repo.0" "$tmp/repo"
cp -a "$tmp/home.0" "$BOOTBACK_HOME"

BOOTBACK_FAULT=stop@$k "$BOOTBACK" prune web --keep-last 1 >"$tmp/prune.out" 2>&1 &
pid=$!
wait_stopped "$pid" || fail "the prune did not stop at operation $k"
[ -e "$tmp/repo/$man" ] || fail "the prune stopped after the removal"
rm "$tmp/repo/$man"
kill -CONT "$pid"
rc=0
wait "$pid" || rc=$?
cat "$tmp/prune.out"
[ -e "$tmp/repo/pruned/web/$old" ] || fail "the marker of the pruned point was removed"
[ "$rc" -eq 0 ] || fail "the prune failed (exit $rc) when the manifest was gone already"
bootback repo check >"$tmp/check" 2>&1 || fail "the point pruned is taken for a loss: $(cat "$tmp/check")"
bootback --home "$tmp/home2" points web --json >/dev/null
bootback repo check >/dev/null || fail "repo check after another host looked"
echo ok
