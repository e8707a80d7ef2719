#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bootback backup of a running tiny VM (private libvirtd, TCG) with two
# qcow2 disks: vda (the tiny root ext4) and vdb (a raw data area the guest
# writes with dd, so restores can be compared byte for byte).
#
#   1. full backup: application-consistent (a freeze/thaw pair is seen by
#      the guest agent's fsfreeze hook, and the guest ends thawed);
#   2. the guest writes a file on vda, random data (1 MiB across two
#      chunks, so both are patched), zeros and a discard (trim) on vdb;
#   3. incremental backup: reads only about the changed bytes;
#   4. both points restored: the full equals the disks before the writes
#      (no file; vdb identical to its initial content), the incremental
#      has them (the file's bytes; vdb identical to the expected content,
#      zeroed and trimmed ranges zero);
#   5. repo verify; the domain XML is kept with the point; --disk;
#   6. with the agent gone: a crash-consistent point, said.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/backup.sh"
requires virsh qemu-img debugfs python3 cmp

# --- the VM: vda = tiny as qcow2; vdb = 64 MiB with data in places
backup_test_start bbk
truncate -s 64M "$tmp/vdb.raw"
head -c 8M /dev/urandom | dd of="$tmp/vdb.raw" conv=notrunc status=none
head -c 4M /dev/urandom | dd of="$tmp/vdb.raw" bs=1M seek=32 conv=notrunc status=none
qemu-img convert -O qcow2 "$tmp/vdb.raw" "$tmp/vdb.qcow2"
"$top_srcdir/tests/lib/add-disk" "$tmp/vm.xml" vdb "$tmp/vdb.qcow2" qcow2 "discard='unmap'"
virsh -q define "$tmp/vm.xml" >/dev/null
virsh -q start "$dom" >/dev/null
"$qga" --domain "$dom" --timeout 120 ping >/dev/null || { cat "$tmp/vm.serial"; fail "no agent"; }

