#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Retention and instant sessions (issue 13, items 7 and 9).
#
# 7: a point an instant session runs from is held (holds/ in the
# repository): `prune` with a rule that would drop it keeps it and names
# the session, `gc` keeps its chunks (`repo check` clean), and the
# session's nbdkit still serves the disk byte for byte.  A plain `instant
# stop` keeps the hold (the kept overlay needs its point); after `instant
# stop --discard` prune removes the point.
#
# 9: with --keep-identity the session's domain has production's name and
# UUID.  If another domain took them (here: an unrelated definition with
# that name and UUID whose disk is another file), `instant stop` refuses,
# naming the domain and its disk, and leaves it defined.
source "$top_srcdir/tests/functions.sh"
source "$top_srcdir/tests/lib/instant.sh"
instant_requires
instant_setup

# Two points of tiny: the older is the tiny image (booted below), the
# newer another disk, so that --keep-last 1 would drop the booted one and
# gc would free its chunks.
tiny_copy tiny "$tmp/tiny.img"
cp --sparse=always "$tmp/tiny.img" "$tmp/tiny.orig"
"$top_srcdir/images/domain-xml" NAME=tiny DISK_PATH="$tmp/tiny.img" \
    NET_SOURCE="$NETNS_BRIDGE" > "$tmp/tiny.xml"
bootback import "$tmp/tiny.img" --vm tiny --domain-xml "$tmp/tiny.xml" \
    --time 20261101T000000Z >/dev/null
rm "$tmp/tiny.img"
make_disk "$tmp/new.raw" $(( 1024 * 1024 ))
bootback import "$tmp/new.raw" --vm tiny --time 20261102T000000Z >/dev/null
old=tiny@20261101T000000Z

bootback instant "$old" --keep-identity --agent-timeout 0 --json > "$tmp/s.json"
read -r id sock hold < <(python3 -c '
import json, sys
s = json.load(sys.stdin)
print(s["id"], s["disks"][0]["socket"], s["hold"])' < "$tmp/s.json")
[ "$(virsh domstate tiny)" = running ] || fail "the session's VM does not run"

# --- 7: prune keeps the held point and says who holds it ---------------
bootback prune tiny --keep-last 1 | tee "$tmp/prune.out"
grep -qE "^keep +$old \(in use by instant session $id \(tiny\)" "$tmp/prune.out" ||
    fail "prune did not keep $old naming session $id"
grep -q "removed 0 restore points, kept 2" "$tmp/prune.out" || fail "prune removed a point"
bootback prune tiny --keep-last 1 --json | python3 -c "
import json, sys
p = {x['id']: x for x in json.load(sys.stdin)}
x = p['20261101T000000Z']
assert x['action'] == 'keep' and 'instant session $id' in x['held_by'], x"
[ -e "$tmp/repo/points/tiny/20261101T000000Z/manifest.json" ] || fail "manifest gone"
# gc keeps its chunks, even those old enough to go
find "$tmp/repo/chunks" -type f -exec touch -d '1 hour ago' {} +
bootback gc --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["removed"] == 0, d'
bootback repo check
# the guest's NBD export (the socket QEMU reads) still gives every byte
qemu-img compare -f raw -F raw "nbd+unix:///?socket=$sock" "$tmp/tiny.orig" ||
    fail "the session no longer reads its point"

# --- 9: stop refuses a domain that took the session's name and UUID ------
uuid=$(virsh domuuid tiny)
virsh -q destroy tiny
virsh -q undefine tiny
truncate -s 1M "$tmp/other.img"
"$top_srcdir/images/domain-xml" NAME=tiny UUID="$uuid" DISK_PATH="$tmp/other.img" \
    NET_SOURCE="$NETNS_BRIDGE" > "$tmp/other.xml"
virsh -q define "$tmp/other.xml" >/dev/null
if bootback instant stop "$id" 2>"$tmp/err"; then fail "stop succeeded"; fi
cat "$tmp/err"
grep -q "domain tiny (UUID $uuid) is not the VM of session $id.*its disk vda is $tmp/other.img" \
    "$tmp/err" || fail "the refusal does not name the domain and its disk"
virsh -q dominfo tiny >/dev/null || fail "the unrelated domain was removed"
domblk=$(virsh domblklist tiny); grep -q "$tmp/other.img" <<< "$domblk" || fail "the unrelated domain changed: $domblk"
[ "$(bootback sessions --json | python3 -c "
import json, sys
print([s['state'] for s in json.load(sys.stdin) if s['id'] == $id][0])")" = running ] ||
    fail "the refused stop changed the session"
virsh -q undefine tiny

# --- 7: stop keeps the hold with the overlay; stop --discard releases it --
bootback instant stop "$id"
bootback prune tiny --keep-last 1 | tee "$tmp/prune.out"
grep -qE "^keep +$old \(in use by instant session $id" "$tmp/prune.out" ||
    fail "a stopped session with its overlay kept lost its point"
bootback instant stop "$id" --discard
[ ! -e "$tmp/repo/holds/$hold" ] || fail "hold $hold left after stop --discard"
bootback prune tiny --keep-last 1 | tee "$tmp/prune.out"
grep -qE "^removed +$old" "$tmp/prune.out" || fail "prune kept $old after the session ended"
bootback gc --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["removed"] > 0, d'
bootback repo check
echo "instant retention ok"
