#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Delta migrate-back (`bootback migrate SESSION --onto EXISTING`), through
# a private libvirtd (TCG): a stale copy of the tiny VM's disk (the point
# with 7 chunks changed, among them holes where the point has data and
# data where it has zeros; one rewritten with its own content), the point
# booted instantly, the guest writes; refused without touching anything: a
# disk of another size, a qcow2 image of another size or with a backing
# file, a vmdk image, --format, a symbolic link, a
# disk another domain uses, the session's own overlay, a disk (or restore
# TO) under a directory another user can write, a qcow2 disk (or restore's
# .part) whose name leads elsewhere when qemu-nbd opens it; a migrate killed in
# the middle of the delta (undone by the next `bootback sessions`), one
# interrupted (SIGTERM), one whose block copy is refused after the delta,
# one killed while the block copy mirrors the guest's writes: each time
# the stale disk is byte for byte as it was (cmp).  Then the migration
# itself, the guest paused: exactly the 7 differing chunks written, the
# disk equal to the guest's view of its disk (what a full migration
# gives), and the guest runs on it with what it wrote.  Last, a migrate
# killed mid-delta is undone by `instant stop` of its session too.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/instant.sh"
instant_requires cmp python3

instant_setup
instant_import_tiny

M=1048576
stale=$tmp/prod/tiny.img
mkdir -p "$tmp/prod"
bootback restore tiny --to "$stale" --format raw
# The stale disk: 7 chunks (1 MiB, the repository's chunk size) differ from
# the point: random data over chunks 1, 100 and 200, 4 KiB inside chunk 50,
# a hole punched over the first chunk of data after chunk 2 and another
# over the second half of the next one (a hole reads as zeros: it must be
# noticed too), and random data over the first zero chunk (a hole of the
# point's) after chunk 2; chunk 150 is rewritten with its own content (not
# a difference).
read -r zap half zero <<< "$(python3 - "$stale" <<'EOF'
import sys
f = open(sys.argv[1], "rb")
data, zero = [], None
for c in range(3, 256):
    f.seek(c << 20)
    b = f.read(1 << 20)
    if c in (50, 100, 150, 200):
        continue
    if any(b):
        data.append(c)
    elif zero is None:
        zero = c
print(data[0], data[1], zero)
EOF
)"
[ -n "$zero" ] || fail "no data chunks and zero chunk found in the tiny image"
for c in 1 100 200 $zero; do
    dd if=/dev/urandom of="$stale" bs=$M seek=$c count=1 conv=notrunc status=none
done
dd if=/dev/urandom of="$stale" bs=1 seek=$(( 50 * M + 12345 )) count=4096 conv=notrunc status=none
fallocate -p -o $(( zap * M )) -l $M "$stale"
fallocate -p -o $(( half * M + M / 2 )) -l $(( M / 2 )) "$stale"
dd if="$stale" of="$tmp/c150" bs=$M skip=150 count=1 status=none
dd if="$tmp/c150" of="$stale" bs=$M seek=150 count=1 conv=notrunc status=none
cp --sparse=always "$stale" "$tmp/stale.orig"
journal=$tmp/prod/.tiny.img.bootback-undo

state () {
    bootback sessions --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["state"])'
}
untouched () {
    bootback sessions >/dev/null            # re-attaches: undoes a dead migrate
    cmp "$stale" "$tmp/stale.orig" || fail "$1: the stale disk changed"
    [ ! -e "$journal" ] || fail "$1: the undo journal is left"
    [ "$(state)" = running ] || fail "$1: state $(state)"
}

bootback instant tiny --agent-timeout 120 > "$tmp/instant.out"
url=http://10.77.0.10/health
netns_wait_http "$url" 120 >/dev/null || fail "no HTTP from the restored VM"
"$qga" --domain tiny exec /bin/sh -c \
    'dd if=/dev/urandom of=/root/data bs=1M count=24 2>/dev/null; sha256sum /root/data > /root/data.sum; sync'

# 1. Refused, nothing touched.
truncate -s $(( 257 * M )) "$tmp/big.img"
expect_fail bootback migrate 1 --onto "$tmp/big.img" 2>"$tmp/err"; cat "$tmp/err"
grep -q "big.img is .* (269484032 bytes), disk vda of tiny@.* (268435456 bytes): --onto needs a disk of the same size" "$tmp/err" ||
    fail "wrong size: no clear error"
qemu-img create -q -f qcow2 "$tmp/q.qcow2" 257M
expect_fail bootback migrate 1 --onto "$tmp/q.qcow2" --format qcow2 2>"$tmp/err"; cat "$tmp/err"
grep -q "q.qcow2 is a qcow2 image of virtual size .* (269484032 bytes), disk vda is .* (268435456 bytes): --onto needs a disk of the same size" "$tmp/err" ||
    fail "qcow2 target of another size: no clear error"
