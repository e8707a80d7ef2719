#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The sandbox loop a developer runs to try a patch on a copy of
# production (issue 21), end to end with the tiny image:
#  1. lab up with a published port;
#  2. HTTP from the host through the published port;
#  3. lab exec a "patch" that changes the web answer, then lab check shows
#     the http check passed at lab up and fails now (exit 2);
#  4. lab reset (to the restore point) brings the old answer back, and
#     lab check is clean again;
#  5. lab cp gets a file out byte-equal;
#  6. lab down: nothing is left (no port, relay, rule, interface,
#     namespace, domain, directory).
# The negative cases (port in use, unknown VM, a VM reaching the host
# through the relay, lab cp of a missing path) are in test-lab-publish.sh
# and test-lab-sandbox-guest.sh.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/lab/lab-test-lib.sh"

lab_test_start curl nc
lab_image web tiny 10.77.0.31
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

cat >"$tmp/lab.yaml" <<EOF
name: loop
network: { subnet: 10.77.0.0/24, gateway: 10.77.0.1 }
defaults: { boot-timeout: 120s, retries: 5, interval: 2s }
verify:
  - name: web
    image: $tmp/web.img
    address: 10.77.0.31
    mac: 52:54:00:b0:07:31
    checks:
      - heartbeat
      - http http://{address}/health contains '"identity":"web"'
EOF

# 1. up, published
bootback lab up "$tmp/lab.yaml" --lease 20m --publish "127.0.0.1:$port=web:80" >"$tmp/up.out" ||
    { cat "$tmp/up.out"; fail "lab up did not come up and pass"; }
id=$(lab_ids)
cleanup_fn "bootback lab down $id >/dev/null 2>&1"
relay=$(bootback lab list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["relay"]["pid"])')

# 2. HTTP from the host
web () { curl -s --noproxy '*' --max-time 10 "http://127.0.0.1:$port/health"; }
web >"$tmp/h0" || fail "no HTTP through the published port"
grep -q '"identity":"web"' "$tmp/h0" || { cat "$tmp/h0"; fail "not the lab VM's answer"; }

# 3. a patch through the agent changes the answer; lab check sees it
bootback lab exec "$id" web -- /bin/sed -i 's/^IDENTITY=.*/IDENTITY=patched/' \
    /etc/bootback/guest.conf || fail "lab exec of the patch failed"
web | grep -q '"identity":"patched"' || fail "the patch did not change the web answer"
expect_rc 2 bootback lab check "$id"
grep -q "http.*pass.*FAIL" "$tmp/out" || { cat "$tmp/out"; fail "lab check does not show http pass -> FAIL"; }

# 4. back to the restore point: the old answer, lab check clean
t0=$(date +%s.%N)
# (the VM boots again, under TCG: the default 2 min for its agent was
# not always enough on a loaded host)
bootback lab reset "$id" --timeout "$(( 600 * slow ))s" || fail "lab reset failed"
echo "lab reset to the point: $(echo "$(date +%s.%N) - $t0" | bc) s"
for (( i = 0; i < 120 * slow; i++ )); do
    web >"$tmp/h1" 2>/dev/null && break
    sleep 1
done
grep -q '"identity":"web"' "$tmp/h1" || { cat "$tmp/h1"; fail "lab reset did not bring the old answer back"; }
expect_rc 0 bootback lab check "$id"

# 5. a file out, byte-equal
bootback lab exec "$id" web -- /bin/sh -c 'head -c 300000 /dev/urandom > /tmp/dump.bin' ||
    fail "lab exec of the dump failed"
bootback lab exec "$id" web -- /bin/sh -c 'sha256sum /tmp/dump.bin' >"$tmp/sum.guest"
bootback lab cp "$id" web:/tmp/dump.bin "$tmp/dump.bin" || fail "lab cp out failed"
[ "$(sha256sum <"$tmp/dump.bin" | cut -d' ' -f1)" = "$(cut -d' ' -f1 "$tmp/sum.guest")" ] ||
    fail "lab cp: the file out differs from the guest's"

# 6. down: nothing left
bootback lab down "$id"
[ ! -e "/proc/$relay" ] || grep -q '^State:.*Z' "/proc/$relay/status" || fail "lab down left the relay"
nc -z 127.0.0.1 "$port" && fail "127.0.0.1:$port still listens after lab down"
lab_assert_gone "$id"
echo "loop: up, HTTP, patch, check, reset, cp, down"
