#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Hypervisor hosts by name: two private libvirtds on this machine, the
# usual one on its unix socket ("local") and a second one listening on
# TCP on 127.0.0.1 ("h2", qemu+tcp://, no auth: tests only), and a third
# URI where nothing listens ("dead"); h2 also over TLS ("h2tls",
# qemu+tls:// with pkipath= the directory of `bootback tls init`) and the
# same with the certificates of another CA ("badca", refused).
#   - host add / remove, a taken name, a bad name or URI refused;
#   - hosts --json: local and h2 reachable with libvirt's and QEMU's
#     versions, memory and pools (h2 has a pool of its own), dead not,
#     with libvirt's error naming the URI; exit 2 because of dead;
#   - backup --host h2 backs up a domain only h2 has (the default
#     connection does not know it), byte for byte; --host unknown and
#     --host with --connect are errors.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/libvirtd.sh"
requires virsh qemu-img python3 cmp

libvirtd_start          # "local": $LIBVIRT_DEFAULT_URI

free_port () { python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# A second libvirtd in a mount namespace of its own (its /etc/libvirt,
# /run/libvirt, /var/lib/libvirt), listening on TCP 127.0.0.1:$port.
h2_start () {
    local d=$tmp/h2 i
    mkdir -p "$d"/etc/qemu/networks/autostart "$d"/etc/qemu/autostart "$d"/run \
             "$d"/lib "$d"/log/qemu "$d"/cache
    cat >"$d/etc/libvirtd.conf" <<EOF
unix_sock_dir = "$d/run"
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
listen_tls = 1
tls_port = "$h2_tls_port"
key_file = "$tmp/tls/server-key.pem"
cert_file = "$tmp/tls/server-cert.pem"
ca_file = "$tmp/tls/ca-cert.pem"
listen_tcp = 1
listen_addr = "127.0.0.1"
tcp_port = "$h2_port"
auth_tcp = "none"
log_outputs = "3:file:$d/log/libvirtd.log"
EOF
    cp "$LIBVIRTD_DIR/etc/qemu.conf" "$d/etc/qemu.conf"
    : >"$d/etc/libvirt.conf"
    unshare -m --propagation private -- /bin/sh -e -c '
        d=$1
        mount --bind "$d/etc" /etc/libvirt
        mount --bind "$d/run" /run/libvirt
        mount --bind "$d/lib" /var/lib/libvirt
        mount --bind "$d/cache" /var/cache/libvirt
        mount --bind "$d/log" /var/log/libvirt
        exec libvirtd -d -l -f "$d/etc/libvirtd.conf" -p "$d/libvirtd.pid"
    ' sh "$d" || { cat "$d/log/libvirtd.log"; fail "the second libvirtd did not start"; }
    h2_pid=$(cat "$d/libvirtd.pid")
    cleanup_fn h2_stop
    for (( i = 0; i < 300; i++ )); do
        virsh -c "$h2_uri" -q version >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    fail "the second libvirtd does not answer on $h2_uri"
}
h2_stop () {
    local dom f i
    for dom in $(virsh -c "$h2_uri" -q list --name 2>/dev/null); do
        virsh -c "$h2_uri" -q destroy "$dom" >/dev/null 2>&1
    done
    kill "$h2_pid" 2>/dev/null || true
    for (( i = 0; i < 100; i++ )); do kill -0 "$h2_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$h2_pid" 2>/dev/null || true
    for f in "$tmp"/h2/run/qemu/*.pid; do
        [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
    done
}
h2_port=$(free_port)
h2_tls_port=$(free_port)
h2_uri="qemu+tcp://127.0.0.1:$h2_port/system"
# h2 also listens with TLS, with certificates of `bootback tls init`
bootback tls init --dir "$tmp/tls" --hosts localhost 127.0.0.1 >/dev/null
bootback tls init --dir "$tmp/other" --hosts localhost 127.0.0.1 >/dev/null
h2_start
dead_uri="qemu+tcp://127.0.0.1:$(free_port)/system"
# a pool only h2 has
mkdir -p "$tmp/h2pool"
virsh -c "$h2_uri" -q pool-define-as h2pool dir --target "$tmp/h2pool" >/dev/null
virsh -c "$h2_uri" -q pool-start h2pool >/dev/null

## host add / remove
bootback host add local "$LIBVIRT_DEFAULT_URI"
bootback host add h2 "$h2_uri"
bootback host add dead "$dead_uri"
bootback host add h2tls "qemu+tls://localhost:$h2_tls_port/system?pkipath=$tmp/tls"
bootback host add badca "qemu+tls://localhost:$h2_tls_port/system?pkipath=$tmp/other"
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
bootback host remove dead >/dev/null
bootback host remove badca >/dev/null
bootback hosts >/dev/null || fail "hosts: exit $? with every host up"

## --host on a libvirt command: a domain only h2 has
make_disk "$tmp/vm.raw" $((16 << 20))
dom=h2vm-$$
"$top_srcdir/images/domain-xml" NAME="$dom" DISK_PATH="$tmp/vm.raw" NET_TYPE=none > "$tmp/dom.xml"
virsh -c "$h2_uri" -q define "$tmp/dom.xml" >/dev/null
virsh -c "$h2_uri" -q start "$dom" >/dev/null
export BOOTBACK_SCRATCH_DIR=$tmp
bootback repo init "$tmp/repo" >/dev/null
expect_rc 1 bootback backup "$dom"
bootback backup "$dom" --host h2 | tee "$tmp/backup.out"
grep -q "^backed up $dom@" "$tmp/backup.out" || fail "backup --host h2"
bootback restore "$dom" --to "$tmp/back.raw" >/dev/null
cmp "$tmp/vm.raw" "$tmp/back.raw" || fail "the point of $dom on h2 differs from its disk"
expect_rc 1 bootback backup "$dom" --host nosuch
grep -q "\-\-host nosuch: no such host" "$tmp/err" || fail "unknown host: wrong error"
expect_rc 1 bootback backup "$dom" --host h2 --connect "$h2_uri"
grep -q "give --host or --connect, not both" "$tmp/err" || fail "--host and --connect"
