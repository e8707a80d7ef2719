#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# pruned/VM/ID markers (rollback detection, docs/design.md "Catalog")
# against someone who can write the repository but has not its key:
#   - in an encrypted repository a marker is sealed with the repository's
#     key and bound to its path: a prune is still no loss, but a point
#     deleted by hand with a marker forged beside it (plain, or another
#     point's marker copied to its name) is reported missing;
#   - a point written again with the id of a pruned one (repo sync from a
#     repository that still has it) takes its old marker away, so that
#     deleting it by hand is reported, in encrypted and plain
#     repositories alike.
source "$top_srcdir/tests/functions.sh"
requires qemu-img python3

make_disk "$tmp/a.raw" $(( 1024 * 1024 ))
export BOOTBACK_PASSPHRASE="correct horse battery staple"
printf '%s' "$BOOTBACK_PASSPHRASE" > "$tmp/pass"
enc=$tmp/enc
bootback repo init --encrypt --chunk-size 64K "$enc" >/dev/null
export BOOTBACK_REPO=$enc
for t in 20261101T010000Z 20261102T010000Z 20261103T010000Z 20261104T010000Z; do
    bootback import "$tmp/a.raw" --vm web --time "$t" >/dev/null
done
bootback prune web --keep-last 3 | grep -q "removed 1 restore point"
[ -e "$enc/pruned/web/20261101T010000Z" ] || fail "prune left no pruned marker"
grep -q pruned "$enc/pruned/web/20261101T010000Z" && fail "the marker of an encrypted repository is plain"
bootback repo check >/dev/null || fail "a prune taken for a loss"
# a prune on another host: no loss either
bootback --home "$tmp/home2" prune web --keep-last 2 >/dev/null
bootback repo check >/dev/null || fail "a prune on another host taken for a loss"

# a point deleted by hand, a plain marker written beside it
rm -rf "$enc/points/web/20261103T010000Z"
printf 'pruned\n' > "$enc/pruned/web/20261103T010000Z"
expect_rc 2 bootback repo check
grep -q "(web@20261103T010000Z)" "$tmp/err" || fail "a forged marker hid a point deleted by hand"
bootback repo check --accept-rollback >/dev/null 2>&1
# ... or a genuine marker of another point copied to its name
bootback import "$tmp/a.raw" --vm web --time 20261105T010000Z >/dev/null
rm -rf "$enc/points/web/20261105T010000Z"
cp "$enc/pruned/web/20261101T010000Z" "$enc/pruned/web/20261105T010000Z"
expect_rc 2 bootback repo check
grep -q "(web@20261105T010000Z)" "$tmp/err" || fail "a marker copied from another point hid a point deleted by hand"
bootback repo check --accept-rollback >/dev/null 2>&1

# a pruned point written again (repo sync from a repository that still
# has it), then deleted by hand
resurrect () {
    local dst=$1 src=$2
    shift 2
    (unset BOOTBACK_PASSPHRASE
     bootback --repo "$src" import "$tmp/a.raw" --vm db --time 20261106T010000Z >/dev/null
     bootback --repo "$src" import "$tmp/a.raw" --vm db --time 20261107T010000Z >/dev/null)
    bootback repo sync "$@" "$src" "$dst" >/dev/null
    bootback --repo "$dst" prune db --keep-last 1 | grep -q "removed 1 restore point"
    [ -e "$dst/pruned/db/20261106T010000Z" ] || fail "$dst: no marker"
    bootback repo sync "$@" "$src" "$dst" >/dev/null
    [ -e "$dst/points/db/20261106T010000Z/manifest.json" ] || fail "$dst: the pruned point was not copied again"
    [ ! -e "$dst/pruned/db/20261106T010000Z" ] || fail "$dst: the point written again kept its old pruned marker"
    bootback --repo "$dst" points db >/dev/null
    rm -rf "$dst/points/db/20261106T010000Z"
    expect_rc 2 bootback --repo "$dst" repo check
    grep -q "(db@20261106T010000Z)" "$tmp/err" ||
        fail "$dst: a point written again after a prune, deleted by hand, taken for pruned"
}
(unset BOOTBACK_PASSPHRASE; bootback repo init --chunk-size 64K "$tmp/src" >/dev/null)
resurrect "$enc" "$tmp/src" --src-plain
(unset BOOTBACK_PASSPHRASE
 bootback repo init --chunk-size 64K "$tmp/plain" >/dev/null
 bootback repo init --chunk-size 64K "$tmp/src2" >/dev/null
 resurrect "$tmp/plain" "$tmp/src2")
echo ok
