#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A sandbox reached from outside, its checks again, and its quotas
# (docs/design.md, "Lab network"; issue 21 items 1, 4, 5):
#  1. refusals before anything is made: a VM not in the lab, a published
#     port in use (named, nothing left: no lab, no relay, the port still
#     the other listener's), publish: of a VM without address (the line);
#  2. lab up --publish 127.0.0.1:P=web:80 and a host address: HTTP from
#     the host through both; with a web console running on 127.0.0.1, a
#     warning for the first only (its cookie would reach the guest); lab list --json shows owner, expiry, memory,
#     published ports and a live relay, which runs as nobody, with
#     no_new_privs, in the lab namespace, and closes a 65th connection;
#  3. the lab VM cannot reach the host through the relay's addresses
#     (the namespace's gateway and the host address, from the guest);
#  4. --max-sandboxes and the memory budget refuse a second sandbox;
#  5. lab check: isolation proven again with the relay up, every check as
#     at lab up; after the guest's web answer changes, exit 2 with the
#     http check passed -> FAIL, and a section in report.html;
#  6. lab down: no relay process, the ports closed, nothing of the lab.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/lab/lab-test-lib.sh"
qga=$top_srcdir/tests/lib/qga

lab_test_start curl nc
lab_image web tiny 10.77.0.21

