#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Undo deletes only what it made (recovery/instant/session.c, invariant 9):
#   - a local start whose overlay name was taken after it was found free
#     (here a dangling symlink, which access() does not see but O_EXCL
#     does) fails, and its undo leaves that file alone;
#   - a remote start killed before its overlay volume was created; a volume
#     of that name then made by someone else survives `instant stop
#     --discard` of the crashed session;
#   - a remote migrate killed before it created its target volume; a
#     volume of that name made by someone else survives the recovery by
#     the next `bootback sessions`;
#   - a remote migrate through `--connect URI` killed after it created its
#     volume: the recovery deletes that volume through the migration's
#     URI, even when the session's own URI no longer connects.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/instant.sh"
source "$top_srcdir/tests/lib/remote.sh"
instant_requires
instant_setup
instant_import_tiny
rv () { virsh -c "$REMOTE_TCP_URI" -q "$@"; }
state_of () { bootback sessions --json | python3 -c 'import json,sys
for s in json.load(sys.stdin):
    if s["name"] == sys.argv[1]: print(s["state"])' "$1"; }

# Local: the overlay's name taken by a link between the check and O_EXCL.
mkdir -m 0700 "$tmp/ov"
ln -s "$tmp/nowhere/precious" "$tmp/ov/tiny-l.vda.qcow2"
expect_fail bootback instant tiny --name tiny-l --network none --overlay-dir "$tmp/ov" \
    --agent-timeout 0 2>"$tmp/err"
cat "$tmp/err"
grep -q "tiny-l.vda.qcow2: File exists" "$tmp/err" || fail "the taken name is not named"
[ -L "$tmp/ov/tiny-l.vda.qcow2" ] || fail "the failed start deleted a file it did not make"

remote_host_start
bootback host add r1 "$REMOTE_URI" >/dev/null

# Remote start killed before its overlay volume existed; the name is then
# someone else's.
expect_fail env BOOTBACK_CRASH_STEP=7 bootback instant tiny --host r1 --name tiny-u \
    --network none --tls-dir "$REMOTE_TLS" --agent-timeout 0 >/dev/null 2>&1
! grep -q "tiny-u.vda.qcow2" <<< "$(rv vol-list default)" || fail "step 7 is after the volume"
rv vol-create-as default tiny-u.vda.qcow2 1M --format raw >/dev/null
bootback instant stop tiny-u --discard
grep -q "tiny-u.vda.qcow2" <<< "$(rv vol-list default)" ||
    fail "stop --discard of a crashed start deleted a volume it did not make"
rv vol-delete --pool default tiny-u.vda.qcow2 >/dev/null

# A running remote session; migrate killed before its volume existed.
bootback instant tiny --host r1 --name tiny-m --network none --tls-dir "$REMOTE_TLS" \
    --agent-timeout 0 >/dev/null
expect_fail env BOOTBACK_CRASH_STEP=8 bootback migrate tiny-m >/dev/null 2>&1
! grep -q "tiny-m-vda.qcow2" <<< "$(rv vol-list default)" || fail "step 8 is after the volume"
rv vol-create-as default tiny-m-vda.qcow2 1M --format raw >/dev/null
bootback sessions >/dev/null
[ "$(state_of tiny-m)" = running ] || fail "the dead migration was not recovered"
grep -q "tiny-m-vda.qcow2" <<< "$(rv vol-list default)" ||
    fail "the recovery of a dead migration deleted a volume it did not make"
rv vol-delete --pool default tiny-m-vda.qcow2 >/dev/null

# migrate --connect (another URI of the host), killed after it made its
# volume; the session's URI no longer connects (its certificates moved):
# the recovery goes through the migration's URI and deletes that volume.
expect_fail env BOOTBACK_CRASH_STEP=9 bootback migrate tiny-m --connect "$REMOTE_TCP_URI" \
    >/dev/null 2>&1
grep -q "tiny-m-vda.qcow2" <<< "$(rv vol-list default)" || fail "step 9 is before the volume"
mv "$REMOTE_TLS" "$REMOTE_TLS.away"
bootback sessions >/dev/null 2>&1 || true
mv "$REMOTE_TLS.away" "$REMOTE_TLS"
! grep -q "tiny-m-vda.qcow2" <<< "$(rv vol-list default)" ||
    fail "the volume of the dead migration stayed (recovered through the session's URI?)"
[ "$(state_of tiny-m)" = running ] || fail "the dead migration was not recovered"

bootback instant stop tiny-m --discard
! grep -q "tiny-m" <<< "$(rv vol-list default)" || fail "stop --discard left a volume"
echo "undo deletes only what it made: ok"
