#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The boot trace a session prefetches is looked up in the repository
# (recovery/instant/trace.c, from_repo) with one listing of the VM's
# points and at most TRACE_LOOKBACK reads, however many points the VM
# has.  It used to look at every point's manifest first, per disk, at each
# start: with 4000 point directories (planted on a share others can
# write, or a VM with months of hourly points) 4000 more operations
# before the VM booted, on S3 a request each.  Measured as the repository
# operations of a start that looks in the repository against one that
# finds the trace in the catalog (which does not look there).
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/instant.sh"
instant_requires sqlite3
instant_setup
instant_import_tiny none
id=$(bootback points tiny --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])')
python3 - "$tmp/repo/points/tiny" <<'PY'
import os, sys, datetime
t = datetime.datetime(2001, 1, 1)
for i in range(4000):
    os.mkdir(os.path.join(sys.argv[1], (t + datetime.timedelta(hours=i)).strftime("%Y%m%dT%H%M%SZ")))
PY

# start NAME: a session of tiny@id (not waiting for its guest); the
# repository operations of the command in ops.
start () {
    BOOTBACK_FAULT=count bootback instant "tiny@$id" --name "$1" --network none \
        --agent-timeout 0 >/dev/null 2>"$tmp/$1.err" || { cat "$tmp/$1.err"; fail "instant $1"; }
    ops=$(sed -n 's/^bootback-fault: \([0-9]*\) ops.*/\1/p' "$tmp/$1.err" | tail -1)
    [ -n "$ops" ] || { cat "$tmp/$1.err"; fail "no operation count"; }
    bootback instant stop "$1" --discard >/dev/null
}
db=$BOOTBACK_HOME/catalog.db
sqlite3 "$db" "INSERT INTO boot_traces VALUES ('tiny', 'vda', '$id', '$tmp/repo', 0, 1, 1,
    'bootback-trace 1' || char(10) || 'chunk-size 1048576' || char(10) || '0 0' || char(10))"
start from-catalog
catalog_ops=$ops
sqlite3 "$db" "DELETE FROM boot_traces"
start from-repo
echo "repository operations: $catalog_ops with the catalog's trace, $ops looking in the repository"
[ "$ops" -le $((catalog_ops + 20)) ] ||
    fail "looking for a trace among 4000 points cost $((ops - catalog_ops)) operations"
