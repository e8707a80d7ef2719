#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Instant recovery end to end, through a private libvirtd: import the tiny
# image with its domain XML, `bootback instant`, /health answers from the
# restored VM (probed from the lab namespace), a file written through the
# guest agent; a migration to a file system too small fails cleanly (VM
# still serving, state back to running, nothing left on the target); a
# migration to a good target while an HTTP prober runs and the guest writes:
# 0 failed probes, after the pivot nbdkit is gone, the overlay removed and
# the disk (running and persistent) lives on the target; destroy, boot from
# the target alone: the files written before and during the migration are
# there.  A migration whose process is killed is undone by the next command.
# The session holds its point (prune keeps it) until the migration is done.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/instant.sh"
instant_requires curl

instant_migrate_targets     # $tmp/small (16 MiB) for the failing migration

instant_setup
instant_import_tiny         # the backup is all there is

bootback instant tiny --agent-timeout 120 | tee "$tmp/instant.out"
grep -q "^session 1: tiny running from tiny@" "$tmp/instant.out"
grep -q "VM running after .* s; guest agent heartbeat after .* s" "$tmp/instant.out"
url=http://10.77.0.10/health
netns_wait_http "$url" 120 >/dev/null || fail "no HTTP from the restored VM"
grep -q '"status":"ok"' <<< "$(netns_http "$url")"
grep -q "$BOOTBACK_HOME/overlays/tiny.vda.qcow2" <<< "$(virsh domblklist tiny)"

# A file written (and flushed) through the guest agent.
"$qga" --domain tiny exec /bin/sh -c 'echo written-before > /root/before.txt; sync'

state () {
    bootback sessions --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["state"])'
}

# 0. A target that is a planted symbolic link (dangling: qemu-img would
# create the file it names), or in a directory others can write: refused,
# nothing made.
mkdir -m 0700 "$tmp/planted"
ln -s "$tmp/victim-created" "$tmp/planted/tiny-vda.qcow2"
expect_fail bootback migrate 1 --to "$tmp/planted" 2>"$tmp/err"
grep -q "$tmp/planted/tiny-vda.qcow2 exists already" "$tmp/err" || fail "the planted link: $(cat "$tmp/err")"
[ ! -e "$tmp/victim-created" ] || fail "the planted link was followed"
mkdir -m 1777 "$tmp/shared"
expect_fail bootback migrate 1 --to "$tmp/shared" 2>"$tmp/err"
grep -q "directory $tmp/shared (owner root, mode 1777) can be written by another user" "$tmp/err" ||
    fail "the shared directory: $(cat "$tmp/err")"
[ "$(state)" = running ] || fail "state after a refused target: $(state)"

# 1. Target too small: a clean failure, the VM keeps running from the backup.
expect_fail bootback migrate 1 --to "$tmp/small" 2>"$tmp/err"
cat "$tmp/err"
grep -q "no space left" "$tmp/err" || fail "the error does not say the target is full"
grep -q "qemu-img: .*No space left on device" "$tmp/err" ||
    fail "qemu-img's own message is not passed on"
grep -q "nothing was lost" "$tmp/err"
[ "$(state)" = running ] || fail "state after a failed migration: $(state)"
[ -z "$(ls -A "$tmp/small")" ] || fail "the failed migration left files: $(ls "$tmp/small")"
grep -q overlays/tiny.vda.qcow2 <<< "$(virsh domblklist tiny)" || fail "disk moved after failure"
[ -S "$BOOTBACK_HOME/sessions/1/vda.sock" ] || fail "nbdkit socket gone after failure"
grep -q "^HTTP 200" <<< "$(netns_http "$url")" || fail "VM not serving after the failed migration"
# The same with one full block copy (BOOTBACK_MIGRATE_MODE=full): QEMU's
# mirror fails on the full target, the job is aborted.
BOOTBACK_MIGRATE_MODE=full expect_fail bootback migrate 1 --to "$tmp/small" 2>"$tmp/err"
cat "$tmp/err"
grep -q "block copy of vda .* failed: no space left" "$tmp/err" || fail "full mode: wrong error"
[ "$(state)" = running ] || fail "state after a failed full migration: $(state)"
[ -z "$(ls -A "$tmp/small")" ] || fail "the failed migration left files: $(ls "$tmp/small")"
grep -q "No current block job" <<< "$(virsh blockjob tiny vda 2>&1)" || fail "block job left"
grep -q written-before <<< "$("$qga" --domain tiny exec /bin/sh -c \
    'echo 3 > /proc/sys/vm/drop_caches; cat /root/before.txt')"

