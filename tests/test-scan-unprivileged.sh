#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bootback scan run by a user other than root: the scanning child can
# neither change uid nor make a network namespace, so the sandbox does
# not hold and the parent refuses its result (not scanned, naming the
# sandbox; never clean, nothing matched is read from it).  Before, the
# child parsed the guest's disk as that user, with that user's network,
# and the point was recorded clean.  As root the same point is clean.
source "$top_srcdir/tests/functions.sh"
requires nbdkit mkfs.xfs setpriv python3
[ "$(id -u)" = 0 ] || skip "needs root (to run the scan as another user)"
group=$(id -gn nobody)

source "$top_srcdir/tests/lib/scan.sh"
scan_rule unpriv BOOTBACK-UNPRIVILEGED-TEST
printf 'd\n0 0\nd--755 0 0\nclean.txt ---644 0 0 %s\n$\n' "$tmp/clean.txt" >"$tmp/proto"
truncate -s 300M "$tmp/x.img"
mkfs.xfs -q -p "$tmp/proto" "$tmp/x.img"
bootback import "$tmp/x.img" --vm u >/dev/null
rm -f "$tmp/x.img"

# the repository, the catalog and the rules are the user's
chown -R "nobody:$group" "$tmp"
as_nobody () {
    setpriv --reuid=nobody --regid="$group" --clear-groups \
        env BOOTBACK_HOME="$BOOTBACK_HOME" TMPDIR=/tmp "$@"
}
rc=0; as_nobody "$BOOTBACK" scan u --signatures "$sig" --json >"$tmp/json" 2>"$tmp/err" || rc=$?
cat "$tmp/json" "$tmp/err"
[ $rc = 1 ] || fail "the scan as nobody exits $rc"
python3 - "$tmp/json" <<'EOF' || fail "the scan as nobody was not refused"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["verdict"] == "incomplete", r["verdict"]
d = r["disks"][0]
assert "the scan sandbox could not drop privileges: run as root" in d["error"], d
assert not d.get("partitions"), d
EOF
rc=0; as_nobody "$BOOTBACK" scan u --signatures "$sig" >"$tmp/out" 2>&1 || rc=$?
cat "$tmp/out"
grep -q '^not scanned: disk vda: the scan sandbox could not drop privileges: run as root' "$tmp/out" ||
    fail "the refusal does not name the sandbox"
grep -q '^malware: *incomplete' <<< "$(bootback point show u)" ||
    fail "point show: $(bootback point show u | grep malware)"
rc=0; bootback instant u --require-clean >"$tmp/out" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "^bootback: --require-clean: refusing u@.*: its last scan is incomplete" "$tmp/out" ||
    { cat "$tmp/out"; fail "instant --require-clean took the point scanned as nobody"; }

# as root, the sandbox holds and the point is clean
rc=0; bootback scan u --signatures "$sig" >"$tmp/out" 2>&1 || rc=$?
cat "$tmp/out"
[ $rc = 0 ] || fail "the scan as root exits $rc"
