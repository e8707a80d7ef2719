#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# GC: prune + gc frees exactly the chunks no point uses; and the PBS race:
# an import that reuses chunks which are garbage when GC starts, with GC
# run in the middle of that import, produces a point that verifies.
source "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-nbd nbdkit

repo=$tmp/repo
bootback repo init --chunk-size 64K "$repo"
head -c $((4 * 1024 * 1024)) /dev/urandom > "$tmp/a.raw"
head -c $((4 * 1024 * 1024)) /dev/urandom > "$tmp/b.raw"
bootback import "$tmp/a.raw" --vm vm1 2>"$tmp/quiet"
[ ! -s "$tmp/quiet" ] || fail "progress or noise on stderr when not a terminal"
bootback import "$tmp/b.raw" --vm vm1
nchunks () { find "$repo/chunks" -type f -not -name '*.tmp-*' | wc -l; }
[ "$(nchunks)" -eq 128 ] || fail "expected 128 chunks, have $(nchunks)"

# nothing to collect yet
bootback gc --json > "$tmp/j"
grep -q '"removed": 0' "$tmp/j" || { cat "$tmp/j"; fail "gc removed chunks that points use"; }
# prune the older point: its 64 chunks become garbage, but are too recent
# for gc to remove (they could belong to a running writer).  "Recent" is
# less than gc.c's MARGIN (2 s) before the gc starts, which the imports,
# prune and gc above may well take (under valgrind they take half a
# minute): the chunks are made recent, their mtime a minute ahead.
bootback prune vm1 --keep-last 1 | tee "$tmp/p"
grep -q "removed 1 restore points" "$tmp/p" || fail "prune did not remove the older point"
find "$repo/chunks" -type f -exec touch -d '1 minute' {} +
bootback gc --json > "$tmp/j"; cat "$tmp/j"
grep -q '"removed": 0' "$tmp/j" || fail "gc removed recent chunks"
grep -q '"kept_recent": 64' "$tmp/j" || fail "gc did not keep the 64 recent unreferenced chunks"
# age them, as garbage from yesterday's prune would be
find "$repo/chunks" -type f -exec touch -d '1 hour ago' {} +
bootback gc --dry-run --json > "$tmp/j"
grep -q '"removed": 64' "$tmp/j" || { cat "$tmp/j"; fail "gc --dry-run would not remove the 64 old unreferenced chunks"; }
[ "$(nchunks)" -eq 128 ] || fail "dry run removed chunks"

# The race.  a.raw's chunks are garbage (old mtime, no point uses them).
# Import a.raw again through a slow NBD source (nbdkit delay filter, the
# slower as the tools are: $slow) and run gc while the import is in the
# middle.
nbdkit -U "$tmp/slow.sock" -P "$tmp/nbdkit.pid" -f --filter=delay \
    file "$tmp/a.raw" rdelay=$(( 40 * slow ))ms &
cleanup_fn 'kill $(cat "$tmp/nbdkit.pid") 2>/dev/null'
for i in $(seq 100); do [ -S "$tmp/slow.sock" ] && break; sleep 0.1; done
BOOTBACK_PROGRESS=1 bootback import "nbd+unix:///?socket=$tmp/slow.sock" --vm vm2 --threads 1 > "$tmp/imp" 2>"$tmp/progress" &
imp=$!
# gc once a quarter to three quarters of the 64 chunks are read
for (( i = 0; i < 600 * slow; i++ )); do
    grep -Eq "import vda +[1-3]\.[0-9] MiB / 4\.0 MiB" "$tmp/progress" && break
    kill -0 "$imp" 2>/dev/null || break
    sleep 0.1
done
grep -Eq "import vda +[1-3]\.[0-9] MiB / 4\.0 MiB" "$tmp/progress" ||
    { cat -v "$tmp/progress"; fail "the import did not get to 1 MiB"; }
