#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A lab on another hypervisor host (docs/design.md, "Labs on another
# host"): the remote of tests/lib/remote.sh (its own libvirtd and network
# namespace, a mount namespace that cannot see this test's files) with an
# sshd of its own (remote_sshd_start); this test is the backup server.
#  - host add --ssh, hosts --json shows it; a lab on a host without one is
#    refused naming the host and --ssh, so is an unknown host (--host or
#    host:), --host against a group's own host:, and lab up there; an ssh
#    that cannot connect is "could not verify" (exit 1), never a failed VM;
#  - lab run of a restore point with host: r1 passes heartbeat, tcp and
#    http: the bridge, the namespace and the iptables rules are on the
#    remote while it runs and not here, and afterwards nothing is left on
#    either side (domain, volume, bridge, namespace, rule, ssh master);
#  - a run killed with -9: lab reap removes all of it on the remote, from
#    its state, and the dead run's ssh master;
#  - bootback verify --host r1 of the same point passes, leaving nothing;
#  - an isolation property broken on the remote (BOOTBACK_LAB_TEST_HOOK,
#    run there) makes the lab refuse, naming the property.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/lab/lab-test-lib.sh"
source "$top_srcdir/tests/lib/remote.sh"

lab_test_start --repo nbdkit ssh ping
export BOOTBACK_DOMAIN_TYPE=qemu
remote_host_start
remote_sshd_start
cleanup_fn "pgrep -f -- '^nbdkit .*$BOOTBACK_HOME/sessions/' | xargs -r kill -9; true"
lab_point_files web1 21
bootback import "$tmp/web1.img" --vm web1 --domain-xml "$tmp/web1.xml" >/dev/null
# The backup server's certificates (the remote's QEMU trusts their CA).
mkdir -m 0700 "$BOOTBACK_HOME/tls"
cp "$REMOTE_TLS"/*.pem "$BOOTBACK_HOME/tls/"
rv () { virsh -c "$REMOTE_TCP_URI" -q "$@"; }

## hosts: --ssh kept and shown; an ssh destination is checked
bootback host add r1 "$REMOTE_URI" --ssh "$REMOTE_SSH" >/dev/null
bootback host add nossh "$REMOTE_URI" >/dev/null
bootback host add dead "$REMOTE_URI" --ssh "root@$REMOTE_ADDR:2" >/dev/null
expect_rc 1 bootback host add bad "$REMOTE_URI" --ssh "-oProxyCommand=x"
grep -q "ssh destination '-oProxyCommand=x' is not \[USER@\]HOST\[:PORT\]" "$tmp/err" ||
    fail "an ssh option as destination was not refused"
bootback host add viassh "qemu+ssh://admin@127.0.0.1:2/system" >/dev/null
bootback hosts --json >"$tmp/hosts.json" || true
python3 - "$tmp/hosts.json" "$REMOTE_SSH" <<'EOT' || fail "hosts --json: ssh"
import json, sys
h = {x["name"]: x for x in json.load(open(sys.argv[1]))}
assert h["r1"]["ssh"] == sys.argv[2], h["r1"]
assert h["nossh"]["ssh"] is None, h["nossh"]
assert h["viassh"]["ssh"] == "admin@127.0.0.1:2", h["viassh"]
EOT
bootback host remove viassh >/dev/null

cat >"$tmp/lab.yaml" <<EOF2
name: remote
host: r1
network: { subnet: 10.77.0.0/24, gateway: 10.77.0.1 }
defaults: { boot-timeout: 240s, retries: 3 }
verify:
  - name: web1
    address: 10.77.0.21
    checks:
      - heartbeat
      - tcp 7
      - http http://{address}/health contains '"identity":"web1"'
EOF2

## refused before anything is made: no ssh destination, ssh unreachable
expect_rc 1 bootback lab run "$tmp/lab.yaml" --host nossh --quiet
grep -q "host nossh has no ssh destination.*--ssh" "$tmp/err" || fail "nossh: not named"
expect_rc 1 bootback lab run "$tmp/lab.yaml" --host nosuch --quiet
grep -q "host nosuch: no such host" "$tmp/err" || fail "unknown host: not named"
expect_rc 1 bootback lab run "$tmp/lab.yaml" --host dead --quiet
grep -q "could not verify: host dead does not answer over ssh (root@$REMOTE_ADDR:2)" "$tmp/err" ||
    fail "ssh unreachable: not a clear error"
! grep -qi "VM.*failed\|FAILED" "$tmp/err" "$tmp/out" || fail "ssh unreachable blamed on the VM"
! grep -q "teardown\|is left" "$tmp/err" || fail "ssh unreachable: a run was started and left"
[ -z "$(lab_ids)" ] || fail "ssh unreachable: a lab state is left"
# the definition's host: must be a catalog host too; --host over a group's
# own host: is refused; a sandbox on another host is not supported yet
sed 's/^host: r1$/host: nosuch/' "$tmp/lab.yaml" >"$tmp/nosuch.yaml"
expect_rc 1 bootback lab run "$tmp/nosuch.yaml" --quiet
grep -q "host nosuch: no such host" "$tmp/err" || fail "definition's unknown host: not named"
cat >"$tmp/group.yaml" <<EOF2
name: remote
network: { subnet: 10.77.0.0/24, gateway: 10.77.0.1 }
groups:
  - name: g
    host: r1
    vms: [{ name: web1, address: 10.77.0.21 }]
EOF2
expect_rc 1 bootback lab run "$tmp/group.yaml" --host dead --quiet
grep -q -- "--host dead: group g of lab remote is on host r1: a lab runs on one host" "$tmp/err" ||
    fail "--host against a group's host: not refused"
expect_rc 1 bootback lab up "$tmp/lab.yaml"
grep -q "lab up: a sandbox on another host (r1) is not supported yet" "$tmp/err" ||
    fail "lab up on r1: not refused clearly"
[ -z "$(lab_ids)" ] || fail "a refused lab left a state"
[ -z "$(rv list --all --name)" ] || fail "a refused lab left a domain on the remote"

## the lab on r1
remote_links () { remote_exec ip -o link show | grep -o "bbl[0-9a-f]*[a-z]*" | sort -u || true; }
t0=$(date +%s.%N)
bootback lab run "$tmp/lab.yaml" --report-dir "$tmp/r1" >"$tmp/out1" 2>"$tmp/err1" &
pid=$!
for (( i = 0; i < 600; i++ )); do
    grep -q "web1: started" "$tmp/err1" 2>/dev/null && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
done
id=$(sed -n 's/.*network \([0-9a-f]\{6\}\) isolated.*/\1/p' "$tmp/err1" | head -1)
[ -n "$id" ] || { cat "$tmp/err1"; fail "no network was made"; }
grep -q "network $id isolated (bridge bbl${id}br, .*) on host r1" "$tmp/err1" ||
    fail "the run does not say where its network is"