qemu-img create -q -f qcow2 -b "$tmp/q.qcow2" -F qcow2 "$tmp/qb.qcow2" 256M
expect_fail bootback migrate 1 --onto "$tmp/qb.qcow2" --format qcow2 2>"$tmp/err"; cat "$tmp/err"
grep -q "qb.qcow2 has a backing file ($tmp/q.qcow2): --onto takes a standalone qcow2 image" "$tmp/err" ||
    fail "qcow2 target with a backing file: no clear error"
qemu-img create -q -f vmdk "$tmp/v.vmdk" 256M
expect_fail bootback migrate 1 --onto "$tmp/v.vmdk" 2>"$tmp/err"; cat "$tmp/err"
grep -q "v.vmdk starts like a vmdk image: say its format (--format raw or --format qcow2" "$tmp/err" ||
    fail "vmdk target: no clear error"
expect_fail bootback migrate 1 --onto "$stale" --format qcow2 2>"$tmp/err"; cat "$tmp/err"
grep -q -- "tiny.img is not a qcow2 image (none by its header): --format qcow2 refused" "$tmp/err"
expect_fail bootback migrate 1 --onto "$stale" --format vmdk 2>"$tmp/err"; cat "$tmp/err"
grep -q -- "--format vmdk: use qcow2 or raw" "$tmp/err"
# a raw disk whose guest wrote a qcow2 header (of the right size) at its
# start is not taken for a qcow2 without --format qcow2
qemu-img create -q -f qcow2 "$tmp/h.qcow2" 256M
cp "$stale" "$tmp/fake.img"
dd if="$tmp/h.qcow2" of="$tmp/fake.img" bs=64k count=1 conv=notrunc status=none
cp "$tmp/fake.img" "$tmp/fake.before"
expect_fail bootback migrate 1 --onto "$tmp/fake.img" 2>"$tmp/err"; cat "$tmp/err"
grep -q "fake.img starts like a qcow2 image: say its format" "$tmp/err" ||
    fail "a raw disk with a guest-written qcow2 header was not refused"
cmp "$tmp/fake.img" "$tmp/fake.before" || fail "the refused disk was changed"
rm -f "$tmp/fake.img" "$tmp/fake.before" "$tmp/h.qcow2"
ln -s "$stale" "$tmp/prod/link.img"
expect_fail bootback migrate 1 --onto "$tmp/prod/link.img" 2>"$tmp/err"; cat "$tmp/err"
grep -q "link.img is a symbolic link" "$tmp/err" || fail "symlink: no clear error"
expect_fail bootback migrate 1 --onto "$BOOTBACK_HOME/overlays/tiny.vda.qcow2" 2>"$tmp/err"
cat "$tmp/err"
grep -q "is the session's own overlay of vda" "$tmp/err" || fail "own overlay accepted"
cp --sparse=always "$stale" "$tmp/used.img"
"$top_srcdir/images/domain-xml" NAME=other DISK_PATH="$tmp/used.img" NET_SOURCE="$NETNS_BRIDGE" \
    > "$tmp/other.xml"
virsh -q define "$tmp/other.xml" >/dev/null
expect_fail bootback migrate 1 --onto "$tmp/used.img" 2>"$tmp/err"; cat "$tmp/err"
grep -q "used.img is in use by domain other (disk vda): refused" "$tmp/err" ||
    fail "a disk of another domain accepted"
virsh -q undefine other >/dev/null
cmp "$tmp/used.img" "$tmp/stale.orig"
# A target under a directory another user can write (others may write
# it; it is nobody's; one above it is writable by others and not sticky):
# they could rename a link to a host file over it after the checks, and
# qemu-nbd or QEMU would write there.  Refused before anything is opened,
# naming the directory; restore's TO likewise.  A directory of ours in a
# sticky one (/tmp's kind) is fine.
mkdir -m 0777 "$tmp/shared" "$tmp/open"
mkdir -m 0755 "$tmp/evil" "$tmp/open/mine"
chown nobody "$tmp/evil"
for t in shared:0777:root evil:0755:nobody open/mine:0777:root; do
    IFS=: read -r d mode own <<< "$t"
    refused=$tmp/${d%/mine}
    cp --sparse=always "$stale" "$tmp/$d/tiny.img"
    expect_fail bootback migrate 1 --onto "$tmp/$d/tiny.img" 2>"$tmp/err"; cat "$tmp/err"
    grep -q "directory $refused (owner $own, mode $mode) can be written by another user than root or you" "$tmp/err" ||
        fail "--onto under $d: not refused with the directory named"
    cmp "$tmp/$d/tiny.img" "$tmp/stale.orig" || fail "--onto under $d: the disk changed"
    [ ! -e "$tmp/$d/.tiny.img.bootback-undo" ] || fail "--onto under $d: a journal"
    expect_fail bootback restore tiny --to "$tmp/$d/out.qcow2" --format qcow2 2>"$tmp/err"
    cat "$tmp/err"
    grep -q "directory $refused (owner $own, mode $mode)" "$tmp/err" ||
        fail "restore under $d: not refused with the directory named"
    [ ! -e "$tmp/$d/out.qcow2" ] && [ ! -e "$tmp/$d/out.qcow2.part" ] ||
        fail "restore under $d left a file"
