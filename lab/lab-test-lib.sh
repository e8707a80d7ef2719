# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Helpers for the lab tests (tests/test-lab-*.sh), sourced after
# tests/functions.sh (it sources tests/lib/images.sh and libvirtd.sh):
#
#   lab_test_start [--repo] CMD...
#                           what every lab test needs first: python3,
#                           qemu-img, iptables, ip and CMD... (else skip),
#                           the tiny image, a private libvirtd, and with
#                           --repo a fresh repository in $tmp/repo
#   lab_image NAME VARIANT ADDRESS [KEY=VALUE...]
#                           a tiny copy in $tmp/NAME.img with its address
#   lab_point_files NAME N  a production VM to import: $tmp/NAME.img (tiny,
#                           10.77.0.N) and $tmp/NAME.xml (bridge prodbr0,
#                           MAC 52:54:00:b0:07:N)
#   lab_ids                 ids of the labs in $BOOTBACK_HOME (lab list)
#   lab_assert_gone ID...   nothing of these labs is left: no domain, no
#                           instant session, no bridge/veth/tap, no namespace,
#                           no iptables rule, no run directory, no overlay
#   lab_report_check DIR    the reports in DIR are valid: JSON parses, JUnit
#                           validates against verify/junit.xsd
#   lab_chromium HTML PNG   render HTML in headless Chromium to PNG and
#                           print its DOM (skips the test without chromium)

source "$top_srcdir/tests/lib/images.sh"
source "$top_srcdir/tests/lib/libvirtd.sh"

lab_test_start () {
    local repo=
    if [ "${1:-}" = --repo ]; then repo=1; shift; fi
    requires python3 qemu-img iptables ip "$@"
    images_tiny
    libvirtd_start
    [ -z "$repo" ] || bootback repo init "$tmp/repo" >/dev/null
}

lab_image () {
    local name=$1 variant=$2 addr=$3
    shift 3
    tiny_copy "$variant" "$tmp/$name.img" ADDRESS="$addr" IDENTITY="$name" "$@"
}

# lab_sandbox_one NAME PREFIX: a sandbox lab NAME on PREFIX.0/24 (gateway
# .1) with one tiny VM at PREFIX.21, up for 20 min and taken down at the
# end; sets id (the run), dom (the VM's domain) and br (the lab's bridge)
lab_sandbox_one () {
    local name=$1 net=$2
    lab_image a tiny "$net.21"
    cat >"$tmp/lab.yaml" <<EOF
name: $name
network: { subnet: $net.0/24, gateway: $net.1 }
defaults: { boot-timeout: 120s, retries: 5, interval: 2s }
verify:
  - name: vm
    image: $tmp/a.img
    address: $net.21
    checks: [heartbeat]
EOF
    bootback lab up "$tmp/lab.yaml" --lease 20m --json >"$tmp/up.json" ||
        fail "the sandbox did not come up"
    id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run"])' "$tmp/up.json")
    dom=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["vms"][0]["domain"])' \
              "$tmp/up.json")
    cleanup_fn "bootback lab down $id >/dev/null 2>&1"
    br=bbl${id}br
}

lab_point_files () {
    local name=$1 n=$2
    lab_image "$name" tiny "10.77.0.$n"
    "$top_srcdir/images/domain-xml" NAME="$name" DISK_PATH="$tmp/$name.img" NET_TYPE=bridge \
        NET_SOURCE=prodbr0 MAC="52:54:00:b0:07:$n" >"$tmp/$name.xml"
}

lab_ids () {
    bootback lab list --json | python3 -c '
import json, sys
for l in json.load(sys.stdin): print(l["id"])'
}

lab_assert_gone () {
    local id rules
    for id in "$@"; do
        if grep -q "^bbl-$id-" <<< "$(virsh -q list --all --name)"; then
            virsh -q list --all; fail "lab $id: a domain is left"
        fi
        if grep -q "bbl$id" <<< "$(ip -o link show)"; then
            ip -o link show | grep "bbl$id"; fail "lab $id: an interface is left"
        fi
        if grep -q "bootback-lab-$id" <<< "$(ip netns list)"; then
            fail "lab $id: its namespace is left"
        fi
        rules=$(iptables -w -S; iptables -w -t raw -S; ip6tables -w -t raw -S)
        if grep -q "bbl$id" <<< "$rules"; then
            grep "bbl$id" <<< "$rules"; fail "lab $id: an iptables rule is left"
        fi
        if [ -e "$BOOTBACK_HOME/labs/$id" ]; then
            ls -la "$BOOTBACK_HOME/labs/$id"; fail "lab $id: its run directory is left"
        fi
        # (sessions --json read whole first: python's exit status says)
        if [ -e "$BOOTBACK_HOME/catalog.db" ] &&
               ! python3 -c '
import json, sys
left = [s for s in json.loads(sys.argv[2])
        if s["name"].startswith("bbl-" + sys.argv[1] + "-")
        and s["state"] not in ("stopped", "migrated")]
print(left)
sys.exit(1 if left else 0)' "$id" "$(bootback sessions --json)"; then
            fail "lab $id: an instant session is left"
        fi
    done
    # No overlay or socket anywhere under the state directory's labs/.
    if grep -q . <<< "$(find "$BOOTBACK_HOME/labs" -name '*.qcow2' -o -type s 2>/dev/null)"; then
        find "$BOOTBACK_HOME/labs"; fail "an overlay or socket is left in labs/"
    fi
}

lab_report_check () {
    local dir=$1
    python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$dir/report.json" ||
        fail "report.json does not parse"
    xmllint --noout --schema "$top_srcdir/verify/junit.xsd" "$dir/junit.xml" ||
        fail "junit.xml does not validate against verify/junit.xsd"
    grep -q '</html>' "$dir/report.html" || fail "report.html is not complete"
}

lab_chromium () {
    local html=$1 png=$2 c
    c=$(command -v chromium || command -v chromium-browser || true)
    [ -n "$c" ] || skip "chromium is not installed (apt-get install chromium)"
    local flags=(--headless --no-sandbox --disable-gpu --disable-background-networking
                 --disable-component-update --disable-sync --no-first-run
                 --disable-default-apps --user-data-dir="$tmp/chromium-profile")
    timeout 120 "$c" "${flags[@]}" --window-size=1280,1600 --screenshot="$png" \
        "file://$html" >"$tmp/chromium.log" 2>&1 ||
        { tail -n 20 "$tmp/chromium.log"; fail "chromium could not render $html"; }
    timeout 120 "$c" "${flags[@]}" --dump-dom "file://$html" 2>>"$tmp/chromium.log" ||
        { tail -n 20 "$tmp/chromium.log"; fail "chromium could not load $html"; }
}