# On the remote: bridge, veth, namespace, rules, the domain with its NIC there.
remote_links | tee "$tmp/rlinks"
grep -qx "bbl${id}br" "$tmp/rlinks" || fail "no lab bridge on the remote"
grep -qx "bbl${id}h" "$tmp/rlinks" || fail "no lab veth on the remote"
remote_exec iptables -w -S INPUT | grep -q -- "-A INPUT -i bbl${id}br -j DROP" ||
    fail "no INPUT DROP rule on the remote"
remote_ssh ip netns list | grep -q "bootback-lab-$id" || fail "no lab namespace on the remote"
rv list --name | grep -q "^bbl-$id-web1$" || fail "the lab VM does not run on the remote"
rv domiflist "bbl-$id-web1" | grep -q "bridge *bbl${id}br" || fail "the VM's NIC is not on the lab bridge"
# ... and none of it here.
! ip -o link show | grep -q "bbl$id" || fail "a lab interface is on the backup server"
! iptables -w -S | grep -q "bbl$id" || fail "a lab rule is on the backup server"
! ip netns list | grep -q "bootback-lab-$id" || fail "the lab namespace is on the backup server"
! virsh -q list --all --name | grep -q "bbl-$id" || fail "the lab VM runs on the backup server"
# one ssh master for the run (ssh -O exit ends it at teardown)
pgrep -f 'bootback-ssh\.' >/dev/null || fail "no multiplexed ssh connection while the lab runs"
rc=0
wait $pid || rc=$?
t1=$(date +%s.%N)
cat "$tmp/err1" "$tmp/out1"
[ $rc -eq 0 ] || fail "lab run on r1: exit $rc"
grep -q "lab remote: passed (1 VM, 3 checks: 3 passed, 0 failed" "$tmp/out1" ||
    fail "the checks did not all pass"