bootback gc --json > "$tmp/j"; cat "$tmp/j"
wait $imp || { cat "$tmp/imp"; fail "import failed"; }
cat "$tmp/imp"
# the progress line (forced on; it shows on terminals by default): bytes,
# rate and ETA
grep -q "import vda .* MiB / 4.0 MiB .*/s  ETA 0:0" "$tmp/progress" || { cat -v "$tmp/progress"; fail "no progress line"; }
removed=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["removed"])' "$tmp/j")
# gc did remove garbage the import had not reached yet (so it really ran
# in the middle), but never one the import had already counted on
[ "$removed" -gt 0 ] && [ "$removed" -lt 64 ] || fail "gc removed $removed chunks; expected some but not all of a.raw's"
bootback repo verify
bootback restore vm2 --to "$tmp/out.raw"
cmp "$tmp/a.raw" "$tmp/out.raw"
[ "$(nchunks)" -eq 128 ] || fail "expected 128 chunks after the import, have $(nchunks)"

# only one gc at a time
echo "host=$(hostname) pid=$$" > "$repo/locks/gc"
expect_fail bootback gc 2>"$tmp/err"
grep -q "another garbage collection is running" "$tmp/err" || { cat "$tmp/err"; fail "no clear error for a second gc"; }
rm "$repo/locks/gc"
# prune of a protected point: kept
bootback point protect "vm2@latest"
bootback import "$tmp/b.raw" --vm vm2
bootback prune vm2 --keep-last 1 | tee "$tmp/p"
grep -q "protected" "$tmp/p" || fail "prune does not say the point is protected"
[ "$(bootback points vm2 --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" -eq 2 ] ||
    fail "prune removed a protected point"
bootback repo verify

# A GC killed between its rename of a chunk to a trash name and the rename
# back leaves a chunk a point uses under that name (aged, as after a long
# outage).  The next GC puts it back instead of deleting it as a temp
# file; a trash copy of a chunk that exists again is dropped.
chunks=($(find "$repo/chunks" -type f -not -name '*.tmp-*'))
c=${chunks[0]} d=${chunks[1]}
mv "$c" "$c.gc.tmp-999999-1"
cp "$d" "$d.gc.tmp-999999-2"
touch -d '1 hour ago' "$c.gc.tmp-999999-1" "$d.gc.tmp-999999-2"
bootback gc --json > "$tmp/j"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["trash_restored"] == 1, d' "$tmp/j"
[ -f "$c" ] || fail "gc deleted a used chunk left under a trash name"
[ ! -e "$c.gc.tmp-999999-1" ] && [ ! -e "$d.gc.tmp-999999-2" ] || fail "trash names left"
bootback repo verify

# Symbolic links planted in a repository on a share lead nowhere.  gc
# removed every file of an "incomplete point" reached through a link
# (points/VM -> a host directory: each subdirectory's files; a point
# directory -> a host directory: its files), and a writer created chunks
# in the directory a chunks/XXXX link named.
victim=$tmp/victim
mkdir -p "$victim/sub" "$victim/chunks"
echo keep > "$victim/sub/file" && echo keep > "$victim/file"
touch -d '1 hour ago' "$victim/sub" "$victim"
ln -s "$victim" "$repo/points/evil"
bootback gc >/dev/null 2>"$tmp/err" || cat "$tmp/err"
[ -f "$victim/sub/file" ] || fail "gc removed files through a linked VM directory"
rm "$repo/points/evil"
ln -s "$victim/sub" "$repo/points/vm2/20200101T000000Z"
bootback gc >/dev/null 2>"$tmp/err" || cat "$tmp/err"
[ -f "$victim/sub/file" ] || fail "gc removed files through a linked point directory"
rm "$repo/points/vm2/20200101T000000Z"
mv "$repo/chunks" "$tmp/saved-chunks" && mkdir -m 0700 "$repo/chunks"
for d in "$tmp/saved-chunks"/*; do
    mkdir "$victim/chunks/${d##*/}" && ln -s "$victim/chunks/${d##*/}" "$repo/chunks/"
done
bootback import "$tmp/a.raw" --vm vm4 2>"$tmp/err" || cat "$tmp/err"
[ -z "$(find "$victim/chunks" -type f)" ] ||
    fail "a writer created chunks through linked chunk directories"
rm -r "$repo/chunks" && mv "$tmp/saved-chunks" "$repo/chunks"
[ -f "$victim/sub/file" ] && [ -f "$victim/file" ] || fail "files outside the repository are gone"
bootback gc >/dev/null
bootback repo verify
echo "gc ok"
