#!/usr/bin/env bash
# Review repro (h/review): a remote session's front nbdkit (instant/remote.c:
# --tls=require --tls-verify-peer --tls-certificates=HOME/tls) accepts every
# certificate of the CA: hypervisor A's QEMU client certificate (tls host hvA),
# even A's *server* certificate, reads a disk served for another host.
set -u
B=${BOOTBACK:-$(cd "$(dirname "$0")/../.." && pwd)/recovery/cli/bootback}
PORT=${PORT:-18809}
t=$(mktemp -d); cd "$t"
export BOOTBACK_HOME=$t/home
$B tls init --dir "$t/tls" --hosts localhost --hosts 127.0.0.1 >/dev/null
$B tls host hvA 127.0.0.2 --dir "$t/tls" --out "$t/hostA" >/dev/null
printf 'SECRET-OF-VM-ON-HOST-B' > disk.img; truncate -s 1M disk.img
nbdkit -f --ipaddr=127.0.0.1 --port=$PORT --pidfile="$t/pid" --tls=require \
    --tls-verify-peer --tls-certificates="$t/tls" file "$t/disk.img" 2>/dev/null &
for i in $(seq 50); do [ -s "$t/pid" ] && break; sleep 0.1; done
mkdir srv; cp hostA/ca-cert.pem srv/; cp hostA/server-cert.pem srv/client-cert.pem
cp hostA/server-key.pem srv/client-key.pem
a=$(nbdcopy "nbds://127.0.0.1:$PORT?tls-certificates=$t/hostA" - 2>/dev/null | head -c 22)
b=$(nbdcopy "nbds://127.0.0.1:$PORT?tls-certificates=$t/srv" - 2>/dev/null | head -c 22)
kill "$(cat "$t/pid")"; wait; rm -rf "$t"
echo "hvA's QEMU client cert read: '$a'"; echo "hvA's server cert read:      '$b'"
[ -z "$a$b" ] || { echo VULNERABLE; exit 1; }