free_port () {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
port=$(free_port)
port2=$(free_port)
busy=$(free_port)

cat >"$tmp/lab.yaml" <<EOF
name: pub
network: { subnet: 10.77.0.0/24, gateway: 10.77.0.1 }
defaults: { boot-timeout: 120s, retries: 5, interval: 2s }
verify:
  - name: web
    image: $tmp/web.img
    address: 10.77.0.21
    mac: 52:54:00:b0:07:21
    checks:
      - heartbeat
      - http http://{address}/health contains '"status":"ok"'
EOF

# ---- 1. refusals before anything is made -----------------------------------
expect_rc 1 bootback lab up "$tmp/lab.yaml" --lease 10m --publish "127.0.0.1:$port=nosuch:80"
grep -q "no VM 'nosuch' in the lab" "$tmp/err" || fail "an unknown VM is not named"
expect_rc 1 bootback lab up "$tmp/lab.yaml" --lease 10m --publish "$port=web"
grep -q "expected VM:PORT" "$tmp/err" || fail "a malformed --publish is not explained"
# A port in use: another listener holds it.
python3 -c 'import socket,sys,time
s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(1); time.sleep(600)' "$busy" &
busy_pid=$!
cleanup_fn "kill $busy_pid 2>/dev/null; true"
for (( i = 0; i < 50; i++ )); do
    nc -z 127.0.0.1 "$busy" 2>/dev/null && break
    sleep 0.1
done
expect_rc 1 bootback lab up "$tmp/lab.yaml" --lease 10m --publish "127.0.0.1:$busy=web:80"
grep -q "publish 127.0.0.1:$busy: cannot listen.*in use" "$tmp/err" ||
    fail "a port in use is not named"
[ -z "$(lab_ids)" ] || fail "a refused lab up left a lab"
[ -z "$(virsh -q list --all --name)" ] || fail "a refused lab up started a VM"
kill -0 "$busy_pid" || fail "the other listener is gone"
# An address the host does not hold cannot be listened on.
expect_rc 1 bootback lab up "$tmp/lab.yaml" --lease 10m --publish "192.0.2.77:$port=web:80"
grep -q "publish 192.0.2.77:$port: cannot listen: Cannot assign requested address" "$tmp/err" ||
    fail "an address not of the host is not refused"
# publish: in the definition, of a VM without an address: the line named.
sed -e '/address:/d' -e 's/^verify:/publish: ["8080=web:80"]\nverify:/' "$tmp/lab.yaml" >"$tmp/noaddr.yaml"
expect_rc 2 bootback lab validate "$tmp/noaddr.yaml"
grep -q "noaddr.yaml:4: publish 127.0.0.1:8080: VM web has no address" "$tmp/err" ||
    fail "publish: of a VM without address: not refused with its line"
echo "refused: unknown VM, malformed, port in use, not a host address, VM without address"

# ---- 2. up with published ports ----------------------------------------------
# A host address outside the lab (a documentation range on a veth pair of
# this test) to publish on as well.
cleanup_fn "ip link del bbt$$h 2>/dev/null; true"
ip link add "bbt$$h" type veth peer name "bbt$$o"
ip addr add 198.51.100.1/24 dev "bbt$$h"
ip link set "bbt$$h" up
ip link set "bbt$$o" up
# A web console running on 127.0.0.1 (its record, web.listen): publishing
# there is warned about (a browser sends the console's cookie to the
# guest), on the other address not.
"$BOOTBACK" web --listen 127.0.0.1:0 2>"$tmp/web.log" &
web_pid=$!
cleanup_fn "kill $web_pid 2>/dev/null || true"
wait_log "$tmp/web.log" "listening on" "$web_pid" || fail "bootback web: $(cat "$tmp/web.log")"
grep -q "^$web_pid 127.0.0.1:0$" "$BOOTBACK_HOME/web.listen" ||
    fail "bootback web does not record its address: $(cat "$BOOTBACK_HOME/web.listen")"
bootback lab up "$tmp/lab.yaml" --lease 20m --max-sandboxes 1 \
    --publish "127.0.0.1:$port=web:80" --publish "198.51.100.1:$port2=web:80" \
    >"$tmp/up.out" 2>"$tmp/up.err" ||
    { cat "$tmp/up.out" "$tmp/up.err"; fail "lab up did not come up and pass"; }
cat "$tmp/up.out" "$tmp/up.err"
grep -q "warning: publish 127.0.0.1:$port: the web console (pid $web_pid) listens on 127.0.0.1" \
    "$tmp/up.err" || fail "no warning about publishing on the console's address"
if grep -q "warning: publish 198.51.100.1" "$tmp/up.err"; then
    fail "a warning about an address the console does not listen on"
fi
kill "$web_pid"
wait "$web_pid" || fail "bootback web did not stop cleanly"
[ ! -e "$BOOTBACK_HOME/web.listen" ] || fail "bootback web left its record"
id=$(lab_ids)
cleanup_fn "bootback lab down $id >/dev/null 2>&1"
grep -q "published: 127.0.0.1:$port -> web port 80" "$tmp/up.out" ||
    fail "lab up does not say the published port"
curl -s --noproxy '*' --max-time 10 "http://127.0.0.1:$port/health" >"$tmp/h1" ||
    fail "no HTTP through the published port 127.0.0.1:$port"
grep -q '"identity":"web"' "$tmp/h1" || { cat "$tmp/h1"; fail "not the lab VM's answer"; }
curl -s --noproxy '*' --max-time 10 "http://198.51.100.1:$port2/health" >"$tmp/h2" ||
    fail "no HTTP through the published port 198.51.100.1:$port2"
grep -q '"identity":"web"' "$tmp/h2" || fail "not the lab VM's answer on 198.51.100.1"
# Several at once, then all closed (the relay holds none of them).
pids=()
for i in 1 2 3 4 5; do
    curl -s --noproxy '*' --max-time 10 -o "$tmp/p$i" "http://127.0.0.1:$port/" &
    pids+=($!)
done
wait "${pids[@]}"
for i in 1 2 3 4 5; do grep -q "bootback tiny guest web" "$tmp/p$i" || fail "parallel request $i"; done
echo "HTTP from the host through 127.0.0.1:$port and 198.51.100.1:$port2"
# Bounded: with 64 connections open, the next is closed at once; once
# they go, a request is served again.
python3 - "$port" <<'EOP' || fail "the relay does not bound its connections"
import socket, sys, time
port = int(sys.argv[1])
held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(64)]
time.sleep(1)
extra = socket.create_connection(("127.0.0.1", port), timeout=5)
t = time.time(); data = extra.recv(100); took = time.time() - t
assert data == b"" and took < 3, (data, took)
for s in held: s.close()
time.sleep(1)
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(b"GET / HTTP/1.0\r\n\r\n")
assert b"bootback tiny guest web" in s.makefile("rb").read(), "no answer after"
print("65th connection closed at once (%.2f s); served again after" % took)
EOP

