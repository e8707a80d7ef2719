#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# GC of a repository on NFS, where every mtime is the server's: prune + gc
# frees exactly the chunks no point uses, and the PBS race: an import that
# reuses chunks which are garbage when GC starts, with GC run in the middle
# of that import, produces a point that verifies.  One GC at a time, also
# when the lock was taken by another host.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/nfs.sh"
requires qemu-img qemu-nbd nbdkit python3
nfs_start

repo=$NFS_EXPORT/repo              # the server's view of the same files
url=$(nfs_url repo)
bootback repo init --chunk-size 64K "$url"
head -c $((4 * 1024 * 1024)) /dev/urandom > "$tmp/a.raw"
head -c $((4 * 1024 * 1024)) /dev/urandom > "$tmp/b.raw"
bootback import "$tmp/a.raw" --vm vm1
bootback import "$tmp/b.raw" --vm vm1
nchunks () { find "$repo/chunks" -type f -not -name '*.tmp-*' | wc -l; }
[ "$(nchunks)" -eq 128 ] || fail "expected 128 chunks, have $(nchunks)"

bootback gc --json > "$tmp/j"
grep -q '"removed": 0' "$tmp/j"
bootback prune vm1 --keep-last 1 | grep -q "removed 1 restore points"
# the storage clock is the server's: chunks aged on the server are old
find "$repo/chunks" -type f -exec touch -d '1 hour ago' {} +
bootback gc --dry-run --json > "$tmp/j"; cat "$tmp/j"
grep -q '"removed": 64' "$tmp/j"
[ "$(nchunks)" -eq 128 ] || fail "dry run removed chunks"

# The race: re-import a.raw (whose 64 chunks are old garbage) through a
# slow NBD source, and run gc while the import is in the middle.
nbdkit -U "$tmp/slow.sock" -P "$tmp/nbdkit.pid" -f --filter=delay \
    file "$tmp/a.raw" rdelay=60ms &
cleanup_fn 'kill $(cat "$tmp/nbdkit.pid") 2>/dev/null'
for i in $(seq 100); do [ -S "$tmp/slow.sock" ] && break; sleep 0.1; done
bootback import "nbd+unix:///?socket=$tmp/slow.sock" --vm vm2 --threads 1 > "$tmp/imp" 2>&1 &
imp=$!
# gc once the import is in the middle: it has reused (touched) one of
# a.raw's old chunks (every chunk was aged an hour above).  A fixed wait
# was not that on a loaded host: the import had not started, and gc took
# all 64.
touched () { find "$repo/chunks" -type f -not -name '*.tmp-*' -newermt '-10 minutes' | wc -l; }
for (( i = 0; i < 600 * slow; i++ )); do
    [ "$(touched)" -gt 0 ] && break
    kill -0 $imp 2>/dev/null || break
    sleep 0.05
done
[ "$(touched)" -gt 0 ] || { cat "$tmp/imp"; fail "the import touched no chunk"; }
bootback gc --json > "$tmp/j"; cat "$tmp/j"
wait $imp || { cat "$tmp/imp"; fail "import failed"; }
cat "$tmp/imp"
removed=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["removed"])' "$tmp/j")
[ "$removed" -gt 0 ] && [ "$removed" -lt 64 ] ||
    fail "gc removed $removed chunks; expected some but not all of a.raw's"
bootback repo verify
bootback restore vm2 --to "$tmp/out.raw"
cmp "$tmp/a.raw" "$tmp/out.raw"
[ "$(nchunks)" -eq 128 ] || fail "expected 128 chunks after the import, have $(nchunks)"

# only one gc at a time: a lock left by another host stays respected
echo "host=elsewhere pid=1" > "$repo/locks/gc"
expect_fail bootback gc 2> "$tmp/err"
cat "$tmp/err"
grep -q "another garbage collection is running" "$tmp/err"
rm "$repo/locks/gc"
# ... and the refused create did not spoil the connection for what follows
bootback gc --json | grep -q '"removed": 0'
bootback import "$tmp/b.raw" --vm vm3
bootback repo verify
echo "nfs gc ok"
