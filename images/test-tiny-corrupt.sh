#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# tiny-corrupt boots and serves HTTP, but its data file does not match the
# checksum recorded at build time: /health answers 503 naming the data
# file, and / still answers 200 (the web service itself is fine).
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/qemu.sh"
requires qemu-system-x86_64 curl python3

images_tiny
netns_create 10.77.0.1/24
tiny_copy corrupt "$tmp/g.img" ADDRESS=10.77.0.43
qemu_guest_start g "$tmp/g.img"

# Wait for the web service (/ answers 200), then ask /health.
netns_wait_http http://10.77.0.43/ 60 >/dev/null || {
    cat "$tmp/g.serial"; fail "tiny-corrupt's web service did not answer"; }
netns_http http://10.77.0.43/health >"$tmp/health" || true
cat "$tmp/health"
grep -qx 'HTTP 503' "$tmp/health" || fail "/health is not 503"
grep -q '"status":"corrupt"' "$tmp/health" || fail "/health does not say corrupt"
grep -q '/srv/bootback/data.bin' "$tmp/health" || fail "/health does not name the data file"
"$qga" --socket "$tmp/g.qga" --timeout 30 ping >/dev/null || fail "agent did not answer"
# Recording the data file's actual checksum in the guest makes /health 200
# again: the check really compares the file with its checksum.
good=$(cut -d' ' -f1 <<<"$("$qga" --socket "$tmp/g.qga" cat /srv/bootback/data.sha256)")
[ ${#good} = 64 ] || fail "cannot read the recorded checksum"
"$qga" --socket "$tmp/g.qga" exec /bin/sh -c \
    'cd /srv/bootback && sha256sum data.bin > data.sha256' >/dev/null
netns_http http://10.77.0.43/health | grep -qx 'HTTP 200' ||
    fail "/health not 200 once the checksum matches the data"
echo ok
