#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A guest agent's error text reaches no terminal as control characters.
# libvirt passes the agent's "desc" of a failed command on in its error
# message as the guest wrote it, and bootback printed libvirt's message:
# a guest whose fsfreeze fails with escape sequences in it could retitle,
# clear or rewrite the terminal of whoever runs `bootback backup` (and
# every other libvirt message goes through recovery/virt's keep_failure).
#  1. The tiny VM's agent (replaced in its image) fails
#     guest-fsfreeze-freeze with a text holding ESC and BEL.
#  2. bootback backup says the freeze failed, quoting the text with the
#     control characters replaced, and makes a crash-consistent point.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/backup.sh"
requires virsh qemu-img python3 debugfs

backup_test_start bbh
# --- 1 ----------------------------------------------------------------------
# /usr/sbin/qemu-ga replaced in the image by a script that speaks the
# protocol on the port it is given.
cat >"$tmp/fake-ga" <<'EOF'
#!/bin/sh
while [ $# -gt 0 ]; do [ "$1" = -p ] && port=$2; shift; done
# the port read again after an end of file (the host's side closed and
# opened again, as libvirt may while the guest boots): a real agent does
(
while :; do
exec 3<>"$port" || { sleep 0.2; continue; }
while IFS= read -r line <&3; do
    case $line in
    *guest-sync*)       # the id by expansion: no process per line (TCG is slow)
        id=${line##*\"id\":}; id=${id%%[!0-9 ]*}
        printf '{"return": %s}\n' $id >&3 ;;
    *guest-fsfreeze-freeze*)
        printf '{"error": {"class": "GenericError", "desc": "\\u001b]2;pwned\\u0007\\u001b[2Jcleared"}}\n' >&3 ;;
    *guest-ping*) printf '{"return": {}}\n' >&3 ;;
    *) printf '{"return": 0}\n' >&3 ;;
    esac
done
exec 3<&-
sleep 0.2
done
) </dev/null >/dev/null 2>&1 &
echo $! >/run/qemu-ga.pid
EOF
qemu-img convert -O raw "$tmp/vda.qcow2" "$tmp/vda.raw"
root=$("$top_srcdir/images/guest-config" --file "$tmp/vda.raw")
printf 'rm /usr/sbin/qemu-ga\nwrite %s /usr/sbin/qemu-ga\nsif /usr/sbin/qemu-ga mode 0100755\n' \
    "$tmp/fake-ga" | debugfs -w -f - "$root" >/dev/null 2>&1
debugfs -R "cat /usr/sbin/qemu-ga" "$root" 2>/dev/null | grep -q pwned || fail "no fake agent in the image"
qemu-img convert -O qcow2 "$tmp/vda.raw" "$tmp/vda.qcow2"
virsh -q define "$tmp/vm.xml" >/dev/null
virsh -q start "$dom" >/dev/null
"$qga" --domain "$dom" --timeout 120 ping >/dev/null || { cat "$tmp/vm.serial"; fail "no agent"; }
virsh -q qemu-agent-command "$dom" '{"execute":"guest-fsfreeze-freeze"}' >"$tmp/freeze.out" 2>&1 || true
grep -q pwned "$tmp/freeze.out" || { cat -v "$tmp/freeze.out"; fail "the fake agent does not answer"; }
echo "the guest's agent fails fsfreeze with: $(cat -v "$tmp/freeze.out")"

# --- 2 ----------------------------------------------------------------------
bootback repo init "$tmp/repo" >/dev/null
bootback backup "$dom" >"$tmp/b.out" 2>&1 || { cat -v "$tmp/b.out"; fail "backup failed"; }
grep "cannot freeze" "$tmp/b.out" | cat -v
grep -q "cannot freeze .*pwned.*cleared" "$tmp/b.out" ||
    { cat -v "$tmp/b.out"; fail "the freeze's failure is not quoted"; }
! LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$tmp/b.out" ||
    fail "bootback backup printed the guest's control characters"
echo "ok"
