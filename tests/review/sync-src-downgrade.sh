#!/usr/bin/env bash
# Review repro (h/review): repo sync accepts a downgraded (plain) SRC when the
# secret given is the generic one (BOOTBACK_PASSPHRASE*, meant for both ends),
# and copies an attacker's forged point into the encrypted DST.
# Usage: tests/review/sync-src-downgrade.sh   (from the worktree, after make build)
set -u
B=${BOOTBACK:-$(cd "$(dirname "$0")/../.." && pwd)/recovery/cli/bootback}
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT; cd "$t"
echo "pass-xyz" > pass
printf 'GENUINE' > good.img; truncate -s 1M good.img
printf 'FORGED-BY-ATTACKER' > evil.img; truncate -s 1M evil.img
export BOOTBACK_HOME=$t/home-backupserver
BOOTBACK_PASSPHRASE_FILE=pass $B repo init --encrypt src >/dev/null
BOOTBACK_PASSPHRASE_FILE=pass $B --repo src import good.img --vm web1 >/dev/null
BOOTBACK_PASSPHRASE_FILE=pass $B repo init --encrypt dst >/dev/null
# attacker: can write SRC's share, holds no key; puts a plain repository there
BOOTBACK_HOME=$t/home-attacker $B repo init evil >/dev/null
sleep 1
BOOTBACK_HOME=$t/home-attacker $B --repo evil import evil.img --vm web1 >/dev/null
rm -rf src && cp -a evil src
# a DR host (fresh catalog) syncs with the passphrase
export BOOTBACK_HOME=$t/home-drhost
if BOOTBACK_PASSPHRASE_FILE=pass $B --repo src points web1 >/dev/null 2>&1; then
    echo "unexpected: a direct open of the downgraded SRC was accepted"; fi
BOOTBACK_PASSPHRASE_FILE=pass $B repo sync src dst 2>/dev/null
BOOTBACK_PASSPHRASE_FILE=pass $B --repo dst restore web1 --to "$t/out.img" >/dev/null 2>&1
if [ "$(head -c 18 "$t/out.img" 2>/dev/null)" = FORGED-BY-ATTACKER ]; then
    echo "VULNERABLE: the encrypted DST now serves the attacker's point as web1@latest"; exit 1
fi
echo "OK: refused"; exit 0