done
rm -rf "$tmp/shared" "$tmp/evil" "$tmp/open"
mkdir -m 1777 "$tmp/sticky"; mkdir -m 0700 "$tmp/sticky/mine"
bootback restore tiny --to "$tmp/sticky/mine/ok.qcow2" --format qcow2 >/dev/null ||
    fail "restore into a directory of ours in a sticky one refused"
rm -rf "$tmp/sticky"
# The name replaced all the same (the rule bypassed: a wrapper renames a
# link to a canary qcow2 over it just before qemu-nbd opens it by name):
# refused before anything is written through qemu-nbd, the canary
# unchanged; restore renames nothing into place.
mkdir -p "$tmp/bin" "$tmp/swap"
cat > "$tmp/bin/qemu-nbd" <<EOF_WRAP
#!/bin/sh
for a; do
    [ "\$a" = "\$SWAP_TARGET" ] && mv "\$a" "\$a.orig" && ln -s "$tmp/canary.qcow2" "\$a"
done
exec $(command -v qemu-nbd) "\$@"
EOF_WRAP
chmod +x "$tmp/bin/qemu-nbd"
qemu-img create -q -f qcow2 "$tmp/canary.qcow2" 256M
cp "$tmp/canary.qcow2" "$tmp/canary.orig"
qemu-img convert -O qcow2 "$stale" "$tmp/swap/s.qcow2"
SWAP_TARGET=$tmp/swap/s.qcow2 PATH="$tmp/bin:$PATH" \
    expect_fail bootback migrate 1 --onto "$tmp/swap/s.qcow2" --format qcow2 2>"$tmp/err"
cat "$tmp/err"
grep -q "s.qcow2 is no longer the file that was checked (renamed or replaced): refused, nothing written" "$tmp/err" ||
    fail "--onto replaced before qemu-nbd: not refused"
[ ! -e "$tmp/swap/.s.qcow2.bootback-undo" ] || fail "--onto replaced: a journal"
SWAP_TARGET=$tmp/swap/r.qcow2.part PATH="$tmp/bin:$PATH" \
    expect_fail bootback restore tiny --to "$tmp/swap/r.qcow2" --format qcow2 2>"$tmp/err"
cat "$tmp/err"
grep -q "r.qcow2.part is no longer the file bootback created" "$tmp/err" ||
    fail "restore's .part replaced: not refused"
[ ! -e "$tmp/swap/r.qcow2" ] && [ ! -L "$tmp/swap/r.qcow2" ] || fail "restore renamed a replaced .part"
cmp "$tmp/canary.qcow2" "$tmp/canary.orig" || fail "written through the link: the canary changed"
rm -rf "$tmp/swap" "$tmp/bin" "$tmp/canary.qcow2" "$tmp/canary.orig"
untouched "refusals"

# 2. Killed in the middle of the delta (after 2 chunks written): the
# journal (0600) stays, and the next bootback command undoes it.
rc=0
BOOTBACK_DELTA_TEST=crash@2 "$BOOTBACK" migrate 1 --onto "$stale" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 137 ] || fail "crash@2: exit $rc, expected 137 (SIGKILL)"
[ -f "$journal" ] || fail "no undo journal after a crash"
[ "$(stat -c %a "$journal")" = 600 ] || fail "journal mode $(stat -c %a "$journal")"
! cmp -s "$stale" "$tmp/stale.orig" || fail "crash@2 wrote nothing (the hook did not fire)"
grep -q "migration was interrupted" <<< "$(bootback sessions --json)"
untouched "killed mid-delta"

# 3. Interrupted (SIGTERM) in the middle of the delta: undone at once.
BOOTBACK_DELTA_TEST=stall@2 "$BOOTBACK" migrate 1 --onto "$stale" >/dev/null 2>"$tmp/err" &
mpid=$!
for (( i = 0; i < 300; i++ )); do [ -f "$journal" ] && ! cmp -s "$stale" "$tmp/stale.orig" && break; sleep 0.1; done
[ -f "$journal" ] || fail "the delta did not start"
kill -TERM "$mpid"
if wait "$mpid"; then fail "an interrupted migrate exited 0"; fi
cat "$tmp/err"
grep -q "interrupted.*nothing was lost (every --onto disk is as it was)" "$tmp/err" ||
    fail "no clear message"
