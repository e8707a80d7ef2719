#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The manifest pins a point's domain.xml by its SHA-256.  A domain.xml
# changed on disk afterwards (by anyone who can write the repository) is
# reported by repo check and repo verify, naming the file and the point,
# and every reader refuses it with that error instead of using it: point
# show, instant recovery, the lab's quick verify.  Put back, all is well.
source "$top_srcdir/tests/functions.sh"
requires qemu-img qemu-nbd python3 sha256sum

repo=$tmp/repo
bootback repo init --chunk-size 64K "$repo"
make_disk "$tmp/a.raw" $(( 1024 * 1024 ))
cat > "$tmp/web.xml" <<'EOF'
<domain type='kvm'>
  <name>web</name>
  <memory unit='MiB'>256</memory>
  <os><type arch='x86_64'>hvm</type></os>
</domain>
EOF
bootback import "$tmp/a.raw" --vm web --domain-xml "$tmp/web.xml" --time 20261101T010000Z
pt=web@20261101T010000Z
dir=$repo/points/web/20261101T010000Z

# the pin is the file's SHA-256, stored like the index checksums
python3 - "$dir/manifest.json" "$(sha256sum "$dir/domain.xml" | cut -d' ' -f1)" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
assert m["domain_xml"] == "domain.xml", m
assert m["domain_xml_sha256"] == sys.argv[2], (m, sys.argv[2])
assert len(m["disks"][0]["index_sha256"]) == 64
PY
cmp "$dir/domain.xml" "$tmp/web.xml"
bootback point show "$pt" | grep -q "domain XML:  yes (SHA-256 pinned)"
bootback point show "$pt" --json | python3 -c '
import json, sys; j = json.load(sys.stdin)
assert j["domain_xml"] is True and len(j["domain_xml_sha256"]) == 64, j'
bootback repo check
bootback repo verify

# a hostile edit: same size, one element swapped
cp "$dir/domain.xml" "$tmp/saved.xml"
sed -i 's|<name>web</name>|<name>wwb</name>|' "$dir/domain.xml"

# check and verify report it (exit 2), naming the file and the point
for mode in check verify; do
    expect_rc 2 bootback repo $mode
    grep -q "domain XML changed: points/web/20261101T010000Z/domain.xml" "$tmp/err" ||
        fail "repo $mode does not name the changed domain.xml"
    grep -q "SHA-256 mismatch.*$pt" "$tmp/err" || fail "repo $mode does not name the point"
done
{ bootback repo check --json 2>/dev/null || true; } | python3 -c '
import json, sys; j = json.load(sys.stdin)
assert j["problems"] == 1, j
assert j["problem_list"][0]["problem"] == "domain XML changed", j' || fail "check --json"

# every reader refuses it, with that error
refused () {
    local what=$1; shift
    set +e; "$@" > "$tmp/out" 2> "$tmp/err"; rc=$?; set -e
    cat "$tmp/err"
    [ $rc -ne 0 ] || fail "$what used a changed domain.xml"
    grep -q "$dir/domain.xml: SHA-256 mismatch" "$tmp/err" || fail "$what: error does not name the file"
    grep -q "manifest of $pt pins" "$tmp/err" || fail "$what: error does not name the point"
}
refused "point show" bootback point show "$pt"
refused "point show --json" bootback point show "$pt" --json
# instant and the lab read it before anything else is made; an unreachable
# libvirt makes sure nothing would be started if they did not
nolibvirt="qemu+unix:///system?socket=$tmp/no-such.sock"
refused "instant" bootback instant "$pt" --name pin-test --connect "$nolibvirt"
refused "verify (lab)" bootback verify "$pt" --connect "$nolibvirt" \
    --report-dir "$tmp/report" --quiet
[ -z "$(bootback sessions --json 2>/dev/null | grep pin-test)" ] || fail "a session was made"

# put back, everything reads it again
cp "$tmp/saved.xml" "$dir/domain.xml"
bootback repo check
bootback repo verify
bootback point show "$pt" >/dev/null
echo "domain.xml pin ok"
