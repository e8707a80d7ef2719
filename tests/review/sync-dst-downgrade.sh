#!/usr/bin/env bash
# Review repro (h/review): repo sync from a plain SRC into an encrypted DST with
# the generic secret (BOOTBACK_PASSPHRASE*, "DST's secret: ... else SRC's") writes
# plaintext into a DST that someone without the key turned plain (configuration
# rewritten, keys/ moved away), on a host whose catalog has no row for DST.
set -u
B=${BOOTBACK:-$(cd "$(dirname "$0")/../.." && pwd)/recovery/cli/bootback}
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT; cd "$t"
echo "pass-xyz" > pass
printf 'PLAINTEXT-PAYROLL-DATA' > a.img; truncate -s 1M a.img
export BOOTBACK_HOME=$t/home-a
$B repo init src >/dev/null && $B --repo src import a.img --vm db1 >/dev/null
BOOTBACK_PASSPHRASE_FILE=pass $B repo init --encrypt dst >/dev/null     # the offsite copy
# attacker (write access to DST's share, no key): turns DST plain
python3 - dst/bootback-repo.json <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); j.pop("encryption", None); j["version"] = 1
json.dump(j, open(sys.argv[1], "w"))
PY
mv dst/keys keys.moved
export BOOTBACK_HOME=$t/home-b          # a host whose catalog never saw DST
BOOTBACK_PASSPHRASE_FILE=pass $B repo sync src dst 2>/dev/null
if grep -rqa PLAINTEXT-PAYROLL-DATA dst/chunks 2>/dev/null ||
   { BOOTBACK_HOME=$t/home-c $B --repo dst restore db1 --to "$t/o.img" >/dev/null 2>&1 &&
     [ "$(head -c 22 "$t/o.img")" = PLAINTEXT-PAYROLL-DATA ]; }; then
    echo "VULNERABLE: DST (believed encrypted) now holds the point in clear, readable without a key"; exit 1
fi
echo "OK: refused"
