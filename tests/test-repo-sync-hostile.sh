#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bootback repo sync from a hostile source between repositories of the
# same chunk size: a point whose index names, in the middle of its disk,
# a chunk of another length (a real chunk of the repository, the index and
# manifest made to agree) is refused, naming the disk's bytes, and
# nothing of it is committed in DST; when DST has that chunk already
# (reused by its name, not read), --verify reads it back and refuses the
# point.  Copied, the point would be broken in DST (its reads fail) while
# sync and its --verify said it was copied and checked.
source "$top_srcdir/tests/functions.sh"
requires python3

src=$tmp/src
bootback repo init --chunk-size 64K "$src" > /dev/null
head -c $(( 256 << 10 )) /dev/urandom > "$tmp/a.raw"
head -c $(( 100 << 10 )) /dev/urandom > "$tmp/b.raw"
bootback --repo "$src" import "$tmp/a.raw" --vm web > /dev/null
bootback --repo "$src" import "$tmp/b.raw" --vm other > /dev/null

# web's chunk 1 (bytes 64K-128K) becomes other's short last chunk (36K)
python3 - "$src" <<'EOF'
import glob, hashlib, json, sys
src = sys.argv[1]
def point(vm):
    d = glob.glob("%s/points/%s/*" % (src, vm))[0]
    return d, open(d + "/vda.fidx", "rb").read()
wd, web = point("web")
od, other = point("other")
idx = bytearray(web)
idx[64 + 32:64 + 64] = other[64 + 32:64 + 64]
idx[32:64] = hashlib.sha256(bytes(idx[64:])).digest()
open(wd + "/vda.fidx", "wb").write(idx)
m = json.load(open(wd + "/manifest.json"))
m["disks"][0]["index_sha256"] = hashlib.sha256(bytes(idx)).hexdigest()
json.dump(m, open(wd + "/manifest.json", "w"))
EOF

# a fresh DST: the chunk is read from SRC, and refused
dst=$tmp/dst
bootback repo init --chunk-size 64K "$dst" > /dev/null
expect_rc 1 bootback repo sync "$src" "$dst" web
grep -q "web@.* disk vda bytes 65536-131071: chunk has 36864 bytes, the index expects 65536" \
    "$tmp/err" || fail "a chunk of another length was copied: $(cat "$tmp/out" "$tmp/err")"
bootback --repo "$dst" points web | grep -q "^web@" && fail "the point was committed in DST"

# DST has the chunk already (other's): reused by name, --verify reads it
dst2=$tmp/dst2
bootback repo init --chunk-size 64K "$dst2" > /dev/null
bootback repo sync "$src" "$dst2" other > /dev/null 2>&1
expect_rc 1 bootback repo sync --verify "$src" "$dst2" web
grep -q "web@.* disk vda bytes 65536-131071: chunk has 36864 bytes, the index expects 65536" \
    "$tmp/err" || fail "--verify passed a chunk of another length: $(cat "$tmp/out" "$tmp/err")"

# an honest point still goes
bootback repo sync --verify "$src" "$dst" other > /dev/null 2>&1 || fail "other: $(cat "$tmp/err")"
bootback --repo "$dst" restore other --to "$tmp/o.raw" > /dev/null
cmp "$tmp/b.raw" "$tmp/o.raw" || fail "other restored from DST differs"
echo "repo sync from a hostile source ok"