bootback lab list
bootback lab list --json >"$tmp/list.json"
relay=$(python3 - "$tmp/list.json" "$(id -un)" "$port" <<'EOP'
import json, sys, time
l = json.load(open(sys.argv[1]))[0]
assert l["owner"] == sys.argv[2], l["owner"]
assert l["owner_uid"] == 0 or l["owner"] != "root"
assert l["expires"] > time.time() + 15 * 60, l["expires"]
assert l["expires_at"], l
assert l["memory_mib"] == 256, l["memory_mib"]
p = {x["listen"]: x for x in l["published"]}
x = p["127.0.0.1:" + sys.argv[3]]
assert x["vm"] == "web" and x["port"] == 80 and x["target"] == "10.77.0.21:80", x
assert len(p) == 2, p
assert l["relay"]["alive"] is True, l["relay"]
print(l["relay"]["pid"])
EOP
) || fail "lab list --json does not show owner, expiry, memory, ports, relay"
grep -q "^Uid:.*65534" "/proc/$relay/status" || fail "the relay does not run as nobody"
grep -q "^NoNewPrivs:.*1" "/proc/$relay/status" || fail "the relay has no no_new_privs"
[ "$(readlink "/proc/$relay/ns/net")" = "$(ip netns exec "bootback-lab-$id" readlink /proc/self/ns/net)" ] ||
    fail "the relay is not in the lab namespace"
echo "relay $relay: nobody, no_new_privs, in the lab namespace"

# ---- 3. the VM cannot come back through the relay's addresses ------------------
dom=$(virsh -q list --name | grep "^bbl-$id-")
in_vm () { "$qga" --domain "$dom" --timeout 60 exec /bin/sh -c "$1" 2>&1 || true; }
in_vm 'ping -c 1 -W 2 10.77.0.1' | grep -q '1 packets received' ||
    fail "the VM does not reach its gateway (the control)"
