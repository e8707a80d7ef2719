#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Durability of an instant-recovery session when its servers die.  While
# the guest re-reads the backed-up data file (page cache dropped, so every
# read reaches nbdkit) and writes a flushed counter: kill -9 the bootback
# nbdkit (the supervisor restarts it on the same socket; the front nbdkit
# reconnects and retries); kill -9 the supervisor itself, then `bootback
# sessions` re-attaches a new one, which adopts the running nbdkits and
# restarts the next one killed.  The guest sees no I/O error (its reads all
# check out, dmesg and the console are clean), and after a hard power-off
# the data it wrote and flushed before the kills is intact.  Also: the
# options --name, --new-identity and --network bridge:BR, and stop
# --discard leaving nothing behind.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/instant.sh"
instant_requires curl
instant_setup
# The saved definition names a bridge this host does not have.
instant_import_tiny br-prod-gone 52:54:00:00:00:01

expect_fail bootback instant tiny 2>"$tmp/err"
grep -q "no bridge br-prod-gone" "$tmp/err" || { cat "$tmp/err"; fail "missing bridge not named"; }
bootback instant tiny --name tiny2 --new-identity --network "bridge:$NETNS_BRIDGE" \
    --agent-timeout 120 --json > "$tmp/s.json"
dir=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["dir"])' < "$tmp/s.json")
virsh dumpxml tiny2 > "$tmp/live.xml"
grep -q "bridge='$NETNS_BRIDGE'" "$tmp/live.xml"
! grep -q "52:54:00:00:00:01" "$tmp/live.xml" || fail "--new-identity kept the MAC"
url=http://10.77.0.10/health
netns_wait_http "$url" 120 >/dev/null || fail "no HTTP from the restored VM"

"$qga" --domain tiny2 exec /bin/sh -c 'echo flushed-before-kill > /root/flushed.txt; sync'
# 40 rounds, ~0.5 s each: drop caches, check data.bin, write + flush a counter.
"$qga" --domain tiny2 exec /bin/sh -c \
    '(want=$(cut -d" " -f1 /srv/bootback/data.sha256); n=0
      while [ $n -lt 40 ]; do
        echo 3 > /proc/sys/vm/drop_caches
        got=$(sha256sum /srv/bootback/data.bin | cut -d" " -f1)
        if [ "$got" = "$want" ]; then echo ok; else echo "BAD $n $got"; fi >> /root/loop.log
        echo $n > /root/counter; sync; n=$((n + 1)); sleep 0.3
      done; echo done >> /root/loop.log) </dev/null >/dev/null 2>&1 &'

pid_of () { cat "$dir/$1.pid" 2>/dev/null || echo 0; }
wait_new_backend () {      # old pid: wait until another one serves
    local i
    for (( i = 0; i < 100; i++ )); do
        if [ "$(pid_of vda.backend)" != "$1" ] && [ -S "$dir/vda.backend.sock" ] &&
           kill -0 "$(pid_of vda.backend)" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    fail "the supervisor did not restart nbdkit (was $1)"
}

# 1. kill -9 the bootback nbdkit.
sleep 2
b1=$(pid_of vda.backend)
kill -9 "$b1"
wait_new_backend "$b1"
b2=$(pid_of vda.backend)
echo "backend nbdkit $b1 killed, $b2 serves"

# 2. kill -9 the supervisor; re-attach adopts the running nbdkits.
sleep 2
s1=$(pid_of supervisor)
front=$(pid_of vda.front)
kill -9 "$s1"
wait_dead "$s1" || fail "the supervisor $s1 outlived kill -9"
bootback sessions 2>"$tmp/err" | tee "$tmp/list"
grep -q "re-attached 1 session" "$tmp/err" || { cat "$tmp/err"; fail "no re-attach"; }
grep -q "running .* supervised" "$tmp/list"
s2=$(pid_of supervisor)
[ "$s2" != "$s1" ] && kill -0 "$s2" || fail "no new supervisor"
[ "$(pid_of vda.backend)" = "$b2" ] || fail "the new supervisor did not adopt nbdkit $b2"
[ "$(pid_of vda.front)" = "$front" ] || fail "the new supervisor did not adopt the front"
grep -q "adopted nbdkit $b2" "$dir/supervisor.log"

# 3. ... and restarts the next nbdkit that dies.
sleep 1
kill -9 "$b2"
wait_new_backend "$b2"
echo "backend nbdkit $b2 killed, $(pid_of vda.backend) serves (new supervisor $s2)"

for (( i = 0; i < 150; i++ )); do
    grep -q done <<< "$("$qga" --domain tiny2 cat /root/loop.log 2>/dev/null)" && break
    sleep 0.2
done
"$qga" --domain tiny2 cat /root/loop.log > "$tmp/loop.log"
grep -q done "$tmp/loop.log" || fail "guest loop did not finish"
! grep BAD "$tmp/loop.log" || fail "the guest read wrong data"
[ "$(grep -c '^ok$' "$tmp/loop.log")" -eq 40 ] || fail "guest reads failed: $(cat "$tmp/loop.log")"
"$qga" --domain tiny2 exec /bin/dmesg > "$tmp/dmesg"
if grep -iE "I/O error|blk_update_request|Buffer I/O|EXT4-fs (error|warning)|remount" "$tmp/dmesg" "$dir/console.log"; then
    fail "the guest saw I/O errors"
fi
grep -q "^HTTP 200" <<< "$(netns_http "$url")" || fail "VM not serving after the kills"

# Hard power-off; the session still serves the backup: boot again.
virsh -q destroy tiny2
grep -q "running .* VM shut off, supervised" <<< "$(bootback sessions)" || fail "sessions: VM state"
virsh -q start tiny2
netns_wait_http "$url" 120 >/dev/null || fail "no HTTP after the power cycle"
[ "$("$qga" --timeout 60 --domain tiny2 cat /root/flushed.txt)" = flushed-before-kill ] ||
    fail "data flushed before the kill is lost"
[ "$("$qga" --domain tiny2 cat /root/counter)" = 39 ] || fail "flushed counter lost"

# stop --discard leaves nothing.
overlay=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["disks"][0]["overlay"])' < "$tmp/s.json")
bootback instant stop tiny2 --discard
[ ! -e "$overlay" ] || fail "overlay left"
[ ! -e "$dir" ] || fail "session directory left"
! pgrep -f -- "^nbdkit .*$BOOTBACK_HOME/sessions/|--home $BOOTBACK_HOME supervise" || fail "processes left"
[ -z "$(virsh -q list --all --name)" ] || fail "domain left: $(virsh -q list --all --name)"
grep -q '"state": "stopped"' <<< "$(bootback sessions --json)"
echo "nbdkit kill ok"
