#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# make demo: the main job on the built-in demo VM (images/build/tiny.img),
# in a private state directory, step by step with timings:
#   1. create a repository
#   2. take two restore points of the VM's disk (the second after a change:
#      only the change is stored)
#   3. list them, verify every chunk, check the structure
#   4. serve the latest point over NBD with the nbdkit plugin and read it
#   5. restore it to a qcow2 file and prove it identical to the source
#   6. boot the latest point now (bootback instant) on a private libvirtd
#   7. verify the same point in an isolated lab (bootback verify): heartbeat,
#      ping, HTTP, console screenshot; HTML/JSON/JUnit report
#   8. migrate the instant-recovered VM to "production" storage
#   9. a sandbox of the same point to try a patch: reached from the host
#      through a published port, patched through the guest agent, checked
#      against lab up (the patch breaks a check), reset to the point
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
export PATH=$top/recovery/cli:$PATH
work=${DEMO_DIR:-/var/tmp/bootback-demo}
rm -rf "$work"; mkdir -p "$work"
export BOOTBACK_HOME=$work/home
img=$top/images/build/tiny.img
[ -f "$img" ] || { echo "demo: $img missing (make images)" >&2; exit 1; }

step () { printf '\n\033[1m== %s\033[0m\n' "$*"; }
timed () { local s=$(date +%s.%N); "$@"; printf '   (%.2f s)\n' "$(echo "$(date +%s.%N) - $s" | bc)"; }

step "1. a repository"
timed bootback repo init "$work/repo"

step "2. restore points of the demo VM 'web1' (256 MiB tiny Debian-kernel guest)"
cp --sparse=always "$img" "$work/web1.img"
"$top/images/domain-xml" NAME=web1 DISK_PATH="$work/web1.img" NET_TYPE=bridge NET_SOURCE=prod0 \
    MAC=52:54:00:0d:e0:10 > "$work/web1.xml"      # its production NIC (address 10.77.0.10)
timed bootback import "$work/web1.img" --vm web1 --domain-xml "$work/web1.xml"
# the VM changes a little: a new file in its root filesystem
"$top/images/guest-config" "$work/web1.img" IDENTITY=web1-v2 >/dev/null 2>&1 || \
    dd if=/dev/urandom of="$work/web1.img" bs=64k count=4 seek=1000 conv=notrunc status=none
timed bootback import "$work/web1.img" --vm web1 --domain-xml "$work/web1.xml"

step "3. list, verify every chunk, check the structure"
bootback points
timed bootback repo verify
timed bootback repo check

step "4. serve the latest point over NBD (nbdkit bootback plugin)"
plugin=$top/nbd-plugin/nbdkit-bootback-plugin.so
if [ -f "$plugin" ]; then
    OUT=$work/served.raw nbdkit -U - "$plugin" repo="$work/repo" point=web1@latest disk=vda \
        --run 'nbdinfo "$uri" | grep -E "export-size|block_size_preferred|can_multi_conn"; nbdcopy "$uri" "$OUT"' 
    cmp "$work/served.raw" "$work/web1.img" && echo "   served disk identical to the VM's disk"
fi

step "5. full restore to qcow2, compared with the source"
timed bootback restore web1@latest --to "$work/web1-restored.qcow2" --format qcow2
qemu-img compare "$work/web1.img" "$work/web1-restored.qcow2"

# ---- instant recovery, verification in a lab, migration (issue 7) ----------
# A private libvirtd (tests/lib/libvirtd.sh), stopped with its VMs at exit.
tmp=$work; top_srcdir=$top; _demo_cleanup=()
cleanup_fn () { _demo_cleanup+=("$*"); }
skip () { echo "demo: skipping the VM steps: $*"; exit 0; }
fail () { echo "demo: $*" >&2; exit 1; }
# keep the script's own exit status: the clean-up's last command must not
# decide it
trap 'rc=$?; for c in "${_demo_cleanup[@]}"; do eval "$c" || true; done; exit $rc' EXIT
source "$top/tests/lib/libvirtd.sh"
libvirtd_start

step "6. boot the latest point now (bootback instant), no network"
t0=$(date +%s.%N)
bootback instant web1@latest --network none --json > "$work/instant.json"
session=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$work/instant.json")
python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))
print("   session %s: VM %s running after %.1f s, guest agent heartbeat after %s s" % (
      s["id"], s["name"], s["seconds_to_running"],
      "%.1f" % s["seconds_to_heartbeat"] if s["seconds_to_heartbeat"] else "-"))' "$work/instant.json"
printf '   (%.2f s)\n' "$(echo "$(date +%s.%N) - $t0" | bc)"

step "7. verify the same point in an isolated lab (production address 10.77.0.10)"
t0=$(date +%s.%N)
rc=0
bootback verify web1@latest --address 10.77.0.10 --http 'http://{address}/health' \
    --report-dir "$work/lab-report" --quiet || rc=$?
printf '   (%.2f s, exit %d)\n' "$(echo "$(date +%s.%N) - $t0" | bc)" "$rc"
lab_rc=$rc

step "8. move the instant-recovered VM to production storage, no downtime"
mkdir -p "$work/production"
timed bootback migrate "$session" --to "$work/production"
virsh -q domblklist web1
bootback sessions

step "9. a sandbox of the same point to try a patch: reach it, patch it, check, reset"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/sandbox.yaml" <<EOF
name: sandbox
network: { subnet: 10.77.0.0/24, gateway: 10.77.0.1 }
verify:
  - name: web1
    point: latest
    address: 10.77.0.10
    checks: [heartbeat, "http http://{address}/health contains '\"identity\":\"web1-v2\"'"]
EOF
timed bootback lab up "$work/sandbox.yaml" --lease 30m --publish "127.0.0.1:$port=web1:80" --quiet
sbx=$(bootback lab list --json |
      python3 -c 'import json,sys; print([l["id"] for l in json.load(sys.stdin) if l["lab"] == "sandbox"][0])')
cleanup_fn "bootback lab down $sbx >/dev/null 2>&1"
web () { curl -s --noproxy '*' --max-time 10 "http://127.0.0.1:$port/"; }
echo "   from the host through 127.0.0.1:$port: $(web)"
bootback lab exec "$sbx" web1 -- /bin/sed -i 's/^IDENTITY=.*/IDENTITY=patched/' /etc/bootback/guest.conf
echo "   patched: $(web)"
bootback lab check "$sbx" || echo "   (lab check exit $?: the patch broke a check that passed at lab up)"
timed bootback lab reset "$sbx"
echo "   after lab reset: $(web)"
bootback lab down "$sbx"

step "done"
echo "lab report: $work/lab-report/report.html (also report.json, junit.xml)"
echo "state: $work (repository $work/repo, catalog $BOOTBACK_HOME/catalog.db)"
if [ "$lab_rc" != 0 ]; then
    echo "demo: the lab verification did not pass (exit $lab_rc)" >&2
    exit "$lab_rc"
fi