# qemu-ga again, with an fsfreeze hook that logs to /run/freeze.log (tmpfs)
"$qga" --domain "$dom" write /run/hook <<'EOF'
#!/bin/sh
echo "$1" >> /run/freeze.log
EOF
"$qga" --domain "$dom" write /run/restart-ga <<'EOF'
#!/bin/sh
sleep 1
kill "$(cat /run/qemu-ga.pid)"
sleep 1
port=
for n in /sys/class/virtio-ports/*/name; do
    [ "$(cat "$n")" = org.qemu.guest_agent.0 ] && port=$(basename "$(dirname "$n")")
done
exec qemu-ga -d -m virtio-serial -p "/dev/$port" -t /run/qemu-ga \
    -f /run/qemu-ga.pid -l /run/qemu-ga.log -F/run/hook
EOF
"$qga" --domain "$dom" exec /bin/sh -c \
    'chmod +x /run/hook /run/restart-ga; setsid /run/restart-ga </dev/null >/dev/null 2>&1 &'
# Until the agent that answers is the new one, with the hook (after a
# fixed 3 s, a loaded guest could still be running the old one).
ga_cmdline () {
    "$qga" --domain "$dom" --timeout 10 exec /bin/sh -c \
        'tr "\0" " " < /proc/$(cat /run/qemu-ga.pid)/cmdline' 2>/dev/null || true
}
deadline=$(( SECONDS + 120 * slow ))
until grep -q -- "-F/run/hook" <<< "$(ga_cmdline)"; do
    [ $SECONDS -lt $deadline ] || fail "the agent did not come back with the fsfreeze hook"
    sleep 0.5
done

frozen_status () {
    "$qga" --domain "$dom" json '{"execute":"guest-fsfreeze-status"}' | tr -d '" \n'
}
json_get () { python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))[0]; print(eval("d"+sys.argv[2]))' "$@"; }

# --- 1. full backup
bootback repo init "$tmp/repo" >/dev/null
t0=$(date +%s.%N)
bootback backup "$dom" >"$tmp/b1.out" || { cat "$tmp/b1.out"; fail "full backup"; }
echo "full backup: $(echo "$(date +%s.%N) - $t0" | bc) s"
cat "$tmp/b1.out"
grep -q "full, application-consistent" "$tmp/b1.out" || fail "full backup not application-consistent"
grep -q "guest agent: filesystems frozen" "$tmp/b1.out" || fail "no freeze note"
grep -q "guest agent: filesystems thawed" "$tmp/b1.out" || fail "no thaw note"
[ "$("$qga" --domain "$dom" cat /run/freeze.log | tr '\n' ' ')" = "freeze thaw " ] ||
    fail "the guest did not see one freeze then one thaw: $("$qga" --domain "$dom" cat /run/freeze.log)"
[ "$(frozen_status)" = thawed ] || fail "guest left frozen"
p1=$(latest_id "$dom")
[ "$(virsh -q checkpoint-list "$dom" --name | grep -c .)" = 1 ] || fail "expected one checkpoint"
virsh -q checkpoint-list "$dom" --name | grep -q "^bootback-.*-$p1\$" || fail "checkpoint not named after the point"

# --- 2. the guest changes things
head -c 1M /dev/urandom >"$tmp/blob"
"$qga" --domain "$dom" write /run/blob <"$tmp/blob"
"$qga" --domain "$dom" exec /bin/sh -c '
    dd if=/dev/urandom of=/root/f1 bs=64k count=8 2>/dev/null &&
    dd if=/run/blob of=/dev/vdb bs=64k seek=776 oflag=direct 2>/dev/null &&
    dd if=/dev/zero of=/dev/vdb bs=1M seek=1 count=1 oflag=direct 2>/dev/null &&
    blkdiscard -o $((33 * 1048576)) -l $((2 * 1048576)) /dev/vdb && sync' ||
    fail "guest writes"
"$qga" --domain "$dom" cat /root/f1 >"$tmp/f1.expected"
[ "$(stat -c %s "$tmp/f1.expected")" = 524288 ] || fail "could not read /root/f1 back"
cp "$tmp/vdb.raw" "$tmp/vdb.expected"
dd if="$tmp/blob" of="$tmp/vdb.expected" bs=64k seek=776 conv=notrunc status=none
dd if=/dev/zero of="$tmp/vdb.expected" bs=1M seek=1 count=1 conv=notrunc status=none
dd if=/dev/zero of="$tmp/vdb.expected" bs=1M seek=33 count=2 conv=notrunc status=none

# --- 3. incremental
t0=$(date +%s.%N)
bootback backup "$dom" --json >"$tmp/b2.json" 2>"$tmp/b2.err" || { cat "$tmp/b2.err"; fail "incremental"; }
echo "incremental backup: $(echo "$(date +%s.%N) - $t0" | bc) s"
cat "$tmp/b2.err"
[ "$(json_get "$tmp/b2.json" '["kind"]')" = incremental ] || fail "second backup is not incremental"
[ "$(json_get "$tmp/b2.json" '["consistency"]')" = application ] || fail "not application-consistent"
read_b=$(json_get "$tmp/b2.json" '["bytes_read"]')
total=$(json_get "$tmp/b2.json" '["size"]')
dirty=$(json_get "$tmp/b2.json" '["disks"][1]["dirty_bytes"]')
echo "incremental read $read_b of $total bytes (vdb dirty: $dirty)"
[ "$read_b" -ge 1048576 ] || fail "incremental read less than the 1 MiB written"
[ "$read_b" -lt $(( total / 10 )) ] || fail "incremental read $read_b bytes: not far below the disk size $total"
[ "$dirty" -ge $(( 4 * 1048576 )) ] && [ "$dirty" -le $(( 8 * 1048576 )) ] ||
    fail "vdb dirty bytes $dirty: expected about 4 MiB (1 write, 1 zero, 2 trimmed)"
# the random MiB at 48.5 MiB half-fills two chunks: both made by patching
# the previous point's chunks, none read whole again
[ "$(json_get "$tmp/b2.json" '["disks"][1]["patched_chunks"]')" = 2 ] ||
    fail "vdb: expected 2 patched chunks: $(cat "$tmp/b2.json")"
[ "$(json_get "$tmp/b2.json" '["disks"][1]["reread_chunks"]')" = 0 ] ||
    fail "vdb: chunks read whole again: $(cat "$tmp/b2.json")"
p2=$(latest_id "$dom")
[ "$(bootback point show "$dom@$p2" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["kind"])')" = incremental ]
[ "$(virsh -q checkpoint-list "$dom" --name | tr -d ' \n')" = "$(json_get "$tmp/b2.json" '["checkpoint"]')" ] ||
    fail "the old checkpoint was not removed after the point was stored"
[ "$(frozen_status)" = thawed ] || fail "guest left frozen"
[ "$("$qga" --domain "$dom" cat /run/freeze.log | tr '\n' ' ')" = "freeze thaw freeze thaw " ] ||
    fail "freeze/thaw pairs: $("$qga" --domain "$dom" cat /run/freeze.log)"

# --- 4. restores
for p in $p1 $p2; do
    for d in vda vdb; do
        bootback restore "$dom@$p" --disk $d --to "$tmp/$p-$d.raw" >/dev/null
    done
done
cmp "$tmp/$p1-vdb.raw" "$tmp/vdb.raw" || fail "full point's vdb differs from the disk before the writes"
cmp "$tmp/$p2-vdb.raw" "$tmp/vdb.expected" || fail "incremental point's vdb differs from what the guest wrote"
off=$("$top_srcdir/images/guest-config" --file "$tmp/$p1-vda.raw")
if [ "$(debugfs -R 'cat /root/f1' "$off" 2>/dev/null | wc -c)" -gt 0 ]; then
    fail "the full point has /root/f1, written after it"
fi
off=$("$top_srcdir/images/guest-config" --file "$tmp/$p2-vda.raw")
debugfs -R 'cat /root/f1' "$off" 2>/dev/null >"$tmp/f1.restored"
cmp "$tmp/f1.restored" "$tmp/f1.expected" || fail "the incremental point's /root/f1 differs from the guest's"
[ "$(debugfs -R 'cat /srv/bootback/data.sha256' "$off" 2>/dev/null | wc -c)" -gt 0 ] || fail "restored vda unreadable"

# --- 5. the rest
bootback repo verify >/dev/null || fail "repo verify"
bootback point show "$dom@$p2" --json | grep -q '"domain_xml": true' || fail "no domain XML kept"
bootback backup "$dom" --disk vdb --no-quiesce >"$tmp/b3.out" || { cat "$tmp/b3.out"; fail "--disk vdb"; }
grep -q "incremental, crash-consistent" "$tmp/b3.out" || { cat "$tmp/b3.out"; fail "--disk vdb --no-quiesce"; }
bootback point show "$dom@latest" --json | python3 -c '
import json, sys
m = json.load(sys.stdin)
assert [d["name"] for d in m["disks"]] == ["vdb"], m["disks"]'
expect_fail bootback backup "$dom" --disk vdz 2>"$tmp/err"
grep -q "no disk vdz" "$tmp/err" || fail "bad --disk message"
expect_fail bootback backup nosuchdomain 2>"$tmp/err"
grep -q "nosuchdomain" "$tmp/err" || fail "unknown domain message"
[ "$(frozen_status)" = thawed ] || fail "guest left frozen"

# --- no guest agent: a crash-consistent point, said
# (once libvirt has seen the agent's channel close: a fixed 3 s was not
# always enough for a loaded guest to get there)
"$qga" --domain "$dom" exec /bin/sh -c \
    '(sleep 1; kill "$(cat /run/qemu-ga.pid)") </dev/null >/dev/null 2>&1 &'
deadline=$(( SECONDS + 120 * slow ))
until virsh dumpxml "$dom" | grep -q "name='org.qemu.guest_agent.0' state='disconnected'"; do
    [ $SECONDS -lt $deadline ] || fail "the guest's agent did not go: $(virsh dumpxml "$dom" | grep guest_agent)"
    sleep 0.2
done
bootback backup "$dom" >"$tmp/b4.out" 2>&1 || { cat "$tmp/b4.out"; fail "backup without an agent"; }
cat "$tmp/b4.out"
grep -q "guest agent: cannot freeze (.*not connected" "$tmp/b4.out" ||
    fail "no note that the agent did not answer, in libvirt's words"
grep -q "incremental, crash-consistent" "$tmp/b4.out" || fail "without an agent the point is not crash-consistent"
echo ok
