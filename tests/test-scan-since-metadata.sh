#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bootback scan --since on ext4: a file is changed if a chunk holding its
# data, its inode or its extent blocks, or its directory changed, whatever
# its ctime says.  Point A (clean) holds a payload in blocks no file
# owns (written, then removed) and in an inode no name reaches (written,
# then unlinked).  Then, with every time set back to 2001:
#  - B: an existing clean file's inode is re-pointed at the payload's
#    blocks: only the inode table's chunk (and the bitmaps') changes;
#  - C: a name is added for the unreachable inode: only the directory's
#    block changes.
# Both must be found, and files none of whose chunks changed still not
# read.  Before, only the data runs were compared, and both points were
# recorded clean.
source "$top_srcdir/tests/functions.sh"
requires nbdkit mkfs.ext4 debugfs python3

source "$top_srcdir/tests/lib/scan.sh"
scan_rule repointed BOOTBACK-REPOINTED
echo "BOOTBACK-REPOINTED-INODE" >"$tmp/payload.txt"

head -c 256K /dev/urandom >"$tmp/filler"   # the payload in another chunk than /srv
# 1 KiB inodes: 64 a chunk of the inode table (28 in the first one), so
# that /many and its 80 files, after 30 in /pad, are in chunks B and C
# leave as they are: those are not read
mkfs.ext4 -q -F -b 4096 -I 1024 "$tmp/a.img" 64M
{
    echo "mkdir /srv"
    echo "write $tmp/clean.txt /srv/note.txt"
    echo "write $tmp/filler /filler"
    echo "write $tmp/payload.txt /stage"
    echo "write $tmp/payload.txt /stage2"
    echo "mkdir /pad"
    for i in $(seq 30); do echo "write $tmp/clean.txt /pad/f$i"; done
    echo "mkdir /many"
    for i in $(seq 80); do echo "write $tmp/clean.txt /many/f$i"; done
} | debugfs -w -f - "$tmp/a.img" >/dev/null 2>&1
blk=$(debugfs -R "blocks /stage" "$tmp/a.img" 2>/dev/null | tr -d ' ')
ino=$(debugfs -R "stat /stage2" "$tmp/a.img" 2>/dev/null | sed -n 's/^Inode: \([0-9]*\) .*/\1/p')
[ -n "$blk" ] && [ -n "$ino" ] || fail "no block or inode for the payload"
debugfs -w -f - "$tmp/a.img" >/dev/null 2>&1 <<EOF
rm /stage
unlink /stage2
EOF
sleep 1   # A's files' ctimes before A's time (whole seconds)
bootback import "$tmp/a.img" --vm m >/dev/null
a=$(ls "$tmp/repo/points/m")
bootback scan "m@$a" --signatures "$sig" >"$tmp/out" 2>&1 || { cat "$tmp/out"; fail "point A is not clean"; }

cp --sparse=always "$tmp/a.img" "$tmp/b.img"
debugfs -w -f - "$tmp/b.img" >/dev/null 2>&1 <<EOF
sif /srv/note.txt block[5] $blk
sif /srv/note.txt size 25
sif /srv/note.txt ctime 20010101000000
sif /srv/note.txt mtime 20010101000000
setb $blk
EOF
cp --sparse=always "$tmp/a.img" "$tmp/c.img"
debugfs -w -f - "$tmp/c.img" >/dev/null 2>&1 <<EOF
ln <$ino> /srv/linked.txt
sif /srv ctime 20010101000000
sif /srv mtime 20010101000000
sif <$ino> ctime 20010101000000
sif <$ino> mtime 20010101000000
EOF
[ "$(debugfs -R 'cat /srv/note.txt' "$tmp/b.img" 2>/dev/null)" = BOOTBACK-REPOINTED-INODE ] ||
    fail "B: the inode is not re-pointed"
[ "$(debugfs -R 'cat /srv/linked.txt' "$tmp/c.img" 2>/dev/null)" = BOOTBACK-REPOINTED-INODE ] ||
    fail "C: the inode is not linked"

for t in c:/srv/linked.txt b:/srv/note.txt; do
    img=${t%%:*} path=${t#*:}
    bootback import "$tmp/$img.img" --vm m >/dev/null
    p=$(ls "$tmp/repo/points/m" | tail -n 1)
    rc=0; bootback scan "m@$p" --since "$a" --signatures "$sig" --json >"$tmp/$img.json" 2>&1 || rc=$?
    python3 - "$tmp/$img.json" "$img" "$path" <<'EOF' || fail "$img: the --since scan is wrong (exit $rc)"
import json, sys
r = json.load(open(sys.argv[1]))
p = r["disks"][0]["partitions"][0]
print(sys.argv[2], r["verdict"], "files", p["files"], "unchanged", p["unchanged"])
m = {(x["path"], x["rule"]) for x in r["matches"]}
assert m == {(sys.argv[3], "repointed")}, m
assert r["verdict"] == "found" and r["since"] is not None, r["verdict"]
assert p["unchanged"] >= 60, p
EOF
    [ $rc = 2 ] || fail "$img: exit $rc"
done
