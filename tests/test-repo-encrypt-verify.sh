#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bootback verify (the verification lab) of a restore point in an
# encrypted repository (issue 18 item 4): the passphrase file's name
# reaches the lab's instant session and nbdkit through the environment;
# the VM boots and answers; with its chunks damaged the verdict blames
# the repository and names a chunk that failed its tag.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/lab/lab-test-lib.sh"

lab_test_start nbdkit
echo "lab pass" > "$tmp/pass"
chmod 600 "$tmp/pass"
export BOOTBACK_PASSPHRASE_FILE=$tmp/pass
bootback repo init --encrypt "$tmp/repo" > /dev/null
lab_point_files web1 21
bootback import "$tmp/web1.img" --vm web1 --domain-xml "$tmp/web1.xml" > /dev/null

rc=0
bootback verify web1 --address 10.77.0.21 --check tcp\ 7 --report-dir "$tmp/r1" \
    > "$tmp/out" 2> "$tmp/err" || rc=$?
cat "$tmp/out" "$tmp/err"
[ $rc -eq 0 ] || fail "verify of a point in an encrypted repository: exit $rc"

# damaged chunks (every one: the index is encrypted, so which one the boot
# reads first is not known here): the boot's first read fails its tag
for chunk in $(find "$tmp/repo/chunks" -type f); do
    damage_byte "$chunk" 100
done
rc=0
bootback verify web1 --address 10.77.0.21 --check tcp\ 7 --report-dir "$tmp/r2" \
    > "$tmp/out" 2> "$tmp/err" || rc=$?
cat "$tmp/out" "$tmp/err"
[ $rc -eq 2 ] || fail "verify of a damaged point: exit $rc, expected 2"
grep -q "repository damaged" "$tmp/out" || fail "the verdict does not blame the repository"
grep -q "chunk [0-9a-f]\{64\}: authentication failed" "$tmp/out" ||
    fail "the verdict does not name the chunk and what is wrong"
echo "verify from an encrypted repository ok"
