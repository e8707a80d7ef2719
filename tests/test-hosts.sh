#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Hypervisor hosts by name: the usual private libvirtd on its unix socket
# ("local"), a remote host (tests/lib/remote.sh: a libvirtd in its own
# network namespace that cannot see this test's files) reached over
# qemu+tcp:// ("h2", no auth: tests only) and over qemu+tls:// with
# pkipath= the directory of `bootback tls init` ("h2tls"), the same with
# the certificates of another CA ("badca", refused), and a URI where
# nothing listens ("dead").
#   - host add / remove, a taken name, a bad name or URI refused;
#   - hosts --json: local and h2 reachable with libvirt's and QEMU's
#     versions, memory and pools (h2 has a pool of its own), dead not,
#     with libvirt's error naming the URI; exit 2 because of dead; the
#     text output prints what a host answers (a pool named with C1
#     controls) with control and non-ASCII bytes as '?';
#   - the remote's libvirtd accepts only the backup server's client
#     certificate (CN=bootback-server): the remote's own QEMU client
#     certificate (CN=bootback-qemu-h2, of the same CA) is refused, and
#     the remote's directory holds neither the CA's key nor the backup
#     server's client key;
#   - backup --host h2 backs up a domain only h2 has (the default
#     connection does not know it), byte for byte, through NBD over TLS
#     with the client certificates in $BOOTBACK_HOME/tls; --host unknown
#     and --host with --connect are errors.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/libvirtd.sh"
source "$top_srcdir/tests/lib/remote.sh"
requires virsh qemu-img python3 cmp

libvirtd_start          # "local": $LIBVIRT_DEFAULT_URI
remote_host_start       # "h2"

