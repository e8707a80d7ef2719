#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A guest cannot fill the host's disk through its overlay.  Its writes go
# to a qcow2 overlay in the overlay directory, which grows up to the disk's
# size whatever the host has free; instant_start only checks the minimum
# (BOOTBACK_OVERLAY_MIN_FREE) once.  The session's supervisor watches the
# directory's free space while the guest runs and pauses the domain once it
# falls under that minimum, so what the host keeps free is not given away;
# it resumes the domain once there is room again.
#  1. A tiny session with its overlays on a 128 MiB file system (minimum
#     64 MiB) that also holds a 40 MiB file; the guest writes 140 MiB to
#     its disk through its agent.
#  2. The domain is paused, the file system still has more than half of the
#     minimum free (writes of a tenth of a second overshoot it), and the
#     supervisor's log says why.
#  3. The 40 MiB file removed: the domain is resumed, its writes go on and
#     it is paused again, the minimum kept.
#  4. stop --discard gives the space back.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/instant.sh"
instant_requires
mkdir -p "$tmp/ovl"
mount -t tmpfs -o size=128M,mode=0700 tmpfs "$tmp/ovl"
cleanup_fn "umount -l '$tmp/ovl'"
instant_setup
instant_import_tiny
export BOOTBACK_OVERLAY_MIN_FREE=$(( 64 << 20 ))
head -c 40M /dev/zero >"$tmp/ovl/filler"

free_mib () { echo $(( $(stat -f -c '%a * %S' "$tmp/ovl") >> 20 )); }

# --- 1 ----------------------------------------------------------------------
bootback instant tiny --name fill --new-identity --network "bridge:$NETNS_BRIDGE" \
    --overlay-dir "$tmp/ovl" --agent-timeout 240 --json > "$tmp/fill.json" 2> "$tmp/fill.err" ||
    { cat "$tmp/fill.err"; fail "instant failed"; }
sid=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' < "$tmp/fill.json")
dir=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["dir"])' < "$tmp/fill.json")
echo "session $sid up, $(free_mib) MiB free for overlays"
"$qga" --domain fill --timeout 300 exec /bin/sh -c \
    'dd if=/dev/urandom of=/fill bs=1M count=140 2>&1; sync' > "$tmp/dd.out" 2>&1 &
dd_pid=$!
cleanup_fn "kill $dd_pid 2>/dev/null || true"

# --- 2 ----------------------------------------------------------------------
# wait_paused N: until the guest is paused (the Nth pause of the log) or
# QEMU paused it (the file system full), 5 minutes at most; then the
# minimum is kept.  (The agent's client may have ended: libvirt passes no
# agent command to a paused domain; the guest's dd goes on.)
wait_paused () {
    state=
    for (( i = 0; i < 600; i++ )); do
        state=$(virsh -q domstate fill --reason 2>/dev/null || true)
        case $state in
        *"I/O error"*) break ;;
        paused*) [ "$(grep -c "domain fill paused" "$dir/supervisor.log")" -ge "$1" ] && break ;;
        esac
        sleep 0.5
    done
    sleep 3                             # what was in flight lands
    left=$(free_mib)
    echo "guest: $state; $left MiB left free on the overlays' file system"
    [ "$left" -ge 32 ] ||
        { cat "$tmp/dd.out" "$dir/supervisor.log"; fail "the guest's writes left $left MiB free (minimum 64 MiB)"; }
    case $state in paused*) ;; *) fail "the domain is $state, not paused" ;; esac
}
wait_paused 1
grep -q "domain fill paused: .*under the minimum" "$dir/supervisor.log" ||
    { cat "$dir/supervisor.log"; fail "the supervisor's log does not say why the domain was paused"; }

# --- 3 ----------------------------------------------------------------------
rm "$tmp/ovl/filler"
wait_paused 2
grep -q "domain fill resumed: " "$dir/supervisor.log" ||
    { cat "$dir/supervisor.log"; fail "the domain was not resumed once there was room"; }
grep "domain fill" "$dir/supervisor.log" | sed 's/^/  /'

# --- 4 ----------------------------------------------------------------------
kill "$dd_pid" 2>/dev/null || true
bootback instant stop "$sid" --discard >/dev/null
[ "$(free_mib)" -ge 120 ] || fail "stop --discard did not give the space back"
echo "ok"
