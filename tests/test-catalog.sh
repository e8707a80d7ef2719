#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The catalog: reindex rebuilds the same points with the same sizes and
# index digests; a catalog behind its repository catches up by itself; a
# point row is never without its disks; check finds drift; an old
# manifest without the domain.xml pin is usable and reported unpinned; repo add/list; JSON listings; schema
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

# drift: a row lost (a process killed between a point's manifest and its
# catalog row) is found again by the next command, without a reindex; a
# row without its point (and not pruned by bootback: no pruned/ marker)
# stays, named as missing (a rollback?) until repo check
# --accept-rollback; a row wrong is reported
sqlite3 "$BOOTBACK_HOME/catalog.db" "DELETE FROM points WHERE vm = 'db'"
bootback points --json > "$tmp/healed.json"
python3 - "$tmp/before.json" "$tmp/healed.json" <<'PY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:])
key = lambda p: (p["point"], p["size"], [(d["name"], d["size"], d["index_sha256"]) for d in p["disks"]])
assert [key(x) for x in a] == [key(x) for x in b], ("lost row not found again", a, b)
PY
bootback repo check
sqlite3 "$BOOTBACK_HOME/catalog.db" "INSERT INTO points (repo_id, vm, point, time, kind,
  consistency, source, chunk_size, has_domain_xml) SELECT repo_id, 'gone', point, time,
  kind, consistency, source, chunk_size, 0 FROM points WHERE vm = 'db'"
bootback points gone --json >/dev/null 2>"$tmp/err"
grep -q "1 restore points the catalog recorded are gone.*(gone@" "$tmp/err" ||
    fail "a row without its point: no warning"
expect_rc 2 bootback repo check
bootback repo check --accept-rollback >/dev/null
[ "$(bootback points gone --json)" = "[]" ] || fail "a row without its point is still listed"
bootback repo check
sqlite3 "$BOOTBACK_HOME/catalog.db" "UPDATE disks SET index_sha256 = 'x' WHERE name = 'vdb'"
set +e; bootback repo check 2>"$tmp/err"; rc=$?; set -e
[ $rc -eq 2 ] && grep -q "catalog differs from the repository" "$tmp/err" || fail "check missed a wrong row"
bootback repo reindex
bootback repo check --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["problems"] == 0 and d["points"] == 3, d'

# a point whose manifest predates the domain.xml pin (no
# "domain_xml_sha256"): still usable, reported as unpinned, not a problem
bootback import "$tmp/a.raw" --vm old --domain-xml <(printf '<domain type="kvm"><name>old</name></domain>\n') \
    --time 20261101T020000Z
om=$repo/points/old/20261101T020000Z/manifest.json
python3 - "$om" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
del m["domain_xml_sha256"]
open(sys.argv[1], "w").write(json.dumps(m, indent=2))
PY
bootback repo check > "$tmp/out" 2> "$tmp/err" || { cat "$tmp/err"; fail "check fails on an unpinned domain.xml"; }
grep -q "1 points with an unpinned domain.xml" "$tmp/out" || fail "check does not count the unpinned domain.xml"
grep -q "note: domain XML unpinned: points/old/20261101T020000Z/domain.xml" "$tmp/err" ||
    fail "check does not name the unpinned domain.xml"
bootback repo check --json 2>/dev/null | python3 -c '
import json, sys; j = json.load(sys.stdin)
assert j["problems"] == 0 and j["unpinned"] == 1, j
assert j["notes"][0]["object"] == "points/old/20261101T020000Z/domain.xml", j'
bootback repo verify
bootback point show old@20261101T020000Z | grep -q "domain XML:  yes (unpinned"
bootback point show old@20261101T020000Z --json | python3 -c '
import json, sys; j = json.load(sys.stdin)
assert j["domain_xml"] is True and j["domain_xml_sha256"] is None, j'
bootback restore old@20261101T020000Z --to "$tmp/old.raw"
cmp "$tmp/old.raw" "$tmp/a.raw"

# a manifest whose text fields carry terminal escape sequences (someone
# who can write the repository: clear the screen, hide text, set the
# title or the clipboard) is refused; none reaches the terminal
ev=$repo/points/old/20261102T020000Z
mkdir "$ev" && cp "$repo/points/old/20261101T020000Z/"*.fidx "$ev/"
python3 - "$om" "$ev/manifest.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["id"], m["time"] = "20261102T020000Z", "2026-11-02T02:00:00Z"
m["kind"], m["consistency"], m["source"] = "\x1b[2J\x1b[Hfull", "\x1b[8m", "\x1b]0;PWNED\x07"
m["disks"][0]["format"] = "\x1b]52;c;cHc=\x07"
open(sys.argv[2], "w").write(json.dumps(m))
PY
bootback points old >"$tmp/out" 2>"$tmp/err" || true
bootback point show old@20261102T020000Z >>"$tmp/out" 2>>"$tmp/err" || true
cat -v "$tmp/out" "$tmp/err"
! grep -q $'\x1b' "$tmp/out" "$tmp/err" || fail "a manifest's escape sequences reached the terminal"
grep -q "not printable ASCII" "$tmp/err" || fail "the manifest with escape sequences was not refused"
# nor through an error message that quotes what it could not parse
printf '\033]0;PWNED\007\033[2J' >"$ev/manifest.json"
bootback point show old@20261102T020000Z >"$tmp/out" 2>"$tmp/err" && fail "an invalid manifest was shown"
cat -v "$tmp/err"
grep -q "invalid JSON" "$tmp/err" || fail "no error about the invalid manifest"
! grep -q $'\x1b' "$tmp/out" "$tmp/err" || fail "an error message carried a manifest's escape sequence"
# nor a C1 control in UTF-8 ("\xc2\x9b" is CSI to xterm), nor a byte
# that is no UTF-8; what is UTF-8 stays
printf '\xc2\x9b2J \xc3\xa9' >"$ev/manifest.json"
bootback point show old@20261102T020000Z >"$tmp/out" 2>"$tmp/err" && fail "an invalid manifest was shown"
cat -v "$tmp/err"
! LC_ALL=C grep -q $'\xc2\x9b' "$tmp/out" "$tmp/err" || fail "an error message carried a C1 control"
printf '\x9b2J' >"$ev/manifest.json"
bootback point show old@20261102T020000Z >"$tmp/out" 2>"$tmp/err" && fail "an invalid manifest was shown"
! LC_ALL=C grep -q $'\x9b' "$tmp/out" "$tmp/err" || fail "an error message carried a byte that is no UTF-8"
rm -r "$ev"

# killed inside the catalog row's transaction (step 6): no row with a
# wrong disk list; the next command lists the point with its disks
BOOTBACK_CRASH_STEP=6 bootback import "$tmp/a.raw" "$tmp/b.raw" --vm two \
    --time 20261103T010000Z >/dev/null 2>&1 && fail "step 6: no crash"
[ "$(sqlite3 "$BOOTBACK_HOME/catalog.db" "SELECT count(*) FROM points WHERE vm = 'two'")" = 0 ] ||
    fail "a point row without its disks is in the catalog"
bootback points two --json | python3 -c '
import json, sys; p = json.load(sys.stdin)
assert [x["point"] for x in p] == ["two@20261103T010000Z"] and len(p[0]["disks"]) == 2, p'
bootback repo check

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