python3 - "$tmp/r1/report.json" <<'EOT' || fail "report: checks"
import json, sys
r = json.load(open(sys.argv[1]))
c = {x["kind"]: x for x in r["vms"][0]["checks"]}
assert c["heartbeat"]["status"] == "pass", c
assert c["tcp"]["status"] == "pass" and "port 7 accepts" in c["tcp"]["message"], c
assert c["http"]["status"] == "pass" and "HTTP 200" in c["http"]["message"], c
EOT
echo "remote lab run: $(echo "$t1 - $t0" | bc) s"

## nothing left, on either side
assert_remote_clean () {
    [ -z "$(rv list --all --name)" ] || fail "$1: a domain is left on the remote"
    ! rv vol-list default | grep -q "bbl-" || fail "$1: a volume is left on the remote"
    [ -z "$(remote_links)" ] || fail "$1: an interface is left on the remote: $(remote_links)"
    ! remote_exec iptables -w -S | grep -q "bbl" || fail "$1: a rule is left on the remote"
    ! remote_ssh ip netns list | grep -q "bootback-lab-" || fail "$1: a namespace is left on the remote"
    ! pgrep -f 'bootback-ssh\.' >/dev/null || fail "$1: an ssh master is left"
    [ -z "$(ls -d /tmp/bootback-ssh.* 2>/dev/null)" ] || fail "$1: an ssh control directory is left"
}
lab_assert_gone "$id"
assert_remote_clean "after the run"

## a run killed (-9) while its VM boots: lab reap tears it down on the
## remote from its state alone (session, domain, volume, network, the
## dead run's ssh master)
"$BOOTBACK" lab run "$tmp/lab.yaml" --quiet >/dev/null 2>"$tmp/err-k" &
pid=$!
for (( i = 0; i < 600; i++ )); do
    rv list --name | grep -q "^bbl-" && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
done
rv list --name | grep -q "^bbl-" || { cat "$tmp/err-k"; fail "the killed run's VM never started"; }
kill -9 $pid
wait $pid 2>/dev/null || true
kid=$(lab_ids)
[ -n "$kid" ] && [ -n "$(remote_links)" ] || fail "the killed run left nothing to reap?"
bootback lab reap | tee "$tmp/reap"
grep -q "$kid" "$tmp/reap" || fail "lab reap did not name the killed run"
lab_assert_gone "$kid"
assert_remote_clean "after lab reap of a killed run"

## bootback verify --host: the same, a quick definition (no host: of its own)
expect_rc 0 bootback verify web1 --host r1 --address 10.77.0.21 --tcp 7
cat "$tmp/out"
grep -q ": passed (1 VM, [0-9]* checks: [0-9]* passed, 0 failed" "$tmp/out" ||
    fail "verify --host r1 did not pass"
grep -q "isolated (bridge .*) on host r1" "$tmp/err" || fail "verify --host: not on r1"
grep -q "PASS tcp 7" "$tmp/err" || fail "verify --host: the tcp check did not run"
grep -q "PASS ping .*ICMP echo reply from 10.77.0.21" "$tmp/err" ||
    fail "verify --host: no ping from the lab namespace on r1"
assert_remote_clean "after verify --host"

## a broken isolation property on the remote: refused, named
refuse () {
    local prop=$1 hook=$2 rc=0
    BOOTBACK_LAB_TEST_HOOK="$hook" bootback lab run "$tmp/lab.yaml" --quiet \
        >"$tmp/refuse.out" 2>"$tmp/refuse.err" || rc=$?
    [ $rc -eq 1 ] || { cat "$tmp/refuse.err"; fail "$prop broken on the remote: exit $rc"; }
    grep -q "isolation: $prop" "$tmp/refuse.err" ||
        { cat "$tmp/refuse.err"; fail "$prop broken on the remote: not named"; }
    assert_remote_clean "$prop refused"
    echo "refused on the remote ($prop): $(grep -o 'isolation: .*' "$tmp/refuse.err" | cut -c1-100)"
}
refuse input-drop 'iptables -w -D INPUT -i $BOOTBACK_LAB_BRIDGE -j DROP'
refuse arp 'sysctl -q -w net.ipv4.conf.$BOOTBACK_LAB_BRIDGE.arp_ignore=0'
echo "remote lab ok"