# 2. The migrating process dies (kill -9) mid-copy: the next bootback
# command re-attaches, aborts the block job, removes the partial image, and
# the session is running again, from the backup.
# The copy is slowed down (4 MiB/s, divided by $slow: under valgrind each
# `state` takes seconds) so that it is still running when it is killed.
# It is killed once libvirt shows the block copy (the state says
# migrating before: a fixed second was not always enough on a loaded
# host).
block_copy_wait () {
    local i
    for (( i = 0; i < 600 * slow; i++ )); do
        grep -q "Block Copy" <<< "$(virsh blockjob tiny vda 2>&1)" && return 0
        kill -0 "$mpid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
mkdir -p "$tmp/int"
BOOTBACK_MIGRATE_MODE=full BOOTBACK_MIGRATE_BANDWIDTH=$(( 4096 / slow ))K "$BOOTBACK" migrate 1 --to "$tmp/int" >/dev/null 2>&1 &
mpid=$!
for (( i = 0; i < 100; i++ )); do [ "$(state)" = migrating ] && break; sleep 0.1; done
[ "$(state)" = migrating ] || fail "the migration did not start"
block_copy_wait || fail "no block job running"
kill -9 "$mpid"; wait "$mpid" || true
[ "$(state)" = running ] || fail "state after an interrupted migration: $(state)"
grep -q "migration was interrupted" <<< "$(bootback sessions --json)" || fail "no message about the interruption"
grep -q "No current block job" <<< "$(virsh blockjob tiny vda 2>&1)" || fail "block job left"
[ -z "$(ls -A "$tmp/int")" ] || fail "the interrupted migration left $(ls "$tmp/int")"
grep -q overlays/tiny.vda.qcow2 <<< "$(virsh domblklist tiny)" || fail "disk moved"
grep -q "^HTTP 200" <<< "$(netns_http "$url")" || fail "VM not serving after the interrupted migration"

# ... and a migration interrupted (SIGTERM, as Ctrl-C) cleans up at once.
BOOTBACK_MIGRATE_MODE=full BOOTBACK_MIGRATE_BANDWIDTH=$(( 4096 / slow ))K "$BOOTBACK" migrate 1 --to "$tmp/int" >/dev/null 2>"$tmp/err" &
mpid=$!
for (( i = 0; i < 100; i++ )); do [ "$(state)" = migrating ] && break; sleep 0.1; done
block_copy_wait || fail "no block job running"
kill -TERM "$mpid"
if wait "$mpid"; then fail "an interrupted migrate exited 0"; fi
grep -q "interrupted.*nothing was lost" "$tmp/err" || { cat "$tmp/err"; fail "no clear message"; }
[ "$(sqlite3 "$BOOTBACK_HOME/catalog.db" "SELECT state FROM sessions WHERE id = 1")" = running ]
grep -q "No current block job" <<< "$(virsh blockjob tiny vda 2>&1)" || fail "block job left"
[ -z "$(ls -A "$tmp/int")" ] || fail "the interrupted migration left $(ls "$tmp/int")"

# 3. A good target, with an HTTP prober and guest writes running.
prober () {
    local ok=0 bad=0 code
    while [ ! -e "$tmp/stop-probe" ]; do
        code=$(netns_exec curl -s -o /dev/null --max-time 3 -w '%{http_code}' "$url" 2>/dev/null) || true
        if [ "$code" = 200 ]; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
        echo "$ok $bad" > "$tmp/probe.new"; mv "$tmp/probe.new" "$tmp/probe.out"
        sleep 0.1
    done
}
prober & prober_pid=$!
# 60 counter writes, each flushed, over ~6 s; 24 MiB of new data.
"$qga" --domain tiny exec /bin/sh -c \
    '(dd if=/dev/urandom of=/root/big bs=1M count=24 conv=fsync 2>/dev/null;
      i=0; while [ $i -lt 60 ]; do echo $i > /root/during.txt; sync; i=$((i+1)); sleep 0.1; done
     ) </dev/null >/dev/null 2>&1 &'
