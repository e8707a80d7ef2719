#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A lab run holds the restore points it boots: a prune run while the lab's
# VM is up (from a script check of the lab itself) keeps the point that
# its rule would drop and names the lab run; once the run is over, the
# hold is gone and prune removes the point.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/lab/lab-test-lib.sh"

lab_test_start --repo nbdkit
lab_point_files db1 22
bootback import "$tmp/db1.img" --vm db1 --domain-xml "$tmp/db1.xml" \
    --time 20261101T000000Z >/dev/null
make_disk "$tmp/new.raw" $(( 1024 * 1024 ))
bootback import "$tmp/new.raw" --vm db1 --time 20261102T000000Z >/dev/null

cat >"$tmp/prune.sh" <<EOF2
#!/bin/sh
"$BOOTBACK" --home "$BOOTBACK_HOME" prune db1 --keep-last 1 --json > "$tmp/prune.json"
EOF2
chmod +x "$tmp/prune.sh"
cat >"$tmp/lab.yaml" <<EOF2
name: hold
network: { subnet: 10.77.0.0/24, gateway: 10.77.0.1 }
defaults: { boot-timeout: 120s }
groups:
  - name: db
    vms:
      - name: db1
        point: 20261101T000000Z
        address: 10.77.0.22
        checks: [heartbeat, "script $tmp/prune.sh"]
EOF2
rc=0
bootback lab run "$tmp/lab.yaml" --report-dir "$tmp/r" >"$tmp/out" 2>"$tmp/err" || rc=$?
cat "$tmp/err" "$tmp/out"
[ $rc -eq 0 ] || fail "lab run: exit $rc"
id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run"])' "$tmp/r/report.json")
python3 - "$tmp/prune.json" "$id" <<'PY'
import json, sys
p = {x["id"]: x for x in json.load(open(sys.argv[1]))}
x = p["20261101T000000Z"]
assert x["action"] == "keep", x
assert x["held_by"].startswith("lab run %s " % sys.argv[2]), x
PY
bootback prune db1 --keep-last 1 | tee "$tmp/prune.out"
grep -qx "removed db1@20261101T000000Z" "$tmp/prune.out" || fail "the lab's point outlived the run"
bootback repo check
echo "lab hold ok"
