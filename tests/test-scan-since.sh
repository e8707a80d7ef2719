#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bootback scan --since: after a clean scan of point A, point B (A plus a
# few planted files, one of them with its ctime and mtime set back to
# 2001 so only its changed data blocks give it away) is scanned by
# index difference: the planted files are found, the unchanged ones are
# not read; --since needs an earlier point with a clean scan.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/images.sh"
requires nbdkit debugfs md5sum python3
[ -f "$top_srcdir/nbd-plugin/nbdkit-bootback-plugin.so" ] || skip "plugin not built"
getent passwd nobody >/dev/null || skip "no user nobody"
images_tiny

bootback repo init --chunk-size 64K "$tmp/repo" >/dev/null
tiny_copy tiny "$tmp/a.img"
sig=$tmp/sig; mkdir -p "$sig"
printf 'X5O!P%%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' >"$tmp/eicar.com"
echo "$(md5sum <"$tmp/eicar.com" | cut -d' ' -f1):68:Test.Eicar.HDB" >"$sig/test.hdb"
echo 'rule old_times { strings: $a = "BOOTBACK-OLD-TIMES" condition: $a }' >"$sig/test.yar"

bootback import "$tmp/a.img" --vm inc >/dev/null
a=$(ls "$tmp/repo/points/inc")
rc=0; bootback scan inc --since "$a" --signatures "$sig" >"$tmp/out" 2>&1 || rc=$?
cat "$tmp/out"
[ $rc = 1 ] && grep -q -- "--since $a: not earlier than inc@$a" "$tmp/out" ||
    fail "--since the point itself was not refused"

cp --sparse=always "$tmp/a.img" "$tmp/b.img"
root="$tmp/b.img?offset=$((67584 * 512))"
echo "BOOTBACK-OLD-TIMES" >"$tmp/old.txt"
cat >"$tmp/cmds" <<EOF
mkdir /srv
write $tmp/eicar.com /srv/eicar.com
write $tmp/old.txt /srv/old.txt
sif /srv/old.txt ctime 20010101000000
sif /srv/old.txt mtime 20010101000000
EOF
debugfs -w -f "$tmp/cmds" "$root" >/dev/null 2>&1
bootback import "$tmp/b.img" --vm inc >/dev/null
b=$(ls "$tmp/repo/points/inc" | tail -n 1)
[ "$a" != "$b" ] || fail "one point only"

rc=0; bootback scan "inc@$b" --since "$a" --signatures "$sig" >"$tmp/out" 2>&1 || rc=$?
cat "$tmp/out"
[ $rc = 1 ] && grep -q -- "--since inc@$a: never scanned" "$tmp/out" ||
    fail "--since a point never scanned was not refused"

bootback scan "inc@$a" --signatures "$sig" --json >"$tmp/full.json" ||
    fail "point A is not clean"
rc=0; bootback scan "inc@$b" --since "$a" --signatures "$sig" --json >"$tmp/inc.json" || rc=$?
[ $rc = 2 ] || fail "the incremental scan exits $rc"
python3 - "$tmp/full.json" "$tmp/inc.json" <<'EOF' || fail "the incremental scan is wrong"
import json, sys
full, inc = (json.load(open(f)) for f in sys.argv[1:])
m = {(x["path"], x["rule"]) for x in inc["matches"]}
assert m == {("/srv/eicar.com", "Test.Eicar.HDB.UNOFFICIAL"),
             ("/srv/old.txt", "old_times")}, m
assert inc["since"] is not None
def files(r, key):
    return sum(p[key] for d in r["disks"] for p in d["partitions"])
print("full: %d files in %.2f s; incremental: %d files (%d unchanged) in %.2f s"
      % (files(full, "files"), full["seconds"], files(inc, "files"),
         files(inc, "unchanged"), inc["seconds"]))
assert files(inc, "files") <= 8, files(inc, "files")
assert files(inc, "unchanged") >= files(full, "files") - 8
EOF
grep -q "^malware: *found, 2 matches.* since $a" <<< "$(bootback point show "inc@$b")" ||
    fail "point show: $(bootback point show "inc@$b" | grep malware)"
