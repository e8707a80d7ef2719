#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The catalog: reindex rebuilds the same points with the same sizes and
# index digests; check finds drift; repo add/list; JSON listings; schema
# version; the catalog can be deleted and rebuilt.
source "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-nbd sqlite3 python3

repo=$tmp/repo
bootback repo init "$repo"
make_disk "$tmp/a.raw" $(( 3 * 1024 * 1024 + 5 ))
make_disk "$tmp/b.raw" $(( 2 * 1024 * 1024 ))
bootback import "$tmp/a.raw" --vm web --time 20261101T010000Z
bootback import "$tmp/a.raw" "$tmp/b.raw" --vm db --time 20261102T010000Z
bootback import "$tmp/b.raw" --vm web
bootback points --json > "$tmp/before.json"
python3 - "$tmp/before.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
assert [x["point"] for x in p][:2] == ["db@20261102T010000Z", "web@20261101T010000Z"], p
assert len(p) == 3 and len(p[0]["disks"]) == 2
PY
[ "$(sqlite3 "$BOOTBACK_HOME/catalog.db" 'PRAGMA user_version')" -ge 1 ]
[ "$(sqlite3 "$BOOTBACK_HOME/catalog.db" 'PRAGMA journal_mode')" = wal ]

# throw the catalog away; repo add + reindex give back the same listing
rm -f "$BOOTBACK_HOME"/catalog.db*
bootback repo add "$repo" | tee "$tmp/add"
grep -q "with 3 restore points (default)" "$tmp/add"
bootback points --json > "$tmp/after.json"
python3 - "$tmp/before.json" "$tmp/after.json" <<'PY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:])
key = lambda p: (p["point"], p["size"], [(d["name"], d["size"], d["index_sha256"]) for d in p["disks"]])
assert [key(x) for x in a] == [key(x) for x in b], (a, b)
PY

# drift: a row lost, a row wrong
sqlite3 "$BOOTBACK_HOME/catalog.db" "DELETE FROM points WHERE vm = 'db'"
set +e; bootback repo check 2>"$tmp/err"; rc=$?; set -e
[ $rc -eq 2 ] && grep -q "catalog out of date" "$tmp/err" || fail "check missed a lost row"
bootback repo reindex
bootback repo check
sqlite3 "$BOOTBACK_HOME/catalog.db" "UPDATE disks SET index_sha256 = 'x' WHERE name = 'vdb'"
set +e; bootback repo check 2>"$tmp/err"; rc=$?; set -e
[ $rc -eq 2 ] && grep -q "catalog differs from the repository" "$tmp/err" || fail "check missed a wrong row"
bootback repo reindex
bootback repo check --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["problems"] == 0 and d["points"] == 3, d'

# a manifest deleted behind bootback's back: the point is gone for reads;
# check reports the catalog row it cannot find
rm "$repo/points/web/20261101T010000Z/manifest.json"
set +e; bootback repo check 2>"$tmp/err"; rc=$?; set -e
[ $rc -eq 2 ] && grep -q "catalog lists a point the repository does not have" "$tmp/err" || fail "check missed a vanished point"

# several repositories, --repo and BOOTBACK_REPO
bootback repo init --chunk-size 256K "$tmp/repo2"
bootback repo list --json | python3 -c 'import json,sys; r=json.load(sys.stdin); assert len(r)==2 and r[1]["default"] and r[1]["chunk_size"]==262144, r'
bootback points --json | python3 -c 'import json,sys; assert json.load(sys.stdin) == []'
BOOTBACK_REPO=$repo bootback points --json | python3 -c 'import json,sys; assert len(json.load(sys.stdin)) >= 2'
bootback --repo "$repo" points web | grep -q "web@"
bootback points web --repo "$repo" | grep -q "web@"
# a relative --repo or BOOTBACK_REPO is kept as an absolute path (a
# supervisor or timer started elsewhere must open the same repository)
(cd "$tmp" && bootback --repo repo points web | grep -q "web@")
(cd "$tmp" && BOOTBACK_REPO=./repo2 bootback points --json >/dev/null)
bootback repo list --json | python3 -c '
import json, sys
locs = [r["location"] for r in json.load(sys.stdin)]
assert all(l.startswith("/") for l in locs), locs
assert len(locs) == 2, locs'
# a newer catalog schema than this build knows is refused, not damaged
sqlite3 "$BOOTBACK_HOME/catalog.db" "PRAGMA user_version = 999"
expect_fail bootback points 2>"$tmp/err"
grep -q "newer than this bootback understands" "$tmp/err"
echo "catalog ok"
