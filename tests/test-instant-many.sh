#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Mass instant recovery: `bootback instant t1 t2 t3` boots three restore
# points through one pool (one backend nbdkit, one chunk cache).
#   - every VM runs and its guest agent answers; the summary and --json
#     give the times;
#   - exactly one bootback nbdkit serves all three (the pool's), each
#     session's front reads it by export name, no session has a backend;
#   - each guest reads its backed-up data correctly, also after the
#     pool's backend is killed -9 (restarted by the pool's supervisor; the
#     fronts retry, the guests see no error);
#   - admission control: a VM over --memory-budget is not started, says
#     why, and leaves nothing (exit 1);
#   - a killed pool supervisor is replaced by `bootback sessions`, and
#     the new one adopts the backend still serving;
#   - the pool ends when the last session using it is stopped.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/instant.sh"
instant_requires
instant_setup
export BOOTBACK_TEST_POOL_GRACE=0

for i in 1 2 3 4; do
    tiny_copy tiny "$tmp/t$i.img"
    "$top_srcdir/images/domain-xml" NAME="t$i" DISK_PATH="$tmp/t$i.img" \
        NET_SOURCE="$NETNS_BRIDGE" MAC="52:54:00:00:01:0$i" > "$tmp/t$i.xml"
    bootback import "$tmp/t$i.img" --vm "t$i" --domain-xml "$tmp/t$i.xml" >/dev/null
    rm "$tmp/t$i.img"
done

bootback instant t1 t2 t3 --network none --agent-timeout 300 --cache 64M \
    --json >"$tmp/many.json" 2>"$tmp/many.err" || { cat "$tmp/many.err"; fail "instant t1 t2 t3"; }
cat "$tmp/many.err" "$tmp/many.json"
python3 - "$tmp/many.json" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
assert [x["point"] for x in v] == ["t1", "t2", "t3"], v
for x in v:
    assert x["session"] and x["error"] is None, x
    assert 0 < x["seconds_to_running"] <= x["seconds_to_heartbeat"], x
PY
for i in 1 2 3; do
    grep -q "^bootback: t$i: guest agent heartbeat after" "$tmp/many.err" || fail "no progress line for t$i"
done

# One backend: the pool's.
backends=$(pgrep -f -- "^nbdkit .*-U $BOOTBACK_HOME/.*bootback-plugin.so repo=" || true)
[ "$(wc -w <<< "$backends")" = 1 ] || fail "not one backend: $backends"
cmd=$(tr '\0' ' ' <"/proc/$backends/cmdline")
grep -q -- "-U $BOOTBACK_HOME/pools/[0-9a-f]*/backend.sock .*repo=$tmp/repo cache=67108864" <<< "$cmd" ||
    fail "the backend is not the pool's: $cmd"
pool=$(ls -d "$BOOTBACK_HOME"/pools/*)
for i in 1 2 3; do
    d=$(python3 -c 'import json,sys; print([x for x in json.load(sys.stdin) if x["name"]=="t'$i'"][0]["dir"])' \
        < <(bootback sessions --json))
    [ -e "$d/vda.backend.sock" ] && fail "session t$i has a backend of its own"
    tr '\0' ' ' <"/proc/$(cat "$d/vda.front.pid")/cmdline" |
        grep -q "socket=$pool/backend.sock export=t$i@[0-9TZ]*/vda" || fail "t$i's front does not read the pool"
done

check_data () {   # every guest re-reads its data from the backup
    local i got want
    for i in 1 2 3; do
        want=$("$qga" --domain "t$i" exec /bin/cat /srv/bootback/data.sha256 | cut -d' ' -f1)
        got=$("$qga" --domain "t$i" --timeout 120 exec /bin/sh -c \
            'echo 3 > /proc/sys/vm/drop_caches; sha256sum /srv/bootback/data.bin' | cut -d' ' -f1)
        [ -n "$want" ] && [ "$got" = "$want" ] || fail "t$i: data.bin reads $got, not $want ($1)"
    done
}
check_data "first read"

# kill -9 the pool's backend: restarted, the guests read on.
b1=$(cat "$pool/pool.backend.pid")
kill -9 "$b1"
for (( n = 0; n < 100; n++ )); do
    b2=$(cat "$pool/pool.backend.pid" 2>/dev/null || echo 0)
    [ "$b2" != "$b1" ] && [ -S "$pool/backend.sock" ] && kill -0 "$b2" 2>/dev/null && break
    sleep 0.1
done
[ "$b2" != "$b1" ] || fail "the pool did not restart its backend"
check_data "after the backend was killed"
for i in 1 2 3; do
    "$qga" --domain "t$i" exec /bin/sh -c 'dmesg | grep -i "i/o error"' && fail "t$i saw an I/O error"
done

# kill -9 the pool's supervisor: `bootback sessions` starts a new one,
# which adopts the backend still serving.
p1=$(cat "$pool/supervisor.pid")
kill -9 "$p1"
wait_dead "$p1" || fail "the pool's supervisor $p1 outlived kill -9"
bootback sessions >/dev/null
p2=$(cat "$pool/supervisor.pid")
[ "$p2" != "$p1" ] && kill -0 "$p2" || fail "no new pool supervisor"
grep -q "pool backend: adopted nbdkit $b2" "$pool/supervisor.log" || fail "the backend was not adopted"
[ "$(cat "$pool/pool.backend.pid")" = "$b2" ] || fail "the backend changed"
check_data "after the pool's supervisor was replaced"

# Admission control: t4 does not fit a 1 MiB budget.
expect_rc 1 bootback instant t4 t4 --network none --memory-budget 1 --agent-timeout 0
grep -q "t4: not started: .*memory budget: the VMs started use 0 MiB of 1 MiB, this one needs [0-9]* MiB (--memory-budget)" \
    "$tmp/err" || { cat "$tmp/err"; fail "memory budget not said"; }
grep -qx t4 <<< "$(virsh -q list --all --name)" && fail "t4 was defined"
bootback sessions --json | python3 -c '
import json, sys
assert not [s for s in json.load(sys.stdin) if s["vm"] == "t4" and s["state"] != "failed"]'

# The pool ends with its last session.
for i in 1 2 3; do bootback instant stop "t$i" --discard >/dev/null; done
for (( n = 0; n < 300; n++ )); do
    [ -e "$pool/supervisor.pid" ] || kill -0 "$b2" 2>/dev/null || break
    sleep 0.1
done
[ -e "$pool/supervisor.pid" ] && fail "the pool's supervisor is still up: $(tail -3 "$pool/supervisor.log")"
kill -0 "$b2" 2>/dev/null && fail "the pool's backend $b2 still runs"
grep -q "no session uses it: stopping" "$pool/supervisor.log" || fail "pool log: $(cat "$pool/supervisor.log")"
true
