#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# repo check and repo verify name every user of a bad chunk, exactly: each
# point, disk and byte range, runs of consecutive chunks merged, in point
# and disk order; a disk's short last chunk ends at the disk's last byte;
# bad chunks are reported in digest order.  (They now find the users in a
# second pass over the indexes instead of holding every reference.)  And a
# crafted index whose short last chunk names a whole chunk is a length
# mismatch even when an earlier point uses that chunk rightly.
source "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-nbd python3

repo=$tmp/repo
bootback repo init --chunk-size 64K "$repo" >/dev/null
# chunks: A A A B A C A A D E(1000 bytes); A..E random
for c in A B C D; do head -c 65536 /dev/urandom >"$tmp/$c"; done
head -c 1000 /dev/urandom >"$tmp/E"
( cd "$tmp" && cat A A A B A C A A D E ) >"$tmp/d.raw"
bootback import "$tmp/d.raw" --vm web >/dev/null
bootback import "$tmp/d.raw" --vm web >/dev/null
bootback import "$tmp/d.raw" --vm db --disk sdb >/dev/null
bootback repo verify >/dev/null
w=( $(ls "$repo/points/web") ); db=$(ls "$repo/points/db")

digest_at () {      # hex digest of chunk $2 of index $1
    python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); i=64+32*int(sys.argv[2]); print(d[i:i+32].hex())' "$1" "$2"
}
a=$(digest_at "$repo/points/web/${w[0]}/vda.fidx" 0)
e=$(digest_at "$repo/points/web/${w[0]}/vda.fidx" 9)
cp "$repo/chunks/${a:0:4}/$a" "$repo/chunks/${e:0:4}/$e" "$tmp/"
rm "$repo/chunks/${a:0:4}/$a" "$repo/chunks/${e:0:4}/$e"

# VMs in name order (db, web), then points in time order
ua="db@$db disk sdb bytes 0-196607, 262144-327679, 393216-524287; web@${w[0]} disk vda bytes 0-196607, 262144-327679, 393216-524287; web@${w[1]} disk vda bytes 0-196607, 262144-327679, 393216-524287"
ue="db@$db disk sdb bytes 589824-590823; web@${w[0]} disk vda bytes 589824-590823; web@${w[1]} disk vda bytes 589824-590823"
first=$a; second=$e; [[ "$a" < "$e" ]] || { first=$e; second=$a; }
for mode in check verify; do
    expect_rc 2 bootback repo $mode --threads 3
    grep -qx "bootback: chunk missing: $a" "$tmp/err" || fail "repo $mode: chunk A not named"
    grep -qx "    used by: $ua" "$tmp/err" || fail "repo $mode: users of chunk A not named exactly"
    grep -qx "bootback: chunk missing: $e" "$tmp/err" || fail "repo $mode: chunk E not named"
    grep -qx "    used by: $ue" "$tmp/err" || fail "repo $mode: users of the short last chunk not named exactly"
    [ "$(grep -o "chunk missing: [0-9a-f]*" "$tmp/err" | cut -d' ' -f3 | tr '\n' ' ')" = "$first $second " ] ||
        fail "repo $mode: bad chunks not in digest order"
    grep -q "3 points, 3 disks, 5 chunks.*2 PROBLEMS" "$tmp/out" || { cat "$tmp/out"; fail "repo $mode: summary"; }
done
# --json carries the same
set +e; bootback repo check --json >"$tmp/j"; set -e
python3 - "$tmp/j" "$a" "$ua" <<'PY' || fail "repo check --json: used_by differs"
import json, sys
j = json.load(open(sys.argv[1]))
p = [x for x in j["problem_list"] if x["object"] == sys.argv[2]]
assert len(p) == 1 and p[0]["used_by"] == sys.argv[3], p
PY
# one point only: only its own users
set +e; bootback repo check --point "web@${w[1]}" 2>"$tmp/err"; set -e
grep -qx "    used by: web@${w[1]} disk vda bytes 0-196607, 262144-327679, 393216-524287" "$tmp/err" ||
    { cat "$tmp/err"; fail "repo check --point: users"; }
cp "$tmp/$a" "$repo/chunks/${a:0:4}/"; cp "$tmp/$e" "$repo/chunks/${e:0:4}/"
bootback repo verify >/dev/null

# A crafted index: the second web point's short last chunk names chunk A
# (64 KiB), with the index and manifest checksums made to match.  Every
# user expecting another length than the chunk has is a problem, whichever
# point comes first.
python3 - "$repo/points/web/${w[1]}" "$a" <<'PY'
import hashlib, json, sys
d, a = sys.argv[1], bytes.fromhex(sys.argv[2])
idx = bytearray(open(d + "/vda.fidx", "rb").read())
idx[64 + 32 * 9:64 + 32 * 10] = a
idx[32:64] = hashlib.sha256(idx[64:]).digest()
open(d + "/vda.fidx", "wb").write(idx)
m = json.load(open(d + "/manifest.json"))
m["disks"][0]["index_sha256"] = hashlib.sha256(idx).hexdigest()
json.dump(m, open(d + "/manifest.json", "w"))
PY
set +e; bootback repo verify 2>"$tmp/err"; rc=$?; set -e
cat "$tmp/err"
[ $rc -eq 2 ] || fail "crafted index: repo verify exit $rc, expected 2"
grep -qx "bootback: chunk length mismatch: $a" "$tmp/err" || fail "crafted index: no length mismatch for chunk A"
grep -qx "    chunk has 65536 bytes, the index expects 1000" "$tmp/err" || fail "crafted index: detail"
grep -q "web@${w[1]} disk vda bytes 0-196607, 262144-327679, 393216-524287, 589824-590823" "$tmp/err" ||
    fail "crafted index: the crafted use is not named"
echo "verify users ok"
