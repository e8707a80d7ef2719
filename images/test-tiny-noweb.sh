#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# tiny-noweb boots, its agent and network answer (guest-ping, the echo
# port), but its web service is not started: HTTP connections are refused.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/qemu.sh"
requires qemu-system-x86_64 curl python3 nc

images_tiny
netns_create 10.77.0.1/24
tiny_copy noweb "$tmp/g.img" ADDRESS=10.77.0.42
qemu_guest_start g "$tmp/g.img"

"$qga" --socket "$tmp/g.qga" --timeout 60 ping >/dev/null || {
    cat "$tmp/g.serial"; fail "tiny-noweb's agent did not answer"; }
# The guest has finished booting once rcS says ready.
for (( i = 0; i < 100; i++ )); do
    grep -q 'bootback: ready' "$tmp/g.serial" && break
    sleep 0.2
done
grep -q 'bootback: ready' "$tmp/g.serial" || fail "tiny-noweb did not finish booting"
# The network works (echo port answers) ...
[ "$(echo noweb-echo | netns_exec nc -w 3 -q 1 10.77.0.42 7)" = noweb-echo ] ||
    fail "echo port does not answer: the network is down, not just the web"
# ... yet HTTP does not, for 10 s.
if netns_wait_http http://10.77.0.42/health 10 >/dev/null; then
    fail "tiny-noweb answered HTTP"
fi
code=$(netns_exec curl -s --noproxy '*' --max-time 3 -o /dev/null -w '%{http_code}' \
           http://10.77.0.42/health || true)
[ "$code" = 000 ] || fail "HTTP answered with $code (expected no connection)"
grep -q 'bootback: web:' "$tmp/g.serial" && fail "the web service claims to have started"
echo ok
