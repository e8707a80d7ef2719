#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# prune through the CLI on a fixed calendar: --dry-run lists what would go
# and removes nothing; the real run removes exactly that; protected points
# stay; the removed points' chunks are freed by gc only when unused.
source "$top_srcdir/tests/functions.sh"
requires qemu-img python3

bootback repo init --chunk-size 64K "$tmp/repo"
make_disk "$tmp/a.raw" $(( 1024 * 1024 ))
for t in 20261101T010000Z 20261102T010000Z 20261103T010000Z 20261108T010000Z \
         20261115T010000Z 20261116T010000Z 20261116T120000Z 20261117T010000Z; do
    bootback import "$tmp/a.raw" --vm web --time "$t" >/dev/null
done
bootback import "$tmp/a.raw" --vm db --time 20261001T000000Z >/dev/null
bootback point protect web@20261101T010000Z

bootback prune web --keep-last 1 --keep-daily 2 --keep-weekly 2 --dry-run --json > "$tmp/plan.json"
python3 - "$tmp/plan.json" <<'PY'
import json, sys
plan = {p["id"]: (p["action"], p.get("reason")) for p in json.load(open(sys.argv[1]))}
want = {
  "20261117T010000Z": ("keep", "last"),
  "20261116T120000Z": ("keep", "daily"),
  "20261116T010000Z": ("remove", None),
  "20261115T010000Z": ("keep", "daily"),
  "20261108T010000Z": ("keep", "weekly"),
  # week 45 is covered by Nov 8; week 44 holds only the protected point,
  # which is kept but does not count: weekly finds no second week
  "20261103T010000Z": ("remove", None),
  "20261102T010000Z": ("remove", None),
  "20261101T010000Z": ("keep", "protected"),
}
assert plan == want, plan
PY
[ "$(bootback points web --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" -eq 8 ] ||
    fail "dry run removed points"
bootback prune web --keep-last 1 --keep-daily 2 --keep-weekly 2 | tee "$tmp/out"
grep -q "removed 3 restore points, kept 5" "$tmp/out"
bootback points web --json | python3 -c '
import json, sys
ids = [p["id"] for p in json.load(sys.stdin)]
assert "20261116T010000Z" not in ids and "20261102T010000Z" not in ids and len(ids) == 5, ids'
[ ! -e "$tmp/repo/points/web/20261102T010000Z" ] || fail "pruned point directory left"
# other VMs untouched; everything still verifies; nothing to collect
# (every chunk is still used by a kept point)
bootback points db | grep -q "db@20261001T000000Z"
bootback repo verify
find "$tmp/repo/chunks" -type f -exec touch -d '1 hour ago' {} +
bootback gc --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["removed"] == 0, d'
bootback repo check
# A VM name that is not one (it could name a directory outside points/) is
# refused by name, and nothing is touched.
expect_fail bootback prune ../points/web --keep-last 1 >"$tmp/out" 2>&1
grep -q "'../points/web' is not a valid VM name" "$tmp/out" || { cat "$tmp/out"; fail "prune ../points/web: no error naming the VM name"; }
expect_fail bootback prune web/../web --keep-last 1 >"$tmp/out" 2>&1
grep -q "not a valid VM name" "$tmp/out" || { cat "$tmp/out"; fail "prune web/../web: no error naming the VM name"; }
expect_fail bootback point show web@../../x >"$tmp/out" 2>&1
[ "$(bootback points web --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" -eq 5 ] ||
    fail "a refused prune removed points"


# Holds (holds/ in the repository): a point in use is kept and its holder
# named; a hold of another host counts whatever its pid; a hold whose
# process is gone on this host is stale: removed, and the point with it.
# Text from the repository is printed without its control characters.
sleep 600 & live=$!
cleanup_fn "kill $live 2>/dev/null"
sh -c 'exit 0' & dead=$!; wait $dead
mkdir -p "$tmp/repo/holds"
hold () { printf 'point=%s\nhost=%s\npid=%s\nowner=%s\n' "$2" "$3" "$4" "$5" > "$tmp/repo/holds/$1"; }
hold a web@20261116T120000Z "$(hostname)" "$live" "serve of web"
hold b web@20261115T010000Z other-host 1 $'verifier\e[31m on B'
hold c web@20261108T010000Z "$(hostname)" "$dead" "a dead server"
bootback prune web --keep-last 1 >"$tmp/out" 2>"$tmp/err"
cat "$tmp/out" "$tmp/err"
grep -qx "keep    web@20261116T120000Z (in use by serve of web on $(hostname))" "$tmp/out"
grep -qx "keep    web@20261115T010000Z (in use by verifier?\[31m on B on other-host)" "$tmp/out"
grep -qx "removed web@20261108T010000Z" "$tmp/out"
grep -q "removed the stale hold of web@20261108T010000Z by a dead server" "$tmp/err"
[ ! -e "$tmp/repo/holds/c" ] && [ -e "$tmp/repo/holds/a" ] && [ -e "$tmp/repo/holds/b" ] ||
    fail "holds: $(ls "$tmp/repo/holds")"
bootback points web --json | python3 -c '
import json, sys
ids = [p["id"] for p in json.load(sys.stdin)]
assert ids == ["20261101T010000Z", "20261115T010000Z", "20261116T120000Z", "20261117T010000Z"], ids'
# the holder goes: its point goes at the next prune
kill $live; wait $live 2>/dev/null || true
rm "$tmp/repo/holds/b"
bootback prune web --keep-last 1 | grep -q "removed 2 restore points, kept 2"
bootback repo check

# Adding a hold and removing a point exclude each other (locks/holds, so a
# session starting while prune runs either holds its point first or finds
# it gone): prune waits while a live process has the lock, and takes over
# the lock of a dead one.
bootback import "$tmp/a.raw" --vm db --time 20261002T000000Z >/dev/null
sleep 600 & locker=$!
cleanup_fn "kill $locker 2>/dev/null"
printf 'host=%s pid=%s\n' "$(hostname)" "$locker" > "$tmp/repo/locks/holds"
( sleep 2; rm "$tmp/repo/locks/holds" ) & unlocker=$!
t0=$(date +%s)
bootback prune db --keep-last 1 | grep -q "^removed db@20261001T000000Z"
[ $(( $(date +%s) - t0 )) -ge 2 ] || fail "prune did not wait for locks/holds"
wait $unlocker
bootback import "$tmp/a.raw" --vm db --time 20261003T000000Z >/dev/null
printf 'host=%s pid=%s\n' "$(hostname)" "$dead" > "$tmp/repo/locks/holds"
bootback prune db --keep-last 1 | grep -q "^removed db@20261002T000000Z"
[ ! -e "$tmp/repo/locks/holds" ] || fail "lock left"
echo "prune ok"
