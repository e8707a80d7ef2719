#!/usr/bin/env bash
# Review repro (h/review), run as root: `tls host ... --out DIR` (and tls init
# --dir DIR) accept an existing directory of another user if its mode is 0700
# (cmd-tls.c prepare_dir checks the mode, not the owner); that user then swaps
# the trust anchor (ca-cert.pem) the administrator copies to the hypervisor.
set -u
B=${BOOTBACK:-$(cd "$(dirname "$0")/../.." && pwd)/recovery/cli/bootback}
t=$(mktemp -d); D=/tmp/host1-tls.$$; trap 'rm -rf "$t" "$D"' EXIT
export BOOTBACK_HOME=$t/home
$B tls init --dir "$t/tls" --hosts localhost >/dev/null
as_nobody () { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
as_nobody mkdir -m 700 "$D"
if $B tls host host1 10.0.0.11 --dir "$t/tls" --out "$D" >/dev/null 2>&1; then
    as_nobody sh -c "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=evil-ca \
        -keyout /dev/null -out '$D/x.pem' -days 1 2>/dev/null && mv -f '$D/x.pem' '$D/ca-cert.pem'"
    echo "VULNERABLE: tls host wrote into nobody's directory; its ca-cert.pem is now:"
    openssl x509 -in "$D/ca-cert.pem" -noout -subject; exit 1
fi
echo "OK: refused"
