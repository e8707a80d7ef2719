#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# import never lets a guessed format pull a host file into a point:
#   - a qcow2 whose backing file is a host file holding a secret is refused,
#     naming the backing file (also with --format qcow2); --allow-backing
#     imports it (the secret is then what the user asked for);
#   - a raw disk that begins with such a qcow2 header (what a guest can
#     write on its own disk): probed, refused naming the backing file; with
#     --format raw, its raw bytes are imported, byte for byte;
#   - the same for an external data file (qcow2), an extent in another file
#     (a vmdk descriptor) and a json: name;
#   - --format once for all images or once per image, else a clear error;
#   - a qcow2 given a backing file after it was checked (while the disks
#     before it were imported) is refused when QEMU is to open it.
source "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-nbd cmp

bootback repo init "$tmp/repo" >/dev/null
export BOOTBACK_REPO=$tmp/repo

host_secret_images

no_points () {   # VM: no point of it exists
    [ "$(bootback points "$1" --json)" = "[]" ] || fail "a refused import left a point of $1"
}
restore_cmp () {   # VM EXPECTED: the point's vda equals EXPECTED byte for byte
    rm -f "$tmp/out.raw"
    bootback restore "$1@latest" --to "$tmp/out.raw" >/dev/null || fail "restore $1"
    cmp "$tmp/out.raw" "$2" || fail "$1: the point differs from $2"
}
refused () {   # VM WHAT FILE IMPORT-ARGS...: refused, naming WHAT and FILE
    local vm=$1 what=$2 file=$3
    shift 3
    expect_fail bootback import "$@" --vm "$vm" 2>"$tmp/err"
    cat "$tmp/err"
    grep -qF "has $what $file; refusing (pass --allow-backing if you trust it)" "$tmp/err" ||
        fail "import $*: the error does not name $what $file"
    no_points "$vm"
}

# --- a qcow2 with a backing file
refused a "a backing file" "$tmp/secret" "$tmp/evil.qcow2"
refused a "a backing file" "$tmp/secret" "$tmp/evil.qcow2" --format qcow2
bootback import "$tmp/evil.qcow2" --vm a --allow-backing >/dev/null ||
    fail "--allow-backing did not import the qcow2"
restore_cmp a "$tmp/secret"

# --- a guest's raw disk that begins with that qcow2 header
cp "$tmp/evil.qcow2" "$tmp/guest.raw"
truncate -s 4M "$tmp/guest.raw"
head -c 1M /dev/urandom | dd of="$tmp/guest.raw" bs=1M seek=2 conv=notrunc status=none
refused g "a backing file" "$tmp/secret" "$tmp/guest.raw"
bootback import "$tmp/guest.raw" --vm g --format raw >/dev/null || fail "--format raw"
restore_cmp g "$tmp/guest.raw"
grep -q BOOTBACK-HOST-SECRET "$tmp/out.raw" && fail "host data in the raw import"
bootback point show g@latest --json | grep -q '"format": *"raw"' || fail "the point does not say raw"

# --- an external data file (qcow2 data_file)
qemu-img create -q -f qcow2 -o data_file="$tmp/df",data_file_raw=on "$tmp/df.qcow2" 1M
cp "$tmp/secret" "$tmp/df"
refused d "an external data file" "$tmp/df" "$tmp/df.qcow2"

# --- a vmdk descriptor whose extent is the host file
cat >"$tmp/desc.vmdk" <<EOF
# Disk DescriptorFile
version=1
CID=fffffffe
parentCID=ffffffff
createType="monolithicFlat"

RW 2048 FLAT "$tmp/secret" 0

ddb.virtualHWVersion = "4"
EOF
refused v "an extent file" "$tmp/secret" "$tmp/desc.vmdk"
cp "$tmp/desc.vmdk" "$tmp/guest2.raw"
truncate -s 1M "$tmp/guest2.raw"
refused v "an extent file" "$tmp/secret" "$tmp/guest2.raw"
bootback import "$tmp/guest2.raw" --vm v --format raw >/dev/null || fail "--format raw (vmdk text)"
restore_cmp v "$tmp/guest2.raw"

# --- a json: name
json='json:{"driver":"raw","file":{"driver":"file","filename":"'$tmp/secret'"}}'
expect_fail bootback import "$json" --vm j 2>"$tmp/err"
cat "$tmp/err"
grep -qF "image $json (raw) has a json: name (QEMU options, not a file); refusing" "$tmp/err" || fail "json: name not refused"
no_points j

# --- --format counts; an ordinary qcow2 still imports without options
qemu-img convert -f raw -O qcow2 "$tmp/guest.raw" "$tmp/plain.qcow2"
expect_fail bootback import "$tmp/guest.raw" "$tmp/plain.qcow2" "$tmp/guest.raw" --vm m \
    --format raw --format qcow2 2>"$tmp/err"
grep -q "give one --format for all images or one per image (3 images, 2 formats)" "$tmp/err" ||
    fail "--format count: $(cat "$tmp/err")"
bootback import "$tmp/guest.raw" "$tmp/plain.qcow2" --vm m --format raw --format qcow2 >/dev/null ||
    fail "one --format per image"
bootback import "$tmp/plain.qcow2" --vm p >/dev/null || fail "plain qcow2"
restore_cmp p "$tmp/guest.raw"
# a vmdk whose only extent is itself is no link, named relatively too
qemu-img convert -f raw -O vmdk "$tmp/guest.raw" "$tmp/plain.vmdk"
(cd "$tmp" && bootback import plain.vmdk --vm k >/dev/null) || fail "a plain vmdk (relative path)"
restore_cmp k "$tmp/guest.raw"
expect_fail bootback import "$tmp/plain.qcow2" --vm p --format vmdk 2>"$tmp/err"
grep -q "plain.qcow2" "$tmp/err" || fail "a wrong --format: $(cat "$tmp/err")"
# the header changes after the probe: the import stops itself (SIGSTOP) at
# its 30th repository operation, the first disk's chunks being stored (its
# writer registered: every image was checked before); the second image is
# then given the secret as its backing file
qemu-img create -q -f qcow2 "$tmp/late.qcow2" 1M
head -c 8M /dev/urandom >"$tmp/first.raw"
rc=0
BOOTBACK_FAULT=stop@30 "$BOOTBACK" import "$tmp/first.raw" "$tmp/late.qcow2" --format raw --format qcow2 \
    --vm late >"$tmp/late.out" 2>"$tmp/late.err" &
imp=$!
wait_stopped "$imp" ||
    fail "the import did not stop at its 30th operation: $(cat "$tmp/late.err")"
[ -n "$(ls "$tmp/repo/locks/writers")" ] || fail "stopped before the writer began (before the probes?)"
qemu-img rebase -q -u -f qcow2 -F raw -b "$tmp/secret" "$tmp/late.qcow2"
kill -CONT "$imp"
wait "$imp" || rc=$?
[ "$rc" -eq 1 ] || fail "a backing file added after the probe: exit $rc, expected 1 ($(cat "$tmp/late.err"))"
grep -q "late.qcow2 changed while importing\|late.qcow2 (qcow2) has a backing file" "$tmp/late.err" ||
    fail "the late backing file is not named: $(cat "$tmp/late.err")"
no_points late
bootback repo check >/dev/null || fail "repo check"
echo ok
