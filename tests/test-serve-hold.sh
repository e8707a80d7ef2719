#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# A point served by `bootback serve` is in use: prune keeps it while its
# nbdkit runs (naming it), the client reads it byte for byte after prune
# and gc, and once nbdkit is gone its hold is stale and the next prune
# removes the hold and the point.
source "$top_srcdir/tests/functions.sh"
requires nbdkit nbdcopy python3
[ -f "$top_srcdir/nbd-plugin/nbdkit-bootback-plugin.so" ] || skip "plugin not built"

bootback repo init --chunk-size 64K "$tmp/repo" >/dev/null
make_disk "$tmp/a.raw" $(( 1024 * 1024 ))
make_disk "$tmp/b.raw" $(( 1024 * 1024 ))
bootback import "$tmp/a.raw" --vm v --time 20261101T000000Z >/dev/null
bootback import "$tmp/b.raw" --vm v --time 20261102T000000Z >/dev/null

bootback serve v@20261101T000000Z --background > "$tmp/serve.out"
uri=$(sed -n 's/^NBD URI: //p' "$tmp/serve.out")
pidf=$(sed -n 's/.*(pid file \(.*\))$/\1/p' "$tmp/serve.out")
pid=$(cat "$pidf")
cleanup_fn "kill $pid 2>/dev/null; rm -rf '$(dirname "$pidf")'"

bootback prune v --keep-last 1 | tee "$tmp/prune.out"
grep -qx "keep    v@20261101T000000Z (in use by bootback serve (nbdkit pid $pid) on $(hostname))" \
    "$tmp/prune.out" || fail "prune did not keep the served point"
find "$tmp/repo/chunks" -type f -exec touch -d '1 hour ago' {} +
bootback gc --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["removed"] == 0, d'
nbdcopy "$uri" "$tmp/served.img"
cmp "$tmp/served.img" "$tmp/a.raw" || fail "the served point reads differently"

kill "$pid"
for (( i = 0; i < 100; i++ )); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
bootback prune v --keep-last 1 >"$tmp/prune.out" 2>"$tmp/err"
cat "$tmp/prune.out" "$tmp/err"
grep -qx "removed v@20261101T000000Z" "$tmp/prune.out" || fail "the point outlived its server"
grep -q "removed the stale hold of v@20261101T000000Z by bootback serve (nbdkit pid $pid)" "$tmp/err"
[ -z "$(ls "$tmp/repo/holds")" ] || fail "hold left: $(ls "$tmp/repo/holds")"
bootback repo check
echo "serve hold ok"
