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

echo "prune ok"
