#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Bit rot: a flipped bit in a chunk, a flipped bit in an index, a truncated
# chunk, a deleted chunk.  Each is found by repo verify (exit 2) naming the
# chunk or file and every point/disk/byte range using it; restore exits
# non-zero, names the same, and leaves no output file.
source "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-nbd python3

repo=$tmp/repo
bootback repo init --chunk-size 64K "$repo"
make_disk "$tmp/a.raw" $(( 4 * 1024 * 1024 + 100 ))
bootback import "$tmp/a.raw" --vm web
bootback import "$tmp/a.raw" --vm web        # second point shares every chunk
bootback import "$tmp/a.raw" --vm db --disk sdb
bootback repo verify

# The chunk holding offset 0 of the disk (first digest in the index).
first_chunk () {
    python3 - "$1" <<'PY'
import sys
d = open(sys.argv[1], 'rb').read()[64:96].hex()
print(d)
PY
}
pts=( $(ls "$repo/points/web") )
idx="$repo/points/web/${pts[0]}/vda.fidx"
h=$(first_chunk "$idx")
chunk="$repo/chunks/${h:0:4}/$h"
[ -f "$chunk" ] || fail "expected chunk file $chunk"
cp "$chunk" "$tmp/chunk.good"

check_detected () {
    local what=$1
    expect_rc 2 bootback repo verify
    grep -q "$h" "$tmp/err" || fail "$what: verify does not name chunk $h"
    # every point and disk using it is named, with the byte range
    grep -q "web@${pts[0]} disk vda bytes 0-65535" "$tmp/err" || fail "$what: point 1 not named"
    grep -q "web@${pts[1]} disk vda bytes 0-65535" "$tmp/err" || fail "$what: point 2 not named"
    grep -q "db@.* disk sdb bytes 0-65535" "$tmp/err" || fail "$what: db point not named"
    # restore fails, names chunk, point, disk and range, writes nothing
    set +e
    bootback restore "web@${pts[0]}" --to "$tmp/out.raw" 2> "$tmp/err"; rc=$?
    set -e
    cat "$tmp/err"
    [ $rc -ne 0 ] || fail "$what: restore succeeded"
    grep -q "web@${pts[0]} disk vda bytes 0-65535" "$tmp/err" || fail "$what: restore error lacks context"
    grep -q "$h" "$tmp/err" || fail "$what: restore error lacks the chunk"
    [ ! -e "$tmp/out.raw" ] && [ ! -e "$tmp/out.raw.part" ] || fail "$what: output left behind"
    bootback restore "web@${pts[0]}" --format qcow2 --to "$tmp/out.qcow2" 2>/dev/null && fail "$what: qcow2 restore succeeded"
    [ ! -e "$tmp/out.qcow2" ] || fail "$what: qcow2 output left behind"
}

# 1. one flipped bit in the payload
python3 - "$chunk" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[100] ^= 0x04
open(p, 'wb').write(b)
PY
check_detected "bit flip"
cp "$tmp/chunk.good" "$chunk"; bootback repo verify

# 2. truncated chunk
truncate -s 1000 "$chunk"
check_detected "truncation"
bootback repo check 2>/dev/null && true
cp "$tmp/chunk.good" "$chunk"; bootback repo verify

# 3. deleted chunk: also found by check (no data read)
rm "$chunk"
check_detected "deletion"
set +e; bootback repo check 2> "$tmp/err"; rc=$?; set -e
[ $rc -eq 2 ] && grep -q "chunk missing" "$tmp/err" && grep -q "$h" "$tmp/err" || fail "check missed the deleted chunk"
cp "$tmp/chunk.good" "$chunk"; bootback repo verify

# 4. a flipped bit in an index: that point is named, the others verify
cp "$idx" "$tmp/idx.good"
python3 - "$idx" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[64 + 40] ^= 1
open(p, 'wb').write(b)
PY
expect_rc 2 bootback repo verify
grep -q "index invalid: points/web/${pts[0]}/vda.fidx" "$tmp/err" || fail "index flip not named"
grep -q "does not match the manifest" "$tmp/err"
expect_fail bootback restore "web@${pts[0]}" --to "$tmp/o.raw" 2>/dev/null
[ ! -e "$tmp/o.raw" ]
bootback restore "web@${pts[1]}" --to "$tmp/o.raw"
cmp "$tmp/a.raw" "$tmp/o.raw"
cp "$tmp/idx.good" "$idx"
bootback repo verify

# Symbolic links planted in the repository are not followed: an index
# replaced by a link to a host file fails by name (the host file is not
# read), and a stray file in points/ does not stop any listing.
echo "host secret" >"$tmp/host-file"
mv "$idx" "$tmp/idx.moved"
ln -s "$tmp/host-file" "$idx"
expect_fail bootback restore "web@${pts[0]}" --to "$tmp/o2.raw" 2>"$tmp/err"
grep -q "open: $idx: Too many levels of symbolic links" "$tmp/err" || { cat "$tmp/err"; fail "a linked index was followed, or not refused by name"; }
rm "$idx" && mv "$tmp/idx.moved" "$idx"
ln -s "$tmp/host-file" "$(dirname "$(dirname "$(dirname "$idx")")")/stray"
bootback points >/dev/null || fail "a stray file in points/ broke 'bootback points'"
bootback repo verify
echo "bit rot detected in every case"
