#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Bad input to `bootback instant`: an unknown VM or point, a name clash with
# an existing domain, a UUID clash (--keep-identity while the original is
# defined), no space for the overlay, libvirtd unreachable, a network that
# does not exist, a domain libvirt refuses to start.  Each gives a clear
# error and leaves nothing behind: no nbdkit or supervisor, no socket, no
# overlay, no session directory, no domain.  Also: a point imported without
# domain XML boots with the default definition (supervisor run as
# $BOOTBACK_EXE), its directories 0700 and overlay 0600; stop/migrate of
# sessions in the wrong state are refused.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/instant.sh"
instant_requires
mkdir -p "$tmp/full"
mount -t tmpfs -o size=1M,mode=0700 tmpfs "$tmp/full"
cleanup_fn "umount -l '$tmp/full'"
instant_setup
tiny_copy tiny "$tmp/tiny.img"
"$top_srcdir/images/domain-xml" NAME=tiny DISK_PATH="$tmp/tiny.img" \
    NET_SOURCE="$NETNS_BRIDGE" > "$tmp/tiny.xml"
bootback import "$tmp/tiny.img" --vm tiny --domain-xml "$tmp/tiny.xml" >/dev/null
# A definition libvirt accepts but cannot start (no such kernel; a kernel
# from a host path is off the allow-list, so it needs --allow-passthrough).
"$top_srcdir/images/domain-xml" NAME=broken DISK_PATH="$tmp/tiny.img" \
    NET_SOURCE="$NETNS_BRIDGE" |
    sed "s|<boot dev='hd'/>|<kernel>$tmp/no-such-kernel</kernel>|" > "$tmp/broken.xml"
bootback import "$tmp/tiny.img" --vm broken --domain-xml "$tmp/broken.xml" >/dev/null
bootback import "$tmp/tiny.img" --vm noxml >/dev/null

# Nothing of any session on the host, and exactly the domains named.
nothing_left () {
    local what=$1 doms
    shift
    if pgrep -fa -- "^nbdkit .*$BOOTBACK_HOME/|--home $BOOTBACK_HOME supervise"; then
        fail "$what: processes left"
    fi
    if [ -n "$(find "$BOOTBACK_HOME/sessions" -mindepth 1 2>/dev/null)" ]; then
        find "$BOOTBACK_HOME/sessions"; fail "$what: session files left"
    fi
    if [ -n "$(find "$BOOTBACK_HOME/overlays" "$tmp/full" -type f 2>/dev/null)" ]; then
        fail "$what: overlays left: $(find "$BOOTBACK_HOME/overlays" "$tmp/full" -type f)"
    fi
    doms=$(virsh -q list --all --name | sort | xargs)
    [ "$doms" = "$*" ] || fail "$what: domains '$doms', expected '$*'"
}
# expect_error WHAT PATTERN CMD...: fails with a message matching PATTERN.
expect_error () {
    local what=$1 pat=$2
    shift 2
    if "$@" >"$tmp/out" 2>"$tmp/err"; then fail "$what: succeeded"; fi
    echo "$what: $(cat "$tmp/err")"
    grep -qE "$pat" "$tmp/err" || fail "$what: message does not match '$pat'"
}

expect_error "unknown VM" "nosuchvm" bootback instant nosuchvm
nothing_left "unknown VM"
expect_error "unknown point" "tiny@20000101T000000Z" bootback instant tiny@20000101T000000Z
nothing_left "unknown point"
expect_error "libvirtd unreachable" "cannot connect to libvirt" \
    bootback instant tiny --connect "qemu+unix:///system?socket=$tmp/no-such.sock"
nothing_left "libvirtd unreachable"
expect_error "no space for the overlay" "no space for the overlay: .*full" \
    bootback instant tiny --overlay-dir "$tmp/full"
nothing_left "no space for the overlay"
# an overlay directory others can write (not sticky): they could swap an
# overlay for a link before libvirt chowns it
mkdir -m 0777 "$tmp/shared"; chmod 0777 "$tmp/shared"
expect_error "overlay directory others can write" "overlay directory: .*shared" \
    bootback instant tiny --overlay-dir "$tmp/shared"
nothing_left "overlay directory others can write"
expect_error "bad network" "no network nosuchnet" bootback instant tiny --network nosuchnet
nothing_left "bad network"
expect_error "bad bridge" "no bridge nosuchbr" bootback instant tiny --network bridge:nosuchbr
nothing_left "bad bridge"
expect_error "bad name" "not a valid domain name" bootback instant tiny --name 'a/b'
nothing_left "bad name"

# Name and UUID clashes with a defined domain (the "original").
virsh -q define "$tmp/tiny.xml" >/dev/null
expect_error "name clash" "domain called tiny already exists.*--name" bootback instant tiny
nothing_left "name clash" tiny
expect_error "UUID clash" "already has UUID.*--new-identity" \
    bootback instant tiny --name tiny-r --keep-identity
nothing_left "UUID clash" tiny

# libvirt refuses to start it: everything made so far is undone.
expect_error "start fails" "session [0-9]+ failed \(nothing left behind\): start domain broken" \
    bootback instant broken --agent-timeout 0 --allow-passthrough
nothing_left "start fails" tiny
bootback sessions --json > "$tmp/s.json"
python3 - "$tmp/s.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
assert len(s) >= 1, s
assert all(x["state"] == "failed" for x in s), [x["state"] for x in s]
assert "start domain broken" in s[-1]["message"], s[-1]
EOF

# The default definition for a point without domain XML.
BOOTBACK_EXE="$BOOTBACK" bootback instant noxml --network "bridge:$NETNS_BRIDGE" --agent-timeout 0 \
    2>"$tmp/err" | tee "$tmp/out"
grep -q "no saved domain XML: using a default definition" "$tmp/err"
[ "$(virsh domstate noxml)" = running ]
virsh dumpxml noxml > "$tmp/noxml.xml"
grep -q "bridge='$NETNS_BRIDGE'" "$tmp/noxml.xml"
grep -q "socket='$BOOTBACK_HOME/sessions/.*/vda.sock'" "$tmp/noxml.xml"
grep -q "<target dev='vda' bus='virtio'/>" "$tmp/noxml.xml"
id=$(sed -n 's/^session \([0-9]*\):.*/\1/p' "$tmp/out")
# The session's sockets, logs and overlay (the guest's writes) are root's
# alone: directories 0700, overlay 0600 (sockets are reached through them).
bad=$(find "$BOOTBACK_HOME/sessions" "$BOOTBACK_HOME/overlays" \( -type d -o -name '*.qcow2' \) \
          -perm /077 -printf '%m %p\n')
[ -z "$bad" ] || fail "session files readable by others:"$'\n'"$bad"
# A second session with the same name clashes with the running one.
expect_error "clash with a session" "noxml already exists" bootback instant noxml --agent-timeout 0
expect_error "migrate to nowhere" "not writable|No such file" \
    bootback migrate "$id" --to /nonexistent/dir/x.qcow2
[ "$(virsh domstate noxml)" = running ]
bootback instant stop "$id" --discard
nothing_left "after stop --discard" tiny
expect_error "stop twice" "already stopped" bootback instant stop "$id"
expect_error "migrate a stopped session" "is stopped, not running" \
    bootback migrate "$id" --to "$tmp"
expect_error "unknown session" "no session 'nope'" bootback instant stop nope
echo "bad input ok"
