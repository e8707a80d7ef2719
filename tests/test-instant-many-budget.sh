#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Mass instant recovery with one hostile point: its saved definition
# claims most of --memory-budget and cannot start (4000 vCPUs, which
# libvirt refuses after admission).  The memory it was admitted with goes
# back to the budget when its start fails, so the next point starts; it
# used to stay charged, and every point after it was refused ("memory
# budget: the VMs started use 300 MiB of 400 MiB") with nothing running.
# A third point asks for host memory the budget does not count: 6 GiB
# of video RAM in three qxl devices.  It starts with one, of libvirt's
# default sizes (QEMU's command line), each removal named on stderr.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/instant.sh"
instant_requires
instant_setup
export BOOTBACK_TEST_POOL_GRACE=0

for vm in evil good vid; do
    tiny_copy tiny "$tmp/$vm.img"
    case $vm in
        evil) extra=(MEMORY_MIB=300 VCPUS=4000) ;;
        *) extra=(MEMORY_MIB=256) ;;
    esac
    "$top_srcdir/images/domain-xml" NAME="$vm" DISK_PATH="$tmp/$vm.img" NET_TYPE=none \
        "${extra[@]}" > "$tmp/$vm.xml"
    [ "$vm" = vid ] && sed -i "s|<model type='vga'/>|<model type='qxl' ram='2097152' \
vram='2097152' vgamem='262144'/></video><video><model type='qxl' ram='1048576'/></video>\
<video><model type='qxl' vram='1048576'/>|" "$tmp/$vm.xml"
    bootback import "$tmp/$vm.img" --vm "$vm" --domain-xml "$tmp/$vm.xml" >/dev/null
    rm "$tmp/$vm.img"
done

expect_rc 1 bootback instant evil good --network none --memory-budget 400 \
    --agent-timeout 0 --cache 16M
grep -q "^bootback: evil: not started: " "$tmp/err" || fail "evil started"
grep -q "memory budget" "$tmp/err" && fail "the failed start of evil kept its memory charged"
grep -q "^bootback: good: session [0-9]* (good) running after" "$tmp/err" ||
    fail "good did not start"
grep -qx "good" <<< "$(virsh -q list --name)" || fail "good is not running"
grep -q "^memory: 256 MiB of the 400 MiB budget" "$tmp/out" || { cat "$tmp/out"; fail "budget: $(tail -1 "$tmp/out")"; }
bootback instant stop good --discard >/dev/null

bootback instant vid --network none --memory-budget 400 --agent-timeout 0 --cache 16M \
    >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/err"; fail "vid did not start"; }
for a in ram vram vgamem; do
    grep -q "removed attribute $a of <model type='qxl'.*: not a video memory size up to" \
        "$tmp/err" || { cat "$tmp/err"; fail "the $a of vid's video was kept"; }
done
[ "$(grep -c "removed <video>: one display is enough" "$tmp/err")" = 2 ] ||
    { cat "$tmp/err"; fail "vid's second and third video devices were kept"; }
qemu_log=$LIBVIRTD_DIR/log/qemu/vid.log
[ "$(grep -o '"driver":"qxl[^"]*"' "$qemu_log" | wc -l)" = 1 ] || fail "QEMU got $(grep -o '"driver":"qxl[^"]*"' "$qemu_log")"
grep -q '"ram_size":67108864,"vram_size":67108864,.*"vgamem_mb":16,' "$qemu_log" ||
    fail "QEMU's video memory: $(grep -o '"driver":"qxl.*' "$qemu_log")"
bootback instant stop vid --discard >/dev/null
