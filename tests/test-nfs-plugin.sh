#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The nbdkit plugin serving a repository on NFS (repo=nfs://...): exact
# copies, stable reads, the export list.  Then the server goes away under a
# running nbdkit: reads fail with EIO in bounded time (server stopped: at
# once; server hung: after BOOTBACK_NFS_TIMEOUT), and once the server is
# back the same nbdkit serves correct data again, without a restart.  A
# short NFSv4 lease (5 s) checks that an idle nbdkit, whose client state
# the server has expired, reads on.  Last, a file open when the server
# goes away costs no memory (io-nfs.c 7.): always checked under valgrind,
# one open file is enough.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/nbd-plugin/plugin-functions.sh"
source "$top_srcdir/tests/lib/nfs.sh"
requires qemu-img qemu-nbd python3 valgrind
NFS_LEASE=5
nfs_start
export BOOTBACK_NFS_TIMEOUT=3

url=$(nfs_url repo)
bootback repo init --chunk-size 256K "$url"
make_disk "$tmp/a.raw" $(( 24 * 1024 * 1024 + 4097 ))
head -c $(( 8 * 1024 * 1024 )) /dev/urandom |
    dd of="$tmp/a.raw" bs=1M seek=8 conv=notrunc status=none
bootback import "$tmp/a.raw" --vm web
bootback import "$tmp/a.raw" "$tmp/a.raw" --disk vda --disk vdb --vm db

# copies, both through the cache and straight from the server
for opts in "" "cache=0 readahead=0"; do
    bb_nbdkit -U - "$plugin" repo="$url" point=web@latest $opts \
        --run "nbdcopy \"\$uri\" $tmp/out.raw"
    cmp "$tmp/a.raw" "$tmp/out.raw"
    rm "$tmp/out.raw"
done
bb_nbdkit -U - "$plugin" repo="$url" point=db disk=vdb \
    --run "qemu-img compare -f raw -F raw $tmp/a.raw \"\$uri\""
bb_nbdkit -U - --filter=checkwrite "$plugin" repo="$url" point=web \
    --run 'nbdcopy "$uri" "$uri"'
bb_nbdkit -U - "$plugin" repo="$url" --run 'nbdinfo --list "$uri"' > "$tmp/list"
grep -q "export=\"web@" "$tmp/list" || { cat "$tmp/list"; fail "web not listed"; }
grep -q "/vdb\"" "$tmp/list" || { cat "$tmp/list"; fail "db's vdb not listed"; }

# A long-running nbdkit with no cache: every read goes to the server.
bb_nbdkit_start "$plugin" repo="$url" point=web@latest cache=0 readahead=0
copy () { nbdcopy --connections=1 "$uri" "$tmp/out.raw"; }
# a copy that fails has one request in flight: nbdkit 1.32 may abort
# (raw_send_socket: sock >= 0) when a client hangs up with replies pending
copy1 () { nbdcopy --connections=1 --requests=1 "$uri" "$tmp/out.raw"; }
copy && cmp "$tmp/a.raw" "$tmp/out.raw"

# 1. server stopped in the middle of a slow copy
slow_copy () {
    nbdkit -U - --filter=delay nbd socket="$sock" rdelay=25ms \
        --run "nbdcopy --connections=1 --requests=1 \"\$uri\" $tmp/out.raw"
}
slow_copy > "$tmp/copy.log" 2>&1 &
cp=$!
sleep 0.6
nfs_stop
t0=$(date +%s.%N)
if wait $cp; then fail "the copy succeeded with the server stopped"; fi
t1=$(date +%s.%N)
cat "$tmp/copy.log"
grep -qi "input/output error" "$tmp/copy.log" || fail "stopped server: not EIO"
echo "server stopped: the copy failed $(echo "$t1 - $t0" | bc) s later"
[ "$(echo "$t1 - $t0 < 10" | bc)" -eq 1 ] || fail "stopped server: the copy took too long to fail"
# reads keep failing (quickly) while it is away
t0=$(date +%s)
if copy1 2> "$tmp/err"; then fail "read succeeded with the server stopped"; fi
[ $(( $(date +%s) - t0 )) -lt 10 ] || fail "reads with no server took more than 10 s"
grep -q "nfs://127.0.0.1$NFS_EXPORT/repo" "$tmp/nbdkit.log" ||
    fail "nbdkit's errors do not name the NFS URL"

# 2. server back (same port): the same nbdkit reads correct data again
nfs_start
kill -0 "$nbdkit_pid" || fail "nbdkit died"
copy
cmp "$tmp/a.raw" "$tmp/out.raw"

# 3. server hung (SIGSTOP): reads fail after the timeout, then recover
nfs_pause
t0=$(date +%s.%N)
if copy1 2> "$tmp/err"; then fail "read succeeded with the server hung"; fi
t1=$(date +%s.%N)
nfs_resume
cat "$tmp/err"
echo "server hung: the copy failed after $(echo "$t1 - $t0" | bc) s"
[ "$(echo "$t1 - $t0 < 20" | bc)" -eq 1 ] || fail "hung server: reads did not time out"
copy
cmp "$tmp/a.raw" "$tmp/out.raw"

# 4. idle for longer than the lease: the server forgot our client id
sleep 8
copy
cmp "$tmp/a.raw" "$tmp/out.raw"
kill -0 "$nbdkit_pid" || fail "nbdkit died"
bb_nbdkit_stop

# 5. a file open on a connection that is dropped: its libnfs handle is
# freed (a long-running nbdkit lost one per chunk read in flight).
chunk=$(cd "$NFS_EXPORT/repo" && find chunks -type f | head -1)
mkfifo "$tmp/hold.in"
valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    "--suppressions=$top_srcdir/tests/lib/libnfs.supp" \
    "$helper" hold "$url" "$chunk" < "$tmp/hold.in" > "$tmp/hold.out" 2>&1 &
hold_pid=$!
exec 7> "$tmp/hold.in"
for (( i = 0; i < 600 * slow; i++ )); do
    grep -q '^open' "$tmp/hold.out" && break
    kill -0 "$hold_pid" 2>/dev/null || break
    sleep 0.1
done
grep -q '^open' "$tmp/hold.out" || { cat "$tmp/hold.out"; fail "helper-repo hold did not open $chunk"; }
nfs_stop
echo go >&7
exec 7>&-
rc=0; wait "$hold_pid" || rc=$?
cat "$tmp/hold.out"
grep -q "read failed: .*nfs://" "$tmp/hold.out" || fail "the read did not fail with the server gone"
[ "$rc" -eq 0 ] || fail "a file open when the connection dropped leaked (valgrind exit $rc)"
echo "nfs plugin ok"