untouched "interrupted mid-delta"

# 4. The block copy refused after a complete delta (libvirt refuses a
# granularity that is not a power of two): undone.
BOOTBACK_MIGRATE_GRANULARITY=3 expect_fail bootback migrate 1 --onto "$stale" 2>"$tmp/err"
cat "$tmp/err"
grep -q "block copy of vda to $stale" "$tmp/err" || fail "no block copy error"
untouched "block copy refused"

# 5. Killed while the block copy mirrors the guest's 24 MiB (1 MiB/s):
# QEMU wrote chunks the journal does not have; the next command aborts the
# job and gives them the point's content, which was theirs (delta.c,
# invariant 5).
BOOTBACK_MIGRATE_BANDWIDTH=1M "$BOOTBACK" migrate 1 --onto "$stale" >/dev/null 2>"$tmp/err" &
mpid=$!
for (( i = 0; i < 600; i++ )); do
    grep -q "Block Copy" <<< "$(virsh blockjob tiny vda 2>&1)" && break; sleep 0.1
done
grep -q "Block Copy" <<< "$(virsh blockjob tiny vda 2>&1)" ||
    { cat "$tmp/err"; virsh blockjob tiny vda; fail "no block copy running"; }
sleep 3
kill -9 "$mpid"; wait "$mpid" || true
! cmp -s "$stale" "$tmp/stale.orig" || fail "nothing was written before the kill"
untouched "killed while mirroring"
grep -q "No current block job" <<< "$(virsh blockjob tiny vda 2>&1)" || fail "block job left"
grep -q overlays/tiny.vda.qcow2 <<< "$(virsh domblklist tiny)" || fail "disk moved"

# 6. The migration, the guest paused (so its view of its disk stands
# still): first what a full migration would give, the overlay over the
# point, then migrate --onto.
virsh -q suspend tiny
qemu-img convert -U -O raw "$BOOTBACK_HOME/overlays/tiny.vda.qcow2" "$tmp/expected.img"
bootback migrate 1 --onto "$stale" | tee "$tmp/migrate.out"
grep -q "^delta: 7 of 256 chunks differed and were written" "$tmp/migrate.out" ||
    fail "not exactly the 7 differing chunks written"
grep -q "disk vda: $stale" "$tmp/migrate.out"
[ "$(state)" = migrated ] || fail "state $(state)"
[ ! -e "$journal" ] || fail "undo journal left after the pivot"
grep -q "$stale" <<< "$(virsh domblklist tiny)" || fail "running disk not on $stale"
virsh dumpxml --inactive tiny > "$tmp/inactive.xml"
grep -q "$stale" "$tmp/inactive.xml" || fail "persistent definition not updated"
qemu-img compare -U -f raw -F raw "$tmp/expected.img" "$stale" ||
    fail "the disk differs from the guest's view"
# The hole paths byte for byte: where the stale disk had holes over the
# point's data, and data over its zeros.
for c in $zap $half $zero; do
    cmp <(dd if="$tmp/expected.img" bs=$M skip=$c count=1 status=none) \
        <(dd if="$stale" bs=$M skip=$c count=1 status=none) ||
        fail "chunk $c (a hole path) differs from the guest's view"
done
virsh -q resume tiny
grep -q "/root/data: OK" <<< "$("$qga" --domain tiny exec /bin/sh -c \
    'echo 3 > /proc/sys/vm/drop_caches; sha256sum -c /root/data.sum')" ||
    fail "the guest's data differs on the migrated disk"
grep -q "^HTTP 200" <<< "$(netns_http "$url")" || fail "VM not serving after the migration"

# 7. A migrate --onto killed mid-delta, then `instant stop` of its
# session (which does not re-attach): stop restores the disk first.
bootback instant tiny --name tiny2 --agent-timeout 0 >/dev/null
mkdir -p "$tmp/prod2"
cp --sparse=always "$tmp/stale.orig" "$tmp/prod2/tiny.img"
rc=0
BOOTBACK_DELTA_TEST=crash@2 "$BOOTBACK" migrate 2 --onto "$tmp/prod2/tiny.img" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 137 ] || fail "crash@2 (session 2): exit $rc, expected 137"
! cmp -s "$tmp/prod2/tiny.img" "$tmp/stale.orig" || fail "crash@2 wrote nothing"
bootback instant stop 2 --discard
cmp "$tmp/prod2/tiny.img" "$tmp/stale.orig" || fail "instant stop did not restore the disk"
[ ! -e "$tmp/prod2/.tiny.img.bootback-undo" ] || fail "undo journal left after stop"
echo "migrate --onto ok"
