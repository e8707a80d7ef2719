#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bootback scan --since on XFS reads every file: libfsxfs gives no extent
# map, and the inode change time is the guest's to set.  After a clean
# scan of point A, two later points add a file matched by a rule:
#  - B, a default mkfs.xfs (bigtime): the file's ctime is now;
#  - C, an XFS without bigtime whose new file has its ctime and mtime set
#    back to 2001 in the inode (raw bytes, CRC rewritten by xfs_db), as
#    malware with root in the guest, or a guest clock running behind,
#    would leave it.
# Both must be found.  Before, a file whose ctime looked older than A was
# counted "unchanged" and never read, and the point was recorded clean.
source "$top_srcdir/tests/functions.sh"
requires nbdkit mkfs.xfs xfs_db python3

source "$top_srcdir/tests/lib/scan.sh"
scan_rule xfs_backdated BOOTBACK-XFS-BACKDATED
echo "BOOTBACK-XFS-BACKDATED" >"$tmp/evil.txt"

# proto FILE [evil]: an mkfs.xfs prototype, with /srv/evil.txt if asked
proto () {
    {
        printf 'd\n0 0\nd--755 0 0\nclean.txt ---644 0 0 %s\n' "$tmp/clean.txt"
        printf 'srv d--755 0 0\nother.txt ---644 0 0 %s\n' "$tmp/clean.txt"
        [ -z "${2:-}" ] || printf 'evil.txt ---644 0 0 %s\n' "$tmp/evil.txt"
        printf '$\n$\n'
    } >"$1"
}
proto "$tmp/proto-a"
proto "$tmp/proto-b" evil

truncate -s 300M "$tmp/a.img"
mkfs.xfs -q -p "$tmp/proto-a" "$tmp/a.img"
bootback import "$tmp/a.img" --vm x >/dev/null
a=$(ls "$tmp/repo/points/x")
bootback scan "x@$a" --signatures "$sig" >"$tmp/out" 2>&1 || { cat "$tmp/out"; fail "point A is not clean"; }

# B: the new file as mkfs made it
sleep 1
truncate -s 300M "$tmp/b.img"
mkfs.xfs -q -p "$tmp/proto-b" "$tmp/b.img"

# C: no bigtime (32-bit seconds), the new file's ctime and mtime 2001
truncate -s 300M "$tmp/c.img"
mkfs.xfs -q -m bigtime=0 -p "$tmp/proto-b" "$tmp/c.img"
ino=$(xfs_db -r -c 'ls /srv' "$tmp/c.img" | awk '$(NF-1) == "evil.txt" { print $2 }')
[ -n "$ino" ] || fail "no inode for /srv/evil.txt"
off=$(xfs_db -r -c "convert ino $ino byte" "$tmp/c.img" | sed 's/.*(\(.*\))/\1/')
# di_mtime at 0x28, di_ctime at 0x30: seconds, nanoseconds (big-endian)
printf '\x3a\x4f\xc8\x80\0\0\0\0\x3a\x4f\xc8\x80\0\0\0\0' |
    dd of="$tmp/c.img" bs=1 seek=$((off + 0x28)) conv=notrunc status=none
xfs_db -x -c "inode $ino" -c 'write core.gen 7' "$tmp/c.img" >/dev/null 2>&1
xfs_db -r -c "inode $ino" -c 'print core.ctime.sec v3.crc' "$tmp/c.img" >"$tmp/db"
cat "$tmp/db"
grep -q 'core.ctime.sec = Mon Jan  1 00:00:00 2001' "$tmp/db" || fail "ctime not set back"
grep -q 'v3.crc = .*(correct)' "$tmp/db" || fail "the inode's CRC is wrong"

for t in c b; do
    bootback import "$tmp/$t.img" --vm x >/dev/null
    p=$(ls "$tmp/repo/points/x" | tail -n 1)
    rc=0; bootback scan "x@$p" --since "$a" --signatures "$sig" --json >"$tmp/$t.json" 2>&1 || rc=$?
    python3 - "$tmp/$t.json" "$t" <<'EOF' || fail "$t: the --since scan of XFS is wrong (exit $rc)"
import json, sys
r = json.load(open(sys.argv[1]))
p = r["disks"][0]["partitions"][0]
print(sys.argv[2], r["verdict"], p["files"], p["unchanged"], p["notes"])
m = {(x["path"], x["rule"]) for x in r["matches"]}
assert m == {("/srv/evil.txt", "xfs_backdated")}, m
assert r["verdict"] == "found" and r["since"] is not None, r["verdict"]
assert p["fs"] == "xfs" and p["unchanged"] == 0 and p["files"] == 3, p
assert any("reads every file" in n for n in p["notes"]), p["notes"]
EOF
    [ $rc = 2 ] || fail "$t: exit $rc"
done
