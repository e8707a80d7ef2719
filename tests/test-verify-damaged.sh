#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A restore point with a chunk missing from the repository (issue 15,
# item 2): `bootback verify` checks the point's chunks before booting it
# (the default) and fails at once, exit 2, blaming the repository with the
# chunk, point, disk and byte range, instead of booting a VM that cannot
# read its disk.  `lab run` does the same with --check-chunks.  A chunk
# that is there but corrupt is found when the VM reads it: the boot fails
# at once (the console) and the verdict blames the repository, quoting the
# server's read error.  With the chunk back, the same point verifies.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/lab/lab-test-lib.sh"

lab_test_start --repo nbdkit
lab_point_files web1 21
bootback import "$tmp/web1.img" --vm web1 --domain-xml "$tmp/web1.xml" >/dev/null
id=$(latest_id web1)

# The first chunk of the point's disk: what the boot sector lives in.
chunk=$(python3 - "$tmp/repo/points/web1/$id/vda.fidx" "$tmp/repo" <<'EOP'
import glob, os, sys
fidx, repo = sys.argv[1:3]
data = open(fidx, "rb").read()
names = {os.path.basename(p): p for p in glob.glob(repo + "/chunks/*/*")}
# the index holds raw SHA-256 digests: the first that names a chunk file
for i in range(0, len(data) - 31):
    h = data[i:i + 32].hex()
    if h in names:
        print(names[h]); break
EOP
)
[ -n "$chunk" ] && [ -f "$chunk" ] || fail "cannot find the point's first chunk"
h=$(basename "$chunk")
mv "$chunk" "$tmp/chunk.saved"

rc=0
bootback verify web1 --address 10.77.0.21 --check tcp\ 7 --report-dir "$tmp/r1" \
    >"$tmp/out" 2>"$tmp/err" || rc=$?
cat "$tmp/out" "$tmp/err"
[ $rc -eq 2 ] || fail "verify of a damaged point: exit $rc, expected 2"
grep -q "repository damaged: chunk missing: $h" "$tmp/out" ||
    fail "the verdict does not blame the repository and name the chunk"
grep -q "used by web1@$id disk vda bytes 0-" "$tmp/out" ||
    fail "the verdict does not name the point, disk and bytes"
grep -q "started as" "$tmp/out" "$tmp/err" && fail "the damaged point was booted"

# lab run checks only when asked to
cat >"$tmp/lab.yaml" <<EOF2
name: damaged
network: { subnet: 10.77.0.0/24, gateway: 10.77.0.1 }
verify:
  - { name: web1, point: latest, address: 10.77.0.21, checks: ["tcp 7"] }
EOF2
rc=0
bootback lab run "$tmp/lab.yaml" --check-chunks --report-dir "$tmp/r2" >"$tmp/out" || rc=$?
cat "$tmp/out"
[ $rc -eq 2 ] && grep -q "repository damaged: chunk missing: $h" "$tmp/out" ||
    fail "lab run --check-chunks: exit $rc"

# The chunk there but corrupt (one bit of its payload; its size is right,
# so the pre-check passes): the VM boots from the point, its first read
# fails, and the verdict blames the repository with the server's error.
cp "$tmp/chunk.saved" "$chunk"
python3 - "$chunk" <<'EOP'
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) // 2] ^= 1
open(p, "wb").write(b)
EOP
rc=0
bootback verify web1 --address 10.77.0.21 --check tcp\ 7 --boot-timeout 5m \
    --report-dir "$tmp/r4" >"$tmp/out" 2>"$tmp/err" || rc=$?
cat "$tmp/out" "$tmp/err"
[ $rc -eq 2 ] || fail "verify of a point with a corrupt chunk: exit $rc, expected 2"
grep -q "repository damaged: .*$h" "$tmp/out" ||
    fail "the verdict does not blame the repository for the corrupt chunk"
grep -q "started as" "$tmp/out" "$tmp/err" || fail "the pre-check refused a chunk of the right size"

# the chunk back: the point verifies
mv "$tmp/chunk.saved" "$chunk"
bootback verify web1 --address 10.77.0.21 --check tcp\ 7 --report-dir "$tmp/r3" >"$tmp/out" ||
    { cat "$tmp/out"; fail "verify of the repaired point"; }
echo ok
