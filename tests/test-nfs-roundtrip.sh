#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A repository on NFS (nfs://127.0.0.1/..., libnfs, no kernel mount)
# against a private nfs-ganesha: init (nested, new directories), import,
# points, restore byte-identical (raw and qcow2), modes 0700/0600 and
# init tightening an older repository, verify, check, reindex,
# prune, gc; the same repository copied between local disk and NFS both
# ways lists the same points and verifies; errors from the server name the
# URL and path and keep the server's errno.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/nfs.sh"
requires qemu-img qemu-nbd python3
nfs_start

url=$(nfs_url site/a/repo)
bootback repo init --chunk-size 64K "$url"
[ -f "$NFS_EXPORT/site/a/repo/bootback-repo.json" ] || fail "init did not write on the server"
# a repository is a directory: the same files as a local one
for d in chunks points locks locks/writers; do
    [ -d "$NFS_EXPORT/site/a/repo/$d" ] || fail "no $d/ on the server"
done
stat -c '%a %n' "$NFS_EXPORT/site/a/repo/bootback-repo.json" | grep -q '^600 ' ||
    fail "bootback-repo.json is not mode 600"

make_disk "$tmp/a.raw" $(( 3 * 1024 * 1024 + 777 ))
make_disk "$tmp/b.raw" $(( 2 * 1024 * 1024 ))
make_disk "$tmp/c.raw" $(( 1024 * 1024 ))
qemu-img convert -O qcow2 "$tmp/b.raw" "$tmp/b.qcow2"
bootback import "$tmp/c.raw" --vm web
bootback import "$tmp/a.raw" "$tmp/b.qcow2" --disk vda --disk vdb --vm db
bootback points
bootback point show db@latest
n=$(bootback points --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n" -eq 2 ] || fail "expected 2 points, have $n"

bootback restore web --to "$tmp/web.raw"
cmp "$tmp/c.raw" "$tmp/web.raw"
bootback restore db --disk vdb --to "$tmp/db.qcow2" --format qcow2
qemu-img compare "$tmp/b.raw" "$tmp/db.qcow2"
bootback repo verify
bootback repo check

# the repository is its owner's alone, as on local disk: 0700 and 0600
bad=$(find "$NFS_EXPORT/site" -perm /077 -printf '%m %p\n')
[ -z "$bad" ] || fail "readable by others on the server:"$'\n'"$bad"
# one made 0755/0644 by an older bootback: repo init tightens it in place
find "$NFS_EXPORT/site/a/repo" -type d -exec chmod 0755 {} +
find "$NFS_EXPORT/site/a/repo" -type f -exec chmod 0644 {} +
bootback repo init "$url" | tee "$tmp/init"
grep -q "^existing repository $url" "$tmp/init" || fail "init did not find the repository"
grep -q "tightened permissions of $url (was 0755, now 0700)" "$tmp/init" ||
    fail "init did not say it tightened the repository"
bad=$(find "$NFS_EXPORT/site" -perm /077 -printf '%m %p\n')
[ -z "$bad" ] || fail "init left these readable by others:"$'\n'"$bad"

# chunk files are named, sized and timed as on local disk (server clock)
now=$(date +%s)
find "$NFS_EXPORT/site/a/repo/chunks" -type f | while read -r f; do
    m=$(stat -c %Y "$f")
    [ $(( now - m )) -lt 600 ] && [ $(( m - now )) -lt 600 ] ||
        fail "chunk $f has mtime $m, now is $now (not the server's clock)"
done

# reindex rebuilds the catalog from the manifests on the server
rm -f "$BOOTBACK_HOME"/catalog.db*
bootback repo add "$url"
bootback repo reindex
[ "$(latest_id web)" = "$(bootback points web --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')" ]
bootback repo check

# prune + gc: the pruned point's own chunks (c.raw's) go once they are old
bootback import "$tmp/b.raw" --vm web
bootback prune web --keep-last 1 | tee "$tmp/p"
grep -q "removed 1 restore points" "$tmp/p"
bootback gc --dry-run --json > "$tmp/j"; cat "$tmp/j"
find "$NFS_EXPORT/site/a/repo/chunks" -type f -exec touch -d '1 hour ago' {} +
bootback gc --json > "$tmp/j"; cat "$tmp/j"
python3 - "$tmp/j" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["removed"] > 0 and j["referenced"] == j["chunks"] - j["removed"], j
PY
bootback repo verify
bootback restore web --to "$tmp/web2.raw"
cmp "$tmp/b.raw" "$tmp/web2.raw"

# Copies.  NFS -> local: the directory as the server has it.
export BOOTBACK_HOME=$tmp/home2
mkdir -p "$BOOTBACK_HOME"
cp -a "$NFS_EXPORT/site/a/repo" "$tmp/local-copy"
bootback repo add "$tmp/local-copy"
bootback points --json | python3 -c 'import json,sys; print(sorted(p["vm"]+"@"+p["id"] for p in json.load(sys.stdin)))' > "$tmp/pts.local"
bootback repo verify
# local -> NFS: a repository written locally, copied to the export
export BOOTBACK_HOME=$tmp/home3
mkdir -p "$BOOTBACK_HOME"
bootback repo init --chunk-size 128K "$tmp/made-local"
bootback import "$tmp/a.raw" "$tmp/b.raw" --disk vda --disk vdb --vm local1
cp -a "$tmp/made-local" "$NFS_EXPORT/made-local"
export BOOTBACK_HOME=$tmp/home4
mkdir -p "$BOOTBACK_HOME"
bootback repo add "$(nfs_url made-local)"
bootback points
bootback repo verify
bootback restore local1 --disk vdb --to "$tmp/l1.raw"
cmp "$tmp/b.raw" "$tmp/l1.raw"
# and the NFS repository, listed over NFS, is the copy's twin
export BOOTBACK_HOME=$tmp/home5
mkdir -p "$BOOTBACK_HOME"
bootback repo add "$url"
bootback points --json | python3 -c 'import json,sys; print(sorted(p["vm"]+"@"+p["id"] for p in json.load(sys.stdin)))' > "$tmp/pts.nfs"
cmp "$tmp/pts.local" "$tmp/pts.nfs" || fail "the local copy lists other points than the NFS original"
diff -r "$NFS_EXPORT/site/a/repo/points" "$tmp/local-copy/points"

# Errors name the URL and path and keep the server's errno.
expect_fail bootback points --repo "$(nfs_url nothere)" 2> "$tmp/err"
cat "$tmp/err"
grep -q "nfs://127.0.0.1$NFS_EXPORT/nothere" "$tmp/err" || fail "missing directory: URL not named"
grep -q "No such file or directory" "$tmp/err" || fail "missing directory: not ENOENT"
# another user (uid 65534) cannot even reach the repository (0700)
expect_fail bootback points --repo "$(nfs_url site/a/repo uid=65534\&gid=65534)" 2> "$tmp/err"
cat "$tmp/err"
grep -q "Permission denied" "$tmp/err" || fail "uid 65534 was not refused the repository"
# the server refuses a user who may not write
chmod 755 "$NFS_EXPORT/site" "$NFS_EXPORT/site/a" "$NFS_EXPORT/site/a/repo" \
    "$NFS_EXPORT/site/a/repo/points"
expect_fail bootback import "$tmp/b.raw" --vm denied \
    --repo "$(nfs_url site/a/repo uid=65534\&gid=65534)" 2> "$tmp/err"
cat "$tmp/err"
grep -q "nfs://127.0.0.1$NFS_EXPORT/site/a/repo/" "$tmp/err" || fail "EACCES: URL not named"
grep -q "Permission denied" "$tmp/err" || fail "EACCES: not reported as such"
[ ! -e "$NFS_EXPORT/site/a/repo/points/denied" ] || fail "a refused import left a point directory"
# nobody listens: fails at once, names the URL
t0=$(date +%s)
expect_fail bootback points --repo "nfs://127.0.0.1$NFS_EXPORT/site/a/repo?version=4&nfsport=9" 2> "$tmp/err"
cat "$tmp/err"
grep -q "nfs://127.0.0.1$NFS_EXPORT/site/a/repo" "$tmp/err" || fail "no server: URL not named"
[ $(( $(date +%s) - t0 )) -lt 10 ] || fail "no server: took more than 10 s"
echo "nfs roundtrip ok"
