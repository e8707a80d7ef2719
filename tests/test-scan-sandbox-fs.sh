#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The scanning child (as root, dropped to nobody) sees none of the host's
# file system: its root is an empty read-only tmpfs holding its scratch
# directory alone.  BOOTBACK_SCAN_PROBE makes the child, once its sandbox
# line is written (as a parser taken over by the guest's bytes would be),
# open, connect to or create in each host path given, and on the first
# it reaches end with "scan probe reached PATH".  Planted here, each open
# to anyone (checked as nobody first, so that not reaching them means
# something): a file 0644 under a 0755 directory, a unix socket 0777
# (its listener counts connections), a directory 1777; with /etc/passwd,
# /proc/1/cmdline, /tmp/, /dev/shm/ and libvirt's read-only socket.
# Before, the child read the file, connected to the socket and wrote in
# the directory as nobody, and could have sent all that out in its JSON
# lines.  The probe of /. (the child's own root) shows the hook works;
# the point's planted malware is still found (EICAR in a zip too: its
# member unpacked in the scratch directory), the sandbox line says
# "private_root":1, and a child left without the private root
# (BOOTBACK_SCAN_SHARED_ROOT, a test hook) is refused, naming it.
source "$top_srcdir/tests/functions.sh"
requires nbdkit mkfs.xfs setpriv python3 md5sum
[ "$(id -u)" = 0 ] || skip "needs root (the sandbox drops from root)"
group=$(id -gn nobody)

source "$top_srcdir/tests/lib/scan.sh"
printf 'X5O!P%%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' >"$tmp/eicar.com"
echo "$(md5sum <"$tmp/eicar.com" | cut -d' ' -f1):68:Test.Eicar.HDB" >"$sig/test.hdb"
scan_rule fs_marker BOOTBACK-SANDBOX-FS-MARKER
echo BOOTBACK-SANDBOX-FS-MARKER >"$tmp/marker.txt"
# libclamav unpacks an archive's members into the scratch directory, the
# one host directory the child keeps
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED).write(sys.argv[2], "inner.com")' \
    "$tmp/eicar.zip" "$tmp/eicar.com"
cat >"$tmp/proto" <<EOF
d
0 0
d--755 0 0
eicar.com ---644 0 0 $tmp/eicar.com
marker.txt ---644 0 0 $tmp/marker.txt
eicar.zip ---644 0 0 $tmp/eicar.zip
clean.txt ---644 0 0 $tmp/clean.txt
$
EOF
truncate -s 300M "$tmp/x.img"
mkfs.xfs -q -p "$tmp/proto" "$tmp/x.img"
bootback import "$tmp/x.img" --vm fs >/dev/null
rm -f "$tmp/x.img"

# the host things, open to anyone ($tmp is 0700: they go elsewhere)
probe=$(mktemp -d "${TMPDIR:-/var/tmp}/bootback-probe.XXXXXX")
cleanup_fn rm -rf "$probe"
chmod 755 "$probe"
echo "HOST-FILE-$$" >"$probe/secret"
chmod 644 "$probe/secret"
mkdir -m 1777 "$probe/w"
py=python3; [ -x /usr/bin/python3 ] && py=/usr/bin/python3    # not a root-only shim
$py - "$probe/sock" "$probe/conns" <<'EOF' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o777)
s.listen(8)
while True:
    c, _ = s.accept()
    with open(sys.argv[2], "a") as f:
        f.write("connection\n")
    c.close()
EOF
listener=$!
cleanup_fn kill "$listener"
for i in $(seq 100); do [ -S "$probe/sock" ] && break; sleep 0.05; done
as_nobody () { setpriv --reuid=nobody --regid="$group" --clear-groups "$@"; }
as_nobody cat "$probe/secret" >/dev/null || fail "nobody cannot read the planted file"
as_nobody $py -c 'import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])' \
    "$probe/sock" || fail "nobody cannot connect to the planted socket"
as_nobody touch "$probe/w/x" || fail "nobody cannot write in the planted directory"
rm -f "$probe/w/x" "$probe/conns"

# the hook works: the child's own root is there to reach
rc=0; BOOTBACK_SCAN_PROBE=/. bootback scan fs --signatures "$sig" >"$tmp/out" 2>&1 || rc=$?
cat "$tmp/out"
[ $rc = 1 ] && grep -qxF 'not scanned: disk vda: scan probe reached /.' "$tmp/out" ||
    fail "the probe of /. did not report (exit $rc)"

# the host is not: each path alone (so that all reached are named), then
# all together in a scan that finds the point's malware
reached=()
for p in "$probe/secret" "$probe/sock" "$probe/w/" /etc/passwd /proc/1/cmdline /tmp/ \
         /dev/shm/ /var/run/libvirt/libvirt-sock-ro; do
    rc=0; BOOTBACK_SCAN_PROBE=$p bootback scan fs --signatures "$sig" >"$tmp/out" 2>&1 || rc=$?
    grep 'scan probe reached' "$tmp/out" && reached+=("$p")
    paths=${paths:+$paths:}$p
done
[ ${#reached[@]} = 0 ] || fail "the scanning child reached the host's ${reached[*]}"
rc=0; BOOTBACK_SCAN_PROBE=$paths bootback scan fs --signatures "$sig" >"$tmp/out" 2>&1 || rc=$?
cat "$tmp/out"
grep 'scan probe reached' "$tmp/out" && fail "the scanning child reached the host (above)"
[ ! -s "$probe/conns" ] || fail "the planted socket was connected to"
[ -z "$(ls -A "$probe/w")" ] || fail "the scanning child wrote in the host's $probe/w"
scan_found "$tmp/out" $rc fs_marker
grep -q '^FOUND: disk vda partition 0: /eicar.zip: Test.Eicar.HDB' "$tmp/out" ||
    fail "EICAR in a zip archive not reported"
scan_sandbox_is fs private_root 1

# a child that kept the host's file system is refused (test hook: it
# leaves the private root out), its point never clean
rc=0; BOOTBACK_SCAN_SHARED_ROOT=1 bootback scan fs --signatures "$sig" >"$tmp/out" 2>&1 || rc=$?
cat "$tmp/out"
[ $rc = 1 ] || fail "a scan without the private root exits $rc"
grep -qxF 'not scanned: disk vda: the scan sandbox could not make a private file system view: run as root' \
    "$tmp/out" || fail "a child without the private root was not refused"
echo "the scanning child reached no host path ok"
