#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Damaged chunks: a flipped bit (CRC), a chunk whose header and CRC are
# right but whose content is not (SHA-256), a truncated chunk and a deleted
# one.  Each gives EIO on exactly its own range, everything else reads
# correctly, the log line names chunk, point, disk and bytes, nbdcopy and
# qemu-img convert fail, and a repaired chunk reads again (no error is
# cached).  With and without the cache.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/nbd-plugin/plugin-functions.sh"
requires numfmt qemu-img
need_py

cd "$tmp"
cs=65536
make_image a.img 2M "0:2M"            # 32 chunks of random data
bb_repo_init repo 64K
point=$(bb_import repo vm 20260101T000000Z vda=a.img)
idx=repo/points/vm/20260101T000000Z/vda.fidx

chunk_file () {   # chunk_file N: the path of chunk N of vda
    local hex
    hex=$(od -An -tx1 -v -j $((64 + 32 * $1)) -N 32 "$idx" | tr -d ' \n')
    echo "repo/chunks/${hex:0:4}/$hex"
}
for i in 3 7 11 12; do cp "$(chunk_file $i)" saved-$i; done

damage () {
    local f b o
    # 3: one bit flipped in the payload, in its last frame (a read of
    # part of a chunk decodes only the frames it touches).
    f=$(chunk_file 3)
    o=$(( $(stat -c %s "$f") - 1000 ))
    b=$(od -An -tu1 -j $o -N 1 "$f" | tr -d ' ')
    printf "\\$(printf '%03o' $((b ^ 4)))" |
        dd of="$f" bs=1 seek=$o conv=notrunc status=none
    # 7: truncated.
    truncate -s 30000 "$(chunk_file 7)"
    # 11: deleted.
    rm "$(chunk_file 11)"
    # 12: a well-formed raw chunk with the wrong content (right CRCs).
    "$PY" - "$(chunk_file 12)" <<'PY'
import struct, sys, zlib
payload = bytes(65535) + b"x"
h = b"BBC1" + bytes(4) + struct.pack("<III", 65536, 65536, zlib.crc32(payload))
h += struct.pack("<I", zlib.crc32(h)) + bytes(8)
open(sys.argv[1], "wb").write(h + payload)
PY
}
repair () {
    local i
    for i in 3 7 11 12; do cp saved-$i "$(chunk_file $i)"; done
}

expected="bad 196608 65536 EIO
bad 458752 65536 EIO
bad 720896 65536 EIO
bad 786432 65536 EIO
bad 131072 131072 EIO
bad 262143 2 EIO"
spans="131072:131072 262143:2 262144:196608 0:196608 600000:1"

for opts in "" "cache=0" "cache=256K readahead=1M"; do
    damage
    : >"$tmp/nbdkit.log"
    bb_nbdkit_start "$plugin" repo=repo point=vm $opts
    "$PY" "$top_srcdir/nbd-plugin/read-chunks.py" "$uri" a.img $cs $spans >bad.out ||
        { cat bad.out; fail "[$opts] wrong data returned"; }
    diff -u <(echo "$expected") bad.out || fail "[$opts] wrong set of failed reads"

    # The log names chunk, point, disk and byte range, and what is wrong.
    for e in "3:196608-262143:CRC mismatch" "7:458752-524287:truncated" \
             "11:720896-786431:is missing" "12:786432-851967:SHA-256 mismatch"; do
        IFS=: read -r i range what <<<"$e"
        hex=$(basename "$(chunk_file $i)")
        grep "$point disk vda bytes $range: chunk $hex" "$tmp/nbdkit.log" |
            grep -q "$what" || { cat "$tmp/nbdkit.log"; fail "[$opts] no log line for chunk $i"; }
    done

    # Repair: put the chunks back; the same server now reads them.
    repair
    "$PY" "$top_srcdir/nbd-plugin/read-chunks.py" "$uri" a.img $cs $spans >bad.out ||
        fail "[$opts] wrong data after repair"
    [ ! -s bad.out ] || { cat bad.out; fail "[$opts] errors after repair"; }
    nbdcopy "$uri" out.img && cmp out.img a.img || fail "[$opts] copy after repair"
    bb_nbdkit_stop

    # Whole-disk copies fail instead of copying damage.  Each in its own
    # server: nbdkit 1.32.5 itself may abort ("raw_send_socket: Assertion
    # `sock >= 0' failed") when a client hangs up with requests in flight,
    # which nbdcopy does after an error (the same happens with nbdkit's
    # pattern plugin and error filter).
    damage
    for cmd in 'nbdcopy "$uri" out.img' \
               'qemu-img convert -f raw -O raw "$uri" out.img' \
               'qemu-img convert -f raw -O qcow2 "$uri" out.qcow2'; do
        expect_fail bb_nbdkit -U - "$plugin" repo=repo point=vm $opts --run "$cmd"
    done
    repair
done
echo "test-corrupt: ok"
