#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Start-up errors are clear and never a crash: unknown parameter, missing
# or wrong repository, unknown point or disk with point=, bad sizes.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/nbd-plugin/plugin-functions.sh"
requires numfmt

cd "$tmp"
make_image a.img 1M "0:64K"
bb_repo_init repo 64K
bb_import repo web 20260101T000000Z vda=a.img >/dev/null
mkdir notrepo

# expect_error MESSAGE ARGS...: nbdkit with ARGS must fail to start, print
# MESSAGE, and not crash (exit status 1, not a signal or valgrind's 99).
expect_error () {
    local msg=$1 rc=0
    shift
    bb_nbdkit -U - "$plugin" "$@" --run 'exit 0' >out.log 2>&1 || rc=$?
    cat out.log
    [ "$rc" -eq 1 ] || fail "nbdkit $*: exit status $rc, expected 1"
    grep -qF -- "$msg" out.log || fail "nbdkit $*: no '$msg' in the output"
}

expect_error "unknown parameter 'foo'" repo=repo foo=bar
expect_error "the repo=PATH parameter is required" point=web
expect_error "repo= was given more than once" repo=repo repo=repo
expect_error "point= was given more than once" repo=repo point=web point=web
expect_error "cannot open the repository: open: $tmp/nosuch: No such file or directory" repo=nosuch point=web
expect_error "not a bootback repository" repo=notrepo
expect_error "no restore points of VM 'nosuch'" repo=repo point=nosuch
expect_error "no restore point web@20250101T000000Z" repo=repo point=web@20250101T000000Z
expect_error "invalid time" repo=repo point=web@never
expect_error "has no disk 'vdb' (it has: vda)" repo=repo point=web disk=vdb
expect_error "not a valid disk name" repo=repo point=web disk=../x
expect_error "cache" repo=repo cache=lots
expect_error "readahead" repo=repo readahead=-1

# A broken index is an error at start-up too (it is checked against the
# manifest), naming the file.
cp -a repo repo2
idx=$(ls repo2/points/web/*/vda.fidx)
damage_byte "$idx" 100
expect_error "vda.fidx: index is corrupt" repo=repo2 point=web

# An index longer than its manifest says is refused before it is read:
# padded to 3 GiB it was read whole, only to fail its SHA-256.
rm -rf repo2; cp -a repo repo2
idx=$(ls repo2/points/web/*/vda.fidx)
truncate -s 3G "$idx"
expect_error "vda.fidx: file too large (3221225472 bytes, at most 576 expected)" repo=repo2 point=web

# A manifest naming a disk twice is refused, naming the disk.
rm -rf repo2; cp -a repo repo2
man=$(ls repo2/points/web/*/manifest.json)
python3 -c 'import json, sys
m = json.load(open(sys.argv[1])); m["disks"].append(dict(m["disks"][0]))
json.dump(m, open(sys.argv[1], "w"))' "$man"
expect_error "disk 'vda' is named twice" repo=repo2 point=web

# And the good case starts.
bb_nbdkit -U - "$plugin" repo=repo point=web --run 'nbdinfo --size "$uri"' >size.out
[ "$(cat size.out)" = 1048576 ] || fail "good case"
echo "test-errors: ok"