sleep 1
[ -n "$(ls -A "$tmp/repo/holds")" ] || fail "the running session does not hold its point"
BOOTBACK_PROGRESS=1 bootback migrate tiny --to "$tmp/prod" | tee "$tmp/migrate.out"
# Probe on for 2 s more, and until there were at least 5 probes in all,
# however long each takes (a loaded host, TCG).
sleep 2
for (( i = 0; i < 600 * slow; i++ )); do
    [ -f "$tmp/probe.out" ] && read -r ok bad < "$tmp/probe.out" && [ $(( ok + bad )) -ge 5 ] && break
    sleep 0.1
done
touch "$tmp/stop-probe"; wait $prober_pid
read -r ok bad < "$tmp/probe.out"
echo "probes: $ok ok, $bad failed"
[ "$bad" -eq 0 ] || fail "$bad HTTP probes failed during the migration"
[ "$ok" -ge 5 ] || fail "too few probes ($ok)"
grep -q "^migrated session 1 (tiny)" "$tmp/migrate.out"
target=$tmp/prod/tiny-vda.qcow2
[ -f "$target" ] || fail "no $target"
[ "$(state)" = migrated ]
grep -q '"domain_state": "running"' <<< "$(bootback sessions --json)" || fail "domain_state"

# After the pivot: nbdkit and supervisor gone, overlay and sockets removed,
# the disk (live and persistent) on the target, which has no backing file.
# (Only this test's: other tests on the host have their own session 1.)
sleep 1
if pgrep -af -- "^nbdkit .*$BOOTBACK_HOME/sessions/1/|--home $BOOTBACK_HOME supervise 1 "; then
    fail "nbdkit or the supervisor still running after the pivot"
fi
[ ! -e "$BOOTBACK_HOME/overlays/tiny.vda.qcow2" ] || fail "overlay not removed"
! ls "$BOOTBACK_HOME"/sessions/1/*.sock 2>/dev/null || fail "sockets left"
grep -q "$target" <<< "$(virsh domblklist tiny)" || fail "running disk not on the target"
virsh dumpxml --inactive tiny > "$tmp/inactive.xml"
grep -q "$target" "$tmp/inactive.xml" || fail "persistent definition not updated"
! grep -q "protocol='nbd'" "$tmp/inactive.xml" || fail "persistent definition still reads NBD"
! grep -q "backing file" <<< "$(qemu-img info -U "$target")" || fail "target has a backing file"
# It reads the backup no more: its point is no longer held from prune.
[ -z "$(ls -A "$tmp/repo/holds")" ] || fail "the migrated session still holds its point"

# Wait for the guest's writer, remember what it wrote.
for (( i = 0; i < 100; i++ )); do
    [ "$("$qga" --domain tiny cat /root/during.txt 2>/dev/null)" = 59 ] && break
    sleep 0.2
done
[ "$("$qga" --domain tiny cat /root/during.txt)" = 59 ] || fail "guest writer did not finish"
sum=$("$qga" --domain tiny exec /bin/sh -c 'sha256sum /root/big' | cut -d' ' -f1)

# Power off hard and boot from the target alone.
virsh -q destroy tiny
[ ! -e "$BOOTBACK_HOME/overlays/tiny.vda.qcow2" ]
virsh -q start tiny
netns_wait_http "$url" 120 >/dev/null || fail "no HTTP after booting from the target"
[ "$("$qga" --timeout 60 --domain tiny cat /root/before.txt)" = written-before ]
[ "$("$qga" --domain tiny cat /root/during.txt)" = 59 ] || fail "writes during migration lost"
[ "$("$qga" --domain tiny exec /bin/sh -c 'sha256sum /root/big' | cut -d' ' -f1)" = "$sum" ] ||
    fail "data written during migration differs"
# A migrated session is not a session any more.
expect_fail bootback instant stop 1 2>"$tmp/err"
grep -q "migrated" "$tmp/err"
echo "instant + migrate ok"
