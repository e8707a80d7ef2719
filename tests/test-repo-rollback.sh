#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A repository replaced by an older copy of itself (someone who can write
# the share rolls it back: the newest points vanish, pruned ones come
# back) is detected from what the catalog recorded:
#   - a prune leaves pruned/VM/ID, so a point bootback pruned (here, or on
#     another host sharing the repository) is not taken for lost;
#   - after the rollback, reading commands warn, naming the missing points;
#     import, prune, gc, repo check (exit 2) and repo sync into it refuse,
#     naming them, and nothing is pruned or written;
#   - a point deleted by hand (not pruned) is reported the same way;
#   - repo check --accept-rollback makes the catalog forget them: then
#     everything works again.
source "$top_srcdir/tests/functions.sh"
requires qemu-img python3

make_disk "$tmp/a.raw" $(( 1024 * 1024 ))
# a source for repo sync
bootback repo init --chunk-size 64K "$tmp/src" >/dev/null
bootback --repo "$tmp/src" import "$tmp/a.raw" --vm db --time 20261106T010000Z >/dev/null
bootback repo init --chunk-size 64K "$tmp/repo" >/dev/null
for t in 20261101T010000Z 20261102T010000Z; do
    bootback import "$tmp/a.raw" --vm web --time "$t" >/dev/null
done
# the share's owner keeps a copy of it as it is now
cp -a "$tmp/repo" "$tmp/old"
for t in 20261103T010000Z 20261104T010000Z; do
    bootback import "$tmp/a.raw" --vm web --time "$t" >/dev/null
done
# a prune here: its point is not "missing" afterwards
bootback prune web --keep-last 3 | grep -q "removed 1 restore point"
[ -e "$tmp/repo/pruned/web/20261101T010000Z" ] || fail "prune left no pruned marker"
bootback repo check >/dev/null
# another host sharing the repository prunes a point: this host's catalog
# drops its row without complaint
bootback --home "$tmp/home2" --repo "$tmp/repo" prune web --keep-last 2 >/dev/null
bootback points web 2>"$tmp/err" >/dev/null
! grep -q "gone" "$tmp/err" || fail "a point pruned on another host taken for lost: $(cat "$tmp/err")"
bootback repo check >/dev/null

# the rollback: the repository replaced by the old copy
rm -rf "$tmp/repo"
mv "$tmp/old" "$tmp/repo"
bootback points web > "$tmp/out" 2>"$tmp/err"
grep -q "warning: $tmp/repo: 2 restore points the catalog recorded are gone and bootback did not prune them (web@20261103T010000Z, web@20261104T010000Z)" \
    "$tmp/err" || fail "reading: no warning naming the missing points: $(cat "$tmp/err")"
expect_rc 2 bootback repo check
grep -q "web@20261103T010000Z, web@20261104T010000Z.*accept-rollback" "$tmp/err" ||
    fail "repo check does not name the missing points"
expect_rc 1 bootback prune web --keep-last 1
grep -q "web@20261104T010000Z.*refusing" "$tmp/err" || fail "prune: wrong error"
[ -d "$tmp/repo/points/web/20261101T010000Z" ] || fail "prune pruned a rolled-back repository"
expect_rc 1 bootback gc
grep -q "refusing" "$tmp/err" || fail "gc: wrong error"
expect_rc 1 bootback import "$tmp/a.raw" --vm web --time 20261105T010000Z
grep -q "refusing" "$tmp/err" || fail "import: wrong error"
[ ! -e "$tmp/repo/points/web/20261105T010000Z" ] || fail "import wrote into a rolled-back repository"

expect_rc 1 bootback repo sync "$tmp/src" "$tmp/repo"
grep -q "web@20261103T010000Z, web@20261104T010000Z.*refusing" "$tmp/err" ||
    fail "repo sync into a rolled-back DST: wrong error"
[ ! -e "$tmp/repo/points/db" ] || fail "repo sync wrote into a rolled-back repository"

# deliberate: accepted once, then everything works
bootback repo check --accept-rollback > "$tmp/out" 2>"$tmp/err"
grep -q "accepted: 2 restore points are gone" "$tmp/err" || fail "accept: $(cat "$tmp/err")"
bootback repo check >/dev/null
bootback points web 2>"$tmp/err" >/dev/null
[ ! -s "$tmp/err" ] || fail "still warned after the accept: $(cat "$tmp/err")"
bootback import "$tmp/a.raw" --vm web --time 20261105T010000Z >/dev/null
bootback repo sync "$tmp/src" "$tmp/repo" >/dev/null

# a point deleted by hand, not by prune: the same
rm -rf "$tmp/repo/points/web/20261102T010000Z"
expect_rc 2 bootback repo check
grep -q "(web@20261102T010000Z)" "$tmp/err" || fail "a point deleted by hand not named"
bootback repo check --accept-rollback >/dev/null 2>&1
bootback prune web --keep-last 1 >/dev/null
echo "rollback detected: ok"
