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
# Later stages (instant recovery, lab verification, migration) extend this.
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
"$top/images/domain-xml" NAME=web1 DISK_PATH="$work/web1.img" NET_TYPE=none > "$work/web1.xml"
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

step "done"
echo "state: $work (repository $work/repo, catalog $BOOTBACK_HOME/catalog.db)"