free_port () { python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

h2_uri=$REMOTE_TCP_URI
bootback tls init --dir "$tmp/other" --hosts localhost 127.0.0.1 >/dev/null
dead_uri="qemu+tcp://127.0.0.1:$(free_port)/system"
# a pool only h2 has
mkdir -p "$REMOTE_DIR/h2pool"
virsh -c "$h2_uri" -q pool-define-as h2pool dir --target "$REMOTE_DIR/h2pool" >/dev/null
virsh -c "$h2_uri" -q pool-start h2pool >/dev/null
# a pool name a compromised host could give: the C1 controls CSI (U+009B)
# and U+0087 (XML allows them), which `hosts` must not print raw
evil=$(printf 'evil\302\23331m\302\207')
mkdir -p "$REMOTE_DIR/evilpool"
virsh -c "$h2_uri" -q pool-define-as "$evil" dir --target "$REMOTE_DIR/evilpool" >/dev/null

## host add / remove
bootback host add local "$LIBVIRT_DEFAULT_URI"
bootback host add h2 "$h2_uri"
bootback host add dead "$dead_uri"
bootback host add h2tls "$REMOTE_URI"
bootback host add badca "qemu+tls://$REMOTE_ADDR/system?pkipath=$tmp/other"
expect_rc 1 bootback host add h2 "$h2_uri"
grep -q "host h2 exists already" "$tmp/err" || fail "taken name: wrong error"
expect_rc 1 bootback host add 'bad/name' "$h2_uri"
grep -q "host name 'bad/name'" "$tmp/err" || fail "bad name: wrong error"
expect_rc 1 bootback host add h3 not-a-uri
grep -q "not-a-uri: not a libvirt URI" "$tmp/err" || fail "bad URI: wrong error"
bootback host add gone "$h2_uri" >/dev/null
bootback host remove gone >/dev/null
expect_rc 1 bootback host remove gone
grep -q "no host named gone" "$tmp/err" || fail "remove twice: wrong error"

## hosts
expect_rc 2 bootback hosts --json
cat "$tmp/out"
python3 - "$tmp/out" "$dead_uri" <<'EOT' || fail "hosts --json"
import json, sys
hosts = {h["name"]: h for h in json.load(open(sys.argv[1]))}
assert sorted(hosts) == ["badca", "dead", "h2", "h2tls", "local"], hosts.keys()
for n in ("local", "h2", "h2tls"):
    h = hosts[n]
    assert h["reachable"] is True and h["error"] is None, h
    assert h["libvirt_version"].count(".") == 2 and h["libvirt_version"] != "0.0.0", h
    assert h["hypervisor"] == "QEMU" and h["hypervisor_version"] != "0.0.0", h
    assert 0 < h["free_memory"] <= h["memory"] and h["cpus"] >= 1, h
h2 = [p for p in hosts["h2"]["pools"] if p["name"] == "h2pool"]
assert h2 and h2[0]["active"] and h2[0]["capacity"] > 0, hosts["h2"]["pools"]
assert not any(p["name"] == "h2pool" for p in hosts["local"]["pools"])
d = hosts["dead"]
assert d["reachable"] is False and sys.argv[2] in d["error"], d
b = hosts["badca"]
assert b["reachable"] is False and "certificate" in b["error"].lower(), b
EOT
expect_rc 2 bootback hosts
grep -q "^  up: .*libvirt [0-9.]*, QEMU [0-9.]*, .* memory free" "$tmp/out" || fail "hosts text"
grep -q "^  unreachable: cannot connect to libvirt ($dead_uri)" "$tmp/out" || fail "hosts: dead"
grep -q "h2pool" "$tmp/out" || fail "hosts: no pool h2pool"
# what a host answers is printed with its control and non-ASCII bytes as '?'
grep -q "evil??31m??" "$tmp/out" || fail "hosts: the pool named with controls: $(cat -v "$tmp/out")"
! LC_ALL=C grep -q $'\302\233\|\302\207' "$tmp/out" || fail "hosts printed a host's control bytes raw"
bootback host remove dead >/dev/null
bootback host remove badca >/dev/null
bootback hosts >/dev/null || fail "hosts: exit $? with every host up"

## only the backup server's certificate opens the remote's libvirtd
rt=$REMOTE_DIR/tls
[ ! -e "$rt/ca-key.pem" ] || fail "the remote holds the CA's key"
openssl x509 -in "$rt/client-cert.pem" -noout -subject -nameopt RFC2253 >"$tmp/subj"
grep -qx "subject=CN=bootback-qemu-h2,O=bootback" "$tmp/subj" || fail "remote client: $(cat "$tmp/subj")"
for f in "$rt"/*-key.pem; do
    cmp -s "$f" "$REMOTE_TLS/client-key.pem" && fail "the remote holds the backup server's key"
done
mkdir -m 0700 "$tmp/qemu-id"
cp "$rt/ca-cert.pem" "$tmp/qemu-id/cacert.pem"
cp "$rt/client-cert.pem" "$tmp/qemu-id/clientcert.pem"
cp "$rt/client-key.pem" "$tmp/qemu-id/clientkey.pem"
expect_rc 1 virsh -c "qemu+tls://$REMOTE_ADDR/system?pkipath=$tmp/qemu-id" -q list --all
# libvirtd tells the client nothing (it closes the session after the
# handshake); its log says why
grep -q "Unable to read TLS confirmation" "$tmp/err" || fail "the QEMU client certificate: wrong error"
remote_log | grep -q "Distinguished Name is not on the list of allowed clients (tls_allowed_dn_list)" ||
    fail "the remote's libvirtd did not refuse the QEMU client certificate for its DN"
virsh -c "$REMOTE_URI" -q list --all >/dev/null || fail "the backup server's certificate refused"

## --host on a libvirt command: a domain only h2 has
make_disk "$REMOTE_DIR/pool/vm.raw" $((16 << 20))
dom=h2vm-$$
"$top_srcdir/images/domain-xml" NAME="$dom" DISK_PATH="$REMOTE_DIR/pool/vm.raw" NET_TYPE=none > "$tmp/dom.xml"
virsh -c "$h2_uri" -q define "$tmp/dom.xml" >/dev/null
virsh -c "$h2_uri" -q start "$dom" >/dev/null
export BOOTBACK_SCRATCH_DIR=$tmp
bootback repo init "$tmp/repo" >/dev/null
expect_rc 1 bootback backup "$dom"
cp -a "$REMOTE_TLS" "$BOOTBACK_HOME/tls"   # the client certificates, where backup looks
bootback backup "$dom" --host h2 | tee "$tmp/backup.out"
grep -q "^backed up $dom@" "$tmp/backup.out" || fail "backup --host h2"
grep -q "reading the disks over NBD with TLS from $REMOTE_ADDR:" "$tmp/backup.out" ||
    fail "backup --host h2 did not read over NBD with TLS"
bootback restore "$dom" --to "$tmp/back.raw" >/dev/null
cmp "$REMOTE_DIR/pool/vm.raw" "$tmp/back.raw" || fail "the point of $dom on h2 differs from its disk"
expect_rc 1 bootback backup "$dom" --host nosuch
grep -q "\-\-host nosuch: no such host" "$tmp/err" || fail "unknown host: wrong error"
expect_rc 1 bootback backup "$dom" --host h2 --connect "$h2_uri"
grep -q "give --host or --connect, not both" "$tmp/err" || fail "--host and --connect"
