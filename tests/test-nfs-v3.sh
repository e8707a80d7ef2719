#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A repository on NFSv3 (nfs://...?version=3&nfsport=N&mountport=M).
# nfs-ganesha serves NFSv3 only with rpcbind, which listens on every
# address: so this test runs in its own network namespace (loopback, and a
# veth pair with a link-local address because getaddrinfo wants one) and
# mount namespace (a private /run for rpcbind's socket).  Init below the
# export (ganesha mounts no subdirectory over v3), import, restore,
# verify, files with the server's times and mode 600, gc, the plugin,
# repo init tightening a repository made 0755/0644.
source "$top_srcdir/tests/functions.sh"
if [ -z "${BB_NFS_NETNS:-}" ]; then
    [ "$(id -u)" -eq 0 ] || skip "needs root (network and mount namespaces)"
    requires unshare ip rpcbind ganesha.nfsd
    unshare -n -m --propagation private true 2>/dev/null ||
        skip "cannot make network and mount namespaces here"
    BB_NFS_NETNS=1 unshare -n -m --propagation private bash "$0"
    exit $?
fi
source "$top_srcdir/nbd-plugin/plugin-functions.sh"
source "$top_srcdir/tests/lib/nfs.sh"
requires qemu-img qemu-nbd python3

# inside the namespaces: nothing here is reachable from outside
ip link set lo up
ip link add bbnfs0 type veth peer name bbnfs1
ip addr add 169.254.77.1/32 dev bbnfs0
ip link set bbnfs0 up
ip link set bbnfs1 up
mount -t tmpfs -o mode=0755 tmpfs /run
rpcbind -f &
rpcbind_pid=$!
cleanup_fn "kill $rpcbind_pid 2>/dev/null; wait $rpcbind_pid 2>/dev/null"
for i in $(seq 50); do [ -S /run/rpcbind.sock ] && break; sleep 0.1; done
NFS_VERSION=3
nfs_start

url=$(nfs_url sub/repo)
bootback repo init --chunk-size 64K "$url"
[ -f "$NFS_EXPORT/sub/repo/bootback-repo.json" ] || fail "init did not write below the export"
make_disk "$tmp/a.raw" $(( 3 * 1024 * 1024 + 777 ))
make_disk "$tmp/b.raw" $(( 1024 * 1024 ))
bootback import "$tmp/a.raw" --vm v3
bootback import "$tmp/b.raw" --vm tmp3
bootback restore v3 --to "$tmp/out.raw"
cmp "$tmp/a.raw" "$tmp/out.raw"
bootback repo verify
bootback repo check
now=$(date +%s)
find "$NFS_EXPORT/sub/repo" -type f -not -path '*/locks/*' | while read -r f; do
    [ "$(stat -c %a "$f")" = 600 ] || fail "$f has mode $(stat -c %a "$f")"
    m=$(stat -c %Y "$f")
    [ $(( now - m )) -lt 600 ] && [ $(( m - now )) -lt 600 ] || fail "$f has mtime $m, now $now"
done
# touch sets the server's time (SET_TO_SERVER_TIME): reused chunks are
# young again; b.raw's, pruned, stay old and gc removes them
find "$NFS_EXPORT/sub/repo/chunks" -type f -exec touch -d '1 hour ago' {} +
bootback import "$tmp/a.raw" --vm v3
young=$(find "$NFS_EXPORT/sub/repo/chunks" -type f -newermt '-10 minutes' | wc -l)
[ "$young" -gt 0 ] || fail "reused chunks were not touched"
make_disk "$tmp/c.raw" $(( 1024 * 1024 ))
bootback import "$tmp/c.raw" --vm tmp3
bootback prune tmp3 --keep-last 1 | grep -q "removed 1 restore points"
bootback gc --json > "$tmp/j"; cat "$tmp/j"
python3 - "$tmp/j" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["removed"] > 0 and j["referenced"] == j["chunks"] - j["removed"], j
PY
bootback repo verify
bb_nbdkit -U - "$plugin" repo="$url" point=v3@latest \
    --run "nbdcopy \"\$uri\" $tmp/out2.raw"
cmp "$tmp/a.raw" "$tmp/out2.raw"
# made 0755/0644 by an older bootback: repo init tightens it over NFSv3
find "$NFS_EXPORT/sub/repo" -type d -exec chmod 0755 {} +
find "$NFS_EXPORT/sub/repo" -type f -exec chmod 0644 {} +
bootback repo init "$url" | tee "$tmp/init"
grep -q "tightened permissions of $url (was 0755, now 0700)" "$tmp/init" ||
    fail "init did not say it tightened the repository"
bad=$(find "$NFS_EXPORT/sub" -perm /077 -printf '%m %p\n')
[ -z "$bad" ] || fail "readable by others on the server:"$'\n'"$bad"
bootback repo verify
echo "nfs v3 ok"