in_vm 'ip route add 198.51.100.0/24 dev eth0' >/dev/null
out=$(in_vm "for a in 10.77.0.1:$port 10.77.0.1:$port2 198.51.100.1:$port2 198.51.100.1:$port; do
               echo x | nc -w 2 \${a%:*} \${a#*:} && echo CONNECTED \$a; done")
echo "from the VM: ${out:-nothing connected}"
! grep -q CONNECTED <<< "$out" || fail "the lab VM reached the host through a relay address: $out"

# ---- 4. quotas ---------------------------------------------------------------
sed 's/name: pub$/name: pub2/' "$tmp/lab.yaml" >"$tmp/lab2.yaml"
expect_rc 1 bootback lab up "$tmp/lab2.yaml" --lease 10m --max-sandboxes 1
grep -q "1 sandbox is up already (256 MiB), the most allowed (--max-sandboxes 1)" "$tmp/err" ||
    fail "--max-sandboxes does not refuse with the count"
expect_rc 1 bootback lab up "$tmp/lab2.yaml" --lease 10m --memory-budget 400M
grep -q "memory budget is taken: 256 of 400 MiB used by other lab runs, this one needs 256 MiB" "$tmp/err" ||
    fail "the memory budget does not refuse with the numbers"
[ "$(lab_ids)" = "$id" ] || fail "a refused sandbox left a lab"

# ---- 5. lab check ------------------------------------------------------------------
expect_rc 0 bootback lab check "$id"
cat "$tmp/out"
grep -q "isolation: proven" "$tmp/out" || fail "lab check does not prove isolation with the relay up"
grep -Eq "^  web +http http://\{address\}/health +pass +pass " "$tmp/out" ||
    fail "lab check does not show the http check as at lab up"
# The "patch": the data file changes, /health answers 503.
"$qga" --domain "$dom" --timeout 60 exec /bin/sh -c 'echo patched >> /srv/bootback/data.bin' ||
    fail "guest-exec"
expect_rc 2 bootback lab check "$id"
cat "$tmp/out"
grep -Eq "^  web +http http://\{address\}/health +pass +FAIL .*HTTP 503" "$tmp/out" ||
    fail "lab check does not show the http check passed -> FAIL"
grep -q "1 regressed" "$tmp/out" || fail "lab check does not count the regression"
expect_rc 2 bootback lab check "$id" --json
python3 - "$tmp/out" <<'EOP' || fail "lab check --json"
import json, sys
k = json.load(open(sys.argv[1]))
assert k["isolation"] == "proven" and k["regressions"] == 1, k
r = [c for c in k["checks"] if c["kind"] == "http"][0]
assert r["before"] == "pass" and r["now"] == "fail" and r["regressed"], r
h = [c for c in k["checks"] if c["kind"] == "heartbeat"][0]
assert h["before"] == "pass" and h["now"] == "pass" and not h["regressed"], h
EOP
rdir=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["report_dir"])' "$tmp/list.json")
[ "$(grep -c '<section class="recheck">' "$rdir/report.html")" = 3 ] ||
    fail "report.html does not have a section per lab check"
grep -q '</html>' "$rdir/report.html" || fail "report.html is not complete"
python3 -c 'import json,sys; assert len(json.load(open(sys.argv[1]))) == 3' "$rdir/recheck.json" ||
    fail "recheck.json does not hold the three checks"
# Signed again: the report's signatures still hold.
expect_rc 0 bootback report verify "$rdir/report.html" "$rdir/recheck.json" "$rdir/report.json"

# ---- 6. reap: the lease ends, the relay goes with the sandbox ---------------------
python3 - "$BOOTBACK_HOME/labs/$id/state.json" <<'EOP'
import json, sys, time
s = json.load(open(sys.argv[1])); s["expires"] = int(time.time()) - 1
json.dump(s, open(sys.argv[1], "w"))
EOP
bootback lab reap | grep -q "reaped lab $id (pub): lease ended" || fail "lab reap did not reap the sandbox"
relay_gone () {   # gone, or a zombie its new parent (init) has not reaped yet
    [ ! -e "/proc/$1" ] || grep -q '^State:.*Z' "/proc/$1/status"
}
relay_gone "$relay" || fail "lab reap left the relay $relay"
nc -z 127.0.0.1 "$port" && fail "127.0.0.1:$port still listens after lab reap"
nc -z 198.51.100.1 "$port2" && fail "198.51.100.1:$port2 still listens after lab reap"
lab_assert_gone "$id"
echo "lab reap: relay and ports gone"

# ---- 7. down: nothing left ----------------------------------------------------------
# The same port again (it was closed), in a sandbox of its own.
bootback lab up "$tmp/lab.yaml" --lease 10m --publish "127.0.0.1:$port=web:80" --quiet --json \
    >"$tmp/up2.json" || { cat "$tmp/up2.json"; fail "the second lab up failed"; }
python3 -c 'import json,sys; p = json.load(open(sys.argv[1]))["published"]
assert p == ["127.0.0.1:%s=web:80" % sys.argv[2]], p' "$tmp/up2.json" "$port" ||
    fail "lab up --json does not list the published port"
id=$(lab_ids)
relay=$(bootback lab list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["relay"]["pid"])')
curl -s --noproxy '*' --max-time 10 "http://127.0.0.1:$port/health" | grep -q '"identity":"web"' ||
    fail "no HTTP through the published port of the second sandbox"
bootback lab check "$id" | grep -q "published ports: relay $relay running" ||
    fail "lab check does not say the relay runs"
# A relay that died is shown as such.
kill -KILL "$relay"
for (( i = 0; i < 50; i++ )); do relay_gone "$relay" && break; sleep 0.1; done
bootback lab list --json | python3 -c 'import json,sys
r = json.load(sys.stdin)[0]["relay"]; assert r["alive"] is False, r' ||
    fail "lab list does not show the dead relay"
bootback lab down "$id"
relay_gone "$relay" || fail "lab down left the relay $relay"
nc -z 127.0.0.1 "$port" && fail "127.0.0.1:$port still listens after lab down"
lab_assert_gone "$id"
echo ok
