#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Crash safety and bit rot on an NFS repository.  SIGKILL the importer at
# each numbered commit step, at each fsync and at random moments: every
# point reported done is there and verifies, no point is half-visible,
# gc removes the leftovers, a re-run succeeds.  Then flipped bits and a
# missing chunk on the server are found by verify (exit 2), naming the
# chunk and the points using it, with no fault injected on the client.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/nfs.sh"
source "$top_srcdir/tests/lib/crash.sh"
requires qemu-img qemu-nbd python3
nfs_start

repo=$NFS_EXPORT/repo
bootback repo init --chunk-size 64K "$(nfs_url repo)"
make_disk "$tmp/a.raw" $(( 3 * 1024 * 1024 + 777 ))
make_disk "$tmp/b.raw" $(( 2 * 1024 * 1024 ))

crash_scenario 40 300 0

# 4. bit rot on the server, found through NFS
bootback import "$tmp/a.raw" --vm web
h=$(python3 -c 'import sys; print(open(sys.argv[1], "rb").read()[64:96].hex())' \
    "$(ls -d "$repo"/points/web/*/vda.fidx | head -1)")
chunk=$repo/chunks/${h:0:4}/$h
cp "$chunk" "$tmp/chunk.good"
python3 - "$chunk" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[100] ^= 0x04
open(p, 'wb').write(b)
PY
expect_rc 2 bootback repo verify
grep -q "$h" "$tmp/err" || fail "flipped bit: chunk not named"
grep -q "web@.* disk vda bytes 0-65535" "$tmp/err" || fail "flipped bit: point not named"
expect_fail bootback restore web --to "$tmp/bad.raw" 2> "$tmp/err"
grep -q "$h" "$tmp/err" || fail "flipped bit: restore does not name the chunk"
[ ! -e "$tmp/bad.raw" ] || fail "flipped bit: restore left its output"
rm "$chunk"
expect_rc 2 bootback repo verify
grep -q "$h" "$tmp/err" || fail "missing chunk: not named"
cp "$tmp/chunk.good" "$chunk"
bootback repo verify
echo "nfs crash safety and bit rot ok"
