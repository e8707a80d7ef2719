#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Boot-trace prefetch (recovery/instant/trace.c, nbd-plugin/trace.c).
#  1. A first instant boot records which chunks the boot read up to the
#     guest agent's first answer and keeps it in the catalog (boot_traces)
#     and beside the point (points/tiny/ID/vda.trace), the same records.
#  2. The second boot prefetches them: its plugin reports chunks loaded
#     ahead of the guest and guest reads of traced chunks served from them.
#  3. A hostile trace in the repository (an index past the disk), with no
#     catalog row (a new catalog), is ignored with a warning naming it; the
#     guest boots and answers HTTP; the boot's own trace replaces it.
#  4. With no catalog row, a good trace in the repository is used.
#  5. repo check and repo verify pass with the trace beside the point.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/instant.sh"
instant_requires curl sqlite3
instant_setup
instant_import_tiny
id=$(bootback points tiny --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])')
db=$BOOTBACK_HOME/catalog.db
rfile=$tmp/repo/points/tiny/$id/vda.trace

# boot NAME [AGENT_TIMEOUT]: a session of tiny; sets sid and dir.
boot () {
    bootback instant tiny --name "$1" --new-identity --network "bridge:$NETNS_BRIDGE" \
        --agent-timeout "${2:-240}" --json > "$tmp/$1.json" 2> "$tmp/$1.err" ||
        { cat "$tmp/$1.err"; fail "instant $1 failed"; }
    sid=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' < "$tmp/$1.json")
    dir=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["dir"])' < "$tmp/$1.json")
}
records () { grep -c '^[0-9]* [0-9]*$' "$1" || true; }

# --- 1 ----------------------------------------------------------------------
boot t1
python3 -c 'import json,sys; assert json.load(sys.stdin)["seconds_to_heartbeat"] > 0' < "$tmp/t1.json" ||
    { cat "$tmp/t1.json"; fail "no agent answer"; }
[ ! -e "$dir/vda.prefetch" ] || fail "a first boot had something to prefetch"
[ -f "$rfile" ] || fail "no trace beside the point ($rfile)"
head -2 "$rfile" | tr '\n' ' ' | grep -q '^bootback-trace 1 chunk-size 1048576 $' ||
    { head -3 "$rfile"; fail "the trace file has no header"; }
n=$(records "$rfile")
row=$(sqlite3 "$db" "SELECT point || ' ' || chunks FROM boot_traces WHERE vm = 'tiny' AND disk = 'vda'")
[ "$row" = "$id $n" ] || fail "catalog row '$row', expected '$id $n' (the file's records)"
[ "$n" -gt 5 ] || fail "only $n chunks traced"
[ "$(sqlite3 "$db" "SELECT trace FROM boot_traces")" = "$(cat "$rfile")" ] ||
    fail "the catalog's trace is not the repository's"
# a record's time: within the time to the agent's answer
max_ms=$(tail -n +3 "$rfile" | cut -d' ' -f2 | sort -n | tail -1)
hb_ms=$(python3 -c 'import json,sys; print(int(json.load(sys.stdin)["seconds_to_heartbeat"] * 1000))' < "$tmp/t1.json")
[ "$max_ms" -le "$hb_ms" ] || fail "a traced read at $max_ms ms, after the answer at $hb_ms ms"
echo "boot 1: $n chunks traced up to the agent's answer at $hb_ms ms"
bootback instant stop "$sid" --discard >/dev/null

# --- 2 ----------------------------------------------------------------------
boot t2
[ "$(records "$dir/vda.prefetch")" = "$n" ] || fail "boot 2 has no prefetch list of $n chunks"
grep -q "prefetch=$dir/vda.prefetch" <<< "$(cat /proc/"$(cat "$dir/vda.backend.pid")"/cmdline | tr '\0' ' ')" ||
    fail "the backend nbdkit was not given prefetch="
bootback instant stop "$sid" >/dev/null      # (keeps the directory: the log)
line=$(grep 'bootback: prefetch: [0-9]* of' "$dir/nbdkit-vda-backend.log" || true)
echo "boot 2: $line"
[[ $line =~ prefetch:\ ([0-9]+)\ of\ ([0-9]+)\ traced.*read\ ([0-9]+)\ traced\ chunks,\ ([0-9]+)\ of ]] ||
    { cat "$dir/nbdkit-vda-backend.log"; fail "no prefetch statistics in the plugin's log"; }
loaded=${BASH_REMATCH[1]} hits=${BASH_REMATCH[4]}
[ "$loaded" -gt 0 ] || fail "nothing prefetched: $line"
[ "$hits" -gt 0 ] || fail "no guest read of a traced chunk was prefetched: $line"
bootback instant stop "$sid" --discard >/dev/null

# --- 3 ----------------------------------------------------------------------
sqlite3 "$db" "DELETE FROM boot_traces"
printf 'bootback-trace 1\nchunk-size 1048576\n0 0\n999999999 5\n' > "$rfile"
boot t3
grep -q "warning: boot trace of tiny@$id disk vda ignored: .*vda.trace: line 4: chunk 999999999 is past" \
    "$tmp/t3.err" || { cat "$tmp/t3.err"; fail "the hostile trace was not named in a warning"; }
[ ! -e "$dir/vda.prefetch" ] || fail "a hostile trace was prefetched"
netns_wait_http http://10.77.0.10/health 120 >/dev/null || fail "no HTTP after the hostile trace"
[ "$(records "$rfile")" -gt 5 ] && ! grep -q 999999999 "$rfile" ||
    fail "the boot's own trace did not replace the hostile one"
bootback instant stop "$sid" --discard >/dev/null

# --- 4 ----------------------------------------------------------------------
sqlite3 "$db" "DELETE FROM boot_traces"
boot t4 0
[ "$(records "$dir/vda.prefetch")" = "$(records "$rfile")" ] ||
    fail "the repository's trace was not used without a catalog row"
bootback instant stop "$sid" --discard >/dev/null

# --- the file beside the point is no problem for check and verify --------
[ -f "$rfile" ] || fail "no trace to check"
bootback repo check >/dev/null || fail "repo check with a boot trace beside the point"
bootback repo verify >/dev/null || fail "repo verify with a boot trace beside the point"
echo "ok"
